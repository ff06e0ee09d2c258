//! Sign-in attempts per client (IPv6 by /64): a password-spraying client is slowed down before
//! it can hold back many staff accounts (each account also holds back a source after repeated
//! failures, in the database).

pub use lending::web::limit::PerClient;

/// Sign-in attempts a minute from one address: a busy shared clinic PC stays well below it.
pub const SIGN_INS_PER_MINUTE: u32 = 20;

/// Refused API tokens from one client written to the audit a minute (a trace, not a flood).
pub const TOKEN_FAILURES_AUDITED_PER_MINUTE: u32 = 1;

/// Follows the store's clock when it is a manual one (tests), else the monotonic clock.
pub fn sign_in_throttle(clock: &lending::Clock) -> PerClient {
    PerClient::per_minute_following(SIGN_INS_PER_MINUTE, clock)
}
