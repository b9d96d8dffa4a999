//! The push worker: drains the durable queue through the providers.
//!
//! Each round claims a batch (leased, so a crashed worker's jobs come back
//! to whoever claims next, with the same notification id), sends up to
//! `concurrency` at once, and settles every job by what its provider said:
//!
//! | outcome | the job |
//! |---|---|
//! | `Sent` | completed |
//! | `Retry { after }` | due again after `after` (Retry-After), else after an exponential backoff with jitter |
//! | `DeadToken` | the token is removed from every device that had it; completed |
//! | `Failed`, too many attempts, too old, no credentials | dead-lettered with the reason |
//!
//! The worker never holds a job it is not working on, and a job it fails to
//! settle (the store is down) simply comes back when its lease runs out:
//! delivery is at least once, never lost.

use std::sync::Arc;
use std::time::Duration;

use confab_store::{DeviceStore, PushJob, PushQueue, StoreError};
use futures_util::StreamExt;
use tracing::Instrument;

use crate::provider::{Outcome, PushMessage, Vendor};
use crate::source::{Lookup, ProviderSource};

/// The worker's errors (transient: the job is tried again later).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("credentials unavailable: {0}")]
    Credentials(String),
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Sends in flight at once.
    pub concurrency: usize,
    /// Jobs claimed per round.
    pub batch: u32,
    /// How long a claimed job is ours; must exceed a round's duration.
    pub lease: Duration,
    /// Attempts before a retried job is dead-lettered.
    pub max_attempts: u32,
    /// A job older than this is dead-lettered instead of sent (a late
    /// "new message" notification is worse than none).
    pub max_age: Duration,
    /// First retry delay; doubles each attempt up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Wait between polls of an empty queue.
    pub idle_poll: Duration,
    /// Longest a provider may take for one send before it counts as a
    /// timeout (retried).
    pub send_timeout: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 64,
            batch: 256,
            lease: Duration::from_secs(60),
            max_attempts: 8,
            max_age: Duration::from_secs(24 * 3600),
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            idle_poll: Duration::from_millis(500),
            send_timeout: Duration::from_secs(20),
        }
    }
}

/// How a job was settled (the `outcome` label of `confab_push_jobs_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Sent,
    Retried,
    DeadToken,
    DeadLettered,
}

impl Settled {
    /// The outcome as the usage counters file it.
    pub fn usage_outcome(self) -> confab_store::PushOutcome {
        match self {
            Settled::Sent => confab_store::PushOutcome::Sent,
            Settled::Retried => confab_store::PushOutcome::Retried,
            Settled::DeadToken => confab_store::PushOutcome::DeadToken,
            Settled::DeadLettered => confab_store::PushOutcome::DeadLetter,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Settled::Sent => "sent",
            Settled::Retried => "retry",
            Settled::DeadToken => "dead_token",
            Settled::DeadLettered => "dead_letter",
        }
    }
}

pub struct Worker {
    queue: Arc<dyn PushQueue>,
    devices: Arc<dyn DeviceStore>,
    providers: Arc<dyn ProviderSource>,
    config: WorkerConfig,
    /// Per-app push outcomes for the usage dashboards (none: not counted).
    usage: Option<Arc<confab_store::UsageRecorder>>,
}

impl Worker {
    pub fn new(
        queue: Arc<dyn PushQueue>,
        devices: Arc<dyn DeviceStore>,
        providers: Arc<dyn ProviderSource>,
        config: WorkerConfig,
    ) -> Self {
        Self {
            queue,
            devices,
            providers,
            config,
            usage: None,
        }
    }

    /// Counts each settled job's outcome per app in `usage`.
    pub fn with_usage(mut self, usage: Arc<confab_store::UsageRecorder>) -> Self {
        self.usage = Some(usage);
        self
    }

