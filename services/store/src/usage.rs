//! Per-app usage ([`UsageStore`]): what the tenant admin's dashboard and the
//! operator's platform dashboard chart — messages, logins, errors, pushes by
//! outcome, connections and daily active users.
//!
//! Counting happens in memory ([`UsageRecorder`]: one atomic increment per
//! event, nothing else on the hot path) and reaches the store every few
//! seconds as per-minute buckets written with an *upsert-add*, so any number
//! of nodes add into the same bucket without coordinating. Daily active
//! users are exact: one `(app, day, user)` row, written at most once per user
//! per day per node thanks to an in-memory seen-set (a repeat write is
//! ignored by the store).
//!
//! Connections are a gauge, which does not add across nodes or flushes; each
//! flush adds `connections × seconds since the last flush` instead
//! (`connection_seconds`), and a reader divides by the bucket's length to get
//! the average number of connections over it.
//!
//! Retention: [`USAGE_RETENTION_DAYS`] of minute buckets and active-user
//! rows; the recorder purges older ones about once an hour.
//!
//! Must not: know about frames, HTTP or which op counted what.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use confab_model::{AppId, UserId};
use dashmap::{DashMap, DashSet};

use crate::Result;

/// How long usage is kept (minute buckets and active users).
pub const USAGE_RETENTION_DAYS: i64 = 400;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// Counts of one bucket (or a sum of buckets).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageCounts {
    /// Messages accepted (stored or, for live rooms, delivered).
    pub messages: u64,
    /// Successful logins.
    pub logins: u64,
    /// Requests answered with an error (`ok:false`).
    pub errors: u64,
    /// Push notifications accepted by the vendor.
    pub push_sent: u64,
    /// Push attempts that will be retried.
    pub push_retried: u64,
    /// Push attempts refused for a dead device token.
    pub push_dead_token: u64,
    /// Push jobs given up (dead letters).
    pub push_dead_letter: u64,
    /// Logged-in connections × seconds (divide by a bucket's length for the
    /// average number of connections over it).
    pub connection_seconds: u64,
}

impl UsageCounts {
    pub fn add(&mut self, o: &UsageCounts) {
        self.messages += o.messages;
        self.logins += o.logins;
        self.errors += o.errors;
        self.push_sent += o.push_sent;
        self.push_retried += o.push_retried;
        self.push_dead_token += o.push_dead_token;
        self.push_dead_letter += o.push_dead_letter;
        self.connection_seconds += o.connection_seconds;
    }

    pub fn is_zero(&self) -> bool {
        *self == UsageCounts::default()
    }
}

/// What one flush adds to one app's minute bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDelta {
    pub app_id: AppId,
    /// The minute's start, milliseconds since the epoch (a multiple of 60 000).
    pub minute: i64,
    pub counts: UsageCounts,
}

#[async_trait]
pub trait UsageStore: Send + Sync + 'static {
    /// Adds each delta into its `(app, minute)` bucket (creating it).
    async fn add_usage(&self, deltas: &[UsageDelta]) -> Result<()>;
    /// Records that these users were active on `day` (days since the epoch,
    /// UTC); users already recorded that day are ignored.
    async fn mark_active(&self, day: i64, users: &[(AppId, UserId)]) -> Result<()>;
    /// The app's non-empty minute buckets with `from <= minute < to`
    /// (milliseconds), oldest first.
    async fn usage_minutes(
        &self,
        app: &AppId,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, UsageCounts)>>;
    /// Distinct active users of the app per day with `from_day <= day <
    /// to_day`, oldest first (days without any are left out).
    async fn daily_active_users(
        &self,
        app: &AppId,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<(i64, u64)>>;
    /// Deletes buckets older than `minute` and active users of days before
    /// `day`.
    async fn purge_usage(&self, minute: i64, day: i64) -> Result<()>;
}

/// The minute `ms` falls in (its start).
pub fn minute_of(ms: i64) -> i64 {
    ms.div_euclid(MINUTE_MS) * MINUTE_MS
}

/// The UTC day `ms` falls in (days since the epoch).
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

#[derive(Default)]
struct Counters {
    messages: AtomicU64,
    logins: AtomicU64,
    errors: AtomicU64,
    push_sent: AtomicU64,
    push_retried: AtomicU64,
    push_dead_token: AtomicU64,
    push_dead_letter: AtomicU64,
}

