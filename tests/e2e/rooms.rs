//! Live chat rooms (issue 5): created and closed over REST, joined and left
//! over the wire, messages to online members only (never stored), one room
//! at a time per user, priorities that shed low messages under load while
//! every high one arrives, and rooms spanning nodes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use confab_client::{Client, Transport};
use confab_proto::{Frame, Peer, ops};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::rest::http;

/// The REST API's address (on split services: the logic node's).
fn rest_addr(server: &TestServer) -> std::net::SocketAddr {
    match &server.logic {
        Some(logic) => logic.http_addr,
        None => server.addr(Transport::WsJson),
    }
}

async fn create_room(server: &TestServer, room: &str) -> Value {
    let r = http(
        rest_addr(server),
        "POST",
        "/v1/rooms",
        Some(&server.secret),
        &[],
        Some(&json!({"room_id": room, "name": format!("{room} live")}).to_string()),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    r.body
}

fn join_frame(room: &str) -> Frame {
    Frame {
        op: ops::ROOM_JOIN.into(),
        room_id: room.into(),
        ..Default::default()
    }
}

async fn join(c: &Client, room: &str) -> Frame {
    c.call(join_frame(room)).await.expect("room_join")
}

fn room_send(room: &str, text: &str, priority: &str) -> Frame {
    Frame {
        op: ops::SEND.into(),
        to: Some(Peer {
            kind: "room".into(),
            id: room.into(),
        }),
        body: json!({"type": "text", "text": text}).to_string(),
        priority: priority.into(),
        ..Default::default()
    }
}

/// Waits until the room's online count (REST) is `want` (presence is
/// written within a second of a change).
async fn wait_online(server: &TestServer, room: &str, want: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = http(
            rest_addr(server),
            "GET",
            &format!("/v1/rooms/{room}"),
            Some(&server.secret),
            &[],
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{r:?}");
        if r.body["online_count"].as_u64() == Some(want) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "online count stays {} (want {want})",
            r.body["online_count"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_messages_reach_online_members_only_and_are_never_stored() {
    let server = TestServer::start().await;
    create_room(&server, "live1").await;
    let alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    let mut carol = server
        .login(Transport::Tcp, "carol", "carol-phone", "android")
        .await;
    let mut dave = server.user("dave").await;
    for c in [&alice, &bob, &carol] {
        let reply = join(c, "live1").await;
        assert_eq!(reply.room_id, "live1");
        assert!(reply.online_count.is_some());
    }
    let sent = alice
        .call(room_send("live1", "hello room", "high"))
        .await
        .expect("send to the room");
    assert_eq!(sent.conv_id, "room:live1");
    assert_eq!(sent.seq, None, "room messages have no seq");
    assert_eq!(sent.inbox_seq, None, "and no inbox entry");
    for (who, c) in [("bob", &mut bob), ("carol", &mut carol)] {
        let push = c
            .next_op(ops::MESSAGE, WAIT)
            .await
            .unwrap_or_else(|| panic!("{who} gets the room message"));
        assert_eq!(push.msg_id, sent.msg_id, "{who}");
        assert_eq!(push.conv_id, "room:live1");
        assert_eq!(push.from, "alice");
        assert_eq!(push.priority, "high");
        assert_eq!(text_of(&push.body), "hello room");
        assert_eq!(push.seq, None);
    }
    assert!(
        dave.next_op(ops::MESSAGE, QUIET).await.is_none(),
        "a user not in the room gets nothing"
    );
    // Bob leaves: the next message no longer reaches him.
    let left = bob
        .call(Frame {
            op: ops::ROOM_LEAVE.into(),
            ..Default::default()
        })
        .await
        .expect("room_leave");
    assert_eq!(left.room_id, "live1");
    let second = alice
        .call(room_send("live1", "after bob left", ""))
        .await
        .expect("send");
    assert_eq!(second.priority, "normal", "no priority means normal");
    assert_eq!(
        carol
            .next_op(ops::MESSAGE, WAIT)
            .await
            .expect("carol")
            .msg_id,
        second.msg_id
    );
    assert!(bob.next_op(ops::MESSAGE, QUIET).await.is_none());
    // Nothing was stored: no inbox entry, no history, no conversation.
    for c in [&alice, &bob, &carol] {
        assert!(
            sync_all(c, 0, 100).await.is_empty(),
            "room messages are not synced"
        );
    }
    let history = alice
        .request(Frame {
            op: ops::HISTORY.into(),
            conv_id: "room:live1".into(),
            ..Default::default()
        })
        .await
        .expect("reply");
    assert_eq!(error_code(&history), "not_found", "{history:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_is_in_one_room_at_a_time_and_only_members_may_send() {
    let server = TestServer::start().await;
    create_room(&server, "r1").await;
    create_room(&server, "r2").await;
    let alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    // Not a member yet: refused before anything is sent.
    let refused = alice
        .request(room_send("r1", "too early", "normal"))
        .await
        .expect("reply");
    assert_eq!(error_code(&refused), "forbidden", "{refused:?}");
    join(&alice, "r1").await;
    join(&bob, "r1").await;
    // Joining r2 takes bob out of r1.
    join(&bob, "r2").await;
    alice
        .call(room_send("r1", "only r1", "normal"))
        .await
        .expect("send");
    assert!(
        bob.next_op(ops::MESSAGE, QUIET).await.is_none(),
        "bob left r1 by joining r2"
    );
    let refused = bob
        .request(room_send("r1", "not in r1", "normal"))
        .await
        .expect("reply");
    assert_eq!(error_code(&refused), "forbidden", "{refused:?}");
    join(&alice, "r2").await;
    let sent = alice
        .call(room_send("r2", "in r2", "low"))
        .await
        .expect("send");
    assert_eq!(
        bob.next_op(ops::MESSAGE, WAIT)
            .await
            .expect("bob in r2")
            .msg_id,
        sent.msg_id
    );
    // Bad input has codes.
    let missing = alice.request(join_frame("nope")).await.expect("reply");
    assert_eq!(error_code(&missing), "not_found", "{missing:?}");
    let bad = alice.request(join_frame("")).await.expect("reply");
    assert_eq!(error_code(&bad), "bad_request", "{bad:?}");
    let bad = alice
        .request(room_send("r2", "x", "urgent"))
        .await
        .expect("reply");
    assert_eq!(error_code(&bad), "bad_request", "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_room_tells_its_members_and_removes_them() {
    let server = TestServer::start().await;
    let created = create_room(&server, "show").await;
    assert_eq!(created["room_id"], "show");
    assert_eq!(created["name"], "show live");
    let again = http(
        rest_addr(&server),
        "POST",
        "/v1/rooms",
        Some(&server.secret),
        &[],
        Some(r#"{"room_id":"show"}"#),
    )
    .await;
    assert_eq!(again.status, 409, "{again:?}");
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    join(&alice, "show").await;
    join(&bob, "show").await;
    wait_online(&server, "show", 2).await;
    let closed = http(
        rest_addr(&server),
        "DELETE",
        "/v1/rooms/show",
        Some(&server.secret),
        &[],
        None,
    )
    .await;
    assert_eq!(closed.status, 204, "{closed:?}");
    for c in [&mut alice, &mut bob] {
        let event = c.next_op(ops::EVENT, WAIT).await.expect("room_closed");
        assert_eq!(event.event, ops::ROOM_CLOSED_EVENT);
        assert_eq!(event.room_id, "show");
    }
    let refused = alice
        .request(room_send("show", "anyone?", "high"))
        .await
        .expect("reply");
    assert_eq!(error_code(&refused), "forbidden", "members were removed");
    let gone = alice.request(join_frame("show")).await.expect("reply");
    assert_eq!(error_code(&gone), "not_found", "{gone:?}");
    let r = http(
        rest_addr(&server),
        "GET",
        "/v1/rooms/show",
        Some(&server.secret),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 404, "{r:?}");
    // The id may be used again; the old members are not in the new room.
    create_room(&server, "show").await;
    wait_online(&server, "show", 0).await;
}

/// What one member received of the room's messages.
struct Drained {
    /// Distinct high-priority messages, by text (a repeated `msg_id`, a
    /// cross-node retry of protocol.md §4.16, is one message).
    high: std::collections::BTreeSet<String>,
    low: usize,
    /// Why the drain stopped before the final message, if it did.
    short: Option<String>,
}

/// Counts `message` pushes of a client until the room's final high message.
async fn drain_until_end(c: &mut Client, end_text: &str) -> Drained {
    let mut ids = std::collections::HashSet::new();
    let mut got = Drained {
        high: Default::default(),
        low: 0,
        short: None,
    };
    loop {
        let Some(push) = c.next_op(ops::MESSAGE, Duration::from_secs(60)).await else {
            got.short = Some(match c.close_reason() {
                Some(reason) => format!("connection closed: {reason}"),
                None => "no message for 60 s".into(),
            });
            return got;
        };
        match push.priority.as_str() {
            "high" if ids.insert(push.msg_id.clone()) => {
                got.high.insert(text_of(&push.body));
            }
            "low" => got.low += 1,
            _ => {}
        }
        if text_of(&push.body) == end_text {
            return got;
        }
    }
}

/// The value of a counter series on a node's /metrics (0 when absent).
async fn metric(http_addr: std::net::SocketAddr, series: &str) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(http_addr)
        .await
        .expect("connect");
    s.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {http_addr}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body).await;
    body.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_of_5000_clients_gets_every_high_priority_message_while_low_ones_are_shed() {
    const CLIENTS: usize = 5000;
    const TASKS: usize = 50;
    const HIGH: usize = 10;
    const LOW_PER_HIGH: usize = 20;
    // A short send queue makes "under load" reachable on a shared 2-core box.
    // The clients do not heartbeat: lift the idle timeout past the test.
    let server = TestServer::start_with(|s| {
        s.send_queue = 64;
        s.idle_timeout_secs = 900;
    })
    .await;
    create_room(&server, "big").await;
    let server = Arc::new(server);
    let ready = Arc::new(tokio::sync::Barrier::new(TASKS + 1));
    let received_low = Arc::new(AtomicU64::new(0));
    let joining = std::time::Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (server, ready, received_low) = (server.clone(), ready.clone(), received_low.clone());
        tasks.push(tokio::spawn(async move {
            let mut clients = Vec::new();
            // Ten logins at a time per task: 500 in flight over the test.
            for chunk in (0..CLIENTS / TASKS).collect::<Vec<_>>().chunks(10) {
                let batch = chunk.iter().map(|i| {
                    let server = server.clone();
                    async move {
                        let transport = if i % 2 == 0 {
                            Transport::Tcp
                        } else {
                            Transport::WsProto
                        };
                        let c = server
                            .login(transport, &format!("fan{t}-{i}"), "d", "web")
                            .await;
                        join(&c, "big").await;
                        c
                    }
                });
                clients.extend(futures_util::future::join_all(batch).await);
            }
            ready.wait().await;
            // The first member short of a high-priority message, and why.
            let mut short = None;
            for (i, c) in clients.iter_mut().enumerate() {
                let got = drain_until_end(c, "end").await;
                received_low.fetch_add(got.low as u64, Ordering::Relaxed);
                if got.high.len() < HIGH && short.is_none() {
                    short = Some(format!(
                        "member {t}/{i} ({:?}) got {} of {HIGH} high messages {:?}; stopped: {:?}",
                        c.transport(),
                        got.high.len(),
                        got.high,
                        got.short
                    ));
                }
            }
            short
        }));
    }
    let sender = server.user("host").await;
    join(&sender, "big").await;
    ready.wait().await;
    eprintln!(
        "{CLIENTS} clients logged in and joined in {:?}",
        joining.elapsed()
    );
    let started = std::time::Instant::now();
    for h in 0..HIGH - 1 {
        // A burst of likes in flight at once, then an announcement.
        let likes = (0..LOW_PER_HIGH)
            .map(|l| sender.call(room_send("big", &format!("like {h}.{l}"), "low")));
        for sent in futures_util::future::join_all(likes).await {
            sent.expect("low send");
        }
        sender
            .call(room_send("big", &format!("announcement {h}"), "high"))
            .await
            .expect("high send");
    }
    sender
        .call(room_send("big", "end", "high"))
        .await
        .expect("final high send");
    let sent_in = started.elapsed();
    let mut short = Vec::new();
    for task in tasks {
        short.extend(task.await.expect("client task"));
    }
    let slow_readers = metric(
        server.addr(Transport::WsJson),
        "confab_gateway_slow_consumer_disconnects_total",
    )
    .await;
    assert!(
        short.is_empty(),
        "every member gets every high-priority message; short: {short:#?}; \
         slow-reader disconnects (this test process, every test): {slow_readers}"
    );
    let low_sent = (CLIENTS * (HIGH - 1) * LOW_PER_HIGH) as u64;
    let low_got = received_low.load(Ordering::Relaxed);
    let shed = metric(
        server.addr(Transport::WsJson),
        "confab_room_messages_shed_total{priority=\"low\"}",
    )
    .await;
    eprintln!(
        "room of {CLIENTS}: {} messages sent in {sent_in:?}; low deliveries {low_got} of {low_sent}; shed (metric) {shed}",
        (HIGH - 1) * (LOW_PER_HIGH + 1) + 1
    );
    assert!(
        low_got < low_sent,
        "low-priority messages were shed under load"
    );
    assert!(shed > 0.0, "shed messages are counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_spans_the_nodes_of_a_distributed_cell() {
    let cell = crate::cluster::Cell::start().await;
    let r = http(
        cell.a.http_addr,
        "POST",
        "/v1/rooms",
        Some(&cell.secret),
        &[],
        Some(r#"{"room_id":"wide"}"#),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    let alice = cell.login(true, "alice", "a1", "web").await;
    let mut bob = cell.login(false, "bob", "b1", "web").await;
    let mut carol = cell.login(true, "carol", "c1", "web").await;
    let mut dave = cell.login(false, "dave", "d1", "web").await;
    for c in [&alice, &bob, &carol] {
        join(c, "wide").await;
    }
    for i in 0..10 {
        let sent = alice
            .call(room_send("wide", &format!("m{i}"), "normal"))
            .await
            .expect("send");
        for (who, c) in [("bob on b", &mut bob), ("carol on a", &mut carol)] {
            let push = c
                .next_op(ops::MESSAGE, WAIT)
                .await
                .unwrap_or_else(|| panic!("{who} gets m{i}"));
            assert_eq!(push.msg_id, sent.msg_id, "{who}");
        }
    }
    assert!(
        bob.next_op(ops::MESSAGE, QUIET).await.is_none(),
        "exactly once"
    );
    assert!(dave.next_op(ops::MESSAGE, QUIET).await.is_none());
    // Closing on node b reaches the members on node a.
    let closed = http(
        cell.b.http_addr,
        "DELETE",
        "/v1/rooms/wide",
        Some(&cell.secret),
        &[],
        None,
    )
    .await;
    assert_eq!(closed.status, 204, "{closed:?}");
    for c in [&mut bob, &mut carol] {
        let event = c.next_op(ops::EVENT, WAIT).await.expect("room_closed");
        assert_eq!(event.event, ops::ROOM_CLOSED_EVENT);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_spans_gateways_of_split_services() {
    let cell = crate::cluster::SplitCell::start().await;
    let logic_http = cell.logic[0].as_ref().expect("logic node").http_addr;
    let r = http(
        logic_http,
        "POST",
        "/v1/rooms",
        Some(&cell.first.secret),
        &[],
        Some(r#"{"room_id":"split"}"#),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    let alice = cell.login(0, Transport::WsJson, "alice", "a1", "web").await;
    let mut bob = cell.login(1, Transport::Tcp, "bob", "b1", "web").await;
    let mut carol = cell
        .login(0, Transport::WsProto, "carol", "c1", "web")
        .await;
    for c in [&alice, &bob, &carol] {
        join(c, "split").await;
    }
    for i in 0..10 {
        let sent = alice
            .call(room_send("split", &format!("m{i}"), "high"))
            .await
            .expect("send through a logic node");
        for (who, c) in [
            ("bob on gateway 1", &mut bob),
            ("carol on gateway 0", &mut carol),
        ] {
            let push = c
                .next_op(ops::MESSAGE, WAIT)
                .await
                .unwrap_or_else(|| panic!("{who} gets m{i}"));
            assert_eq!(push.msg_id, sent.msg_id, "{who}");
        }
    }
    assert!(
        bob.next_op(ops::MESSAGE, QUIET).await.is_none(),
        "exactly once"
    );
}

#[tokio::test]
async fn the_backend_sends_to_a_room_over_rest_as_the_system_or_a_user() {
    let server = TestServer::start().await;
    create_room(&server, "rest-live").await;
    let mut bob = server.user("bob").await;
    join(&bob, "rest-live").await;
    let send = |body: Value| {
        let server = &server;
        async move {
            http(
                rest_addr(server),
                "POST",
                "/v1/messages",
                Some(&server.secret),
                &[],
                Some(&body.to_string()),
            )
            .await
        }
    };
    let r = send(json!({
        "from_system": true,
        "to": {"kind": "room", "id": "rest-live"},
        "body": {"type": "text", "text": "the stream ends in 5 minutes"},
        "priority": "high"
    }))
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["conv_id"], "room:rest-live");
    assert!(r.body.get("seq").is_none(), "rooms store nothing: {r:?}");
    let push = bob
        .next_op(ops::MESSAGE, WAIT)
        .await
        .expect("bob gets the system's room message");
    assert_eq!(push.from, "system");
    assert_eq!(push.priority, "high");
    assert_eq!(push.msg_id, r.body["msg_id"].as_str().unwrap_or_default());
    // As a user (the backend is trusted: no room_join needed).
    let r = send(json!({
        "from": "alice",
        "to": {"kind": "room", "id": "rest-live"},
        "body": {"type": "custom", "kind": "like"},
        "priority": "low"
    }))
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    let push = bob.next_op(ops::MESSAGE, WAIT).await.expect("alice's like");
    assert_eq!(
        (push.from.as_str(), push.priority.as_str()),
        ("alice", "low")
    );
    // Errors: a bad priority, priority on a non-room send, a closed room.
    let r = send(json!({
        "from_system": true,
        "to": {"kind": "room", "id": "rest-live"},
        "body": {"type": "text", "text": "x"},
        "priority": "urgent"
    }))
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("bad_request")),
        "{r:?}"
    );
    let r = send(json!({
        "from_system": true,
        "to": {"kind": "user", "id": "bob"},
        "body": {"type": "text", "text": "x"},
        "priority": "high"
    }))
    .await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = send(json!({
        "from_system": true,
        "to": {"kind": "room", "id": "no-such-room"},
        "body": {"type": "text", "text": "x"}
    }))
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{r:?}"
    );
}
