//! Delivery to every configured channel, concurrently, each attempt under a deadline.

use super::message::{DEADLINE, Event};
use super::{http, mail};
use crate::stack::notify::Channels;
use std::time::Duration;

const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Each configured channel's outcome, in a stable order.
pub async fn send(channels: &Channels, event: &Event) -> Vec<(&'static str, Result<(), String>)> {
    let client = http::client();
    let mut jobs: Vec<(
        &'static str,
        futures_util::future::BoxFuture<'_, Result<(), String>>,
    )> = Vec::new();
    if let Some(url) = &channels.webhook {
        jobs.push((
            "webhook",
            Box::pin(retried(|| http::webhook(&client, url, event))),
        ));
    }
    if let Some(url) = &channels.slack {
        jobs.push(("slack", Box::pin(retried(|| http::slack(&client, url, event)))));
    }
    if let Some(url) = &channels.teams {
        jobs.push(("teams", Box::pin(retried(|| http::teams(&client, url, event)))));
    }
    if let Some(t) = &channels.telegram {
        jobs.push((
            "telegram",
            Box::pin(retried(|| http::telegram(&client, t, event))),
        ));
    }
    if let Some(smtp) = &channels.smtp {
        jobs.push(("email", Box::pin(retried(|| mail::send(smtp, event)))));
    }
    let (names, futures): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
    names
        .into_iter()
        .zip(futures_util::future::join_all(futures).await)
        .collect()
}

/// Two attempts, each under the deadline.
async fn retried<F, Fut>(attempt: F) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut last = String::new();
    for n in 0..2 {
        if n > 0 {
            tokio::time::sleep(RETRY_AFTER).await;
        }
        match tokio::time::timeout(DEADLINE, attempt()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => last = e,
            Err(_) => last = format!("no answer within {}s", DEADLINE.as_secs()),
        }
    }
    Err(format!("{last} (tried twice)"))
}
