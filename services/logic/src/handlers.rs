//! One function per request op. Each parses its frame into domain types
//! first, then acts; errors carry stable codes.

use std::sync::Arc;

use confab_model::{
    Body, BodyError, ConvId, InboxEntry, Peer, PeerKind, Platform, StoredMessage, UserId,
};
use confab_proto::ops::{self, code};
use confab_proto::{Frame, Message, Peer as WirePeer};
use confab_store::NewMessage;

use crate::error::{LogicError, Result};
use crate::groups;
use crate::{LoggedIn, Logic, Session};

const MAX_CLIENT_MSG_ID: usize = 128;
const MAX_DEVICE_ID: usize = 128;
const SYNC_DEFAULT: u32 = 100;
const SYNC_MAX: u32 = 500;
const HISTORY_DEFAULT: u32 = 20;
const HISTORY_MAX: u32 = 100;
const CONVERSATIONS_DEFAULT: u32 = 100;
const CONVERSATIONS_MAX: u32 = 100;
/// Bodies in one `sync` or `history` reply stop at about this many bytes
/// (`has_more` tells the client to ask again), so that a reply fits any
/// transport's frame limit and a client cannot make the server hold huge
/// replies.
const REPLY_BODY_BUDGET: usize = 512 * 1024;

/// How many of `bodies` fit the reply budget (at least one).
fn within_budget<'a>(bodies: impl Iterator<Item = &'a str>) -> usize {
    let mut total = 0;
    let mut n = 0;
    for b in bodies {
        total += b.len() + 256;
        if n > 0 && total > REPLY_BODY_BUDGET {
            break;
        }
        n += 1;
    }
    n
}

pub(crate) async fn login(logic: &Logic, frame: &Frame, session_id: String) -> Result<LoggedIn> {
    if frame.op != ops::LOGIN {
        return Err(LogicError::new(
            code::NOT_LOGGED_IN,
            "the first frame must be login",
        ));
    }
    let device_id = frame.device_id.trim();
    if device_id.is_empty()
        || device_id.len() > MAX_DEVICE_ID
        || device_id.chars().any(char::is_control)
    {
        return Err(LogicError::bad_request(
            "device_id must be 1 to 128 printable characters",
        ));
    }
    let platform = Platform::parse(&frame.platform).map_err(|_| {
        LogicError::bad_request("platform must be one of ios, android, web, desktop, other")
    })?;
    if frame.client_version.len() > 32 || frame.client_version.chars().any(char::is_control) {
        return Err(LogicError::bad_request(
            "client_version must be at most 32 printable characters",
        ));
    }
    let verified = logic.tokens.verify(&frame.token).await?;
    let settings = logic.app_settings(&verified.app_id)?;
    // The head tells a device whether to sync: it must count what the
    // user's read-diffused groups hold for them.
    groups::pull(logic, &verified.app_id, &verified.user_id).await?;
    let inbox_seq = logic
        .stores
        .inbox
        .head(&verified.app_id, &verified.user_id)
        .await?;
    let reply = Frame {
        op: ops::REPLY.into(),
        rid: frame.rid,
        ok: Some(true),
        user_id: verified.user_id.as_str().to_owned(),
        session_id: session_id.clone(),
        server_time: Some(confab_model::now_ms()),
        inbox_seq: Some(inbox_seq),
        ..Default::default()
    };
    let settings = crate::shared_settings::share(&verified.app_id, settings);
    Ok(LoggedIn {
        session: Session {
            app_id: verified.app_id,
            user_id: verified.user_id,
            device_id: device_id.to_owned(),
            platform,
            settings,
            session_id,
            client_version: frame.client_version.clone(),
        },
        reply,
    })
}

