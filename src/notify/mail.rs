//! Email through lettre, the only importer of it: STARTTLS required on `smtp://`, TLS on
//! `smtps://`, plaintext only with `smtp+insecure://`.

use super::message::{DEADLINE, Event};
use crate::stack::notify::{Security, Smtp};
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

pub async fn send(smtp: &Smtp, event: &Event) -> Result<(), String> {
    let message = message(smtp, event)?;
    let builder = match smtp.security {
        Security::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host),
        Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host),
        Security::Plain => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            &smtp.host,
        )),
    }
    .map_err(|e| format!("cannot set up TLS for {}: {e}", smtp.host))?;
    let mut builder = builder.port(smtp.port).timeout(Some(DEADLINE));
    if let (Some(user), Some(password)) = (&smtp.user, &smtp.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    builder
        .build()
        .send(message)
        .await
        .map(drop)
        .map_err(|e| format!("{}:{} did not take the mail: {e}", smtp.host, smtp.port))
}

fn message(smtp: &Smtp, event: &Event) -> Result<Message, String> {
    let mut builder = Message::builder()
        .from(smtp.from.parse().map_err(|e| format!("NOTIFY_EMAIL_FROM: {e}"))?)
        .subject(format!("[{}] {}: {}", event.project, event.event, event.summary))
        .header(ContentType::TEXT_PLAIN);
    for to in &smtp.to {
        builder = builder.to(to.parse().map_err(|e| format!("NOTIFY_EMAIL_TO {to:?}: {e}"))?);
    }
    builder.body(event.text()).map_err(|e| e.to_string())
}
