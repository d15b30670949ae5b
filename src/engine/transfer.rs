//! Moving data in and out of containers: streaming an exec's stdout (a dump), feeding an
//! exec's stdin (a restore), and files through the archive API. Memory stays flat: bytes
//! pass through in the engine's chunks.

use super::client::Engine;
use super::errors::engine_error;
use crate::error::{CtlError, Result};
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters::{DownloadFromContainerOptionsBuilder, UploadToContainerOptionsBuilder};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// A running exec whose stdout is read as a stream; stderr is collected (bounded).
pub struct ExecStream {
    exec_id: String,
    output: Pin<Box<dyn Stream<Item = std::result::Result<LogOutput, bollard::errors::Error>> + Send>>,
    pub stderr: String,
}

/// Most stderr an exec may print before the rest is dropped (it is for error messages).
const STDERR_LIMIT: usize = 64 * 1024;

impl ExecStream {
    /// The next stdout chunk; stderr chunks are kept aside. None at the end.
    pub async fn next_stdout(&mut self) -> Result<Option<Bytes>> {
        while let Some(item) = self.output.next().await {
            match item.map_err(|e| engine_error("the exec stream broke", e))? {
                LogOutput::StdErr { message } => {
                    if self.stderr.len() < STDERR_LIMIT {
                        self.stderr.push_str(&String::from_utf8_lossy(&message));
                    }
                }
                other => return Ok(Some(other.into_bytes())),
            }
        }
        Ok(None)
    }

    /// The exit code, once the stream has ended.
    pub async fn exit_code(&self, engine: &Engine) -> Result<i64> {
        engine.exec_exit_code(&self.exec_id).await
    }

    /// The exec's id, for its exit code once this stream has been handed on.
    pub fn id(&self) -> &str {
        &self.exec_id
    }
}

