//! Offline push state: which devices can be reached through an operating
//! system push channel ([`DeviceStore`]), the user's push preferences
//! (muted conversations, do-not-disturb hours), and the durable queue of
//! notifications waiting to be sent ([`PushQueue`]).
//!
//! The store knows nothing about providers: a vendor is its wire name
//! (`apns`, `fcm`, ...) and a job's payload is opaque JSON that the push
//! worker wrote and reads back. That keeps `confab-push` (which depends on
//! this crate) the only place that knows what a notification looks like.

use std::time::Duration;

use async_trait::async_trait;
use confab_model::{AppId, ConvId, UserId};

use crate::Result;

/// A device's push registration (`push_register`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushDevice {
    pub user_id: UserId,
    pub device_id: String,
    /// `apns`, `fcm`, `huawei`, `xiaomi`, `oppo`, `vivo` or `honor`.
    pub vendor: String,
    pub token: String,
    /// iOS bundle id or Android package name.
    pub bundle: String,
    pub locale: String,
    /// The app told us it went to the background (`app_state`): it gets
    /// pushes even while its connection is still up.
    pub background: bool,
    /// Milliseconds since the epoch of the last registration.
    pub updated_at: i64,
}

/// Do-not-disturb hours, in minutes of the user's local day: no push from
/// `start` (inclusive) to `end` (exclusive), wrapping over midnight when
/// `start > end`. `start == end` means no quiet hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dnd {
    pub start_min: u16,
    pub end_min: u16,
    /// The user's offset from UTC in minutes (e.g. +480 for UTC+8).
    pub tz_offset_min: i16,
}

impl Dnd {
    /// Whether `now_ms` (UTC) falls inside the quiet hours.
    pub fn quiet_at(&self, now_ms: i64) -> bool {
        if self.start_min == self.end_min {
            return false;
        }
        let local_min =
            (now_ms.div_euclid(60_000) + i64::from(self.tz_offset_min)).rem_euclid(1440);
        let (start, end) = (i64::from(self.start_min), i64::from(self.end_min));
        if start < end {
            (start..end).contains(&local_min)
        } else {
            local_min >= start || local_min < end
        }
    }
}

/// One registered device of a recipient, with what the push decision needs
/// to know about its user for one conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    pub device: PushDevice,
    /// The user muted the conversation.
    pub muted: bool,
    pub dnd: Option<Dnd>,
}

#[async_trait]
pub trait DeviceStore: Send + Sync + 'static {
    /// Registers (or replaces) the push token of `user`'s `device`. A token
    /// belongs to one device: a registration elsewhere with the same
    /// (vendor, token) is removed (the phone changed hands or users).
    async fn register_push(&self, app: &AppId, device: PushDevice) -> Result<()>;
    /// Forgets the device's push registration; false if there was none.
    async fn unregister_push(&self, app: &AppId, user: &UserId, device_id: &str) -> Result<bool>;
    /// Records that the app went to the background (or came back); false if
    /// the device has no push registration.
    async fn set_background(
        &self,
        app: &AppId,
        user: &UserId,
        device_id: &str,
        background: bool,
    ) -> Result<bool>;
    /// The user's registered devices, by device id.
    async fn push_devices(&self, app: &AppId, user: &UserId) -> Result<Vec<PushDevice>>;
    /// Removes every registration of a token the provider says is dead;
    /// returns how many went.
    async fn delete_token(&self, app: &AppId, vendor: &str, token: &str) -> Result<u64>;
    /// Mutes or unmutes a conversation for pushes to `user`.
    async fn set_muted(&self, app: &AppId, user: &UserId, conv: &ConvId, muted: bool)
    -> Result<()>;
    /// Sets (or with `None` clears) the user's do-not-disturb hours.
    async fn set_dnd(&self, app: &AppId, user: &UserId, dnd: Option<Dnd>) -> Result<()>;
    async fn dnd(&self, app: &AppId, user: &UserId) -> Result<Option<Dnd>>;
    /// Whether the app has at least one registered push device: the push
    /// decision skips its per-message read for apps that have none (cached
    /// by the caller; see confab-logic's push.rs).
    async fn app_has_push_devices(&self, app: &AppId) -> Result<bool>;
    /// Every registered device of `users` with their mute flag for `conv`
    /// and their DND hours, in one round trip (a group send asks for all
    /// its offline members at once).
    async fn push_targets(
        &self,
        app: &AppId,
        conv: &ConvId,
        users: &[UserId],
    ) -> Result<Vec<PushTarget>>;
}

