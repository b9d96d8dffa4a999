//! Usage dashboards: an app's usage over time (tenant admins, their own
//! apps only) and a cell's (operators: the platform dashboard), both read
//! from the cell's `/v1/usage` (`crate::service::usage`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::dto::rfc3339;
use super::extract::{ApiPath, ApiQuery, ApiResult, Auth};
use crate::error::ControlError;
use crate::service::support::segment;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// Start (RFC 3339, inclusive); default `to` minus 24 hours. Rounded
    /// down to the step.
    pub from: Option<String>,
    /// End (RFC 3339, exclusive); default now. At most 400 days after `from`.
    pub to: Option<String>,
    /// Seconds per point: a multiple of 60 from 60 to 86 400; default 3 600.
    /// The range may hold at most 1 500 steps.
    pub step: Option<i64>,
}

impl UsageQuery {
    /// As the cell's `/v1/usage` query string.
    fn to_query(&self) -> String {
        let mut parts = Vec::new();
        if let Some(f) = &self.from {
            parts.push(format!("from={}", segment(f)));
        }
        if let Some(t) = &self.to {
            parts.push(format!("to={}", segment(t)));
        }
        if let Some(s) = self.step {
            parts.push(format!("step={s}"));
        }
        parts.join("&")
    }
}

/// One point of the series: the sums over `[t, t + step)`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UsagePoint {
    /// The point's start (RFC 3339).
    pub t: String,
    /// Messages sent (stored; live-room messages included).
    pub messages: u64,
    pub logins: u64,
    /// Requests answered with an error.
    pub errors: u64,
    /// Pushes accepted by the vendor.
    pub push_sent: u64,
    /// Push attempts to be retried.
    pub push_retried: u64,
    /// Pushes refused for a dead device token.
    pub push_dead_token: u64,
    /// Pushes given up (dead letters).
    pub push_dead_letter: u64,
    /// Average logged-in connections over the step.
    pub connections: f64,
}

impl UsagePoint {
    fn add(&mut self, o: &UsagePoint) {
        self.messages += o.messages;
        self.logins += o.logins;
        self.errors += o.errors;
        self.push_sent += o.push_sent;
        self.push_retried += o.push_retried;
        self.push_dead_token += o.push_dead_token;
        self.push_dead_letter += o.push_dead_letter;
        self.connections += o.connections;
    }
}

/// Distinct users active (logged in or sent) on a UTC day.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DailyActive {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub users: u64,
}

/// Sums over the whole range.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UsageTotals {
    pub messages: u64,
    pub logins: u64,
    pub errors: u64,
    pub push_sent: u64,
    pub push_retried: u64,
    pub push_dead_token: u64,
    pub push_dead_letter: u64,
    /// The highest point of `connections` in the range.
    pub peak_connections: f64,
}

/// Usage over a range.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AppUsage {
    /// The range as served (`from` rounded down to the step).
    pub from: String,
    pub to: String,
    /// Seconds per point.
    pub step: i64,
    /// Every step of the range, oldest first (zeros where nothing happened).
    pub points: Vec<UsagePoint>,
    /// Each UTC day the range touches, oldest first.
    pub daily_active_users: Vec<DailyActive>,
    pub totals: UsageTotals,
}

/// A cell's usage: the sums over the apps it serves.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CellUsage {
    pub cell_id: String,
    /// Apps of the cell's tenants.
    pub apps: usize,
    /// Apps whose usage could not be read (no active secret key, or the
    /// cell refused): the sums leave them out.
    pub apps_unread: usize,
    #[serde(flatten)]
    pub usage: AppUsage,
}

fn typed(v: serde_json::Value) -> ApiResult<AppUsage> {
    serde_json::from_value(v).map_err(|e| {
        ControlError::new(
            "bad_gateway",
            format!("the cell's answer is not what its /v1 API documents: {e}"),
        )
        .into()
    })
}

/// The app's usage over time (messages, logins, errors, pushes by outcome,
/// connections, daily active users), from its cell.
#[utoipa::path(
    get,
    path = "/admin/v1/apps/{app_id}/usage",
    tag = "usage",
    operation_id = "app_usage",
    params(("app_id" = String, Path, description = "The app's id"), UsageQuery),
    responses(
        (status = 200, description = "The series", body = AppUsage),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 409, response = super::Conflict),
        (status = 502, response = super::BadGateway),
        (status = 503, response = super::DataPlaneUnavailable),
    )
)]
pub async fn app_usage(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(app_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> ApiResult<Json<AppUsage>> {
    let v = state
        .control
        .app_usage(&auth.actor, &app_id, &q.to_query())
        .await?;
    Ok(Json(typed(v)?))
}

/// A cell's usage (operators): every app it serves, summed — connections,
/// message rate, error rate, push outcomes.
#[utoipa::path(
    get,
    path = "/admin/v1/cells/{cell_id}/usage",
    tag = "usage",
    operation_id = "cell_usage",
    params(("cell_id" = String, Path, description = "The cell's id"), UsageQuery),
    responses(
        (status = 200, description = "The sums over the cell's apps", body = CellUsage),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 404, response = super::NotFound),
        (status = 502, response = super::BadGateway),
        (status = 503, response = super::DataPlaneUnavailable),
    )
)]
pub async fn cell_usage(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(cell_id): ApiPath<String>,
    ApiQuery(mut q): ApiQuery<UsageQuery>,
) -> ApiResult<Json<CellUsage>> {
    // Every app's series must have the same points: pin the end.
    if q.to.is_none() {
        q.to = Some(rfc3339(confab_model::now_ms()));
    }
    let step = q.step.unwrap_or(3600);
    let got = state
        .control
        .cell_usage(&auth.actor, &cell_id, &q.to_query())
        .await?;
    let mut points: BTreeMap<String, UsagePoint> = BTreeMap::new();
    let mut dau: BTreeMap<String, u64> = BTreeMap::new();
    let mut totals = UsageTotals::default();
    let (mut from, mut to) = (String::new(), q.to.clone().unwrap_or_default());
    for answer in got.answers {
        let u = typed(answer)?;
        from = u.from;
        to = u.to;
        for p in &u.points {
            points
                .entry(p.t.clone())
                .or_insert_with(|| UsagePoint {
                    t: p.t.clone(),
                    ..Default::default()
                })
                .add(p);
        }
        for d in &u.daily_active_users {
            *dau.entry(d.day.clone()).or_default() += d.users;
        }
        let t = &u.totals;
        totals.messages += t.messages;
        totals.logins += t.logins;
        totals.errors += t.errors;
        totals.push_sent += t.push_sent;
        totals.push_retried += t.push_retried;
        totals.push_dead_token += t.push_dead_token;
        totals.push_dead_letter += t.push_dead_letter;
    }
    let points: Vec<UsagePoint> = points.into_values().collect();
    totals.peak_connections = points.iter().map(|p| p.connections).fold(0.0, f64::max);
    Ok(Json(CellUsage {
        cell_id,
        apps: got.apps,
        apps_unread: got.unread,
        usage: AppUsage {
            from,
            to,
            step,
            points,
            daily_active_users: dau
                .into_iter()
                .map(|(day, users)| DailyActive { day, users })
                .collect(),
            totals,
        },
    }))
}
