//! `GET /v1/usage`: the app's usage over time — messages, logins, errors,
//! pushes by outcome, average connections, and daily active users — as
//! series the console's dashboard charts. The nodes count in memory and
//! write per-minute buckets every few seconds (`CONFAB_USAGE_FLUSH_MS`), so
//! the latest minute lags by up to that much.

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::ApiState;
use crate::auth::Caller;
use crate::dto::rfc3339;
use crate::error::{ApiError, ApiQuery, ApiResult};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
/// The longest range one request may cover (the retention).
const MAX_RANGE_MS: i64 = confab_store::usage::USAGE_RETENTION_DAYS * DAY_MS;
/// The most points one answer may hold.
pub const MAX_POINTS: i64 = 1500;

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

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"from": "2026-11-24T14:00:00.000Z", "to": "2026-11-25T14:00:00.000Z", "step": 3600, "points": [{"t": "2026-11-24T14:00:00.000Z", "messages": 1520, "logins": 96, "errors": 3, "push_sent": 210, "push_retried": 2, "push_dead_token": 1, "push_dead_letter": 0, "connections": 41.5}], "daily_active_users": [{"day": "2026-11-24", "users": 311}], "totals": {"messages": 1520, "logins": 96, "errors": 3, "push_sent": 210, "push_retried": 2, "push_dead_token": 1, "push_dead_letter": 0, "peak_connections": 41.5}}))]
pub struct Usage {
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

/// Parses an RFC 3339 timestamp (`2026-11-25T14:00:00Z`, fractions and
/// offsets allowed) into milliseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &s[start..i.min(start + 3)];
        millis = frac.parse::<i64>().ok()? * 10i64.pow(3 - frac.len() as u32);
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let m = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'-' { -m } else { m }
        }
        _ => return None,
    };
    // Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hour * 3600 + min * 60 + sec) - offset_min * 60) * 1000 + millis)
}

/// The range and step a query asks for, checked: `(from, to, step_ms)`.
pub fn range(q: &UsageQuery, now: i64) -> Result<(i64, i64, i64), ApiError> {
    let time = |name: &str, v: &Option<String>| -> Result<Option<i64>, ApiError> {
        v.as_deref()
            .map(|s| {
                parse_rfc3339(s).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "{name} must be an RFC 3339 time such as 2026-11-25T14:00:00Z"
                    ))
                })
            })
            .transpose()
    };
    let step = q.step.unwrap_or(3600);
    if !(60..=86_400).contains(&step) || step % 60 != 0 {
        return Err(ApiError::bad_request(
            "step must be a multiple of 60 seconds from 60 to 86400",
        ));
    }
    let step_ms = step * 1000;
    let to = time("to", &q.to)?.unwrap_or(now);
    let from = time("from", &q.from)?.unwrap_or(to - DAY_MS);
    if from >= to {
        return Err(ApiError::bad_request("from must be before to"));
    }
    if to - from > MAX_RANGE_MS {
        return Err(ApiError::bad_request(
            "the range may cover at most 400 days (usage is kept that long)",
        ));
    }
    let from = from.div_euclid(step_ms) * step_ms;
    if (to - from + step_ms - 1) / step_ms > MAX_POINTS {
        return Err(ApiError::bad_request(format!(
            "the range holds more than {MAX_POINTS} steps; use a longer step"
        )));
    }
    Ok((from, to, step_ms))
}

/// The app's usage over a range.
#[utoipa::path(
    get,
    path = "/v1/usage",
    tag = "usage",
    operation_id = "app_usage",
    params(UsageQuery),
    responses(
        (status = 200, description = "The series", body = Usage),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn app_usage(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> ApiResult<Json<Usage>> {
    let (from, to, step_ms) = range(&q, confab_model::now_ms())?;
    let store = &state.logic.stores().usage;
    // Minute buckets: the first one that can hold [from, to)'s data.
    let minutes = store
        .usage_minutes(
            &caller.app_id,
            from,
            (to + MINUTE_MS - 1) / MINUTE_MS * MINUTE_MS,
        )
        .await?;
    let n = ((to - from + step_ms - 1) / step_ms) as usize;
    let mut sums = vec![confab_store::UsageCounts::default(); n];
    for (minute, counts) in &minutes {
        let i = ((minute - from) / step_ms) as usize;
        if let Some(slot) = sums.get_mut(i) {
            slot.add(counts);
        }
    }
    let mut totals = UsageTotals::default();
    let points = sums
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let connections = c.connection_seconds as f64 * 1000.0 / step_ms as f64;
            totals.messages += c.messages;
            totals.logins += c.logins;
            totals.errors += c.errors;
            totals.push_sent += c.push_sent;
            totals.push_retried += c.push_retried;
            totals.push_dead_token += c.push_dead_token;
            totals.push_dead_letter += c.push_dead_letter;
            totals.peak_connections = totals.peak_connections.max(connections);
            UsagePoint {
                t: rfc3339(from + i as i64 * step_ms),
                messages: c.messages,
                logins: c.logins,
                errors: c.errors,
                push_sent: c.push_sent,
                push_retried: c.push_retried,
                push_dead_token: c.push_dead_token,
                push_dead_letter: c.push_dead_letter,
                connections,
            }
        })
        .collect();
    let (first_day, last_day) = (from.div_euclid(DAY_MS), (to - 1).div_euclid(DAY_MS));
    let dau = store
        .daily_active_users(&caller.app_id, first_day, last_day + 1)
        .await?;
    let daily_active_users = (first_day..=last_day)
        .map(|day| DailyActive {
            day: rfc3339(day * DAY_MS)[..10].to_owned(),
            users: dau.iter().find(|(d, _)| *d == day).map_or(0, |(_, n)| *n),
        })
        .collect();
    Ok(Json(Usage {
        from: rfc3339(from),
        to: rfc3339(to),
        step: step_ms / 1000,
        points,
        daily_active_users,
        totals,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_parses_what_rfc3339_formats() {
        for ms in [0, 1_764_079_200_000, 1_764_079_212_345, 951_782_400_000] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms), "{}", rfc3339(ms));
        }
        assert_eq!(
            parse_rfc3339("2026-11-25T22:00:00+08:00"),
            parse_rfc3339("2026-11-25T14:00:00Z")
        );
        for bad in [
            "",
            "2026-11-25",
            "2026-13-01T00:00:00Z",
            "2026-11-25T14:00:00",
            "yesterday",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    fn q(from: Option<&str>, to: Option<&str>, step: Option<i64>) -> UsageQuery {
        UsageQuery {
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
            step,
        }
    }

    #[test]
    fn ranges_are_checked_and_rounded_to_the_step() {
        let now = parse_rfc3339("2026-11-25T14:30:00Z").expect("now");
        let (from, to, step) = range(&q(None, None, None), now).expect("default");
        assert_eq!((to, step), (now, 3_600_000));
        assert_eq!(rfc3339(from), "2026-11-24T14:00:00.000Z");
        for bad in [
            q(
                Some("2026-11-25T15:00:00Z"),
                Some("2026-11-25T14:00:00Z"),
                None,
            ),
            q(Some("x"), None, None),
            q(None, None, Some(90)),
            q(None, None, Some(0)),
            q(Some("2024-01-01T00:00:00Z"), None, Some(86_400)),
            q(Some("2026-11-01T00:00:00Z"), None, Some(60)),
        ] {
            assert!(range(&bad, now).is_err(), "{bad:?}");
        }
    }
}
