//! Which backups retention keeps: restic's keep-last / daily / weekly / monthly algorithm in
//! UTC, with pre-deploy backups counted apart, and the newest verified backup always kept.

use chrono::{DateTime, Datelike, Utc};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub last: usize,
    pub daily: usize,
    pub weekly: usize,
    pub monthly: usize,
    pub pre_deploy: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            last: 3,
            daily: 7,
            weekly: 5,
            monthly: 12,
            pre_deploy: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub time: DateTime<Utc>,
    pub pre_deploy: bool,
    pub verified: bool,
}

/// Why each backup is kept; a backup with no reason is removed.
pub fn decide(backups: &[Candidate], policy: Policy) -> BTreeMap<String, Vec<String>> {
    let mut reasons: BTreeMap<String, Vec<String>> =
        backups.iter().map(|b| (b.id.clone(), Vec::new())).collect();
    let mut newest_first: Vec<&Candidate> = backups.iter().collect();
    newest_first.sort_by(|a, b| b.time.cmp(&a.time).then(b.id.cmp(&a.id)));
    let (pre, regular): (Vec<&Candidate>, Vec<&Candidate>) = newest_first.iter().partition(|b| b.pre_deploy);
    let mut keep = |b: &Candidate, why: String| reasons.entry(b.id.clone()).or_default().push(why);
    for (i, b) in regular.iter().take(policy.last).enumerate() {
        keep(b, format!("last {} (#{})", policy.last, i + 1));
    }
    type Bucket = fn(&DateTime<Utc>) -> String;
    let rules: [(&str, usize, Bucket); 3] = [
        ("daily", policy.daily, |t| t.format("%Y-%m-%d").to_string()),
        ("weekly", policy.weekly, |t| {
            format!("{}-W{:02}", t.iso_week().year(), t.iso_week().week())
        }),
        ("monthly", policy.monthly, |t| t.format("%Y-%m").to_string()),
    ];
    for (name, count, bucket) in rules {
        let mut seen = BTreeSet::new();
        for b in &regular {
            if seen.len() >= count {
                break;
            }
            let key = bucket(&b.time);
            if seen.insert(key.clone()) {
                keep(b, format!("{name} {key}"));
            }
        }
    }
    for (i, b) in pre.iter().take(policy.pre_deploy).enumerate() {
        keep(b, format!("pre-deploy last {} (#{})", policy.pre_deploy, i + 1));
    }
    if let Some(b) = newest_first.iter().find(|b| b.verified) {
        keep(b, "newest verified".into());
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn nightly_year() -> Vec<Candidate> {
        // One nightly backup at 02:15 UTC every day of 2026, oldest first.
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 2, 15, 0).unwrap();
        (0..365)
            .map(|d| {
                let time = start + Duration::days(d);
                Candidate {
                    id: time.format("%Y%m%dT%H%M%SZ-nightly").to_string(),
                    time,
                    pre_deploy: false,
                    verified: true,
                }
            })
            .collect()
    }

    fn kept(reasons: &BTreeMap<String, Vec<String>>) -> Vec<String> {
        reasons
            .iter()
            .filter(|(_, r)| !r.is_empty())
            .map(|(id, _)| id[..8].to_string())
            .collect()
    }

    #[test]
    fn a_year_of_nightlies_with_the_default_policy() {
        let reasons = decide(&nightly_year(), Policy::default());
        // Daily: the last 7 days (Dec 25-31), which cover last 3.
        // Weekly (ISO weeks, newest backup of each): 2026 has 53 ISO weeks; W53 holds
        // Dec 28-31 (newest Dec 31), then the Sundays Dec 27, 20, 13 and 6 (W52..W49).
        // Monthly: the last day of each month, Jan..Dec 2026.
        let expected = [
            "20260131", "20260228", "20260331", "20260430", "20260531", "20260630", "20260731", "20260831",
            "20260930", "20261031", "20261130", "20261206", "20261213", "20261220", "20261225", "20261226",
            "20261227", "20261228", "20261229", "20261230", "20261231",
        ];
        let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(kept(&reasons), expected);
        let newest = reasons
            .iter()
            .find(|(id, _)| id.starts_with("20261231"))
            .unwrap()
            .1;
        assert!(
            newest.iter().any(|r| r.starts_with("last 3")) && newest.iter().any(|r| r == "newest verified")
        );
    }

    #[test]
    fn pre_deploy_backups_keep_their_own_count() {
        let mut all = nightly_year();
        let t = Utc.with_ymd_and_hms(2026, 12, 31, 12, 0, 0).unwrap();
        for i in 0..12 {
            let time = t + Duration::minutes(i);
            all.push(Candidate {
                id: format!("pre-{i:02}"),
                time,
                pre_deploy: true,
                verified: false,
            });
        }
        let reasons = decide(&all, Policy::default());
        let pre_kept: Vec<&String> = reasons
            .iter()
            .filter(|(id, r)| id.starts_with("pre-") && !r.is_empty())
            .map(|(id, _)| id)
            .collect();
        assert_eq!(pre_kept.len(), 10, "{pre_kept:?}");
        assert!(
            reasons["pre-00"].is_empty() && reasons["pre-01"].is_empty(),
            "the two oldest go"
        );
        // Pre-deploy backups do not push nightlies out of keep-last.
        assert!(
            reasons["20261229T021500Z-nightly"]
                .iter()
                .any(|r| r.starts_with("last 3"))
        );
    }

    #[test]
    fn the_newest_verified_backup_is_never_removed() {
        let start = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let all: Vec<Candidate> = (0..5)
            .map(|i| Candidate {
                id: format!("b{i}"),
                time: start + Duration::hours(i),
                pre_deploy: false,
                verified: i == 0,
            })
            .collect();
        let policy = Policy {
            last: 1,
            daily: 0,
            weekly: 0,
            monthly: 0,
            pre_deploy: 0,
        };
        let reasons = decide(&all, policy);
        assert_eq!(reasons["b4"], vec!["last 1 (#1)".to_string()]);
        assert_eq!(reasons["b0"], vec!["newest verified".to_string()]);
        assert!(reasons["b1"].is_empty() && reasons["b2"].is_empty() && reasons["b3"].is_empty());
    }
}
