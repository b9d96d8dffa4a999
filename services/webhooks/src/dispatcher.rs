//! Delivers the outbox: claims due events with a lease (safe with several
//! nodes: a claim never returns an event another live claim holds), POSTs
//! each to its app's current URL with its current secret, and then removes
//! it (2xx), schedules a retry (exponential backoff with jitter), or
//! dead-letters it (too many attempts, or too old). The event keeps its id
//! on every retry and redelivery.
//!
//! Concurrency is bounded overall (`batch`) and per app (`per_app`); an
//! event whose app is at its bound is given back, due a moment later, so a
//! slow endpoint holds only its own app's slots.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use confab_config::ConfigView;
use confab_config::webhook::WebhookEvent as EventKind;
use confab_store::webhooks::{WebhookAttempt, WebhookEvent};
use rand::Rng;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::Webhooks;
use crate::client::Outcome;
use crate::limits::AppLimits;

#[derive(Debug, Clone)]
pub struct DispatchOptions {
    /// How often to look for due events when nothing wakes the dispatcher.
    pub poll: Duration,
    /// Most events claimed, and delivered concurrently, at once.
    pub batch: u32,
    /// How long a claim holds an event (longer than `request_timeout`).
    pub lease: Duration,
    /// Requests in flight per app.
    pub per_app: usize,
    /// Time allowed for one asynchronous request.
    pub request_timeout: Duration,
    /// Attempts before an event is dead-lettered.
    pub max_attempts: u32,
    /// Age after which an event is dead-lettered (api.md: 24 h).
    pub max_age: Duration,
    /// The first retry's delay; doubles each time, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(1),
            batch: 64,
            lease: Duration::from_secs(60),
            per_app: 8,
            request_timeout: Duration::from_secs(10),
            // 1 s doubling to 1 h: about 24 h at 35 attempts.
            max_attempts: 35,
            max_age: Duration::from_secs(24 * 3600),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(3600),
        }
    }
}

impl DispatchOptions {
    /// The delay before attempt `failed + 1`, after `failed` failures:
    /// `base * 2^(failed-1)` capped at `backoff_max`, with jitter down to half
    /// (so that events that failed together do not retry together).
    pub fn backoff(&self, failed: u32) -> Duration {
        let exp = failed.saturating_sub(1).min(30);
        let full = self
            .backoff_base
            .saturating_mul(1u32 << exp)
            .min(self.backoff_max);
        let ms = u64::try_from(full.as_millis()).unwrap_or(u64::MAX).max(1);
        Duration::from_millis(rand::rng().random_range(ms.div_ceil(2)..=ms))
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Runs the dispatcher until the returned task is aborted.
pub fn spawn(
    webhooks: Arc<Webhooks>,
    config: ConfigView,
    options: DispatchOptions,
) -> JoinHandle<()> {
    tokio::spawn(run(webhooks, config, options))
}

async fn run(webhooks: Arc<Webhooks>, config: ConfigView, options: DispatchOptions) {
    let slots = Arc::new(Semaphore::new(options.batch.max(1) as usize));
    let per_app = Arc::new(AppLimits::new(options.per_app));
    let mut depth_at = std::time::Instant::now() - Duration::from_secs(60);
    loop {
        if depth_at.elapsed() >= Duration::from_secs(5) {
            depth_at = std::time::Instant::now();
            if let Ok(n) = webhooks.outbox().pending().await {
                metrics::gauge!("confab_webhook_outbox_depth").set(n as f64);
            }
        }
        let free = slots.available_permits() as u32;
        let claimed = if free == 0 {
            None
        } else {
            match webhooks
                .outbox()
                .claim(confab_model::now_ms(), ms(options.lease), free)
                .await
            {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "claiming webhook events failed");
                    None
                }
            }
        };
        let got = claimed.as_ref().map_or(0, |c| c.events.len());
        if let Some(claimed) = claimed {
            let token: Arc<str> = Arc::from(claimed.token.as_str());
            for event in claimed.events {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    break;
                };
                let webhooks = webhooks.clone();
                let options = options.clone();
                let token = token.clone();
                let config = config.current();
                let per_app = per_app.clone();
                tokio::spawn(async move {
                    deliver(&webhooks, &config, &per_app, &options, &token, event).await;
                    drop(slot);
                });
            }
        }
        // A full batch: there may be more due now.
        if got as u32 >= free && free > 0 {
            continue;
        }
        tokio::select! {
            _ = webhooks.enqueued().notified() => {}
            _ = tokio::time::sleep(options.poll) => {}
        }
    }
}

