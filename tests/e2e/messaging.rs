//! The messaging contract of protocol.md: delivery, sync, dedupe, order,
//! history, read state, recall, typing.

use std::collections::HashSet;

use confab_client::Transport;
use confab_proto::{Frame, Peer, ops};

use crate::helpers::*;

#[tokio::test]
async fn online_recipient_gets_the_message_on_every_transport() {
    let server = TestServer::start().await;
    for transport in ALL_TRANSPORTS {
        let alice = server.login(transport, "alice", "a-phone", "ios").await;
        let mut bob = server.login(transport, "bob", "b-phone", "android").await;
        let reply = alice
            .send_text("bob", &format!("hello-{transport:?}"), "hi bob")
            .await
            .expect("send");
        assert!(!reply.msg_id.is_empty());
        assert_eq!(reply.conv_id, "p2p:alice:bob");
        let push = bob.next_op(ops::MESSAGE, WAIT).await.expect("bob receives");
        assert_eq!(push.msg_id, reply.msg_id, "{transport:?}");
        assert_eq!(push.seq, reply.seq);
        assert_eq!(push.from, "alice");
        assert_eq!(
            push.to,
            Some(Peer {
                kind: "user".into(),
                id: "bob".into()
            })
        );
        assert_eq!(text_of(&push.body), "hi bob");
        assert_eq!(push.client_msg_id, format!("hello-{transport:?}"));
        assert!(push.inbox_seq.is_some() && push.ts.is_some());
    }
}

#[tokio::test]
async fn messages_sent_while_offline_arrive_by_sync() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    for i in 0..5 {
        alice
            .send_text("bob", &format!("c{i}"), &format!("m{i}"))
            .await
            .expect("send");
    }
    let bob = server
        .login(Transport::Tcp, "bob", "b-phone", "android")
        .await;
    let synced = bob.sync(0, 100).await.expect("sync");
    assert_eq!(synced.has_more, Some(false));
    let texts: Vec<String> = synced.messages.iter().map(|m| text_of(&m.body)).collect();
    assert_eq!(texts, vec!["m0", "m1", "m2", "m3", "m4"]);
    let inbox: Vec<u64> = synced
        .messages
        .iter()
        .map(|m| m.inbox_seq.unwrap_or(0))
        .collect();
    assert_eq!(inbox, vec![1, 2, 3, 4, 5]);
    // Paging with since/limit.
    let page = bob.sync(2, 2).await.expect("sync");
    assert_eq!(
        page.messages
            .iter()
            .map(|m| m.inbox_seq.unwrap_or(0))
            .collect::<Vec<_>>(),
        vec![3, 4]
    );
    assert_eq!(page.has_more, Some(true));
}

#[tokio::test]
async fn a_message_reaches_every_device_of_both_users_except_the_sending_one() {
    let server = TestServer::start().await;
    let alice_phone = server
        .login(Transport::WsJson, "alice", "a-phone", "ios")
        .await;
    let mut alice_desktop = server
        .login(Transport::Tcp, "alice", "a-desktop", "desktop")
        .await;
    let mut bob_phone = server
        .login(Transport::WsProto, "bob", "b-phone", "android")
        .await;
    let mut bob_web = server.login(Transport::WsJson, "bob", "b-web", "web").await;
    let reply = alice_phone
        .send_text("bob", "c1", "everywhere")
        .await
        .expect("send");
    for (who, c) in [
        ("alice desktop", &mut alice_desktop),
        ("bob phone", &mut bob_phone),
        ("bob web", &mut bob_web),
    ] {
        let push = c
            .next_op(ops::MESSAGE, WAIT)
            .await
            .unwrap_or_else(|| panic!("{who} gets it"));
        assert_eq!(push.msg_id, reply.msg_id, "{who}");
    }
    let mut alice_phone = alice_phone;
    assert!(
        alice_phone.next_op(ops::MESSAGE, QUIET).await.is_none(),
        "the sending device gets the reply, not a push"
    );
}

