//! The push decision through the real send path: a Logic on SQLite, the
//! durable queue as the observable output, and the recording fake provider
//! draining it through the real worker.

use std::sync::Arc;
use std::time::Duration;

use confab_config::{AppConfig, AppStatus, ConfigView, Snapshot};
use confab_model::{AppId, AppSettings, Platform, UserId};
use confab_proto::{Frame, ops};
use confab_push::testing::FakeProvider;
use confab_push::{PushMessage, StaticProviders, Vendor, Worker, WorkerConfig};
use confab_store::sqlite::{SqliteOptions, SqliteStore};
use confab_store::{Route, Stores};

use crate::{Delivery, Logic, Session};

struct NoDevices;
impl Delivery for NoDevices {
    fn deliver(&self, _: &AppId, _: &UserId, _: Arc<Frame>, _: Option<&str>) {}
}

async fn logic_with(settings: AppSettings) -> Logic {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("logic.db");
    std::mem::forget(dir);
    let stores = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .expect("open")
        .into_stores();
    let mut snapshot = Snapshot::default();
    snapshot.apps.insert(
        "app1".into(),
        AppConfig {
            app_id: "app1".into(),
            tenant_id: "t1".into(),
            name: "Chat".into(),
            status: AppStatus::Active,
            settings,
            keys: vec![],
            words: vec![],
            webhook: None,
        },
    );
    Logic::new(stores, Arc::new(NoDevices), ConfigView::fixed(snapshot))
}

async fn logic() -> Logic {
    logic_with(AppSettings::default()).await
}

fn session(user: &str, device: &str) -> Session {
    Session {
        app_id: AppId::parse("app1").expect("app"),
        user_id: UserId::parse(user).expect("user"),
        device_id: device.into(),
        platform: Platform::Ios,
        session_id: format!("s-{user}-{device}"),
        settings: AppSettings::default().into(),
        client_version: String::new(),
    }
}

async fn call(logic: &Logic, s: &Session, frame: Frame) -> Frame {
    let reply = logic.handle(s, frame).await;
    assert_eq!(reply.ok, Some(true), "{:?}", reply.error);
    reply
}

async fn register(logic: &Logic, s: &Session, token: &str) {
    call(
        logic,
        s,
        Frame {
            op: ops::PUSH_REGISTER.into(),
            vendor: Some("apns".into()),
            push_token: Some(token.into()),
            bundle: Some("com.example.chat".into()),
            locale: Some("en-US".into()),
            ..Default::default()
        },
    )
    .await;
}

