//! The distributed stores on a Redis Cluster (three masters): the whole
//! conformance suite, and the writes that name many users — a message to
//! many recipients, route lookups of many users — landing on every master
//! without a `CROSSSLOT`.
//!
//! One cluster serves this test process; each store writes under a key
//! prefix of its own, so tests running in parallel never see each other's
//! keys (the prefix is outside the hash tag: slots are the production ones).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use confab_model::{AppId, ConvId, Peer, UserId};
use confab_store::postgres::{PgOptions, PgStore};
use confab_store::redis_store::{RedisConn, RedisTarget};
use confab_store::{NewMessage, Route, Stores};

fn cluster() -> &'static confab_testkit::RedisCluster {
    static CLUSTER: OnceLock<confab_testkit::RedisCluster> = OnceLock::new();
    // Never dropped: the watchdog stops the servers when the process exits.
    CLUSTER.get_or_init(confab_testkit::redis_cluster)
}

async fn connect() -> RedisConn {
    let target = RedisTarget::parse(&cluster().urls, true).expect("seed URLs");
    let prefix = format!("t{}", ulid::Ulid::new().to_string().to_lowercase());
    let conn = confab_store::redis_store::connect(&target)
        .await
        .expect("connect to the Redis Cluster");
    assert!(conn.is_cluster());
    conn.with_prefix(&prefix)
}

async fn stores() -> (Stores, RedisConn) {
    let url = confab_testkit::postgres().await;
    let pg = PgStore::connect(&url, PgOptions::default())
        .await
        .expect("connect to PostgreSQL");
    let conn = connect().await;
    (
        confab_store::redis_store::distributed_on(pg, conn.clone(), 1000, 3600),
        conn,
    )
}

async fn fresh() -> Stores {
    stores().await.0
}

confab_store::conformance_tests!(fresh());

/// The cluster's slot map: (first slot, last slot, master `host:port`).
async fn slot_map(conn: &RedisConn) -> Vec<(u16, u16, String)> {
    let mut conn = conn.clone();
    let raw: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(&mut conn)
        .await
        .expect("CLUSTER SLOTS");
    raw.into_iter()
        .map(|range| {
            let first: u16 = redis::from_redis_value(&range[0]).expect("first slot");
            let last: u16 = redis::from_redis_value(&range[1]).expect("last slot");
            let master: Vec<redis::Value> = redis::from_redis_value(&range[2]).expect("master");
            let host: String = redis::from_redis_value(&master[0]).expect("host");
            let port: u16 = redis::from_redis_value(&master[1]).expect("port");
            (first, last, format!("{host}:{port}"))
        })
        .collect()
}

fn master_of(map: &[(u16, u16, String)], key: &str) -> String {
    let slot = redis::cluster_routing::get_slot(key.as_bytes());
    map.iter()
        .find(|(first, last, _)| (*first..=*last).contains(&slot))
        .map(|(_, _, m)| m.clone())
        .expect("every slot is assigned")
}

/// A plain (not cluster-aware) connection to one master: it answers only
/// for its own slots (`MOVED` otherwise), so a key read there is proof of
/// where the key lives.
async fn node(addr: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://{addr}"))
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to a master")
}

