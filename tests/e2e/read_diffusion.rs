//! Groups, issue 5: read diffusion. A group with more members than the
//! app's `read_diffusion_threshold` stores each message once and sends its
//! online members a `group_notify`; `sync`, `conversations` and `read` pull
//! what the group holds for the member (docs/protocol.md §4.15, "Fan-out").
//! The same script of actions must look the same to every client under
//! both modes, and a group that crosses the threshold while in use loses
//! and repeats nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use confab_client::Client;
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

fn group_send(group: &str, text: &str, mentions: &[&str], all: bool) -> Frame {
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

/// A frame or stored message as a client shows it: no `inbox_seq` (a
/// device's own numbering of its inbox), no ids the server makes up.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Shown {
    conv: String,
    seq: u64,
    what: String,
    from: String,
    body: String,
    recalled: bool,
}

/// The body without the ids of events (msg ids are new each run).
fn shown_body(body: &str) -> String {
    if body.is_empty() {
        return String::new();
    }
    let mut v: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    if let Some(o) = v.as_object_mut() {
        o.remove("until");
    }
    v.to_string()
}

fn shown_frame(f: &Frame) -> Shown {
    let what = match f.op.as_str() {
        ops::EVENT => format!("event:{}", f.event),
        other => other.to_owned(),
    };
    Shown {
        conv: f.conv_id.clone(),
        seq: f.seq.unwrap_or(0),
        what,
        from: f.from.clone(),
        body: shown_body(&f.body),
        recalled: f.recalled == Some(true),
    }
}

fn shown_message(m: &confab_proto::Message) -> Shown {
    Shown {
        conv: m.conv_id.clone(),
        seq: m.seq,
        what: "stored".into(),
        from: m.from.clone(),
        body: shown_body(&m.body),
        recalled: m.recalled,
    }
}

/// Collects `c`'s pushes into `log` until one satisfies `done`.
async fn until(c: &mut Client, log: &mut Vec<Shown>, done: impl Fn(&Frame) -> bool) {
    loop {
        let f = c.next_push(WAIT).await.expect("the awaited push arrives");
        if f.op == ops::READ {
            continue;
        }
        log.push(shown_frame(&f));
        if done(&f) {
            return;
        }
    }
}

fn is_text(text: &'static str) -> impl Fn(&Frame) -> bool {
    move |f: &Frame| f.op == ops::MESSAGE && !f.body.is_empty() && text_of(&f.body) == text
}

fn is_event(kind: &'static str) -> impl Fn(&Frame) -> bool {
    move |f: &Frame| f.op == ops::EVENT && f.event == kind
}

/// One member's live session, logging what it receives.
struct Member {
    client: Client,
    log: Vec<Shown>,
}

impl Member {
    async fn join(server: &TestServer, user: &str) -> Self {
        let mut client = server.user(user).await;
        // What an SDK does: a notice pulls the new messages.
        client.pull_group_notifies = true;
        Self {
            client,
            log: vec![],
        }
    }

    async fn wait_text(&mut self, text: &'static str) {
        until(&mut self.client, &mut self.log, is_text(text)).await;
    }

    async fn wait_event(&mut self, kind: &'static str) {
        until(&mut self.client, &mut self.log, is_event(kind)).await;
    }
}

/// A conversation as `conversations` lists it for one user.
type ConvState = Option<(u64, u64, u64, u64)>;

/// Everything a client can observe after the script, per user.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    live: BTreeMap<String, Vec<Shown>>,
    /// `sync` from 0, in inbox order: the script has one conversation, so
    /// both modes must give its messages in `seq` order (the inbox
    /// numbering itself, `inbox_seq`, is each device's own).
    synced: BTreeMap<String, Vec<Shown>>,
    conversation: BTreeMap<String, ConvState>,
    total_unread: BTreeMap<String, u64>,
    history: BTreeMap<String, Result<Vec<Shown>, String>>,
}

