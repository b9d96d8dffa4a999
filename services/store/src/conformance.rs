//! The conformance suite: what every backend must do, whatever it is built on.
//!
//! Each check is a `pub async fn(Stores)` so that a backend's test file runs
//! them all with [`conformance_tests!`](crate::conformance_tests), giving one
//! named test per behaviour. Checks panic with a message on failure.

use confab_model::{AppId, ConvId, Peer, UserId};

use confab_model::{GroupId, GroupRole, JoinPolicy};

use crate::{
    ControlWrite, GroupLimits, GroupUpdate, JOIN_PENDING, MemberEvent, NewGroup, NewMessage, Route,
    StoreError, Stores,
};

/// Expands to one `#[tokio::test]` per conformance check, each on a fresh
/// backend made by `$make` (an async expression returning `Stores`).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make,
            append_assigns_consecutive_seq_per_conversation,
            resend_with_same_client_msg_id_returns_the_original,
            concurrent_duplicates_in_one_batch_store_one_message,
            inbox_seq_is_gap_free_per_user_across_concurrent_senders,
            sync_returns_entries_after_since_in_order_with_limit,
            history_pages_newest_first,
            read_cursor_only_moves_forward_and_counts_unread,
            sender_has_read_their_own_message,
            recall_replaces_the_body,
            retention_purge_removes_old_content_and_never_reuses_seqs,
            apps_never_see_each_others_data,
            token_revocation_time_only_moves_forward,
            control_writes_are_atomic_and_versioned,
            route_table_tracks_devices_per_user,
            group_create_get_update_and_dismiss,
            group_members_add_remove_page_and_count,
            group_roles_transfer_and_mute,
            group_limits_are_enforced_atomically,
            groups_of_other_apps_are_invisible,
            membership_changes_store_their_event_as_pending_in_the_same_write,
            rooms_create_get_close_per_app,
            room_presence_counts_members_per_node,
            webhook_outbox_claims_leases_retries_and_dead_letters,
            webhook_outbox_concurrent_claims_never_share_an_event,
            push_devices_register_replace_and_unregister,
            push_targets_carry_mutes_and_dnd,
            push_queue_claims_completes_retries_and_dead_letters,
            push_queue_lease_expiry_redelivers_with_the_same_id,
            push_queue_concurrent_claimers_never_share_a_job,
            get_by_id_finds_only_the_apps_own_message,
            users_import_get_update_and_delete_per_app,
            clear_inbox_forgets_one_user_and_never_reuses_inbox_seqs,
            group_join_requests_replace_expire_page_and_take_once,
            group_mentions_count_after_the_read_cursor,
            pull_group_timelines_gives_each_read_fanout_message_once_from_joining,
            pull_group_timelines_after_concurrent_pulls_gives_each_message_once,
            a_sender_without_an_entry_at_append_pulls_their_own_message_in_seq_order,
            group_has_unpulled_until_every_member_has_pulled,
            a_pending_membership_reads_nothing_until_its_event_starts_it,
            a_removed_member_pulls_through_their_removal_only_what_came_while_a_member,
            usage_buckets_add_up_per_app_and_minute,
            usage_active_users_are_distinct_per_app_and_day,
        );
    };
    (@each $make:expr, $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let stores = $make.await;
                $crate::conformance::$name(stores).await;
            }
        )+
    };
}

fn app(id: &str) -> AppId {
    AppId::parse(id).expect("valid app id")
}
fn user(id: &str) -> UserId {
    UserId::parse(id).expect("valid user id")
}

