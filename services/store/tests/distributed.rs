//! The conformance suite against the distributed stores (PostgreSQL + Redis
//! ring and route table), plus the ring's own contract: a sync is served from
//! the ring when it can be, from PostgreSQL otherwise, with the same answer.

use std::sync::Arc;

use confab_model::{AppId, ConvId, Peer, UserId};

use confab_store::postgres::{PgOptions, PgStore};
use confab_store::redis_store::RedisTarget;
use confab_store::{NewMessage, Stores};

async fn stores_with_ring(capacity: usize) -> (Stores, confab_testkit::RedisServer) {
    let url = confab_testkit::postgres().await;
    let pg = PgStore::connect(&url, PgOptions::default())
        .await
        .expect("connect to PostgreSQL");
    let redis = confab_testkit::redis();
    let stores = confab_store::redis_store::distributed(
        pg,
        &RedisTarget::Single(redis.url.clone()),
        capacity,
        3600,
    )
    .await
    .expect("connect to Redis");
    (stores, redis)
}

async fn fresh() -> Stores {
    let (stores, redis) = stores_with_ring(1000).await;
    // The server lives until the test process exits (its watchdog stops it).
    std::mem::forget(redis);
    stores
}

confab_store::conformance_tests!(fresh());

fn msg(app: &AppId, from: &str, to: &str, cid: &str) -> NewMessage {
    let (f, t) = (
        UserId::parse(from).expect("user"),
        UserId::parse(to).expect("user"),
    );
    NewMessage {
        app_id: app.clone(),
        conv_id: ConvId::p2p(&f, &t),
        msg_id: format!("m-{from}-{cid}"),
        from: f.clone(),
        to: Peer::user(&t),
        body: format!(r#"{{"type":"text","text":"{cid}"}}"#),
        ts: 1,
        client_msg_id: cid.into(),
        recipients: vec![f, t],
        read_fanout: false,
    }
}

async fn served_from(
    stores: &Stores,
    app: &AppId,
    user: &UserId,
    since: u64,
    limit: u32,
) -> Vec<u64> {
    stores
        .inbox
        .since(app, user, since, limit)
        .await
        .expect("since")
        .iter()
        .map(|e| e.inbox_seq)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_falls_back_to_postgres_when_since_fell_off_the_ring_with_the_same_answer() {
    let (stores, _redis) = stores_with_ring(10).await;
    let app = AppId::parse("app1").expect("app");
    for i in 0..50 {
        stores
            .messages
            .append(msg(&app, "alice", "bob", &format!("c{i}")))
            .await
            .expect("append");
    }
    let bob = UserId::parse("bob").expect("user");
    // Recent: from the ring (the last 10 entries are 41..=50).
    assert_eq!(
        served_from(&stores, &app, &bob, 45, 100).await,
        (46..=50).collect::<Vec<_>>()
    );
    // Fallen off the ring: from PostgreSQL, same shape.
    assert_eq!(
        served_from(&stores, &app, &bob, 0, 100).await,
        (1..=50).collect::<Vec<_>>()
    );
    // The ring's entries are the roaming store's, field for field.
    let from_ring = stores
        .inbox
        .since(&app, &bob, 45, 100)
        .await
        .expect("since");
    let from_pg = stores.inbox.since(&app, &bob, 0, 100).await.expect("since");
    assert_eq!(from_ring, from_pg[45..].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_is_complete_after_redis_restarts_empty() {
    let (stores, mut redis) = stores_with_ring(1000).await;
    let app = AppId::parse("app1").expect("app");
    for i in 0..10 {
        stores
            .messages
            .append(msg(&app, "alice", "bob", &format!("a{i}")))
            .await
            .expect("append");
    }
    redis.restart();
    // Sends go on while the connection manager reconnects; the ring now holds
    // only the newest entries.
    for i in 0..10 {
        stores
            .messages
            .append(msg(&app, "alice", "bob", &format!("b{i}")))
            .await
            .expect("append survives a Redis restart");
    }
    let bob = UserId::parse("bob").expect("user");
    assert_eq!(
        served_from(&stores, &app, &bob, 0, 100).await,
        (1..=20).collect::<Vec<_>>()
    );
    assert_eq!(served_from(&stores, &app, &bob, 5, 3).await, vec![6, 7, 8]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_succeed_and_sync_is_complete_while_redis_is_down() {
    let (stores, mut redis) = stores_with_ring(1000).await;
    let app = AppId::parse("app1").expect("app");
    stores
        .messages
        .append(msg(&app, "alice", "bob", "before"))
        .await
        .expect("append");
    redis.kill();
    for i in 0..5 {
        stores
            .messages
            .append(msg(&app, "alice", "bob", &format!("down{i}")))
            .await
            .expect("append with Redis down");
    }
    let bob = UserId::parse("bob").expect("user");
    assert_eq!(
        served_from(&stores, &app, &bob, 0, 100).await,
        (1..=6).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recall_is_never_served_stale_from_the_ring() {
    let (stores, _redis) = stores_with_ring(1000).await;
    let app = AppId::parse("app1").expect("app");
    let r = stores
        .messages
        .append(msg(&app, "alice", "bob", "secret"))
        .await
        .expect("append");
    stores
        .messages
        .recall(&app, &r.message.conv_id, &r.message.msg_id)
        .await
        .expect("recall");
    let synced = stores
        .inbox
        .since(&app, &UserId::parse("bob").expect("user"), 0, 10)
        .await
        .expect("since");
    assert!(synced[0].message.recalled);
    assert!(!synced[0].message.body.contains("secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_two_nodes_keep_seq_and_inbox_seq_gap_free() {
    // Two PgStores on one database = two logic nodes, each with its own writer.
    let url = confab_testkit::postgres().await;
    let a = Arc::new(
        PgStore::connect(&url, PgOptions::default())
            .await
            .expect("node a"),
    );
    let b = Arc::new(
        PgStore::connect(&url, PgOptions::default())
            .await
            .expect("node b"),
    );
    let app = AppId::parse("app1").expect("app");
    let mut tasks = Vec::new();
    for (n, node) in [a.clone(), b.clone()].into_iter().enumerate() {
        for s in 0..5 {
            let node = node.clone();
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                use confab_store::MessageStore;
                for i in 0..40 {
                    node.append(msg(&app, &format!("n{n}s{s}"), "bob", &format!("{i}")))
                        .await
                        .expect("append");
                    // Both nodes also write into one shared conversation.
                    node.append(msg(&app, "shared", "carol", &format!("n{n}s{s}x{i}")))
                        .await
                        .expect("append");
                }
            }));
        }
    }
    for t in tasks {
        t.await.expect("join");
    }
    use confab_store::InboxStore;
    let bob = UserId::parse("bob").expect("user");
    let entries = a.since(&app, &bob, 0, 1000).await.expect("since");
    assert_eq!(
        entries.iter().map(|e| e.inbox_seq).collect::<Vec<_>>(),
        (1..=400).collect::<Vec<_>>()
    );
    let carol = UserId::parse("carol").expect("user");
    assert_eq!(b.head(&app, &carol).await.expect("head"), 400);
    use confab_store::MessageStore;
    let shared = ConvId::p2p(&UserId::parse("shared").expect("user"), &carol);
    let mut seqs: Vec<u64> = Vec::new();
    let mut before = None;
    loop {
        let page = a
            .history(&app, &shared, before, 100)
            .await
            .expect("history");
        if page.is_empty() {
            break;
        }
        before = page.last().map(|m| m.seq);
        seqs.extend(page.iter().map(|m| m.seq));
    }
    assert_eq!(
        seqs,
        (1..=400).rev().collect::<Vec<_>>(),
        "one gap-free seq sequence across both nodes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_missing_the_newest_entries_is_not_served() {
    let url = confab_testkit::postgres().await;
    let redis = confab_testkit::redis();
    let pg = PgStore::connect(&url, PgOptions::default())
        .await
        .expect("connect");
    let stores = confab_store::redis_store::distributed(
        pg,
        &RedisTarget::Single(redis.url.clone()),
        1000,
        3600,
    )
    .await
    .expect("redis");
    let app = AppId::parse("app1").expect("app");
    for i in 0..5 {
        stores
            .messages
            .append(msg(&app, "alice", "bob", &format!("c{i}")))
            .await
            .expect("append");
    }
    // A message committed by a node whose ring push never landed.
    let other = PgStore::connect(&url, PgOptions::default())
        .await
        .expect("second node");
    use confab_store::MessageStore;
    other
        .append(msg(&app, "alice", "bob", "unringed"))
        .await
        .expect("append without the ring");
    let bob = UserId::parse("bob").expect("user");
    assert_eq!(
        served_from(&stores, &app, &bob, 3, 100).await,
        vec![4, 5, 6]
    );
    assert_eq!(served_from(&stores, &app, &bob, 5, 100).await, vec![6]);
}