async fn conversation_of(c: &Client, conv: &str) -> (ConvState, u64) {
    let r = c
        .call(Frame {
            op: ops::CONVERSATIONS.into(),
            ..Default::default()
        })
        .await
        .expect("conversations");
    let state = r
        .conversations
        .iter()
        .find(|x| x.conv_id == conv)
        .map(|x| (x.last_seq, x.read_seq, x.unread, x.unread_mentions));
    (state, r.total_unread.unwrap_or(0))
}

async fn history_of(c: &Client, conv: &str) -> Result<Vec<Shown>, String> {
    let r = c
        .request(Frame {
            op: ops::HISTORY.into(),
            conv_id: conv.into(),
            limit: Some(100),
            ..Default::default()
        })
        .await
        .expect("a history reply");
    if r.ok != Some(true) {
        return Err(error_code(&r).to_owned());
    }
    let mut shown: Vec<Shown> = r.messages.iter().map(shown_message).collect();
    shown.reverse();
    Ok(shown)
}

/// Runs the script on a fresh server whose app fans out groups above
/// `threshold` members by read diffusion. Returns what clients observed
/// and how many `group_notify` frames a plain (non-pulling) device saw.
async fn run_script(threshold: u32) -> (Observed, usize) {
    let server = TestServer::start().await;
    server
        .update_settings(|s| s.read_diffusion_threshold = threshold)
        .await;
    let conv = "group:g1";
    let mut alice = Member::join(&server, "alice").await;
    let mut bob = Member::join(&server, "bob").await;
    let mut carol = Member::join(&server, "carol").await;
    let mut frank = Member::join(&server, "frank").await;
    // Bob's second device does not pull: it counts the notices.
    let mut watcher = server
        .login(confab_client::Transport::WsJson, "bob", "bob-2", "desktop")
        .await;

    alice
        .client
        .call(Frame {
            user_ids: users(&["bob", "carol", "dave", "frank"]),
            join_policy: Some("open".into()),
            ..group_frame(ops::GROUP_CREATE, "g1")
        })
        .await
        .expect("group_create");
    for m in [&mut bob, &mut carol, &mut frank] {
        m.wait_event("created").await;
    }

    alice
        .client
        .call(group_send("g1", "m1", &[], false))
        .await
        .expect("m1");
    for m in [&mut bob, &mut carol, &mut frank] {
        m.wait_text("m1").await;
    }
    let m2 = bob
        .client
        .call(group_send("g1", "m2", &["carol"], false))
        .await
        .expect("m2");
    for m in [&mut alice, &mut carol, &mut frank] {
        m.wait_text("m2").await;
    }
    alice
        .client
        .call(group_send("g1", "m3", &[], true))
        .await
        .expect("m3 @all");
    for m in [&mut bob, &mut carol, &mut frank] {
        m.wait_text("m3").await;
    }
    carol
        .client
        .call(Frame {
            op: ops::READ.into(),
            conv_id: conv.into(),
            seq: m2.seq,
            ..Default::default()
        })
        .await
        .expect("carol reads up to m2");

    alice
        .client
        .call(Frame {
            user_ids: users(&["frank"]),
            ..group_frame(ops::GROUP_REMOVE, "g1")
        })
        .await
        .expect("frank removed");
    for m in [&mut bob, &mut carol, &mut frank] {
        m.wait_event("removed").await;
    }
    alice
        .client
        .call(group_send("g1", "m4", &[], false))
        .await
        .expect("m4");
    for m in [&mut bob, &mut carol] {
        m.wait_text("m4").await;
    }

    let mut erin = Member::join(&server, "erin").await;
    erin.client
        .call(group_frame(ops::GROUP_JOIN, "g1"))
        .await
        .expect("erin joins");
    for m in [&mut alice, &mut bob, &mut carol] {
        m.wait_event("joined").await;
    }
    bob.client
        .call(group_send("g1", "m5", &["erin"], false))
        .await
        .expect("m5");
    for m in [&mut alice, &mut carol, &mut erin] {
        m.wait_text("m5").await;
    }
    let m6 = alice
        .client
        .call(group_send("g1", "m6", &[], false))
        .await
        .expect("m6");
    for m in [&mut bob, &mut carol, &mut erin] {
        m.wait_text("m6").await;
    }
    alice
        .client
        .call(Frame {
            op: ops::RECALL.into(),
            conv_id: conv.into(),
            msg_id: m6.msg_id.clone(),
            ..Default::default()
        })
        .await
        .expect("recall m6");
    for m in [&mut alice, &mut bob, &mut carol, &mut erin] {
        until(&mut m.client, &mut m.log, |f| f.op == ops::RECALLED).await;
    }
    let end = carol
        .client
        .call(group_send("g1", "end", &[], false))
        .await
        .expect("end");
    for m in [&mut alice, &mut bob, &mut erin] {
        m.wait_text("end").await;
    }

    // The plain device saw every message as a push of one kind.
    let mut notices = 0;
    loop {
        let f = watcher
            .next_push(WAIT)
            .await
            .expect("bob's second device gets the end");
        if f.op == ops::GROUP_NOTIFY {
            notices += 1;
            assert_eq!(f.conv_id, conv);
            assert!(f.body.is_empty(), "a notice is compact: {f:?}");
        }
        if f.seq == end.seq && f.op != ops::EVENT {
            break;
        }
    }

    // Dave was offline all along.
    let dave = server.user("dave").await;
    let mut obs = Observed {
        live: BTreeMap::new(),
        synced: BTreeMap::new(),
        conversation: BTreeMap::new(),
        total_unread: BTreeMap::new(),
        history: BTreeMap::new(),
    };
    let everyone: Vec<(&str, &Client)> = vec![
        ("alice", &alice.client),
        ("bob", &bob.client),
        ("carol", &carol.client),
        ("dave", &dave),
        ("erin", &erin.client),
        ("frank", &frank.client),
    ];
    for (name, c) in everyone {
        let (state, total) = conversation_of(c, conv).await;
        obs.conversation.insert(name.into(), state);
        obs.total_unread.insert(name.into(), total);
        let synced: Vec<Shown> = sync_all(c, 0, 3).await.iter().map(shown_message).collect();
        obs.synced.insert(name.into(), synced);
        obs.history.insert(name.into(), history_of(c, conv).await);
    }
    for (name, m) in [
        ("alice", alice),
        ("bob", bob),
        ("carol", carol),
        ("erin", erin),
        ("frank", frank),
    ] {
        obs.live.insert(name.into(), m.log);
    }
    (obs, notices)
}