#[tokio::test]
async fn resend_with_same_client_msg_id_returns_same_msg_id_and_seq_and_delivers_once() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    let first = alice
        .send_text("bob", "retry-me", "once")
        .await
        .expect("send");
    let again = alice
        .send_text("bob", "retry-me", "once")
        .await
        .expect("resend");
    assert_eq!(again.msg_id, first.msg_id);
    assert_eq!(again.seq, first.seq);
    bob.next_op(ops::MESSAGE, WAIT)
        .await
        .expect("first delivery");
    // Read raw pushes (the client's own dedupe would hide a repeat).
    assert!(
        bob.next_op(ops::MESSAGE, QUIET).await.is_none(),
        "no second delivery"
    );
    let synced = bob.sync(0, 100).await.expect("sync");
    assert_eq!(synced.messages.len(), 1, "stored once");
}

#[tokio::test]
async fn inbox_seq_is_gap_free_across_1000_messages_from_10_concurrent_senders() {
    let server = TestServer::start().await;
    let mut bob = server.user("bob").await;
    let mut senders = Vec::new();
    for s in 0..10 {
        let c = server.user(&format!("sender{s}")).await;
        senders.push(tokio::spawn(async move {
            for i in 0..100 {
                c.send_text("bob", &format!("{s}-{i}"), &format!("{s}-{i}"))
                    .await
                    .expect("send");
            }
        }));
    }
    for s in senders {
        s.await.expect("sender task");
    }
    // Live pushes: each of the 1000 once. Concurrent senders' pushes may
    // overtake each other on the way (protocol.md: a device that sees a gap
    // syncs); the order guarantee is the inbox's, checked by sync below.
    let mut live = Vec::new();
    while live.len() < 1000 {
        let push = bob
            .next_op(ops::MESSAGE, WAIT)
            .await
            .expect("all 1000 pushed");
        live.push(push.inbox_seq.unwrap_or(0));
    }
    live.sort_unstable();
    assert_eq!(
        live,
        (1..=1000).collect::<Vec<_>>(),
        "every inbox_seq pushed once, none missing"
    );
    // Sync: the same 1000, gap-free, and each sender's messages in send order.
    let all = sync_all(&bob, 0, 500).await;
    assert_eq!(
        all.iter()
            .map(|m| m.inbox_seq.unwrap_or(0))
            .collect::<Vec<_>>(),
        (1..=1000).collect::<Vec<_>>()
    );
    for s in 0..10 {
        let texts: Vec<String> = all
            .iter()
            .filter(|m| m.from == format!("sender{s}"))
            .map(|m| text_of(&m.body))
            .collect();
        let expected: Vec<String> = (0..100).map(|i| format!("{s}-{i}")).collect();
        assert_eq!(texts, expected, "per-conversation order for sender{s}");
        let seqs: Vec<u64> = all
            .iter()
            .filter(|m| m.from == format!("sender{s}"))
            .map(|m| m.seq)
            .collect();
        assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
    }
    let ids: HashSet<&str> = all.iter().map(|m| m.msg_id.as_str()).collect();
    assert_eq!(ids.len(), 1000);
}

#[tokio::test]
async fn history_pages_backwards_from_the_newest() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    for i in 1..=25 {
        alice
            .send_text("bob", &format!("c{i}"), &format!("m{i}"))
            .await
            .expect("send");
    }
    let bob = server.user("bob").await;
    let history = |before: Option<u64>| Frame {
        op: ops::HISTORY.into(),
        conv_id: "p2p:alice:bob".into(),
        before_seq: before,
        limit: Some(10),
        ..Default::default()
    };
    let first = bob.call(history(None)).await.expect("history");
    assert_eq!(
        first.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (16..=25).rev().collect::<Vec<_>>()
    );
    assert_eq!(first.has_more, Some(true));
    let second = bob.call(history(Some(16))).await.expect("history");
    assert_eq!(second.messages.first().map(|m| m.seq), Some(15));
    let last = bob.call(history(Some(6))).await.expect("history");
    assert_eq!(
        last.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![5, 4, 3, 2, 1]
    );
    assert_eq!(last.has_more, Some(false));
    // A conversation the user is not in looks like one that does not exist.
    let carol = server.user("carol").await;
    let denied = carol.request(history(None)).await.expect("reply");
    assert_eq!(error_code(&denied), "not_found");
}

