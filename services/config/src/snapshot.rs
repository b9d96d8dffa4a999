//! Snapshots, deltas and the compiled view readers use.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use confab_model::AppSettings;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::ConfigError;
use crate::gray::{self, GrayRule, Subject};
use crate::words::{WordFilter, WordRule};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AppStatus {
    #[default]
    Active,
    /// The app or its tenant is suspended: no logins, no REST calls, live
    /// sessions are kicked.
    Suspended,
}

/// One secret key of an app, as the data plane needs it (to check tokens).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyConfig {
    pub key_id: String,
    pub secret: String,
    pub created_at: i64,
    #[serde(default)]
    pub revoked_at: Option<i64>,
}

/// Everything the data plane knows about one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppConfig {
    pub app_id: String,
    pub tenant_id: String,
    pub name: String,
    pub status: AppStatus,
    pub settings: AppSettings,
    pub keys: Vec<KeyConfig>,
    /// The app's own sensitive words (the global list applies too).
    pub words: Vec<WordRule>,
    /// The app's webhook, if it has one.
    #[serde(default)]
    pub webhook: Option<crate::webhook::WebhookConfig>,
}

impl AppConfig {
    /// The newest key that is not revoked (what minting uses).
    pub fn active_key(&self) -> Option<&KeyConfig> {
        self.keys
            .iter()
            .filter(|k| k.revoked_at.is_none())
            .max_by_key(|k| (k.created_at, k.key_id.clone()))
    }
}

/// A cell's whole config at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Snapshot {
    pub version: u64,
    pub cell_id: String,
    pub apps: BTreeMap<String, AppConfig>,
    pub global_words: Vec<WordRule>,
    pub gray_rules: Vec<GrayRule>,
}

/// What changed between two snapshots of the same cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Delta {
    pub base_version: u64,
    pub version: u64,
    /// Apps added or changed (whole).
    pub apps: Vec<AppConfig>,
    pub removed_apps: Vec<String>,
    pub global_words: Option<Vec<WordRule>>,
    pub gray_rules: Option<Vec<GrayRule>>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
            && self.removed_apps.is_empty()
            && self.global_words.is_none()
            && self.gray_rules.is_none()
    }
}

impl Snapshot {
    /// The delta that turns `self` into `newer`.
    pub fn delta_to(&self, newer: &Snapshot) -> Delta {
        let apps = newer
            .apps
            .values()
            .filter(|app| self.apps.get(&app.app_id) != Some(*app))
            .cloned()
            .collect();
        let removed_apps = self
            .apps
            .keys()
            .filter(|id| !newer.apps.contains_key(*id))
            .cloned()
            .collect();
        Delta {
            base_version: self.version,
            version: newer.version,
            apps,
            removed_apps,
            global_words: (self.global_words != newer.global_words)
                .then(|| newer.global_words.clone()),
            gray_rules: (self.gray_rules != newer.gray_rules).then(|| newer.gray_rules.clone()),
        }
    }

    /// Applies a delta made against this version.
    pub fn apply(&mut self, delta: Delta) -> Result<(), ConfigError> {
        if delta.base_version != self.version {
            return Err(ConfigError::VersionMismatch {
                held: self.version,
                delta_base: delta.base_version,
            });
        }
        for app in delta.apps {
            self.apps.insert(app.app_id.clone(), app);
        }
        for id in delta.removed_apps {
            self.apps.remove(&id);
        }
        if let Some(words) = delta.global_words {
            self.global_words = words;
        }
        if let Some(rules) = delta.gray_rules {
            self.gray_rules = rules;
        }
        self.version = delta.version;
        Ok(())
    }
}

/// A snapshot with its lookups built: what the hot path reads.
#[derive(Debug, Default)]
pub struct Compiled {
    snapshot: Snapshot,
    /// key id → app id.
    keys: HashMap<String, String>,
    /// app id → the global and the app's words, merged.
    filters: HashMap<String, Arc<WordFilter>>,
    global_filter: Arc<WordFilter>,
    gray_rules: Vec<GrayRule>,
}

impl Compiled {
    pub fn new(snapshot: Snapshot) -> Self {
        let keys = snapshot
            .apps
            .values()
            .flat_map(|app| {
                app.keys
                    .iter()
                    .map(|k| (k.key_id.clone(), app.app_id.clone()))
            })
            .collect();
        let global_filter = Arc::new(WordFilter::new(&snapshot.global_words));
        let filters = snapshot
            .apps
            .values()
            .filter(|app| !app.words.is_empty())
            .map(|app| {
                let merged = WordFilter::new(snapshot.global_words.iter().chain(&app.words));
                (app.app_id.clone(), Arc::new(merged))
            })
            .collect();
        let mut gray_rules = snapshot.gray_rules.clone();
        gray::sort_rules(&mut gray_rules);
        Self {
            snapshot,
            keys,
            filters,
            global_filter,
            gray_rules,
        }
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    pub fn version(&self) -> u64 {
        self.snapshot.version
    }

    pub fn app(&self, app_id: &str) -> Option<&AppConfig> {
        self.snapshot.apps.get(app_id)
    }

    /// A key by id, with its app.
    pub fn key(&self, key_id: &str) -> Option<(&AppConfig, &KeyConfig)> {
        let app = self.app(self.keys.get(key_id)?)?;
        let key = app.keys.iter().find(|k| k.key_id == key_id)?;
        Some((app, key))
    }

    /// The word filter that applies to an app's messages.
    pub fn words(&self, app_id: &str) -> Arc<WordFilter> {
        self.filters
            .get(app_id)
            .unwrap_or(&self.global_filter)
            .clone()
    }

    /// The logic release that serves `who`.
    pub fn release_for(&self, who: &Subject<'_>) -> &str {
        gray::choose_release(&self.gray_rules, who)
    }
}

/// A cheap, cloneable handle on the current config.
#[derive(Clone)]
pub struct ConfigView {
    rx: watch::Receiver<Arc<Compiled>>,
}

impl ConfigView {
    /// The config as of now (an `Arc` clone; never blocks).
    pub fn current(&self) -> Arc<Compiled> {
        self.rx.borrow().clone()
    }

