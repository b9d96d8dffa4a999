//! Test push from the console: one notification sent now through the real
//! Xiaomi adapter to a local fake MiPush (the push crate's HTTPS fakes),
//! with the app's stored credentials; the answer is the provider's outcome.

#[path = "../../push/tests/fake/mod.rs"]
mod fake;

mod common;
use common::call;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use confab_control::keyring::Keyring;
use confab_control::service::{Actor, Control};
use fake::{Fake, Seen, TestCa, reply};
use serde_json::{Value, json};

/// MiPush as it answers: the app secret in `authorization`, the token in
/// the form; an unknown secret is HTTP 401, an unknown token code 20301.
fn mipush(seen: &Seen) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    if seen.path != "/v3/message/regid" {
        return reply(404, json!({"result": "error", "reason": "no such API"}));
    }
    if seen.header("authorization") != Some("key=mi-secret") {
        return reply(
            401,
            json!({"result": "error", "code": 22006, "reason": "invalid app secret"}),
        );
    }
    let form = seen.form();
    match form.get("registration_id").map(String::as_str) {
        Some("good-token") => reply(200, json!({"result": "ok", "code": 0})),
        _ => reply(
            200,
            json!({"result": "error", "code": 20301, "reason": "Invalid regId"}),
        ),
    }
}

struct Setup {
    router: Router,
    control: Arc<Control>,
    operator: String,
    app_id: String,
    fake: Fake,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let stores =
        confab_store::sqlite::SqliteStore::open(&dir.path().join("db"), Default::default())
            .await
            .unwrap()
            .into_stores();
    let keyring = Keyring::parse(&Keyring::generate_spec()).unwrap();
    let control = Arc::new(Control::new(stores.control, Arc::new(keyring)));
    let boot = control.bootstrap().await.unwrap().expect("fresh");
    let (token, _, _) = control
        .login(&boot.operator_username, &boot.operator_password)
        .await
        .unwrap();
    let ca = TestCa::new();
    let fake = Fake::start(&ca, mipush).await;
    let endpoints = fake::endpoints(&ca, &fake.url);
    control.set_push_builder(Arc::new(move |c: &confab_push::Credentials| {
        confab_push::build_provider(c, &endpoints).map_err(|e| e.to_string())
    }));
    Setup {
        router: confab_control::rest::router(control.clone()),
        control,
        operator: token,
        app_id: boot.app.app_id,
        fake,
        _dir: dir,
    }
}

async fn upload(s: &Setup, secret: &str) {
    let (status, body) = call(
        &s.router,
        "PUT",
        &format!("/admin/v1/apps/{}/push-credentials/xiaomi", s.app_id),
        &s.operator,
        Some(json!({"app_secret": secret, "package": "com.example.chat"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn test_push(s: &Setup, vendor: &str, token: &str) -> (StatusCode, Value) {
    call(
        &s.router,
        "POST",
        &format!("/admin/v1/apps/{}/push-credentials/{vendor}/test", s.app_id),
        &s.operator,
        Some(json!({"token": token, "title": "Hello", "body": "from the console"})),
    )
    .await
}

#[tokio::test]
async fn a_test_push_reaches_the_provider_and_says_what_it_answered() {
    let s = setup().await;
    upload(&s, "mi-secret").await;

    let (status, body) = test_push(&s, "xiaomi", "good-token").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"vendor": "xiaomi", "status": "accepted"}));
    let seen = s.fake.seen_at("/v3/message/regid");
    assert_eq!(seen.len(), 1, "sent once, synchronously");
    let form = seen[0].form();
    assert_eq!(form["registration_id"], "good-token");
    assert_eq!(form["restricted_package_name"], "com.example.chat");
    assert_eq!(form["title"], "Hello");
    assert_eq!(form["description"], "from the console");

    let (status, body) = test_push(&s, "xiaomi", "stale-token").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "token_invalid");
    assert!(
        body["reason"].as_str().unwrap().contains("Invalid regId"),
        "the provider's reason: {body}"
    );

    // Credentials the provider refuses.
    upload(&s, "wrong-secret").await;
    let (status, body) = test_push(&s, "xiaomi", "good-token").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "credentials_invalid");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("invalid app secret"),
        "{body}"
    );
}

#[tokio::test]
async fn no_credentials_bad_input_and_other_tenants_never_reach_the_provider() {
    let s = setup().await;
    let (status, body) = test_push(&s, "huawei", "good-token").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "no_credentials");

    upload(&s, "mi-secret").await;
    let (status, _) = test_push(&s, "xiaomi", "  ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = test_push(&s, "blackberry", "good-token").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let op = Actor::System;
    let other = s.control.create_tenant(&op, "other").await.unwrap();
    s.control
        .create_account(
            &op,
            "other-admin",
            "other-admin-password",
            confab_control::model::Role::TenantAdmin,
            Some(&other.tenant_id),
        )
        .await
        .unwrap();
    let (token, _, _) = s
        .control
        .login("other-admin", "other-admin-password")
        .await
        .unwrap();
    let (status, body) = call(
        &s.router,
        "POST",
        &format!("/admin/v1/apps/{}/push-credentials/xiaomi/test", s.app_id),
        &token,
        Some(json!({"token": "good-token"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(s.fake.seen().is_empty(), "nothing reached the provider");
}