fn p2p(app_id: &AppId, from: &str, to: &str, client_msg_id: &str) -> NewMessage {
    let (f, t) = (user(from), user(to));
    NewMessage {
        app_id: app_id.clone(),
        conv_id: ConvId::p2p(&f, &t),
        msg_id: format!("m-{}-{from}-{client_msg_id}", app_id.as_str()),
        from: f.clone(),
        to: Peer::user(&t),
        body: format!(r#"{{"type":"text","text":"{client_msg_id}"}}"#),
        ts: confab_model::now_ms(),
        client_msg_id: client_msg_id.to_owned(),
        recipients: vec![f, t],
        read_fanout: false,
    }
}

pub async fn append_assigns_consecutive_seq_per_conversation(s: Stores) {
    let a = app("app1");
    let mut seqs = vec![];
    for i in 0..5 {
        let from = if i % 2 == 0 { "alice" } else { "bob" };
        let to = if i % 2 == 0 { "bob" } else { "alice" };
        let r = s
            .messages
            .append(p2p(&a, from, to, &format!("c{i}")))
            .await
            .expect("append");
        assert!(!r.duplicate);
        seqs.push(r.message.seq);
    }
    assert_eq!(
        seqs,
        vec![1, 2, 3, 4, 5],
        "one seq sequence per conversation, from both sides"
    );
    let other = s
        .messages
        .append(p2p(&a, "alice", "carol", "x"))
        .await
        .expect("append");
    assert_eq!(other.message.seq, 1, "another conversation has its own seq");
}

pub async fn resend_with_same_client_msg_id_returns_the_original(s: Stores) {
    let a = app("app1");
    let first = s
        .messages
        .append(p2p(&a, "alice", "bob", "same"))
        .await
        .expect("append");
    let mut again = p2p(&a, "alice", "bob", "same");
    again.msg_id = "a-different-id".into();
    let second = s.messages.append(again).await.expect("append");
    assert!(second.duplicate);
    assert!(second.inbox.is_empty(), "a duplicate adds no inbox entries");
    assert_eq!(second.message.msg_id, first.message.msg_id);
    assert_eq!(second.message.seq, first.message.seq);
    assert_eq!(s.inbox.head(&a, &user("bob")).await.expect("head"), 1);
    // Another sender may use the same client_msg_id.
    let bobs = s
        .messages
        .append(p2p(&a, "bob", "alice", "same"))
        .await
        .expect("append");
    assert!(!bobs.duplicate);
    assert_eq!(bobs.message.seq, 2);
}

pub async fn concurrent_duplicates_in_one_batch_store_one_message(s: Stores) {
    let a = app("app1");
    let mut tasks = vec![];
    for _ in 0..20 {
        let s = s.clone();
        let m = p2p(&a, "alice", "bob", "dup");
        tasks.push(tokio::spawn(async move { s.messages.append(m).await }));
    }
    let mut originals = 0;
    let mut seqs = std::collections::HashSet::new();
    for t in tasks {
        let r = t.await.expect("join").expect("append");
        if !r.duplicate {
            originals += 1;
        }
        seqs.insert(r.message.seq);
    }
    assert_eq!(originals, 1, "exactly one append stores the message");
    assert_eq!(seqs.len(), 1, "every caller gets the same seq");
    assert_eq!(s.inbox.head(&a, &user("bob")).await.expect("head"), 1);
}

pub async fn inbox_seq_is_gap_free_per_user_across_concurrent_senders(s: Stores) {
    let a = app("app1");
    let mut tasks = vec![];
    for sender in 0..10 {
        let s = s.clone();
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                s.messages
                    .append(p2p(&a, &format!("s{sender}"), "bob", &format!("{i}")))
                    .await
                    .expect("append");
            }
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    let bob = user("bob");
    assert_eq!(s.inbox.head(&a, &bob).await.expect("head"), 500);
    let entries = s.inbox.since(&a, &bob, 0, 1000).await.expect("since");
    let seqs: Vec<u64> = entries.iter().map(|e| e.inbox_seq).collect();
    assert_eq!(seqs, (1..=500).collect::<Vec<_>>());
    // Each sender's own conversation kept its order.
    for sender in 0..10 {
        let conv = ConvId::p2p(&user(&format!("s{sender}")), &bob);
        let conv_seqs: Vec<u64> = entries
            .iter()
            .filter(|e| e.message.conv_id == conv)
            .map(|e| e.message.seq)
            .collect();
        assert_eq!(conv_seqs, (1..=50).collect::<Vec<_>>());
    }
}

pub async fn sync_returns_entries_after_since_in_order_with_limit(s: Stores) {
    let a = app("app1");
    for i in 0..10 {
        s.messages
            .append(p2p(&a, "alice", "bob", &format!("c{i}")))
            .await
            .expect("append");
    }
    let bob = user("bob");
    let page = s.inbox.since(&a, &bob, 3, 4).await.expect("since");
    assert_eq!(
        page.iter().map(|e| e.inbox_seq).collect::<Vec<_>>(),
        vec![4, 5, 6, 7]
    );
    assert_eq!(page[0].message.body, r#"{"type":"text","text":"c3"}"#);
    assert!(
        s.inbox
            .since(&a, &bob, 10, 100)
            .await
            .expect("since")
            .is_empty()
    );
    // The sender's inbox has the message too (their other devices sync it).
    assert_eq!(s.inbox.head(&a, &user("alice")).await.expect("head"), 10);
}

pub async fn history_pages_newest_first(s: Stores) {
    let a = app("app1");
    for i in 0..7 {
        s.messages
            .append(p2p(&a, "alice", "bob", &format!("c{i}")))
            .await
            .expect("append");
    }
    let conv = ConvId::p2p(&user("alice"), &user("bob"));
    let first = s
        .messages
        .history(&a, &conv, None, 3)
        .await
        .expect("history");
    assert_eq!(
        first.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![7, 6, 5]
    );
    let next = s
        .messages
        .history(&a, &conv, Some(5), 3)
        .await
        .expect("history");
    assert_eq!(
        next.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![4, 3, 2]
    );
    let last = s
        .messages
        .history(&a, &conv, Some(2), 3)
        .await
        .expect("history");
    assert_eq!(last.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1]);
}

pub async fn read_cursor_only_moves_forward_and_counts_unread(s: Stores) {
    let a = app("app1");
    for i in 0..4 {
        s.messages
            .append(p2p(&a, "alice", "bob", &format!("c{i}")))
            .await
            .expect("append");
    }
    // Conversations are ordered by last activity at millisecond resolution.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    s.messages
        .append(p2p(&a, "carol", "bob", "c"))
        .await
        .expect("append");
    let bob = user("bob");
    let conv = ConvId::p2p(&user("alice"), &bob);
    let (list, total) = s
        .reads
        .conversations(&a, &bob, 100)
        .await
        .expect("conversations");
    assert_eq!(total, 5);
    assert_eq!(list.len(), 2);
    assert_eq!(
        list[0].conv_id,
        ConvId::p2p(&user("carol"), &bob),
        "most recent first"
    );
    assert_eq!(
        s.reads.mark_read(&a, &bob, &conv, 3).await.expect("read"),
        Some((3, true))
    );
    assert_eq!(
        s.reads.mark_read(&a, &bob, &conv, 2).await.expect("read"),
        Some((3, false)),
        "never backwards"
    );
    assert_eq!(
        s.reads.mark_read(&a, &bob, &conv, 99).await.expect("read"),
        Some((4, true)),
        "capped at last seq"
    );
    let (list, total) = s
        .reads
        .conversations(&a, &bob, 100)
        .await
        .expect("conversations");
    assert_eq!(total, 1);
    let alice_conv = list.iter().find(|c| c.conv_id == conv).expect("listed");
    assert_eq!(alice_conv.unread(), 0);
    assert_eq!(alice_conv.last_message.as_ref().map(|m| m.seq), Some(4));
    let stranger = ConvId::p2p(&user("x"), &user("y"));
    assert_eq!(
        s.reads
            .mark_read(&a, &bob, &stranger, 1)
            .await
            .expect("read"),
        None
    );
}

pub async fn sender_has_read_their_own_message(s: Stores) {
    let a = app("app1");
    s.messages
        .append(p2p(&a, "alice", "bob", "c0"))
        .await
        .expect("append");
    let (list, total) = s
        .reads
        .conversations(&a, &user("alice"), 10)
        .await
        .expect("conversations");
    assert_eq!(total, 0);
    assert_eq!(list[0].unread(), 0);
    assert_eq!(list[0].read_seq, 1);
}

pub async fn retention_purge_removes_old_content_and_never_reuses_seqs(s: Stores) {
    let (a, other) = (app("a1"), app("a2"));
    let old = |from: &str, to: &str, id: &str, app_id: &AppId| {
        let mut m = p2p(app_id, from, to, id);
        m.ts = 1_000;
        m
    };
    for m in [
        old("alice", "bob", "c1", &a),
        old("alice", "bob", "c2", &a),
        p2p(&a, "alice", "bob", "c3"),
        old("alice", "dave", "d1", &a),
        old("alice", "bob", "x1", &other),
    ] {
        s.messages.append(m).await.expect("append");
    }
    let cutoff = 10_000;
    let mut purged = 0;
    loop {
        let n = s
            .messages
            .purge_older_than(&a, cutoff, 1)
            .await
            .expect("purge");
        if n.messages == 0 {
            break;
        }
        purged += n.messages;
    }
    assert_eq!(purged, 3, "c1, c2 and d1 lose their content");
    let conv = ConvId::p2p(&user("alice"), &user("bob"));
    let history = s
        .messages
        .history(&a, &conv, None, 10)
        .await
        .expect("history");
    assert_eq!(
        history
            .iter()
            .map(|m| m.client_msg_id.as_str())
            .collect::<Vec<_>>(),
        vec!["c3"]
    );
    let dave_conv = ConvId::p2p(&user("alice"), &user("dave"));
    let dave_history = s
        .messages
        .history(&a, &dave_conv, None, 10)
        .await
        .expect("history");
    assert!(
        dave_history
            .iter()
            .all(|m| m.recalled && !m.body.contains("d1")),
        "no old content survives: {dave_history:?}"
    );
    let bob_inbox = s.inbox.since(&a, &user("bob"), 0, 10).await.expect("since");
    assert_eq!(
        bob_inbox.iter().map(|e| e.inbox_seq).collect::<Vec<_>>(),
        vec![3],
        "sync skips purged entries"
    );
    assert_eq!(s.inbox.head(&a, &user("bob")).await.expect("head"), 3);
    // Counters go on from where they were, also where everything was purged.
    let next = s
        .messages
        .append(p2p(&a, "alice", "bob", "c4"))
        .await
        .expect("append");
    assert_eq!(next.message.seq, 4);
    assert!(next.inbox.contains(&(user("bob"), 4)));
    let next = s
        .messages
        .append(p2p(&a, "alice", "dave", "d2"))
        .await
        .expect("append");
    assert_eq!(next.message.seq, 2);
    assert!(next.inbox.contains(&(user("dave"), 2)));
    // Another app's old messages are not touched.
    let x = s
        .messages
        .history(&other, &conv, None, 10)
        .await
        .expect("history");
    assert_eq!(x.len(), 1);
    assert!(!x[0].recalled);
}

pub async fn recall_replaces_the_body(s: Stores) {
    let a = app("app1");
    let r = s
        .messages
        .append(p2p(&a, "alice", "bob", "c0"))
        .await
        .expect("append");
    let conv = r.message.conv_id.clone();
    assert!(
        s.messages
            .recall(&a, &conv, &r.message.msg_id)
            .await
            .expect("recall")
    );
    let got = s
        .messages
        .get(&a, &conv, &r.message.msg_id)
        .await
        .expect("get")
        .expect("exists");
    assert!(got.recalled);
    assert_eq!(got.body, confab_model::RECALLED_BODY);
    let synced = s.inbox.since(&a, &user("bob"), 0, 10).await.expect("since");
    assert!(synced[0].message.recalled);
    assert!(
        !s.messages
            .recall(&a, &conv, "no-such-id")
            .await
            .expect("recall")
    );
}

pub async fn apps_never_see_each_others_data(s: Stores) {
    let (a, b) = (app("app-a"), app("app-b"));
    s.messages
        .append(p2p(&a, "alice", "bob", "c0"))
        .await
        .expect("append");
    let r = s
        .messages
        .append(p2p(&b, "alice", "bob", "c0"))
        .await
        .expect("append");
    assert!(!r.duplicate, "dedupe is per app");
    assert_eq!(r.message.seq, 1, "seq is per app");
    let bob = user("bob");
    assert_eq!(
        s.inbox.since(&b, &bob, 0, 10).await.expect("since").len(),
        1
    );
    let conv = ConvId::p2p(&user("alice"), &bob);
    assert_eq!(
        s.messages
            .history(&b, &conv, None, 10)
            .await
            .expect("history")
            .len(),
        1
    );
    let a_msg = s
        .messages
        .history(&a, &conv, None, 10)
        .await
        .expect("history")
        .remove(0);
    assert_eq!(
        s.messages.get(&b, &conv, &a_msg.msg_id).await.expect("get"),
        None
    );
    assert!(
        !s.messages
            .recall(&b, &conv, &a_msg.msg_id)
            .await
            .expect("recall")
    );
}

pub async fn token_revocation_time_only_moves_forward(s: Stores) {
    let d = &s.revocations;
    let (a1, a2) = (app("a1"), app("a2"));
    let u = user("alice");
    assert_eq!(d.tokens_revoked_before(&a1, &u).await.expect("read"), None);
    d.revoke_tokens(&a1, &u, 100).await.expect("revoke");
    d.revoke_tokens(&a1, &u, 50).await.expect("revoke");
    assert_eq!(
        d.tokens_revoked_before(&a1, &u).await.expect("read"),
        Some(100),
        "never moves back"
    );
    assert_eq!(
        d.tokens_revoked_before(&a2, &u).await.expect("read"),
        None,
        "another app's user of the same id is untouched"
    );
}

fn insert(kind: &str, id: &str, tenant: Option<&str>, doc: &str) -> ControlWrite {
    ControlWrite::Insert {
        kind: kind.into(),
        id: id.into(),
        tenant_id: tenant.map(Into::into),
        doc: doc.into(),
    }
}

pub async fn control_writes_are_atomic_and_versioned(s: Stores) {
    let c = &s.control;
    assert_eq!(c.version().await.expect("version"), 0);
    let v1 = c
        .write(vec![
            insert("tenant", "t1", Some("t1"), r#"{"n":1}"#),
            insert("tenant_name", "acme", None, r#""t1""#),
        ])
        .await
        .expect("write");
    assert!(v1 > 0);
    let t1 = c.get("tenant", "t1").await.expect("get").expect("exists");
    assert_eq!((t1.doc.as_str(), t1.version), (r#"{"n":1}"#, v1));
    // A conflict anywhere in a write leaves nothing of it behind.
    let err = c
        .write(vec![
            insert("tenant", "t2", Some("t2"), "{}"),
            insert("tenant_name", "acme", None, r#""t2""#),
        ])
        .await
        .expect_err("name taken");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(c.get("tenant", "t2").await.expect("get").is_none());
    // Updating or deleting what is not there is NotFound, and also atomic.
    let err = c
        .write(vec![
            insert("app", "a9", Some("t1"), "{}"),
            ControlWrite::Update {
                kind: "app".into(),
                id: "nope".into(),
                doc: "{}".into(),
            },
        ])
        .await
        .expect_err("no such app");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert!(c.get("app", "a9").await.expect("get").is_none());
    let v2 = c
        .write(vec![
            insert("app", "a1", Some("t1"), "1"),
            insert("app", "a2", Some("t2"), "2"),
            insert("app", "a3", Some("t1"), "3"),
            ControlWrite::Put {
                kind: "words".into(),
                id: "global".into(),
                tenant_id: None,
                doc: "[]".into(),
            },
        ])
        .await
        .expect("write");
    assert!(v2 > v1, "versions move forward");
    let of_t1: Vec<String> = c
        .list("app", Some("t1"))
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(of_t1, vec!["a1".to_owned(), "a3".to_owned()]);
    assert_eq!(c.list("app", None).await.expect("list").len(), 3);
    let v3 = c
        .write(vec![
            ControlWrite::Update {
                kind: "app".into(),
                id: "a1".into(),
                doc: "11".into(),
            },
            ControlWrite::Put {
                kind: "words".into(),
                id: "global".into(),
                tenant_id: None,
                doc: r#"["x"]"#.into(),
            },
            ControlWrite::Delete {
                kind: "app".into(),
                id: "a2".into(),
            },
        ])
        .await
        .expect("write");
    assert_eq!(c.version().await.expect("version"), v3);
    let a1 = c.get("app", "a1").await.expect("get").expect("exists");
    assert_eq!(
        (a1.doc.as_str(), a1.tenant_id.as_deref(), a1.version),
        ("11", Some("t1"), v3)
    );
    assert!(c.get("app", "a2").await.expect("get").is_none());
    assert_eq!(
        c.get("words", "global").await.expect("get").map(|r| r.doc),
        Some(r#"["x"]"#.into())
    );
}

pub async fn route_table_tracks_devices_per_user(s: Stores) {
    let (a, u) = (app("app1"), user("alice"));
    let route = |device: &str, session: &str| Route {
        device_id: device.into(),
        session_id: session.into(),
        node: "n1".into(),
        platform: "ios".into(),
    };
    s.routes
        .register(&a, &u, route("phone", "s1"))
        .await
        .expect("register");
    s.routes
        .register(&a, &u, route("web", "s2"))
        .await
        .expect("register");
    s.routes
        .register(&a, &u, route("phone", "s3"))
        .await
        .expect("re-register replaces");
    s.routes
        .register(&a, &u, route("phone", "s2"))
        .await
        .expect("an older session arriving late");
    assert!(
        s.routes
            .routes(&a, &u)
            .await
            .expect("routes")
            .iter()
            .any(|r| r.session_id == "s3"),
        "an older session's route never replaces a newer one"
    );
    assert_eq!(s.routes.routes(&a, &u).await.expect("routes").len(), 2);
    s.routes
        .unregister(&a, &u, "phone", "s1")
        .await
        .expect("stale unregister");
    assert_eq!(
        s.routes.routes(&a, &u).await.expect("routes").len(),
        2,
        "a stale session does not remove the new one"
    );
    s.routes
        .unregister(&a, &u, "phone", "s3")
        .await
        .expect("unregister");
    assert_eq!(
        s.routes.routes(&a, &u).await.expect("routes"),
        vec![route("web", "s2")]
    );
    assert!(
        s.routes
            .routes(&app("other"), &u)
            .await
            .expect("routes")
            .is_empty()
    );
}

fn gid(id: &str) -> GroupId {
    GroupId::parse(id).expect("valid group id")
}

/// A membership event with a fresh id.
fn ev(kind: &str, actor: &str, at: i64) -> MemberEvent {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    MemberEvent {
        id: format!("ev-{at}-{n}"),
        kind: kind.into(),
        actor: user(actor),
        at,
    }
}

const ROOMY: GroupLimits = GroupLimits {
    max_members: 100,
    max_groups_per_user: 100,
};

fn new_group(app_id: &AppId, id: &str, owner: &str, members: &[&str]) -> NewGroup {
    NewGroup {
        app_id: app_id.clone(),
        group_id: gid(id),
        owner: user(owner),
        name: format!("{id} name"),
        avatar: String::new(),
        announcement: String::new(),
        custom: "{}".into(),
        join_policy: JoinPolicy::Open,
        members: members.iter().map(|m| user(m)).collect(),
        join_seq: 1,
        created_at: 1000,
        limits: ROOMY,
    }
}

fn ids(members: &[confab_model::GroupMember]) -> Vec<&str> {
    members.iter().map(|m| m.user_id.as_str()).collect()
}

pub async fn group_create_get_update_and_dismiss(s: Stores) {
    let a = app("app1");
    let g = s
        .groups
        .create_group(new_group(
            &a,
            "g1",
            "alice",
            &["bob", "carol", "bob", "alice"],
        ))
        .await
        .expect("create");
    assert_eq!(g.owner.as_str(), "alice");
    assert_eq!(g.member_count, 3, "repeats and the owner count once");
    assert_eq!(g.join_policy, JoinPolicy::Open);
    assert!(!g.dismissed && !g.mute_all);
    let again = s
        .groups
        .create_group(new_group(&a, "g1", "dave", &[]))
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    let updated = s
        .groups
        .update_group(
            &a,
            &gid("g1"),
            GroupUpdate {
                name: Some("Renamed".into()),
                announcement: Some("Read the rules".into()),
                custom: Some(r#"{"topic":"rust"}"#.into()),
                join_policy: Some(JoinPolicy::InviteOnly),
                ..Default::default()
            },
        )
        .await
        .expect("update");
    assert_eq!(updated.name, "Renamed");
    assert_eq!(updated.announcement, "Read the rules");
    assert_eq!(updated.custom, r#"{"topic":"rust"}"#);
    assert_eq!(updated.join_policy, JoinPolicy::InviteOnly);
    assert_eq!(updated.avatar, "", "fields left out stay as they were");
    let muted = s
        .groups
        .update_group(
            &a,
            &gid("g1"),
            GroupUpdate {
                mute_all: Some(true),
                avatar: Some("https://x/a.png".into()),
                ..Default::default()
            },
        )
        .await
        .expect("update");
    assert!(muted.mute_all);
    assert_eq!(muted.name, "Renamed");
    let got = s
        .groups
        .group(&a, &gid("g1"))
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got, muted);

    assert!(
        s.groups
            .dismiss(&a, &gid("g1"), &ev("dismissed", "alice", 2000))
            .await
            .expect("dismiss")
    );
    assert!(
        !s.groups
            .dismiss(&a, &gid("g1"), &ev("dismissed", "alice", 2001))
            .await
            .expect("again")
    );
    let gone = s
        .groups
        .group(&a, &gid("g1"))
        .await
        .expect("get")
        .expect("kept");
    assert!(gone.dismissed);
    assert_eq!(gone.member_count, 0);
    assert!(
        s.groups
            .members(&a, &gid("g1"), None, 10)
            .await
            .expect("members")
            .is_empty()
    );
    assert_eq!(s.groups.group_count(&a, &user("bob")).await.expect("n"), 0);
    assert!(matches!(
        s.groups
            .update_group(&a, &gid("g1"), GroupUpdate::default())
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.groups
            .add_members(
                &a,
                &gid("g1"),
                &[user("bob")],
                5,
                ROOMY,
                &ev("joined", "bob", 1)
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        matches!(
            s.groups.create_group(new_group(&a, "g1", "bob", &[])).await,
            Err(StoreError::Conflict(_))
        ),
        "a dismissed group's id is never reused"
    );
    assert!(
        s.groups
            .group(&a, &gid("nope"))
            .await
            .expect("get")
            .is_none()
    );
}

pub async fn group_members_add_remove_page_and_count(s: Stores) {
    let a = app("app1");
    s.groups
        .create_group(new_group(&a, "g1", "alice", &["bob"]))
        .await
        .expect("create");
    let added = s
        .groups
        .add_members(
            &a,
            &gid("g1"),
            &[user("carol"), user("bob"), user("dave"), user("carol")],
            7,
            ROOMY,
            &ev("joined", "alice", 5000),
        )
        .await
        .expect("add");
    assert_eq!(
        added.iter().map(UserId::as_str).collect::<Vec<_>>(),
        vec!["carol", "dave"],
        "members already in are skipped"
    );
    let carol = s
        .groups
        .member(&a, &gid("g1"), &user("carol"))
        .await
        .expect("member")
        .expect("is a member");
    assert_eq!(carol.role, GroupRole::Member);
    assert_eq!(carol.join_seq, 7);
    assert_eq!(carol.joined_at, 5000);
    assert_eq!(carol.muted_until, 0);
    let first = s
        .groups
        .members(&a, &gid("g1"), None, 2)
        .await
        .expect("page");
    assert_eq!(ids(&first), vec!["alice", "bob"]);
    let next = s
        .groups
        .members(&a, &gid("g1"), Some(&first[1].user_id), 2)
        .await
        .expect("page");
    assert_eq!(ids(&next), vec!["carol", "dave"]);
    let info = s
        .groups
        .group(&a, &gid("g1"))
        .await
        .expect("get")
        .expect("g");
    assert_eq!(info.member_count, 4);

    let removed = s
        .groups
        .remove_members(
            &a,
            &gid("g1"),
            &[user("bob"), user("zed"), user("alice")],
            &ev("removed", "alice", 6000),
        )
        .await
        .expect("remove");
    assert_eq!(
        removed.iter().map(UserId::as_str).collect::<Vec<_>>(),
        vec!["bob"],
        "non-members and the owner are not removed"
    );
    assert!(
        s.groups
            .member(&a, &gid("g1"), &user("bob"))
            .await
            .expect("member")
            .is_none()
    );
    let info = s
        .groups
        .group(&a, &gid("g1"))
        .await
        .expect("get")
        .expect("g");
    assert_eq!(info.member_count, 3);

    s.groups
        .create_group(new_group(&a, "g2", "carol", &[]))
        .await
        .expect("create");
    assert_eq!(
        s.groups.group_count(&a, &user("carol")).await.expect("n"),
        2
    );
    assert_eq!(
        s.groups
            .groups_of(&a, &user("carol"), None, 10)
            .await
            .expect("groups")
            .iter()
            .map(GroupId::as_str)
            .collect::<Vec<_>>(),
        vec!["g1", "g2"]
    );
    assert_eq!(
        s.groups
            .groups_of(&a, &user("carol"), Some(&gid("g1")), 10)
            .await
            .expect("groups")
            .len(),
        1
    );
}

pub async fn group_roles_transfer_and_mute(s: Stores) {
    let a = app("app1");
    s.groups
        .create_group(new_group(&a, "g1", "alice", &["bob", "carol"]))
        .await
        .expect("create");
    let role = |u: &'static str| {
        let s = s.clone();
        let a = a.clone();
        async move {
            s.groups
                .member(&a, &gid("g1"), &user(u))
                .await
                .expect("member")
                .map(|m| m.role)
        }
    };
    assert!(
        s.groups
            .set_role(&a, &gid("g1"), &user("bob"), GroupRole::Admin)
            .await
            .expect("role")
    );
    assert_eq!(role("bob").await, Some(GroupRole::Admin));
    assert!(
        !s.groups
            .set_role(&a, &gid("g1"), &user("zed"), GroupRole::Admin)
            .await
            .expect("role"),
        "not a member"
    );
    assert!(
        !s.groups
            .set_role(&a, &gid("g1"), &user("alice"), GroupRole::Member)
            .await
            .expect("role"),
        "the owner's role changes only by transfer"
    );
    assert!(
        s.groups
            .set_role(&a, &gid("g1"), &user("bob"), GroupRole::Owner)
            .await
            .is_err()
    );

    s.groups
        .transfer_owner(&a, &gid("g1"), &user("carol"))
        .await
        .expect("transfer");
    assert_eq!(role("carol").await, Some(GroupRole::Owner));
    assert_eq!(role("alice").await, Some(GroupRole::Member));
    let info = s
        .groups
        .group(&a, &gid("g1"))
        .await
        .expect("get")
        .expect("g");
    assert_eq!(info.owner.as_str(), "carol");
    assert!(matches!(
        s.groups.transfer_owner(&a, &gid("g1"), &user("zed")).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        role("carol").await,
        Some(GroupRole::Owner),
        "a failed transfer changes nothing"
    );

    assert!(
        s.groups
            .mute_member(&a, &gid("g1"), &user("alice"), 9_000)
            .await
            .expect("mute")
    );
    let alice = s
        .groups
        .member(&a, &gid("g1"), &user("alice"))
        .await
        .expect("member")
        .expect("alice");
    assert_eq!(alice.muted_until, 9_000);
    assert!(alice.muted_at(8_999) && !alice.muted_at(9_000));
    assert!(
        s.groups
            .mute_member(&a, &gid("g1"), &user("alice"), 0)
            .await
            .expect("unmute")
    );
    assert!(
        !s.groups
            .mute_member(&a, &gid("g1"), &user("zed"), 5)
            .await
            .expect("mute")
    );
}

pub async fn group_limits_are_enforced_atomically(s: Stores) {
    let a = app("app1");
    let small = GroupLimits {
        max_members: 3,
        max_groups_per_user: 2,
    };
    let mut g = new_group(&a, "big", "alice", &["b1", "b2", "b3"]);
    g.limits = small;
    assert!(matches!(
        s.groups.create_group(g).await,
        Err(StoreError::Limit(_))
    ));
    assert!(
        s.groups
            .group(&a, &gid("big"))
            .await
            .expect("get")
            .is_none(),
        "a refused create writes nothing"
    );
    let mut g = new_group(&a, "g1", "alice", &["bob"]);
    g.limits = small;
    s.groups.create_group(g).await.expect("create");
    let over = s
        .groups
        .add_members(
            &a,
            &gid("g1"),
            &[user("carol"), user("dave")],
            3,
            small,
            &ev("joined", "alice", 1),
        )
        .await;
    assert!(matches!(over, Err(StoreError::Limit(_))), "{over:?}");
    assert_eq!(
        s.groups
            .members(&a, &gid("g1"), None, 10)
            .await
            .expect("m")
            .len(),
        2,
        "nothing of a refused add is written"
    );
    s.groups
        .add_members(
            &a,
            &gid("g1"),
            &[user("carol")],
            3,
            small,
            &ev("joined", "alice", 1),
        )
        .await
        .expect("fits");
    // Groups per user: alice is in g1; a second group fits, a third does not.
    let mut g2 = new_group(&a, "g2", "alice", &[]);
    g2.limits = small;
    s.groups.create_group(g2).await.expect("second group");
    let mut g3 = new_group(&a, "g3", "zoe", &["alice"]);
    g3.limits = small;
    assert!(matches!(
        s.groups.create_group(g3).await,
        Err(StoreError::Limit(_))
    ));
    assert!(s.groups.group(&a, &gid("g3")).await.expect("get").is_none());

    // Concurrent adds to one group never exceed its size.
    let mut g4 = new_group(&a, "g4", "owner", &[]);
    g4.limits = GroupLimits {
        max_members: 5,
        max_groups_per_user: 100,
    };
    s.groups.create_group(g4).await.expect("create");
    let mut tasks = vec![];
    for i in 0..10 {
        let s = s.clone();
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            s.groups
                .add_members(
                    &a,
                    &gid("g4"),
                    &[user(&format!("u{i}"))],
                    1,
                    GroupLimits {
                        max_members: 5,
                        max_groups_per_user: 100,
                    },
                    &ev("joined", "alice", 1),
                )
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("join") {
            Ok(_) => ok += 1,
            Err(StoreError::Limit(_)) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(ok, 4);
    let info = s
        .groups
        .group(&a, &gid("g4"))
        .await
        .expect("get")
        .expect("g");
    assert_eq!(info.member_count, 5);
}

/// A membership change and its pending event are one write: whatever a
/// crash interrupts afterwards, the event is there to be appended. A change
/// that changes nothing (a retry) stores no event; clearing is per event and
/// per app; the sweep sees only events older than its cut-off.
pub async fn membership_changes_store_their_event_as_pending_in_the_same_write(s: Stores) {
    let (a, b) = (app("a"), app("b"));
    s.groups
        .create_group(new_group(&a, "g1", "alice", &["bob"]))
        .await
        .expect("create");
    let join = ev("joined", "alice", 1000);
    let added = s
        .groups
        .add_members(
            &a,
            &gid("g1"),
            &[user("carol"), user("bob")],
            3,
            ROOMY,
            &join,
        )
        .await
        .expect("add");
    assert_eq!(added, vec![user("carol")]);
    let again = s
        .groups
        .add_members(
            &a,
            &gid("g1"),
            &[user("carol")],
            3,
            ROOMY,
            &ev("joined", "alice", 1001),
        )
        .await
        .expect("retry");
    assert!(again.is_empty());
    let remove = ev("removed", "alice", 2000);
    s.groups
        .remove_members(&a, &gid("g1"), &[user("bob"), user("zed")], &remove)
        .await
        .expect("remove");
    let none = s
        .groups
        .remove_members(
            &a,
            &gid("g1"),
            &[user("bob")],
            &ev("removed", "alice", 2001),
        )
        .await
        .expect("retry remove");
    assert!(none.is_empty());
    let pending = s
        .groups
        .pending_events(&a, &gid("g1"))
        .await
        .expect("pending");
    assert_eq!(
        pending
            .iter()
            .map(|p| (p.event.clone(), p.users.clone()))
            .collect::<Vec<_>>(),
        vec![
            (join.clone(), vec![user("carol")]),
            (remove.clone(), vec![user("bob")]),
        ],
        "one event per change that changed something, in order, with the users it affected"
    );
    assert!(
        pending
            .iter()
            .all(|p| p.app_id == a && p.group_id == gid("g1"))
    );
    // Another app sees none of them and cannot clear them.
    assert!(
        s.groups
            .pending_events(&b, &gid("g1"))
            .await
            .expect("b")
            .is_empty()
    );
    s.groups
        .clear_pending_event(&b, &gid("g1"), &join.id)
        .await
        .expect("clear other app");
    assert_eq!(
        s.groups
            .pending_events(&a, &gid("g1"))
            .await
            .expect("p")
            .len(),
        2
    );
    // The sweep: older than the cut-off only, oldest first, limited.
    let stale = s
        .groups
        .stale_pending_events(1500, 10)
        .await
        .expect("stale");
    assert_eq!(
        stale.iter().map(|p| &p.event).collect::<Vec<_>>(),
        vec![&join]
    );
    let stale = s
        .groups
        .stale_pending_events(i64::MAX, 1)
        .await
        .expect("stale");
    assert_eq!(
        stale.iter().map(|p| &p.event).collect::<Vec<_>>(),
        vec![&join]
    );
    s.groups
        .clear_pending_event(&a, &gid("g1"), &join.id)
        .await
        .expect("clear");
    s.groups
        .clear_pending_event(&a, &gid("g1"), &join.id)
        .await
        .expect("clear twice");
    let left = s.groups.pending_events(&a, &gid("g1")).await.expect("p");
    assert_eq!(
        left.iter().map(|p| &p.event).collect::<Vec<_>>(),
        vec![&remove]
    );
    // Dismissal: the event goes to every member the group had.
    let dismiss = ev("dismissed", "alice", 3000);
    assert!(
        s.groups
            .dismiss(&a, &gid("g1"), &dismiss)
            .await
            .expect("dismiss")
    );
    assert!(
        !s.groups
            .dismiss(&a, &gid("g1"), &ev("dismissed", "alice", 3001))
            .await
            .expect("again")
    );
    let pending = s.groups.pending_events(&a, &gid("g1")).await.expect("p");
    assert_eq!(
        pending.len(),
        2,
        "no event for a dismissal that did nothing"
    );
    assert_eq!(pending[1].event, dismiss);
    assert_eq!(pending[1].users, vec![user("alice"), user("carol")]);
}

pub async fn groups_of_other_apps_are_invisible(s: Stores) {
    let (a, b) = (app("app1"), app("app2"));
    s.groups
        .create_group(new_group(&a, "g1", "alice", &["bob"]))
        .await
        .expect("create");
    assert!(s.groups.group(&b, &gid("g1")).await.expect("get").is_none());
    assert!(
        s.groups
            .member(&b, &gid("g1"), &user("bob"))
            .await
            .expect("member")
            .is_none()
    );
    assert!(
        s.groups
            .members(&b, &gid("g1"), None, 10)
            .await
            .expect("members")
            .is_empty()
    );
    assert_eq!(s.groups.group_count(&b, &user("bob")).await.expect("n"), 0);
    // The same id in another app is another group.
    s.groups
        .create_group(new_group(&b, "g1", "zed", &[]))
        .await
        .expect("same id, other app");
    assert!(
        !s.groups
            .dismiss(&b, &gid("g2"), &ev("dismissed", "alice", 1))
            .await
            .expect("dismiss")
    );
    assert_eq!(
        s.groups
            .group(&a, &gid("g1"))
            .await
            .expect("get")
            .expect("g")
            .owner
            .as_str(),
        "alice"
    );
}

fn room_id(s: &str) -> confab_model::RoomId {
    confab_model::RoomId::parse(s).expect("room id")
}

pub async fn rooms_create_get_close_per_app(s: Stores) {
    let (a, b) = (app("app1"), app("app2"));
    let room = crate::Room {
        room_id: room_id("live1"),
        name: "Launch".into(),
        created_at: 1_700_000_000_000,
    };
    s.rooms.create_room(&a, &room).await.expect("create");
    assert!(
        matches!(
            s.rooms.create_room(&a, &room).await,
            Err(StoreError::Conflict(_))
        ),
        "a second room with the same id is a conflict"
    );
    assert_eq!(
        s.rooms.room(&a, &room.room_id).await.expect("get"),
        Some(room.clone())
    );
    // Another app neither sees nor closes it, and may use the same id.
    assert_eq!(s.rooms.room(&b, &room.room_id).await.expect("get"), None);
    assert!(!s.rooms.close_room(&b, &room.room_id).await.expect("close"));
    s.rooms
        .create_room(&b, &room)
        .await
        .expect("same id, other app");
    assert!(s.rooms.close_room(&a, &room.room_id).await.expect("close"));
    assert_eq!(s.rooms.room(&a, &room.room_id).await.expect("get"), None);
    assert!(
        !s.rooms
            .close_room(&a, &room.room_id)
            .await
            .expect("close twice")
    );
    assert!(
        s.rooms
            .room(&b, &room.room_id)
            .await
            .expect("get")
            .is_some()
    );
    // A closed room's id may be created again.
    s.rooms.create_room(&a, &room).await.expect("re-create");
}

pub async fn room_presence_counts_members_per_node(s: Stores) {
    let (a, b, r) = (app("app1"), app("app2"), room_id("live1"));
    s.routes
        .set_room_presence(&a, &r, "n1", 3)
        .await
        .expect("presence");
    s.routes
        .set_room_presence(&a, &r, "n2", 2)
        .await
        .expect("presence");
    s.routes
        .set_room_presence(&a, &r, "n1", 4)
        .await
        .expect("presence");
    assert_eq!(
        s.routes.room_presence(&a, &r).await.expect("read"),
        vec![("n1".to_owned(), 4), ("n2".to_owned(), 2)]
    );
    assert!(
        s.routes
            .room_presence(&b, &r)
            .await
            .expect("read")
            .is_empty()
    );
    s.routes
        .set_room_presence(&a, &r, "n2", 0)
        .await
        .expect("presence");
    assert_eq!(
        s.routes.room_presence(&a, &r).await.expect("read"),
        vec![("n1".to_owned(), 4)]
    );
    s.routes.clear_room_presence(&a, &r).await.expect("clear");
    assert!(
        s.routes
            .room_presence(&a, &r)
            .await
            .expect("read")
            .is_empty()
    );
}

// ---- webhook outbox ----

fn webhook_event(app_id: &AppId, id: &str, at: i64) -> crate::webhooks::NewWebhookEvent {
    crate::webhooks::NewWebhookEvent {
        id: id.to_owned(),
        app_id: app_id.clone(),
        event_type: "after_send".into(),
        payload: format!(r#"{{"id":"{id}"}}"#),
        created_at: at,
    }
}

fn webhook_attempt(
    app_id: &AppId,
    id: &str,
    outcome: &str,
    at: i64,
) -> crate::webhooks::WebhookAttempt {
    crate::webhooks::WebhookAttempt {
        app_id: app_id.clone(),
        event_id: id.to_owned(),
        event_type: "after_send".into(),
        status_code: Some(500),
        outcome: outcome.into(),
        latency_ms: 12,
        error: Some(format!("{outcome} at {at}")),
        at,
    }
}

pub async fn webhook_outbox_claims_leases_retries_and_dead_letters(s: Stores) {
    let (a, b) = (app("app1"), app("app2"));
    let w = &s.webhooks;
    let t0 = 1_000_000;
    w.enqueue(vec![
        webhook_event(&a, "e1", t0),
        webhook_event(&a, "e2", t0 + 1),
        webhook_event(&b, "e3", t0 + 2),
    ])
    .await
    .unwrap();
    // A repeated id is ignored, not a second event.
    w.enqueue(vec![webhook_event(&a, "e1", t0)]).await.unwrap();
    assert_eq!(w.pending().await.unwrap(), 3);

    // Nothing is due before it was created.
    assert!(w.claim(t0 - 1, 1000, 10).await.unwrap().events.is_empty());
    let first = w.claim(t0 + 10, 1000, 2).await.unwrap();
    let ids: Vec<_> = first.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["e1", "e2"], "oldest due first, at most max");
    // Leased events are not claimed again until the lease expires.
    let second = w.claim(t0 + 20, 1000, 10).await.unwrap();
    assert_eq!(
        second
            .events
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        ["e3"]
    );
    let expired = w.claim(t0 + 10 + 1000, 1000, 10).await.unwrap();
    assert_eq!(expired.events.len(), 2, "an expired lease is taken over");
    // The old claim's token no longer finishes anything.
    assert!(
        !w.complete(
            &first.token,
            webhook_attempt(&a, "e1", "delivered", t0 + 1100)
        )
        .await
        .unwrap()
    );
    assert_eq!(w.pending().await.unwrap(), 3);

    // e1 delivered; e2 retried later; e3 dead-lettered.
    assert!(
        w.complete(
            &expired.token,
            webhook_attempt(&a, "e1", "delivered", t0 + 1200)
        )
        .await
        .unwrap()
    );
    assert!(
        w.retry(
            &expired.token,
            t0 + 5000,
            webhook_attempt(&a, "e2", "failed", t0 + 1300)
        )
        .await
        .unwrap()
    );
    assert!(
        w.dead_letter(
            &second.token,
            webhook_attempt(&b, "e3", "dead_lettered", t0 + 1400)
        )
        .await
        .unwrap()
    );
    assert_eq!(w.pending().await.unwrap(), 1);
    assert!(
        w.claim(t0 + 4999, 1000, 10)
            .await
            .unwrap()
            .events
            .is_empty(),
        "retry is not due yet"
    );
    let again = w.claim(t0 + 5000, 1000, 10).await.unwrap();
    assert_eq!(again.events.len(), 1);
    assert_eq!(again.events[0].id, "e2");
    assert_eq!(again.events[0].attempts, 1);
    assert_eq!(
        again.events[0].last_error.as_deref(),
        Some("failed at 1001300")
    );
    // A release gives it back without counting an attempt.
    assert!(w.release(&again.token, "e2", t0 + 6000).await.unwrap());
    let after_release = w.claim(t0 + 6000, 1000, 10).await.unwrap();
    assert_eq!(after_release.events[0].attempts, 1);

    // Dead letters are per app; redelivery keeps the id and resets attempts.
    assert!(w.dead_letters(&a, 10).await.unwrap().is_empty());
    let dead = w.dead_letters(&b, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, "e3");
    assert_eq!(dead[0].attempts, 1);
    assert!(
        !w.redeliver(&a, "e3", t0 + 7000).await.unwrap(),
        "another app's dead letter"
    );
    assert!(w.redeliver(&b, "e3", t0 + 7000).await.unwrap());
    assert!(
        !w.redeliver(&b, "e3", t0 + 7000).await.unwrap(),
        "no longer dead"
    );
    assert!(w.dead_letters(&b, 10).await.unwrap().is_empty());
    let redelivered = w.claim(t0 + 7000, 1000, 10).await.unwrap();
    let e3 = redelivered
        .events
        .iter()
        .find(|e| e.id == "e3")
        .expect("e3 pending again");
    assert_eq!((e3.attempts, e3.payload.as_str()), (0, r#"{"id":"e3"}"#));

    // Attempts are listed per app, newest first; others' are invisible.
    w.record_attempts(vec![webhook_attempt(&a, "sync1", "allow", t0 + 8000)])
        .await
        .unwrap();
    let listed = w.attempts(&a, 10).await.unwrap();
    let outcomes: Vec<_> = listed.iter().map(|x| x.outcome.as_str()).collect();
    assert_eq!(outcomes, ["allow", "failed", "delivered", "delivered"]);
    assert_eq!(listed[0].status_code, Some(500));
    assert_eq!(listed[0].latency_ms, 12);
    assert!(listed.iter().all(|x| x.app_id == a));
    assert_eq!(w.attempts(&b, 10).await.unwrap().len(), 1);
}

pub async fn webhook_outbox_concurrent_claims_never_share_an_event(s: Stores) {
    let a = app("app1");
    let now = 2_000_000;
    let events = (0..200)
        .map(|i| webhook_event(&a, &format!("c{i:04}"), now))
        .collect();
    s.webhooks.enqueue(events).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let w = s.webhooks.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let c = w.claim(now + 1, 60_000, 7).await.unwrap();
                if c.events.is_empty() {
                    return mine;
                }
                mine.extend(c.events.into_iter().map(|e| e.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(total, 200, "every event claimed exactly once");
    assert_eq!(all.len(), 200);
}

// --- offline push: devices, preferences, the queue ---

fn push_device(u: &str, device: &str, token: &str) -> crate::PushDevice {
    crate::PushDevice {
        user_id: user(u),
        device_id: device.into(),
        vendor: "apns".into(),
        token: token.into(),
        bundle: "com.example.chat".into(),
        locale: "en".into(),
        background: false,
        updated_at: confab_model::now_ms(),
    }
}

pub async fn push_devices_register_replace_and_unregister(s: Stores) {
    let (a, b) = (app("app1"), app("app2"));
    let alice = user("alice");
    assert!(
        !s.devices
            .app_has_push_devices(&a)
            .await
            .expect("has devices"),
        "a new app has no push devices"
    );
    s.devices
        .register_push(&a, push_device("alice", "phone", "t1"))
        .await
        .expect("register");
    // Re-registering the device replaces its token.
    s.devices
        .register_push(&a, push_device("alice", "phone", "t2"))
        .await
        .expect("re-register");
    s.devices
        .register_push(&a, push_device("alice", "tablet", "t3"))
        .await
        .expect("register");
    let devices = s.devices.push_devices(&a, &alice).await.expect("devices");
    assert_eq!(
        devices
            .iter()
            .map(|d| (d.device_id.as_str(), d.token.as_str()))
            .collect::<Vec<_>>(),
        vec![("phone", "t2"), ("tablet", "t3")]
    );
    // The same token registered by another user moves to them.
    s.devices
        .register_push(&a, push_device("bob", "phone", "t3"))
        .await
        .expect("register");
    assert_eq!(
        s.devices
            .push_devices(&a, &alice)
            .await
            .expect("devices")
            .len(),
        1,
        "a token belongs to one device"
    );
    assert!(
        s.devices
            .app_has_push_devices(&a)
            .await
            .expect("has devices")
    );
    assert!(
        !s.devices
            .app_has_push_devices(&b)
            .await
            .expect("has devices"),
        "another app's devices do not count"
    );
    // Other apps see nothing.
    assert!(
        s.devices
            .push_devices(&b, &alice)
            .await
            .expect("devices")
            .is_empty()
    );
    assert!(
        s.devices
            .set_background(&a, &alice, "phone", true)
            .await
            .expect("background")
    );
    assert!(
        !s.devices
            .set_background(&a, &alice, "nope", true)
            .await
            .expect("background")
    );
    assert!(s.devices.push_devices(&a, &alice).await.expect("devices")[0].background);
    // A dead token goes wherever it is registered.
    assert_eq!(
        s.devices
            .delete_token(&a, "apns", "t3")
            .await
            .expect("delete"),
        1
    );
    assert!(
        s.devices
            .push_devices(&a, &user("bob"))
            .await
            .expect("devices")
            .is_empty()
    );
    assert!(
        s.devices
            .unregister_push(&a, &alice, "phone")
            .await
            .expect("unregister")
    );
    assert!(
        !s.devices
            .unregister_push(&a, &alice, "phone")
            .await
            .expect("unregister")
    );
    assert!(
        s.devices
            .push_devices(&a, &alice)
            .await
            .expect("devices")
            .is_empty()
    );
}

pub async fn push_targets_carry_mutes_and_dnd(s: Stores) {
    let a = app("app1");
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    let conv = ConvId::p2p(&alice, &bob);
    let other = ConvId::p2p(&alice, &carol);
    for (u, d, t) in [
        ("alice", "p1", "ta"),
        ("bob", "p2", "tb"),
        ("carol", "p3", "tc"),
    ] {
        s.devices
            .register_push(&a, push_device(u, d, t))
            .await
            .expect("register");
    }
    s.devices
        .set_muted(&a, &bob, &conv, true)
        .await
        .expect("mute");
    s.devices
        .set_muted(&a, &bob, &conv, true)
        .await
        .expect("mute twice");
    let dnd = crate::Dnd {
        start_min: 22 * 60,
        end_min: 7 * 60,
        tz_offset_min: 480,
    };
    s.devices.set_dnd(&a, &alice, Some(dnd)).await.expect("dnd");
    assert_eq!(s.devices.dnd(&a, &alice).await.expect("dnd"), Some(dnd));
    let targets = s
        .devices
        .push_targets(&a, &conv, &[alice.clone(), bob.clone()])
        .await
        .expect("targets");
    assert_eq!(targets.len(), 2, "carol was not asked for");
    let by_user = |u: &UserId| {
        targets
            .iter()
            .find(|t| t.device.user_id == *u)
            .expect("target")
    };
    assert!(by_user(&bob).muted);
    assert_eq!(by_user(&bob).dnd, None);
    assert!(!by_user(&alice).muted);
    assert_eq!(by_user(&alice).dnd, Some(dnd));
    // A mute is per conversation.
    let t = s
        .devices
        .push_targets(&a, &other, std::slice::from_ref(&bob))
        .await
        .expect("targets");
    assert!(!t[0].muted);
    s.devices
        .set_muted(&a, &bob, &conv, false)
        .await
        .expect("unmute");
    s.devices
        .set_dnd(&a, &alice, None)
        .await
        .expect("clear dnd");
    let targets = s
        .devices
        .push_targets(&a, &conv, &[alice.clone(), bob.clone()])
        .await
        .expect("targets");
    assert!(targets.iter().all(|t| !t.muted && t.dnd.is_none()));
    assert!(
        s.devices
            .push_targets(&app("app2"), &conv, &[alice])
            .await
            .expect("targets")
            .is_empty()
    );
}

fn push_job(a: &AppId, id: &str) -> crate::NewPushJob {
    crate::NewPushJob {
        id: id.into(),
        app_id: a.clone(),
        user_id: user("bob"),
        device_id: "phone".into(),
        vendor: "fcm".into(),
        payload: format!(r#"{{"id":"{id}"}}"#),
    }
}

pub async fn push_queue_claims_completes_retries_and_dead_letters(s: Stores) {
    use std::time::Duration;
    let (a, b) = (app("app1"), app("app2"));
    let q = &s.push_queue;
    q.enqueue(vec![
        push_job(&a, "j1"),
        push_job(&a, "j2"),
        push_job(&b, "j3"),
    ])
    .await
    .expect("enqueue");
    // Enqueueing the same id again is a no-op.
    q.enqueue(vec![push_job(&a, "j1")]).await.expect("enqueue");
    let stats = q.stats().await.expect("stats");
    assert_eq!(stats.depth, 3);
    assert!(stats.oldest_created_at.is_some());
    let lease = Duration::from_secs(60);
    let claimed = q.claim(10, lease).await.expect("claim");
    let mut ids: Vec<_> = claimed.iter().map(|j| j.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["j1", "j2", "j3"]);
    assert!(claimed.iter().all(|j| j.attempts == 1));
    let j1 = claimed.iter().find(|j| j.id == "j1").expect("j1");
    assert_eq!(j1.payload, r#"{"id":"j1"}"#);
    assert_eq!(j1.vendor, "fcm");
    // Leased: nobody else gets them.
    assert!(q.claim(10, lease).await.expect("claim").is_empty());
    q.complete("j1").await.expect("complete");
    // A retry is not due before its time.
    let now = confab_model::now_ms();
    q.retry("j2", now + 60_000, "429").await.expect("retry");
    q.retry("j3", now - 1, "503").await.expect("retry");
    let again = q.claim(10, lease).await.expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, "j3");
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].last_error.as_deref(), Some("503"));
    q.dead_letter("j3", "gave up after 2 attempts")
        .await
        .expect("dead letter");
    let dead = q.dead_letters(&b, 10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].job.id, "j3");
    assert_eq!(dead[0].reason, "gave up after 2 attempts");
    assert_eq!(dead[0].job.attempts, 2);
    assert!(
        q.dead_letters(&a, 10)
            .await
            .expect("dead letters")
            .is_empty()
    );
    assert_eq!(q.stats().await.expect("stats").depth, 1, "only j2 waits");
}

pub async fn push_queue_lease_expiry_redelivers_with_the_same_id(s: Stores) {
    use std::time::Duration;
    let a = app("app1");
    let q = &s.push_queue;
    q.enqueue(vec![push_job(&a, "crash")])
        .await
        .expect("enqueue");
    let first = q.claim(1, Duration::from_millis(300)).await.expect("claim");
    assert_eq!(first.len(), 1);
    // The worker "crashes": it never completes. Before the lease runs out
    // nobody gets the job; after it, the next claim does, same id.
    assert!(
        q.claim(1, Duration::from_secs(60))
            .await
            .expect("claim")
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = q.claim(1, Duration::from_secs(60)).await.expect("claim");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].id, "crash");
    assert_eq!(second[0].payload, first[0].payload);
    assert_eq!(second[0].attempts, 2);
}

pub async fn push_queue_concurrent_claimers_never_share_a_job(s: Stores) {
    use std::time::Duration;
    let a = app("app1");
    let jobs: Vec<_> = (0..200)
        .map(|i| push_job(&a, &format!("c{i:03}")))
        .collect();
    s.push_queue.enqueue(jobs).await.expect("enqueue");
    let mut tasks = vec![];
    for _ in 0..8 {
        let q = s.push_queue.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = vec![];
            loop {
                let got = q.claim(7, Duration::from_secs(60)).await.expect("claim");
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|j| j.id));
            }
        }));
    }
    let mut all = vec![];
    for t in tasks {
        all.extend(t.await.expect("claimer"));
    }
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(total, 200, "every job claimed exactly once");
    assert_eq!(all.len(), 200);
}

pub async fn get_by_id_finds_only_the_apps_own_message(s: Stores) {
    let (a, b) = (app("app-a"), app("app-b"));
    let r = s
        .messages
        .append(p2p(&a, "alice", "bob", "c0"))
        .await
        .expect("append");
    let id = r.message.msg_id.clone();
    let got = s
        .messages
        .get_by_id(&a, &id)
        .await
        .expect("get_by_id")
        .expect("found by id alone");
    assert_eq!(got, r.message);
    assert_eq!(
        s.messages.get_by_id(&b, &id).await.expect("get_by_id"),
        None,
        "another app's id is not found"
    );
    assert_eq!(
        s.messages
            .get_by_id(&a, "no-such-id")
            .await
            .expect("get_by_id"),
        None
    );
    // A recalled message is still found, marked recalled, without content.
    s.messages
        .recall(&a, &r.message.conv_id, &id)
        .await
        .expect("recall");
    let got = s
        .messages
        .get_by_id(&a, &id)
        .await
        .expect("get_by_id")
        .expect("still there");
    assert!(got.recalled);
    assert_eq!(got.body, confab_model::RECALLED_BODY);
}

fn profile(id: &str, nickname: &str, at: i64) -> crate::UserProfile {
    crate::UserProfile {
        user_id: user(id),
        nickname: nickname.to_owned(),
        avatar_url: String::new(),
        custom: "{}".to_owned(),
        created_at: at,
        updated_at: at,
    }
}

pub async fn users_import_get_update_and_delete_per_app(s: Stores) {
    let (a, b) = (app("app-a"), app("app-b"));
    let created = s
        .users
        .import_users(
            &a,
            &[profile("alice", "Alice", 1), profile("bob", "Bob", 1)],
        )
        .await
        .expect("import");
    assert_eq!(created, vec![true, true]);
    // A repeat is reported, never overwritten; a repeat within one call too.
    let again = s
        .users
        .import_users(
            &a,
            &[
                profile("alice", "Mallory", 2),
                profile("carol", "Carol", 2),
                profile("carol", "Carol 2", 2),
            ],
        )
        .await
        .expect("import again");
    assert_eq!(again, vec![false, true, false]);
    let alice = s.users.user(&a, &user("alice")).await.expect("get");
    assert_eq!(alice, Some(profile("alice", "Alice", 1)));
    assert_eq!(
        s.users
            .user(&a, &user("carol"))
            .await
            .expect("get")
            .map(|p| p.nickname),
        Some("Carol".to_owned())
    );
    // Another app sees nothing and changes nothing.
    assert_eq!(s.users.user(&b, &user("alice")).await.expect("get"), None);
    let update = crate::ProfileUpdate {
        nickname: Some("Mallory".into()),
        ..Default::default()
    };
    assert_eq!(
        s.users
            .update_user(&b, &user("alice"), update, 5)
            .await
            .expect("update"),
        None
    );
    assert!(
        !s.users
            .delete_user(&b, &user("alice"))
            .await
            .expect("delete")
    );
    // Only the given fields change.
    let updated = s
        .users
        .update_user(
            &a,
            &user("alice"),
            crate::ProfileUpdate {
                avatar_url: Some("https://example.com/a.png".into()),
                custom: Some(r#"{"tier":"gold"}"#.into()),
                ..Default::default()
            },
            7,
        )
        .await
        .expect("update")
        .expect("alice exists");
    assert_eq!(updated.nickname, "Alice");
    assert_eq!(updated.avatar_url, "https://example.com/a.png");
    assert_eq!(updated.custom, r#"{"tier":"gold"}"#);
    assert_eq!((updated.created_at, updated.updated_at), (1, 7));
    assert_eq!(
        s.users.user(&a, &user("alice")).await.expect("get"),
        Some(updated)
    );
    assert!(
        s.users
            .delete_user(&a, &user("alice"))
            .await
            .expect("delete")
    );
    assert!(
        !s.users
            .delete_user(&a, &user("alice"))
            .await
            .expect("delete")
    );
    assert_eq!(s.users.user(&a, &user("alice")).await.expect("get"), None);
    assert!(s.users.user(&a, &user("bob")).await.expect("get").is_some());
    // A deleted id may be imported again.
    let back = s
        .users
        .import_users(&a, &[profile("alice", "Alice again", 9)])
        .await
        .expect("import");
    assert_eq!(back, vec![true]);
}

pub async fn clear_inbox_forgets_one_user_and_never_reuses_inbox_seqs(s: Stores) {
    let (a, b) = (app("app-a"), app("app-b"));
    for i in 0..3 {
        s.messages
            .append(p2p(&a, "alice", "bob", &format!("c{i}")))
            .await
            .expect("append");
    }
    s.messages
        .append(p2p(&b, "alice", "bob", "other-app"))
        .await
        .expect("append");
    let bob = user("bob");
    let head = s.inbox.head(&a, &bob).await.expect("head");
    assert_eq!(head, 3);
    s.inbox.clear_inbox(&a, &bob).await.expect("clear");
    assert!(
        s.inbox
            .since(&a, &bob, 0, 100)
            .await
            .expect("sync")
            .is_empty(),
        "the inbox is empty"
    );
    let (convs, unread) = s.reads.conversations(&a, &bob, 100).await.expect("list");
    assert!(convs.is_empty(), "the conversation list is gone: {convs:?}");
    assert_eq!(unread, 0);
    // The other participant keeps everything, the other app too.
    let alice = user("alice");
    assert_eq!(
        s.inbox.since(&a, &alice, 0, 100).await.expect("sync").len(),
        3
    );
    assert_eq!(
        s.inbox.since(&b, &bob, 0, 100).await.expect("sync").len(),
        1
    );
    let history = s
        .messages
        .history(&a, &ConvId::p2p(&alice, &bob), None, 10)
        .await
        .expect("history");
    assert_eq!(history.len(), 3, "messages stay in their conversation");
    // A later message gets the next inbox_seq, not a reused one.
    let next = s
        .messages
        .append(p2p(&a, "alice", "bob", "after"))
        .await
        .expect("append");
    let bob_seq = next
        .inbox
        .iter()
        .find(|(u, _)| *u == bob)
        .map(|(_, seq)| *seq);
    assert_eq!(bob_seq, Some(head + 1));
    let synced = s.inbox.since(&a, &bob, 0, 100).await.expect("sync");
    assert_eq!(synced.len(), 1);
    assert_eq!(synced[0].inbox_seq, head + 1);
    assert_eq!(s.inbox.head(&a, &bob).await.expect("head"), head + 1);
}

fn join_request(u: &str, at: i64, expires_at: i64) -> crate::JoinRequest {
    crate::JoinRequest {
        user_id: user(u),
        requested_at: at,
        expires_at,
    }
}

pub async fn group_join_requests_replace_expire_page_and_take_once(s: Stores) {
    let (a, b) = (app("app1"), app("app2"));
    let g = gid("g1");
    s.groups
        .create_group(new_group(&a, "g1", "alice", &[]))
        .await
        .expect("create");
    for (u, exp) in [
        ("bob", 5_000),
        ("carol", 5_000),
        ("dave", 1_500),
        ("erin", 5_000),
    ] {
        s.groups
            .put_join_request(&a, &g, &join_request(u, 1_000, exp))
            .await
            .expect("put");
    }
    // A re-sent request replaces the first (and its expiry).
    s.groups
        .put_join_request(&a, &g, &join_request("bob", 2_000, 9_000))
        .await
        .expect("replace");
    let now = 2_000; // dave's request lapsed at 1 500
    let page = s
        .groups
        .join_requests(&a, &g, None, 2, now)
        .await
        .expect("page 1");
    assert_eq!(
        page,
        vec![
            join_request("bob", 2_000, 9_000),
            join_request("carol", 1_000, 5_000)
        ]
    );
    let rest = s
        .groups
        .join_requests(&a, &g, Some(&user("carol")), 10, now)
        .await
        .expect("page 2");
    assert_eq!(
        rest,
        vec![join_request("erin", 1_000, 5_000)],
        "lapsed ones are left out"
    );
    // Another app sees nothing and takes nothing.
    assert!(
        s.groups
            .join_requests(&b, &g, None, 10, now)
            .await
            .expect("b")
            .is_empty()
    );
    assert_eq!(
        s.groups
            .take_join_request(&b, &g, &user("bob"), now)
            .await
            .expect("b take"),
        None
    );
    // Taken exactly once.
    assert_eq!(
        s.groups
            .take_join_request(&a, &g, &user("bob"), now)
            .await
            .expect("take"),
        Some(join_request("bob", 2_000, 9_000))
    );
    assert_eq!(
        s.groups
            .take_join_request(&a, &g, &user("bob"), now)
            .await
            .expect("again"),
        None
    );
    // A lapsed request is not given back (and is gone).
    assert_eq!(
        s.groups
            .take_join_request(&a, &g, &user("dave"), now)
            .await
            .expect("lapsed"),
        None
    );
    let left = s
        .groups
        .join_requests(&a, &g, None, 10, 0)
        .await
        .expect("all");
    assert_eq!(ids_of(&left), vec!["carol", "erin"]);
}

fn ids_of(requests: &[crate::JoinRequest]) -> Vec<&str> {
    requests.iter().map(|r| r.user_id.as_str()).collect()
}

pub async fn group_mentions_count_after_the_read_cursor(s: Stores) {
    let (a, b) = (app("app1"), app("app2"));
    let g = gid("g1");
    s.groups
        .add_mentions(&a, &g, 3, &[user("bob"), user("bob"), user("carol")], false)
        .await
        .expect("mention");
    s.groups
        .add_mentions(&a, &g, 5, &[], true)
        .await
        .expect("@all");
    s.groups
        .add_mentions(&a, &g, 7, &[user("bob")], true)
        .await
        .expect("both");
    s.groups
        .add_mentions(&a, &g, 8, &[], false)
        .await
        .expect("none");
    let count = |u: &'static str, app: AppId, after: u64| {
        let s = s.clone();
        let g = g.clone();
        async move {
            s.groups
                .unread_mentions(&app, &g, &user(u), after)
                .await
                .expect("count")
        }
    };
    assert_eq!(
        count("bob", a.clone(), 0).await,
        3,
        "3, @all at 5, 7 (once)"
    );
    assert_eq!(count("bob", a.clone(), 3).await, 2);
    assert_eq!(count("carol", a.clone(), 0).await, 3);
    assert_eq!(
        count("dave", a.clone(), 0).await,
        2,
        "@all reaches everyone"
    );
    assert_eq!(count("dave", a.clone(), 7).await, 0, "cleared by reading");
    assert_eq!(
        count("bob", b.clone(), 0).await,
        0,
        "another app's mentions"
    );
    assert_eq!(
        s.groups
            .unread_mentions(&a, &gid("g2"), &user("bob"), 0)
            .await
            .expect("other group"),
        0
    );
}

/// A group message as logic stores it: write fan-out to every member in
/// `recipients`, or read fan-out (`recipients` is the sender alone).
fn group_msg(
    app_id: &AppId,
    group: &str,
    from: &str,
    cid: &str,
    to: &[&str],
    read: bool,
) -> NewMessage {
    let g = gid(group);
    let f = user(from);
    NewMessage {
        app_id: app_id.clone(),
        conv_id: ConvId::group(&g),
        msg_id: format!("m-{}-{from}-{cid}", app_id.as_str()),
        from: f.clone(),
        to: Peer {
            kind: confab_model::PeerKind::Group,
            id: std::sync::Arc::from(group),
        },
        body: format!(r#"{{"type":"text","text":"{cid}"}}"#),
        ts: confab_model::now_ms(),
        client_msg_id: cid.to_owned(),
        recipients: if read {
            vec![f]
        } else {
            to.iter().map(|u| user(u)).collect()
        },
        read_fanout: read,
    }
}

/// (conv, seq) of a user's whole inbox, in inbox order, checking that
/// `inbox_seq` runs 1, 2, 3, ... without a gap.
async fn inbox_of(s: &Stores, a: &AppId, u: &str) -> Vec<(String, u64)> {
    let entries = s.inbox.since(a, &user(u), 0, 1000).await.expect("since");
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.inbox_seq, i as u64 + 1, "{u}'s inbox is gap-free");
    }
    entries
        .iter()
        .map(|e| (e.message.conv_id.as_str().to_owned(), e.message.seq))
        .collect()
}

pub async fn pull_group_timelines_gives_each_read_fanout_message_once_from_joining(s: Stores) {
    let (a, other) = (app("app1"), app("app2"));
    s.groups
        .create_group(new_group(&a, "g1", "alice", &["bob"]))
        .await
        .expect("group");
    let all = ["alice", "bob"];
    let conv = ConvId::group(&gid("g1")).as_str().to_owned();
    // A pull before the app has any read-fan-out message finds nothing (a
    // store may remember that); one stored later is still found.
    assert_eq!(
        s.inbox
            .pull_group_timelines(&a, &user("bob"), 100)
            .await
            .expect("nothing yet"),
        crate::Pulled::default()
    );
    // seq 1 write, 2-3 read, 4 write (the group crossed the threshold up,
    // then down), 5 read by bob himself.
    for (cid, from, read) in [
        ("c1", "alice", false),
        ("c2", "alice", true),
        ("c3", "alice", true),
        ("c4", "alice", false),
        ("c5", "bob", true),
    ] {
        s.messages
            .append(group_msg(&a, "g1", from, cid, &all, read))
            .await
            .expect("append");
    }
    assert_eq!(
        inbox_of(&s, &a, "bob").await,
        vec![(conv.clone(), 1), (conv.clone(), 4), (conv.clone(), 5)],
        "before a pull: the write fan-out messages and his own"
    );
    assert_eq!(
        s.inbox
            .pull_group_timelines(&other, &user("bob"), 100)
            .await
            .expect("other app")
            .entries,
        0,
        "another app has nothing of this group"
    );
    // A limit of one pulls the oldest first.
    assert_eq!(
        s.inbox
            .pull_group_timelines(&a, &user("bob"), 1)
            .await
            .expect("pull")
            .entries,
        1
    );
    assert_eq!(
        s.inbox
            .pull_group_timelines(&a, &user("bob"), 100)
            .await
            .expect("pull")
            .entries,
        1
    );
    assert_eq!(
        s.inbox
            .pull_group_timelines(&a, &user("bob"), 100)
            .await
            .expect("again")
            .entries,
        0,
        "nothing is given twice"
    );
    assert_eq!(
        inbox_of(&s, &a, "bob").await,
        vec![
            (conv.clone(), 1),
            (conv.clone(), 4),
            (conv.clone(), 5),
            (conv.clone(), 2),
            (conv.clone(), 3)
        ]
    );
    assert_eq!(s.inbox.head(&a, &user("bob")).await.expect("head"), 5);
    // Alice pulls bob's message only (not her own read fan-out ones).
    assert_eq!(
        s.inbox
            .pull_group_timelines(&a, &user("alice"), 100)
            .await
            .expect("alice")
            .entries,
        1
    );
    assert_eq!(
        inbox_of(&s, &a, "alice").await,
        vec![
            (conv.clone(), 1),
            (conv.clone(), 2),
            (conv.clone(), 3),
            (conv.clone(), 4),
            (conv.clone(), 5)
        ]
    );
    // The conversation list counts pulled messages: bob read nothing.
    let (list, total) = s
        .reads
        .conversations(&a, &user("bob"), 10)
        .await
        .expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].last_seq, 5);
    assert_eq!(total, 0, "bob's own message 5 moved his read cursor to 5");

    // Carol joins at seq 6: she pulls from there on, never before.
    s.groups
        .add_members(
            &a,
            &gid("g1"),
            &[user("carol")],
            6,
            ROOMY,
            &ev("joined", "carol", 2000),
        )
        .await
        .expect("join");
    s.messages
        .append(group_msg(&a, "g1", "alice", "c6", &all, true))
        .await
        .expect("append 6");
    assert_eq!(
        s.inbox
            .pull_group_timelines(&a, &user("carol"), 100)
            .await
            .expect("carol")
            .entries,
        1
    );
    assert_eq!(inbox_of(&s, &a, "carol").await, vec![(conv.clone(), 6)]);
    let (list, _) = s
        .reads
        .conversations(&a, &user("carol"), 10)
        .await
        .expect("list");
    assert_eq!(
        list[0].last_seq, 6,
        "her conversation row moved as an append moves it"
    );

    // A removed member pulls nothing more.
    s.groups
        .remove_members(
            &a,
            &gid("g1"),
            &[user("bob")],
            &ev("removed", "alice", 3000),
        )
        .await
        .expect("remove");
    s.messages
        .append(group_msg(&a, "g1", "alice", "c7", &all, true))
        .await
        .expect("append 7");
    assert_eq!(
        s.inbox
            .pull_group_timelines(&a, &user("bob"), 100)
            .await
            .expect("bob")
            .entries,
        0,
        "removed: nothing after the removal"
    );
    assert_eq!(
        s.inbox
            .pull_group_timelines(&a, &user("carol"), 100)
            .await
            .expect("carol")
            .entries,
        1
    );
    // The writer's inbox counters stay right after pulls: the next append
    // follows the pulled entries.
    let appended = s
        .messages
        .append(p2p(&a, "dave", "carol", "after-pull"))
        .await
        .expect("p2p");
    assert_eq!(appended.inbox[1], (user("carol"), 3));
    // A sole poster's own messages (she has their entries from the append)
    // are gone through once: they move her cursor, never her inbox.
    for cid in ["c8", "c9", "c10"] {
        s.messages
            .append(group_msg(&a, "g1", "alice", cid, &all, true))
            .await
            .expect("append");
    }
    let alice_inbox = inbox_of(&s, &a, "alice").await;
    let mut pulls = vec![];
    for _ in 0..4 {
        pulls.push(
            s.inbox
                .pull_group_timelines(&a, &user("alice"), 2)
                .await
                .expect("alice"),
        );
    }
    let more = |more| crate::Pulled {
        entries: 0,
        more,
        given: vec![],
    };
    assert_eq!(
        pulls,
        vec![more(true), more(true), more(false), more(false)],
        "her five own messages (6..10) gone through two at a time, then nothing"
    );
    assert_eq!(inbox_of(&s, &a, "alice").await, alice_inbox);
}

/// Read diffusion keeps each member's inbox in `seq` order per group: a
/// read-fan-out message appended without an entry for its sender (the
/// recipients list only those who cannot pull) reaches the sender through
/// the pull too, after the group's earlier messages; a listed recipient
/// gets the entry at once and the pull never repeats it.
pub async fn a_sender_without_an_entry_at_append_pulls_their_own_message_in_seq_order(s: Stores) {
    let a = app("app1");
    s.groups
        .create_group(new_group(&a, "g1", "alice", &["bob"]))
        .await
        .expect("group");
    let unlisted = |from: &str, cid: &str| NewMessage {
        recipients: vec![],
        ..group_msg(&a, "g1", from, cid, &[], true)
    };
    s.messages
        .append(unlisted("alice", "a1"))
        .await
        .expect("a1");
    let own = s.messages.append(unlisted("bob", "b1")).await.expect("b1");
    assert!(own.inbox.is_empty(), "no entry at append: {:?}", own.inbox);
    // A write-diffused entry for someone who cannot pull (say, a user the
    // group just removed) is given at once.
    let listed = s
        .messages
        .append(NewMessage {
            recipients: vec![user("zed")],
            ..group_msg(&a, "g1", "alice", "a2", &[], true)
        })
        .await
        .expect("a2");
    assert_eq!(listed.inbox, vec![(user("zed"), 1)]);
    let pulled = s
        .inbox
        .pull_group_timelines(&a, &user("bob"), 100)
        .await
        .expect("bob pulls");
    let conv = "group:g1".to_owned();
    assert_eq!(
        pulled.given,
        (1..=3)
            .map(|seq| crate::PulledEntry {
                conv_id: conv.clone(),
                seq,
                inbox_seq: seq,
            })
            .collect::<Vec<_>>(),
        "alice's, then his own, then alice's next: by seq"
    );
    assert_eq!(
        inbox_of(&s, &a, "bob").await,
        vec![(conv.clone(), 1), (conv.clone(), 2), (conv.clone(), 3)]
    );
    let again = s
        .inbox
        .pull_group_timelines(&a, &user("bob"), 100)
        .await
        .expect("bob again");
    assert_eq!(again.entries, 0, "given once");
    s.inbox
        .pull_group_timelines(&a, &user("alice"), 100)
        .await
        .expect("alice pulls");
    assert_eq!(
        inbox_of(&s, &a, "alice").await,
        vec![(conv.clone(), 1), (conv.clone(), 2), (conv, 3)],
        "the sender of a1 and a2 pulls them too"
    );
}

/// A group holds read-fanout messages someone still has to pull until every
/// current member has pulled past its newest one; a member who joined after
/// it, or one who left, does not count.
pub async fn group_has_unpulled_until_every_member_has_pulled(s: Stores) {
    let (a, other) = (app("app1"), app("app2"));
    for app_id in [&a, &other] {
        s.groups
            .create_group(new_group(app_id, "g1", "alice", &["bob"]))
            .await
            .expect("group");
    }
    let g1 = gid("g1");
    let unpulled = |app_id: AppId| {
        let s = s.clone();
        let g1 = g1.clone();
        async move {
            s.inbox
                .group_has_unpulled(&app_id, &g1)
                .await
                .expect("unpulled")
        }
    };
    s.messages
        .append(group_msg(&a, "g1", "alice", "w1", &["alice", "bob"], false))
        .await
        .expect("write-diffused");
    assert!(
        !unpulled(a.clone()).await,
        "write diffusion leaves nothing to pull"
    );
    s.messages
        .append(NewMessage {
            recipients: vec![],
            ..group_msg(&a, "g1", "alice", "r1", &[], true)
        })
        .await
        .expect("read-fanout");
    assert!(unpulled(a.clone()).await, "alice and bob have r1 to pull");
    assert!(
        !unpulled(other.clone()).await,
        "another app's group of that id"
    );
    s.inbox
        .pull_group_timelines(&a, &user("bob"), 100)
        .await
        .expect("bob pulls");
    assert!(unpulled(a.clone()).await, "alice has not pulled yet");
    s.inbox
        .pull_group_timelines(&a, &user("alice"), 100)
        .await
        .expect("alice pulls");
    assert!(!unpulled(a.clone()).await, "everyone pulled");
    // Someone joining after the newest read-fanout message has nothing to
    // pull from before their joining.
    s.groups
        .add_members(
            &a,
            &g1,
            &[user("carol")],
            3,
            ROOMY,
            &ev("joined", "alice", 2000),
        )
        .await
        .expect("carol joins");
    assert!(!unpulled(a.clone()).await, "carol joined after r1");
    // A message from her joining on is hers to pull; once she has left the
    // group, it no longer counts.
    s.messages
        .append(NewMessage {
            recipients: vec![],
            ..group_msg(&a, "g1", "alice", "r2", &[], true)
        })
        .await
        .expect("r2");
    for u in ["alice", "bob"] {
        s.inbox
            .pull_group_timelines(&a, &user(u), 100)
            .await
            .expect("pull");
    }
    assert!(unpulled(a.clone()).await, "carol has r2 to pull");
    s.groups
        .remove_members(&a, &g1, &[user("carol")], &ev("removed", "alice", 3000))
        .await
        .expect("carol removed");
    assert!(!unpulled(a.clone()).await, "a former member does not count");
}

/// A member added with [`JOIN_PENDING`] pulls nothing until
/// `start_membership` sets their join to their `joined` event's seq: a
/// message that took a seq between the add and the event is not theirs.
pub async fn a_pending_membership_reads_nothing_until_its_event_starts_it(s: Stores) {
    let a = app("app1");
    s.groups
        .create_group(new_group(&a, "g1", "alice", &["bob"]))
        .await
        .expect("group");
    let g1 = gid("g1");
    s.groups
        .add_members(
            &a,
            &g1,
            &[user("carol")],
            JOIN_PENDING,
            ROOMY,
            &ev("joined", "alice", 2000),
        )
        .await
        .expect("carol added");
    let carol = s
        .groups
        .member(&a, &g1, &user("carol"))
        .await
        .expect("member");
    assert_eq!(carol.map(|m| m.join_seq), Some(JOIN_PENDING));
    // Sent between the add and the joined event.
    let between = s
        .messages
        .append(group_msg(&a, "g1", "bob", "between", &[], true))
        .await
        .expect("between")
        .message;
    let pulled = s
        .inbox
        .pull_group_timelines(&a, &user("carol"), 100)
        .await
        .expect("pull while pending");
    assert_eq!(pulled.entries, 0, "nothing is carol's before her event");
    let joined = s
        .messages
        .append(group_msg(&a, "g1", "alice", "joined", &[], true))
        .await
        .expect("joined event")
        .message;
    assert_eq!(joined.seq, between.seq + 1);
    s.groups
        .start_membership(&a, &g1, &[user("carol"), user("bob")], joined.seq)
        .await
        .expect("start");
    let carol = s
        .groups
        .member(&a, &g1, &user("carol"))
        .await
        .expect("member");
    assert_eq!(carol.map(|m| m.join_seq), Some(joined.seq));
    let bob = s
        .groups
        .member(&a, &g1, &user("bob"))
        .await
        .expect("member");
    assert_eq!(
        bob.map(|m| m.join_seq),
        Some(1),
        "a started membership is kept"
    );
    // A repeat (a retry, the sweep) moves nothing.
    s.groups
        .start_membership(&a, &g1, &[user("carol")], joined.seq + 5)
        .await
        .expect("repeat");
    let carol = s
        .groups
        .member(&a, &g1, &user("carol"))
        .await
        .expect("member");
    assert_eq!(carol.map(|m| m.join_seq), Some(joined.seq));
    let pulled = s
        .inbox
        .pull_group_timelines(&a, &user("carol"), 100)
        .await
        .expect("pull");
    let seqs: Vec<u64> = pulled.given.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        vec![joined.seq],
        "carol pulls from her joined event on"
    );
}

/// `pull_group_through` gives a removed member the read-fanout messages
/// of their membership they had not pulled, up to the event that ended it:
/// never one from before their joining (an earlier membership's cursor
/// included) or after the bound, never one twice, never another app's.
pub async fn a_removed_member_pulls_through_their_removal_only_what_came_while_a_member(s: Stores) {
    let (a, other) = (app("app1"), app("app2"));
    for app_id in [&a, &other] {
        s.groups
            .create_group(new_group(app_id, "g1", "alice", &["bob"]))
            .await
            .expect("group");
    }
    let g1 = gid("g1");
    let send = |cid: &'static str| {
        let s = s.clone();
        let a = a.clone();
        async move {
            s.messages
                .append(group_msg(&a, "g1", "alice", cid, &[], true))
                .await
                .expect("append")
                .message
                .seq
        }
    };
    let through = |u: &'static str, seq: u64| {
        let s = s.clone();
        let a = a.clone();
        let g1 = g1.clone();
        async move {
            let pulled = s
                .inbox
                .pull_group_through(&a, &user(u), &g1, seq, 100)
                .await
                .expect("pull through");
            pulled.given.iter().map(|e| e.seq).collect::<Vec<u64>>()
        }
    };
    let r1 = send("r1").await;
    let r2 = send("r2").await;
    let removed = s
        .groups
        .remove_members(&a, &g1, &[user("bob")], &ev("removed", "alice", 3000))
        .await
        .expect("remove bob");
    assert_eq!(removed, vec![user("bob")]);
    let event = send("removed-event").await;
    let after = send("after").await;
    assert_eq!(through("bob", event).await, vec![r1, r2, event]);
    assert_eq!(
        through("bob", event).await,
        Vec::<u64>::new(),
        "never twice"
    );
    let other_pull = s
        .inbox
        .pull_group_through(&other, &user("bob"), &g1, after, 100)
        .await
        .expect("other app");
    assert_eq!(other_pull.entries, 0, "another app's group of that id");
    // Bob comes back later: his second removal gives only what came in
    // his second membership, not what came between the two.
    let between = send("between").await;
    let rejoin = between + 1;
    s.groups
        .add_members(
            &a,
            &g1,
            &[user("bob")],
            rejoin,
            ROOMY,
            &ev("joined", "alice", 4000),
        )
        .await
        .expect("bob again");
    let second = send("second").await;
    assert_eq!(second, rejoin);
    s.groups
        .remove_members(&a, &g1, &[user("bob")], &ev("removed", "alice", 5000))
        .await
        .expect("remove bob again");
    assert_eq!(through("bob", u64::MAX).await, vec![second]);
    // A membership whose joined event never came had nothing to read.
    s.groups
        .add_members(
            &a,
            &g1,
            &[user("dave")],
            JOIN_PENDING,
            ROOMY,
            &ev("joined", "alice", 6000),
        )
        .await
        .expect("dave added");
    send("while-pending").await;
    s.groups
        .remove_members(&a, &g1, &[user("dave")], &ev("removed", "alice", 7000))
        .await
        .expect("remove dave");
    assert_eq!(through("dave", u64::MAX).await, Vec::<u64>::new());
    // Someone who was never a member has no cursor, so nothing.
    assert_eq!(through("erin", u64::MAX).await, Vec::<u64>::new());
    // The entries are in the inbox, in seq order after what bob had.
    let inbox = s
        .inbox
        .since(&a, &user("bob"), 0, 100)
        .await
        .expect("since");
    let seqs: Vec<u64> = inbox
        .iter()
        .filter(|m| m.message.conv_id.as_str() == "group:g1")
        .map(|m| m.message.seq)
        .collect();
    assert_eq!(seqs, vec![r1, r2, event, second]);
}

pub async fn pull_group_timelines_after_concurrent_pulls_gives_each_message_once(s: Stores) {
    let a = app("app1");
    s.groups
        .create_group(new_group(&a, "g1", "alice", &["bob"]))
        .await
        .expect("group");
    for i in 0..40 {
        s.messages
            .append(group_msg(&a, "g1", "alice", &format!("c{i}"), &[], true))
            .await
            .expect("append");
    }
    let pulls = (0..8).map(|_| {
        let s = s.clone();
        let a = a.clone();
        tokio::spawn(async move {
            let mut n = 0;
            loop {
                let got = s
                    .inbox
                    .pull_group_timelines(&a, &user("bob"), 3)
                    .await
                    .expect("pull")
                    .entries;
                if got == 0 {
                    return n;
                }
                n += got;
            }
        })
    });
    let mut total = 0;
    for p in pulls {
        total += p.await.expect("task");
    }
    assert_eq!(total, 40, "every message pulled exactly once");
    let seqs: Vec<u64> = inbox_of(&s, &a, "bob")
        .await
        .into_iter()
        .map(|(_, q)| q)
        .collect();
    assert_eq!(
        seqs,
        (1..=40).collect::<Vec<u64>>(),
        "in seq order, once each"
    );
}

fn usage_delta(app_id: &AppId, minute: i64, messages: u64, push_sent: u64) -> crate::UsageDelta {
    crate::UsageDelta {
        app_id: app_id.clone(),
        minute,
        counts: crate::UsageCounts {
            messages,
            push_sent,
            logins: 1,
            connection_seconds: 10,
            ..Default::default()
        },
    }
}

pub async fn usage_buckets_add_up_per_app_and_minute(s: Stores) {
    let (a, b) = (app("app1"), app("app2"));
    let m0 = 1_700_000_040_000; // a minute's start
    let m1 = m0 + 60_000;
    // Two nodes (or two flushes) add into the same bucket.
    s.usage
        .add_usage(&[usage_delta(&a, m0, 3, 1), usage_delta(&b, m0, 100, 0)])
        .await
        .expect("add");
    s.usage
        .add_usage(&[usage_delta(&a, m0, 2, 0), usage_delta(&a, m1, 7, 2)])
        .await
        .expect("add again");
    let got = s
        .usage
        .usage_minutes(&a, m0, m1 + 60_000)
        .await
        .expect("read");
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, m0);
    assert_eq!(
        (
            got[0].1.messages,
            got[0].1.push_sent,
            got[0].1.logins,
            got[0].1.connection_seconds
        ),
        (5, 1, 2, 20),
        "the two deltas of minute 0 add up"
    );
    assert_eq!(
        (got[1].0, got[1].1.messages, got[1].1.push_sent),
        (m1, 7, 2)
    );
    // The range is half-open.
    let first = s.usage.usage_minutes(&a, m0, m1).await.expect("read");
    assert_eq!(first.len(), 1);
    // Another app's counts are its own.
    let other = s
        .usage
        .usage_minutes(&b, m0, m1 + 60_000)
        .await
        .expect("read");
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].1.messages, 100);
    assert!(
        s.usage
            .usage_minutes(&app("app3"), m0, m1 + 60_000)
            .await
            .expect("read")
            .is_empty()
    );
    // Retention removes the older minute only.
    s.usage.purge_usage(m1, 0).await.expect("purge");
    let left = s.usage.usage_minutes(&a, 0, i64::MAX).await.expect("read");
    assert_eq!(left.iter().map(|(m, _)| *m).collect::<Vec<_>>(), vec![m1]);
}