    /// Waits until the config changes; `false` when the source is gone.
    pub async fn changed(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }

    /// A view that never changes (tests, tools).
    pub fn fixed(snapshot: Snapshot) -> Self {
        ConfigHandle::new(snapshot).1
    }
}

/// The writing side: whoever keeps the config current (the subscriber, or
/// the in-process control plane in embedded mode).
pub struct ConfigHandle {
    tx: watch::Sender<Arc<Compiled>>,
}

impl ConfigHandle {
    pub fn new(initial: Snapshot) -> (Self, ConfigView) {
        record_applied(initial.version);
        let (tx, rx) = watch::channel(Arc::new(Compiled::new(initial)));
        (Self { tx }, ConfigView { rx })
    }

    pub fn current(&self) -> Arc<Compiled> {
        self.tx.borrow().clone()
    }

    /// A second writer on the same config (e.g. a feeding task).
    pub fn from_sender(other: &ConfigHandle) -> ConfigHandle {
        ConfigHandle {
            tx: other.tx.clone(),
        }
    }

    pub fn view(&self) -> ConfigView {
        ConfigView {
            rx: self.tx.subscribe(),
        }
    }

    /// Replaces the whole snapshot.
    pub fn replace(&self, snapshot: Snapshot) {
        record_applied(snapshot.version);
        self.tx.send_replace(Arc::new(Compiled::new(snapshot)));
    }

    /// Applies a delta to the current snapshot; returns the new snapshot.
    pub fn apply(&self, delta: Delta) -> Result<Snapshot, ConfigError> {
        let mut next = self.current().snapshot().clone();
        next.apply(delta)?;
        self.replace(next.clone());
        Ok(next)
    }
}

fn record_applied(version: u64) {
    metrics::gauge!("confab_config_version").set(version as f64);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    metrics::gauge!("confab_config_last_applied_timestamp_seconds").set(now);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words::WordAction;

    fn app(id: &str, kick: &str) -> AppConfig {
        AppConfig {
            app_id: id.into(),
            tenant_id: "t1".into(),
            name: kick.into(),
            status: AppStatus::Active,
            settings: AppSettings::default(),
            keys: vec![KeyConfig {
                key_id: format!("key_{id}"),
                secret: "s".into(),
                created_at: 1,
                revoked_at: None,
            }],
            words: vec![],
            webhook: None,
        }
    }

    #[test]
    fn a_delta_turns_the_old_snapshot_into_the_new_one() {
        let mut old = Snapshot {
            version: 3,
            cell_id: "c".into(),
            ..Default::default()
        };
        old.apps.insert("a".into(), app("a", "x"));
        old.apps.insert("b".into(), app("b", "x"));
        let mut new = old.clone();
        new.version = 7;
        new.apps.remove("b");
        new.apps.insert("a".into(), app("a", "renamed"));
        new.apps.insert("c".into(), app("c", "x"));
        new.global_words.push(WordRule {
            word: "w".into(),
            action: WordAction::Mask,
        });
        let delta = old.delta_to(&new);
        assert_eq!(delta.apps.len(), 2);
        assert_eq!(delta.removed_apps, vec!["b".to_owned()]);
        assert!(delta.gray_rules.is_none());
        let mut applied = old.clone();
        applied.apply(delta.clone()).unwrap();
        assert_eq!(applied, new);
        // A delta against another version is refused, not half-applied.
        assert!(matches!(
            applied.apply(delta),
            Err(ConfigError::VersionMismatch {
                held: 7,
                delta_base: 3
            })
        ));
    }

    #[test]
    fn compiled_view_finds_keys_and_merges_word_lists() {
        let mut snap = Snapshot::default();
        let mut a = app("a", "x");
        a.words.push(WordRule {
            word: "apple".into(),
            action: WordAction::Block,
        });
        snap.apps.insert("a".into(), a);
        snap.apps.insert("b".into(), app("b", "x"));
        snap.global_words.push(WordRule {
            word: "pear".into(),
            action: WordAction::Block,
        });
        let c = Compiled::new(snap);
        assert_eq!(
            c.key("key_b").map(|(app, _)| app.app_id.as_str()),
            Some("b")
        );
        assert!(c.key("key_zz").is_none());
        use crate::words::Verdict;
        assert!(matches!(
            c.words("a").check("an apple"),
            Verdict::Blocked(_)
        ));
        assert!(matches!(c.words("a").check("a pear"), Verdict::Blocked(_)));
        assert_eq!(c.words("b").check("an apple"), Verdict::Clean);
        assert!(matches!(c.words("b").check("a pear"), Verdict::Blocked(_)));
    }
}
