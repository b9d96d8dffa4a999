//! The APNs adapter against a local fake of the provider API: HTTP/2 over
//! TLS, token auth verified with the test key's public key, and Apple's
//! documented replies.

mod fake;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use confab_push::{Credentials, Outcome, Provider, PushError, Vendor, build_provider};
use fake::{Fake, Seen, TestCa, endpoints, message, reply, reply_with};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

const TEAM: &str = "TEAM123456";
const KEY_ID: &str = "ABC123DEFG";
const TOPIC: &str = "com.example.chat";

// Tokens are hex, as real device tokens; each asks the fake for one reply.
const OK: &str = "0a0b0c0d0e0f00112233445566778899aabbccddeeff00112233445566778899";
const GONE: &str = "410410410410410410410410410410410410410410410410410410410410aaaa";
const BAD: &str = "badbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadb";
const BUSY: &str = "429429429429429429429429429429429429429429429429429429429429aaaa";
const DOWN: &str = "503503503503503503503503503503503503503503503503503503503503aaaa";
const STALE: &str = "e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0";
const FORBIDDEN: &str = "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0";

struct Setup {
    fake: Fake,
    provider: Arc<dyn Provider>,
    public_pem: String,
}

/// The fake answers like APNs: by the device token in the path.
fn apns_reply(seen: &Seen) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    let token = seen.path.strip_prefix("/3/device/").unwrap_or("");
    let ts = fake::now() * 1000;
    match token {
        GONE => reply(410, json!({"reason": "Unregistered", "timestamp": ts})),
        BAD => reply(400, json!({"reason": "BadDeviceToken"})),
        BUSY => reply_with(
            429,
            &[("retry-after", "7")],
            json!({"reason": "TooManyRequests"}),
        ),
        DOWN => reply(503, json!({"reason": "ServiceUnavailable"})),
        STALE => reply(403, json!({"reason": "ExpiredProviderToken"})),
        FORBIDDEN => reply(403, json!({"reason": "InvalidProviderToken"})),
        _ => reply_with(
            200,
            &[("apns-id", seen.header("apns-id").unwrap_or(""))],
            Value::Null,
        ),
    }
}

async fn setup() -> Setup {
    let ca = TestCa::new();
    let fake = Fake::start(&ca, apns_reply).await;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let creds = Credentials::Apns {
        key_p8: key.serialize_pem(),
        key_id: KEY_ID.into(),
        team_id: TEAM.into(),
        topic: TOPIC.into(),
        sandbox: false,
    };
    let provider = build_provider(&creds, &endpoints(&ca, &fake.url)).unwrap();
    Setup {
        fake,
        provider,
        public_pem: key.public_key_pem(),
    }
}

/// The provider token of a request, checked as Apple requires: ES256,
/// `kid` = key id, `iss` = team id, `iat` now, signed by the .p8 key.
fn verified_jwt(seen: &Seen, public_pem: &str) -> String {
    let auth = seen.header("authorization").expect("authorization header");
    let jwt = auth.strip_prefix("bearer ").expect("bearer scheme");
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), Some(KEY_ID));
    let mut v = Validation::new(Algorithm::ES256);
    v.required_spec_claims = HashSet::new();
    v.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(
        jwt,
        &DecodingKey::from_ec_pem(public_pem.as_bytes()).unwrap(),
        &v,
    )
    .expect("signature verifies with the team's public key")
    .claims;
    assert_eq!(claims["iss"], TEAM);
    let iat = claims["iat"].as_i64().expect("iat");
    assert!((iat - fake::now()).abs() < 60, "iat {iat} is now");
    assert_eq!(
        claims.as_object().unwrap().len(),
        2,
        "only iss and iat: {claims}"
    );
    jwt.to_string()
}

