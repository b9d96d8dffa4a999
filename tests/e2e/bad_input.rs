//! Bad input gets an error or a close; the server stays up and other clients
//! are unaffected.

use confab_client::{Client, Transport};
use confab_proto::{Frame, ops};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::helpers::*;

/// A bystander conversation that must keep working whatever else happens.
async fn assert_others_unaffected(server: &TestServer, tag: &str) {
    let alice = server.user(&format!("alice-{tag}")).await;
    let mut bob = server.user(&format!("bob-{tag}")).await;
    alice
        .send_text(&format!("bob-{tag}"), "still-ok", "still ok")
        .await
        .expect("bystander send");
    assert!(
        bob.next_op(ops::MESSAGE, WAIT).await.is_some(),
        "bystander delivery after {tag}"
    );
}

async fn next_error(c: &mut Client) -> String {
    let f = c.next_op(ops::REPLY, WAIT).await.expect("an error reply");
    assert_eq!(f.ok, Some(false));
    error_code(&f).to_owned()
}

#[tokio::test]
async fn malformed_json_gets_bad_frame_and_the_session_goes_on() {
    let server = TestServer::start().await;
    let mut c = server.user("alice").await;
    c.send_raw("{not json".into(), false).await.expect("send");
    assert_eq!(next_error(&mut c).await, "bad_frame");
    // A wrong type keeps its rid in the error.
    let reply = c
        .request(Frame {
            op: ops::PING.into(),
            ..Default::default()
        })
        .await
        .expect("still usable");
    assert_eq!(reply.ok, Some(true));
    c.send_raw(r#"{"op":"send","rid":42,"to":"bob"}"#.into(), false)
        .await
        .expect("send");
    let f = c.next_op(ops::REPLY, WAIT).await.expect("reply");
    assert_eq!((f.rid, error_code(&f)), (Some(42), "bad_frame"));
    assert_others_unaffected(&server, "json").await;
}

#[tokio::test]
async fn unknown_op_gets_unknown_op() {
    let server = TestServer::start().await;
    let c = server.user("alice").await;
    let reply = c
        .request(Frame {
            op: "teleport".into(),
            ..Default::default()
        })
        .await
        .expect("reply");
    assert_eq!(error_code(&reply), "unknown_op");
    let proto = server.login(Transport::Tcp, "bob", "b", "ios").await;
    let reply = proto
        .request(Frame {
            op: "teleport".into(),
            ..Default::default()
        })
        .await
        .expect("reply");
    assert_eq!(error_code(&reply), "unknown_op");
}

#[tokio::test]
async fn oversize_frames_get_frame_too_large_or_a_close() {
    let server = TestServer::start_with(|s| s.max_frame_bytes = 4096).await;
    let mut c = server.user("alice").await;
    let big = format!(r#"{{"op":"ping","rid":1,"pad":"{}"}}"#, "x".repeat(8000));
    c.send_raw(big.into(), false).await.expect("send");
    assert_eq!(next_error(&mut c).await, "frame_too_large");
    assert!(
        c.call(Frame {
            op: ops::PING.into(),
            ..Default::default()
        })
        .await
        .is_ok(),
        "session goes on"
    );
    // Far beyond the limit: the connection is closed unread.
    let huge = format!(r#"{{"op":"ping","pad":"{}"}}"#, "x".repeat(64 * 1024));
    let _ = c.send_raw(huge.into(), false).await;
    assert!(c.wait_closed(WAIT).await.is_some());
    // TCP: a length prefix over the limit closes with an error.
    let mut tcp = server.login(Transport::Tcp, "bob", "b", "ios").await;
    let _ = tcp.send_raw(vec![0u8; 10_000].into(), true).await;
    assert!(tcp.wait_closed(WAIT).await.is_some());
    assert_others_unaffected(&server, "oversize").await;
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_the_connection() {
    let server = TestServer::start().await;
    let mut c = server.user("alice").await;
    let frame = WsFrame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    let _ = c.send_ws_message(WsMessage::Frame(frame)).await;
    assert!(c.wait_closed(WAIT).await.is_some());
    assert_others_unaffected(&server, "utf8").await;
}

#[tokio::test]
async fn a_binary_frame_on_a_json_session_gets_bad_frame() {
    let server = TestServer::start().await;
    let mut c = server.user("alice").await;
    c.send_raw(vec![1u8, 2, 3].into(), true)
        .await
        .expect("send");
    assert_eq!(next_error(&mut c).await, "bad_frame");
    // And garbage protobuf on a protobuf session.
    let mut p = server.login(Transport::WsProto, "bob", "b", "ios").await;
    p.send_raw(vec![0xffu8, 0xff, 0xff, 0xff, 0x0f].into(), true)
        .await
        .expect("send");
    assert_eq!(next_error(&mut p).await, "bad_frame");
    assert_others_unaffected(&server, "binary").await;
}

#[tokio::test]
async fn a_flood_of_pings_is_rate_limited_then_closed() {
    let server = TestServer::start_with(|s| {
        s.frames_per_sec = 50;
        s.frames_burst = 50;
    })
    .await;
    let mut c = server.user("alice").await;
    let ping = confab_proto::encode(
        confab_proto::Encoding::Json,
        &Frame {
            op: ops::PING.into(),
            rid: Some(1),
            ..Default::default()
        },
    );
    // Flood in rounds, reading replies between them: a client that floods
    // faster than it reads would (rightly) be cut off as a slow reader
    // before it saw any reply.
    let mut limited = false;
    'flood: for _ in 0..200 {
        for _ in 0..100 {
            if c.send_raw(ping.clone(), false).await.is_err() {
                break 'flood;
            }
        }
        while let Some(f) = c.next_push(std::time::Duration::from_millis(20)).await {
            if f.ok == Some(false) && error_code(&f) == "rate_limited" {
                limited = true;
            }
        }
        if c.close_reason().is_some() {
            break;
        }
    }
    let _ = c.wait_closed(std::time::Duration::from_secs(2)).await;
    assert!(limited, "excess pings are answered rate_limited");
    assert!(c.close_reason().is_some(), "a sustained flood is closed");
    assert_others_unaffected(&server, "flood").await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_disconnected_and_loses_nothing() {
    let server = TestServer::start_with(|s| {
        s.send_queue = 64;
        s.frames_per_sec = 100_000;
        s.frames_burst = 100_000;
    })
    .await;
    // A raw socket that logs in and then never reads again.
    use tokio::io::AsyncWriteExt;
    let mut raw = tokio::net::TcpStream::connect(server.app.tcp_addr)
        .await
        .expect("connect");
    let login = Frame {
        op: ops::LOGIN.into(),
        rid: Some(1),
        token: server.token("sloth"),
        device_id: "d".into(),
        platform: "ios".into(),
        ..Default::default()
    };
    let bytes = confab_proto::encode(confab_proto::Encoding::Proto, &login);
    raw.write_all(&(bytes.len() as u32).to_be_bytes())
        .await
        .expect("write");
    raw.write_all(&bytes).await.expect("write");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // Flood it with messages far beyond its queue and socket buffers.
    let sender = server.user("fast").await;
    let body = format!(r#"{{"type":"text","text":"{}"}}"#, "y".repeat(8000));
    for i in 0..2000 {
        sender
            .send_body("sloth", &format!("c{i}"), body.clone())
            .await
            .expect("sends never block on a slow recipient");
    }
    // The server closed the sloth: writing eventually fails.
    let mut closed = false;
    for _ in 0..50 {
        if raw.write_all(&[0, 0, 0, 2, 8, 1]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(closed, "the slow reader was disconnected");
    // Nothing was lost for it: everything is in its inbox.
    let sloth = server.login(Transport::WsJson, "sloth", "d2", "web").await;
    let n = sync_all(&sloth, 0, 500).await.len();
    assert_eq!(n, 2000);
    assert_others_unaffected(&server, "sloth").await;
}

#[tokio::test]
async fn a_client_that_pipelines_big_replies_without_reading_is_cut_off_by_bytes() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let body = format!(r#"{{"type":"text","text":"{}"}}"#, "q".repeat(11 * 1024));
    for i in 0..40 {
        alice
            .send_body("hoarder", &format!("c{i}"), body.clone())
            .await
            .expect("send");
    }
    use tokio::io::AsyncWriteExt;
    let mut raw = tokio::net::TcpStream::connect(server.app.tcp_addr)
        .await
        .expect("connect");
    let frame = |f: Frame| {
        let b = confab_proto::encode(confab_proto::Encoding::Proto, &f);
        let mut out = (b.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&b);
        out
    };
    let login = Frame {
        op: ops::LOGIN.into(),
        rid: Some(1),
        token: server.token("hoarder"),
        device_id: "d".into(),
        platform: "ios".into(),
        ..Default::default()
    };
    raw.write_all(&frame(login)).await.expect("login");
    // ~440 KiB per reply; never read any of them.
    let history = frame(Frame {
        op: ops::HISTORY.into(),
        rid: Some(2),
        conv_id: "p2p:alice:hoarder".into(),
        limit: Some(100),
        ..Default::default()
    });
    let mut cut_off = false;
    for _ in 0..900 {
        if raw.write_all(&history).await.is_err() {
            cut_off = true;
            break;
        }
    }
    for _ in 0..100 {
        if cut_off || raw.write_all(&history).await.is_err() {
            cut_off = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        cut_off,
        "the connection is closed long before 900 big replies pile up"
    );
    assert_others_unaffected(&server, "hoarder").await;
}

#[tokio::test]
async fn deeply_nested_json_is_refused_without_harm() {
    let server = TestServer::start().await;
    let mut c = server.user("alice").await;
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    // Nested in an unknown field of the frame, and inside a message body:
    // both stay within the frame size limit, neither may take the server down.
    c.send_raw(
        format!(r#"{{"op":"ping","rid":7,"x":{}}}"#, deep(20_000)).into(),
        false,
    )
    .await
    .expect("send");
    let f = c.next_op(ops::REPLY, WAIT).await.expect("reply");
    // An unknown field is skipped without recursion: answered either way.
    assert_eq!(f.rid, Some(7));
    assert!(f.ok == Some(true) || error_code(&f) == "bad_frame", "{f:?}");
    c.send_raw(
        format!(
            r#"{{"op":"send","rid":8,"to":{{"kind":"user","id":"bob"}},"client_msg_id":"deep","body":{{"type":"custom","data":{}}}}}"#,
            deep(5_000)
        )
        .into(),
        false,
    )
    .await
    .expect("send");
    let f = c.next_op(ops::REPLY, WAIT).await.expect("reply");
    assert_eq!(f.ok, Some(false), "a body nested 5 000 deep is refused");
    assert_eq!(error_code(&f), "bad_request");
    // Nothing was stored, and the session goes on.
    let reply = c
        .request(Frame {
            op: ops::PING.into(),
            ..Default::default()
        })
        .await
        .expect("still usable");
    assert_eq!(reply.ok, Some(true));
    assert!(sync_all(&c, 0, 100).await.is_empty());
    assert_others_unaffected(&server, "nested").await;
}

#[tokio::test]
async fn connections_per_ip_are_limited_when_configured() {
    let server = TestServer::start_with(|s| s.max_connections_per_ip = 3).await;
    if server.logic.is_some() {
        // Split suite: the same gateway code; checked on the combined node.
        return;
    }
    let mut open = Vec::new();
    for transport in [Transport::WsJson, Transport::Tcp, Transport::WsProto] {
        open.push(server.connect(transport).await);
    }
    // The fourth WebSocket upgrade is refused (HTTP 429)...
    assert!(
        Client::connect(Transport::WsJson, server.addr(Transport::WsJson))
            .await
            .is_err(),
        "a fourth connection from the same address"
    );
    // ...and a fourth TCP connection is closed unread.
    let tcp = Client::connect(Transport::Tcp, server.addr(Transport::Tcp))
        .await
        .expect("tcp connects at the socket level");
    assert!(tcp.login(&server.token("x"), "x", "web").await.is_err());
    // A connection that goes frees its place (the server closes one whose
    // first frame is not a login).
    let mut gone = open.pop().expect("three open");
    let _ = gone
        .request(Frame {
            op: ops::PING.into(),
            ..Default::default()
        })
        .await;
    assert!(gone.wait_closed(WAIT).await.is_some());
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let again = Client::connect(Transport::WsJson, server.addr(Transport::WsJson))
        .await
        .expect("a place is free again");
    again
        .login(&server.token("y"), "y", "web")
        .await
        .expect("login");
}