#[tokio::test]
async fn read_and_write_diffusion_look_the_same_to_every_client() {
    let (write, write_notices) = run_script(1_000_000).await;
    let (read, read_notices) = run_script(2).await;
    assert_eq!(write_notices, 0, "a small group is write-diffused");
    assert_eq!(
        read_notices, 5,
        "a large group notifies bob's other device of the 5 messages others sent"
    );

    // A few facts the comparison relies on, checked on the write side.
    let frank_live = &write.live["frank"];
    assert!(
        !frank_live.iter().any(|s| s.body.contains("\"m4\"")),
        "removed members receive nothing after the removal"
    );
    assert_eq!(write.history["frank"], Err("not_found".to_owned()));
    let (_, _, unread, mentions) = write.conversation["dave"].expect("dave's group");
    assert!(unread > 0 && mentions == 1, "dave: the @all of m3");
    let (_, read_seq, _, _) = write.conversation["carol"].expect("carol's group");
    assert!(read_seq > 0, "carol read");
    let dave_sync = &write.synced["dave"];
    assert!(
        dave_sync.iter().any(|s| s.recalled),
        "dave's sync carries the recall"
    );

    for user in ["alice", "bob", "carol", "dave", "erin", "frank"] {
        assert_eq!(
            write.synced[user], read.synced[user],
            "{user}'s sync, write vs read diffusion"
        );
        assert_eq!(
            write.conversation[user], read.conversation[user],
            "{user}'s conversation (last_seq, read_seq, unread, unread_mentions)"
        );
        assert_eq!(
            write.total_unread[user], read.total_unread[user],
            "{user}'s total unread"
        );
        assert_eq!(write.history[user], read.history[user], "{user}'s history");
    }
    for user in ["alice", "bob", "carol", "erin", "frank"] {
        assert_eq!(
            write.live[user], read.live[user],
            "what {user} received live"
        );
    }
}