#[tokio::test]
async fn apns_send_carries_documented_headers_token_and_payload() {
    let s = setup().await;
    let msg = message(OK);
    assert_eq!(s.provider.vendor(), Vendor::Apns);
    assert_eq!(s.provider.send(&msg).await, Outcome::Sent);

    let seen = s.fake.seen();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(r.version, http::Version::HTTP_2);
    assert_eq!(r.method, http::Method::POST);
    assert_eq!(r.path, format!("/3/device/{OK}"));
    verified_jwt(r, &s.public_pem);
    assert_eq!(r.header("apns-topic"), Some("com.example.chat"));
    assert_eq!(r.header("apns-push-type"), Some("alert"));
    assert_eq!(r.header("apns-priority"), Some("10"));
    assert_eq!(
        r.header("apns-expiration"),
        Some(msg.expires_at.unwrap().to_string().as_str())
    );
    assert_eq!(r.header("apns-collapse-id"), Some("conv-42"));
    assert_eq!(r.header("apns-id"), Some(msg.id.as_str()));
    assert_eq!(
        r.json(),
        json!({
            "aps": {
                "alert": {"title": "Alice", "body": "Lunch at noon?"},
                "badge": 3,
                "sound": "default",
                "thread-id": "conv-42",
            },
            "conv_id": "42",
            "msg_id": "7",
        })
    );
}

#[tokio::test]
async fn apns_low_priority_and_no_expiry_use_apple_defaults() {
    let s = setup().await;
    let mut msg = message(OK);
    msg.high_priority = false;
    msg.expires_at = None;
    msg.collapse_id = None;
    msg.badge = None;
    assert_eq!(s.provider.send(&msg).await, Outcome::Sent);
    let r = &s.fake.seen()[0];
    assert_eq!(r.header("apns-priority"), Some("5"));
    assert_eq!(r.header("apns-expiration"), None);
    assert_eq!(r.header("apns-collapse-id"), None);
    assert!(r.json()["aps"].get("badge").is_none());
}

#[tokio::test]
async fn apns_410_unregistered_and_bad_device_token_are_dead_tokens() {
    let s = setup().await;
    for token in [GONE, BAD] {
        let outcome = s.provider.send(&message(token)).await;
        assert!(
            matches!(outcome, Outcome::DeadToken { .. }),
            "{token}: {outcome:?}"
        );
    }
    // A token that is not hex cannot be an APNs token, nor reach the path.
    let outcome = s.provider.send(&message("../../admin?x=1")).await;
    assert!(matches!(outcome, Outcome::DeadToken { .. }), "{outcome:?}");
    assert_eq!(s.fake.seen().len(), 2);
}

#[tokio::test]
async fn apns_429_honours_retry_after_and_5xx_retries() {
    let s = setup().await;
    match s.provider.send(&message(BUSY)).await {
        Outcome::Retry { after, .. } => assert_eq!(after, Some(Duration::from_secs(7))),
        other => panic!("429: {other:?}"),
    }
    assert!(matches!(
        s.provider.send(&message(DOWN)).await,
        Outcome::Retry { after: None, .. }
    ));
}

#[tokio::test]
async fn apns_invalid_provider_token_fails_permanently() {
    let s = setup().await;
    let outcome = s.provider.send(&message(FORBIDDEN)).await;
    assert!(matches!(outcome, Outcome::Failed { .. }), "{outcome:?}");
}

#[tokio::test]
async fn apns_jwt_is_reused_across_sends() {
    let s = setup().await;
    for _ in 0..5 {
        assert_eq!(s.provider.send(&message(OK)).await, Outcome::Sent);
    }
    let jwts: HashSet<String> = s
        .fake
        .seen()
        .iter()
        .map(|r| verified_jwt(r, &s.public_pem))
        .collect();
    assert_eq!(jwts.len(), 1, "one provider token for all sends");
}

#[tokio::test]
async fn apns_expired_provider_token_is_not_regenerated_within_20_minutes() {
    let s = setup().await;
    assert_eq!(s.provider.send(&message(OK)).await, Outcome::Sent);
    match s.provider.send(&message(STALE)).await {
        Outcome::Retry {
            after: Some(after), ..
        } => {
            assert!(
                after > Duration::from_secs(19 * 60) && after <= Duration::from_secs(20 * 60),
                "{after:?}"
            )
        }
        other => panic!("ExpiredProviderToken on a fresh JWT: {other:?}"),
    }
    assert_eq!(s.provider.send(&message(OK)).await, Outcome::Sent);
    let jwts: HashSet<String> = s
        .fake
        .seen()
        .iter()
        .map(|r| verified_jwt(r, &s.public_pem))
        .collect();
    assert_eq!(jwts.len(), 1, "the JWT was not replaced within 20 minutes");
}

