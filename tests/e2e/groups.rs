//! Groups (issue 5): create and manage over the wire, rights, mute, quotas,
//! write-diffusion delivery to every member device, events stored in the
//! conversation and seen on sync, removal cutting delivery and history.

use std::time::Duration;

use confab_client::{Client, Transport};
use confab_proto::{Frame, Peer, ops};

use crate::helpers::*;

fn group_frame(op: &str, group: &str) -> Frame {
    Frame {
        op: op.into(),
        group_id: group.into(),
        ..Default::default()
    }
}

fn users(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

async fn create(c: &Client, group: &str, members: &[&str], policy: &str) -> Frame {
    c.call(Frame {
        user_ids: users(members),
        name: Some(format!("{group} team")),
        join_policy: Some(policy.into()),
        ..group_frame(ops::GROUP_CREATE, group)
    })
    .await
    .expect("group_create")
}

async fn gsend(c: &Client, group: &str, cid: &str, text: &str) -> Frame {
    c.request(gsend_frame(group, cid, text))
        .await
        .expect("a reply")
}

fn gsend_frame(group: &str, cid: &str, text: &str) -> Frame {
    Frame {
        op: ops::SEND.into(),
        to: Some(Peer {
            kind: "group".into(),
            id: group.into(),
        }),
        client_msg_id: cid.into(),
        body: serde_json::json!({"type":"text","text":text}).to_string(),
        ..Default::default()
    }
}

async fn add(c: &Client, group: &str, who: &[&str]) -> Frame {
    c.request(Frame {
        user_ids: users(who),
        ..group_frame(ops::GROUP_ADD, group)
    })
    .await
    .expect("a reply")
}

async fn remove(c: &Client, group: &str, who: &[&str]) -> Frame {
    c.request(Frame {
        user_ids: users(who),
        ..group_frame(ops::GROUP_REMOVE, group)
    })
    .await
    .expect("a reply")
}

async fn set_role(c: &Client, group: &str, who: &str, role: &str) -> Frame {
    c.request(Frame {
        user_id: who.into(),
        role: Some(role.into()),
        ..group_frame(ops::GROUP_ROLE, group)
    })
    .await
    .expect("a reply")
}

async fn mute(c: &Client, group: &str, who: &str, ms: i64) -> Frame {
    c.request(Frame {
        user_id: who.into(),
        duration_ms: Some(ms),
        ..group_frame(ops::GROUP_MUTE, group)
    })
    .await
    .expect("a reply")
}

fn ok(reply: &Frame) -> bool {
    reply.ok == Some(true)
}

fn event_kind(m: &confab_proto::Message) -> Option<String> {
    let body: serde_json::Value = serde_json::from_str(&m.body).ok()?;
    (body["type"] == "event").then(|| body["event"].as_str().unwrap_or_default().to_owned())
}

/// Text messages and events of a pushed/synced stream, as "text:<t>" or
/// "event:<kind>".
fn describe(m: &confab_proto::Message) -> String {
    match event_kind(m) {
        Some(kind) => format!("event:{kind}"),
        None => format!("text:{}", text_of(&m.body)),
    }
}

#[tokio::test]
async fn a_group_message_reaches_every_member_device_with_one_seq() {
    let server = TestServer::start().await;
    let alice_phone = server
        .login(Transport::WsJson, "alice", "a-phone", "ios")
        .await;
    let mut alice_desk = server
        .login(Transport::WsProto, "alice", "a-desk", "desktop")
        .await;
    let mut bob = server
        .login(Transport::Tcp, "bob", "b-phone", "android")
        .await;
    let mut bob_web = server.login(Transport::WsJson, "bob", "b-web", "web").await;
    let mut carol = server
        .login(Transport::WsProto, "carol", "c-phone", "ios")
        .await;

    let created = create(&alice_phone, "g1", &["bob", "carol"], "invite_only").await;
    let group = created.group.expect("group in reply");
    assert_eq!(group.owner, "alice");
    assert_eq!(group.member_count, 3);
    assert_eq!(group.join_policy, "invite_only");
    assert_eq!(created.conv_id, "group:g1");
    assert_eq!(created.seq, Some(1), "the created event is the first seq");
    for c in [&mut bob, &mut bob_web, &mut carol, &mut alice_desk] {
        let e = c.next_op(ops::EVENT, WAIT).await.expect("created event");
        assert_eq!(e.event, "created");
        assert_eq!(e.group_id, "g1");
        assert_eq!(e.seq, Some(1));
    }

    let reply = gsend(&alice_phone, "g1", "m1", "hello team").await;
    assert!(ok(&reply), "{reply:?}");
    assert_eq!(reply.conv_id, "group:g1");
    assert_eq!(reply.seq, Some(2));
    for c in [&mut bob, &mut bob_web, &mut carol, &mut alice_desk] {
        let m = c.next_op(ops::MESSAGE, WAIT).await.expect("group message");
        assert_eq!(m.msg_id, reply.msg_id);
        assert_eq!(m.seq, Some(2));
        assert_eq!(m.conv_id, "group:g1");
        assert_eq!(m.from, "alice");
        assert_eq!(
            m.to,
            Some(Peer {
                kind: "group".into(),
                id: "g1".into()
            })
        );
        assert_eq!(text_of(&m.body), "hello team");
    }
    // Replies from the others keep one order.
    let r2 = gsend(&carol, "g1", "c1", "hi").await;
    assert_eq!(r2.seq, Some(3));
    let seen = bob.next_op(ops::MESSAGE, WAIT).await.expect("carol's");
    assert_eq!(seen.seq, Some(3));
    // Idempotent: the same client_msg_id gives the same message, delivers nothing.
    let again = gsend(&alice_phone, "g1", "m1", "hello team").await;
    assert_eq!(again.msg_id, reply.msg_id);
    assert!(bob.next_op(ops::MESSAGE, QUIET).await.is_none());

    // History and conversations for a member.
    let history = bob
        .call(Frame {
            op: ops::HISTORY.into(),
            conv_id: "group:g1".into(),
            ..Default::default()
        })
        .await
        .expect("history");
    assert_eq!(
        history.messages.iter().map(describe).collect::<Vec<_>>(),
        vec!["text:hi", "text:hello team", "event:created"]
    );
    let convs = bob
        .call(Frame {
            op: ops::CONVERSATIONS.into(),
            ..Default::default()
        })
        .await
        .expect("conversations");
    let g = convs
        .conversations
        .iter()
        .find(|c| c.conv_id == "group:g1")
        .expect("group listed");
    assert_eq!(g.peer.as_ref().map(|p| p.kind.as_str()), Some("group"));
    assert_eq!(g.last_seq, 3);
    assert_eq!(g.unread, 3);
}

#[tokio::test]
async fn rights_follow_roles() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await; // owner
    let bob = server.user("bob").await; // admin
    let carol = server.user("carol").await; // member
    let dave = server.user("dave").await; // member
    let zed = server.user("zed").await; // not a member
    create(
        &alice,
        "g1",
        &["bob", "carol", "dave", "erin"],
        "invite_only",
    )
    .await;
    assert!(ok(&set_role(&alice, "g1", "bob", "admin").await));
    assert!(ok(&set_role(&alice, "g1", "erin", "admin").await));

    // A member manages nothing.
    assert_eq!(
        error_code(&remove(&carol, "g1", &["dave"]).await),
        "forbidden"
    );
    assert_eq!(
        error_code(&remove(&carol, "g1", &["bob"]).await),
        "forbidden"
    );
    assert_eq!(error_code(&add(&carol, "g1", &["zed"]).await), "forbidden");
    assert_eq!(
        error_code(&mute(&carol, "g1", "dave", 1000).await),
        "forbidden"
    );
    assert_eq!(
        error_code(&set_role(&carol, "g1", "dave", "admin").await),
        "forbidden"
    );
    let update = carol
        .request(Frame {
            announcement: Some("mine now".into()),
            ..group_frame(ops::GROUP_UPDATE, "g1")
        })
        .await
        .expect("reply");
    assert_eq!(error_code(&update), "forbidden");
    let dismiss = carol
        .request(group_frame(ops::GROUP_DISMISS, "g1"))
        .await
        .expect("reply");
    assert_eq!(error_code(&dismiss), "forbidden");

    // An admin manages members, not admins or the owner.
    assert_eq!(
        error_code(&remove(&bob, "g1", &["alice"]).await),
        "forbidden"
    );
    assert_eq!(
        error_code(&remove(&bob, "g1", &["erin"]).await),
        "forbidden"
    );
    assert_eq!(
        error_code(&mute(&bob, "g1", "erin", 1000).await),
        "forbidden"
    );
    assert_eq!(
        error_code(&mute(&bob, "g1", "alice", 1000).await),
        "forbidden"
    );
    assert_eq!(
        error_code(&set_role(&bob, "g1", "dave", "admin").await),
        "forbidden"
    );
    let transfer = bob
        .request(Frame {
            user_id: "bob".into(),
            ..group_frame(ops::GROUP_TRANSFER, "g1")
        })
        .await
        .expect("reply");
    assert_eq!(error_code(&transfer), "forbidden");
    assert!(ok(&add(&bob, "g1", &["zed"]).await));
    assert!(ok(&remove(&bob, "g1", &["zed"]).await));
    assert!(ok(&mute(&bob, "g1", "dave", 60_000).await));
    let update = bob
        .request(Frame {
            announcement: Some("be nice".into()),
            ..group_frame(ops::GROUP_UPDATE, "g1")
        })
        .await
        .expect("reply");
    assert!(ok(&update), "{update:?}");
    assert_eq!(update.group.expect("group").announcement, "be nice");

    // The owner removes admins; cannot quit without handing over.
    assert!(ok(&remove(&alice, "g1", &["erin"]).await));
    let quit = alice
        .request(group_frame(ops::GROUP_QUIT, "g1"))
        .await
        .expect("reply");
    assert_eq!(error_code(&quit), "forbidden");

    // A non-member sees nothing.
    for op in [ops::GROUP_INFO, ops::GROUP_MEMBERS, ops::GROUP_QUIT] {
        let r = zed.request(group_frame(op, "g1")).await.expect("reply");
        assert_eq!(error_code(&r), "not_found", "{op}");
    }
    assert_eq!(
        error_code(&gsend(&zed, "g1", "z1", "hi").await),
        "not_found"
    );
    let history = zed
        .request(Frame {
            op: ops::HISTORY.into(),
            conv_id: "group:g1".into(),
            ..Default::default()
        })
        .await
        .expect("reply");
    assert_eq!(error_code(&history), "not_found");

    // Transfer: carol becomes the owner, alice a member.
    let transfer = alice
        .request(Frame {
            user_id: "carol".into(),
            ..group_frame(ops::GROUP_TRANSFER, "g1")
        })
        .await
        .expect("reply");
    assert!(ok(&transfer), "{transfer:?}");
    let info = alice
        .call(group_frame(ops::GROUP_INFO, "g1"))
        .await
        .expect("info");
    assert_eq!(info.role.as_deref(), Some("member"));
    assert_eq!(info.group.expect("group").owner, "carol");
    assert_eq!(
        error_code(&remove(&alice, "g1", &["dave"]).await),
        "forbidden"
    );
    assert!(
        ok(&remove(&carol, "g1", &["bob"]).await),
        "the new owner removes an admin"
    );
    assert!(
        ok(&alice
            .request(group_frame(ops::GROUP_QUIT, "g1"))
            .await
            .expect("reply")),
        "a former owner may quit"
    );
    // Dismiss: only the owner; afterwards the group is gone for everyone.
    let dismiss = carol
        .request(group_frame(ops::GROUP_DISMISS, "g1"))
        .await
        .expect("reply");
    assert!(ok(&dismiss), "{dismiss:?}");
    let info = dave
        .request(group_frame(ops::GROUP_INFO, "g1"))
        .await
        .expect("reply");
    assert_eq!(error_code(&info), "not_found");
    assert_eq!(
        error_code(&gsend(&dave, "g1", "d1", "hi").await),
        "not_found"
    );
    let again = carol
        .request(Frame {
            user_ids: users(&["x"]),
            ..group_frame(ops::GROUP_CREATE, "g1")
        })
        .await
        .expect("reply");
    assert_eq!(
        error_code(&again),
        "conflict",
        "a dismissed id is not reused"
    );
}