fn text_to(user: &str, text: &str) -> Frame {
    Frame {
        op: ops::SEND.into(),
        to: Some(confab_proto::Peer {
            kind: "user".into(),
            id: user.into(),
        }),
        body: format!(r#"{{"type":"text","text":"{text}"}}"#),
        ..Default::default()
    }
}

async fn send(logic: &Logic, s: &Session, frame: Frame) -> Frame {
    let reply = call(logic, s, frame).await;
    // The decision runs after the reply: wait for it.
    for _ in 0..200 {
        if logic.push_decisions_in_flight() == 0 {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("push decision did not finish");
}

/// Drains the queue (without sending) and returns the queued messages.
async fn queued(stores: &Stores) -> Vec<PushMessage> {
    let jobs = stores
        .push_queue
        .claim(100, Duration::from_secs(60))
        .await
        .expect("claim");
    for j in &jobs {
        stores.push_queue.complete(&j.id).await.expect("complete");
    }
    jobs.iter()
        .map(|j| serde_json::from_str(&j.payload).expect("payload"))
        .collect()
}

async fn connect(logic: &Logic, s: &Session) {
    logic
        .stores()
        .routes
        .register(
            &s.app_id,
            &s.user_id,
            Route {
                device_id: s.device_id.clone(),
                session_id: s.session_id.clone(),
                node: "n1".into(),
                platform: "ios".into(),
            },
        )
        .await
        .expect("route");
}

#[tokio::test]
async fn offline_recipient_gets_a_push_with_title_body_and_conversation_ids() {
    let logic = logic().await;
    let (alice, bob) = (session("alice", "a1"), session("bob", "b1"));
    register(&logic, &bob, "bob-token").await;
    let reply = send(&logic, &alice, text_to("bob", "hello bob")).await;
    let pushes = queued(logic.stores()).await;
    assert_eq!(pushes.len(), 1);
    let p = &pushes[0];
    assert_eq!(p.token, "bob-token");
    assert_eq!(p.bundle, "com.example.chat");
    assert_eq!(p.title, "alice");
    assert_eq!(p.body, "hello bob");
    assert_eq!(p.collapse_id.as_deref(), Some(reply.conv_id.as_str()));
    assert_eq!(p.thread_id.as_deref(), Some(reply.conv_id.as_str()));
    assert_eq!(p.data.get("msg_id"), Some(&reply.msg_id));
}

#[tokio::test]
async fn online_foreground_device_gets_no_push_but_background_does() {
    let logic = logic().await;
    let (alice, bob) = (session("alice", "a1"), session("bob", "b1"));
    register(&logic, &bob, "bob-token").await;
    connect(&logic, &bob).await;
    send(&logic, &alice, text_to("bob", "one")).await;
    assert!(queued(logic.stores()).await.is_empty(), "online → no push");
    call(
        &logic,
        &bob,
        Frame {
            op: ops::APP_STATE.into(),
            background: Some(true),
            ..Default::default()
        },
    )
    .await;
    send(&logic, &alice, text_to("bob", "two")).await;
    assert_eq!(queued(logic.stores()).await.len(), 1, "background → push");
}

#[tokio::test]
async fn the_senders_own_devices_get_no_push() {
    let logic = logic().await;
    let (alice, alice_phone) = (session("alice", "a1"), session("alice", "a2"));
    register(&logic, &alice_phone, "alice-token").await;
    send(&logic, &alice, text_to("bob", "hi")).await;
    assert!(queued(logic.stores()).await.is_empty());
}

#[tokio::test]
async fn muted_conversation_gets_no_push_until_unmuted() {
    let logic = logic().await;
    let (alice, bob) = (session("alice", "a1"), session("bob", "b1"));
    register(&logic, &bob, "bob-token").await;
    let reply = send(&logic, &alice, text_to("bob", "one")).await;
    queued(logic.stores()).await;
    let mute = |muted| Frame {
        op: ops::CONV_MUTE.into(),
        conv_id: reply.conv_id.clone(),
        muted: Some(muted),
        ..Default::default()
    };
    call(&logic, &bob, mute(true)).await;
    send(&logic, &alice, text_to("bob", "two")).await;
    assert!(queued(logic.stores()).await.is_empty(), "muted → no push");
    call(&logic, &bob, mute(false)).await;
    send(&logic, &alice, text_to("bob", "three")).await;
    assert_eq!(queued(logic.stores()).await.len(), 1);
}

#[tokio::test]
async fn muting_a_conversation_of_others_is_not_found() {
    let logic = logic().await;
    let carol = session("carol", "c1");
    let reply = logic
        .handle(
            &carol,
            Frame {
                op: ops::CONV_MUTE.into(),
                conv_id: "p2p:alice:bob".into(),
                muted: Some(true),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(reply.error.expect("error").code, "not_found");
}

#[tokio::test]
async fn do_not_disturb_hours_get_no_push() {
    let logic = logic().await;
    let (alice, bob) = (session("alice", "a1"), session("bob", "b1"));
    register(&logic, &bob, "bob-token").await;
    // Quiet for the whole day but one minute that is not now.
    let now_min = ((confab_model::now_ms() / 60_000) % 1440) as u32;
    let reply = call(
        &logic,
        &bob,
        Frame {
            op: ops::PUSH_SETTINGS.into(),
            dnd_start: Some((now_min + 2) % 1440),
            dnd_end: Some((now_min + 1) % 1440),
            tz_offset: Some(0),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(reply.dnd_start, Some((now_min + 2) % 1440));
    send(&logic, &alice, text_to("bob", "psst")).await;
    assert!(queued(logic.stores()).await.is_empty(), "DND → no push");
}

#[tokio::test]
async fn push_settings_reject_bad_values_with_bad_request() {
    let logic = logic().await;
    let bob = session("bob", "b1");
    for frame in [
        Frame {
            op: ops::PUSH_SETTINGS.into(),
            dnd_start: Some(1440),
            dnd_end: Some(0),
            ..Default::default()
        },
        Frame {
            op: ops::PUSH_SETTINGS.into(),
            dnd_start: Some(10),
            ..Default::default()
        },
        Frame {
            op: ops::PUSH_REGISTER.into(),
            vendor: Some("blackberry".into()),
            push_token: Some("t".into()),
            bundle: Some("b".into()),
            ..Default::default()
        },
        Frame {
            op: ops::PUSH_REGISTER.into(),
            vendor: Some("fcm".into()),
            bundle: Some("b".into()),
            ..Default::default()
        },
        Frame {
            op: ops::APP_STATE.into(),
            ..Default::default()
        },
    ] {
        let reply = logic.handle(&bob, frame).await;
        assert_eq!(reply.error.expect("error").code, "bad_request");
    }
}

#[tokio::test]
async fn a_silent_message_gets_no_push() {
    let logic = logic().await;
    let (alice, bob) = (session("alice", "a1"), session("bob", "b1"));
    register(&logic, &bob, "bob-token").await;
    let mut frame = text_to("bob", "quiet");
    frame.silent = Some(true);
    send(&logic, &alice, frame).await;
    assert!(queued(logic.stores()).await.is_empty());
}

#[tokio::test]
async fn badge_equals_the_users_total_unread() {
    let logic = logic().await;
    let (alice, carol, bob) = (
        session("alice", "a1"),
        session("carol", "c1"),
        session("bob", "b1"),
    );
    register(&logic, &bob, "bob-token").await;
    send(&logic, &alice, text_to("bob", "1")).await;
    send(&logic, &alice, text_to("bob", "2")).await;
    send(&logic, &carol, text_to("bob", "3")).await;
    let badges: Vec<Option<u32>> = queued(logic.stores())
        .await
        .iter()
        .map(|p| p.badge)
        .collect();
    let mut sorted = badges.clone();
    sorted.sort();
    assert_eq!(sorted, vec![Some(1), Some(2), Some(3)]);
}

#[tokio::test]
async fn logout_and_unregister_stop_pushes() {
    let logic = logic().await;
    let (alice, bob) = (session("alice", "a1"), session("bob", "b1"));
    register(&logic, &bob, "bob-token").await;
    call(
        &logic,
        &bob,
        Frame {
            op: ops::LOGOUT.into(),
            ..Default::default()
        },
    )
    .await;
    send(&logic, &alice, text_to("bob", "gone?")).await;
    assert!(
        queued(logic.stores()).await.is_empty(),
        "logged out → no push"
    );
    register(&logic, &bob, "bob-token").await;
    call(
        &logic,
        &bob,
        Frame {
            op: ops::PUSH_UNREGISTER.into(),
            ..Default::default()
        },
    )
    .await;
    send(&logic, &alice, text_to("bob", "gone!")).await;
    assert!(queued(logic.stores()).await.is_empty());
}

#[tokio::test]
async fn templates_hide_content_and_use_placeholders() {
    let mut settings = AppSettings::default();
    settings.push.title = "New message from {sender}".into();
    let logic = logic_with(settings).await;
    let (alice, bob) = (session("alice", "a1"), session("bob", "b1"));
    register(&logic, &bob, "bob-token").await;
    let mut image = text_to("bob", "");
    image.body = r#"{"type":"image","url":"https://x/y.png"}"#.into();
    send(&logic, &alice, image).await;
    let p = queued(logic.stores()).await.remove(0);
    assert_eq!(p.title, "New message from alice");
    assert_eq!(p.body, "[image]");

    let mut hidden = AppSettings::default();
    hidden.push.hide_content = true;
    let logic = logic_with(hidden).await;
    register(&logic, &bob, "bob-token").await;
    send(&logic, &alice, text_to("bob", "secret")).await;
    assert_eq!(
        queued(logic.stores()).await.remove(0).body,
        "You have a new message"
    );
}

#[tokio::test]
async fn a_dead_token_removed_by_the_worker_gets_no_more_jobs() {
    let logic = logic().await;
    let (alice, bob) = (session("alice", "a1"), session("bob", "b1"));
    register(&logic, &bob, "bob-token").await;
    send(&logic, &alice, text_to("bob", "one")).await;
    let fake = Arc::new(FakeProvider::new(Vendor::Apns).otherwise(
        confab_push::Outcome::DeadToken {
            reason: "410 Unregistered".into(),
        },
    ));
    let stores = logic.stores().clone();
    let worker = Worker::new(
        stores.push_queue.clone(),
        stores.devices.clone(),
        Arc::new(StaticProviders::default().with(&alice.app_id, fake.clone())),
        WorkerConfig::default(),
    );
    assert_eq!(worker.run_once().await.expect("run"), 1);
    assert_eq!(fake.received().len(), 1);
    send(&logic, &alice, text_to("bob", "two")).await;
    assert_eq!(stores.push_queue.stats().await.expect("stats").depth, 0);
}

#[tokio::test]
async fn offline_message_reaches_the_provider_through_the_worker() {
    let logic = logic().await;
    let (alice, bob) = (session("alice", "a1"), session("bob", "b1"));
    register(&logic, &bob, "bob-token").await;
    send(&logic, &alice, text_to("bob", "via apns")).await;
    let fake = Arc::new(FakeProvider::new(Vendor::Apns));
    let stores = logic.stores().clone();
    let worker = Worker::new(
        stores.push_queue.clone(),
        stores.devices.clone(),
        Arc::new(StaticProviders::default().with(&alice.app_id, fake.clone())),
        WorkerConfig::default(),
    );
    worker.run_once().await.expect("run");
    let got = fake.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.body, "via apns");
    assert_eq!(got[0].1.badge, Some(1));
}

#[tokio::test]
async fn an_app_without_push_devices_gets_its_first_device_pushed_at_once() {
    let logic = logic().await;
    let (alice, bob) = (session("alice", "a1"), session("bob", "b1"));
    // No device in the app yet: the decision remembers "none" ...
    send(&logic, &alice, text_to("bob", "before")).await;
    assert!(queued(logic.stores()).await.is_empty());
    // ... but a registration on this node is seen by the very next send,
    // not after the "none" cache runs out.
    register(&logic, &bob, "bob-token").await;
    send(&logic, &alice, text_to("bob", "after")).await;
    let pushes = queued(logic.stores()).await;
    assert_eq!(pushes.len(), 1, "the first device of the app gets its push");
    assert_eq!(pushes[0].body, "after");
}

#[tokio::test]
async fn a_device_registered_on_another_node_is_seen_within_the_no_devices_ttl() {
    let logic = logic().await;
    let (alice, bob) = (session("alice", "a1"), session("bob", "b1"));
    send(&logic, &alice, text_to("bob", "before")).await;
    // Another logic node registers the device: straight into the store.
    logic
        .stores()
        .devices
        .register_push(
            &bob.app_id,
            confab_store::PushDevice {
                user_id: bob.user_id.clone(),
                device_id: bob.device_id.clone(),
                vendor: "apns".into(),
                token: "bob-token".into(),
                bundle: "com.example.chat".into(),
                locale: String::new(),
                background: false,
                updated_at: confab_model::now_ms(),
            },
        )
        .await
        .expect("register");
    tokio::time::sleep(crate::push::NO_DEVICES_TTL + Duration::from_millis(100)).await;
    send(&logic, &alice, text_to("bob", "after")).await;
    let pushes = queued(logic.stores()).await;
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].body, "after");
}
