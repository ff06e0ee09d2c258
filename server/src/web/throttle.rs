//! Sign-in attempts per client address: a password-spraying client is slowed down before it
//! can lock many staff accounts (each account also locks itself after repeated failures).

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Sign-in attempts a minute from one address: a busy shared clinic PC stays well below it.
pub const SIGN_INS_PER_MINUTE: u32 = 20;

pub struct SignInThrottle(DefaultKeyedRateLimiter<IpAddr>);

impl Default for SignInThrottle {
    fn default() -> Self {
        Self::new()
    }
}

impl SignInThrottle {
    pub fn new() -> Self {
        Self(RateLimiter::keyed(Quota::per_minute(NonZeroU32::new(SIGN_INS_PER_MINUTE).unwrap_or(NonZeroU32::MIN))))
    }

    pub fn allow(&self, client: IpAddr) -> bool {
        self.0.check_key(&client).is_ok()
    }
}
