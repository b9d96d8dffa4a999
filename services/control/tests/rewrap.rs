//! KEK rotation: `rewrap_keys` re-seals every stored secret (app keys,
//! webhook signing secrets, push credentials) with the current KEK, so that
//! the old KEK can be dropped without losing any of them.

use std::sync::Arc;

use confab_config::webhook::WebhookEvent;
use confab_control::keyring::Keyring;
use confab_control::model::DEFAULT_CELL;
use confab_control::service::{Actor, Control, WebhookSettings};
use confab_push::{CredentialSource, Credentials, Vendor};

#[tokio::test]
async fn rewrap_moves_every_secret_to_the_new_kek() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stores =
        confab_store::sqlite::SqliteStore::open(&dir.path().join("db"), Default::default())
            .await
            .expect("open")
            .into_stores();
    let old = Keyring::generate_spec();
    // Another id than the old one's (both are made in the same second).
    let new = format!("next{}", Keyring::generate_spec());
    let control = |spec: &str| {
        Control::new(
            stores.control.clone(),
            Arc::new(Keyring::parse(spec).expect("KEK spec")),
        )
    };

    let before = control(&old);
    let app = before
        .bootstrap()
        .await
        .expect("bootstrap")
        .expect("a fresh store bootstraps")
        .app;
    let webhook = before
        .put_webhook(
            &Actor::System,
            &app.app_id,
            WebhookSettings {
                url: "https://hooks.example.com/confab".into(),
                events: vec![WebhookEvent::AfterSend],
                timeout_ms: None,
                fail_mode: None,
            },
        )
        .await
        .expect("webhook");
    let webhook_secret = webhook.secret.clone().expect("shown on creation");
    let push = Credentials::Huawei {
        app_id: "10086".into(),
        app_secret: "huawei-s3cret".into(),
    };
    before
        .put_push_credentials(&Actor::System, &app.app_id, Vendor::Huawei, push.clone())
        .await
        .expect("push credentials");

    // Without the old KEK nothing opens yet.
    assert!(control(&new).snapshot(DEFAULT_CELL).await.is_err());

    let rotating = control(&format!("{new},{old}"));
    assert_eq!(
        rotating.rewrap_keys(&Actor::System).await.expect("rewrap"),
        3,
        "the app key, the webhook secret and the push credentials"
    );
    assert_eq!(
        rotating.rewrap_keys(&Actor::System).await.expect("again"),
        0,
        "nothing is left under the old KEK"
    );

    // The new KEK alone opens every one of them.
    let after = control(&new);
    let snapshot = after.snapshot(DEFAULT_CELL).await.expect("snapshot");
    let config = &snapshot.apps[&app.app_id];
    assert_eq!(config.keys[0].secret, app.secret);
    assert_eq!(
        config
            .webhook
            .as_ref()
            .expect("webhook in the config")
            .secret,
        webhook_secret
    );
    let app_id = confab_model::AppId::parse(&app.app_id).expect("app id");
    let stored = after
        .credentials(&app_id, Vendor::Huawei)
        .await
        .expect("credentials open")
        .expect("stored");
    assert_eq!(stored.credentials, push);
}
