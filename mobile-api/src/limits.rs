//! Rate limits per client address (SPEC §6): problem reports, and lookups of tokens that do
//! not exist (someone guessing). The client address is the peer's, or, only when the peer is a
//! configured trusted proxy, the last address that proxy added to `X-Forwarded-For`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::HeaderMap;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct Limits {
    reports: DefaultKeyedRateLimiter<IpAddr>,
    unknown_tokens: DefaultKeyedRateLimiter<IpAddr>,
    trusted_proxies: Vec<IpAddr>,
    /// Refusals so far: reports, unknown-token lookups (for `/metrics`).
    refused: [AtomicU64; 2],
}

/// Reports a minute from one address; a family reporting a real problem never needs more.
pub const REPORTS_PER_MINUTE: u32 = 5;
/// Unknown-token lookups a minute from one address (a mistyped or worn label is a few).
pub const UNKNOWN_PER_MINUTE: u32 = 20;

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

impl Limits {
    pub fn new(trusted_proxies: Vec<IpAddr>) -> Self {
        Self {
            reports: RateLimiter::keyed(per_minute(REPORTS_PER_MINUTE)),
            unknown_tokens: RateLimiter::keyed(per_minute(UNKNOWN_PER_MINUTE)),
            trusted_proxies,
            refused: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        lending::web::client_ip(peer, headers, &self.trusted_proxies)
    }

    pub fn allow_report(&self, client: IpAddr) -> bool {
        self.count(0, self.reports.check_key(&client).is_ok())
    }

    pub fn allow_unknown_lookup(&self, client: IpAddr) -> bool {
        self.count(1, self.unknown_tokens.check_key(&client).is_ok())
    }

    fn count(&self, limit: usize, allowed: bool) -> bool {
        if !allowed {
            self.refused[limit].fetch_add(1, Ordering::Relaxed);
        }
        allowed
    }

    /// (limit, refusals so far).
    pub fn refusals(&self) -> [(&'static str, u64); 2] {
        [
            ("reports", self.refused[0].load(Ordering::Relaxed)),
            ("unknown_token", self.refused[1].load(Ordering::Relaxed)),
        ]
    }
}
