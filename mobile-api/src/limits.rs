//! Rate limits per client (SPEC §6): problem reports, and lookups of tokens that do not exist
//! (someone guessing). The client address is the peer's, or, only when the peer is in a
//! configured trusted proxy network, the last address those proxies added to `X-Forwarded-For`;
//! IPv6 clients count by their /64.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::HeaderMap;
use lending::web::limit::PerClient;
use lending::web::IpNet;

pub struct Limits {
    reports: PerClient,
    unknown_tokens: PerClient,
    trusted_proxies: Vec<IpNet>,
    /// Refusals so far: reports, unknown-token lookups (for `/metrics`).
    refused: [AtomicU64; 2],
}

/// Reports a minute from one client; a family reporting a real problem never needs more.
pub const REPORTS_PER_MINUTE: u32 = 5;
/// Unknown-token lookups a minute from one client (a mistyped or worn label is a few).
pub const UNKNOWN_PER_MINUTE: u32 = 20;

impl Limits {
    pub fn new(trusted_proxies: Vec<IpNet>) -> Self {
        Self {
            reports: PerClient::per_minute(REPORTS_PER_MINUTE),
            unknown_tokens: PerClient::per_minute(UNKNOWN_PER_MINUTE),
            trusted_proxies,
            refused: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        lending::web::client_ip(peer, headers, &self.trusted_proxies)
    }

    pub fn allow_report(&self, client: IpAddr) -> bool {
        self.count(0, self.reports.allow(client))
    }

    pub fn allow_unknown_lookup(&self, client: IpAddr) -> bool {
        self.count(1, self.unknown_tokens.allow(client))
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
