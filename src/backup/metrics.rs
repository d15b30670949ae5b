//! The backup's figures for Prometheus's node-exporter textfile collector
//! (`METRICS_TEXTFILE_DIR`), written atomically so a scrape never sees half a file.

use crate::stack::Project;

/// Sets these metrics in the textfile (atomically, when METRICS_TEXTFILE_DIR is set),
/// keeping every other line: a failure leaves the last success's figures in place.
pub fn update(project: &Project, set: &[(&str, String)]) {
    update_file(project, "pricescan_backup.prom", set)
}

/// `update` for a textfile of its own: a long-lived writer (the binlog shipper) never races
/// a backup over one file.
pub fn update_file(project: &Project, file: &str, set: &[(&str, String)]) {
    let Some(dir) = project.env.get("METRICS_TEXTFILE_DIR").filter(|d| !d.is_empty()) else {
        return;
    };
    let path = crate::stack::resolve_path(&project.dir, std::path::Path::new(&dir)).join(file);
    let previous = std::fs::read_to_string(&path).unwrap_or_default();
    let mut lines: Vec<String> = previous
        .lines()
        .filter(|l| {
            !set.iter()
                .any(|(name, _)| l.split_whitespace().next() == Some(name))
        })
        .map(str::to_string)
        .collect();
    lines.extend(set.iter().map(|(name, value)| format!("{name} {value}")));
    lines.sort();
    let text = lines.join("\n") + "\n";
    let _ = crate::sys::fsutil::write_atomic(&path, text.as_bytes(), 0o644);
}