#[tokio::test]
async fn a_muted_member_cannot_send() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    create(&alice, "g1", &["bob", "carol"], "invite_only").await;
    assert!(ok(&set_role(&alice, "g1", "bob", "admin").await));

    assert!(ok(&mute(&bob, "g1", "carol", 60_000).await));
    let refused = gsend(&carol, "g1", "c1", "let me talk").await;
    assert_eq!(error_code(&refused), "muted");
    let members = carol
        .call(group_frame(ops::GROUP_MEMBERS, "g1"))
        .await
        .expect("members");
    let me = members
        .group_members
        .iter()
        .find(|m| m.user_id == "carol")
        .expect("carol listed");
    assert!(me.muted_until > confab_model::now_ms());
    assert!(ok(&mute(&bob, "g1", "carol", 0).await), "0 lifts the mute");
    assert!(ok(&gsend(&carol, "g1", "c2", "thanks").await));

    // A short mute ends by itself.
    assert!(ok(&mute(&alice, "g1", "carol", 300).await));
    assert_eq!(error_code(&gsend(&carol, "g1", "c3", "x").await), "muted");
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(ok(&gsend(&carol, "g1", "c4", "back").await));

    // Mute all: members are silent, the owner and admins are not.
    let all = bob
        .request(Frame {
            mute_all: Some(true),
            ..group_frame(ops::GROUP_MUTE, "g1")
        })
        .await
        .expect("reply");
    assert!(ok(&all), "{all:?}");
    assert_eq!(error_code(&gsend(&carol, "g1", "c5", "x").await), "muted");
    assert!(ok(&gsend(&bob, "g1", "b1", "admins may speak").await));
    assert!(ok(&gsend(&alice, "g1", "a1", "so may the owner").await));
    let info = carol
        .call(group_frame(ops::GROUP_INFO, "g1"))
        .await
        .expect("info");
    assert!(info.group.expect("group").mute_all);
    alice
        .call(Frame {
            mute_all: Some(false),
            ..group_frame(ops::GROUP_MUTE, "g1")
        })
        .await
        .expect("unmute all");
    assert!(ok(&gsend(&carol, "g1", "c6", "free").await));
}

