//! Groups, issue 5 continued: @mentions (who may @all, mentions stored in
//! the message body, the mention-aware unread of `conversations`) and
//! stored join requests of approval groups (`group_requests`,
//! `group_request_decide`), isolated per app.

use confab_client::{Client, Transport};
use confab_proto::{Frame, Peer, ops};
use serde_json::json;

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

async fn create(c: &Client, group: &str, members: &[&str], policy: &str) {
    c.call(Frame {
        user_ids: users(members),
        join_policy: Some(policy.into()),
        ..group_frame(ops::GROUP_CREATE, group)
    })
    .await
    .expect("group_create");
}

fn mention_frame(group: &str, text: &str, mentions: &[&str], all: bool) -> Frame {
    Frame {
        op: ops::SEND.into(),
        to: Some(Peer {
            kind: "group".into(),
            id: group.into(),
        }),
        body: json!({"type":"text","text":text}).to_string(),
        mentions: users(mentions),
        mention_all: all.then_some(true),
        ..Default::default()
    }
}

fn body(m: &confab_proto::Message) -> serde_json::Value {
    serde_json::from_str(&m.body).expect("a JSON body")
}

/// The caller's `unread` and `unread_mentions` in `conv_id`.
async fn unread(c: &Client, conv_id: &str) -> (u64, u64) {
    let r = c
        .call(Frame {
            op: ops::CONVERSATIONS.into(),
            ..Default::default()
        })
        .await
        .expect("conversations");
    let conv = r
        .conversations
        .iter()
        .find(|c| c.conv_id == conv_id)
        .expect("the group is listed");
    (conv.unread, conv.unread_mentions)
}

async fn next_text_push(c: &mut Client, text: &str) -> Frame {
    loop {
        let f = c.next_op(ops::MESSAGE, WAIT).await.expect("a message push");
        if text_of(&f.body) == text {
            return f;
        }
    }
}

#[tokio::test]
async fn mentions_are_stored_with_the_message_and_counted_until_read() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let mut dave = server.user("dave").await;
    create(&alice, "g1", &["bob", "carol", "dave"], "invite_only").await;
    alice
        .call(Frame {
            user_id: "bob".into(),
            role: Some("admin".into()),
            ..group_frame(ops::GROUP_ROLE, "g1")
        })
        .await
        .expect("bob is an admin");

    // @all is for the owner and admins.
    let r = carol
        .request(mention_frame("g1", "hey all", &[], true))
        .await
        .expect("reply");
    assert_eq!(error_code(&r), "forbidden", "{r:?}");
    bob.call(mention_frame("g1", "meeting at 3", &[], true))
        .await
        .expect("an admin may @all");
    // Non-members are left out of the mentions; repeats count once.
    carol
        .call(mention_frame(
            "g1",
            "bob, look",
            &["bob", "zed", "bob"],
            false,
        ))
        .await
        .expect("mention bob");
    let pushed = next_text_push(&mut dave, "bob, look").await;
    assert_eq!(body_of(&pushed)["mentions"], json!(["bob"]));
    // The server owns the keys: a body that brings its own is cleaned.
    alice
        .call(Frame {
            body: json!({"type":"text","text":"sneaky","mentions":["dave"],"mention_all":true})
                .to_string(),
            ..mention_frame("g1", "", &[], false)
        })
        .await
        .expect("plain send");
    let pushed = next_text_push(&mut dave, "sneaky").await;
    let b = body_of(&pushed);
    assert!(
        b.get("mentions").is_none() && b.get("mention_all").is_none(),
        "{b}"
    );

    // Bad input gets a code; mentions outside a group are refused.
    let r = carol
        .request(mention_frame("g1", "x", &["bad id!"], false))
        .await
        .expect("reply");
    assert_eq!(error_code(&r), "bad_request");
    let r = carol
        .request(Frame {
            to: Some(Peer {
                kind: "user".into(),
                id: "bob".into(),
            }),
            ..mention_frame("g1", "x", &["bob"], false)
        })
        .await
        .expect("reply");
    assert_eq!(error_code(&r), "bad_request");

    // Mention-aware unread: dave has the @all; bob has carol's mention;
    // carol's own send moved her cursor past the @all; alice's too.
    assert_eq!(unread(&dave, "group:g1").await.1, 1);
    assert_eq!(unread(&bob, "group:g1").await, (2, 1));
    assert_eq!(unread(&carol, "group:g1").await.1, 0);
    assert_eq!(unread(&alice, "group:g1").await.1, 0);

    // Sync carries the mentions as stored.
    let synced = sync_all(&dave, 0, 100).await;
    let all = synced
        .iter()
        .find(|m| text_of(&m.body) == "meeting at 3")
        .expect("synced");
    assert_eq!(body(all)["mention_all"], json!(true));

    // Reading clears them.
    let last = synced.iter().map(|m| m.seq).max().expect("messages");
    dave.call(Frame {
        op: ops::READ.into(),
        conv_id: "group:g1".into(),
        seq: Some(last),
        ..Default::default()
    })
    .await
    .expect("read");
    assert_eq!(unread(&dave, "group:g1").await, (0, 0));

    // A member who joins later is not counted for earlier @all.
    alice
        .call(Frame {
            user_ids: users(&["erin"]),
            ..group_frame(ops::GROUP_ADD, "g1")
        })
        .await
        .expect("add erin");
    let erin = server.user("erin").await;
    assert_eq!(unread(&erin, "group:g1").await.1, 0);
}

fn body_of(f: &Frame) -> serde_json::Value {
    serde_json::from_str(&f.body).expect("a JSON body")
}

