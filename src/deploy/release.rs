//! Releases of the API. The engine is the source of truth for what serves: the serving
//! container carries its release id and image as labels, which every recreation keeps, so
//! `start` from any checkout keeps the deployed release. `.pricescan/releases.jsonl` is the
//! history: appended with O_APPEND and fsync, never rewritten; a line that cannot be read is
//! reported by number and skipped (DESIGN §8).

use crate::engine::{ContainerInfo, Engine, labels};
use crate::error::{CtlError, Result};
use crate::stack::Project;
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

pub const API_SERVICE: &str = "pricescan-api";
/// Releases whose containers and images are kept for rollback.
pub const KEEP_RELEASES: usize = 5;
/// The image reference the serving release was deployed from (the id is `labels::RELEASE`).
pub const RELEASE_IMAGE_LABEL: &str = "io.pricescan.release-image";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Release {
    pub id: String,
    pub kind: String,
    pub image: String,
    pub digest: Option<String>,
    pub previous: Option<String>,
    /// The image that served before, so a rollback works even for the first release.
    #[serde(default)]
    pub previous_image: Option<String>,
    pub user: String,
    pub host: String,
    pub started_at: String,
    pub finished_at: String,
    pub duration_s: f64,
    /// succeeded, rolled_back or failed.
    pub result: String,
    pub backup: Option<String>,
    pub message: Option<String>,
    /// The judgement by traffic after the switch (DESIGN §15), when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<super::analysis::Analysis>,
}

/// The history as read: the records, and the lines that could not be read.
#[derive(Debug, Default)]
pub struct History {
    pub releases: Vec<Release>,
    /// (line number, why) of each line skipped.
    pub skipped: Vec<(usize, String)>,
}

impl History {
    /// One warning per skipped line, for the printer.
    pub fn warnings(&self, project: &Project) -> Vec<String> {
        self.skipped
            .iter()
            .map(|(n, why)| {
                format!(
                    "{}:{n}: skipped a line that cannot be read ({why})",
                    path(project).display()
                )
            })
            .collect()
    }

    pub fn current(&self) -> Option<&Release> {
        self.releases.iter().rev().find(|r| r.result == "succeeded")
    }

    /// The named good release, or the one before the current (or, for the first release,
    /// the image that served before it).
    pub fn rollback_target(&self, named: Option<&str>) -> Option<Release> {
        let good: Vec<&Release> = self.releases.iter().filter(|r| r.result == "succeeded").collect();
        if let Some(id) = named {
            return good.iter().find(|r| r.id == id).map(|r| (*r).clone());
        }
        let current = good.last()?;
        let earlier = good.iter().rev().find(|r| r.image != current.image);
        earlier.map(|r| (*r).clone()).or_else(|| {
            let image = current.previous_image.clone()?;
            Some(Release {
                image,
                ..(*current).clone()
            })
        })
    }
}

impl Release {
    /// The record before the switch: who, where, from what, to what.
    pub async fn begin(
        (engine, project): (&Engine, &Project),
        id: String,
        kind: &str,
        image: String,
        previous: Option<String>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Release> {
        Ok(Release {
            id,
            kind: kind.to_string(),
            digest: engine.image_id(&image).await?,
            image,
            previous,
            // What the running API was created from: the serving release's image, or the compose file's.
            previous_image: project.service(API_SERVICE).image.clone(),
            user: std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| format!("uid {}", nix::unistd::getuid())),
            host: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            started_at: now.to_rfc3339(),
            finished_at: String::new(),
            duration_s: 0.0,
            result: String::new(),
            backup: None,
            message: None,
            analysis: None,
        })
    }

    /// When the release finished switching, if it did.
    pub fn finished(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::parse_from_rfc3339(&self.finished_at)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    }
}

pub fn path(project: &Project) -> PathBuf {
    project.dir.join(".pricescan").join("releases.jsonl")
}

/// Every record, oldest first. A missing file is an empty history; a file that cannot be
/// read fails (exit 1) and is left untouched.
pub fn history(project: &Project) -> Result<History> {
    let file = path(project);
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(History::default()),
        Err(e) => {
            return Err(
                CtlError::failure(format!("cannot read the release history {}", file.display()))
                    .cause(e)
                    .hint("nothing was changed; fix the file's permissions or disk, then try again"),
            );
        }
    };
    Ok(parse(&bytes))
}

