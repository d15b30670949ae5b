//! Pulling an image with per-layer progress, for setup and deploy.

use crate::engine::Engine;
use crate::error::Result;
use crate::output::Printer;
use futures_util::StreamExt;

pub async fn pull(printer: &Printer, engine: &Engine, image: &str) -> Result<()> {
    let mut progress = printer.pull_progress(image);
    let mut stream = std::pin::pin!(engine.pull_image(image));
    while let Some(event) = stream.next().await {
        match event {
            Ok(e) => progress.update(e.layer.as_deref(), &e.status, e.current, e.total),
            Err(e) => {
                progress.finish(false);
                return Err(e);
            }
        }
    }
    progress.finish(true);
    Ok(())
}