async fn requests(c: &Client, group: &str, cursor: &str, limit: u32) -> Frame {
    c.request(Frame {
        cursor: cursor.into(),
        limit: Some(limit),
        ..group_frame(ops::GROUP_REQUESTS, group)
    })
    .await
    .expect("reply")
}

async fn decide(c: &Client, group: &str, user: &str, approve: Option<bool>) -> Frame {
    c.request(Frame {
        user_id: user.into(),
        approve,
        ..group_frame(ops::GROUP_REQUEST_DECIDE, group)
    })
    .await
    .expect("reply")
}

fn requesters(r: &Frame) -> Vec<&str> {
    r.group_requests
        .iter()
        .map(|q| q.user_id.as_str())
        .collect()
}

#[tokio::test]
async fn join_requests_are_stored_listed_and_decided_by_admins_only() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let mut zed = server.user("zed").await;
    let mut yan = server.user("yan").await;
    create(&alice, "club", &["bob"], "approval").await;
    for c in [&zed, &yan, &zed] {
        let r = c
            .call(group_frame(ops::GROUP_JOIN, "club"))
            .await
            .expect("join");
        assert_eq!(r.pending, Some(true));
    }
    let told = alice.next_op(ops::EVENT, WAIT).await.expect("told");
    assert_eq!(told.event, "join_requested");

    // A plain member may neither list nor decide.
    assert_eq!(
        error_code(&requests(&bob, "club", "", 10).await),
        "forbidden"
    );
    assert_eq!(
        error_code(&decide(&bob, "club", "zed", Some(true)).await),
        "forbidden"
    );

    // Listed once each (zed's second request replaced the first), in pages.
    let page = requests(&alice, "club", "", 1).await;
    assert!(page.ok == Some(true), "{page:?}");
    assert_eq!(requesters(&page), ["yan"]);
    assert_eq!(page.has_more, Some(true));
    let rest = requests(&alice, "club", &page.cursor, 10).await;
    assert_eq!(requesters(&rest), ["zed"]);
    assert_eq!(rest.has_more, Some(false));
    let q = &rest.group_requests[0];
    assert!(q.expires_at > q.requested_at);

    assert_eq!(
        error_code(&decide(&alice, "club", "zed", None).await),
        "bad_request"
    );
    // Approve: zed becomes a member and hears the stored `joined` event.
    let r = decide(&alice, "club", "zed", Some(true)).await;
    assert!(r.ok == Some(true), "{r:?}");
    assert_eq!(r.user_ids, ["zed"]);
    let joined = zed.next_op(ops::EVENT, WAIT).await.expect("joined");
    assert_eq!(joined.event, "joined");
    zed.call(group_frame(ops::GROUP_INFO, "club"))
        .await
        .expect("zed is a member");
    // Reject: yan is told and stays out. Promoted bob may decide now.
    alice
        .call(Frame {
            user_id: "bob".into(),
            role: Some("admin".into()),
            ..group_frame(ops::GROUP_ROLE, "club")
        })
        .await
        .expect("bob is an admin");
    let r = decide(&bob, "club", "yan", Some(false)).await;
    assert!(r.ok == Some(true), "{r:?}");
    let rejected = yan.next_op(ops::EVENT, WAIT).await.expect("told");
    assert_eq!(rejected.event, "join_rejected");
    assert_eq!(rejected.group_id, "club");
    let info = yan
        .request(group_frame(ops::GROUP_INFO, "club"))
        .await
        .expect("reply");
    assert_eq!(error_code(&info), "not_found");
    // Decided requests are gone.
    assert!(
        requests(&alice, "club", "", 10)
            .await
            .group_requests
            .is_empty()
    );
    assert_eq!(
        error_code(&decide(&alice, "club", "yan", Some(true)).await),
        "not_found"
    );

    // Invite-only groups still refuse joins outright; nothing is stored.
    create(&alice, "closed", &[], "invite_only").await;
    let r = yan
        .request(group_frame(ops::GROUP_JOIN, "closed"))
        .await
        .expect("reply");
    assert_eq!(error_code(&r), "forbidden");
    assert!(
        requests(&alice, "closed", "", 10)
            .await
            .group_requests
            .is_empty()
    );
}

#[tokio::test]
async fn join_requests_and_mentions_do_not_cross_apps() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let zed = server.user("zed").await;
    create(&alice, "club", &[], "approval").await;
    zed.call(group_frame(ops::GROUP_JOIN, "club"))
        .await
        .expect("join");

    let other = server
        .control()
        .create_app(
            &confab_control::service::Actor::System,
            "default",
            "other",
            None,
        )
        .await
        .expect("second app");
    server.config_applied().await;
    let now = now_s();
    let login_other = |user: &'static str| {
        let token = mint(
            &other.key_id,
            &other.secret,
            json!({"sub": user, "app": other.app_id, "iat": now, "exp": now + 600}),
        );
        let server = &server;
        async move {
            let c = server.connect(Transport::WsJson).await;
            c.login(&token, "web", "web")
                .await
                .expect("login other app");
            c
        }
    };
    // The same user ids in another app: the group and its requests are not
    // there.
    let alice_other = login_other("alice").await;
    for op in [ops::GROUP_REQUESTS, ops::GROUP_INFO, ops::GROUP_JOIN] {
        let r = alice_other
            .request(group_frame(op, "club"))
            .await
            .expect("reply");
        assert_eq!(error_code(&r), "not_found", "{op}");
    }
    let r = decide(&alice_other, "club", "zed", Some(true)).await;
    assert_eq!(error_code(&r), "not_found");
    let r = alice_other
        .request(mention_frame("club", "hi", &["zed"], true))
        .await
        .expect("reply");
    assert_eq!(error_code(&r), "not_found");
    // zed's request is still pending in the first app.
    assert_eq!(requesters(&requests(&alice, "club", "", 10).await), ["zed"]);
}