#[tokio::test]
async fn read_state_unread_counts_and_receipts_agree_across_devices() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    let bob_phone = server
        .login(Transport::WsJson, "bob", "b-phone", "ios")
        .await;
    let mut bob_web = server.login(Transport::Tcp, "bob", "b-web", "web").await;
    let mut last = 0;
    for i in 0..3 {
        last = alice
            .send_text("bob", &format!("c{i}"), "hey")
            .await
            .expect("send")
            .seq
            .unwrap_or(0);
    }
    for c in [&bob_phone, &bob_web] {
        let list = convs(c).await;
        assert_eq!(list.total_unread, Some(3));
        assert_eq!(list.conversations[0].unread, 3);
        assert_eq!(
            list.conversations[0].peer.as_ref().map(|p| p.id.as_str()),
            Some("alice")
        );
        assert_eq!(
            list.conversations[0].last_message.as_ref().map(|m| m.seq),
            Some(last)
        );
    }
    let sender_view = convs(&alice).await;
    assert_eq!(
        sender_view.total_unread,
        Some(0),
        "the sender has read their own messages"
    );

    let read = Frame {
        op: ops::READ.into(),
        conv_id: "p2p:alice:bob".into(),
        seq: Some(2),
        ..Default::default()
    };
    bob_phone.call(read).await.expect("read");
    let other_device = bob_web
        .next_op(ops::READ, WAIT)
        .await
        .expect("bob's other device is told");
    assert_eq!(
        (other_device.conv_id.as_str(), other_device.seq),
        ("p2p:alice:bob", Some(2))
    );
    let receipt = alice
        .next_op(ops::RECEIPT, WAIT)
        .await
        .expect("alice gets a read receipt");
    assert_eq!((receipt.user_id.as_str(), receipt.seq), ("bob", Some(2)));
    for c in [&bob_phone, &bob_web] {
        let list = convs(c).await;
        assert_eq!(list.total_unread, Some(1), "both devices agree");
        assert_eq!(list.conversations[0].unread, 1);
    }
    // Reading backwards changes nothing and tells nobody.
    let back = Frame {
        op: ops::READ.into(),
        conv_id: "p2p:alice:bob".into(),
        seq: Some(1),
        ..Default::default()
    };
    assert_eq!(bob_phone.call(back).await.expect("read").seq, Some(2));
    assert!(alice.next_op(ops::RECEIPT, QUIET).await.is_none());
}

#[tokio::test]
async fn recall_works_inside_the_window_and_is_refused_after_it() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    let sent = alice.send_text("bob", "c1", "oops").await.expect("send");
    let recall = |msg_id: &str| Frame {
        op: ops::RECALL.into(),
        conv_id: "p2p:alice:bob".into(),
        msg_id: msg_id.into(),
        ..Default::default()
    };
    // Only the sender may recall.
    assert_eq!(
        error_code(&bob.request(recall(&sent.msg_id)).await.expect("reply")),
        "forbidden"
    );
    alice
        .call(recall(&sent.msg_id))
        .await
        .expect("recall inside the window");
    let pushed = bob.next_op(ops::RECALLED, WAIT).await.expect("bob is told");
    assert_eq!(pushed.msg_id, sent.msg_id);
    let own = alice
        .next_op(ops::RECALLED, WAIT)
        .await
        .expect("every participant is told, the recaller too");
    assert_eq!(own.msg_id, sent.msg_id);
    let history = bob
        .call(Frame {
            op: ops::HISTORY.into(),
            conv_id: "p2p:alice:bob".into(),
            ..Default::default()
        })
        .await
        .expect("history");
    assert!(history.messages[0].recalled);
    assert!(
        !history.messages[0].body.contains("oops"),
        "the content is gone"
    );

    // Outside the window.
    server.update_settings(|s| s.recall_window_ms = 0).await;
    let late = server.user("alice").await;
    let sent = late.send_text("bob", "c2", "too late").await.expect("send");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(
        error_code(&late.request(recall(&sent.msg_id)).await.expect("reply")),
        "recall_window_passed"
    );
}

