//! Webhooks: what Confab tells a tenant's backend, and asks it.
//!
//! - [`sign`]: the `Confab-Signature` header (HMAC-SHA256 over the raw body).
//! - [`client`]: one signed POST and its outcome.
//! - [`limits`]: bounded concurrency per app, so that a slow endpoint never
//!   slows another app.
//! - [`Webhooks::before_send`]: the synchronous call in the send path; the
//!   tenant allows, rejects or modifies the message; a timeout, an error or a
//!   full bound applies the app's fail mode.
//! - [`Webhooks::emit`]: asynchronous events (after_send, user_online,
//!   user_offline, group_event) go to the durable outbox through a bounded
//!   queue and a batching writer task: emitting never waits and never fails
//!   the caller's operation.
//! - [`dispatcher`]: claims due events from the outbox with a lease,
//!   delivers them, retries with exponential backoff and jitter, and
//!   dead-letters them after the limit.
//!
//! This crate does not know what a message is beyond its JSON, and never
//! decides whether a client's request is valid: the logic layer does.

pub mod client;
pub mod dispatcher;
mod emitter;
pub mod event;
pub mod limits;
pub mod sign;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use confab_config::webhook::{FailMode, WebhookConfig, WebhookEvent};
use confab_model::{AppId, Body};
use confab_store::WebhookOutbox;
use confab_store::webhooks::WebhookAttempt;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Notify;

pub use client::{Client, Outcome, Response};
pub use dispatcher::DispatchOptions;

/// Longest tenant error code passed on to a client.
pub const MAX_REJECT_CODE: usize = 64;
/// Longest tenant error message passed on to a client.
pub const MAX_REJECT_MESSAGE: usize = 256;

/// Settings of the synchronous side.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// before_send requests in flight per app; beyond it the fail mode
    /// applies at once.
    pub before_send_per_app: usize,
    /// Events and attempt records queued for the outbox writer; beyond it
    /// they are dropped (counted in `confab_webhook_dropped_total`).
    pub queue: usize,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        Self {
            before_send_per_app: 32,
            queue: 10_000,
        }
    }
}

/// What before_send decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send as is (also: the endpoint failed and the app fails open).
    Allow,
    /// The tenant refused the message with its code and message.
    Reject { code: String, message: String },
    /// Send this body instead (already checked like a client body).
    Modify(String),
    /// The endpoint failed, timed out or was busy, and the app fails closed.
    Unavailable(String),
}

/// The tenant's answer to before_send.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
enum Answer {
    Allow,
    Reject {
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        message: Option<String>,
    },
    Modify {
        body: Value,
    },
}

/// Reads a tenant's before_send answer (the body of a 2xx reply): `allow`,
/// `reject` (code and message cleaned of control characters and cut to
/// length) or `modify` (the new body checked like a client's against
/// `max_body_bytes`). Pure, so the fuzz target (`fuzz/`) can feed it any
/// bytes an endpoint might send; `Err` is the reason the answer is invalid,
/// which the caller treats as a failed call.
pub fn parse_before_send_answer(bytes: &[u8], max_body_bytes: usize) -> Result<Decision, String> {
    let answer: Answer = serde_json::from_slice(bytes).map_err(|e| {
        format!("the answer is not {{\"action\":\"allow\"|\"reject\"|\"modify\",...}}: {e}")
    })?;
    Ok(match answer {
        Answer::Allow => Decision::Allow,
        Answer::Reject { code, message } => Decision::Reject {
            code: clean(code.as_deref().unwrap_or("rejected"), MAX_REJECT_CODE),
            message: clean(message.as_deref().unwrap_or_default(), MAX_REJECT_MESSAGE),
        },
        Answer::Modify { body } => {
            let text = body.to_string();
            Body::parse(&text, max_body_bytes)
                .map_err(|e| format!("the modified body is invalid: {e}"))?;
            Decision::Modify(text)
        }
    })
}

