//! The HTTP channels: a generic JSON webhook, a Slack-compatible webhook, a Microsoft Teams
//! Workflows webhook (an Adaptive Card), and Telegram's `sendMessage`. Errors name the status or the failure, never the URL (it holds the secret).

use super::message::{DEADLINE, Event};
use crate::stack::notify::Telegram;
use url::Url;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(DEADLINE)
        .user_agent(concat!("pricescan-ctl/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

async fn post(
    client: &reqwest::Client,
    url: Url,
    body: serde_json::Value,
) -> Result<reqwest::Response, String> {
    let response = client
        .post(url)
        .json(&body)
        .send()
        .await
        .map_err(|e| describe(e.without_url()))?;
    match response.status() {
        s if s.is_success() => Ok(response),
        s => Err(format!("the server answered HTTP {}", s.as_u16())),
    }
}

fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "no answer in time".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        e.to_string()
    }
}

pub async fn webhook(client: &reqwest::Client, url: &Url, event: &Event) -> Result<(), String> {
    let body = serde_json::to_value(event).map_err(|e| e.to_string())?;
    post(client, url.clone(), body).await.map(drop)
}

pub async fn slack(client: &reqwest::Client, url: &Url, event: &Event) -> Result<(), String> {
    post(client, url.clone(), serde_json::json!({ "text": event.text() }))
        .await
        .map(drop)
}

pub async fn teams(client: &reqwest::Client, url: &Url, event: &Event) -> Result<(), String> {
    post(client, url.clone(), event.adaptive_card()).await.map(drop)
}

pub async fn telegram(client: &reqwest::Client, t: &Telegram, event: &Event) -> Result<(), String> {
    // By hand, not Url::join: the token's colon would read as a scheme.
    let base = t.api.as_str().trim_end_matches('/');
    let url = Url::parse(&format!("{base}/bot{}/sendMessage", t.token))
        .map_err(|_| "NOTIFY_TELEGRAM_BOT_TOKEN does not fit in a URL".to_string())?;
    let body =
        serde_json::json!({ "chat_id": t.chat_id, "text": event.text(), "disable_web_page_preview": true });
    let response = post(client, url, body).await?;
    let answer: serde_json::Value = response.json().await.map_err(|e| describe(e.without_url()))?;
    match answer["ok"].as_bool() {
        Some(true) => Ok(()),
        _ => Err(format!(
            "Telegram refused the message: {}",
            answer["description"].as_str().unwrap_or("no reason given")
        )),
    }
}
