//! The Android vendor adapters (Huawei, Xiaomi, OPPO, vivo, Honor) against
//! local fakes of their server APIs: each fake checks the vendor's auth
//! flow and payload fields and replies with the vendor's documented
//! success and error bodies.

mod fake;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use confab_push::{Credentials, Outcome, Provider, Vendor, build_provider};
use fake::{Fake, Seen, TestCa, endpoints, message, reply, reply_with};
use http::Response;
use http_body_util::Full;
use md5::Md5;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

type Res = Response<Full<Bytes>>;

/// What the fake's send endpoint answers, by device token.
#[derive(Clone, Copy)]
enum Says {
    Ok,
    Dead,
    Busy,
    Down,
}

fn says(token: &str) -> Says {
    match token {
        "dead-token" => Says::Dead,
        "busy-token" => Says::Busy,
        "down-token" => Says::Down,
        _ => Says::Ok,
    }
}

/// 429 with `Retry-After: 11`, or a 502 from the vendor's gateway.
fn transient(s: Says) -> Option<Res> {
    match s {
        Says::Busy => Some(reply_with(
            429,
            &[("retry-after", "11")],
            json!({"code": 429, "msg": "too many requests"}),
        )),
        Says::Down => Some(reply(502, Value::Null)),
        _ => None,
    }
}

struct Setup {
    fake: Fake,
    provider: Arc<dyn Provider>,
    auths: Arc<AtomicUsize>,
}

async fn start(
    creds: Credentials,
    handler: impl Fn(&Seen, &AtomicUsize) -> Res + Send + Sync + 'static,
) -> Setup {
    let ca = TestCa::new();
    let auths = Arc::new(AtomicUsize::new(0));
    let a = auths.clone();
    let fake = Fake::start(&ca, move |seen| handler(seen, &a)).await;
    let provider = build_provider(&creds, &endpoints(&ca, &fake.url)).unwrap();
    Setup {
        fake,
        provider,
        auths,
    }
}

/// The checks every vendor shares: success, a dead token, 429 with
/// Retry-After, a 5xx, and the auth token fetched once for all of them.
async fn common_checks(s: &Setup, vendor: Vendor) {
    assert_eq!(s.provider.vendor(), vendor);
    assert_eq!(
        s.provider.send(&message("good-token")).await,
        Outcome::Sent,
        "{vendor}"
    );
    let dead = s.provider.send(&message("dead-token")).await;
    assert!(
        matches!(dead, Outcome::DeadToken { .. }),
        "{vendor}: {dead:?}"
    );
    match s.provider.send(&message("busy-token")).await {
        Outcome::Retry { after, .. } => {
            assert_eq!(after, Some(Duration::from_secs(11)), "{vendor}")
        }
        other => panic!("{vendor} 429: {other:?}"),
    }
    let down = s.provider.send(&message("down-token")).await;
    assert!(
        matches!(down, Outcome::Retry { .. }),
        "{vendor} 502: {down:?}"
    );
    assert!(
        s.auths.load(Ordering::SeqCst) <= 1,
        "{vendor}: auth token cached"
    );
    assert!(
        s.fake
            .seen()
            .iter()
            .all(|r| r.version == http::Version::HTTP_2),
        "{vendor}: HTTP/2 by ALPN"
    );
}

// ---- Huawei Push Kit ----

fn oauth_client_credentials(seen: &Seen, id: &str, secret: &str, auths: &AtomicUsize) -> Res {
    let form = seen.form();
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["client_id"], id);
    assert_eq!(form["client_secret"], secret);
    let n = auths.fetch_add(1, Ordering::SeqCst) + 1;
    reply(
        200,
        json!({"access_token": format!("at-{n}"), "expires_in": 3600, "token_type": "Bearer"}),
    )
}

fn huawei_fake(seen: &Seen, auths: &AtomicUsize) -> Res {
    if seen.path == "/oauth2/v3/token" {
        return oauth_client_credentials(seen, "10086", "hw-secret", auths);
    }
    assert_eq!(seen.path, "/v1/10086/messages:send");
    assert_eq!(seen.bearer(), Some("at-1"));
    let m = &seen.json()["message"];
    let token = m["token"][0].as_str().unwrap();
    if let Some(r) = transient(says(token)) {
        return r;
    }
    match says(token) {
        Says::Dead => reply(
            200,
            json!({"code": "80300007", "msg": "All the tokens are invalid", "requestId": "1"}),
        ),
        _ => reply(
            200,
            json!({"code": "80000000", "msg": "Success", "requestId": "157440955549500"}),
        ),
    }
}