/// The result of a test request.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub event_id: String,
    pub response: Response,
}

/// The webhook machinery of one node (cheap to share).
pub struct Webhooks {
    client: Client,
    before_send_limits: limits::AppLimits,
    outbox: Arc<dyn WebhookOutbox>,
    emitter: emitter::Emitter,
    /// Woken when events were written to the outbox (the dispatcher
    /// starts at once instead of at its next poll).
    enqueued: Arc<Notify>,
}

/// Keeps the printable part of a tenant-given string, at most `max` chars.
fn clean(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

fn record(event: &str, outcome: &str, latency: Duration) {
    metrics::counter!("confab_webhook_requests_total", "event" => event.to_owned(), "outcome" => outcome.to_owned())
        .increment(1);
    metrics::histogram!("confab_webhook_seconds", "event" => event.to_owned())
        .record(latency.as_secs_f64());
}

impl Webhooks {
    /// Must be called inside a Tokio runtime (it starts the outbox writer).
    pub fn new(outbox: Arc<dyn WebhookOutbox>, options: WebhookOptions) -> Self {
        let enqueued = Arc::new(Notify::new());
        Self {
            client: Client::new(),
            before_send_limits: limits::AppLimits::new(options.before_send_per_app),
            emitter: emitter::Emitter::spawn(outbox.clone(), options.queue, enqueued.clone()),
            outbox,
            enqueued,
        }
    }

    pub fn outbox(&self) -> &Arc<dyn WebhookOutbox> {
        &self.outbox
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn enqueued(&self) -> &Arc<Notify> {
        &self.enqueued
    }

    /// Queues an attempt record for the delivery list (never waits).
    pub fn record_attempt(&self, attempt: WebhookAttempt) {
        self.emitter.attempt(attempt);
    }

    /// Queues an asynchronous event if the app's webhook subscribes to it
    /// (never waits, never fails; see [`WebhookOptions::queue`]).
    pub fn emit(
        &self,
        app: &AppId,
        hook: Option<&WebhookConfig>,
        event: WebhookEvent,
        data: Value,
    ) {
        if !hook.is_some_and(|h| h.subscribes(event)) {
            return;
        }
        let id = event::new_id();
        let created_at = confab_model::now_ms();
        let payload = event::envelope(&id, event.as_str(), app.as_str(), created_at, data);
        self.emitter.event(confab_store::webhooks::NewWebhookEvent {
            id,
            app_id: app.clone(),
            event_type: event.as_str().to_owned(),
            payload,
            created_at,
        });
    }

    /// Asks the app's endpoint about a message about to be sent (`data`:
    /// from, to, body, client_msg_id). A modified body is checked like a
    /// client's (`max_body_bytes`); an invalid one counts as a failed call.
    pub async fn before_send(
        &self,
        app: &AppId,
        hook: &WebhookConfig,
        data: Value,
        max_body_bytes: usize,
    ) -> Decision {
        const EVENT: &str = "before_send";
        let id = event::new_id();
        let started = std::time::Instant::now();
        let fail = |reason: String, outcome: &str, response: Option<&Response>| {
            let latency = response.map_or(started.elapsed(), |r| r.latency);
            record(EVENT, outcome, latency);
            self.record_attempt(WebhookAttempt {
                app_id: app.clone(),
                event_id: id.clone(),
                event_type: EVENT.into(),
                status_code: response.and_then(|r| r.status),
                outcome: outcome.into(),
                latency_ms: u32::try_from(latency.as_millis()).unwrap_or(u32::MAX),
                error: Some(reason.clone()),
                at: confab_model::now_ms(),
            });
            match hook.fail_mode {
                FailMode::Open => Decision::Allow,
                FailMode::Closed => Decision::Unavailable(reason),
            }
        };
        let Some(_permit) = self.before_send_limits.try_acquire(app.as_str()) else {
            return fail(
                "too many before_send requests in flight for this app".into(),
                "busy",
                None,
            );
        };
        let body = Bytes::from(event::envelope(
            &id,
            EVENT,
            app.as_str(),
            confab_model::now_ms(),
            data,
        ));
        let timeout = Duration::from_millis(u64::from(hook.timeout_ms));
        let response = self
            .client
            .post(&hook.url, &hook.secret, &id, body, timeout)
            .await;
        if response.outcome != Outcome::Ok {
            let reason = response.error.clone().unwrap_or_default();
            let outcome = match response.outcome {
                Outcome::Timeout => "timeout",
                _ => "failed",
            };
            return fail(reason, outcome, Some(&response));
        }
        let decision = match parse_before_send_answer(
            response.body.as_deref().unwrap_or_default(),
            max_body_bytes,
        ) {
            Ok(d) => d,
            Err(reason) => return fail(reason, "invalid_response", Some(&response)),
        };
        let outcome = match &decision {
            Decision::Allow => "allow",
            Decision::Reject { .. } => "reject",
            Decision::Modify(_) => "modify",
            // Not produced by the parser.
            Decision::Unavailable(_) => "failed",
        };
        record(EVENT, outcome, response.latency);
        self.record_attempt(WebhookAttempt {
            app_id: app.clone(),
            event_id: id,
            event_type: EVENT.into(),
            status_code: response.status,
            outcome: outcome.into(),
            latency_ms: response.latency_ms(),
            error: None,
            at: confab_model::now_ms(),
        });
        decision
    }

    /// Sends a signed `test` event now and reports what happened.
    pub async fn test(&self, app: &AppId, hook: &WebhookConfig, timeout: Duration) -> TestResult {
        let id = event::new_id();
        let body = Bytes::from(event::envelope(
            &id,
            event::TEST,
            app.as_str(),
            confab_model::now_ms(),
            serde_json::json!({"message": "A test event from Confab."}),
        ));
        let response = self
            .client
            .post(&hook.url, &hook.secret, &id, body, timeout)
            .await;
        let outcome = if response.outcome == Outcome::Ok {
            "delivered"
        } else {
            response.outcome.as_str()
        };
        record(event::TEST, outcome, response.latency);
        self.record_attempt(WebhookAttempt {
            app_id: app.clone(),
            event_id: id.clone(),
            event_type: event::TEST.into(),
            status_code: response.status,
            outcome: outcome.into(),
            latency_ms: response.latency_ms(),
            error: response.error.clone(),
            at: confab_model::now_ms(),
        });
        TestResult {
            event_id: id,
            response,
        }
    }
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn before_send_answers_parse_and_bad_ones_are_errors_not_panics() {
        assert_eq!(
            parse_before_send_answer(br#"{"action":"allow"}"#, 1024),
            Ok(Decision::Allow)
        );
        assert_eq!(
            parse_before_send_answer(
                br#"{"action":"reject","code":"spam\u0000","message":"no"}"#,
                1024
            ),
            Ok(Decision::Reject {
                code: "spam".into(),
                message: "no".into()
            })
        );
        match parse_before_send_answer(
            br#"{"action":"modify","body":{"type":"text","text":"hi"}}"#,
            1024,
        ) {
            Ok(Decision::Modify(body)) => assert_eq!(
                serde_json::from_str::<Value>(&body).expect("JSON"),
                serde_json::json!({"type": "text", "text": "hi"})
            ),
            other => panic!("expected a modify, got {other:?}"),
        }
        for bad in [
            &b""[..],
            b"\xff",
            br#"{"action":"explode"}"#,
            br#"{"action":"modify","body":"not an object"}"#,
            br#"{"action":"modify","body":{"type":"text","text":"far too long for the limit"}}"#,
            &[b'['; 10_000][..],
        ] {
            assert!(parse_before_send_answer(bad, 16).is_err(), "{bad:?}");
        }
    }
}
