//! The FCM HTTP v1 adapter against a local fake of Google's OAuth token
//! endpoint and the FCM send API: the JWT bearer grant is verified with the
//! service account's public key, the access token must come back on sends.

mod fake;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use confab_push::{Credentials, Outcome, Provider, PushError, Vendor, build_provider};
use fake::{Fake, Seen, TestCa, endpoints, message, reply, reply_with};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

const PROJECT: &str = "confab-test";
const EMAIL: &str = "push@confab-test.iam.gserviceaccount.com";
const SEND_PATH: &str = "/v1/projects/confab-test/messages:send";

/// (private PKCS#8 PEM, public SPKI PEM), generated once per test binary.
fn rsa_key() -> &'static (String, String) {
    static KEY: OnceLock<(String, String)> = OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let private = rsa::RsaPrivateKey::new(&mut rand08::thread_rng(), 2048).unwrap();
        let public = rsa::RsaPublicKey::from(&private);
        (
            private.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            public.to_public_key_pem(LineEnding::LF).unwrap(),
        )
    })
}

struct Setup {
    fake: Fake,
    provider: Arc<dyn Provider>,
    tokens_issued: Arc<AtomicUsize>,
}

/// Checks the grant exactly as Google's "Using OAuth 2.0 for server to
/// server applications" requires, and issues `ya29.test-N`.
fn token_reply(
    seen: &Seen,
    token_uri: &str,
    issued: &AtomicUsize,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    assert!(
        seen.header("content-type")
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    let form = seen.form();
    assert_eq!(
        form["grant_type"],
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    let jwt = &form["assertion"];
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[token_uri]);
    v.set_issuer(&[EMAIL]);
    let claims = jsonwebtoken::decode::<Value>(
        jwt,
        &DecodingKey::from_rsa_pem(rsa_key().1.as_bytes()).unwrap(),
        &v,
    )
    .expect("grant JWT signed by the service account key")
    .claims;
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/firebase.messaging"
    );
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 3600);
    assert!((iat - fake::now()).abs() < 60);
    let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
    reply(
        200,
        json!({"access_token": format!("ya29.test-{n}"), "expires_in": 3599, "token_type": "Bearer"}),
    )
}

/// FCM's documented replies, chosen by the device token.
fn send_reply(seen: &Seen) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    let body = seen.json();
    let token = body["message"]["token"].as_str().unwrap_or("");
    let bearer = seen.bearer().unwrap_or("");
    let err = |code: u16, status: &str, details: Value| json!({"error": {"code": code, "message": status, "status": status, "details": details}});
    match token {
        "unregistered" => reply(
            404,
            err(
                404,
                "NOT_FOUND",
                json!([{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]),
            ),
        ),
        "malformed" => reply(
            400,
            err(
                400,
                "INVALID_ARGUMENT",
                json!([
                    {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "INVALID_ARGUMENT"},
                    {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}]}
                ]),
            ),
        ),
        "quota" => reply_with(
            429,
            &[("retry-after", "30")],
            err(
                429,
                "RESOURCE_EXHAUSTED",
                json!([{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "QUOTA_EXCEEDED"}]),
            ),
        ),
        "unavailable" => reply(
            503,
            err(
                503,
                "UNAVAILABLE",
                json!([{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNAVAILABLE"}]),
            ),
        ),
        // Rejects the first access token only (revoked early).
        "revoked-once" if bearer == "ya29.test-1" => {
            reply(401, err(401, "UNAUTHENTICATED", json!([])))
        }
        "always-401" => reply(401, err(401, "UNAUTHENTICATED", json!([]))),
        _ => reply(
            200,
            json!({"name": format!("projects/{PROJECT}/messages/0:1500415314455276%31bd1c9631bd1c96")}),
        ),
    }
}

async fn setup() -> Setup {
    let ca = TestCa::new();
    let tokens_issued = Arc::new(AtomicUsize::new(0));
    let issued = tokens_issued.clone();
    let token_uri: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
    let uri = token_uri.clone();
    let fake = Fake::start(&ca, move |seen| {
        if seen.path == "/token" {
            token_reply(seen, uri.get().unwrap(), &issued)
        } else {
            assert_eq!(seen.path, SEND_PATH);
            assert!(
                seen.bearer().unwrap().starts_with("ya29.test-"),
                "the access token is the bearer"
            );
            send_reply(seen)
        }
    })
    .await;
    token_uri.set(format!("{}/token", fake.url)).unwrap();
    let sa = json!({
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "0123456789abcdef",
        "private_key": rsa_key().0,
        "client_email": EMAIL,
        "client_id": "1234567890",
        "token_uri": format!("{}/token", fake.url),
    });
    let creds = Credentials::Fcm {
        service_account_json: sa.to_string(),
    };
    let provider = build_provider(&creds, &endpoints(&ca, &fake.url)).unwrap();
    Setup {
        fake,
        provider,
        tokens_issued,
    }
}

#[tokio::test]
async fn fcm_send_uses_the_oauth_token_and_documented_payload() {
    let s = setup().await;
    assert_eq!(s.provider.vendor(), Vendor::Fcm);
    assert_eq!(s.provider.send(&message("device-1")).await, Outcome::Sent);
    let sends = s.fake.seen_at(SEND_PATH);
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].bearer(), Some("ya29.test-1"));
    let m = &sends[0].json()["message"];
    assert_eq!(m["token"], "device-1");
    assert_eq!(
        m["notification"],
        json!({"title": "Alice", "body": "Lunch at noon?"})
    );
    assert_eq!(m["android"]["priority"], "HIGH");
    assert_eq!(m["android"]["collapse_key"], "conv-42");
    assert_eq!(m["android"]["notification"]["tag"], "conv-42");
    assert!(m["android"]["ttl"].as_str().unwrap().ends_with('s'));
    assert_eq!(m["apns"]["payload"]["aps"]["badge"], 3);
    assert_eq!(m["apns"]["headers"]["apns-collapse-id"], "conv-42");
    assert_eq!(m["data"], json!({"conv_id": "42", "msg_id": "7"}));
}