#[tokio::test]
async fn typing_reaches_online_devices_and_is_never_stored() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    // Typing is transient: it reaches sessions that are online. A session
    // is online once its login has been fully handled, which a ping's reply
    // proves (frames of a connection are handled in order).
    bob.call(Frame {
        op: ops::PING.into(),
        ..Default::default()
    })
    .await
    .expect("ping");
    let typing = Frame {
        op: ops::TYPING.into(),
        to: Some(Peer {
            kind: "user".into(),
            id: "bob".into(),
        }),
        ..Default::default()
    };
    alice.call(typing).await.expect("typing");
    let push = bob
        .next_op(ops::TYPING, WAIT)
        .await
        .expect("bob sees typing");
    assert_eq!(push.from, "alice");
    assert!(
        bob.sync(0, 100).await.expect("sync").messages.is_empty(),
        "not in the inbox"
    );
    let convs = bob
        .call(Frame {
            op: ops::CONVERSATIONS.into(),
            ..Default::default()
        })
        .await
        .expect("conversations");
    assert!(
        convs.conversations.is_empty(),
        "no conversation was created"
    );
}

#[tokio::test]
async fn send_rejects_bad_bodies_with_clear_codes() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let send = |body: &str| Frame {
        op: ops::SEND.into(),
        to: Some(Peer {
            kind: "user".into(),
            id: "bob".into(),
        }),
        client_msg_id: "x".into(),
        body: body.into(),
        ..Default::default()
    };
    assert_eq!(
        error_code(
            &alice
                .request(send(r#"{"type":"text"}"#))
                .await
                .expect("reply")
        ),
        "bad_request"
    );
    assert_eq!(
        error_code(
            &alice
                .request(send(r#"{"type":"hologram"}"#))
                .await
                .expect("reply")
        ),
        "bad_request"
    );
    let big = format!(r#"{{"type":"text","text":"{}"}}"#, "x".repeat(13 * 1024));
    assert_eq!(
        error_code(&alice.request(send(&big)).await.expect("reply")),
        "quota_exceeded"
    );
    let mut no_to = send(r#"{"type":"text","text":"hi"}"#);
    no_to.to = None;
    assert_eq!(
        error_code(&alice.request(no_to).await.expect("reply")),
        "bad_request"
    );
    // Nothing was stored by any of them.
    assert!(alice.sync(0, 10).await.expect("sync").messages.is_empty());
}

async fn convs(c: &confab_client::Client) -> Frame {
    c.call(Frame {
        op: ops::CONVERSATIONS.into(),
        ..Default::default()
    })
    .await
    .expect("conversations")
}

#[tokio::test]
async fn a_sync_of_large_messages_arrives_over_tcp_in_pages_that_fit() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let body = format!(r#"{{"type":"text","text":"{}"}}"#, "z".repeat(11 * 1024));
    for i in 0..80 {
        alice
            .send_body("bob", &format!("c{i}"), body.clone())
            .await
            .expect("send");
    }
    // 80 × 11 KiB is far over one 64 KiB frame: the reply is cut to a byte
    // budget with has_more, and the TCP connection survives.
    let bob = server.login(Transport::Tcp, "bob", "b", "ios").await;
    let got = sync_all(&bob, 0, 500).await.len();
    assert_eq!(got, 80);
}