#[tokio::test]
async fn a_removed_member_stops_receiving_and_loses_history() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    let mut carol = server
        .login(Transport::Tcp, "carol", "c-phone", "android")
        .await;
    create(&alice, "g1", &["bob", "carol"], "invite_only").await;
    assert!(ok(&gsend(&alice, "g1", "m1", "before").await));
    assert!(carol.next_op(ops::MESSAGE, WAIT).await.is_some());

    assert!(ok(&remove(&alice, "g1", &["carol"]).await));
    let removed = carol
        .next_op(ops::EVENT, WAIT)
        .await
        .expect("the removed member is told");
    assert_eq!(removed.event, "removed");
    assert!(ok(&gsend(&alice, "g1", "m2", "after").await));
    let bobs = bob
        .next_op(ops::MESSAGE, WAIT)
        .await
        .expect("bob still gets it");
    assert_eq!(text_of(&bobs.body), "before");
    let bobs = bob
        .next_op(ops::MESSAGE, WAIT)
        .await
        .expect("bob still gets it");
    assert_eq!(text_of(&bobs.body), "after");
    assert!(
        carol.next_op(ops::MESSAGE, QUIET).await.is_none(),
        "no delivery after removal"
    );
    let history = carol
        .request(Frame {
            op: ops::HISTORY.into(),
            conv_id: "group:g1".into(),
            ..Default::default()
        })
        .await
        .expect("reply");
    assert_eq!(error_code(&history), "not_found");
    let read = carol
        .request(Frame {
            op: ops::READ.into(),
            conv_id: "group:g1".into(),
            seq: Some(1),
            ..Default::default()
        })
        .await
        .expect("reply");
    assert_eq!(error_code(&read), "not_found");
    assert_eq!(
        error_code(&gsend(&carol, "g1", "c1", "hello?").await),
        "not_found"
    );
    let convs = carol
        .call(Frame {
            op: ops::CONVERSATIONS.into(),
            ..Default::default()
        })
        .await
        .expect("conversations");
    assert!(convs.conversations.iter().all(|c| c.conv_id != "group:g1"));
    assert_eq!(convs.total_unread, Some(0));
    // Sync shows what carol had, up to and including her removal, nothing after.
    let synced = sync_all(&carol, 0, 100).await;
    assert_eq!(
        synced.iter().map(describe).collect::<Vec<_>>(),
        vec!["event:created", "text:before", "event:removed"]
    );
}