#[tokio::test]
async fn apns_many_concurrent_sends_share_one_http2_connection() {
    let s = setup().await;
    let sends = (0..200).map(|_| {
        let p = s.provider.clone();
        tokio::spawn(async move { p.send(&message(OK)).await })
    });
    for outcome in futures_util::future::join_all(sends).await {
        assert_eq!(outcome.unwrap(), Outcome::Sent);
    }
    assert_eq!(s.fake.seen().len(), 200);
    assert_eq!(
        s.fake.connections(),
        1,
        "one TCP connection for 200 concurrent pushes"
    );
    assert!(
        s.fake
            .seen()
            .iter()
            .all(|r| r.conn == 1 && r.version == http::Version::HTTP_2)
    );
}

#[tokio::test]
async fn apns_sends_beyond_the_stream_limit_wait_on_the_same_connection() {
    let ca = TestCa::new();
    // APNs advertises a stream limit; sends above it queue, not reconnect.
    let fake = Fake::start_with_streams(&ca, 8, apns_reply).await;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let creds = Credentials::Apns {
        key_p8: key.serialize_pem(),
        key_id: KEY_ID.into(),
        team_id: TEAM.into(),
        topic: TOPIC.into(),
        sandbox: false,
    };
    let p = build_provider(&creds, &endpoints(&ca, &fake.url)).unwrap();
    let sends = (0..100).map(|_| {
        let p = p.clone();
        tokio::spawn(async move { p.send(&message(OK)).await })
    });
    for outcome in futures_util::future::join_all(sends).await {
        assert_eq!(outcome.unwrap(), Outcome::Sent);
    }
    assert_eq!(fake.connections(), 1);
}

#[tokio::test]
async fn apns_repeat_of_a_push_carries_the_same_apns_id() {
    let s = setup().await;
    let msg = message(OK);
    assert_eq!(s.provider.send(&msg).await, Outcome::Sent);
    assert_eq!(s.provider.send(&msg.clone()).await, Outcome::Sent);
    let ids: Vec<_> = s
        .fake
        .seen()
        .iter()
        .map(|r| r.header("apns-id").map(str::to_string))
        .collect();
    assert_eq!(ids, vec![Some(msg.id.clone()), Some(msg.id.clone())]);
}

#[tokio::test]
async fn apns_sandbox_credentials_use_the_sandbox_host() {
    let ca = TestCa::new();
    let fake = Fake::start(&ca, apns_reply).await;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ep = endpoints(&ca, "https://127.0.0.1:1");
    ep.apns_sandbox = fake.url.clone();
    let creds = Credentials::Apns {
        key_p8: key.serialize_pem(),
        key_id: KEY_ID.into(),
        team_id: TEAM.into(),
        topic: TOPIC.into(),
        sandbox: true,
    };
    let p = build_provider(&creds, &ep).unwrap();
    assert_eq!(p.send(&message(OK)).await, Outcome::Sent);
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn apns_unreachable_host_is_a_retry() {
    let ca = TestCa::new();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let creds = Credentials::Apns {
        key_p8: key.serialize_pem(),
        key_id: KEY_ID.into(),
        team_id: TEAM.into(),
        topic: TOPIC.into(),
        sandbox: false,
    };
    // Port 1 on loopback: connection refused.
    let p = build_provider(&creds, &endpoints(&ca, "https://127.0.0.1:1")).unwrap();
    assert!(matches!(p.send(&message(OK)).await, Outcome::Retry { .. }));
}

#[test]
fn apns_unparsable_p8_key_is_rejected_at_build_time() {
    let ca = TestCa::new();
    let creds = Credentials::Apns {
        key_p8: "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n".into(),
        key_id: KEY_ID.into(),
        team_id: TEAM.into(),
        topic: TOPIC.into(),
        sandbox: false,
    };
    let err = build_provider(&creds, &endpoints(&ca, "https://127.0.0.1:1"))
        .err()
        .expect("an error");
    assert!(
        matches!(
            err,
            PushError::Credentials {
                vendor: Vendor::Apns,
                ..
            }
        ),
        "{err}"
    );
}