/// The release log as read from disk; public for the fuzz targets.
pub fn parse(bytes: &[u8]) -> History {
    let mut history = History::default();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = std::str::from_utf8(line)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str::<Release>(text).map_err(|e| e.to_string()));
        match parsed {
            Ok(r) => history.releases.push(r),
            Err(why) => history.skipped.push((i + 1, why)),
        }
    }
    history
}

/// Appends one record: O_APPEND, one write, fsync. A torn last line (a crash mid-write, a
/// stray byte) gets a newline first, so the new record stands on a line of its own.
pub fn append(project: &Project, release: &Release) -> Result<()> {
    append_to(&path(project), release)
}

fn append_to(file: &std::path::Path, release: &Release) -> Result<()> {
    let fail = |what: &str| {
        let what = format!("{what} {}", file.display());
        move |e: std::io::Error| CtlError::failure(what).cause(e)
    };
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(fail("cannot create the directory of"))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o600)
        .open(file)
        .map_err(fail("cannot open"))?;
    let mut line = serde_json::to_string(release)
        .map_err(|e| CtlError::failure("cannot encode the release").cause(e))?;
    line.push('\n');
    if !ends_with_newline(&mut f).map_err(fail("cannot read"))? {
        line.insert(0, '\n');
    }
    f.write_all(line.as_bytes()).map_err(fail("cannot append to"))?;
    f.sync_all().map_err(fail("cannot sync"))
}

fn ends_with_newline(f: &mut std::fs::File) -> std::io::Result<bool> {
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(true);
    }
    f.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// Makes the model's API the given release: its image, and the labels that carry it
/// through every recreation. Deploy and start use this one function, so their config
/// hashes agree and a deployed container is not recreated for nothing.
pub fn pin(project: &mut Project, id: &str, image: &str) {
    if let Some(api) = project.file.services.get_mut(API_SERVICE) {
        api.image = Some(image.to_string());
        api.labels.insert(labels::RELEASE.to_string(), id.to_string());
        api.labels
            .insert(RELEASE_IMAGE_LABEL.to_string(), image.to_string());
    }
}

/// The release that serves, as the engine records it: the labels of the API container that
/// stands for the service (running first).
pub fn serving(containers: &[ContainerInfo]) -> Option<(String, String)> {
    let c = crate::deploy::converge::current_container(containers, API_SERVICE)?;
    Some((
        c.labels.get(labels::RELEASE)?.clone(),
        c.labels.get(RELEASE_IMAGE_LABEL)?.clone(),
    ))
}

/// Adopts the serving release into the model, so that converging keeps it.
pub fn adopt_serving(project: &mut Project, containers: &[ContainerInfo]) {
    if let Some((id, image)) = serving(containers) {
        pin(project, &id, &image);
    }
}

pub fn new_id(now: chrono::DateTime<chrono::Utc>) -> String {
    format!("r{}", now.format("%Y%m%dT%H%M%SZ"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> String {
        format!(
            r#"{{"id":"{id}","kind":"deploy","image":"api:{id}","digest":null,"previous":null,"user":"u","host":"h","started_at":"","finished_at":"","duration_s":1.0,"result":"succeeded","backup":null,"message":null}}"#
        )
    }

    #[test]
    fn a_bad_line_is_skipped_by_number_and_the_rest_kept() {
        let mut text = format!("{}\n\u{1}garbage\n{}\n", record("r1"), record("r2")).into_bytes();
        text.push(0xff);
        let h = parse(&text);
        let ids: Vec<&str> = h.releases.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["r1", "r2"]);
        assert_eq!(h.skipped.iter().map(|s| s.0).collect::<Vec<_>>(), [2, 4]);
        assert_eq!(h.current().map(|r| r.id.as_str()), Some("r2"));
    }

    #[test]
    fn append_never_rewrites_and_starts_a_fresh_line_after_a_torn_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("releases.jsonl");
        std::fs::write(&file, format!("{}\n{{\"torn", record("r1"))).unwrap();
        let before = std::fs::read(&file).unwrap();
        let r: Release = serde_json::from_str(&record("r2")).unwrap();
        append_to(&file, &r).unwrap();
        append_to(&file, &r).unwrap();
        let after = std::fs::read(&file).unwrap();
        assert_eq!(
            &after[..before.len()],
            &before[..],
            "the old bytes stay as they were"
        );
        let h = parse(&after);
        assert_eq!(h.releases.len(), 3);
        assert_eq!(h.skipped.iter().map(|s| s.0).collect::<Vec<_>>(), [2]);
    }
}
