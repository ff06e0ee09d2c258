//! Staff authentication building blocks: password hashing and rules, TOTP.

pub mod passwords;
pub mod totp;