#[tokio::test]
async fn fcm_access_token_is_cached_across_sends() {
    let s = setup().await;
    for _ in 0..5 {
        assert_eq!(s.provider.send(&message("device-1")).await, Outcome::Sent);
    }
    assert_eq!(s.tokens_issued.load(Ordering::SeqCst), 1);
    let bearers: HashSet<_> = s
        .fake
        .seen_at(SEND_PATH)
        .iter()
        .map(|r| r.bearer().unwrap().to_string())
        .collect();
    assert_eq!(bearers.len(), 1);
}

#[tokio::test]
async fn fcm_unregistered_and_invalid_token_are_dead_tokens() {
    let s = setup().await;
    for token in ["unregistered", "malformed"] {
        let outcome = s.provider.send(&message(token)).await;
        assert!(
            matches!(outcome, Outcome::DeadToken { .. }),
            "{token}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn fcm_429_honours_retry_after_and_503_retries() {
    let s = setup().await;
    match s.provider.send(&message("quota")).await {
        Outcome::Retry { after, .. } => assert_eq!(after, Some(Duration::from_secs(30))),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.provider.send(&message("unavailable")).await,
        Outcome::Retry { .. }
    ));
}

#[tokio::test]
async fn fcm_401_refreshes_the_token_once() {
    let s = setup().await;
    assert_eq!(
        s.provider.send(&message("revoked-once")).await,
        Outcome::Sent
    );
    assert_eq!(s.tokens_issued.load(Ordering::SeqCst), 2);
    // Still unauthorized with a fresh token: permanent.
    let outcome = s.provider.send(&message("always-401")).await;
    assert!(matches!(outcome, Outcome::Failed { .. }), "{outcome:?}");
    assert_eq!(s.tokens_issued.load(Ordering::SeqCst), 3);
}

#[test]
fn fcm_service_account_without_a_usable_key_is_rejected_at_build_time() {
    let ca = TestCa::new();
    let sa = json!({"project_id": PROJECT, "client_email": EMAIL, "private_key": "garbage", "token_uri": "https://oauth2.googleapis.com/token"});
    let err = build_provider(
        &Credentials::Fcm {
            service_account_json: sa.to_string(),
        },
        &endpoints(&ca, "https://127.0.0.1:1"),
    )
    .err()
    .expect("an error");
    assert!(
        matches!(
            err,
            PushError::Credentials {
                vendor: Vendor::Fcm,
                ..
            }
        ),
        "{err}"
    );
    let err = build_provider(
        &Credentials::Fcm {
            service_account_json: "{not json".into(),
        },
        &endpoints(&ca, "https://127.0.0.1:1"),
    )
    .err()
    .expect("an error");
    assert!(
        matches!(
            err,
            PushError::Credentials {
                vendor: Vendor::Fcm,
                ..
            }
        ),
        "{err}"
    );
}
