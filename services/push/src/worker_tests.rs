//! The worker against a real SQLite queue and the recording fake provider.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use confab_model::{AppId, UserId};
use confab_store::sqlite::{SqliteOptions, SqliteStore};
use confab_store::{NewPushJob, PushDevice, Stores};

use super::*;
use crate::source::StaticProviders;
use crate::testing::FakeProvider;

async fn stores() -> Stores {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("push.db");
    std::mem::forget(dir);
    SqliteStore::open(&path, SqliteOptions::default())
        .await
        .expect("open")
        .into_stores()
}

fn app() -> AppId {
    AppId::parse("app1").expect("app")
}

fn message(token: &str) -> PushMessage {
    PushMessage {
        id: crate::template::new_message_id(),
        token: token.into(),
        bundle: "com.example.chat".into(),
        title: "alice".into(),
        body: "hi".into(),
        badge: Some(1),
        collapse_id: Some("p2p:alice:bob".into()),
        thread_id: Some("p2p:alice:bob".into()),
        data: Default::default(),
        expires_at: None,
        high_priority: true,
    }
}

/// Enqueues one job per token; returns their notification ids.
async fn enqueue(s: &Stores, vendor: Vendor, tokens: &[&str]) -> Vec<String> {
    let jobs: Vec<NewPushJob> = tokens
        .iter()
        .map(|t| {
            let m = message(t);
            NewPushJob {
                id: m.id.clone(),
                app_id: app(),
                user_id: UserId::parse("bob").expect("user"),
                device_id: format!("dev-{t}"),
                vendor: vendor.as_str().into(),
                payload: serde_json::to_string(&m).expect("json"),
            }
        })
        .collect();
    let ids = jobs.iter().map(|j| j.id.clone()).collect();
    s.push_queue.enqueue(jobs).await.expect("enqueue");
    ids
}

fn worker(s: &Stores, providers: StaticProviders, config: WorkerConfig) -> Worker {
    Worker::new(
        s.push_queue.clone(),
        s.devices.clone(),
        Arc::new(providers),
        config,
    )
}

fn quick() -> WorkerConfig {
    WorkerConfig {
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
        ..WorkerConfig::default()
    }
}

#[tokio::test]
async fn a_sent_job_is_completed_and_carries_its_id() {
    let s = stores().await;
    let ids = enqueue(&s, Vendor::Apns, &["t1"]).await;
    let fake = Arc::new(FakeProvider::new(Vendor::Apns));
    let w = worker(
        &s,
        StaticProviders::default().with(&app(), fake.clone()),
        quick(),
    );
    assert_eq!(w.run_once().await.expect("run"), 1);
    assert_eq!(fake.received_ids(), ids);
    assert_eq!(fake.received()[0].1.token, "t1");
    assert_eq!(s.push_queue.stats().await.expect("stats").depth, 0);
}

#[tokio::test]
async fn retry_after_is_honoured_not_retried_before() {
    let s = stores().await;
    let ids = enqueue(&s, Vendor::Fcm, &["t1"]).await;
    let fake = Arc::new(FakeProvider::new(Vendor::Fcm).then([Outcome::Retry {
        after: Some(Duration::from_millis(800)),
        reason: "429 Too Many Requests".into(),
    }]));
    let w = worker(
        &s,
        StaticProviders::default().with(&app(), fake.clone()),
        quick(),
    );
    assert_eq!(w.run_once().await.expect("run"), 1);
    // Before Retry-After: nothing to claim.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.run_once().await.expect("run"), 0);
    assert_eq!(fake.received().len(), 1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(w.run_once().await.expect("run"), 1);
    let got = fake.received();
    assert_eq!(got.len(), 2);
    assert!(got[1].0 - got[0].0 >= Duration::from_millis(800));
    // The repeat is the same notification.
    assert_eq!(got[1].1.id, ids[0]);
    assert_eq!(s.push_queue.stats().await.expect("stats").depth, 0);
}

#[tokio::test]
async fn a_dead_token_forgets_the_device_and_completes_the_job() {
    let s = stores().await;
    let bob = UserId::parse("bob").expect("user");
    s.devices
        .register_push(
            &app(),
            PushDevice {
                user_id: bob.clone(),
                device_id: "dev-t1".into(),
                vendor: "apns".into(),
                token: "t1".into(),
                bundle: "com.example.chat".into(),
                locale: "en".into(),
                background: false,
                updated_at: 0,
            },
        )
        .await
        .expect("register");
    enqueue(&s, Vendor::Apns, &["t1"]).await;
    let fake = Arc::new(
        FakeProvider::new(Vendor::Apns).otherwise(Outcome::DeadToken {
            reason: "410 Unregistered".into(),
        }),
    );
    let w = worker(&s, StaticProviders::default().with(&app(), fake), quick());
    assert_eq!(w.run_once().await.expect("run"), 1);
    assert!(
        s.devices
            .push_devices(&app(), &bob)
            .await
            .expect("devices")
            .is_empty()
    );
    assert_eq!(s.push_queue.stats().await.expect("stats").depth, 0);
    assert!(
        s.push_queue
            .dead_letters(&app(), 10)
            .await
            .expect("dead")
            .is_empty()
    );
}

#[tokio::test]
async fn exhausted_retries_are_dead_lettered_with_the_reason() {
    let s = stores().await;
    let ids = enqueue(&s, Vendor::Huawei, &["t1"]).await;
    let fake = Arc::new(FakeProvider::new(Vendor::Huawei).otherwise(Outcome::Retry {
        after: None,
        reason: "503 Service Unavailable".into(),
    }));
    let config = WorkerConfig {
        max_attempts: 3,
        ..quick()
    };
    let w = worker(
        &s,
        StaticProviders::default().with(&app(), fake.clone()),
        config,
    );
    for _ in 0..50 {
        w.run_once().await.expect("run");
        if s.push_queue.stats().await.expect("stats").depth == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(fake.received().len(), 3);
    let dead = s.push_queue.dead_letters(&app(), 10).await.expect("dead");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].job.id, ids[0]);
    assert!(
        dead[0].reason.contains("gave up after 3 attempts") && dead[0].reason.contains("503"),
        "{}",
        dead[0].reason
    );
}