#[tokio::test]
async fn huawei_follows_push_kit_auth_payload_and_result_codes() {
    let creds = Credentials::Huawei {
        app_id: "10086".into(),
        app_secret: "hw-secret".into(),
    };
    let s = start(creds, huawei_fake).await;
    common_checks(&s, Vendor::Huawei).await;
    let send = &s.fake.seen_at("/v1/10086/messages:send")[0];
    let m = &send.json()["message"];
    assert_eq!(m["token"], json!(["good-token"]));
    assert_eq!(m["android"]["urgency"], "HIGH");
    assert_eq!(m["android"]["category"], "IM");
    assert_eq!(m["android"]["notification"]["title"], "Alice");
    assert_eq!(m["android"]["notification"]["body"], "Lunch at noon?");
    assert_eq!(m["android"]["notification"]["tag"], "conv-42");
    assert_eq!(m["android"]["notification"]["click_action"]["type"], 3);
    let data: Value = serde_json::from_str(m["data"].as_str().unwrap()).unwrap();
    assert_eq!(data, json!({"conv_id": "42", "msg_id": "7"}));
}

#[tokio::test]
async fn huawei_expired_access_token_is_refreshed_once() {
    let creds = Credentials::Huawei {
        app_id: "10086".into(),
        app_secret: "hw-secret".into(),
    };
    let s = start(creds, |seen: &Seen, auths: &AtomicUsize| {
        if seen.path == "/oauth2/v3/token" {
            return oauth_client_credentials(seen, "10086", "hw-secret", auths);
        }
        if seen.bearer() == Some("at-1") {
            return reply(
                401,
                json!({"code": "80200003", "msg": "OAuth token expired."}),
            );
        }
        reply(
            200,
            json!({"code": "80000000", "msg": "Success", "requestId": "1"}),
        )
    })
    .await;
    assert_eq!(s.provider.send(&message("good-token")).await, Outcome::Sent);
    assert_eq!(s.auths.load(Ordering::SeqCst), 2);
}

// ---- Honor Push ----

fn honor_fake(seen: &Seen, auths: &AtomicUsize) -> Res {
    if seen.path == "/auth/token" {
        return oauth_client_credentials(seen, "honor-client", "honor-secret", auths);
    }
    assert_eq!(seen.path, "/api/v1/104455/sendMessage");
    assert_eq!(seen.bearer(), Some("at-1"));
    let ts: i64 = seen
        .header("timestamp")
        .expect("timestamp header")
        .parse()
        .unwrap();
    assert!((ts / 1000 - fake::now()).abs() < 60);
    let b = seen.json();
    let token = b["token"][0].as_str().unwrap();
    if let Some(r) = transient(says(token)) {
        return r;
    }
    match says(token) {
        Says::Dead => reply(
            200,
            json!({"code": 80300007, "message": "all tokens are invalid"}),
        ),
        _ => reply(
            200,
            json!({"code": 200, "message": "success", "data": {"sendResult": true, "requestId": "1"}}),
        ),
    }
}

#[tokio::test]
async fn honor_follows_its_auth_payload_and_result_codes() {
    let creds = Credentials::Honor {
        app_id: "104455".into(),
        client_id: "honor-client".into(),
        client_secret: "honor-secret".into(),
    };
    let s = start(creds, honor_fake).await;
    common_checks(&s, Vendor::Honor).await;
    let b = s.fake.seen_at("/api/v1/104455/sendMessage")[0].json();
    assert_eq!(b["token"], json!(["good-token"]));
    assert_eq!(b["android"]["notification"]["title"], "Alice");
    assert_eq!(b["android"]["notification"]["body"], "Lunch at noon?");
    assert_eq!(b["android"]["notification"]["tag"], "conv-42");
    assert_eq!(b["android"]["notification"]["clickAction"]["type"], 3);
    assert!(b["android"]["ttl"].as_str().unwrap().ends_with('s'));
}

// ---- Xiaomi MiPush ----