fn users(n: usize) -> Vec<UserId> {
    (0..n)
        .map(|i| UserId::parse(&format!("user{i}")).expect("user"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_of_many_users_spread_over_all_masters_and_read_back() {
    let (stores, conn) = stores().await;
    let app = AppId::parse("app1").expect("app");
    let users = users(200);
    for (i, u) in users.iter().enumerate() {
        for device in ["phone", "web"] {
            stores
                .routes
                .register(
                    &app,
                    u,
                    Route {
                        device_id: device.into(),
                        session_id: format!("s{i}"),
                        node: format!("gw{}", i % 3),
                        platform: device.into(),
                    },
                )
                .await
                .expect("register");
        }
    }
    // Every user's routes, looked up concurrently (as ClusterDelivery does
    // for a group's members): many slots, every master.
    let lookups = users.iter().map(|u| stores.routes.routes(&app, u));
    let found = futures_util::future::try_join_all(lookups)
        .await
        .expect("route lookups on every master");
    for (i, routes) in found.iter().enumerate() {
        assert_eq!(routes.len(), 2, "user{i}'s two devices");
        assert!(routes.iter().all(|r| r.node == format!("gw{}", i % 3)));
    }
    // The keys really are spread: read each on the master its slot names.
    let map = slot_map(&conn).await;
    let mut per_master: BTreeMap<String, usize> = BTreeMap::new();
    for u in &users {
        let key = format!("{}:{{app1:{}}}:routes", conn.prefix(), u.as_str());
        let master = master_of(&map, &key);
        let devices: usize = redis::cmd("HLEN")
            .arg(&key)
            .query_async(&mut node(&master).await)
            .await
            .expect("the key's own master answers for it");
        assert_eq!(devices, 2, "{key} on {master}");
        *per_master.entry(master).or_default() += 1;
    }
    assert_eq!(
        per_master.len(),
        3,
        "users on all three masters: {per_master:?}"
    );
    // Unregistering works in every slot too.
    for u in users.iter().take(50) {
        stores
            .routes
            .unregister(&app, u, "web", "s-stale")
            .await
            .expect("stale unregister");
    }
    assert_eq!(
        stores
            .routes
            .routes(&app, &users[0])
            .await
            .expect("routes")
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_many_recipients_lands_in_every_ring_on_every_master() {
    let (stores, conn) = stores().await;
    let app = AppId::parse("app1").expect("app");
    let members = users(120);
    let from = members[0].clone();
    let appended = stores
        .messages
        .append(NewMessage {
            app_id: app.clone(),
            conv_id: ConvId::p2p(&from, &members[1]),
            msg_id: "m-fanout".into(),
            from: from.clone(),
            to: Peer::user(&members[1]),
            body: r#"{"type":"text","text":"to everyone"}"#.into(),
            ts: 1,
            client_msg_id: "c-fanout".into(),
            recipients: members.clone(),
            read_fanout: false,
        })
        .await
        .expect("append");
    assert_eq!(appended.inbox.len(), members.len());
    // The ring push is split per slot: every recipient's ring holds the
    // entry on its own master (a CROSSSLOT would have left them empty —
    // the push failure is only logged, sync falling back to PostgreSQL).
    let map = slot_map(&conn).await;
    let mut masters = BTreeSet::new();
    for u in &members {
        let key = format!("{}:{{app1:{}}}:inbox", conn.prefix(), u.as_str());
        let master = master_of(&map, &key);
        let held: usize = redis::cmd("ZCARD")
            .arg(&key)
            .query_async(&mut node(&master).await)
            .await
            .expect("zcard on the key's master");
        assert_eq!(held, 1, "{key} on {master}");
        masters.insert(master);
    }
    assert_eq!(masters.len(), 3, "recipients on all three masters");
    for u in &members {
        let synced = stores.inbox.since(&app, u, 0, 10).await.expect("sync");
        assert_eq!(synced.len(), 1);
        assert_eq!(synced[0].message.msg_id, appended.message.msg_id);
    }
    // A purge clears many users' rings at once (one DEL pipeline per slot).
    let purged = stores
        .messages
        .purge_older_than(&app, 2, 1000)
        .await
        .expect("purge across slots");
    assert_eq!(purged.users.len(), members.len());
    for u in members.iter().take(30) {
        let key = format!("{}:{{app1:{}}}:inbox", conn.prefix(), u.as_str());
        let master = master_of(&map, &key);
        let exists: bool = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut node(&master).await)
            .await
            .expect("exists");
        assert!(!exists, "{key}'s ring dropped after the purge");
    }
}
