//! The library's integration tests: one binary, every storage test on SQLite and PostgreSQL.

// Tests stop at the first failed step; unwrap/expect say where.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit_chain;
mod concurrency;
mod demo;
mod durability;
mod import;
mod inspection;
mod lifecycle;
mod migrations;
mod offline;
mod oversight;
mod policy;
mod receipts;
mod reminders;
mod smtp;
