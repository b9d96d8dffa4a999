//! The control plane as the data plane feels it: word lists, quotas,
//! suspension and key rotation change a running server within seconds,
//! without a restart; and secrets never sit in the database in clear.

use std::time::{Duration, Instant};

use confab_client::{Client, ClientError, Transport};
use confab_config::words::{WordAction, WordRule};
use confab_control::model::Status;
use confab_control::service::{Actor, WordScope};
use confab_proto::ops;

use crate::helpers::*;

const SYSTEM: Actor = Actor::System;

fn refused_code<T: std::fmt::Debug>(r: Result<T, ClientError>) -> String {
    match r {
        Err(ClientError::Refused { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn rule(word: &str, action: WordAction) -> WordRule {
    WordRule {
        word: word.into(),
        action,
    }
}

#[tokio::test]
async fn word_lists_block_and_mask_evasions_and_a_change_applies_live() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    // Before the list exists, the word goes through.
    alice
        .send_text("bob", "c0", "free gold")
        .await
        .expect("clean send");

    let started = Instant::now();
    server
        .control()
        .change_words(
            &SYSTEM,
            &WordScope::App(server.app_id.clone()),
            vec![
                rule("gold", WordAction::Block),
                rule("damn", WordAction::Mask),
            ],
            vec![],
        )
        .await
        .expect("app words");
    server
        .control()
        .change_words(
            &SYSTEM,
            &WordScope::Global,
            vec![rule("法轮", WordAction::Block)],
            vec![],
        )
        .await
        .expect("global words");
    server.config_applied().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "applied within seconds"
    );

    for (i, text) in [
        "free gold",
        "G.O.L.D",
        "ｇｏｌｄ rush",
        "g o l d",
        "这是法.轮功",
    ]
    .iter()
    .enumerate()
    {
        let code = refused_code(alice.send_text("bob", &format!("b{i}"), text).await);
        assert_eq!(code, "content_blocked", "{text}");
    }
    let reply = alice
        .send_text("bob", "m1", "Damn, d-a-m-n it")
        .await
        .expect("a masked message is sent");
    assert_eq!(reply.masked, Some(true));
    // Bob gets the clean first message and then the masked one, never a blocked one.
    let first = bob
        .next_op(ops::MESSAGE, WAIT)
        .await
        .expect("first message");
    assert_eq!(text_of(&first.body), "free gold");
    let masked = bob
        .next_op(ops::MESSAGE, WAIT)
        .await
        .expect("masked message");
    assert_eq!(text_of(&masked.body), "****, ******* it");
    let clean = alice.send_text("bob", "m2", "hello").await.expect("clean");
    assert_eq!(clean.masked, Some(false));

    // Removing the word lets it through again, live.
    server
        .control()
        .change_words(
            &SYSTEM,
            &WordScope::App(server.app_id.clone()),
            vec![],
            vec!["GOLD".into()],
        )
        .await
        .expect("remove");
    server.config_applied().await;
    alice
        .send_text("bob", "c9", "gold again")
        .await
        .expect("unblocked");
}

/// Sends `n` messages as fast as they are answered; returns how many went
/// through, the refusals' codes, and how long it took.
async fn burst(c: &Client, prefix: &str, n: usize) -> (usize, Vec<String>, Duration) {
    let started = Instant::now();
    let (mut ok, mut refused) = (0, Vec::new());
    for i in 0..n {
        match c.call(send_frame(&format!("{prefix}{i}"))).await {
            Ok(_) => ok += 1,
            Err(ClientError::Refused { code, .. }) => refused.push(code),
            Err(e) => panic!("{e}"),
        }
    }
    (ok, refused, started.elapsed())
}

/// What a token bucket of `rate` per second (burst `rate`) lets through in
/// `elapsed`: the burst plus what refilled meanwhile.
fn bucket_allows(rate: u32, elapsed: Duration) -> usize {
    rate as usize + (elapsed.as_secs_f64() * f64::from(rate)).ceil() as usize
}

#[tokio::test]
async fn message_rate_quotas_refuse_with_retry_after_and_spare_other_apps() {
    let server = TestServer::start().await;
    server
        .update_settings(|s| {
            s.quotas.user_messages_per_sec = 5;
            s.quotas.app_messages_per_sec = 1_000;
        })
        .await;
    let other = server
        .control()
        .create_app(&SYSTEM, "default", "other", None)
        .await
        .expect("other app");
    server.config_applied().await;

    // The per-user bucket: 5 at once, then rate_limited (with when to retry).
    let alice = server.user("alice").await;
    let (ok, refused, elapsed) = burst(&alice, "a", 12).await;
    assert!(
        ok >= 5 && ok <= bucket_allows(5, elapsed),
        "{ok} in {elapsed:?}"
    );
    assert!(
        !refused.is_empty() && refused.iter().all(|c| c == "rate_limited"),
        "{refused:?}"
    );
    let refusal = loop {
        let reply = alice.request(send_frame("a-late")).await.expect("reply");
        if reply.ok == Some(false) {
            break reply;
        }
    };
    assert_eq!(error_code(&refusal), "rate_limited");
    assert!(
        refusal.retry_after_ms.is_some_and(|ms| ms > 0),
        "retry_after_ms"
    );

    // The per-app bucket is shared by all users of the app.
    server
        .update_settings(|s| {
            s.quotas.user_messages_per_sec = 1_000;
            s.quotas.app_messages_per_sec = 8;
        })
        .await;
    let bob = server.user("bob").await;
    let (ok, refused, elapsed) = burst(&bob, "b", 16).await;
    assert!(
        ok >= 8 && ok <= bucket_allows(8, elapsed),
        "{ok} in {elapsed:?}"
    );
    assert!(refused.iter().all(|c| c == "rate_limited"), "{refused:?}");
    assert!(
        !refused.is_empty() || elapsed > Duration::from_secs(1),
        "no refusal in {elapsed:?}"
    );

    // Another app of the same tenant is not slowed at all.
    let now = now_s();
    let token = mint(
        &other.key_id,
        &other.secret,
        serde_json::json!({"sub": "carol", "app": other.app_id, "iat": now, "exp": now + 600}),
    );
    let carol = Client::connect(Transport::WsJson, server.addr(Transport::WsJson))
        .await
        .expect("connect");
    carol.login(&token, "c", "web").await.expect("login");
    for i in 0..10 {
        carol
            .call(send_frame(&format!("c{i}")))
            .await
            .expect("other app unaffected");
    }
}

fn send_frame(client_msg_id: &str) -> confab_proto::Frame {
    confab_proto::Frame {
        op: ops::SEND.into(),
        to: Some(confab_proto::Peer {
            kind: "user".into(),
            id: "zed".into(),
        }),
        client_msg_id: client_msg_id.into(),
        body: r#"{"type":"text","text":"hi"}"#.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn connection_and_body_size_quotas() {
    let server = TestServer::start().await;
    server
        .update_settings(|s| {
            s.quotas.max_connections = 2;
            s.max_body_bytes = 100;
        })
        .await;
    let a = server.user("a").await;
    let _b = server.user("b").await;
    let c = server.connect(Transport::WsJson).await;
    assert_eq!(
        refused_code(c.login(&server.token("c"), "c", "web").await),
        "quota_exceeded"
    );
    let big = format!("{{\"type\":\"text\",\"text\":\"{}\"}}", "x".repeat(200));
    assert_eq!(
        refused_code(a.send_body("b", "big", big).await),
        "quota_exceeded"
    );
    a.send_text("b", "small", "fits").await.expect("small body");
    // A connection that leaves frees its place.
    let mut a = a;
    let _ = a
        .request(confab_proto::Frame {
            op: ops::LOGOUT.into(),
            ..Default::default()
        })
        .await;
    assert!(a.wait_closed(WAIT).await.is_some());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let d = server.connect(Transport::WsJson).await;
    d.login(&server.token("d"), "d", "web")
        .await
        .expect("a place is free again");
}

#[tokio::test]
async fn suspending_a_tenant_kicks_live_sessions_and_refuses_logins_until_resumed() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    server
        .control()
        .set_tenant_status(&SYSTEM, "default", Status::Suspended)
        .await
        .expect("suspend");
    server.config_applied().await;
    let kicked = alice.next_op(ops::KICKED, WAIT).await.expect("kicked");
    assert!(kicked.reason.contains("suspended"), "{}", kicked.reason);
    assert!(alice.wait_closed(WAIT).await.is_some());
    let again = server.connect(Transport::WsJson).await;
    assert_eq!(
        refused_code(again.login(&server.token("alice"), "a2", "web").await),
        "suspended"
    );
    server
        .control()
        .set_tenant_status(&SYSTEM, "default", Status::Active)
        .await
        .expect("resume");
    server.config_applied().await;
    server.user("alice").await;
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_until_revoked_and_secrets_are_sealed_at_rest() {
    let server = TestServer::start().await;
    let old_token = server.token("alice");
    let new_key = server
        .control()
        .create_key(&SYSTEM, &server.app_id)
        .await
        .expect("second key");
    server.config_applied().await;
    let now = now_s();
    let new_token = mint(
        &new_key.key_id,
        &new_key.secret,
        serde_json::json!({"sub": "alice", "app": server.app_id, "iat": now, "exp": now + 600}),
    );
    for (token, device) in [(&old_token, "old"), (&new_token, "new")] {
        let c = server.connect(Transport::WsJson).await;
        c.login(token, device, "web")
            .await
            .expect("both keys work during rotation");
    }
    server
        .control()
        .revoke_key(&SYSTEM, Some(&server.app_id), &server.key_id)
        .await
        .expect("revoke the old key");
    server.config_applied().await;
    let c = server.connect(Transport::WsJson).await;
    assert_eq!(
        refused_code(c.login(&old_token, "old2", "web").await),
        "unauthorized"
    );
    let c = server.connect(Transport::WsJson).await;
    c.login(&new_token, "new2", "web")
        .await
        .expect("the new key works");

    // Listing never shows a secret, and the database holds none in clear.
    let keys = server
        .control()
        .keys(&SYSTEM, &server.app_id)
        .await
        .expect("keys");
    let listed = serde_json::to_string(&keys).expect("json");
    assert!(!listed.contains("secret") && !listed.contains(&new_key.secret));
    if !distributed_suite() {
        for file in ["confab.db", "confab.db-wal"] {
            let bytes = std::fs::read(server.dir.path().join(file)).unwrap_or_default();
            let haystack = String::from_utf8_lossy(&bytes);
            assert!(
                !haystack.contains(&new_key.secret),
                "{file} holds a secret in clear"
            );
            assert!(
                !haystack.contains(&server.secret),
                "{file} holds a secret in clear"
            );
        }
    }
}

#[tokio::test]
async fn history_older_than_the_apps_retention_is_purged() {
    let server = TestServer::start().await;
    server.update_settings(|s| s.retention_days = 7).await;
    let alice = server.user("alice").await;
    let app = confab_model::AppId::parse(&server.app_id).expect("app id");
    let (a, b) = (
        confab_model::UserId::parse("alice").expect("user"),
        confab_model::UserId::parse("bob").expect("user"),
    );
    // An eight-day-old message, as if it had been sent then.
    let conv = confab_model::ConvId::p2p(&a, &b);
    server
        .stores()
        .messages
        .append(confab_store::NewMessage {
            app_id: app.clone(),
            conv_id: conv.clone(),
            msg_id: "old-1".into(),
            from: a.clone(),
            to: confab_model::Peer::user(&b),
            body: r#"{"type":"text","text":"ancient"}"#.into(),
            ts: confab_model::now_ms() - 8 * 86_400_000,
            client_msg_id: "old-1".into(),
            recipients: vec![a.clone(), b.clone()],
            read_fanout: false,
        })
        .await
        .expect("old message");
    alice
        .send_text("bob", "new-1", "fresh")
        .await
        .expect("send");
    let config = match &server.logic {
        Some(l) => l.config.clone(),
        None => server.app.config.clone().expect("config"),
    };
    let purged = confab_logic::retention::purge_once(server.stores(), &config).await;
    assert_eq!(purged, 1);
    let history = alice
        .request(confab_proto::Frame {
            op: ops::HISTORY.into(),
            conv_id: conv.as_str().into(),
            ..Default::default()
        })
        .await
        .expect("history");
    let texts: Vec<String> = history.messages.iter().map(|m| text_of(&m.body)).collect();
    assert_eq!(texts, vec!["fresh".to_owned()]);
    // Within the retention nothing is purged.
    assert_eq!(
        confab_logic::retention::purge_once(server.stores(), &config).await,
        0
    );
}

#[tokio::test]
async fn the_console_is_served_with_spa_fallback_and_cache_headers() {
    let console = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(console.path().join("assets")).expect("mkdir");
    std::fs::write(
        console.path().join("index.html"),
        "<!doctype html><title>Confab</title>",
    )
    .expect("write");
    std::fs::write(console.path().join("assets/app-1234.js"), "console.log(1)").expect("write");
    let dir = console.path().to_path_buf();
    let server = TestServer::start_with(move |s| s.console_dir = Some(dir)).await;
    if server.app.control.is_none() {
        return; // split suite: the console is served by the control plane, tested on `serve`
    }
    let http = server.addr(Transport::WsJson);
    let get = |path: &'static str| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(http).await.expect("connect");
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    };
    let index = get("/console/").await;
    assert!(
        index.starts_with("HTTP/1.0 200") && index.contains("<title>Confab</title>"),
        "{index}"
    );
    assert!(index.to_lowercase().contains("cache-control: no-cache"));
    // A deep link (the app's own route) gets the app, bookmarkable.
    let deep = get("/console/apps/app_123/keys").await;
    assert!(deep.starts_with("HTTP/1.0 200") && deep.contains("<title>Confab</title>"));
    let asset = get("/console/assets/app-1234.js").await;
    assert!(asset.contains("console.log(1)"));
    assert!(asset.to_lowercase().contains("immutable"));
    assert!(asset.to_lowercase().contains("javascript"));
    assert!(
        asset
            .to_lowercase()
            .contains("x-content-type-options: nosniff")
    );
    assert!(index.contains("frame-ancestors 'none'"));
    let missing = get("/console/assets/gone-0000.js").await;
    assert!(missing.starts_with("HTTP/1.0 404"), "{missing}");
    // No way out of the console's directory.
    let escape = get("/console/../Cargo.toml").await;
    assert!(!escape.contains("[package]"));
    let redirect = get("/console").await;
    assert!(redirect.starts_with("HTTP/1.0 308"), "{redirect}");
}
