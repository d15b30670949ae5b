//! Alertmanager's configuration, rendered from the same NOTIFY_* channels as pricescan-ctl's
//! own events (DESIGN §10): one receiver with every configured channel, critical alerts
//! repeated hourly and warnings every four hours, warnings held back while a critical alert
//! fires. Pure: `setup` writes the result to config/alertmanager/alertmanager.yml.

use super::notify::{Channels, Security};
use serde_json::{Value, json};

pub const CONFIG_PATH: &str = "alertmanager/alertmanager.yml";

/// The default image, as docker-compose.prod.yml names it.
pub const DEFAULT_IMAGE: &str = "prom/alertmanager:v0.28.1";

/// The YAML for Alertmanager `image`, and warnings about channels it cannot use.
pub fn render(channels: &Channels, image: &str) -> (String, Vec<String>) {
    let mut warnings = Vec::new();
    let mut receiver = json!({ "name": "pricescan" });
    if channels.enabled {
        fill(&mut receiver, channels, &mut warnings);
        teams(&mut receiver, channels, image, &mut warnings);
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

/// Teams Workflows webhooks came with Alertmanager 0.28 (`msteamsv2_configs`); an older one
/// would refuse the whole file over the unknown key, so it gets none.
fn teams(receiver: &mut Value, channels: &Channels, image: &str, warnings: &mut Vec<String>) {
    let Some(url) = &channels.teams else { return };
    if version(image).is_some_and(|v| v >= (0, 28)) {
        receiver["msteamsv2_configs"] = json!([{ "webhook_url": url.as_str(), "send_resolved": true }]);
    } else {
        warnings.push(format!(
            "Alertmanager before 0.28 cannot post to Teams Workflows ({image}): Teams gets pricescan-ctl's own events only"
        ));
    }
}

/// (major, minor) from an image's tag: `prom/alertmanager:v0.28.1` is (0, 28).
fn version(image: &str) -> Option<(u32, u32)> {
    let (_, tag) = image.rsplit_once(':')?;
    let mut parts = tag.trim_start_matches('v').split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
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
        let (yaml, warnings) = render(
            &channels(
                "NOTIFY_WEBHOOK_URL=http://127.0.0.1:9/hook\nNOTIFY_SLACK_WEBHOOK_URL=https://hooks.example/s\n\
             NOTIFY_TEAMS_WEBHOOK_URL=https://teams.example/w?sig=s\n\
             NOTIFY_TELEGRAM_BOT_TOKEN=1:tok\nNOTIFY_TELEGRAM_CHAT_ID=-42\n\
             NOTIFY_SMTP_URL=smtp://u:pw@mail.example:2587\nNOTIFY_EMAIL_FROM=a@example.com\nNOTIFY_EMAIL_TO=b@example.com\n",
            ),
            DEFAULT_IMAGE,
        );
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
        assert_eq!(
            r["msteamsv2_configs"][0]["webhook_url"].as_str(),
            Some("https://teams.example/w?sig=s")
        );
    }

    #[test]
    fn teams_only_where_alertmanager_knows_workflows() {
        let c = channels("NOTIFY_TEAMS_WEBHOOK_URL=https://teams.example/w?sig=s\n");
        for old in [
            "prom/alertmanager:v0.27.0",
            "pricescan-test/alertmanager:0.25",
            "am:latest",
        ] {
            let (yaml, warnings) = render(&c, old);
            assert!(!yaml.contains("msteams") && warnings[0].contains("0.28"), "{old}");
        }
        let (yaml, warnings) = render(&c, "registry:5000/prom/alertmanager:v0.29.0");
        assert!(yaml.contains("msteamsv2_configs") && warnings.is_empty());
    }

    #[test]
    fn disabled_or_unusable_channels_warn() {
        let (yaml, warnings) = render(
            &channels("NOTIFICATIONS_ENABLED=false\nNOTIFY_WEBHOOK_URL=http://h.example/x\n"),
            DEFAULT_IMAGE,
        );
        assert!(!yaml.contains("webhook_configs") && warnings.len() == 1);
        let (_, warnings) = render(
            &channels("NOTIFY_TELEGRAM_BOT_TOKEN=1:t\nNOTIFY_TELEGRAM_CHAT_ID=@ops\n"),
            DEFAULT_IMAGE,
        );
        assert!(warnings[0].contains("numeric"));
    }
}