#[tokio::test]
async fn a_new_member_sees_history_only_from_joining() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    create(&alice, "g1", &["bob"], "open").await;
    assert!(ok(&gsend(&alice, "g1", "m1", "old news").await));
    let dave = server.user("dave").await;
    let joined = dave
        .call(group_frame(ops::GROUP_JOIN, "g1"))
        .await
        .expect("an open group lets anyone join");
    assert_eq!(joined.pending, Some(false));
    assert!(ok(&gsend(&alice, "g1", "m2", "fresh").await));
    let history = dave
        .call(Frame {
            op: ops::HISTORY.into(),
            conv_id: "group:g1".into(),
            ..Default::default()
        })
        .await
        .expect("history");
    assert_eq!(
        history.messages.iter().map(describe).collect::<Vec<_>>(),
        vec!["text:fresh", "event:joined"]
    );
    assert_eq!(history.has_more, Some(false));
    let synced = sync_all(&dave, 0, 100).await;
    assert_eq!(
        synced.iter().map(describe).collect::<Vec<_>>(),
        vec!["event:joined", "text:fresh"]
    );
    // A member sees the whole of it.
    let bob = server.user("bob").await;
    let history = bob
        .call(Frame {
            op: ops::HISTORY.into(),
            conv_id: "group:g1".into(),
            ..Default::default()
        })
        .await
        .expect("history");
    assert_eq!(history.messages.len(), 4);
}

