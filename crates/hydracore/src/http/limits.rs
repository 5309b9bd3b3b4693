//! What keeps one client from hurting the others on a shared deployment:
//! a token bucket per credential (its tenant's rate, or the default), a
//! budget of failed authentications per client address, and a short memory
//! of keys that matched nothing, so that a flood of made-up keys costs no
//! database work.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use uuid::Uuid;

use super::error::ApiError;

/// A sustained rate and the burst above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests the bucket refills by per `per`.
    pub count: NonZeroU32,
    pub per: Per,
    pub burst: NonZeroU32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    Second,
    Minute,
}

impl Rate {
    /// How long an empty bucket takes to fill up to its burst.
    fn refill(self) -> Duration {
        let period = match self.per {
            Per::Second => Duration::from_secs(1),
            Per::Minute => Duration::from_secs(60),
        };
        period.saturating_mul(self.burst.get()) / self.count.get()
    }

    fn quota(self) -> Quota {
        let quota = match self.per {
            Per::Second => Quota::per_second(self.count),
            Per::Minute => Quota::per_minute(self.count),
        };
        quota.allow_burst(self.burst)
    }
}

/// `100/s`, `6000/min` or `off`, with the burst twice the count unless
/// given as `100/s:500`.
pub fn parse_rate(text: &str) -> Result<Option<Rate>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (rate, burst) = match text.split_once(':') {
        Some((rate, burst)) => (rate, Some(burst)),
        None => (text, None),
    };
    let (count, unit) = rate
        .split_once('/')
        .ok_or_else(|| format!("{text:?}: expected a rate such as 100/s, 6000/min or off"))?;
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: {count:?} is not a whole number"))?;
    let per = match unit.trim() {
        "s" | "sec" | "second" => Per::Second,
        "m" | "min" | "minute" => Per::Minute,
        other => return Err(format!("{text:?}: unknown unit {other:?} (use s or min)")),
    };
    let count = NonZeroU32::new(count)
        .ok_or_else(|| format!("{text:?}: the rate must be above zero (or off)"))?;
    let burst = match burst {
        Some(b) => b
            .trim()
            .parse()
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or_else(|| format!("{text:?}: the burst must be a whole number above zero"))?,
        // Twice what the bucket refills by in its period.
        None => count.saturating_mul(NonZeroU32::MIN.saturating_add(1)),
    };
    Ok(Some(Rate { count, per, burst }))
}

/// `TENANT=RATE,TENANT=RATE`: the tenants whose rate differs from the
/// default.
pub fn parse_tenant_rates(text: &str) -> Result<HashMap<Uuid, Option<Rate>>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (tenant, rate) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?}: expected TENANT_ID=RATE"))?;
            let tenant = Uuid::from_str(tenant.trim())
                .map_err(|_| format!("{entry:?}: {tenant:?} is not a tenant id"))?;
            Ok((tenant, parse_rate(rate)?))
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// Requests per credential (an instance's proxy key, an API key, a JWT
    /// subject); `None` for no limit.
    pub per_credential: Option<Rate>,
    /// Tenants with a rate of their own.
    pub tenants: HashMap<Uuid, Option<Rate>>,
    /// Failed authentications per client address.
    pub failed_auth: Option<Rate>,
    /// How long a key that matched nothing is answered 401 from memory.
    pub unknown_key_ttl: Duration,
    /// Take the client address for the failed-authentication budget from
    /// the last `X-Forwarded-For` entry (the one the proxy in front
    /// appended) instead of the connection's peer.
    pub trust_forwarded_for: bool,
    /// The most suspensions `/v1/workflows/suspended` answers.
    pub suspended_max: u32,
    /// The longest a read with `Prefer: wait` waits for a change.
    pub max_wait: Duration,
    /// Reads waiting at once, at most; more answer without waiting.
    pub max_waiting: u32,
    /// Event streams open at once, at most; more are refused.
    pub max_streams: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            per_credential: parse_rate(DEFAULT_RATE).ok().flatten(),
            tenants: HashMap::new(),
            failed_auth: parse_rate(DEFAULT_FAILED_AUTH_RATE).ok().flatten(),
            unknown_key_ttl: DEFAULT_UNKNOWN_KEY_TTL,
            trust_forwarded_for: false,
            suspended_max: DEFAULT_SUSPENDED_MAX,
            max_wait: DEFAULT_MAX_WAIT,
            max_waiting: DEFAULT_MAX_WAITING,
            max_streams: DEFAULT_MAX_STREAMS,
        }
    }
}

