//! Paths as Compose resolves them.

use std::path::{Component, Path, PathBuf};

/// `path` made absolute against `base` when it is relative, and cleaned of `.` and `..`
/// lexically (as Compose does), so that the same directory always has the same name.
pub fn resolve_path(base: &Path, path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_resolved_and_cleaned() {
        let base = Path::new("/srv/p");
        assert_eq!(
            resolve_path(base, Path::new("./config/x")),
            Path::new("/srv/p/config/x")
        );
        assert_eq!(resolve_path(base, Path::new("../other")), Path::new("/srv/other"));
        assert_eq!(resolve_path(base, Path::new("/abs/./y")), Path::new("/abs/y"));
    }
}
