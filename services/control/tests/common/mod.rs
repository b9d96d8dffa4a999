//! Helpers shared by the control plane's test files (each file uses some).
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use confab_control::keyring::Keyring;
use confab_control::service::Control;
use confab_control::service::support::{DataPlane, V1Answer};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// One request to the router with a bearer token (and a JSON body); the
/// status and the JSON answer (`Null` when the body is not JSON).
pub async fn call(
    router: &Router,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let b = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    let request = match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(v.to_string())),
        None => b.body(Body::empty()),
    }
    .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// What the fake cell was asked: (secret, method, path, body).
pub type Calls = Arc<Mutex<Vec<(String, String, String, Option<Value>)>>>;

/// A cell that answers with a fixed status and body, or is unreachable.
pub struct FakeCell {
    calls: Calls,
    answer: Option<(u16, Value)>,
}

#[async_trait]
impl DataPlane for FakeCell {
    async fn call(
        &self,
        secret: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<V1Answer, String> {
        self.calls
            .lock()
            .unwrap()
            .push((secret.into(), method.into(), path.into(), body));
        match &self.answer {
            Some((status, body)) => Ok(V1Answer {
                status: *status,
                body: body.clone(),
            }),
            None => Err("connection refused".into()),
        }
    }
}

pub struct Setup {
    pub router: Router,
    pub control: Arc<Control>,
    pub operator: String,
    pub app_id: String,
    pub secret: String,
    pub _dir: tempfile::TempDir,
}

pub async fn setup() -> Setup {
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
    Setup {
        router: confab_control::rest::router(control.clone()),
        control,
        operator: token,
        app_id: boot.app.app_id,
        secret: boot.app.secret,
        _dir: dir,
    }
}

pub fn fake(control: &Control, answer: Option<(u16, Value)>) -> Calls {
    let calls = Calls::default();
    control.register_data_plane(
        "default",
        Arc::new(FakeCell {
            calls: calls.clone(),
            answer,
        }),
    );
    calls
}