/// Alice says `text` in g1; returns its seq once bob has it.
async fn say(alice: &Member, bob: &mut Member, text: &'static str) -> u64 {
    let r = alice
        .client
        .call(group_send("g1", text, &[], false))
        .await
        .expect("send");
    bob.wait_text(text).await;
    r.seq.expect("a seq")
}

#[tokio::test]
async fn a_group_crossing_the_threshold_both_ways_loses_and_repeats_nothing() {
    let server = TestServer::start().await;
    // Above 3 members: read diffusion.
    server
        .update_settings(|s| s.read_diffusion_threshold = 3)
        .await;
    let alice = Member::join(&server, "alice").await;
    let mut bob = Member::join(&server, "bob").await;
    alice
        .client
        .call(Frame {
            user_ids: users(&["bob", "carol"]),
            ..group_frame(ops::GROUP_CREATE, "g1")
        })
        .await
        .expect("group_create");
    bob.wait_event("created").await;

    let mut sent = vec![];
    let add = |user: &str| Frame {
        user_ids: users(&[user]),
        ..group_frame(ops::GROUP_ADD, "g1")
    };
    let remove = |user: &str| Frame {
        user_ids: users(&[user]),
        ..group_frame(ops::GROUP_REMOVE, "g1")
    };

    sent.push(say(&alice, &mut bob, "w1").await); // 3 members: write
    alice.client.call(add("dave")).await.expect("dave joins");
    bob.wait_event("joined").await;
    sent.push(say(&alice, &mut bob, "r1").await); // 4: read
    sent.push(say(&alice, &mut bob, "r2").await);
    alice
        .client
        .call(remove("dave"))
        .await
        .expect("dave removed");
    bob.wait_event("removed").await;
    // 3 members, but read diffusion still: carol (offline) and bob (whose
    // client pulls notices with `history`, which moves no pull cursor)
    // have r1 and r2 to pull, and a write-diffused entry would come before
    // them in their inboxes.
    sent.push(say(&alice, &mut bob, "w2").await);
    alice.client.call(add("erin")).await.expect("erin joins");
    bob.wait_event("joined").await;
    sent.push(say(&alice, &mut bob, "r3").await); // 4: read again
    alice
        .client
        .call(remove("erin"))
        .await
        .expect("erin removed");
    bob.wait_event("removed").await;
    sent.push(say(&alice, &mut bob, "w3").await);
    let texts = ["w1", "r1", "r2", "w2", "r3", "w3"];

    // Bob received each message once, in order.
    let live: Vec<String> = bob
        .log
        .iter()
        .filter(|s| s.what == "message")
        .map(|s| text_of(&s.body))
        .collect();
    assert_eq!(live, texts);

    // Carol, offline all along, syncs each message exactly once, and her
    // inbox numbering has no gap.
    let carol = server.user("carol").await;
    let synced = sync_all(&carol, 0, 2).await;
    for (i, m) in synced.iter().enumerate() {
        assert_eq!(m.inbox_seq, Some(i as u64 + 1), "gap-free inbox");
    }
    assert!(
        synced.windows(2).all(|w| w[0].seq < w[1].seq),
        "her inbox holds the group in seq order: {:?}",
        synced.iter().map(|m| m.seq).collect::<Vec<_>>()
    );
    let messages: Vec<(u64, String)> = synced
        .iter()
        .filter(|m| !text_of(&m.body).is_empty())
        .map(|m| (m.seq, text_of(&m.body)))
        .collect();
    let want: Vec<(u64, String)> = sent
        .iter()
        .zip(texts)
        .map(|(seq, t)| (*seq, t.to_owned()))
        .collect();
    assert_eq!(messages, want, "every message once, none twice");
    assert!(
        sync_all(
            &carol,
            synced.last().and_then(|m| m.inbox_seq).unwrap_or(0),
            10
        )
        .await
        .is_empty(),
        "a second sync has nothing new"
    );
    // Her unread count is the group's last seq minus her cursor (0).
    let (state, _) = conversation_of(&carol, "group:g1").await;
    let (last, read, unread, _) = state.expect("listed");
    assert_eq!((last, read, unread), (*sent.last().expect("sent"), 0, last));

    // History is the one timeline.
    let history: Vec<String> = history_of(&carol, "group:g1")
        .await
        .expect("history")
        .iter()
        .map(|s| text_of(&s.body))
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(history, texts);

    // Once every member has pulled (carol synced above; bob syncs now), the
    // 3-member group is write-diffused again: carol's device gets the
    // message itself, numbered in her inbox, not a notice. (The member
    // cache asks the store again after a change or within 2 s.)
    bob.client.sync(0, 100).await.expect("bob syncs");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut carol = carol;
    let w4 = alice
        .client
        .call(group_send("g1", "w4", &[], false))
        .await
        .expect("w4");
    let push = carol
        .next_op(ops::MESSAGE, WAIT)
        .await
        .expect("carol gets w4 as a message");
    assert_eq!(push.seq, w4.seq);
    assert!(push.inbox_seq.is_some(), "write diffusion: {push:?}");
}

