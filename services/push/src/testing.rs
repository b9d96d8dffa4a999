//! An in-process [`Provider`] for tests: records every send and answers
//! from a script (then a default), optionally after a delay. Used by the
//! worker's tests, the logic layer's and the end-to-end suite.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::provider::{Outcome, Provider, PushMessage, Vendor};

pub struct FakeProvider {
    vendor: Vendor,
    script: Mutex<VecDeque<Outcome>>,
    default: Outcome,
    delay: Duration,
    sent: Mutex<Vec<(Instant, PushMessage)>>,
}

impl FakeProvider {
    /// Answers `Sent` to everything.
    pub fn new(vendor: Vendor) -> Self {
        Self {
            vendor,
            script: Mutex::new(VecDeque::new()),
            default: Outcome::Sent,
            delay: Duration::ZERO,
            sent: Mutex::new(vec![]),
        }
    }

    /// Answers these first, in order.
    pub fn then(self, outcomes: impl IntoIterator<Item = Outcome>) -> Self {
        self.script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(outcomes);
        self
    }

    /// Answers this once the script is used up.
    pub fn otherwise(mut self, outcome: Outcome) -> Self {
        self.default = outcome;
        self
    }

    /// Takes this long for every send (after recording it).
    pub fn slow(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Every message received, with when.
    pub fn received(&self) -> Vec<(Instant, PushMessage)> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn received_ids(&self) -> Vec<String> {
        self.received().into_iter().map(|(_, m)| m.id).collect()
    }
}

#[async_trait::async_trait]
impl Provider for FakeProvider {
    fn vendor(&self) -> Vendor {
        self.vendor
    }

    async fn send(&self, message: &PushMessage) -> Outcome {
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((Instant::now(), message.clone()));
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
            .unwrap_or_else(|| self.default.clone())
    }
}
