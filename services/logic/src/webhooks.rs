//! Where the logic layer meets the tenant's webhook (`confab-webhooks`):
//! the synchronous before_send check in the send path, and the asynchronous
//! events it emits (after_send, user_online, user_offline, group_event).
//!
//! Every function here reads the app's webhook from the current config, so
//! a change applies within seconds; an app without a webhook (or without the
//! event) costs one config lookup and nothing else. Emitting never waits
//! and never fails the operation that emits.

use confab_config::webhook::WebhookEvent;
use confab_model::{Peer, StoredMessage};
use confab_webhooks::Decision;
use serde_json::json;

use crate::error::{LogicError, Result};
use crate::{Logic, Session};

/// The tenant's before_send webhook refused the message (its own code is
/// in the message).
pub const REJECTED_BY_WEBHOOK: &str = "rejected_by_webhook";
/// The before_send webhook did not answer usably and the app fails closed.
pub const WEBHOOK_UNAVAILABLE: &str = "webhook_unavailable";

/// Runs the app's before_send webhook on a message about to be stored.
/// Returns the body to store (the client's, or the tenant's modification,
/// moderated like a client's) and whether words were masked.
pub(crate) async fn before_send(
    logic: &Logic,
    s: &Session,
    to: &Peer,
    client_msg_id: &str,
    body: (String, bool),
    max_body_bytes: usize,
) -> Result<(String, bool)> {
    let config = logic.config.current();
    let Some(hook) = config
        .app(s.app_id.as_str())
        .and_then(|a| a.webhook.as_ref())
        .filter(|h| h.subscribes(WebhookEvent::BeforeSend))
    else {
        return Ok(body);
    };
    let data = json!({
        "from": s.user_id.as_str(),
        "to": confab_webhooks::event::peer(to),
        "body": confab_webhooks::event::body_value(&body.0),
        "client_msg_id": client_msg_id,
    });
    match logic
        .webhooks
        .before_send(&s.app_id, hook, data, max_body_bytes)
        .await
    {
        Decision::Allow => Ok(body),
        Decision::Reject { code, message } => Err(LogicError::new(
            REJECTED_BY_WEBHOOK,
            if message.is_empty() {
                format!("the app's webhook rejected the message ({code})")
            } else {
                format!("the app's webhook rejected the message ({code}): {message}")
            },
        )),
        Decision::Modify(text) => {
            let parsed = confab_model::Body::parse(&text, max_body_bytes)
                .map_err(|e| LogicError::bad_request(e.to_string()))?;
            let (text, masked) = crate::handlers::moderate(logic, s, &parsed, text)?;
            Ok((text, masked || body.1))
        }
        Decision::Unavailable(reason) => Err(LogicError::new(
            WEBHOOK_UNAVAILABLE,
            format!("the app's before_send webhook is unavailable: {reason}"),
        )),
    }
}

fn emit(
    logic: &Logic,
    app: &confab_model::AppId,
    event: WebhookEvent,
    data: impl FnOnce() -> serde_json::Value,
) {
    let config = logic.config.current();
    let hook = config.app(app.as_str()).and_then(|a| a.webhook.as_ref());
    if hook.is_some_and(|h| h.subscribes(event)) {
        logic.webhooks.emit(app, hook, event, data());
    }
}

/// A message was stored (not for a duplicate).
pub(crate) fn after_send(logic: &Logic, s: &Session, m: &StoredMessage) {
    emit(
        logic,
        &s.app_id,
        WebhookEvent::AfterSend,
        || json!({"message": confab_webhooks::event::message(m)}),
    );
}

/// A group event was stored.
pub(crate) fn group_event(
    logic: &Logic,
    app: &confab_model::AppId,
    actor: &confab_model::UserId,
    m: &StoredMessage,
    kind: &str,
) {
    emit(logic, app, WebhookEvent::GroupEvent, || {
        json!({
            "event": kind,
            "actor": actor.as_str(),
            "group_id": m.to.id.as_ref(),
            "message": confab_webhooks::event::message(m),
        })
    });
}

fn session_data(s: &Session) -> serde_json::Value {
    json!({
        "user_id": s.user_id.as_str(),
        "device_id": s.device_id,
        "platform": s.platform.as_str(),
        "session_id": s.session_id,
    })
}

/// A session logged in.
pub(crate) fn user_online(logic: &Logic, s: &Session) {
    emit(logic, &s.app_id, WebhookEvent::UserOnline, || {
        session_data(s)
    });
}

/// A session ended (logout or disconnect).
pub(crate) fn user_offline(logic: &Logic, s: &Session, reason: &str) {
    emit(logic, &s.app_id, WebhookEvent::UserOffline, || {
        let mut data = session_data(s);
        data["reason"] = reason.into();
        data
    });
}