#[tokio::test]
async fn a_permanent_failure_is_dead_lettered_at_once() {
    let s = stores().await;
    enqueue(&s, Vendor::Xiaomi, &["t1"]).await;
    let fake = Arc::new(
        FakeProvider::new(Vendor::Xiaomi).otherwise(Outcome::Failed {
            reason: "invalid package name".into(),
        }),
    );
    let w = worker(&s, StaticProviders::default().with(&app(), fake), quick());
    w.run_once().await.expect("run");
    let dead = s.push_queue.dead_letters(&app(), 10).await.expect("dead");
    assert_eq!(dead[0].reason, "invalid package name");
}

#[tokio::test]
async fn no_credentials_for_the_vendor_dead_letters_with_a_clear_reason() {
    let s = stores().await;
    enqueue(&s, Vendor::Oppo, &["t1"]).await;
    let w = worker(&s, StaticProviders::default(), quick());
    w.run_once().await.expect("run");
    let dead = s.push_queue.dead_letters(&app(), 10).await.expect("dead");
    assert_eq!(dead[0].reason, "no oppo credentials uploaded for app app1");
}

#[tokio::test]
async fn a_worker_killed_mid_batch_loses_nothing_and_repeats_carry_the_same_id() {
    let s = stores().await;
    let tokens: Vec<String> = (0..40).map(|i| format!("t{i}")).collect();
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let ids: BTreeSet<String> = enqueue(&s, Vendor::Apns, &refs).await.into_iter().collect();
    // Worker A takes the whole batch with a short lease, gets some of it
    // to the provider (which hangs), and dies.
    let hanging = Arc::new(FakeProvider::new(Vendor::Apns).slow(Duration::from_secs(3600)));
    let a = worker(
        &s,
        StaticProviders::default().with(&app(), hanging.clone()),
        WorkerConfig {
            lease: Duration::from_millis(500),
            concurrency: 8,
            ..quick()
        },
    );
    let task = tokio::spawn(async move { a.run_once().await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    task.abort();
    let _ = task.await;
    let reached_a: Vec<String> = hanging.received_ids();
    assert!(!reached_a.is_empty(), "worker A was mid-batch");
    // Worker B: nothing to claim while A's lease runs, everything after.
    let fake = Arc::new(FakeProvider::new(Vendor::Apns));
    let b = worker(
        &s,
        StaticProviders::default().with(&app(), fake.clone()),
        quick(),
    );
    assert_eq!(b.run_once().await.expect("run"), 0);
    tokio::time::sleep(Duration::from_millis(600)).await;
    while b.run_once().await.expect("run") > 0 {}
    let sent: BTreeSet<String> = fake.received_ids().into_iter().collect();
    assert_eq!(sent, ids, "every job sent, each with its original id");
    assert!(
        reached_a.iter().all(|id| sent.contains(id)),
        "repeats carry the same id"
    );
    assert_eq!(s.push_queue.stats().await.expect("stats").depth, 0);
}
