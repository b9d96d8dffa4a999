//! Live chat rooms: `room_join`, sends to a room, and the create / close /
//! info calls of the REST API.
//!
//! A room's existence is stored (`RoomStore`); nothing else is. Who is in a
//! room is the gateways' business (each keeps its own members and fans a
//! room message out to them); logic checks the room and the sender's quotas,
//! builds the `message` push once and hands it to [`Delivery::deliver_room`]
//! — one hand-off per node, never one per member. Room messages have no
//! `seq`, no inbox entry, no sync and no offline push.
//!
//! Must not: store a room message or look up room members.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confab_model::{AppId, Body, BodyError, ConvId, Peer, RoomId, RoomPriority};
use confab_proto::Frame;
use confab_proto::ops::{self, code};
use confab_store::Room;

use crate::error::{LogicError, Result};
use crate::{Logic, Session};

const MAX_NAME: usize = 128;
const MAX_CLIENT_MSG_ID: usize = 128;
/// Open rooms are cached per process so that a room send does not read the
/// database. Closing through this process invalidates at once; the TTL
/// bounds how long another node may still accept sends to a closed room
/// (its gateways have dropped the members anyway).
const CACHE_TTL: Duration = Duration::from_secs(2);

/// Which rooms exist, by (app, room), as of a recent read.
#[derive(Default)]
pub(crate) struct RoomCache {
    open: Mutex<HashMap<(AppId, RoomId), Instant>>,
}

impl RoomCache {
    fn fresh(&self, key: &(AppId, RoomId)) -> bool {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(key).is_some_and(|at| at.elapsed() < CACHE_TTL)
    }

    fn put(&self, key: (AppId, RoomId)) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.len() > 10_000 {
            open.retain(|_, at| at.elapsed() < CACHE_TTL);
        }
        open.insert(key, Instant::now());
    }

    fn invalidate(&self, app: &AppId, room: &RoomId) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.remove(&(app.clone(), room.clone()));
    }
}

fn parse_room(raw: &str) -> Result<RoomId> {
    if raw.is_empty() {
        return Err(LogicError::bad_request("room_id is required"));
    }
    RoomId::parse(raw).map_err(|e| LogicError::bad_request(format!("room_id: {e}")))
}

/// Checks that the room is open in the app (cached).
async fn ensure_open(logic: &Logic, app: &AppId, room: &RoomId) -> Result<()> {
    let key = (app.clone(), room.clone());
    if logic.rooms.fresh(&key) {
        return Ok(());
    }
    match logic.stores.rooms.room(app, room).await? {
        Some(_) => {
            logic.rooms.put(key);
            Ok(())
        }
        None => Err(LogicError::not_found("no such room")),
    }
}

/// Members online in a room, over every node (as the gateways last wrote it).
pub async fn online_count(logic: &Logic, app: &AppId, room: &RoomId) -> Result<u64> {
    let nodes = logic.stores.routes.room_presence(app, room).await?;
    Ok(nodes.iter().map(|(_, n)| n).sum())
}

/// `room_join`: the room must be open. The gateway that forwarded the
/// request adds the session to its members when this succeeds.
pub(crate) async fn join(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let room = parse_room(&frame.room_id)?;
    ensure_open(logic, &s.app_id, &room).await?;
    tracing::debug!(app = %s.app_id, user = %s.user_id, room = %room, "room join");
    Ok(Frame {
        room_id: room.as_str().to_owned(),
        online_count: Some(online_count(logic, &s.app_id, &room).await?),
        ..Default::default()
    })
}