#[tokio::test]
async fn join_policies() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let zed = server.user("zed").await;
    create(&alice, "closed", &[], "invite_only").await;
    let r = zed
        .request(group_frame(ops::GROUP_JOIN, "closed"))
        .await
        .expect("reply");
    assert_eq!(error_code(&r), "forbidden");

    create(&alice, "asked", &[], "approval").await;
    let mut alice = alice;
    let r = zed
        .call(group_frame(ops::GROUP_JOIN, "asked"))
        .await
        .expect("join");
    assert_eq!(r.pending, Some(true));
    let request = alice
        .next_op(ops::EVENT, WAIT)
        .await
        .expect("the owner hears of it");
    assert_eq!(request.event, "join_requested");
    assert_eq!(request.user_id, "zed");
    let info = zed
        .request(group_frame(ops::GROUP_INFO, "asked"))
        .await
        .expect("reply");
    assert_eq!(error_code(&info), "not_found", "not a member yet");
    assert!(
        ok(&add(&alice, "asked", &["zed"]).await),
        "approve by adding"
    );
    let info = zed
        .call(group_frame(ops::GROUP_INFO, "asked"))
        .await
        .expect("now a member");
    assert_eq!(info.role.as_deref(), Some("member"));
    assert_eq!(info.group.expect("group").member_count, 2);

    let missing = zed
        .request(group_frame(ops::GROUP_JOIN, "nope"))
        .await
        .expect("reply");
    assert_eq!(error_code(&missing), "not_found");
}

