//! Installing and enabling a systemd unit (`setup --guard`). The unit directory is
//! /etc/systemd/system unless PRICESCAN_SYSTEMD_DIR names another (a user's
//! ~/.config/systemd/user, a staging root).

use crate::error::{CtlError, Result};
use std::path::{Path, PathBuf};

pub fn unit_dir() -> PathBuf {
    std::env::var_os("PRICESCAN_SYSTEMD_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from("/etc/systemd/system"), PathBuf::from)
}

/// Whether systemd manages this host (what `sd_booted()` checks).
pub fn running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Writes the unit unless it already reads `text`; true when it changed.
pub fn install(path: &Path, text: &str) -> Result<bool> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CtlError::failure(format!("cannot create {}", dir.display())).cause(e))?;
    }
    crate::sys::fsutil::write_atomic(path, text.as_bytes(), 0o644)?;
    Ok(true)
}

/// `systemctl daemon-reload`, then `systemctl enable --now UNIT`.
pub fn enable_now(unit: &str) -> Result<()> {
    for args in [vec!["daemon-reload"], vec!["enable", "--now", unit]] {
        let out = std::process::Command::new("systemctl")
            .args(&args)
            .output()
            .map_err(|e| CtlError::failure("cannot run systemctl").cause(e))?;
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(CtlError::failure(format!("systemctl {} failed", args.join(" "))).cause(why));
        }
    }
    Ok(())
}
