//! One shared copy of each app's settings per process. Every session holds
//! its app's settings, and a gateway holds sessions by the hundred thousand:
//! a copy each cost ~0.5 KiB per connection, and on split services every
//! request to a logic node parsed the settings' JSON again.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use confab_model::{AppId, AppSettings};

/// Distinct settings kept at most; past it the maps start afresh (old
/// sessions keep their own `Arc`s).
const MAX_ENTRIES: usize = 4096;

static BY_APP: LazyLock<Mutex<HashMap<AppId, Arc<AppSettings>>>> = LazyLock::new(Default::default);
static BY_JSON: LazyLock<Mutex<HashMap<String, Arc<AppSettings>>>> =
    LazyLock::new(Default::default);

/// `settings` as the copy shared by the app's sessions (the current one
/// when equal, else `settings` becomes it).
pub fn share(app: &AppId, settings: AppSettings) -> Arc<AppSettings> {
    let mut map = BY_APP.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(shared) = map.get(app)
        && **shared == settings
    {
        return shared.clone();
    }
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    let shared = Arc::new(settings);
    map.insert(app.clone(), shared.clone());
    shared
}

/// Settings sent as JSON (between gateway and logic nodes), parsed once per
/// distinct text. `None` if the text is not valid settings.
pub fn from_json(json: &str) -> Option<Arc<AppSettings>> {
    let mut map = BY_JSON.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(shared) = map.get(json) {
        return Some(shared.clone());
    }
    let parsed = Arc::new(serde_json::from_str::<AppSettings>(json).ok()?);
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(json.to_owned(), parsed.clone());
    Some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_settings_share_one_copy_and_a_change_makes_a_new_one() {
        let app = AppId::parse("shared-settings-test").expect("app id");
        let a = share(&app, AppSettings::default());
        let b = share(&app, AppSettings::default());
        assert!(Arc::ptr_eq(&a, &b));
        let mut changed = AppSettings::default();
        changed.recall_window_ms += 1;
        let c = share(&app, changed.clone());
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(*c, changed);
    }

    #[test]
    fn json_is_parsed_once_per_text_and_bad_text_is_refused() {
        let json = serde_json::to_string(&AppSettings::default()).expect("json");
        let a = from_json(&json).expect("parsed");
        let b = from_json(&json).expect("parsed");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(*a, AppSettings::default());
        assert!(from_json("{not json").is_none());
    }
}