/// A notification to queue. `id` is the `PushMessage.id`, stable across
/// retries and redeliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPushJob {
    pub id: String,
    pub app_id: AppId,
    pub user_id: UserId,
    pub device_id: String,
    pub vendor: String,
    /// The rendered notification, as the worker serialised it.
    pub payload: String,
}

/// A claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushJob {
    pub id: String,
    pub app_id: AppId,
    pub user_id: UserId,
    pub device_id: String,
    pub vendor: String,
    pub payload: String,
    /// Claims so far, this one included.
    pub attempts: u32,
    /// When it was enqueued (ms).
    pub created_at: i64,
    pub last_error: Option<String>,
}

/// A job that will not be sent, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadPushJob {
    pub job: PushJob,
    pub reason: String,
    /// When it was dead-lettered (ms).
    pub failed_at: i64,
}

/// The queue's size, for metrics and alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Jobs waiting or in flight (dead letters not counted).
    pub depth: u64,
    /// Enqueue time (ms) of the oldest of them.
    pub oldest_created_at: Option<i64>,
}

/// The durable push queue. Delivery is at least once: a claimed job is
/// leased, and a job whose lease runs out (its worker crashed) is claimed
/// again with the same id, so that the provider and the phone can drop the
/// repeat.
#[async_trait]
pub trait PushQueue: Send + Sync + 'static {
    async fn enqueue(&self, jobs: Vec<NewPushJob>) -> Result<()>;
    /// Takes up to `max` due jobs, oldest due first, leasing each for
    /// `lease`; no job is handed to two claimers while its lease runs.
    async fn claim(&self, max: u32, lease: Duration) -> Result<Vec<PushJob>>;
    /// The job is done (sent, or its token was dead): forget it.
    async fn complete(&self, id: &str) -> Result<()>;
    /// Makes the job due again at `at_ms` (backoff), noting why.
    async fn retry(&self, id: &str, at_ms: i64, reason: &str) -> Result<()>;
    /// Moves the job to the dead-letter list with `reason`.
    async fn dead_letter(&self, id: &str, reason: &str) -> Result<()>;
    /// The app's dead letters, newest first.
    async fn dead_letters(&self, app: &AppId, limit: u32) -> Result<Vec<DeadPushJob>>;
    async fn stats(&self) -> Result<QueueStats>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn dnd_wraps_over_midnight_in_the_users_time_zone() {
        // 22:00 to 07:00 in UTC+8.
        let dnd = Dnd {
            start_min: 22 * 60,
            end_min: 7 * 60,
            tz_offset_min: 480,
        };
        // 15:00 UTC = 23:00 local: quiet. 23:00 UTC = 07:00 local: not.
        assert!(dnd.quiet_at(15 * 60 * MIN));
        assert!(!dnd.quiet_at(23 * 60 * MIN));
        assert!(dnd.quiet_at(22 * 60 * MIN + 59 * MIN));
        // 04:00 UTC = 12:00 local.
        assert!(!dnd.quiet_at(4 * 60 * MIN));
    }

    #[test]
    fn dnd_within_a_day_and_empty() {
        let dnd = Dnd {
            start_min: 60,
            end_min: 120,
            tz_offset_min: -60,
        };
        assert!(dnd.quiet_at(150 * MIN));
        assert!(!dnd.quiet_at(30 * MIN));
        let none = Dnd {
            start_min: 60,
            end_min: 60,
            tz_offset_min: 0,
        };
        assert!(!none.quiet_at(60 * MIN));
    }
}
