//! The notification channels of `.env.prod` (DESIGN §10), checked as a whole: a generic
//! JSON webhook, a Slack-compatible webhook, a Telegram bot and SMTP email, gated by
//! NOTIFICATIONS_ENABLED and NOTIFY_ON. Pure: nothing here sends anything.

use super::environment::Environment;
use crate::error::ConfigError;
use std::fmt;
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Failure,
    Always,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtp://`: STARTTLS, and refused without it.
    StartTls,
    /// `smtps://`: TLS from the first byte.
    Tls,
    /// `smtp+insecure://`: plaintext, for a relay on this host only.
    Plain,
}

#[derive(Clone)]
pub struct Smtp {
    pub security: Security,
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
}

#[derive(Clone)]
pub struct Telegram {
    pub api: Url,
    pub token: String,
    pub chat_id: String,
}

/// The configured channels. Debug never shows a URL, token or password.
#[derive(Clone)]
pub struct Channels {
    pub enabled: bool,
    pub when: When,
    pub webhook: Option<Url>,
    pub slack: Option<Url>,
    /// A Microsoft Teams Workflows webhook, which takes an Adaptive Card.
    pub teams: Option<Url>,
    pub telegram: Option<Telegram>,
    pub smtp: Option<Smtp>,
}

impl fmt::Debug for Channels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channels")
            .field("enabled", &self.enabled)
            .field("when", &self.when)
            .field("names", &self.names())
            .finish()
    }
}

impl Channels {
    pub fn from_env(env: &Environment) -> Result<Self, ConfigError> {
        let get = |key: &str| env.get(key).map(|v| v.trim().to_string()).unwrap_or_default();
        let at = |key: &str| env.location_of(key);
        let enabled = match get("NOTIFICATIONS_ENABLED").to_ascii_lowercase().as_str() {
            "" | "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            other => {
                return Err(ConfigError::new(format!(
                    "NOTIFICATIONS_ENABLED must be true or false (got {other:?})"
                ))
                .at(at("NOTIFICATIONS_ENABLED")));
            }
        };
        let when = match get("NOTIFY_ON").to_ascii_lowercase().as_str() {
            "" | "failure" => When::Failure,
            "always" => When::Always,
            other => {
                return Err(
                    ConfigError::new(format!("NOTIFY_ON must be failure or always (got {other:?})"))
                        .at(at("NOTIFY_ON")),
                );
            }
        };
        let http = |key: &str| -> Result<Option<Url>, ConfigError> {
            match get(key).as_str() {
                "" => Ok(None),
                v => parse_http(key, v).map(Some).map_err(|e| e.at(at(key))),
            }
        };
        Ok(Self {
            enabled,
            when,
            webhook: http("NOTIFY_WEBHOOK_URL")?,
            slack: http("NOTIFY_SLACK_WEBHOOK_URL")?,
            teams: http("NOTIFY_TEAMS_WEBHOOK_URL")?,
            telegram: telegram(&get, &at)?,
            smtp: smtp(&get, &at)?,
        })
    }

    /// The configured channels' names, for messages.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.webhook.is_some() {
            names.push("webhook");
        }
        if self.slack.is_some() {
            names.push("slack");
        }
        if self.teams.is_some() {
            names.push("teams");
        }
        if self.telegram.is_some() {
            names.push("telegram");
        }
        if self.smtp.is_some() {
            names.push("email");
        }
        names
    }
}

/// An http(s) URL, without the value in the message: it may carry a secret path.
fn parse_http(key: &str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|e| {
        ConfigError::new(format!("{key} is not a valid URL ({e})")).hint("write it as https://host/path")
    })?;
    match url.scheme() {
        "http" | "https" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(url),
        "http" | "https" => Err(ConfigError::new(format!("{key} has no host"))),
        other => Err(ConfigError::new(format!(
            "{key} has the unknown scheme {other:?}; only http and https are sent to"
        ))),
    }
}

type Get<'a> = dyn Fn(&str) -> String + 'a;

fn telegram(get: &Get, at: &dyn Fn(&str) -> String) -> Result<Option<Telegram>, ConfigError> {
    let (token, chat_id) = (get("NOTIFY_TELEGRAM_BOT_TOKEN"), get("NOTIFY_TELEGRAM_CHAT_ID"));
    match (token.is_empty(), chat_id.is_empty()) {
        (true, true) => return Ok(None),
        (false, true) => {
            return Err(ConfigError::new(
                "NOTIFY_TELEGRAM_BOT_TOKEN is set but NOTIFY_TELEGRAM_CHAT_ID is empty",
            )
            .at(at("NOTIFY_TELEGRAM_CHAT_ID"))
            .hint("the chat id is the number the bot's getUpdates shows for your chat"));
        }
        (true, false) => {
            return Err(ConfigError::new(
                "NOTIFY_TELEGRAM_CHAT_ID is set but NOTIFY_TELEGRAM_BOT_TOKEN is empty",
            )
            .at(at("NOTIFY_TELEGRAM_BOT_TOKEN")));
        }
        (false, false) => {}
    }
    let api = match get("NOTIFY_TELEGRAM_API").as_str() {
        "" => Url::parse("https://api.telegram.org").expect("a valid URL"),
        v => parse_http("NOTIFY_TELEGRAM_API", v).map_err(|e| e.at(at("NOTIFY_TELEGRAM_API")))?,
    };
    Ok(Some(Telegram { api, token, chat_id }))
}