fn exec_options(cmd: &[&str], stdin: bool) -> CreateExecOptions<String> {
    CreateExecOptions {
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        attach_stdin: Some(stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        ..Default::default()
    }
}

impl Engine {
    /// Starts `cmd` in the container and returns its output as a stream.
    pub async fn exec_stream(&self, id: &str, cmd: &[&str]) -> Result<ExecStream> {
        let what = || format!("cannot run {} in {id}", cmd.first().unwrap_or(&""));
        let exec = self
            .docker
            .create_exec(id, exec_options(cmd, false))
            .await
            .map_err(|e| engine_error(&what(), e))?;
        match self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(|e| engine_error(&what(), e))?
        {
            StartExecResults::Attached { output, .. } => Ok(ExecStream {
                exec_id: exec.id,
                output,
                stderr: String::new(),
            }),
            StartExecResults::Detached => Err(CtlError::failure(what()).cause("the exec detached")),
        }
    }

    /// The exit code of an exec that has ended (-1 while it runs).
    pub async fn exec_exit_code(&self, exec_id: &str) -> Result<i64> {
        let inspect = self
            .docker
            .inspect_exec(exec_id)
            .await
            .map_err(|e| engine_error("cannot inspect the exec", e))?;
        Ok(inspect.exit_code.unwrap_or(-1))
    }

    /// Runs `cmd` with `input` on its stdin; returns (exit code, stdout, stderr).
    pub async fn exec_with_input(
        &self,
        id: &str,
        cmd: &[&str],
        input: impl AsyncRead + Unpin,
        progress: impl FnMut(u64),
    ) -> Result<(i64, String, String)> {
        self.exec_with_input_as(id, cmd, input, progress, &mut |_| {})
            .await
    }

    /// `exec_with_input`, telling `started` the exec's id first: a caller that may drop this
    /// future can then wait for the command to end (`wait_exec_gone`) before touching the
    /// same data again.
    pub async fn exec_with_input_as(
        &self,
        id: &str,
        cmd: &[&str],
        mut input: impl AsyncRead + Unpin,
        mut progress: impl FnMut(u64),
        started: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(i64, String, String)> {
        let what = || format!("cannot run {} in {id}", cmd.first().unwrap_or(&""));
        let exec = self
            .docker
            .create_exec(id, exec_options(cmd, true))
            .await
            .map_err(|e| engine_error(&what(), e))?;
        started(&exec.id);
        let StartExecResults::Attached {
            mut output,
            input: mut stdin,
        } = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(|e| engine_error(&what(), e))?
        else {
            return Err(CtlError::failure(what()).cause("the exec detached"));
        };
        // Read the output while writing the input, or a chatty command could block on a full pipe.
        let reader = async {
            let (mut out, mut err) = (String::new(), String::new());
            while let Some(item) = output.next().await {
                match item {
                    Ok(LogOutput::StdErr { message }) if err.len() < STDERR_LIMIT => {
                        err.push_str(&String::from_utf8_lossy(&message))
                    }
                    Ok(other) if out.len() < STDERR_LIMIT => {
                        out.push_str(&String::from_utf8_lossy(&other.into_bytes()))
                    }
                    Ok(_) => {}
                    Err(e) => return Err(engine_error(&what(), e)),
                }
            }
            Ok((out, err))
        };
        let writer = async {
            let mut buf = vec![0u8; 256 * 1024];
            let mut sent = 0u64;
            loop {
                let n = input
                    .read(&mut buf)
                    .await
                    .map_err(|e| CtlError::failure("cannot read the backup").cause(e))?;
                if n == 0 {
                    break;
                }
                stdin
                    .write_all(&buf[..n])
                    .await
                    .map_err(|e| CtlError::failure(what()).cause(e))?;
                sent += n as u64;
                progress(sent);
            }
            stdin
                .shutdown()
                .await
                .map_err(|e| CtlError::failure(what()).cause(e))?;
            Ok::<_, CtlError>(())
        };
        let (written, read) = tokio::join!(writer, reader);
        written?;
        let (out, err) = read?;
        let inspect = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .map_err(|e| engine_error(&what(), e))?;
        Ok((inspect.exit_code.unwrap_or(-1), out, err))
    }

    /// Waits until the exec `exec_id` is no longer running, up to `deadline`.
    pub async fn wait_exec_gone(&self, exec_id: &str, deadline: std::time::Duration) -> Result<()> {
        let until = std::time::Instant::now()
            .checked_add(deadline)
            .unwrap_or_else(std::time::Instant::now);
        loop {
            match self.docker.inspect_exec(exec_id).await {
                Ok(e) if e.running == Some(true) => {}
                Ok(_) => return Ok(()),
                Err(e) if super::containers::is_status(&e, 404) => return Ok(()),
                Err(e) => return Err(engine_error("cannot inspect the exec", e)),
            }
            if std::time::Instant::now() >= until {
                return Err(CtlError::failure(format!(
                    "the interrupted command (exec {}) was still running after {}",
                    &exec_id[..exec_id.len().min(12)],
                    humantime::format_duration(deadline)
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// A path in the container as a tar stream (the archive API).
    pub fn download(&self, id: &str, path: &str) -> impl Stream<Item = Result<Bytes>> + use<> {
        let options = DownloadFromContainerOptionsBuilder::default().path(path).build();
        let what = format!("cannot copy {path} out of {id}");
        self.docker
            .download_from_container(id, Some(options))
            .map(move |r| r.map_err(|e| engine_error(&what, e)))
    }

    /// Extracts a tar archive into `dir` of the container; works on a stopped container.
    pub async fn upload(&self, id: &str, dir: &str, tar: Bytes) -> Result<()> {
        let options = UploadToContainerOptionsBuilder::default().path(dir).build();
        self.docker
            .upload_to_container(id, Some(options), bollard::body_full(tar))
            .await
            .map_err(|e| engine_error(&format!("cannot copy into {dir} of {id}"), e))
    }
}

impl Engine {
    /// Runs `cmd` in a one-off container of `image` with `volume` mounted at `target` and no
    /// network, waits for it and removes it; returns its exit code.
    pub async fn run_oneoff(
        &self,
        project: &str,
        image: &str,
        cmd: &[&str],
        volume: &str,
        target: &str,
    ) -> Result<i64> {
        use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            entrypoint: Some(cmd.iter().map(|s| s.to_string()).collect()),
            cmd: Some(Vec::new()),
            user: Some("0".into()),
            network_disabled: Some(true),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                mounts: Some(vec![Mount {
                    typ: Some(MountType::VOLUME),
                    source: Some(volume.to_string()),
                    target: Some(target.to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = self.create_oneoff(project, "oneoff", body).await?;
        let undo = self.remove_on_exit(&id, "oneoff");
        let result = async {
            self.start(&id).await?;
            self.wait_exit(&id).await
        }
        .await;
        let _ = undo.run_now(&crate::output::Printer::silent()).await;
        result
    }

    /// Like `upload`, from a stream of tar bytes (constant memory for large files).
    pub async fn upload_stream(
        &self,
        id: &str,
        dir: &str,
        tar: impl Stream<Item = std::result::Result<Bytes, std::io::Error>> + Send + 'static,
    ) -> Result<()> {
        let options = UploadToContainerOptionsBuilder::default().path(dir).build();
        self.docker
            .upload_to_container(id, Some(options), bollard::body_try_stream(tar))
            .await
            .map_err(|e| engine_error(&format!("cannot copy into {dir} of {id}"), e))
    }
}

impl Engine {
    /// A throwaway container of `image` with no network (loopback only), for a deep verify.
    /// The caller removes it with `remove`.
    pub async fn create_isolated(&self, project: &str, image: &str, env: Vec<String>) -> Result<String> {
        use bollard::models::{ContainerCreateBody, HostConfig};
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            env: Some(env),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = self.create_oneoff(project, "verify", body).await?;
        if let Err(e) = self.start(&id).await {
            let _ = self.remove(&id).await;
            return Err(e);
        }
        Ok(id)
    }
}

impl Engine {
    /// Creates, starts and waits for a one-off container; returns its exit code and last log
    /// lines, and removes it.
    pub async fn run_plan(
        &self,
        plan: &super::spec::ContainerPlan,
        log_lines: usize,
    ) -> Result<(i64, Vec<String>)> {
        let id = self.create(plan).await?;
        let undo = self.remove_on_exit(&id, &plan.name);
        let result = async {
            self.start(&id).await?;
            let code = self.wait_exit(&id).await?;
            Ok((code, self.log_tail(&id, log_lines).await.unwrap_or_default()))
        }
        .await;
        let _ = undo.run_now(&crate::output::Printer::silent()).await;
        result
    }
}

impl Engine {
    /// Waits for a started container to exit and returns its exit code.
    async fn wait_exit(&self, id: &str) -> Result<i64> {
        use bollard::query_parameters::WaitContainerOptionsBuilder;
        let mut wait = std::pin::pin!(
            self.docker
                .wait_container(id, Some(WaitContainerOptionsBuilder::default().build()))
        );
        match wait.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            // The engine reports a non-zero exit as an error; it is an answer here.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(engine_error(&format!("waiting for {id} failed"), e)),
            None => Ok(-1),
        }
    }
}

impl Engine {
    /// Creates `<project>-<kind>-<pid>` with the labels that mark a one-off container of the
    /// project (so `status`, `ps` and the tests' cleanup see it for what it is).
    async fn create_oneoff(
        &self,
        project: &str,
        kind: &str,
        mut body: bollard::models::ContainerCreateBody,
    ) -> Result<String> {
        use bollard::query_parameters::CreateContainerOptionsBuilder;
        let mut labels = self.owner.clone();
        labels.extend([
            (super::labels::PROJECT.to_string(), project.to_string()),
            (super::labels::ONEOFF.to_string(), "True".to_string()),
            (super::labels::MANAGED_BY.to_string(), "pricescan-ctl".to_string()),
        ]);
        body.labels = Some(labels);
        let name = format!("{project}-{kind}-{}", std::process::id());
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| engine_error(&format!("cannot create the {kind} container"), e))?;
        Ok(created.id)
    }
}

impl Engine {
    /// Registers the removal of a one-off container with the clean-up path, so that a signal
    /// that drops the caller half-way still removes it.
    pub fn remove_on_exit(&self, id: &str, what: &str) -> crate::sys::undo::Pending {
        use futures_util::FutureExt;
        let (engine, id) = (self.clone(), id.to_string());
        crate::sys::undo::on_exit(format!("remove the one-off container {what}"), move |_| {
            async move { engine.remove(&id).await }.boxed()
        })
    }
}

impl Engine {
    /// Runs `script` (sh) in a one-off container of `image` attached to `network` (an
    /// attachable overlay on swarm), and returns its exit code and output lines. The probes
    /// of services that publish nothing go this way, from inside their network.
    pub async fn run_attached(
        &self,
        project: &str,
        image: &str,
        network: &str,
        script: &str,
    ) -> Result<(i64, Vec<String>)> {
        use bollard::models::{ContainerCreateBody, HostConfig};
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            entrypoint: Some(vec!["sh".into(), "-c".into(), script.to_string()]),
            cmd: Some(Vec::new()),
            host_config: Some(HostConfig {
                network_mode: Some(network.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = self.create_oneoff(project, "probe", body).await?;
        let undo = self.remove_on_exit(&id, "probe");
        let result = async {
            self.start(&id).await?;
            let code = self.wait_exit(&id).await?;
            Ok((code, self.log_tail(&id, 64).await.unwrap_or_default()))
        }
        .await;
        let _ = undo.run_now(&crate::output::Printer::silent()).await;
        result
    }
}
