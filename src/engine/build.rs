//! Building an image through the engine's build API (the classic builder, which needs no
//! registry for a local base image), from a context tar on disk.

use super::client::Engine;
use super::errors::engine_error;
use crate::error::{CtlError, Result};
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;
use std::path::Path;

impl Engine {
    /// Builds `dockerfile` of the context tar at `context` as `tag`; `on_line` hears the
    /// build output. The context streams from disk.
    pub async fn build(
        &self,
        context: &Path,
        dockerfile: &str,
        tag: &str,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<()> {
        let file = tokio::fs::File::open(context)
            .await
            .map_err(|e| CtlError::failure("cannot read the build context").cause(e))?;
        let body = bollard::body_try_stream(tokio_util::io::ReaderStream::new(file));
        let options = BuildImageOptionsBuilder::default()
            .dockerfile(dockerfile)
            .t(tag)
            .rm(true)
            .forcerm(true)
            .build();
        let mut stream = std::pin::pin!(self.docker.build_image(options, None, Some(body)));
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| engine_error(&format!("cannot build {tag}"), e))?;
            if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                return Err(CtlError::failure(format!("the build of {tag} failed")).cause(detail));
            }
            for line in info
                .stream
                .iter()
                .flat_map(|s| s.lines())
                .filter(|l| !l.trim().is_empty())
            {
                on_line(line);
            }
        }
        Ok(())
    }
}