pub async fn usage_active_users_are_distinct_per_app_and_day(s: Stores) {
    let (a, b) = (app("app1"), app("app2"));
    let day = 19_700;
    s.usage
        .mark_active(day, &[(a.clone(), user("alice")), (a.clone(), user("bob"))])
        .await
        .expect("mark");
    // Another node saw alice too, and carol; and alice in another app.
    s.usage
        .mark_active(
            day,
            &[
                (a.clone(), user("alice")),
                (a.clone(), user("carol")),
                (b.clone(), user("alice")),
            ],
        )
        .await
        .expect("mark again");
    s.usage
        .mark_active(day + 1, &[(a.clone(), user("alice"))])
        .await
        .expect("next day");
    assert_eq!(
        s.usage
            .daily_active_users(&a, day, day + 2)
            .await
            .expect("dau"),
        vec![(day, 3), (day + 1, 1)]
    );
    assert_eq!(
        s.usage
            .daily_active_users(&b, day, day + 2)
            .await
            .expect("dau"),
        vec![(day, 1)]
    );
    assert_eq!(
        s.usage
            .daily_active_users(&a, day + 1, day + 2)
            .await
            .expect("dau"),
        vec![(day + 1, 1)]
    );
    s.usage.purge_usage(0, day + 1).await.expect("purge");
    assert_eq!(
        s.usage
            .daily_active_users(&a, 0, i64::MAX)
            .await
            .expect("dau"),
        vec![(day + 1, 1)]
    );
}