async fn deliver(
    webhooks: &Webhooks,
    config: &confab_config::Compiled,
    per_app: &AppLimits,
    options: &DispatchOptions,
    token: &str,
    event: WebhookEvent,
) {
    let outbox = webhooks.outbox();
    let now = confab_model::now_ms();
    let attempt = |outcome: &str, status: Option<u16>, latency_ms: u32, error: Option<String>| {
        WebhookAttempt {
            app_id: event.app_id.clone(),
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            status_code: status,
            outcome: outcome.into(),
            latency_ms,
            error,
            at: confab_model::now_ms(),
        }
    };
    // The app's webhook as of now: a changed URL or secret applies to
    // retries too; a removed webhook (or event) ends the event.
    let hook = config
        .app(event.app_id.as_str())
        .and_then(|app| app.webhook.as_ref())
        .filter(|h| {
            EventKind::ALL
                .iter()
                .any(|k| k.as_str() == event.event_type && h.subscribes(*k))
        });
    let Some(hook) = hook else {
        let _ = outbox
            .complete(
                token,
                attempt(
                    "skipped",
                    None,
                    0,
                    Some("the app's webhook no longer subscribes to this event".into()),
                ),
            )
            .await;
        return;
    };
    let Some(_permit) = per_app.try_acquire(event.app_id.as_str()) else {
        let _ = outbox
            .release(token, &event.id, now + ms(Duration::from_millis(200)))
            .await;
        return;
    };
    let response = webhooks
        .client()
        .post(
            &hook.url,
            &hook.secret,
            &event.id,
            Bytes::from(event.payload.clone()),
            options.request_timeout,
        )
        .await;
    let latency_ms = response.latency_ms();
    let result = if response.outcome == Outcome::Ok {
        crate::record(&event.event_type, "delivered", response.latency);
        outbox
            .complete(
                token,
                attempt("delivered", response.status, latency_ms, None),
            )
            .await
    } else {
        let failed = event.attempts + 1;
        let delay = options.backoff(failed);
        let too_old = now.saturating_sub(event.created_at) + ms(delay) > ms(options.max_age);
        let outcome = match response.outcome {
            Outcome::Timeout => "timeout",
            _ => "failed",
        };
        crate::record(&event.event_type, outcome, response.latency);
        if failed >= options.max_attempts || too_old {
            tracing::warn!(app = %event.app_id, event_id = %event.id, attempts = failed, "webhook event dead-lettered");
            crate::record(&event.event_type, "dead_lettered", Duration::ZERO);
            outbox
                .dead_letter(
                    token,
                    attempt("dead_lettered", response.status, latency_ms, response.error),
                )
                .await
        } else {
            outbox
                .retry(
                    token,
                    confab_model::now_ms() + ms(delay),
                    attempt(outcome, response.status, latency_ms, response.error),
                )
                .await
        }
    };
    if let Err(e) = result {
        // The lease runs out and another claim retries it.
        tracing::warn!(error = %e, event_id = %event.id, "recording a webhook delivery failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let o = DispatchOptions {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1000),
            ..Default::default()
        };
        for _ in 0..100 {
            let d1 = o.backoff(1).as_millis();
            let d3 = o.backoff(3).as_millis();
            let d10 = o.backoff(10).as_millis();
            assert!((50..=100).contains(&d1), "{d1}");
            assert!((200..=400).contains(&d3), "{d3}");
            assert!((500..=1000).contains(&d10), "{d10}");
        }
        assert!(o.backoff(u32::MAX) <= Duration::from_millis(1000));
    }
}