/// A send to a room: validated and moderated like any send, counted against
/// the app's and the user's message rates, then handed to every node with
/// members of the room. The gateway has checked that the sender is in it.
pub(crate) async fn send(logic: &Logic, s: &Session, frame: Frame, to: Peer) -> Result<Frame> {
    let room = RoomId::parse(&to.id).map_err(|e| LogicError::bad_request(format!("to.id: {e}")))?;
    let priority = RoomPriority::parse(&frame.priority)
        .map_err(|_| LogicError::bad_request("priority must be high, normal or low"))?;
    let settings = logic.app_settings(&s.app_id)?;
    let body = Body::parse(&frame.body, settings.max_body_bytes).map_err(|e| match e {
        BodyError::TooLarge { .. } => {
            metrics::counter!("confab_quota_rejections_total", "quota" => "max_body_bytes")
                .increment(1);
            LogicError::new(code::QUOTA_EXCEEDED, e.to_string())
        }
        other => LogicError::bad_request(other.to_string()),
    })?;
    if frame.client_msg_id.len() > MAX_CLIENT_MSG_ID
        || frame.client_msg_id.chars().any(char::is_control)
    {
        return Err(LogicError::bad_request(
            "client_msg_id must be at most 128 bytes without control characters",
        ));
    }
    ensure_open(logic, &s.app_id, &room).await?;
    let (body_text, masked) = crate::handlers::moderate(logic, s, &body, frame.body)?;
    logic.rates.check(&s.app_id, &s.user_id, &settings.quotas)?;
    let msg_id = ulid::Ulid::new().to_string();
    let ts = confab_model::now_ms();
    let conv_id = ConvId::for_message(&s.user_id, &to);
    let push = Frame {
        op: ops::MESSAGE.into(),
        conv_id: conv_id.as_str().to_owned(),
        msg_id: msg_id.clone(),
        from: s.user_id.as_str().to_owned(),
        to: Some(crate::handlers::wire_peer(&to)),
        body: body_text,
        ts: Some(ts),
        client_msg_id: frame.client_msg_id.clone(),
        priority: priority.as_str().to_owned(),
        ..Default::default()
    };
    logic
        .delivery
        .deliver_room(&s.app_id, &room, Arc::new(push), Some(&s.session_id));
    metrics::counter!("confab_logic_room_messages_total", "priority" => priority.as_str())
        .increment(1);
    logic.usage.message(&s.app_id);
    Ok(Frame {
        msg_id,
        conv_id: conv_id.as_str().to_owned(),
        ts: Some(ts),
        client_msg_id: frame.client_msg_id,
        masked: Some(masked),
        priority: priority.as_str().to_owned(),
        ..Default::default()
    })
}

/// Creates a room (REST). `room_id` may be chosen by the caller; else a ULID.
pub async fn create(logic: &Logic, app: &AppId, room_id: Option<&str>, name: &str) -> Result<Room> {
    logic.app_settings(app)?;
    let room_id = match room_id {
        Some(id) => parse_room(id)?,
        None => RoomId::parse(&ulid::Ulid::new().to_string().to_lowercase())
            .map_err(|e| LogicError::bad_request(e.to_string()))?,
    };
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(LogicError::bad_request(
            "name must be at most 128 printable characters",
        ));
    }
    let room = Room {
        room_id,
        name: name.to_owned(),
        created_at: confab_model::now_ms(),
    };
    logic.stores.rooms.create_room(app, &room).await?;
    tracing::info!(app = %app, room = %room.room_id, "room created");
    Ok(room)
}

/// A room and its online count (REST).
pub async fn info(logic: &Logic, app: &AppId, room_id: &str) -> Result<(Room, u64)> {
    let room_id = parse_room(room_id)?;
    let room = logic
        .stores
        .rooms
        .room(app, &room_id)
        .await?
        .ok_or_else(|| LogicError::not_found("no such room"))?;
    let online = online_count(logic, app, &room_id).await?;
    Ok((room, online))
}

/// Closes a room (REST): it stops existing, and every member on every node
/// gets a `room_closed` event and is taken out of it.
pub async fn close(logic: &Logic, app: &AppId, room_id: &str) -> Result<()> {
    let room = parse_room(room_id)?;
    if !logic.stores.rooms.close_room(app, &room).await? {
        return Err(LogicError::not_found("no such room"));
    }
    logic.rooms.invalidate(app, &room);
    let event = Frame {
        op: ops::EVENT.into(),
        event: ops::ROOM_CLOSED_EVENT.into(),
        room_id: room.as_str().to_owned(),
        conv_id: format!("room:{room}"),
        priority: RoomPriority::High.as_str().to_owned(),
        ts: Some(confab_model::now_ms()),
        ..Default::default()
    };
    logic.delivery.close_room(app, &room, Arc::new(event));
    tracing::info!(app = %app, room = %room, "room closed");
    Ok(())
}