fn xiaomi_fake(seen: &Seen, _: &AtomicUsize) -> Res {
    assert_eq!(seen.path, "/v3/message/regid");
    assert_eq!(seen.header("authorization"), Some("key=mi-secret"));
    let form = seen.form();
    let token = form["registration_id"].as_str();
    if let Some(r) = transient(says(token)) {
        return r;
    }
    match says(token) {
        Says::Dead => reply(
            200,
            json!({"result": "error", "code": 20301, "reason": "Invalid regId", "description": "无效的regId"}),
        ),
        _ => reply(
            200,
            json!({"result": "ok", "code": 0, "trace_id": "Xcm45b21474513716292EL", "data": {"id": "scm01b17474513716283Hc"}, "description": "成功", "info": "Received push messages for 1 REGID"}),
        ),
    }
}

#[tokio::test]
async fn xiaomi_follows_mipush_auth_form_and_result_codes() {
    let creds = Credentials::Xiaomi {
        app_secret: "mi-secret".into(),
        package: "com.example.default".into(),
    };
    let s = start(creds, xiaomi_fake).await;
    common_checks(&s, Vendor::Xiaomi).await;
    let form = s.fake.seen()[0].form();
    assert_eq!(form["registration_id"], "good-token");
    assert_eq!(form["restricted_package_name"], "com.example.chat");
    assert_eq!(form["title"], "Alice");
    assert_eq!(form["description"], "Lunch at noon?");
    assert_eq!(form["pass_through"], "0");
    assert_eq!(form["notify_type"], "-1");
    assert_eq!(form["extra.conv_id"], "42");
    assert!(form["notify_id"].parse::<u32>().is_ok());
    assert!(
        form["time_to_live"].parse::<u64>().unwrap() > 3_000_000,
        "ms"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&form["payload"]).unwrap(),
        json!({"conv_id": "42", "msg_id": "7"})
    );
}

// ---- OPPO PUSH ----

fn oppo_fake(seen: &Seen, auths: &AtomicUsize) -> Res {
    if seen.path == "/server/v1/auth" {
        let form = seen.form();
        assert_eq!(form["app_key"], "oppo-key");
        let ts = &form["timestamp"];
        assert!((ts.parse::<i64>().unwrap() / 1000 - fake::now()).abs() < 60);
        let sign = hex::encode(Sha256::digest(
            format!("oppo-key{ts}oppo-master").as_bytes(),
        ));
        assert_eq!(
            form["sign"], sign,
            "sha256(app_key + timestamp + master_secret)"
        );
        auths.fetch_add(1, Ordering::SeqCst);
        return reply(
            200,
            json!({"code": 0, "message": "Success", "data": {"auth_token": "oppo-at", "create_time": fake::now() * 1000}}),
        );
    }
    assert_eq!(seen.path, "/server/v1/message/notification/unicast");
    assert_eq!(seen.header("auth_token"), Some("oppo-at"));
    let message: Value = serde_json::from_str(&seen.form()["message"]).unwrap();
    let token = message["target_value"].as_str().unwrap();
    if let Some(r) = transient(says(token)) {
        return r;
    }
    match says(token) {
        Says::Dead => reply(
            200,
            json!({"code": 10000, "message": "Invalid RegistrationId"}),
        ),
        _ => reply(
            200,
            json!({"code": 0, "message": "Success", "data": {"messageId": "5b0d1a3c5a0a5f0b5e8b4567"}}),
        ),
    }
}

#[tokio::test]
async fn oppo_follows_its_signed_auth_unicast_and_result_codes() {
    let creds = Credentials::Oppo {
        app_key: "oppo-key".into(),
        master_secret: "oppo-master".into(),
    };
    let s = start(creds, oppo_fake).await;
    common_checks(&s, Vendor::Oppo).await;
    let send = &s.fake.seen_at("/server/v1/message/notification/unicast")[0];
    let m: Value = serde_json::from_str(&send.form()["message"]).unwrap();
    assert_eq!(m["target_type"], 2);
    assert_eq!(m["target_value"], "good-token");
    assert_eq!(m["notification"]["title"], "Alice");
    assert_eq!(m["notification"]["content"], "Lunch at noon?");
    assert!(m["notification"]["off_line_ttl"].as_i64().unwrap() > 3000);
    let params: Value =
        serde_json::from_str(m["notification"]["action_parameters"].as_str().unwrap()).unwrap();
    assert_eq!(params, json!({"conv_id": "42", "msg_id": "7"}));
}