fn smtp(get: &Get, at: &dyn Fn(&str) -> String) -> Result<Option<Smtp>, ConfigError> {
    let value = get("NOTIFY_SMTP_URL");
    if value.is_empty() {
        return Ok(None);
    }
    let hint = "write it as smtp://USER:PASSWORD@HOST:587 (STARTTLS), smtps://...:465, or smtp+insecure://127.0.0.1:25 for a local relay";
    let bad = |what: String| ConfigError::new(what).at(at("NOTIFY_SMTP_URL")).hint(hint);
    let url = Url::parse(&value).map_err(|e| bad(format!("NOTIFY_SMTP_URL is not a valid URL ({e})")))?;
    let (security, default_port) = match url.scheme() {
        "smtp" => (Security::StartTls, 587),
        "smtps" => (Security::Tls, 465),
        "smtp+insecure" => (Security::Plain, 25),
        other => return Err(bad(format!("NOTIFY_SMTP_URL has the unknown scheme {other:?}"))),
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("NOTIFY_SMTP_URL has no host".into()))?
        .to_string();
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let from = get("NOTIFY_EMAIL_FROM");
    let to: Vec<String> = get("NOTIFY_EMAIL_TO")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if to.is_empty() {
        return Err(
            ConfigError::new("NOTIFY_SMTP_URL is set but NOTIFY_EMAIL_TO is empty")
                .at(at("NOTIFY_EMAIL_TO"))
                .hint("set NOTIFY_EMAIL_TO to one or more addresses, comma-separated"),
        );
    }
    for address in to.iter().chain(std::iter::once(&from)) {
        if !looks_like_address(address) {
            return Err(ConfigError::new(format!(
                "{address:?} is not an email address (NOTIFY_EMAIL_FROM and NOTIFY_EMAIL_TO)"
            ))
            .at(at("NOTIFY_EMAIL_FROM")));
        }
    }
    Ok(Some(Smtp {
        security,
        port: url.port().unwrap_or(default_port),
        user: Some(decode(url.username())).filter(|u| !u.is_empty()),
        password: url.password().map(decode),
        host,
        from,
        to,
    }))
}

fn looks_like_address(s: &str) -> bool {
    let address = s.rsplit_once('<').map_or(s, |(_, a)| a.trim_end_matches('>'));
    matches!(address.split_once('@'), Some((user, domain)) if !user.is_empty() && domain.contains('.') || domain == "localhost")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn env(text: &str) -> Environment {
        Environment::parse(Path::new("/p/.env.prod"), text).unwrap()
    }

    #[test]
    fn nothing_configured() {
        let c = Channels::from_env(&env("")).unwrap();
        assert!(c.enabled && c.when == When::Failure && c.names().is_empty());
    }

    #[test]
    fn every_channel() {
        let c = Channels::from_env(&env(
            "NOTIFY_ON=always\nNOTIFY_WEBHOOK_URL=https://hooks.example.com/abc\n\
             NOTIFY_SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T/B/X\n\
             NOTIFY_TEAMS_WEBHOOK_URL=https://prod-1.westeurope.logic.azure.com/workflows/w/triggers/manual/paths/invoke?sig=S\n\
             NOTIFY_TELEGRAM_BOT_TOKEN=123:abc\nNOTIFY_TELEGRAM_CHAT_ID=-100\n\
             NOTIFY_SMTP_URL=smtp://ops%40example.com:p%40ss@mail.example.com\n\
             NOTIFY_EMAIL_FROM=PriceScan <ops@example.com>\nNOTIFY_EMAIL_TO=a@example.com, b@example.com\n",
        ))
        .unwrap();
        assert_eq!(c.names(), vec!["webhook", "slack", "teams", "telegram", "email"]);
        let smtp = c.smtp.as_ref().unwrap();
        assert_eq!((smtp.security, smtp.port), (Security::StartTls, 587));
        assert_eq!(smtp.user.as_deref(), Some("ops@example.com"));
        assert_eq!(smtp.password.as_deref(), Some("p@ss"));
        assert_eq!(smtp.to.len(), 2);
        assert_eq!(c.telegram.unwrap().api.as_str(), "https://api.telegram.org/");
        assert!(
            !format!(
                "{:?}",
                Channels::from_env(&env("NOTIFY_WEBHOOK_URL=https://h.example/secretpath\n")).unwrap()
            )
            .contains("secretpath")
        );
    }

    #[test]
    fn bad_inputs() {
        for (text, needle) in [
            ("NOTIFY_WEBHOOK_URL=not a url\n", "not a valid URL"),
            ("NOTIFY_WEBHOOK_URL=ftp://x.example/y\n", "unknown scheme"),
            (
                "NOTIFY_SMTP_URL=smtpx://h\nNOTIFY_EMAIL_TO=a@b.example\nNOTIFY_EMAIL_FROM=c@d.example\n",
                "unknown scheme",
            ),
            (
                "NOTIFY_SMTP_URL=smtp://h.example\nNOTIFY_EMAIL_FROM=c@d.example\n",
                "NOTIFY_EMAIL_TO is empty",
            ),
            ("NOTIFY_TELEGRAM_BOT_TOKEN=1:a\n", "CHAT_ID is empty"),
            ("NOTIFY_ON=sometimes\n", "NOTIFY_ON"),
            ("NOTIFICATIONS_ENABLED=maybe\n", "NOTIFICATIONS_ENABLED"),
        ] {
            let err = Channels::from_env(&env(text)).unwrap_err();
            assert!(err.message.contains(needle), "{text}: {}", err.message);
            assert!(!err.message.contains("not a url") || needle == "not a valid URL");
        }
        let smtp = Channels::from_env(&env(
            "NOTIFY_SMTP_URL=smtp+insecure://127.0.0.1:2525\nNOTIFY_EMAIL_TO=ops@localhost\nNOTIFY_EMAIL_FROM=ctl@localhost\n",
        ))
        .unwrap()
        .smtp
        .unwrap();
        assert_eq!(
            (smtp.security, smtp.port, smtp.user),
            (Security::Plain, 2525, None)
        );
    }
}
