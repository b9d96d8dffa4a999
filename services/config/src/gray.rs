//! Gray release: which logic release serves a user.
//!
//! Rules are checked in order of `priority` (lowest first, then `rule_id`);
//! the first rule whose scope and conditions match and whose percentage
//! bucket contains the user decides. A user's bucket is a stable hash of
//! (app, user), so the same users land on the canary every time and raising
//! the percentage only adds users. No rule matching means the stable release.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The release that serves users no rule moves.
pub const STABLE_RELEASE: &str = "stable";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrayRule {
    pub rule_id: String,
    /// Release label a matching user goes to (logic nodes announce theirs).
    pub release: String,
    /// Only this tenant's apps (any if `None`).
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Only this app (any if `None`).
    #[serde(default)]
    pub app_id: Option<String>,
    /// Share of matching users moved, 0–100.
    pub percent: u8,
    /// Only clients on these platforms (any if empty).
    #[serde(default)]
    pub platforms: Vec<String>,
    /// Only clients at this version or later (dotted numbers, e.g. "2.3.0").
    #[serde(default)]
    pub min_client_version: Option<String>,
    #[serde(default)]
    pub priority: i32,
}

/// Who is asking: what a rule can match on.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub tenant_id: &'a str,
    pub app_id: &'a str,
    pub user_id: &'a str,
    pub platform: &'a str,
    pub client_version: Option<&'a str>,
}

/// The user's bucket, 0..10 000 (stable across processes and releases).
pub fn bucket(app_id: &str, user_id: &str) -> u32 {
    let digest = Sha256::new()
        .chain_update(app_id.as_bytes())
        .chain_update([0u8])
        .chain_update(user_id.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % 10_000) as u32
}

fn version_at_least(have: &str, want: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> {
        v.split(['.', '-', '+'])
            .map_while(|p| p.parse::<u64>().ok())
            .collect()
    };
    let (have, want) = (parse(have), parse(want));
    for i in 0..have.len().max(want.len()) {
        let (h, w) = (
            have.get(i).copied().unwrap_or(0),
            want.get(i).copied().unwrap_or(0),
        );
        if h != w {
            return h > w;
        }
    }
    true
}

impl GrayRule {
    pub fn matches(&self, who: &Subject<'_>) -> bool {
        if self
            .tenant_id
            .as_deref()
            .is_some_and(|t| t != who.tenant_id)
            || self.app_id.as_deref().is_some_and(|a| a != who.app_id)
        {
            return false;
        }
        if !self.platforms.is_empty() && !self.platforms.iter().any(|p| p == who.platform) {
            return false;
        }
        if let Some(min) = &self.min_client_version {
            match who.client_version {
                Some(have) if version_at_least(have, min) => {}
                _ => return false,
            }
        }
        bucket(who.app_id, who.user_id) < u32::from(self.percent.min(100)) * 100
    }
}

/// Sorts rules into the order they are checked in.
pub fn sort_rules(rules: &mut [GrayRule]) {
    rules.sort_by(|a, b| (a.priority, &a.rule_id).cmp(&(b.priority, &b.rule_id)));
}

/// The release for `who` under `rules` (which must be sorted, see [`sort_rules`]).
pub fn choose_release<'r>(rules: &'r [GrayRule], who: &Subject<'_>) -> &'r str {
    rules
        .iter()
        .find(|r| r.matches(who))
        .map(|r| r.release.as_str())
        .unwrap_or(STABLE_RELEASE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(percent: u8) -> GrayRule {
        GrayRule {
            rule_id: "r1".into(),
            release: "canary".into(),
            tenant_id: None,
            app_id: Some("app_a".into()),
            percent,
            platforms: vec![],
            min_client_version: None,
            priority: 0,
        }
    }

    fn who<'a>(user: &'a str) -> Subject<'a> {
        Subject {
            tenant_id: "t1",
            app_id: "app_a",
            user_id: user,
            platform: "ios",
            client_version: Some("2.1.0"),
        }
    }

    #[test]
    fn thirty_percent_moves_about_thirty_percent_and_always_the_same_users() {
        let rules = vec![rule(30)];
        let users: Vec<String> = (0..2000).map(|i| format!("user{i}")).collect();
        let canary: Vec<&String> = users
            .iter()
            .filter(|u| choose_release(&rules, &who(u)) == "canary")
            .collect();
        assert!((500..=700).contains(&canary.len()), "{}", canary.len());
        let again: Vec<&String> = users
            .iter()
            .filter(|u| choose_release(&rules, &who(u)) == "canary")
            .collect();
        assert_eq!(canary, again);
        // Raising the share keeps everyone already moved.
        let wider = vec![rule(50)];
        assert!(
            canary
                .iter()
                .all(|u| choose_release(&wider, &who(u)) == "canary")
        );
    }

    #[test]
    fn scope_platform_and_version_conditions() {
        let mut r = rule(100);
        assert_eq!(
            choose_release(std::slice::from_ref(&r), &who("u")),
            "canary"
        );
        let other_app = Subject {
            app_id: "app_b",
            ..who("u")
        };
        assert_eq!(
            choose_release(std::slice::from_ref(&r), &other_app),
            STABLE_RELEASE
        );
        r.platforms = vec!["android".into()];
        assert_eq!(
            choose_release(std::slice::from_ref(&r), &who("u")),
            STABLE_RELEASE
        );
        r.platforms = vec!["ios".into()];
        r.min_client_version = Some("2.1".into());
        assert_eq!(
            choose_release(std::slice::from_ref(&r), &who("u")),
            "canary"
        );
        r.min_client_version = Some("2.10.0".into());
        assert_eq!(
            choose_release(std::slice::from_ref(&r), &who("u")),
            STABLE_RELEASE
        );
        let no_version = Subject {
            client_version: None,
            ..who("u")
        };
        r.min_client_version = Some("1".into());
        assert_eq!(
            choose_release(std::slice::from_ref(&r), &no_version),
            STABLE_RELEASE
        );
    }
}
