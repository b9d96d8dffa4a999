//! Live room membership on this node, and the per-node fan-out.
//!
//! Logic hands a room message to each node once ([`confab_logic::Delivery::deliver_room`]);
//! this table turns it into one queued frame per member connection here.
//! Under overload a room degrades instead of stalling: before queueing, each
//! member's queue fill decides whether a `low` (sampled, then dropped) or
//! `normal` (dropped when the queue is half full) room message is shed;
//! `high` ones are always queued (a queue that is full even so belongs to a
//! slow reader, which is disconnected as for any push). Shed messages are
//! counted in `confab_room_messages_shed_total{priority}`.
//!
//! A user is in one room at a time on a node: joining another room takes all
//! of the user's sessions here out of the first. Membership is live state
//! only; the node's member counts are written to the route table's room
//! presence (so that logic elsewhere knows which nodes to hand a room
//! message to) by the connection on a room's first member and by
//! [`crate::Gateway`]'s presence task otherwise.
//!
//! Must not: interpret messages beyond their priority.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use confab_model::{AppId, RoomId, RoomPriority, UserId};
use confab_proto::Frame;
use dashmap::DashMap;

use crate::hub::{MAX_QUEUED_BYTES, Outbound, SessionHandle, SharedFrame};

/// Queue fill (percent of frames or bytes) from which `low` room messages
/// are sampled (one in [`LOW_SAMPLE`] kept), and from which they are all shed.
const LOW_SAMPLE_FROM: usize = 10;
const LOW_SHED_FROM: usize = 25;
const LOW_SAMPLE: u64 = 4;
/// Queue fill from which `normal` room messages are shed (heavy load): the
/// rest of the queue stays free for `high` ones and for replies.
const NORMAL_SHED_FROM: usize = 50;

type Key = (AppId, RoomId);
/// A user's room on this node, and the user's sessions in it.
type UserRoom = (RoomId, Vec<Arc<str>>);

#[derive(Default)]
pub(crate) struct RoomTable {
    rooms: DashMap<Key, HashMap<Arc<str>, SessionHandle>>,
    /// The room each user is in here, with the user's sessions in it. Lock
    /// order: an entry of `by_user` may be held while `rooms` is locked,
    /// never the other way round.
    by_user: DashMap<(AppId, UserId), UserRoom>,
    /// Rooms whose count changed since the presence task last wrote them.
    dirty: Mutex<HashSet<Key>>,
    /// Spreads the `low` sampling over messages.
    sample: AtomicU64,
}

/// What a join changed.
pub(crate) struct Joined {
    /// Members of the room on this node, the new one included.
    pub count: usize,
}

/// How full a connection's queue is, in percent (frames or bytes, the higher).
fn fill(h: &SessionHandle) -> usize {
    let cap = h.tx.max_capacity().max(1);
    let used = cap.saturating_sub(h.tx.capacity());
    let bytes = h.queued.load(Ordering::Relaxed);
    (used * 100 / cap).max(bytes.saturating_mul(100) / MAX_QUEUED_BYTES)
}

/// Whether a room message of `priority` goes to a connection this full.
fn keep(priority: RoomPriority, fill: usize, sample: u64) -> bool {
    match priority {
        RoomPriority::High => true,
        RoomPriority::Normal => fill < NORMAL_SHED_FROM,
        RoomPriority::Low => {
            fill < LOW_SAMPLE_FROM || (fill < LOW_SHED_FROM && sample.is_multiple_of(LOW_SAMPLE))
        }
    }
}

