//! Push notifications given up on (the push worker's dead letters), listed
//! per app for its admins. Read from the data plane's push queue when this
//! control plane has one (it shares the cell's database); without one the
//! list is `unavailable`, as the webhook lists are.

use confab_store::DeadPushJob;

use super::webhooks::MAX_LISTED;
use super::{Actor, Control};
use crate::error::{ControlError, Result};

impl Control {
    /// The app's push dead letters, newest first. Another tenant's app is
    /// `not_found` for a tenant admin, as every app route.
    pub async fn push_dead_letters(
        &self,
        actor: &Actor,
        app_id: &str,
        limit: u32,
    ) -> Result<Vec<DeadPushJob>> {
        let app = self.visible_app(actor, app_id).await?;
        let queue = self.push_queue.as_ref().ok_or_else(|| {
            ControlError::new(
                "unavailable",
                "this control plane does not reach the push queue of the data plane",
            )
        })?;
        Ok(queue.dead_letters(&app, limit.clamp(1, MAX_LISTED)).await?)
    }
}