pub(crate) async fn dispatch(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    match frame.op.as_str() {
        ops::PING => Ok(Frame {
            server_time: Some(confab_model::now_ms()),
            ..Default::default()
        }),
        ops::SEND => send(logic, s, frame).await,
        ops::ACK => Ok(Frame::default()),
        ops::SYNC => sync(logic, s, frame).await,
        ops::HISTORY => history(logic, s, frame).await,
        ops::READ => read(logic, s, frame).await,
        ops::CONVERSATIONS => conversations(logic, s, frame).await,
        ops::RECALL => recall(logic, s, frame).await,
        ops::TYPING => typing(logic, s, frame),
        ops::GROUP_CREATE => groups::create(logic, s, frame).await,
        ops::GROUP_INFO => groups::info(logic, s, frame).await,
        ops::GROUP_UPDATE => groups::update(logic, s, frame).await,
        ops::GROUP_JOIN => groups::join(logic, s, frame).await,
        ops::GROUP_QUIT => groups::quit(logic, s, frame).await,
        ops::GROUP_ADD => groups::add(logic, s, frame).await,
        ops::GROUP_REMOVE => groups::remove(logic, s, frame).await,
        ops::GROUP_MEMBERS => groups::members(logic, s, frame).await,
        ops::GROUP_ROLE => groups::role(logic, s, frame).await,
        ops::GROUP_TRANSFER => groups::transfer(logic, s, frame).await,
        ops::GROUP_MUTE => groups::mute(logic, s, frame).await,
        ops::GROUP_DISMISS => groups::dismiss(logic, s, frame).await,
        ops::GROUP_REQUESTS => groups::requests(logic, s, frame).await,
        ops::GROUP_REQUEST_DECIDE => groups::request_decide(logic, s, frame).await,
        ops::ROOM_JOIN => crate::rooms::join(logic, s, frame).await,
        // Room membership is the gateway's: it answers room_leave itself.
        ops::ROOM_LEAVE => Ok(Frame::default()),
        ops::PUSH_REGISTER => crate::push::register(logic, s, frame).await,
        ops::PUSH_UNREGISTER => crate::push::unregister(logic, s).await,
        ops::APP_STATE => crate::push::app_state(logic, s, frame).await,
        ops::CONV_MUTE => crate::push::conv_mute(logic, s, frame).await,
        ops::PUSH_SETTINGS => crate::push::settings(logic, s, frame).await,
        ops::LOGOUT => crate::push::logout(logic, s).await,
        ops::LOGIN => Err(LogicError::new(
            code::ALREADY_LOGGED_IN,
            "this connection is already logged in",
        )),
        "" => Err(LogicError::bad_request("frame has no op")),
        other => Err(LogicError::new(
            code::UNKNOWN_OP,
            format!("unknown op {:?}", truncate(other, 32)),
        )),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn parse_peer(to: Option<&WirePeer>) -> Result<Peer> {
    let to = to
        .ok_or_else(|| LogicError::bad_request("to is required: {\"kind\":\"user\",\"id\":...}"))?;
    Peer::parse(&to.kind, &to.id).map_err(|e| LogicError::bad_request(format!("to: {e}")))
}

fn parse_conv(conv_id: &str) -> Result<ConvId> {
    if conv_id.is_empty() {
        return Err(LogicError::bad_request("conv_id is required"));
    }
    ConvId::parse(conv_id).map_err(|_| LogicError::not_found("no such conversation"))
}

/// Whether `s`'s user may read and act in `conv`: a participant of a single
/// chat, or a current member of a group. Returns the first `seq` the user may
/// read (a group member sees history only from joining).
pub(crate) async fn authorize_conv(logic: &Logic, s: &Session, conv: &ConvId) -> Result<u64> {
    if conv.p2p_includes(&s.user_id) {
        Ok(1)
    } else if let Some(group) = conv.group_id() {
        match groups::membership(logic, s, &group).await {
            Ok((_, me)) => Ok(me.join_seq),
            Err(e) if e.code == code::NOT_FOUND => {
                Err(LogicError::not_found("no such conversation"))
            }
            Err(e) => Err(e),
        }
    } else {
        // Same answer as for a conversation that does not exist: never reveal
        // another user's conversations.
        Err(LogicError::not_found("no such conversation"))
    }
}

pub(crate) fn wire_peer(p: &Peer) -> WirePeer {
    WirePeer {
        kind: p.kind.as_str().to_owned(),
        id: p.id.to_string(),
    }
}

pub(crate) fn wire_message(m: &StoredMessage, inbox_seq: Option<u64>) -> Message {
    Message {
        inbox_seq,
        conv_id: m.conv_id.as_str().to_owned(),
        seq: m.seq,
        msg_id: m.msg_id.clone(),
        from: m.from.as_str().to_owned(),
        to: Some(wire_peer(&m.to)),
        body: m.body.clone(),
        ts: m.ts,
        client_msg_id: m.client_msg_id.clone(),
        recalled: m.recalled,
    }
}

/// The `message` push a recipient gets.
fn message_push(m: &StoredMessage, inbox_seq: u64) -> Frame {
    confab_proto::message_push(wire_message(m, Some(inbox_seq)))
}

async fn send(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let started = std::time::Instant::now();
    let silent = frame.silent.unwrap_or(false);
    let to = parse_peer(frame.to.as_ref())?;
    if to.kind == PeerKind::Room {
        // Live rooms: nothing stored, online members only (rooms.rs).
        return crate::rooms::send(logic, s, frame, to).await;
    }
    // The app's config as of now, not as of login: quota, word-list and
    // suspension changes apply to live sessions too.
    let settings = logic.app_settings(&s.app_id)?;
    let body = Body::parse(&frame.body, settings.max_body_bytes).map_err(|e| match e {
        BodyError::TooLarge { .. } => {
            metrics::counter!("confab_quota_rejections_total", "quota" => "max_body_bytes")
                .increment(1);
            LogicError::new(code::QUOTA_EXCEEDED, e.to_string())
        }
        other => LogicError::bad_request(other.to_string()),
    })?;
    if frame.client_msg_id.len() > MAX_CLIENT_MSG_ID {
        return Err(LogicError::bad_request(
            "client_msg_id is longer than 128 bytes",
        ));
    }
    if frame.client_msg_id.chars().any(char::is_control) {
        return Err(LogicError::bad_request(
            "client_msg_id must not contain control characters",
        ));
    }
    let client_msg_id = if frame.client_msg_id.is_empty() {
        ulid::Ulid::new().to_string()
    } else {
        frame.client_msg_id
    };
    let mut mentioned: Option<(confab_model::GroupId, groups::Mentions)> = None;
    // Read diffusion: the members to notify (the inbox gets no entry now).
    let mut notify: Option<Vec<UserId>> = None;
    let recipients = match to.kind {
        PeerKind::Group => {
            let group = confab_model::GroupId::parse(&to.id)
                .map_err(|e| LogicError::bad_request(format!("to.id: {e}")))?;
            let fanout =
                groups::send_recipients(logic, s, &group, settings.read_diffusion_threshold)
                    .await?;
            let recipients = if fanout.read {
                // Stored once, with no inbox entry at all: every member,
                // the sender too, gets theirs by pulling, so that each
                // inbox holds the group in `seq` order (an entry written
                // now would come before others' earlier messages not yet
                // pulled). The sender pulls right after the append.
                notify = Some(fanout.members);
                vec![]
            } else {
                // Write diffusion: one stored message, one inbox entry per member.
                fanout.members
            };
            let m = groups::mentions(
                logic,
                s,
                &group,
                &frame.mentions,
                frame.mention_all.unwrap_or(false),
            )
            .await?;
            mentioned = Some((group, m));
            recipients
        }
        _ if !frame.mentions.is_empty() || frame.mention_all == Some(true) => {
            return Err(LogicError::bad_request(
                "mentions and mention_all are for group messages",
            ));
        }
        _ => {
            let recipient = UserId::parse(&to.id)
                .map_err(|e| LogicError::bad_request(format!("to.id: {e}")))?;
            let mut recipients = vec![s.user_id.clone()];
            if recipient != s.user_id {
                recipients.push(recipient);
            }
            recipients
        }
    };
    let (body_text, masked) = moderate(logic, s, &body, frame.body)?;
    logic.rates.check(&s.app_id, &s.user_id, &settings.quotas)?;
    // The tenant's before_send webhook may refuse or rewrite the message.
    let (body_text, masked) = crate::webhooks::before_send(
        logic,
        s,
        &to,
        &client_msg_id,
        (body_text, masked),
        settings.max_body_bytes,
    )
    .await?;
    // A group message's mentions travel in its body (the server owns the
    // `mentions` and `mention_all` keys there), so that sync, history and
    // pushes carry them as stored.
    let body_text = match &mentioned {
        Some((_, m)) => with_mentions(body_text, m)?,
        None => body_text,
    };
    let appended = logic
        .stores
        .messages
        .append(NewMessage {
            app_id: s.app_id.clone(),
            conv_id: ConvId::for_message(&s.user_id, &to),
            msg_id: ulid::Ulid::new().to_string(),
            from: s.user_id.clone(),
            to,
            // The client's own JSON text, already validated: stored and
            // forwarded as sent (unless words were masked).
            body: body_text,
            ts: confab_model::now_ms(),
            client_msg_id,
            recipients,
            read_fanout: notify.is_some(),
        })
        .await?;
    metrics::histogram!("confab_logic_store_seconds").record(started.elapsed().as_secs_f64());
    let m = &appended.message;
    // Read diffusion: the sender's entry, from the pull after the append.
    let mut own_entry = None;
    if appended.duplicate {
        metrics::counter!("confab_logic_messages_deduplicated_total").increment(1);
    } else {
        metrics::counter!("confab_logic_messages_sent_total", "kind" => body_kind_label(&body.kind)).increment(1);
        logic.usage.message(&s.app_id);
        logic.usage.active(&s.app_id, &s.user_id);
        crate::webhooks::after_send(logic, s, m);
        if let Some((group, mentions)) = &mentioned
            && !mentions.is_empty()
            && let Err(e) = logic
                .stores
                .groups
                .add_mentions(&s.app_id, group, m.seq, &mentions.users, mentions.all)
                .await
        {
            // The message is stored and goes out; only the mention count of
            // `conversations` misses it.
            tracing::warn!(error = %e, "could not record a message's mentions");
        }
        for (user, inbox_seq) in &appended.inbox {
            let push = Arc::new(message_push(m, *inbox_seq));
            let except = (*user == s.user_id).then_some(s.session_id.as_str());
            logic.delivery.deliver(&s.app_id, user, push, except);
        }
        match &notify {
            None => crate::push::after_send(logic, s, &appended, &body, silent, &settings.push),
            Some(members) => {
                let push = Arc::new(groups::notify_push(m));
                for user in members.iter().filter(|u| **u != s.user_id) {
                    logic.delivery.deliver(&s.app_id, user, push.clone(), None);
                }
                metrics::counter!("confab_logic_group_notifies_total")
                    .increment(members.len() as u64);
                // Offline push decides per member as under write diffusion
                // (it reads only who the recipients are).
                let shadow = confab_store::Appended {
                    message: m.clone(),
                    duplicate: false,
                    inbox: members.iter().map(|u| (u.clone(), 0)).collect(),
                };
                crate::push::after_send(logic, s, &shadow, &body, silent, &settings.push);
                // Last, the sender's own entry, from their pull (their other
                // devices and read cursor as under write diffusion; the app,
                // not a member, has no inbox). The message is stored and
                // announced whatever happens here: a failed pull is only
                // retried by the sender's next sync.
                if !s.is_app() {
                    own_entry = match groups::pull_own(logic, &s.app_id, &s.user_id, m).await {
                        Ok(found) => found,
                        Err(e) => {
                            tracing::warn!(error = %e, "the sender's pull after a read-diffused send failed");
                            None
                        }
                    };
                    let push = match own_entry {
                        Some(inbox_seq) => Arc::new(message_push(m, inbox_seq)),
                        // Someone else's pull numbered it (a racing sync):
                        // the other devices pull like everyone's.
                        None => push,
                    };
                    let except = Some(s.session_id.as_str());
                    logic.delivery.deliver(&s.app_id, &s.user_id, push, except);
                }
            }
        }
    }
    let own_inbox_seq = appended
        .inbox
        .iter()
        .find(|(u, _)| *u == s.user_id)
        .map(|(_, seq)| *seq)
        .or(own_entry);
    Ok(Frame {
        msg_id: m.msg_id.clone(),
        conv_id: m.conv_id.as_str().to_owned(),
        seq: Some(m.seq),
        ts: Some(m.ts),
        inbox_seq: own_inbox_seq,
        client_msg_id: m.client_msg_id.clone(),
        masked: Some(masked),
        ..Default::default()
    })
}

/// Sets (or, without mentions, removes) the server-owned `mentions` and
/// `mention_all` keys of a group message's JSON body.
fn with_mentions(body: String, m: &groups::Mentions) -> Result<String> {
    let mut value: serde_json::Value = serde_json::from_str(&body)
        .map_err(|_| LogicError::bad_request("body is not a JSON object"))?;
    let Some(object) = value.as_object_mut() else {
        return Err(LogicError::bad_request("body is not a JSON object"));
    };
    let had = object.remove("mentions").is_some() | object.remove("mention_all").is_some();
    if m.is_empty() && !had {
        return Ok(body);
    }
    if !m.users.is_empty() {
        object.insert(
            "mentions".into(),
            m.users
                .iter()
                .map(|u| u.as_str())
                .collect::<Vec<_>>()
                .into(),
        );
    }
    if m.all {
        object.insert("mention_all".into(), true.into());
    }
    Ok(value.to_string())
}

/// Applies the global and the app's sensitive words to a text body: refuses
/// it (`content_blocked`) or returns it with words masked.
pub(crate) fn moderate(
    logic: &Logic,
    s: &Session,
    body: &Body,
    raw: String,
) -> Result<(String, bool)> {
    use confab_config::words::Verdict;
    let Some(text) = body.text() else {
        return Ok((raw, false));
    };
    let filter = logic.config.current().words(s.app_id.as_str());
    match filter.check(text) {
        Verdict::Clean => Ok((raw, false)),
        Verdict::Blocked(_) => {
            metrics::counter!("confab_logic_moderated_total", "action" => "block").increment(1);
            // The word itself is not echoed: the list is the tenant's business.
            Err(LogicError::new(
                code::CONTENT_BLOCKED,
                "the message contains a blocked word",
            ))
        }
        Verdict::Masked(masked) => {
            metrics::counter!("confab_logic_moderated_total", "action" => "mask").increment(1);
            let mut value: serde_json::Value = serde_json::from_str(&raw)
                .map_err(|_| LogicError::bad_request("body is not a JSON object"))?;
            value["text"] = serde_json::Value::String(masked);
            Ok((value.to_string(), true))
        }
    }
}

fn body_kind_label(kind: &str) -> &'static str {
    confab_model::body_type_label(kind)
}

fn clamp_limit(limit: Option<u32>, default: u32, max: u32) -> u32 {
    limit.filter(|l| *l > 0).unwrap_or(default).min(max)
}

async fn sync(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let since = frame.since.unwrap_or(0);
    let limit = clamp_limit(frame.limit, SYNC_DEFAULT, SYNC_MAX);
    // Read-diffused groups first: what they hold for the user becomes inbox
    // entries, so the reply below is what write diffusion would give.
    let pull_cut = groups::pull(logic, &s.app_id, &s.user_id).await?;
    let mut entries: Vec<InboxEntry> = logic
        .stores
        .inbox
        .since(&s.app_id, &s.user_id, since, limit + 1)
        .await?;
    let mut has_more = entries.len() > limit as usize || pull_cut;
    entries.truncate(limit as usize);
    let fit = within_budget(entries.iter().map(|e| e.message.body.as_str()));
    if fit < entries.len() {
        entries.truncate(fit);
        has_more = true;
    }
    metrics::counter!("confab_logic_sync_messages_total").increment(entries.len() as u64);
    Ok(Frame {
        messages: entries
            .iter()
            .map(|e| wire_message(&e.message, Some(e.inbox_seq)))
            .collect(),
        has_more: Some(has_more),
        ..Default::default()
    })
}

async fn history(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let conv = parse_conv(&frame.conv_id)?;
    let first_seq = authorize_conv(logic, s, &conv).await?;
    let limit = clamp_limit(frame.limit, HISTORY_DEFAULT, HISTORY_MAX);
    let mut messages = logic
        .stores
        .messages
        .history(&s.app_id, &conv, frame.before_seq, limit + 1)
        .await?;
    // Nothing from before the member joined.
    let visible = messages.iter().take_while(|m| m.seq >= first_seq).count();
    messages.truncate(visible);
    let mut has_more = messages.len() > limit as usize;
    messages.truncate(limit as usize);
    let fit = within_budget(messages.iter().map(|m| m.body.as_str()));
    if fit < messages.len() {
        messages.truncate(fit);
        has_more = true;
    }
    Ok(Frame {
        conv_id: conv.as_str().to_owned(),
        messages: messages.iter().map(|m| wire_message(m, None)).collect(),
        has_more: Some(has_more),
        ..Default::default()
    })
}

/// Most pulls one `read` of a group makes (500 entries each).
const READ_PULLS_MAX: usize = 40;

async fn read(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let conv = parse_conv(&frame.conv_id)?;
    authorize_conv(logic, s, &conv).await?;
    if conv.group_id().is_some() {
        // The cursor is capped at the user's last seq of the conversation,
        // which a read-diffused group moves only by a pull. One pull gives
        // at most 500 entries across all the user's groups: pull on, so
        // that a group behind a longer backlog is not left unread after a
        // read (bounded: a backlog past that is read by the next `read`).
        for _ in 0..READ_PULLS_MAX {
            if !groups::pull(logic, &s.app_id, &s.user_id).await? {
                break;
            }
        }
    }
    let seq = frame
        .seq
        .ok_or_else(|| LogicError::bad_request("seq is required"))?;
    let (cursor, moved) = logic
        .stores
        .reads
        .mark_read(&s.app_id, &s.user_id, &conv, seq)
        .await?
        .ok_or_else(|| LogicError::not_found("no such conversation"))?;
    if moved {
        let read_push = Frame {
            op: ops::READ.into(),
            conv_id: conv.as_str().to_owned(),
            seq: Some(cursor),
            ..Default::default()
        };
        logic.delivery.deliver(
            &s.app_id,
            &s.user_id,
            Arc::new(read_push),
            Some(&s.session_id),
        );
        // Receipts are for single chat only: in a group, the peer is the
        // group, whose id may well also be some user's id.
        if let Some(peer) = conv.peer_for(&s.user_id)
            && peer.kind == PeerKind::User
            && let Ok(peer) = UserId::parse(&peer.id)
            && peer != s.user_id
        {
            let receipt = Frame {
                op: ops::RECEIPT.into(),
                conv_id: conv.as_str().to_owned(),
                seq: Some(cursor),
                user_id: s.user_id.as_str().to_owned(),
                ..Default::default()
            };
            logic
                .delivery
                .deliver(&s.app_id, &peer, Arc::new(receipt), None);
        }
    }
    Ok(Frame {
        conv_id: conv.as_str().to_owned(),
        seq: Some(cursor),
        ..Default::default()
    })
}

async fn conversations(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let limit = clamp_limit(frame.limit, CONVERSATIONS_DEFAULT, CONVERSATIONS_MAX);
    // Read-diffused groups' last seqs and unread counts come with a pull.
    groups::pull(logic, &s.app_id, &s.user_id).await?;
    let (mut list, mut total) = logic
        .stores
        .reads
        .conversations(&s.app_id, &s.user_id, limit)
        .await?;
    // Groups the user has left or was removed from are not theirs any more.
    // (Their unread is taken out of the total only for the page listed.)
    // Each kept conversation with its unread mentions (groups only; asked
    // of the store only when something is unread).
    let mut kept = Vec::with_capacity(list.len());
    for c in list.drain(..) {
        let mut unread_mentions = 0;
        if let Some(group) = c.conv_id.group_id() {
            let me = match groups::membership(logic, s, &group).await {
                Ok((_, me)) => me,
                Err(e) if e.code == code::NOT_FOUND => {
                    total = total.saturating_sub(c.unread());
                    continue;
                }
                Err(e) => return Err(e),
            };
            if c.unread() > 0 {
                // Mentions from before the member joined are not theirs.
                let after = c.read_seq.max(me.join_seq.saturating_sub(1));
                unread_mentions = logic
                    .stores
                    .groups
                    .unread_mentions(&s.app_id, &group, &s.user_id, after)
                    .await?;
            }
        }
        kept.push((c, unread_mentions));
    }
    Ok(Frame {
        conversations: kept
            .iter()
            .map(|(c, unread_mentions)| confab_proto::Conversation {
                conv_id: c.conv_id.as_str().to_owned(),
                peer: c.conv_id.peer_for(&s.user_id).as_ref().map(wire_peer),
                last_message: c.last_message.as_ref().map(|m| wire_message(m, None)),
                unread: c.unread(),
                read_seq: c.read_seq,
                last_seq: c.last_seq,
                unread_mentions: *unread_mentions,
            })
            .collect(),
        total_unread: Some(total),
        ..Default::default()
    })
}

async fn recall(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let conv = parse_conv(&frame.conv_id)?;
    let first_seq = authorize_conv(logic, s, &conv).await?;
    if frame.msg_id.is_empty() {
        return Err(LogicError::bad_request("msg_id is required"));
    }
    let m = logic
        .stores
        .messages
        .get(&s.app_id, &conv, &frame.msg_id)
        .await?
        .filter(|m| m.seq >= first_seq)
        .ok_or_else(|| LogicError::not_found("no such message"))?;
    if m.from != s.user_id {
        return Err(LogicError::forbidden(
            "only the sender may recall a message",
        ));
    }
    // A repeated recall (a retry after an error) runs the whole path again:
    // the store call is idempotent and re-clears caches, and the pushes are
    // at-least-once anyway.
    {
        let window_ms = logic.app_settings(&s.app_id)?.recall_window_ms;
        let age = confab_model::now_ms() - m.ts;
        if !m.recalled && age > window_ms {
            return Err(LogicError::new(
                code::RECALL_WINDOW_PASSED,
                format!(
                    "messages can be recalled for {} s after sending",
                    window_ms / 1000
                ),
            ));
        }
        logic
            .stores
            .messages
            .recall(&s.app_id, &conv, &m.msg_id)
            .await?;
        let push = Arc::new(Frame {
            op: ops::RECALLED.into(),
            conv_id: conv.as_str().to_owned(),
            msg_id: m.msg_id.clone(),
            seq: Some(m.seq),
            ..Default::default()
        });
        // Every participant's every session, the recalling one included
        // (protocol.md: "every participant gets recalled").
        if let Some((a, b)) = conv.p2p_members() {
            for user in [a, b] {
                if let Ok(user) = UserId::parse(user) {
                    logic.delivery.deliver(&s.app_id, &user, push.clone(), None);
                }
            }
        } else if let Some(group) = conv.group_id() {
            let g = groups::load(logic, &s.app_id, &group).await?;
            for user in g.members.keys() {
                logic.delivery.deliver(&s.app_id, user, push.clone(), None);
            }
        }
    }
    Ok(Frame {
        conv_id: conv.as_str().to_owned(),
        msg_id: m.msg_id,
        recalled: Some(true),
        ..Default::default()
    })
}

fn typing(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let to = parse_peer(frame.to.as_ref())?;
    if to.kind != PeerKind::User {
        return Err(LogicError::new(
            code::UNSUPPORTED,
            "typing is only available in single chat for now",
        ));
    }
    let peer = UserId::parse(&to.id).map_err(|e| LogicError::bad_request(format!("to.id: {e}")))?;
    let push = Frame {
        op: ops::TYPING.into(),
        from: s.user_id.as_str().to_owned(),
        to: Some(wire_peer(&to)),
        conv_id: ConvId::p2p(&s.user_id, &peer).as_str().to_owned(),
        ..Default::default()
    };
    logic
        .delivery
        .deliver(&s.app_id, &peer, Arc::new(push), None);
    Ok(Frame::default())
}