impl RoomTable {
    pub(crate) fn mark(&self, key: Key) {
        self.dirty
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key);
    }

    /// Takes sessions out of a room; the members left there.
    fn remove_sessions(&self, app: &AppId, room: &RoomId, sessions: &[Arc<str>]) -> usize {
        let key = (app.clone(), room.clone());
        let mut left = 0;
        self.rooms.remove_if_mut(&key, |_, members| {
            for s in sessions {
                members.remove(s);
            }
            left = members.len();
            members.is_empty()
        });
        self.mark(key);
        left
    }

    /// Puts a session in `room`, taking the user's sessions here out of the
    /// room they were in before (if another).
    pub(crate) fn join(
        &self,
        app: &AppId,
        user: &UserId,
        room: &RoomId,
        handle: SessionHandle,
    ) -> Joined {
        let session = handle.session_id.clone();
        {
            let mut entry = self
                .by_user
                .entry((app.clone(), user.clone()))
                .or_insert_with(|| (room.clone(), Vec::new()));
            if entry.0 != *room {
                let (old, sessions) = std::mem::replace(&mut *entry, (room.clone(), Vec::new()));
                self.remove_sessions(app, &old, &sessions);
            }
            if !entry.1.contains(&session) {
                entry.1.push(session.clone());
            }
        }
        let key = (app.clone(), room.clone());
        let count = {
            let mut members = self.rooms.entry(key.clone()).or_default();
            members.insert(session, handle);
            members.len()
        };
        self.mark(key);
        Joined { count }
    }

    /// Takes a session out of its room; the room it left, if any.
    pub(crate) fn leave(&self, app: &AppId, user: &UserId, session: &str) -> Option<RoomId> {
        let mut left = None;
        self.by_user
            .remove_if_mut(&(app.clone(), user.clone()), |_, (room, sessions)| {
                if let Some(pos) = sessions.iter().position(|s| &**s == session) {
                    let gone = sessions.remove(pos);
                    self.remove_sessions(app, room, &[gone]);
                    left = Some(room.clone());
                }
                sessions.is_empty()
            });
        left
    }

    /// The room a session is in, if any.
    pub(crate) fn room_of(&self, app: &AppId, user: &UserId, session: &str) -> Option<RoomId> {
        let entry = self.by_user.get(&(app.clone(), user.clone()))?;
        entry
            .1
            .iter()
            .any(|s| &**s == session)
            .then(|| entry.0.clone())
    }

    /// Members of a room on this node.
    pub(crate) fn count(&self, app: &AppId, room: &RoomId) -> usize {
        self.rooms
            .get(&(app.clone(), room.clone()))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Queues `frame` for every member here but `except`, shedding by priority.
    pub(crate) fn fan_out(
        &self,
        app: &AppId,
        room: &RoomId,
        frame: Arc<Frame>,
        except: Option<&str>,
    ) {
        let priority = RoomPriority::parse(&frame.priority).unwrap_or_default();
        let sample = self.sample.fetch_add(1, Ordering::Relaxed);
        let Some(members) = self.rooms.get(&(app.clone(), room.clone())) else {
            return;
        };
        // Encoded once per encoding by the first writer, shared by the rest.
        let shared = SharedFrame::new(frame);
        let (mut queued, mut shed) = (0u64, 0u64);
        for (session, h) in members.iter() {
            if except.is_some_and(|e| e == &**session) {
                continue;
            }
            // Sampling is per connection too, so that shed messages are
            // spread over members rather than the same ones for everyone.
            let spread = sample.wrapping_add(session.bytes().last().unwrap_or(0) as u64);
            if keep(priority, fill(h), spread) {
                h.offer(Outbound::Shared(shared.clone()));
                queued += 1;
            } else {
                shed += 1;
            }
        }
        drop(members);
        metrics::counter!("confab_room_deliveries_total").increment(queued);
        if shed > 0 {
            metrics::counter!("confab_room_messages_shed_total", "priority" => priority.as_str())
                .increment(shed);
        }
    }

    /// Closes a room here: every member gets `frame` and is taken out.
    pub(crate) fn close(&self, app: &AppId, room: &RoomId, frame: Arc<Frame>) -> usize {
        let key = (app.clone(), room.clone());
        let Some((_, members)) = self.rooms.remove(&key) else {
            return 0;
        };
        self.mark(key);
        let n = members.len();
        let mut users = HashSet::new();
        for h in members.values() {
            h.offer(Outbound::Frame(frame.clone()));
        }
        // The room's members by user, to clear their `by_user` entries.
        for entry in self.by_user.iter() {
            if entry.value().0 == *room && entry.key().0 == *app {
                users.insert(entry.key().clone());
            }
        }
        for key in users {
            self.by_user.remove_if(&key, |_, (r, _)| r == room);
        }
        n
    }

    /// Rooms whose count changed since the last call, with their count now.
    pub(crate) fn take_dirty(&self) -> Vec<(Key, usize)> {
        let keys: Vec<Key> = self
            .dirty
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        keys.into_iter()
            .map(|k| {
                let n = self.count(&k.0, &k.1);
                (k, n)
            })
            .collect()
    }

    /// Every room with members here, with its count.
    pub(crate) fn all(&self) -> Vec<(Key, usize)> {
        self.rooms
            .iter()
            .map(|e| (e.key().clone(), e.value().len()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_priority_is_never_shed() {
        for fill in [0, 50, 99, 100] {
            assert!(keep(RoomPriority::High, fill, 1));
        }
    }

    #[test]
    fn low_is_sampled_then_shed_before_normal() {
        assert!(keep(RoomPriority::Low, 0, 1));
        let kept = (0..100)
            .filter(|s| keep(RoomPriority::Low, LOW_SAMPLE_FROM, *s))
            .count();
        assert_eq!(kept, 25, "one in four low messages is kept while sampling");
        assert!(!keep(RoomPriority::Low, LOW_SHED_FROM, 0));
        assert!(keep(RoomPriority::Normal, LOW_SHED_FROM, 1));
        assert!(!keep(RoomPriority::Normal, NORMAL_SHED_FROM, 0));
    }
}