    /// Runs until `shutdown` resolves (the batch in hand is finished first;
    /// anything not settled comes back after its lease).
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut last_stats = tokio::time::Instant::now() - Duration::from_secs(60);
        loop {
            if last_stats.elapsed() >= Duration::from_secs(5) {
                self.record_queue_stats().await;
                last_stats = tokio::time::Instant::now();
            }
            let worked = match self.run_once().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming push jobs failed");
                    0
                }
            };
            if worked == 0 {
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(self.config.idle_poll) => {}
                }
            } else {
                // Between busy rounds: stop if asked, without waiting.
                tokio::select! {
                    biased;
                    _ = &mut shutdown => return,
                    _ = std::future::ready(()) => {}
                }
            }
        }
    }

    /// Publishes the queue's depth and oldest job's age.
    pub async fn record_queue_stats(&self) {
        match self.queue.stats().await {
            Ok(s) => {
                metrics::gauge!("confab_push_queue_depth").set(s.depth as f64);
                let age = s
                    .oldest_created_at
                    .map_or(0.0, |t| (confab_model::now_ms() - t).max(0) as f64 / 1000.0);
                metrics::gauge!("confab_push_queue_oldest_seconds").set(age);
            }
            Err(e) => tracing::warn!(error = %e, "reading push queue stats failed"),
        }
    }

    /// Claims one batch and settles every job in it; returns how many.
    pub async fn run_once(&self) -> Result<usize, WorkerError> {
        let jobs = self
            .queue
            .claim(self.config.batch, self.config.lease)
            .await?;
        let n = jobs.len();
        futures_util::stream::iter(jobs)
            .for_each_concurrent(self.config.concurrency.max(1), |job| async move {
                self.process(job).await;
            })
            .await;
        Ok(n)
    }

    /// Sends one job and settles it; returns how (or `None` if settling
    /// failed and the lease will bring it back).
    pub async fn process(&self, job: PushJob) -> Option<Settled> {
        let vendor_label = Vendor::parse(&job.vendor).map_or("unknown", Vendor::as_str);
        let span = tracing::info_span!("push_job", app = %job.app_id, user = %job.user_id, vendor = vendor_label, job = %job.id);
        let result = self.settle(&job).instrument(span).await;
        match result {
            Ok(settled) => {
                metrics::counter!("confab_push_jobs_total", "vendor" => vendor_label, "outcome" => settled.as_str()).increment(1);
                if let Some(usage) = &self.usage {
                    usage.push(&job.app_id, settled.usage_outcome());
                }
                Some(settled)
            }
            Err(e) => {
                tracing::warn!(job = %job.id, error = %e, "settling a push job failed; it comes back after its lease");
                None
            }
        }
    }

    async fn settle(&self, job: &PushJob) -> Result<Settled, WorkerError> {
        let Some(vendor) = Vendor::parse(&job.vendor) else {
            return self
                .dead(job, &format!("unknown vendor {:?}", job.vendor))
                .await;
        };
        let message: PushMessage = match serde_json::from_str(&job.payload) {
            Ok(m) => m,
            Err(e) => return self.dead(job, &format!("corrupt payload: {e}")).await,
        };
        let age_ms = confab_model::now_ms() - job.created_at;
        if age_ms > self.config.max_age.as_millis() as i64 {
            return self
                .dead(job, &format!("expired: queued {} s ago", age_ms / 1000))
                .await;
        }
        let provider = match self.providers.provider(&job.app_id, vendor).await {
            Ok(Lookup::Ready(p)) => p,
            Ok(Lookup::NoCredentials) => {
                return self
                    .dead(
                        job,
                        &format!("no {vendor} credentials uploaded for app {}", job.app_id),
                    )
                    .await;
            }
            Ok(Lookup::Invalid(why)) => {
                return self
                    .dead(
                        job,
                        &format!("the app's {vendor} credentials do not work: {why}"),
                    )
                    .await;
            }
            Err(e) => {
                let reason = e.to_string();
                return self.retry(job, None, &reason).await;
            }
        };
        let started = std::time::Instant::now();
        let outcome =
            match tokio::time::timeout(self.config.send_timeout, provider.send(&message)).await {
                Ok(o) => o,
                Err(_) => Outcome::Retry {
                    after: None,
                    reason: format!("no answer within {:?}", self.config.send_timeout),
                },
            };
        metrics::histogram!("confab_push_provider_seconds", "vendor" => vendor.as_str())
            .record(started.elapsed().as_secs_f64());
        match outcome {
            Outcome::Sent => {
                self.queue.complete(&job.id).await?;
                Ok(Settled::Sent)
            }
            Outcome::Retry { after, reason } => self.retry(job, after, &reason).await,
            Outcome::DeadToken { reason } => {
                let removed = self
                    .devices
                    .delete_token(&job.app_id, vendor.as_str(), &message.token)
                    .await?;
                tracing::info!(removed, reason = %reason, "provider says the token is dead; device forgotten");
                self.queue.complete(&job.id).await?;
                Ok(Settled::DeadToken)
            }
            Outcome::Failed { reason } => self.dead(job, &reason).await,
        }
    }

    async fn retry(
        &self,
        job: &PushJob,
        after: Option<Duration>,
        reason: &str,
    ) -> Result<Settled, WorkerError> {
        if job.attempts >= self.config.max_attempts {
            return self
                .dead(
                    job,
                    &format!("gave up after {} attempts: {reason}", job.attempts),
                )
                .await;
        }
        let delay = retry_delay(&self.config, job.attempts, after);
        let at = confab_model::now_ms().saturating_add(delay.as_millis() as i64);
        self.queue.retry(&job.id, at, reason).await?;
        Ok(Settled::Retried)
    }

    async fn dead(&self, job: &PushJob, reason: &str) -> Result<Settled, WorkerError> {
        tracing::warn!(reason, "push job dead-lettered");
        self.queue.dead_letter(&job.id, reason).await?;
        Ok(Settled::DeadLettered)
    }
}

/// When to try again after attempt `attempts`: exactly what the provider
/// asked for (`Retry-After`), never sooner; otherwise `base · 2^(n-1)`
/// capped at `max_backoff`, with jitter (half to all of it) so that a burst
/// of failures does not come back as a burst.
pub fn retry_delay(config: &WorkerConfig, attempts: u32, after: Option<Duration>) -> Duration {
    if let Some(after) = after {
        // A little jitter on top, never below what was asked.
        let extra = after.mul_f64(rand::random::<f64>() * 0.1);
        return after + extra;
    }
    let exp = config
        .base_backoff
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(20))
        .min(config.max_backoff);
    exp.mul_f64(0.5 + rand::random::<f64>() * 0.5)
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod scenarios;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let c = WorkerConfig::default();
        for _ in 0..50 {
            let d1 = retry_delay(&c, 1, None);
            assert!(d1 >= Duration::from_millis(500) && d1 <= Duration::from_secs(1));
            let d3 = retry_delay(&c, 3, None);
            assert!(d3 >= Duration::from_secs(2) && d3 <= Duration::from_secs(4));
            assert!(retry_delay(&c, 30, None) <= c.max_backoff);
        }
    }

    #[test]
    fn retry_after_is_never_undercut() {
        let c = WorkerConfig::default();
        for _ in 0..50 {
            let d = retry_delay(&c, 1, Some(Duration::from_secs(30)));
            assert!(d >= Duration::from_secs(30) && d <= Duration::from_secs(33));
        }
    }
}