impl Counters {
    fn take(&self) -> UsageCounts {
        let t = |a: &AtomicU64| a.swap(0, Ordering::Relaxed);
        UsageCounts {
            messages: t(&self.messages),
            logins: t(&self.logins),
            errors: t(&self.errors),
            push_sent: t(&self.push_sent),
            push_retried: t(&self.push_retried),
            push_dead_token: t(&self.push_dead_token),
            push_dead_letter: t(&self.push_dead_letter),
            connection_seconds: 0,
        }
    }

    /// Gives counts back after a failed flush (the next one retries them).
    fn give_back(&self, c: &UsageCounts) {
        let a = |x: &AtomicU64, n: u64| x.fetch_add(n, Ordering::Relaxed);
        a(&self.messages, c.messages);
        a(&self.logins, c.logins);
        a(&self.errors, c.errors);
        a(&self.push_sent, c.push_sent);
        a(&self.push_retried, c.push_retried);
        a(&self.push_dead_token, c.push_dead_token);
        a(&self.push_dead_letter, c.push_dead_letter);
    }
}

/// A push job's outcome, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Sent,
    Retried,
    DeadToken,
    DeadLetter,
}

/// Where a node's logged-in connections per app come from (the gateway's
/// hub), sampled at each flush.
pub type ConnectionSource = Arc<dyn Fn() -> Vec<(AppId, u64)> + Send + Sync>;

/// A node's usage counters, in memory until the next [`flush`](Self::flush).
pub struct UsageRecorder {
    store: Arc<dyn UsageStore>,
    apps: DashMap<AppId, Arc<Counters>>,
    /// `(day, app, user)` already written by this node.
    seen: DashSet<(i64, AppId, UserId)>,
    /// Active users not yet written.
    pending_active: Mutex<Vec<(i64, AppId, UserId)>>,
    connections: RwLock<Option<ConnectionSource>>,
    /// When the last flush sampled connections (ms), for connection-seconds.
    last_sample: AtomicU64,
    last_purge: AtomicU64,
}

impl UsageRecorder {
    pub fn new(store: Arc<dyn UsageStore>) -> Self {
        Self {
            store,
            apps: DashMap::new(),
            seen: DashSet::new(),
            pending_active: Mutex::new(Vec::new()),
            connections: RwLock::new(None),
            last_sample: AtomicU64::new(confab_model::now_ms().max(0) as u64),
            last_purge: AtomicU64::new(0),
        }
    }

    pub fn store(&self) -> &Arc<dyn UsageStore> {
        &self.store
    }

    fn counters(&self, app: &AppId) -> Arc<Counters> {
        if let Some(c) = self.apps.get(app) {
            return c.clone();
        }
        self.apps.entry(app.clone()).or_default().clone()
    }

    pub fn message(&self, app: &AppId) {
        self.messages(app, 1);
    }

    pub fn messages(&self, app: &AppId, n: u64) {
        if let Some(c) = self.apps.get(app) {
            c.messages.fetch_add(n, Ordering::Relaxed);
            return;
        }
        self.counters(app).messages.fetch_add(n, Ordering::Relaxed);
    }

