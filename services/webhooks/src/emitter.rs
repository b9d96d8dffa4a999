//! The bounded queue between the hot path and the outbox: `event` and
//! `attempt` never wait (a full queue drops and counts, a decision rather
//! than a slow send); one task writes whatever is queued in batches.

use std::sync::Arc;
use std::time::Duration;

use confab_store::WebhookOutbox;
use confab_store::webhooks::{NewWebhookEvent, WebhookAttempt};
use tokio::sync::{Notify, mpsc};

/// Most records written in one store call.
const BATCH: usize = 256;
/// Tries of one batch before it is dropped (the store is down).
const TRIES: u32 = 5;

enum Item {
    Event(NewWebhookEvent),
    Attempt(WebhookAttempt),
}

pub(crate) struct Emitter {
    tx: mpsc::Sender<Item>,
}

impl Emitter {
    pub(crate) fn spawn(
        outbox: Arc<dyn WebhookOutbox>,
        capacity: usize,
        woken: Arc<Notify>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        tokio::spawn(write_loop(outbox, rx, woken));
        Self { tx }
    }

    fn push(&self, item: Item, what: &'static str) {
        if self.tx.try_send(item).is_err() {
            metrics::counter!("confab_webhook_dropped_total", "what" => what).increment(1);
            tracing::warn!(what, "webhook queue full or closed: dropped");
        }
    }

    pub(crate) fn event(&self, event: NewWebhookEvent) {
        self.push(Item::Event(event), "event");
    }

    pub(crate) fn attempt(&self, attempt: WebhookAttempt) {
        self.push(Item::Attempt(attempt), "attempt");
    }
}

async fn write_loop(
    outbox: Arc<dyn WebhookOutbox>,
    mut rx: mpsc::Receiver<Item>,
    woken: Arc<Notify>,
) {
    let mut items = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut items, BATCH).await > 0 {
        let mut events = Vec::new();
        let mut attempts = Vec::new();
        for item in items.drain(..) {
            match item {
                Item::Event(e) => events.push(e),
                Item::Attempt(a) => attempts.push(a),
            }
        }
        if !events.is_empty() {
            let n = events.len();
            if write_with_retries(|| outbox.enqueue(events.clone())).await {
                woken.notify_waiters();
            } else {
                metrics::counter!("confab_webhook_dropped_total", "what" => "event")
                    .increment(n as u64);
            }
        }
        if !attempts.is_empty() {
            let n = attempts.len();
            if !write_with_retries(|| outbox.record_attempts(attempts.clone())).await {
                metrics::counter!("confab_webhook_dropped_total", "what" => "attempt")
                    .increment(n as u64);
            }
        }
    }
}

async fn write_with_retries<F, Fut>(mut write: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = confab_store::Result<()>>,
{
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=TRIES {
        match write().await {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(error = %e, attempt, "writing webhook records failed");
                if attempt < TRIES {
                    tokio::time::sleep(delay).await;
                    delay *= 4;
                }
            }
        }
    }
    false
}
