//! Recall by the app's backend (REST `POST /v1/messages/{msg_id}/recall`).
//!
//! The wire `recall` (handlers.rs) is a user recalling their own message
//! within the app's recall window. The backend is the app itself: it may
//! recall any message of its app at any age (moderation, takedowns), so
//! there is no sender check and no window here. What happens after is the
//! same as the wire op: the store drops the content (and clears the inbox
//! rings), and every participant's every session gets `recalled`.

use std::sync::Arc;

use confab_model::{AppId, StoredMessage, UserId};
use confab_proto::{Frame, ops};

use crate::error::{LogicError, Result};
use crate::{Logic, groups};

impl Logic {
    /// Recalls the app's message `msg_id`; the message as it now is
    /// (`recalled`, body cleared). `not_found` for an unknown id or another
    /// app's. Repeating it is harmless: the store call is idempotent and the
    /// pushes are at-least-once anyway.
    pub async fn recall_as_app(&self, app: &AppId, msg_id: &str) -> Result<StoredMessage> {
        let m = self
            .stores
            .messages
            .get_by_id(app, msg_id)
            .await?
            .ok_or_else(|| LogicError::not_found("no such message"))?;
        let conv = m.conv_id.clone();
        self.stores.messages.recall(app, &conv, &m.msg_id).await?;
        let push = Arc::new(Frame {
            op: ops::RECALLED.into(),
            conv_id: conv.as_str().to_owned(),
            msg_id: m.msg_id.clone(),
            seq: Some(m.seq),
            ..Default::default()
        });
        if let Some((a, b)) = conv.p2p_members() {
            for user in [a, b] {
                if let Ok(user) = UserId::parse(user) {
                    self.delivery.deliver(app, &user, push.clone(), None);
                }
            }
        } else if let Some(group) = conv.group_id() {
            // A dismissed group has no one to push to; the recall itself
            // stands (history and sync show it recalled).
            match groups::load(self, app, &group).await {
                Ok(g) => {
                    for user in g.members.keys() {
                        self.delivery.deliver(app, user, push.clone(), None);
                    }
                }
                Err(e) => tracing::debug!(code = e.code, "recall: no group members to push to"),
            }
        }
        let mut recalled = m;
        recalled.recalled = true;
        recalled.body = confab_model::RECALLED_BODY.to_owned();
        Ok(recalled)
    }
}