    pub fn error(&self, app: &AppId) {
        self.counters(app).errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn push(&self, app: &AppId, outcome: PushOutcome) {
        let c = self.counters(app);
        let counter = match outcome {
            PushOutcome::Sent => &c.push_sent,
            PushOutcome::Retried => &c.push_retried,
            PushOutcome::DeadToken => &c.push_dead_token,
            PushOutcome::DeadLetter => &c.push_dead_letter,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A login: counts it, and the user as active today (written once a day
    /// per node).
    pub fn login(&self, app: &AppId, user: &UserId) {
        self.counters(app).logins.fetch_add(1, Ordering::Relaxed);
        self.active(app, user);
    }

    /// The user did something today (sent, logged in).
    pub fn active(&self, app: &AppId, user: &UserId) {
        let day = day_of(confab_model::now_ms());
        let key = (day, app.clone(), user.clone());
        if self.seen.contains(&key) {
            return;
        }
        if self.seen.insert(key.clone())
            && let Ok(mut pending) = self.pending_active.lock()
        {
            pending.push(key);
        }
    }

    /// Samples connections from `source` at each flush.
    pub fn set_connection_source(&self, source: ConnectionSource) {
        if let Ok(mut c) = self.connections.write() {
            *c = Some(source);
        }
    }

    /// Writes what was counted since the last flush into the minute bucket
    /// of now. On a store error the counts are kept for the next flush.
    pub async fn flush(&self) -> Result<()> {
        let now = confab_model::now_ms();
        let minute = minute_of(now);
        let mut by_app: HashMap<AppId, UsageCounts> = HashMap::new();
        for entry in self.apps.iter() {
            let c = entry.value().take();
            if !c.is_zero() {
                by_app.insert(entry.key().clone(), c);
            }
        }
        let last = self.last_sample.swap(now.max(0) as u64, Ordering::Relaxed) as i64;
        let seconds = ((now - last).max(0) as u64).div_ceil(1000);
        let source = self.connections.read().ok().and_then(|c| c.clone());
        if let Some(source) = source {
            for (app, n) in source() {
                if n > 0 {
                    by_app.entry(app).or_default().connection_seconds += n * seconds;
                }
            }
        }
        let deltas: Vec<UsageDelta> = by_app
            .into_iter()
            .map(|(app_id, counts)| UsageDelta {
                app_id,
                minute,
                counts,
            })
            .collect();
        if !deltas.is_empty()
            && let Err(e) = self.store.add_usage(&deltas).await
        {
            for d in &deltas {
                self.counters(&d.app_id).give_back(&d.counts);
            }
            return Err(e);
        }
        let pending = match self.pending_active.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => Vec::new(),
        };
        let mut by_day: HashMap<i64, Vec<(AppId, UserId)>> = HashMap::new();
        for (day, app, user) in pending {
            by_day.entry(day).or_default().push((app, user));
        }
        for (day, users) in by_day {
            if let Err(e) = self.store.mark_active(day, &users).await {
                // Forget them as seen so that their next action retries.
                for (app, user) in users {
                    self.seen.remove(&(day, app, user));
                }
                return Err(e);
            }
        }
        // Yesterday's seen-set is of no more use.
        let today = day_of(now);
        self.seen.retain(|(day, _, _)| *day >= today);
        self.purge_now_and_then(now).await
    }

    async fn purge_now_and_then(&self, now: i64) -> Result<()> {
        const HOUR_MS: u64 = 3_600_000;
        let last = self.last_purge.load(Ordering::Relaxed);
        if (now.max(0) as u64).saturating_sub(last) < HOUR_MS {
            return Ok(());
        }
        self.last_purge.store(now.max(0) as u64, Ordering::Relaxed);
        let cutoff = now - USAGE_RETENTION_DAYS * DAY_MS;
        self.store
            .purge_usage(minute_of(cutoff), day_of(cutoff))
            .await
    }

    /// Flushes every `interval` until `shutdown` resolves, then once more
    /// (so that a clean stop loses nothing).
    pub async fn run(
        self: Arc<Self>,
        interval: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(interval.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.flush().await {
                tracing::warn!(error = %e, "flushing usage counters failed; retrying at the next flush");
            }
        }
        if let Err(e) = self.flush().await {
            tracing::warn!(error = %e, "flushing usage counters at shutdown failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::{SqliteOptions, SqliteStore};

    async fn recorder() -> (UsageRecorder, Arc<dyn UsageStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn UsageStore> = Arc::new(
            SqliteStore::open(&dir.path().join("u.db"), SqliteOptions::default())
                .await
                .expect("open"),
        );
        (UsageRecorder::new(store.clone()), store, dir)
    }

    fn id(s: &str) -> (AppId, UserId) {
        (
            AppId::parse(s).expect("app"),
            UserId::parse("alice").expect("user"),
        )
    }

    #[tokio::test]
    async fn a_flush_writes_the_counts_once_and_active_users_once_a_day() {
        let (r, store, _dir) = recorder().await;
        let (app, alice) = id("app1");
        r.message(&app);
        r.messages(&app, 2);
        r.login(&app, &alice);
        r.active(&app, &alice);
        r.push(&app, PushOutcome::DeadLetter);
        r.set_connection_source(Arc::new({
            let app = app.clone();
            move || vec![(app.clone(), 4)]
        }));
        r.flush().await.expect("flush");
        // Nothing new: a second flush adds no messages.
        r.flush().await.expect("flush again");
        let now = confab_model::now_ms();
        let got = store
            .usage_minutes(&app, now - 3_600_000, now + 60_000)
            .await
            .expect("read");
        let mut sum = UsageCounts::default();
        for (_, c) in &got {
            sum.add(c);
        }
        assert_eq!((sum.messages, sum.logins, sum.push_dead_letter), (3, 1, 1));
        let today = day_of(now);
        assert_eq!(
            store
                .daily_active_users(&app, today, today + 1)
                .await
                .expect("dau"),
            vec![(today, 1)]
        );
        // The seen-set keeps alice from being queued again today.
        r.login(&app, &alice);
        assert!(r.pending_active.lock().expect("lock").is_empty());
    }
}