#[tokio::test]
async fn oppo_invalid_auth_token_is_refreshed_once() {
    let creds = Credentials::Oppo {
        app_key: "oppo-key".into(),
        master_secret: "oppo-master".into(),
    };
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let s = start(creds, move |seen: &Seen, auths: &AtomicUsize| {
        if seen.path == "/server/v1/auth" {
            return oppo_fake(seen, auths);
        }
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            return reply(200, json!({"code": 11, "message": "Invalid AuthToken"}));
        }
        reply(
            200,
            json!({"code": 0, "message": "Success", "data": {"messageId": "1"}}),
        )
    })
    .await;
    assert_eq!(s.provider.send(&message("good-token")).await, Outcome::Sent);
    assert_eq!(s.auths.load(Ordering::SeqCst), 2);
}

// ---- vivo push ----

fn vivo_fake(seen: &Seen, auths: &AtomicUsize) -> Res {
    if seen.path == "/message/auth" {
        let b = seen.json();
        assert_eq!(b["appId"], "10004");
        assert_eq!(b["appKey"], "vivo-key");
        let ts = b["timestamp"].as_i64().expect("timestamp is a number");
        assert!((ts / 1000 - fake::now()).abs() < 60);
        let sign = hex::encode(Md5::digest(
            format!("10004vivo-key{ts}vivo-secret").as_bytes(),
        ));
        assert_eq!(
            b["sign"], sign,
            "md5(appId + appKey + timestamp + appSecret)"
        );
        auths.fetch_add(1, Ordering::SeqCst);
        return reply(
            200,
            json!({"result": 0, "desc": "请求成功", "authToken": "vivo-at"}),
        );
    }
    assert_eq!(seen.path, "/message/send");
    assert_eq!(seen.header("authtoken"), Some("vivo-at"));
    let b = seen.json();
    let token = b["regId"].as_str().unwrap();
    if let Some(r) = transient(says(token)) {
        return r;
    }
    match says(token) {
        Says::Dead => reply(200, json!({"result": 10302, "desc": "regId不合法"})),
        _ => reply(
            200,
            json!({"result": 0, "desc": "请求成功", "taskId": "603071281263505408"}),
        ),
    }
}

#[tokio::test]
async fn vivo_follows_its_signed_auth_send_and_result_codes() {
    let creds = Credentials::Vivo {
        app_id: "10004".into(),
        app_key: "vivo-key".into(),
        app_secret: "vivo-secret".into(),
    };
    let s = start(creds, vivo_fake).await;
    common_checks(&s, Vendor::Vivo).await;
    let b = s.fake.seen_at("/message/send")[0].json();
    let msg = message("good-token");
    assert_eq!(b["regId"], "good-token");
    assert_eq!(b["title"], "Alice");
    assert_eq!(b["content"], "Lunch at noon?");
    assert_eq!(b["notifyType"], 4);
    assert_eq!(b["skipType"], 1);
    assert_eq!(b["classification"], 1);
    assert_eq!(
        b["requestId"],
        msg.id.as_str(),
        "the push id deduplicates repeats"
    );
    assert_eq!(
        b["clientCustomMap"],
        json!({"conv_id": "42", "msg_id": "7"})
    );
}

#[tokio::test]
async fn vendor_credentials_that_cannot_form_a_url_are_rejected() {
    let ca = TestCa::new();
    let ep = endpoints(&ca, "https://127.0.0.1:1");
    for creds in [
        Credentials::Huawei {
            app_id: "../admin".into(),
            app_secret: "s".into(),
        },
        Credentials::Honor {
            app_id: "1?x=2".into(),
            client_id: "c".into(),
            client_secret: "s".into(),
        },
        Credentials::Xiaomi {
            app_secret: "".into(),
            package: "com.example".into(),
        },
        Credentials::Oppo {
            app_key: "k".into(),
            master_secret: " ".into(),
        },
        Credentials::Vivo {
            app_id: "".into(),
            app_key: "k".into(),
            app_secret: "s".into(),
        },
    ] {
        let vendor = creds.vendor();
        assert!(build_provider(&creds, &ep).is_err(), "{vendor}");
    }
}
