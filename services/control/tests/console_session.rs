//! Console sessions in a cookie: HttpOnly + SameSite=Strict, CSRF proof on
//! changes, sign-out clears it; bearer tokens keep working for API clients.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use confab_control::keyring::Keyring;
use confab_control::service::{Bootstrapped, Control};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn set_cookie(&self) -> String {
        self.headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

async fn server() -> (Router, Bootstrapped, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let stores =
        confab_store::sqlite::SqliteStore::open(&dir.path().join("db"), Default::default())
            .await
            .unwrap()
            .into_stores();
    let keyring = Keyring::parse(&Keyring::generate_spec()).unwrap();
    let control = Arc::new(Control::new(stores.control, Arc::new(keyring)));
    let boot = control.bootstrap().await.unwrap().expect("a fresh store");
    (confab_control::rest::router(control), boot, dir)
}

async fn send(router: &Router, request: Request<Body>) -> Resp {
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Resp {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

fn request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    match body {
        Some(body) => b
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

/// Signs in for a browser: the cookie pair `confab_session=cs_...` and the
/// CSRF token.
async fn cookie_login(
    router: &Router,
    boot: &Bootstrapped,
    headers: &[(&str, &str)],
) -> (String, String, Resp) {
    let r = send(
        router,
        request(
            "POST",
            "/admin/v1/sessions",
            headers,
            Some(json!({"username": boot.operator_username, "password": boot.operator_password, "cookie": true})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let set = r.set_cookie();
    let pair = set.split(';').next().unwrap_or_default().trim().to_owned();
    let csrf = r.json()["csrf_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (pair, csrf, r)
}

#[tokio::test]
async fn cookie_login_sets_an_httponly_strict_cookie_and_no_token_in_the_body() {
    let (router, boot, _dir) = server().await;
    let (pair, csrf, r) = cookie_login(&router, &boot, &[]).await;
    let set = r.set_cookie();
    assert!(pair.starts_with("confab_session=cs_"), "{set}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin/", "Max-Age="] {
        assert!(set.contains(attribute), "{attribute} missing: {set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: no Secure ({set})");
    let body = r.json();
    assert!(
        body.get("token").is_none(),
        "the token must not reach page scripts: {body}"
    );
    assert_eq!(csrf.len(), 64, "{body}");
    assert_eq!(body["account"]["role"], "operator");
    assert_eq!(r.headers.get("cache-control").unwrap(), "no-store");

    // The cookie alone authenticates reads.
    let me = send(
        &router,
        request(
            "GET",
            "/admin/v1/sessions/current",
            &[("cookie", &pair)],
            None,
        ),
    )
    .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["csrf_token"], csrf.as_str());
    assert_eq!(me.json()["cookie"], true);
    let tenants = send(
        &router,
        request("GET", "/admin/v1/tenants", &[("cookie", &pair)], None),
    )
    .await;
    assert_eq!(tenants.status, StatusCode::OK);

    // And, with the CSRF token, changes.
    let created = send(
        &router,
        request(
            "POST",
            "/admin/v1/tenants",
            &[("cookie", &pair), ("x-csrf-token", &csrf)],
            Some(json!({"name": "cookie-made"})),
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
}

#[tokio::test]
async fn cookie_login_over_https_is_secure() {
    let (router, boot, _dir) = server().await;
    let (_, _, r) = cookie_login(&router, &boot, &[("x-forwarded-proto", "https")]).await;
    assert!(r.set_cookie().contains("; Secure"), "{}", r.set_cookie());
}

#[tokio::test]
async fn a_cookie_change_without_the_csrf_token_is_403_csrf_failed() {
    let (router, boot, _dir) = server().await;
    let (pair, csrf, _) = cookie_login(&router, &boot, &[]).await;
    let body = || Some(json!({"name": "forged"}));
    for headers in [
        vec![("cookie", pair.as_str())],
        vec![("cookie", pair.as_str()), ("x-csrf-token", "0000")],
        vec![("cookie", pair.as_str()), ("x-csrf-token", &csrf[..63])],
    ] {
        let r = send(
            &router,
            request("POST", "/admin/v1/tenants", &headers, body()),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{headers:?}");
        assert_eq!(r.json()["error"]["code"], "csrf_failed", "{:?}", r.body);
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("X-CSRF-Token")
        );
    }
    // A session's token does not fit another session.
    let (other_pair, _, _) = cookie_login(&router, &boot, &[]).await;
    let r = send(
        &router,
        request(
            "POST",
            "/admin/v1/tenants",
            &[("cookie", &other_pair), ("x-csrf-token", &csrf)],
            body(),
        ),
    )
    .await;
    assert_eq!(r.json()["error"]["code"], "csrf_failed");
    // Sign-out is a change too.
    let r = send(
        &router,
        request(
            "DELETE",
            "/admin/v1/sessions/current",
            &[("cookie", &pair)],
            None,
        ),
    )
    .await;
    assert_eq!(r.json()["error"]["code"], "csrf_failed");
    // Nothing was created.
    let list = send(
        &router,
        request("GET", "/admin/v1/tenants", &[("cookie", &pair)], None),
    )
    .await;
    assert!(!list.json().to_string().contains("forged"));
    // A request a browser marks cross-site is refused, even sign-in.
    let r = send(
        &router,
        request(
            "POST",
            "/admin/v1/sessions",
            &[("sec-fetch-site", "cross-site")],
            Some(json!({"username": boot.operator_username, "password": boot.operator_password})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"]["code"], "csrf_failed");
}

#[tokio::test]
async fn bearer_tokens_need_no_csrf_token() {
    let (router, boot, _dir) = server().await;
    let r = send(
        &router,
        request(
            "POST",
            "/admin/v1/sessions",
            &[],
            Some(json!({"username": boot.operator_username, "password": boot.operator_password})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.set_cookie().is_empty(), "no cookie unless asked");
    let token = r.json()["token"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {token}");
    let created = send(
        &router,
        request(
            "POST",
            "/admin/v1/tenants",
            &[("authorization", &auth)],
            Some(json!({"name": "by-bearer"})),
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
}

#[tokio::test]
async fn logout_clears_the_cookie_and_ends_the_session() {
    let (router, boot, _dir) = server().await;
    let (pair, csrf, _) = cookie_login(&router, &boot, &[]).await;
    let r = send(
        &router,
        request(
            "DELETE",
            "/admin/v1/sessions/current",
            &[("cookie", &pair), ("x-csrf-token", &csrf)],
            None,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let set = r.set_cookie();
    assert!(set.starts_with("confab_session=;"), "{set}");
    assert!(
        set.contains("Max-Age=0") && set.contains("Path=/admin/"),
        "{set}"
    );
    // The old cookie, replayed, no longer works.
    let me = send(
        &router,
        request(
            "GET",
            "/admin/v1/sessions/current",
            &[("cookie", &pair)],
            None,
        ),
    )
    .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.json()["error"]["code"], "unauthorized");
}
