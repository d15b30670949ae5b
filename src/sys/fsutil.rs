//! File writes that never leave a half-written file: temp file in the same directory,
//! fsync, rename, fsync the directory.

use crate::error::{Context, Result};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `content` to `path` atomically with `mode`. The temporary file has the mode from
/// its creation, so a secret is never readable by others, not even for a moment.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".pricescan-tmp")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(content)
        .context(|| format!("cannot write {}", path.display()))?;
    tmp.as_file()
        .sync_all()
        .context(|| format!("cannot sync {}", path.display()))?;
    tmp.persist(path)
        .context(|| format!("cannot replace {}", path.display()))?;
    sync_dir(dir)
}

pub fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .context(|| format!("cannot sync directory {}", dir.display()))
}

pub fn mode_of(path: &Path) -> Option<u32> {
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .context(|| format!("cannot change the mode of {}", path.display()))
}

/// Free bytes for an unprivileged writer on the filesystem holding `path`.
pub fn free_space(path: &Path) -> Result<u64> {
    let stat = nix::sys::statvfs::statvfs(path)
        .context(|| format!("cannot read free space of {}", path.display()))?;
    Ok(stat.blocks_available() as u64 * stat.fragment_size() as u64)
}

/// Free bytes (for an unprivileged writer) and total bytes of the filesystem holding `path`.
pub fn space(path: &Path) -> Result<(u64, u64)> {
    let stat = nix::sys::statvfs::statvfs(path)
        .context(|| format!("cannot read free space of {}", path.display()))?;
    let unit = stat.fragment_size() as u64;
    Ok((stat.blocks_available() as u64 * unit, stat.blocks() as u64 * unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.env");
        write_atomic(&path, b"one", 0o600).unwrap();
        assert_eq!(mode_of(&path), Some(0o600));
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
    }
}
