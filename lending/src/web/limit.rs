//! A per-client rate limit for both services: counted by [`rate_key`] (IPv6 by /64), and
//! pruned as it goes, so a flood of distinct addresses cannot grow it without bound.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::rate_key;

/// Checks between two prunings of clients whose limit has fully recovered.
pub const PRUNE_EVERY: u32 = 1024;

type Keyed<C> = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The limiter's time: monotonic in service; a manual [`crate::Clock`] when one is injected, so
/// what a test counts does not depend on how fast the machine runs it.
#[derive(Debug, Clone)]
pub struct LimitClock {
    manual: Option<crate::Clock>,
    start: std::time::Instant,
}

impl LimitClock {
    pub fn following(clock: &crate::Clock) -> Self {
        Self { manual: clock.is_manual().then(|| clock.clone()), start: std::time::Instant::now() }
    }
}

impl Clock for LimitClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        match &self.manual {
            Some(clock) => {
                let since = clock.now() - chrono::DateTime::UNIX_EPOCH;
                Nanos::from(since.to_std().unwrap_or_default())
            }
            None => Nanos::from(self.start.elapsed()),
        }
    }
}

pub struct PerClient<C: Clock = LimitClock> {
    limiter: Keyed<C>,
    checks: AtomicU32,
}

impl PerClient {
    /// `n` a minute per client, on the real monotonic clock.
    pub fn per_minute(n: u32) -> Self {
        Self::per_minute_following(n, &crate::Clock::system())
    }

    /// `n` a minute per client, on `clock`'s time when it is a manual one.
    pub fn per_minute_following(n: u32, clock: &crate::Clock) -> Self {
        Self::with_clock(n, LimitClock::following(clock))
    }
}

impl<C: Clock> PerClient<C> {
    /// A limit on another clock (tests move a fake one).
    pub fn with_clock(per_minute: u32, clock: C) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
        Self { limiter: RateLimiter::new(quota, DefaultKeyedStateStore::default(), clock), checks: AtomicU32::new(0) }
    }

    /// Whether `client` may go ahead now (and counts it).
    pub fn allow(&self, client: IpAddr) -> bool {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter.check_key(&rate_key(client)).is_ok()
    }

    /// How many clients are remembered.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::{PerClient, PRUNE_EVERY};

    #[test]
    fn clients_count_by_v6_64_and_recovered_ones_are_forgotten() {
        let clock = FakeRelativeClock::default();
        let limit = PerClient::with_clock(2, clock.clone());
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert!(limit.allow(ip("2001:db8:1:2::1")) && limit.allow(ip("2001:db8:1:2:ffff::9")));
        assert!(!limit.allow(ip("2001:db8:1:2::77")), "the third from the same /64 waits");
        assert!(limit.allow(ip("2001:db8:1:3::1")), "another /64 is another client");
        for i in 0..1000u32 {
            limit.allow(std::net::IpAddr::from(i.to_be_bytes()));
        }
        assert!(limit.len() > 1000);
        clock.advance(Duration::from_mins(2));
        for _ in 0..PRUNE_EVERY {
            limit.allow(ip("192.0.2.1"));
        }
        assert!(limit.len() <= 2, "recovered clients were pruned: {}", limit.len());
    }
}