/// A client that falls behind a busy read-diffused group folds the notices
/// queued for it into one pull, and still hands out every message once, in
/// `seq` order.
#[tokio::test]
async fn a_burst_of_notices_is_pulled_at_once_in_order() {
    const BURST: usize = 30;
    let server = TestServer::start().await;
    server
        .update_settings(|s| s.read_diffusion_threshold = 2)
        .await;
    let alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    bob.pull_group_notifies = true;
    // Bob's second device takes the notices as they come: when it has the
    // last one, so has bob's first device, which has not read any yet.
    let mut watcher = server
        .login(confab_client::Transport::WsJson, "bob", "bob-2", "desktop")
        .await;
    alice
        .call(Frame {
            user_ids: users(&["bob", "carol"]),
            ..group_frame(ops::GROUP_CREATE, "busy")
        })
        .await
        .expect("group_create");
    let mut last_seq = 0;
    for i in 0..BURST {
        let sent = alice
            .call(group_send("busy", &format!("b{i}"), &[], false))
            .await
            .expect("send");
        last_seq = sent.seq.expect("seq");
    }
    loop {
        let f = watcher
            .next_push(WAIT)
            .await
            .expect("the second device gets every notice");
        if f.op == ops::GROUP_NOTIFY && f.seq == Some(last_seq) {
            break;
        }
    }
    // Let bob's reader take the queued notices off the socket.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut texts = Vec::new();
    while texts.len() < BURST {
        let f = bob.next_push(WAIT).await.expect("every message arrives");
        if f.op == ops::MESSAGE {
            texts.push(text_of(&f.body));
        }
    }
    let expected: Vec<String> = (0..BURST).map(|i| format!("b{i}")).collect();
    assert_eq!(texts, expected, "every message once, in seq order");
    assert!(
        bob.notice_pulls() < (BURST / 2) as u64,
        "{BURST} queued notices cost {} history calls",
        bob.notice_pulls()
    );

    // A device that first hears of the group through a burst of notices
    // (carol logs in now: she has seen nothing of it) gets the whole burst,
    // not only its last message.
    let mut carol = server.user("carol").await;
    carol.pull_group_notifies = true;
    // Her connection finishes its login first: the catch-up after the login
    // reply (a sync, which also pulls, pushing what came meanwhile) would
    // otherwise race the burst and hand out a message twice in two orders.
    carol
        .call(Frame {
            op: ops::PING.into(),
            ..Default::default()
        })
        .await
        .expect("ping");
    for i in 0..10 {
        let sent = alice
            .call(group_send("busy", &format!("c{i}"), &[], false))
            .await
            .expect("send");
        last_seq = sent.seq.expect("seq");
    }
    loop {
        let f = watcher.next_push(WAIT).await.expect("notices");
        if f.op == ops::GROUP_NOTIFY && f.seq == Some(last_seq) {
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut texts = Vec::new();
    let mut frames = Vec::new();
    while texts.len() < 10 {
        let Some(f) = carol.next_push(WAIT).await else {
            panic!("every message of the burst arrives; got {frames:?}");
        };
        frames.push(format!("{} seq {:?} {}", f.op, f.seq, text_of(&f.body)));
        if f.op == ops::MESSAGE {
            texts.push(text_of(&f.body));
        }
    }
    let expected: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    assert_eq!(
        texts,
        expected,
        "the burst from its first message; {} history calls; frames {frames:?}",
        carol.notice_pulls()
    );
}

/// What a synced inbox holds of one conversation: `text:<t>` or
/// `event:<kind>`, in inbox order, with the `seq`s.
fn inbox_of(messages: &[confab_proto::Message], conv: &str) -> (Vec<String>, Vec<u64>) {
    let mine: Vec<&confab_proto::Message> = messages.iter().filter(|m| m.conv_id == conv).collect();
    let what = mine
        .iter()
        .map(|m| {
            let v: serde_json::Value = serde_json::from_str(&m.body).expect("a JSON body");
            match v["type"].as_str() {
                Some("event") => format!("event:{}", v["event"].as_str().unwrap_or("")),
                _ => format!("text:{}", v["text"].as_str().unwrap_or("")),
            }
        })
        .collect();
    (what, mine.iter().map(|m| m.seq).collect())
}

/// Members who leave a read-diffused group while offline, with messages
/// they never pulled: the removed member and every member of a dismissed
/// group still find, on their next sync, everything that came while they
/// were members, then the event that ended it, in `seq` order and with a
/// gap-free inbox. (Until the leaving pull, a dismissal gave only its
/// event.)
#[tokio::test]
async fn members_leaving_a_read_diffused_group_offline_keep_what_came_while_members() {
    let server = TestServer::start().await;
    server
        .update_settings(|s| s.read_diffusion_threshold = 2)
        .await;
    let conv = "group:g1";
    let alice = server.user("alice").await;
    // Carol and dave stay offline until the end.
    alice
        .call(Frame {
            user_ids: users(&["bob", "carol", "dave"]),
            ..group_frame(ops::GROUP_CREATE, "g1")
        })
        .await
        .expect("group_create");
    for text in ["x1", "x2"] {
        alice
            .call(group_send("g1", text, &[], false))
            .await
            .expect("send");
    }
    alice
        .call(Frame {
            user_ids: users(&["carol"]),
            ..group_frame(ops::GROUP_REMOVE, "g1")
        })
        .await
        .expect("carol removed");
    alice
        .call(group_send("g1", "x3", &[], false))
        .await
        .expect("x3");
    alice
        .call(group_frame(ops::GROUP_DISMISS, "g1"))
        .await
        .expect("dismissed");

    let carol = server.user("carol").await;
    let synced = sync_all(&carol, 0, 100).await;
    let (what, seqs) = inbox_of(&synced, conv);
    assert_eq!(
        what,
        ["event:created", "text:x1", "text:x2", "event:removed"],
        "carol keeps what came until her removal, and nothing after it"
    );
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seq order: {seqs:?}");

    let dave = server.user("dave").await;
    let synced = sync_all(&dave, 0, 100).await;
    let (what, seqs) = inbox_of(&synced, conv);
    assert_eq!(
        what,
        [
            "event:created",
            "text:x1",
            "text:x2",
            "event:removed",
            "text:x3",
            "event:dismissed"
        ],
        "dave's backlog comes before the dismissal"
    );
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seq order: {seqs:?}");
    for (i, m) in synced.iter().enumerate() {
        assert_eq!(m.inbox_seq, Some(i as u64 + 1), "gap-free inbox");
    }
    // The group is gone for them all the same.
    let history = dave
        .call(Frame {
            op: ops::HISTORY.into(),
            conv_id: conv.into(),
            ..Default::default()
        })
        .await;
    assert!(
        matches!(&history, Err(confab_client::ClientError::Refused { code, .. }) if code == "not_found"),
        "{history:?}"
    );
}
