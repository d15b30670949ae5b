//! The build context for `deploy --build`: DIR as a tar in a temporary file (constant
//! memory however large the context), leaving out what `.dockerignore` says.

use crate::error::{CtlError, Result};
use crate::stack::dockerignore::DockerIgnore;
use std::path::Path;

pub fn context_tar(dir: &Path, dockerfile: &str) -> Result<tempfile::NamedTempFile> {
    if !dir.join(dockerfile).is_file() {
        return Err(CtlError::usage(format!("{} has no {dockerfile}", dir.display()))
            .hint("deploy --build DIR needs DIR/Dockerfile.prod"));
    }
    let ignore_text = std::fs::read_to_string(dir.join(".dockerignore")).unwrap_or_default();
    let ignore = DockerIgnore::parse(&ignore_text).map_err(CtlError::usage)?;
    let file = tempfile::NamedTempFile::new()
        .map_err(|e| CtlError::failure("cannot create a temporary file").cause(e))?;
    let mut tar = tar::Builder::new(
        file.reopen()
            .map_err(|e| CtlError::failure("cannot write the build context").cause(e))?,
    );
    tar.follow_symlinks(false);
    let mut todo = vec![dir.to_path_buf()];
    while let Some(current) = todo.pop() {
        let entries = std::fs::read_dir(&current)
            .map_err(|e| CtlError::failure(format!("cannot read {}", current.display())).cause(e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            let kind = entry
                .file_type()
                .map_err(|e| CtlError::failure("cannot read the build context").cause(e))?;
            // The Dockerfile and .dockerignore always go, as the engine needs them.
            let excluded = rel != dockerfile && rel != ".dockerignore" && ignore.excludes(&rel);
            if kind.is_dir() {
                // An excluded directory may still hold an exception (`!dir/keep`), as in Docker.
                if !excluded || ignore.has_exceptions() {
                    todo.push(path);
                }
            } else if !excluded {
                tar.append_path_with_name(&path, &rel)
                    .map_err(|e| CtlError::failure(format!("cannot add {rel}")).cause(e))?;
            }
        }
    }
    tar.finish()
        .map_err(|e| CtlError::failure("cannot write the build context").cause(e))?;
    Ok(file)
}
