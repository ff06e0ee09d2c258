//! The library's integration tests: one binary, every storage test on SQLite and PostgreSQL.

mod audit_chain;
mod concurrency;
mod demo;
mod durability;
mod lifecycle;
mod migrations;
