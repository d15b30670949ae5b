//! How pricescan-ctl reaches the engine of each swarm node (DESIGN §11): `SWARM_NODE_ENGINES`
//! (`NODE_ID=URL,...`, keyed by the full node ID because hostnames repeat on cloned machines),
//! else `ssh://$SWARM_SSH_USER@<node address>` (the system ssh, with its keys).

use super::project::Project;
use crate::error::ConfigError;
use std::collections::BTreeMap;

const SCHEMES: [&str; 3] = ["unix://", "tcp://", "ssh://"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeEngines {
    /// Node ID → engine URL, as given.
    pub given: BTreeMap<String, String>,
    pub ssh_user: Option<String>,
}

impl NodeEngines {
    pub fn from_project(project: &Project) -> Result<Self, ConfigError> {
        let text = project.env.get("SWARM_NODE_ENGINES").unwrap_or_default();
        let given = parse(&text).map_err(|e| e.at(project.env.location_of("SWARM_NODE_ENGINES")))?;
        let ssh_user = project
            .env
            .get("SWARM_SSH_USER")
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty());
        Ok(Self { given, ssh_user })
    }

    /// The URL of node `id` at address `addr`.
    pub fn url(&self, id: &str, addr: &str) -> String {
        match (self.given.get(id), &self.ssh_user) {
            (Some(url), _) => url.clone(),
            (None, Some(user)) => format!("ssh://{user}@{addr}"),
            (None, None) => format!("ssh://{addr}"),
        }
    }

    /// Entries naming no node of the swarm: a typo would otherwise fall back to ssh silently.
    pub fn unknown<'a>(&'a self, known: &[&str]) -> Vec<&'a str> {
        self.given
            .keys()
            .filter(|id| !known.contains(&id.as_str()))
            .map(String::as_str)
            .collect()
    }
}

/// `NODE_ID=URL,NODE_ID=URL`; blanks around entries are allowed, an empty value is no entry.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut map = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((id, url)) = entry.split_once('=') else {
            return Err(bad(entry, "expected NODE_ID=URL"));
        };
        let (id, url) = (id.trim(), url.trim());
        if id.len() < 12 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(bad(entry, "the key must be a full node ID (`docker node ls -q`)"));
        }
        if !SCHEMES.iter().any(|s| url.starts_with(s) && url.len() > s.len()) {
            return Err(bad(entry, "the URL must start with unix://, tcp:// or ssh://"));
        }
        if map.insert(id.to_string(), url.to_string()).is_some() {
            return Err(bad(entry, "this node is named twice"));
        }
    }
    Ok(map)
}

fn bad(entry: &str, why: &str) -> ConfigError {
    ConfigError::new(format!("SWARM_NODE_ENGINES entry `{entry}`: {why}"))
        .hint("SWARM_NODE_ENGINES=NODE_ID=ssh://user@10.0.0.2,NODE_ID=tcp://10.0.0.3:2376")
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "n2x0lh4pnbdd4zm2kqbhbyf1j";
    const B: &str = "s3nq1u9wk6r8dj1hrcbb3kz5e";

    #[test]
    fn entries_are_keyed_by_node_id() {
        let map = parse(&format!(" {A}=unix:///tmp/n2.sock , {B}=ssh://ops@10.0.0.3,")).unwrap();
        assert_eq!(map[A], "unix:///tmp/n2.sock");
        assert_eq!(map[B], "ssh://ops@10.0.0.3");
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        for (text, why) in [
            ("vm=ssh://h", "full node ID"),
            (A, "NODE_ID=URL"),
            (&format!("{A}=http://h"), "unix://, tcp:// or ssh://"),
            (&format!("{A}=ssh://"), "unix://, tcp:// or ssh://"),
            (&format!("{A}=ssh://a,{A}=ssh://b"), "named twice"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.message.contains(why), "{text}: {}", e.message);
        }
    }

    #[test]
    fn nodes_without_an_entry_are_reached_over_ssh() {
        let mut engines = NodeEngines {
            given: parse(&format!("{A}=tcp://10.0.0.2:2375")).unwrap(),
            ssh_user: None,
        };
        assert_eq!(engines.url(A, "10.0.0.2"), "tcp://10.0.0.2:2375");
        assert_eq!(engines.url(B, "10.0.0.3"), "ssh://10.0.0.3");
        engines.ssh_user = Some("ops".into());
        assert_eq!(engines.url(B, "10.0.0.3"), "ssh://ops@10.0.0.3");
        assert_eq!(engines.unknown(&[B]), vec![A]);
    }
}
