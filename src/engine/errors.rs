//! Turning bollard's errors into operator-facing errors with the right exit code.

use crate::error::{CtlError, ExitStatus};
use bollard::errors::Error;

/// One line that says what the engine answered.
pub fn describe(e: &Error) -> String {
    match e {
        Error::DockerResponseServerError { status_code, message } => {
            format!("engine answered {status_code}: {message}")
        }
        Error::RequestTimeoutError => "the engine did not answer in time".to_string(),
        Error::SocketNotFoundError(path) => format!("no socket at {path}"),
        other => other.to_string(),
    }
}

/// Whether the error means the engine could not be reached at all.
fn is_connection_error(e: &Error) -> bool {
    matches!(
        e,
        Error::SocketNotFoundError(_)
            | Error::HyperResponseError { .. }
            | Error::IOError { .. }
            | Error::HttpClientError { .. }
    ) || describe(e).contains("onnection refused")
}

/// An engine call that failed: exit 69 if the engine went away, 1 otherwise.
pub fn engine_error(what: &str, e: Error) -> CtlError {
    let status = if is_connection_error(&e) {
        ExitStatus::EngineUnreachable
    } else {
        ExitStatus::Failure
    };
    CtlError::new(status, what).cause(describe(&e))
}

/// For a unix socket, what connecting to it says ("Permission denied", "Connection
/// refused"): the HTTP client does not pass that on.
pub fn socket_problem(host: &str) -> Option<String> {
    let path = host.strip_prefix("unix://")?;
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => None,
        Err(e) => Some(format!("{path}: {e}")),
    }
}

pub fn connect_hint(host: &str) -> String {
    if host.starts_with("unix://") || host.starts_with('/') {
        let path = host.trim_start_matches("unix://");
        match std::fs::metadata(path) {
            Err(_) => format!(
                "no engine socket at {path}: start the Docker daemon (systemctl start docker) or set --docker-host"
            ),
            Ok(_) => "is the daemon running, and may this user use its socket? (root, or the docker group)"
                .to_string(),
        }
    } else {
        format!("check that an engine listens at {host}, or unset DOCKER_HOST to use the local socket")
    }
}
