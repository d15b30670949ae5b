//! Alertmanager's configuration, rendered from the same NOTIFY_* channels as pricescan-ctl's
//! own events (DESIGN §10): one receiver with every configured channel, critical alerts
//! repeated hourly and warnings every four hours, warnings held back while a critical alert
//! fires. Pure: `setup` writes the result to config/alertmanager/alertmanager.yml.

use super::notify::{Channels, Security};
use serde_json::{Value, json};

pub const CONFIG_PATH: &str = "alertmanager/alertmanager.yml";

/// The YAML, and warnings about channels Alertmanager cannot use.
pub fn render(channels: &Channels) -> (String, Vec<String>) {
    let mut warnings = Vec::new();
    let mut receiver = json!({ "name": "pricescan" });
    if channels.enabled {
        fill(&mut receiver, channels, &mut warnings);
    } else {
        warnings.push("NOTIFICATIONS_ENABLED is false: Alertmanager keeps alerts to itself".into());
    }
    let config = json!({
        "route": {
            "receiver": "pricescan",
            "group_by": ["alertname", "project"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                { "matchers": ["severity=\"critical\""], "receiver": "pricescan", "repeat_interval": "1h" }
            ]
        },
        "inhibit_rules": [{
            "source_matchers": ["severity=\"critical\""],
            "target_matchers": ["severity=\"warning\""],
            "equal": ["project"]
        }],
        "receivers": [receiver]
    });
    let yaml = serde_yaml_ng::to_string(&config).unwrap_or_default();
    (
        format!("# Rendered by `pricescan-ctl setup` from the NOTIFY_* variables of .env.prod.\n{yaml}"),
        warnings,
    )
}

fn fill(receiver: &mut Value, channels: &Channels, warnings: &mut Vec<String>) {
    if let Some(url) = &channels.webhook {
        receiver["webhook_configs"] = json!([{ "url": url.as_str(), "send_resolved": true }]);
    }
    if let Some(url) = &channels.slack {
        receiver["slack_configs"] = json!([{
            "api_url": url.as_str(),
            "send_resolved": true,
            "title": "[{{ .CommonLabels.project }}] {{ .CommonLabels.alertname }} ({{ .Status }})",
            "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ .Annotations.description }}\n{{ end }}"
        }]);
    }
    if let Some(t) = &channels.telegram {
        match t.chat_id.parse::<i64>() {
            Ok(chat_id) => {
                receiver["telegram_configs"] = json!([{
                    "bot_token": t.token,
                    "chat_id": chat_id,
                    "api_url": t.api.as_str().trim_end_matches('/'),
                    "send_resolved": true
                }]);
            }
            Err(_) => warnings.push(format!(
                "Alertmanager needs a numeric NOTIFY_TELEGRAM_CHAT_ID; {:?} is left to pricescan-ctl's own events",
                t.chat_id
            )),
        }
    }
    if let Some(smtp) = &channels.smtp {
        let mut email = json!({
            "to": smtp.to.join(", "),
            "from": smtp.from,
            "smarthost": format!("{}:{}", smtp.host, smtp.port),
            "require_tls": smtp.security == Security::StartTls,
            "send_resolved": true
        });
        if let (Some(user), Some(password)) = (&smtp.user, &smtp.password) {
            email["auth_username"] = json!(user);
            email["auth_password"] = json!(password);
        }
        receiver["email_configs"] = json!([email]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::Environment;
    use std::path::Path;

    fn channels(text: &str) -> Channels {
        Channels::from_env(&Environment::parse(Path::new("/p/.env.prod"), text).unwrap()).unwrap()
    }

    #[test]
    fn every_channel_becomes_a_receiver_config() {
        let (yaml, warnings) = render(&channels(
            "NOTIFY_WEBHOOK_URL=http://127.0.0.1:9/hook\nNOTIFY_SLACK_WEBHOOK_URL=https://hooks.example/s\n\
             NOTIFY_TELEGRAM_BOT_TOKEN=1:tok\nNOTIFY_TELEGRAM_CHAT_ID=-42\n\
             NOTIFY_SMTP_URL=smtp://u:pw@mail.example:2587\nNOTIFY_EMAIL_FROM=a@example.com\nNOTIFY_EMAIL_TO=b@example.com\n",
        ));
        assert!(warnings.is_empty(), "{warnings:?}");
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
        let r = &v["receivers"][0];
        assert_eq!(
            r["webhook_configs"][0]["url"].as_str(),
            Some("http://127.0.0.1:9/hook")
        );
        assert_eq!(r["telegram_configs"][0]["chat_id"].as_i64(), Some(-42));
        assert_eq!(
            r["email_configs"][0]["smarthost"].as_str(),
            Some("mail.example:2587")
        );
        assert_eq!(r["email_configs"][0]["require_tls"].as_bool(), Some(true));
        assert_eq!(v["route"]["routes"][0]["repeat_interval"].as_str(), Some("1h"));
    }

    #[test]
    fn disabled_or_unusable_channels_warn() {
        let (yaml, warnings) = render(&channels(
            "NOTIFICATIONS_ENABLED=false\nNOTIFY_WEBHOOK_URL=http://h.example/x\n",
        ));
        assert!(!yaml.contains("webhook_configs") && warnings.len() == 1);
        let (_, warnings) = render(&channels(
            "NOTIFY_TELEGRAM_BOT_TOKEN=1:t\nNOTIFY_TELEGRAM_CHAT_ID=@ops\n",
        ));
        assert!(warnings[0].contains("numeric"));
    }
}