#[tokio::test]
async fn events_reach_offline_members_by_sync_in_order() {
    let server = TestServer::start().await;
    let alice = server
        .login(Transport::WsProto, "alice", "a-desk", "desktop")
        .await;
    let created = alice
        .call(Frame {
            user_ids: users(&["bob", "dave"]),
            name: Some("Team".into()),
            custom: Some(r#"{"topic":"rust","level":3}"#.into()),
            join_policy: Some("invite_only".into()),
            ..group_frame(ops::GROUP_CREATE, "g1")
        })
        .await
        .expect("create over protobuf");
    let g = created.group.expect("group");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&g.custom).expect("custom is JSON")["topic"],
        "rust"
    );
    alice
        .call(Frame {
            announcement: Some("Standup at 10".into()),
            ..group_frame(ops::GROUP_UPDATE, "g1")
        })
        .await
        .expect("update");
    assert!(ok(&add(&alice, "g1", &["erin"]).await));
    assert!(ok(&gsend(&alice, "g1", "m1", "welcome erin").await));
    assert!(ok(&mute(&alice, "g1", "erin", 60_000).await));
    assert!(ok(&set_role(&alice, "g1", "dave", "admin").await));
    assert!(ok(&remove(&alice, "g1", &["erin"]).await));
    let bob_quit = server.user("bob").await;
    bob_quit
        .call(group_frame(ops::GROUP_QUIT, "g1"))
        .await
        .expect("bob leaves");
    alice
        .call(group_frame(ops::GROUP_DISMISS, "g1"))
        .await
        .expect("dismiss");

    // dave was offline the whole time.
    let dave = server
        .login(Transport::Tcp, "dave", "d-phone", "android")
        .await;
    let synced = sync_all(&dave, 0, 3).await;
    assert_eq!(
        synced.iter().map(describe).collect::<Vec<_>>(),
        vec![
            "event:created",
            "event:updated",
            "event:joined",
            "text:welcome erin",
            "event:muted",
            "event:role",
            "event:removed",
            "event:left",
            "event:dismissed",
        ]
    );
    let seqs: Vec<u64> = synced.iter().map(|m| m.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let updated: serde_json::Value = serde_json::from_str(&synced[1].body).expect("json");
    assert_eq!(updated["announcement"], "Standup at 10");
    assert_eq!(updated["actor"], "alice");
    let removed: serde_json::Value = serde_json::from_str(&synced[6].body).expect("json");
    assert_eq!(removed["users"], serde_json::json!(["erin"]));
    // erin saw her own arc: joined .. removed, nothing after.
    let erin = server.user("erin").await;
    let hers = sync_all(&erin, 0, 100).await;
    assert_eq!(
        hers.iter().map(describe).collect::<Vec<_>>(),
        vec![
            "event:joined",
            "text:welcome erin",
            "event:muted",
            "event:role",
            "event:removed"
        ]
    );
}

#[tokio::test]
async fn group_size_and_groups_per_user_quotas() {
    let server = TestServer::start().await;
    server
        .update_settings(|s| {
            s.quotas.max_group_size = 3;
            s.quotas.max_groups_per_user = 2;
        })
        .await;
    let alice = server.user("alice").await;
    let too_big = alice
        .request(Frame {
            user_ids: users(&["b", "c", "d"]),
            ..group_frame(ops::GROUP_CREATE, "big")
        })
        .await
        .expect("reply");
    assert_eq!(error_code(&too_big), "quota_exceeded");
    create(&alice, "g1", &["b", "c"], "open").await;
    assert_eq!(
        error_code(&add(&alice, "g1", &["d"]).await),
        "quota_exceeded"
    );
    let d = server.user("d").await;
    let join = d
        .request(group_frame(ops::GROUP_JOIN, "g1"))
        .await
        .expect("reply");
    assert_eq!(error_code(&join), "quota_exceeded");
    // alice is in g1; one more group fits, a third does not.
    create(&alice, "g2", &[], "open").await;
    let third = alice
        .request(group_frame(ops::GROUP_CREATE, "g3"))
        .await
        .expect("reply");
    assert_eq!(error_code(&third), "quota_exceeded");
    let members = alice
        .call(group_frame(ops::GROUP_MEMBERS, "g1"))
        .await
        .expect("members");
    assert_eq!(
        members.group_members.len(),
        3,
        "nothing of a refused add is kept"
    );
}

