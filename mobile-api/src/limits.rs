//! Rate limits per client (SPEC §6): problem reports, and lookups of tokens that do not exist
//! (someone guessing). The client address is the peer's, or, only when the peer is in a
//! configured trusted proxy network, the last address those proxies added to `X-Forwarded-For`;
//! IPv6 clients count by their /64.

use std::net::IpAddr;

use axum::http::HeaderMap;
use lending::web::limit::PerClient;
use lending::web::IpNet;

pub struct Limits {
    reports: PerClient,
    unknown_tokens: PerClient,
    trusted_proxies: Vec<IpNet>,
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
        }
    }

    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        lending::web::client_ip(peer, headers, &self.trusted_proxies)
    }

    pub fn allow_report(&self, client: IpAddr) -> bool {
        self.reports.allow(client)
    }

    pub fn allow_unknown_lookup(&self, client: IpAddr) -> bool {
        self.unknown_tokens.allow(client)
    }
}