pub const DEFAULT_RATE: &str = "500/s:1000";
pub const DEFAULT_FAILED_AUTH_RATE: &str = "10/s:50";
pub const DEFAULT_UNKNOWN_KEY_TTL: Duration = Duration::from_secs(60);
pub const DEFAULT_SUSPENDED_MAX: u32 = 500;
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_WAITING: u32 = 256;
pub const DEFAULT_MAX_STREAMS: u32 = 2_000;

/// Keys remembered as unknown, at most; the oldest go first.
const UNKNOWN_KEYS: usize = 100_000;

type Limiter = DefaultKeyedRateLimiter<String>;

pub struct Limits {
    default: Option<(Rate, Limiter)>,
    tenants: HashMap<Uuid, Option<(Rate, Limiter)>>,
    failed_auth: Option<(Rate, Limiter)>,
    /// Addresses over their failed-authentication budget, until when.
    blocked: quick_cache::sync::Cache<IpAddr, Instant>,
    unknown_keys: quick_cache::sync::Cache<Vec<u8>, Instant>,
    unknown_key_ttl: Duration,
    pub trust_forwarded_for: bool,
    pub suspended_max: u32,
    pub max_wait: Duration,
    /// A permit per read waiting now.
    pub waiting: Arc<tokio::sync::Semaphore>,
    /// A permit per event stream open now.
    pub streams: Arc<tokio::sync::Semaphore>,
    /// Checks made, for [`Limits::tidy`].
    checks: AtomicU64,
}

/// How many checks between two tidy-ups of the buckets.
const TIDY_EVERY: u64 = 10_000;

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits").finish_non_exhaustive()
    }
}

impl Limits {
    pub fn new(settings: &LimitSettings) -> Self {
        let limiter = |rate: Rate| (rate, Limiter::keyed(rate.quota()));
        Self {
            default: settings.per_credential.map(limiter),
            tenants: settings
                .tenants
                .iter()
                .map(|(tenant, rate)| (*tenant, rate.map(limiter)))
                .collect(),
            failed_auth: settings.failed_auth.map(limiter),
            blocked: quick_cache::sync::Cache::new(UNKNOWN_KEYS),
            unknown_keys: quick_cache::sync::Cache::new(UNKNOWN_KEYS),
            unknown_key_ttl: settings.unknown_key_ttl,
            trust_forwarded_for: settings.trust_forwarded_for,
            suspended_max: settings.suspended_max,
            max_wait: settings.max_wait,
            waiting: Arc::new(tokio::sync::Semaphore::new(settings.max_waiting as usize)),
            streams: Arc::new(tokio::sync::Semaphore::new(settings.max_streams as usize)),
            checks: AtomicU64::new(0),
        }
    }

