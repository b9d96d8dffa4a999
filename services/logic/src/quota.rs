//! Per-app message-rate quotas (api.md): token buckets per app and per user.
//!
//! Each app has its own buckets, so one app hitting its limits never slows
//! another. Buckets are rebuilt when the app's quota changes; per-user
//! buckets of idle users are dropped periodically so memory stays bounded.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use confab_model::{AppId, Quotas, UserId};
use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::{LogicError, Result};
use confab_proto::ops::code;

struct AppBuckets {
    quotas: Quotas,
    app: DefaultDirectRateLimiter,
    users: DefaultKeyedRateLimiter<UserId>,
}

fn per_second(n: u32) -> Quota {
    let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    // Burst of one second's worth.
    Quota::per_second(n).allow_burst(n)
}

impl AppBuckets {
    fn new(quotas: Quotas) -> Self {
        Self {
            quotas,
            app: RateLimiter::direct(per_second(quotas.app_messages_per_sec)),
            users: RateLimiter::keyed(per_second(quotas.user_messages_per_sec)),
        }
    }
}

#[derive(Default)]
pub struct MessageRates {
    apps: DashMap<AppId, Arc<AppBuckets>>,
    checks: std::sync::atomic::AtomicU64,
}

/// Now, for a refusal's wait time. Only on refusals: building governor's
/// default (quanta) clock reads the CPU's identity each time, which was
/// ~10 % of the server's CPU when done for every message (perf, p2p bench).
fn refusal_time() -> governor::clock::QuantaInstant {
    DefaultClock::default().now()
}

fn rate_limited(which: &'static str, wait: Duration, what: &str) -> LogicError {
    metrics::counter!("confab_quota_rejections_total", "quota" => which).increment(1);
    let ms = wait.as_millis().max(1);
    LogicError::new(code::RATE_LIMITED, format!("{what}; retry in {ms} ms"))
        .with_retry_after(ms as u32)
}

impl MessageRates {
    /// Takes one message from the user's and the app's buckets, or says
    /// how long to wait.
    pub fn check(&self, app: &AppId, user: &UserId, quotas: &Quotas) -> Result<()> {
        if self
            .checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % 65_536
            == 65_535
        {
            self.shrink();
        }
        // The read guard must be gone before the insert below (same shard:
        // holding it would deadlock), hence the separate statement.
        let current = self.apps.get(app).map(|b| b.clone());
        let buckets = match current {
            Some(b) if b.quotas == *quotas => b,
            _ => {
                let fresh = Arc::new(AppBuckets::new(*quotas));
                self.apps.insert(app.clone(), fresh.clone());
                fresh
            }
        };
        // The user's bucket first: a user over their own limit must not
        // drain the app's shared bucket.
        if let Err(not_until) = buckets.users.check_key(user) {
            return Err(rate_limited(
                "user_messages_per_sec",
                not_until.wait_time_from(refusal_time()),
                &format!(
                    "more than {} messages per second from this user",
                    quotas.user_messages_per_sec
                ),
            ));
        }
        if let Err(not_until) = buckets.app.check() {
            return Err(rate_limited(
                "app_messages_per_sec",
                not_until.wait_time_from(refusal_time()),
                &format!(
                    "more than {} messages per second in this app",
                    quotas.app_messages_per_sec
                ),
            ));
        }
        Ok(())
    }

    /// Drops per-user buckets that are full again (their users went quiet).
    pub fn shrink(&self) {
        for entry in self.apps.iter() {
            entry.users.retain_recent();
            entry.users.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_app_limits_are_separate_per_app() {
        let rates = MessageRates::default();
        let quotas = Quotas {
            app_messages_per_sec: 5,
            user_messages_per_sec: 3,
            ..Quotas::default()
        };
        let (a, b) = (AppId::parse("a").unwrap(), AppId::parse("b").unwrap());
        let (u1, u2, u3) = (
            UserId::parse("u1").unwrap(),
            UserId::parse("u2").unwrap(),
            UserId::parse("u3").unwrap(),
        );
        for _ in 0..3 {
            rates.check(&a, &u1, &quotas).unwrap();
        }
        let e = rates.check(&a, &u1, &quotas).unwrap_err();
        assert_eq!(e.code, code::RATE_LIMITED);
        assert!(e.retry_after_ms.is_some());
        rates.check(&a, &u2, &quotas).unwrap();
        rates.check(&a, &u2, &quotas).unwrap();
        // The app's 5 are used up (3 + 2): u3 is refused though it sent nothing.
        assert!(rates.check(&a, &u3, &quotas).is_err());
        // Another app is not affected.
        rates.check(&b, &u1, &quotas).unwrap();
        // A changed quota takes effect at once (fresh buckets).
        let wider = Quotas {
            user_messages_per_sec: 100,
            app_messages_per_sec: 100,
            ..quotas
        };
        rates.check(&a, &u1, &wider).unwrap();
    }
}