#[tokio::test]
async fn members_are_listed_in_pages() {
    let server = TestServer::start().await;
    let owner = server.user("owner").await;
    let names: Vec<String> = (0..25).map(|i| format!("u{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    create(&owner, "g1", &refs, "invite_only").await;
    let mut cursor = String::new();
    let mut seen = vec![];
    loop {
        let page = owner
            .call(Frame {
                cursor: cursor.clone(),
                limit: Some(10),
                ..group_frame(ops::GROUP_MEMBERS, "g1")
            })
            .await
            .expect("page");
        assert!(page.group_members.len() <= 10);
        seen.extend(
            page.group_members
                .iter()
                .map(|m| (m.user_id.clone(), m.role.clone())),
        );
        if page.has_more != Some(true) {
            assert!(page.cursor.is_empty());
            break;
        }
        cursor = page.cursor;
    }
    assert_eq!(seen.len(), 26);
    assert!(seen.contains(&("owner".into(), "owner".into())));
    assert_eq!(seen.iter().filter(|(_, r)| r == "member").count(), 25);
}

#[tokio::test]
async fn reading_a_group_moves_the_cursor_without_receipts() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let mut bob_phone = server
        .login(Transport::Tcp, "bob", "b-phone", "android")
        .await;
    // A user whose id is the group's id must not be taken for a peer.
    let mut namesake = server.user("team").await;
    create(&alice, "team", &["bob"], "invite_only").await;
    let sent = gsend(&alice, "team", "m1", "read me").await;
    let read = bob
        .call(Frame {
            op: ops::READ.into(),
            conv_id: "group:team".into(),
            seq: sent.seq,
            ..Default::default()
        })
        .await
        .expect("read");
    assert_eq!(read.seq, sent.seq);
    let other = bob_phone
        .next_op(ops::READ, WAIT)
        .await
        .expect("bob's other device follows");
    assert_eq!(other.seq, sent.seq);
    assert!(namesake.next_op(ops::RECEIPT, QUIET).await.is_none());
    let convs = bob
        .call(Frame {
            op: ops::CONVERSATIONS.into(),
            ..Default::default()
        })
        .await
        .expect("conversations");
    assert_eq!(convs.total_unread, Some(0));
}

/// A membership change whose request died after the store made it (a
/// crashed logic node or database) still gets its event: the store kept the
/// event pending in the change's own transaction. The client's retry finds
/// nothing to change and stores the event; a change nobody retries is
/// stored by the logic node's sweep. Either way once, with the users it
/// affected, to the members and to the removed.
#[tokio::test]
async fn a_membership_event_a_crash_left_pending_is_stored_by_the_retry_or_the_sweep() {
    use confab_model::{AppId, GroupId, UserId};
    use confab_store::{GroupLimits, JOIN_PENDING, MemberEvent};
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mut bob = server
        .login(Transport::Tcp, "bob", "b-phone", "android")
        .await;
    let mut carol = server
        .login(Transport::Tcp, "carol", "c-phone", "android")
        .await;
    create(&alice, "g1", &["bob"], "invite_only").await;
    assert_eq!(
        bob.next_op(ops::EVENT, WAIT).await.expect("created").event,
        "created"
    );
    let app = AppId::parse(&server.app_id).expect("app id");
    let g1 = GroupId::parse("g1").expect("group id");
    let uid = |u: &str| UserId::parse(u).expect("user id");
    let groups = &server.stores().groups;
    let limits = GroupLimits {
        max_members: 100,
        max_groups_per_user: 100,
    };
    // The first try of "add carol": the store made the change, then the
    // node died before the event.
    let lost_add = MemberEvent {
        id: "lost-add".into(),
        kind: "joined".into(),
        actor: uid("alice"),
        at: confab_model::now_ms(),
    };
    let added = groups
        .add_members(&app, &g1, &[uid("carol")], JOIN_PENDING, limits, &lost_add)
        .await
        .expect("add in the store");
    assert_eq!(added, vec![uid("carol")]);
    // The retry: nothing left to change, and the event is stored.
    assert!(ok(&add(&alice, "g1", &["carol"]).await));
    let joined = carol
        .next_op(ops::EVENT, WAIT)
        .await
        .expect("carol is told she joined");
    assert_eq!(joined.event, "joined");
    let body: serde_json::Value = serde_json::from_str(&joined.body).expect("json");
    assert_eq!(body["users"], serde_json::json!(["carol"]));
    assert_eq!(body["actor"], "alice");
    assert_eq!(
        bob.next_op(ops::EVENT, WAIT).await.expect("bob too").event,
        "joined"
    );
    // Carol's membership starts at the event the retry stored.
    let carol_member = groups
        .member(&app, &g1, &uid("carol"))
        .await
        .expect("member")
        .expect("carol is a member");
    assert_eq!(Some(carol_member.join_seq), joined.seq);
    assert!(
        groups
            .pending_events(&app, &g1)
            .await
            .expect("pending")
            .is_empty()
    );
    // Retrying again stores nothing more.
    assert!(ok(&add(&alice, "g1", &["carol"]).await));
    assert!(carol.next_op(ops::EVENT, QUIET).await.is_none());

    // "remove bob" died the same way, and nobody retries: the sweep.
    let lost_remove = MemberEvent {
        id: "lost-remove".into(),
        kind: "removed".into(),
        actor: uid("alice"),
        at: confab_model::now_ms(),
    };
    groups
        .remove_members(&app, &g1, &[uid("bob")], &lost_remove)
        .await
        .expect("remove in the store");
    let removed = bob
        .next_op(ops::EVENT, Duration::from_secs(20))
        .await
        .expect("the sweep tells bob of his removal");
    assert_eq!(removed.event, "removed");
    assert_eq!(
        carol
            .next_op(ops::EVENT, WAIT)
            .await
            .expect("carol too")
            .event,
        "removed"
    );
    let synced = sync_all(&alice, 0, 100).await;
    assert_eq!(
        synced.iter().map(describe).collect::<Vec<_>>(),
        vec!["event:created", "event:joined", "event:removed"],
        "each event once, in the order they were stored"
    );
    // The sweep clears the pending event after it has pushed it.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !groups
        .pending_events(&app, &g1)
        .await
        .expect("pending")
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stored removal stays pending"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A `joined` event that stayed pending past the sweep's give-up age (an
/// add whose node died, then an outage of over an hour) is never stored,
/// but the membership it was for still starts: the new member receives and
/// reads what comes after (it stayed pending, reading nothing, before).
#[tokio::test]
async fn a_joined_event_the_sweep_gives_up_on_still_starts_the_membership() {
    use confab_model::{AppId, GroupId, UserId};
    use confab_store::{GroupLimits, JOIN_PENDING, MemberEvent};
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    create(&alice, "g1", &["bob"], "invite_only").await;
    let app = AppId::parse(&server.app_id).expect("app id");
    let g1 = GroupId::parse("g1").expect("group id");
    let carol_id = UserId::parse("carol").expect("user id");
    let groups = &server.stores().groups;
    let ancient = MemberEvent {
        id: "ancient-add".into(),
        kind: "joined".into(),
        actor: UserId::parse("alice").expect("user id"),
        at: confab_model::now_ms() - 2 * 3_600_000,
    };
    groups
        .add_members(
            &app,
            &g1,
            std::slice::from_ref(&carol_id),
            JOIN_PENDING,
            GroupLimits {
                max_members: 100,
                max_groups_per_user: 100,
            },
            &ancient,
        )
        .await
        .expect("add in the store");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let carol = groups
            .member(&app, &g1, &carol_id)
            .await
            .expect("member")
            .expect("carol is a member");
        if carol.join_seq != JOIN_PENDING {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sweep left carol's membership pending"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        groups
            .pending_events(&app, &g1)
            .await
            .expect("pending")
            .is_empty(),
        "the given-up event is cleared"
    );
    assert!(ok(&gsend(&alice, "g1", "after", "after the give-up").await));
    let carol = server.user("carol").await;
    let synced = sync_all(&carol, 0, 100).await;
    assert_eq!(
        synced.iter().map(describe).collect::<Vec<_>>(),
        vec!["text:after the give-up"],
        "carol gets what came after, and nothing from before"
    );
}