    /// Counts one request of `principal` (of `tenant`) against its bucket;
    /// `principal` is only made when a limit applies.
    pub fn admit(&self, tenant: Uuid, principal: impl FnOnce() -> String) -> Result<(), ApiError> {
        let limiter = match self.tenants.get(&tenant) {
            Some(own) => own.as_ref(),
            None => self.default.as_ref(),
        };
        let Some((rate, limiter)) = limiter else {
            return Ok(());
        };
        self.tidy();
        // The default bucket set is shared by tenants: a principal is only
        // unique within its tenant (a JWT `sub`).
        let principal = format!("{tenant}:{}", principal());
        limiter.check_key(&principal).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            tracing::debug!(principal, ?wait, "rate limited");
            ApiError::RateLimited {
                limit: rate.burst.get(),
                retry_after: wait,
            }
        })
    }

    /// 429 when `address` used up its failed authentications.
    pub fn check_address(&self, address: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(until) = address.and_then(|a| self.blocked.get(&a)) else {
            return Ok(());
        };
        let now = Instant::now();
        if until <= now {
            return Ok(());
        }
        Err(ApiError::RateLimited {
            limit: self.failed_auth_burst(),
            retry_after: until - now,
        })
    }

    /// Counts a failed authentication of `address`.
    pub fn failed(&self, address: Option<IpAddr>) {
        let (Some(address), Some((rate, limiter))) = (address, &self.failed_auth) else {
            return;
        };
        self.tidy();
        if limiter.check_key(&address.to_string()).is_err() {
            // Blocked until the budget has refilled, not only until its next
            // token: a client with many requests in flight would otherwise
            // slip a batch of lookups past every time the block lifts.
            let wait = rate.refill();
            tracing::debug!(%address, ?wait, "failed authentications over budget");
            self.blocked.insert(address, Instant::now() + wait);
        }
    }

    /// Every so many checks, forgets the buckets that refilled: one per
    /// credential or address ever seen would otherwise stay in memory.
    fn tidy(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % TIDY_EVERY != TIDY_EVERY - 1 {
            return;
        }
        let limiters = self.default.iter().chain(self.tenants.values().flatten());
        for (_, limiter) in limiters.chain(self.failed_auth.iter()) {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    fn failed_auth_burst(&self) -> u32 {
        self.failed_auth
            .as_ref()
            .map_or(0, |(rate, _)| rate.burst.get())
    }

    /// Whether the key hashing to `hash` matched nothing a moment ago.
    pub fn known_unknown(&self, hash: &[u8]) -> bool {
        self.unknown_keys
            .get(hash)
            .is_some_and(|at| at.elapsed() < self.unknown_key_ttl)
    }

    pub fn remember_unknown(&self, hash: Vec<u8>) {
        if !self.unknown_key_ttl.is_zero() {
            self.unknown_keys.insert(hash, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> Rate {
        parse_rate(text)
            .ok()
            .flatten()
            .unwrap_or_else(|| unreachable!())
    }

    #[test]
    fn rates_read_as_people_write_them() {
        assert_eq!(
            (rate("100/s").count.get(), rate("100/s").per),
            (100, Per::Second)
        );
        assert_eq!(rate("100/s").burst.get(), 200);
        assert_eq!(
            (rate("30/min").count.get(), rate("30/min").per),
            (30, Per::Minute)
        );
        assert_eq!(rate("5/s:7").burst.get(), 7);
        assert_eq!(parse_rate("off"), Ok(None));
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("5/h").is_err());
    }

    #[test]
    fn a_credential_past_its_burst_is_refused_with_the_wait() {
        let limits = Limits::new(&LimitSettings {
            per_credential: Some(rate("1/s:3")),
            ..LimitSettings::default()
        });
        let tenant = Uuid::new_v4();
        for _ in 0..3 {
            assert!(limits.admit(tenant, || "instance:a".into()).is_ok());
        }
        let refused = limits.admit(tenant, || "instance:a".into());
        assert!(
            matches!(refused, Err(ApiError::RateLimited { limit: 3, retry_after }) if retry_after <= Duration::from_secs(1))
        );
        assert!(
            limits.admit(tenant, || "instance:b".into()).is_ok(),
            "buckets are per credential"
        );
    }

    #[test]
    fn a_tenant_may_have_its_own_rate_or_none() {
        let (slow, free) = (Uuid::new_v4(), Uuid::new_v4());
        let tenants = parse_tenant_rates(&format!("{slow}=1/s:1, {free}=off"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        let limits = Limits::new(&LimitSettings {
            per_credential: Some(rate("1/s:2")),
            tenants,
            ..LimitSettings::default()
        });
        assert!(limits.admit(slow, || "k".into()).is_ok());
        assert!(limits.admit(slow, || "k".into()).is_err());
        for _ in 0..100 {
            assert!(limits.admit(free, || "k".into()).is_ok());
        }
    }

    #[test]
    fn an_address_that_keeps_failing_is_refused_before_any_lookup() {
        let limits = Limits::new(&LimitSettings {
            failed_auth: Some(rate("1/s:2")),
            ..LimitSettings::default()
        });
        let address = Some(IpAddr::from([10, 0, 0, 7]));
        for _ in 0..3 {
            assert!(limits.check_address(address).is_ok());
            limits.failed(address);
        }
        assert!(limits.check_address(address).is_err());
        assert!(limits
            .check_address(Some(IpAddr::from([10, 0, 0, 8])))
            .is_ok());
    }

    #[test]
    fn an_address_over_its_budget_waits_until_the_budget_has_refilled() {
        let limits = Limits::new(&LimitSettings {
            failed_auth: Some(rate("10/s:20")),
            ..LimitSettings::default()
        });
        let address = Some(IpAddr::from([10, 0, 0, 9]));
        for _ in 0..21 {
            limits.failed(address);
        }
        match limits.check_address(address) {
            Err(ApiError::RateLimited { retry_after, .. }) => {
                assert!(
                    retry_after > Duration::from_millis(1_900),
                    "{retry_after:?}"
                );
            }
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn unknown_keys_are_remembered_for_their_time_only() {
        let limits = Limits::new(&LimitSettings {
            unknown_key_ttl: Duration::from_millis(50),
            ..LimitSettings::default()
        });
        limits.remember_unknown(vec![1, 2, 3]);
        assert!(limits.known_unknown(&[1, 2, 3]));
        assert!(!limits.known_unknown(&[4]));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!limits.known_unknown(&[1, 2, 3]));
    }
}
