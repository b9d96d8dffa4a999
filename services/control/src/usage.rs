//! Usage for the dashboards: an app's usage comes from its cell's `/v1/usage`
//! (through the same [`DataPlane`](super::support::DataPlane) path as the
//! support lookups, so the app scoping is the data plane's own); a cell's
//! usage (the operator's platform dashboard) is the sum over the apps it
//! serves, asked one app at a time with each app's active key.

use serde_json::Value;

use super::{Actor, Control};
use crate::error::{ControlError, Result};

/// What a cell's apps answered.
#[derive(Debug, Default)]
pub struct CellUsageAnswers {
    /// Each app's `/v1/usage` answer.
    pub answers: Vec<Value>,
    /// Apps of the cell.
    pub apps: usize,
    /// Apps whose usage could not be read (no active key, or the cell
    /// refused); their share is missing from the sums.
    pub unread: usize,
}

impl Control {
    /// The app's usage (`/v1/usage` with `query`), from its cell.
    pub async fn app_usage(&self, actor: &Actor, app_id: &str, query: &str) -> Result<Value> {
        self.support_call(actor, app_id, "GET", &format!("/v1/usage?{query}"), None)
            .await
    }

    /// Every app's usage in the cell (operators only). `query` must pin
    /// `from` and `to` so that every app's series has the same points.
    #[tracing::instrument(skip(self, actor))]
    pub async fn cell_usage(
        &self,
        actor: &Actor,
        cell_id: &str,
        query: &str,
    ) -> Result<CellUsageAnswers> {
        actor.require_operator()?;
        let cells = self.cells(actor).await?;
        if !cells.iter().any(|c| c.cell_id == cell_id) {
            return Err(ControlError::not_found(format!("no cell {cell_id:?}")));
        }
        let tenants: Vec<String> = self
            .tenants(actor)
            .await?
            .into_iter()
            .filter(|t| t.cell_id == cell_id)
            .map(|t| t.tenant_id)
            .collect();
        let mut out = CellUsageAnswers::default();
        for tenant in tenants {
            for app in self.apps(actor, Some(&tenant)).await? {
                out.apps += 1;
                match self.app_usage(actor, &app.app_id, query).await {
                    Ok(v) => out.answers.push(v),
                    // A bad range is the request's fault: say so at once.
                    Err(e) if e.code == "bad_request" => return Err(e),
                    Err(e) => {
                        tracing::debug!(app = %app.app_id, error = %e.message, "no usage for this app");
                        out.unread += 1;
                    }
                }
            }
        }
        Ok(out)
    }
}
