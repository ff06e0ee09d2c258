//! The device-lending tracker's library: domain rules, the storage layer over SQLite and
//! PostgreSQL, the audit chain and the demo clinic. Both binaries (`server`, `mobile-api`)
//! depend on this crate and on nothing of each other.

pub mod actor;
pub mod audit;
pub mod auth;
pub mod backup;
#[cfg(feature = "testing")]
pub mod browser;
pub mod clock;
pub mod config;
pub mod demo;
pub mod error;
pub mod files;
pub mod ids;
pub mod labels;
pub mod lifecycle;
#[cfg(feature = "http")]
pub mod logging;
pub mod mail;
#[cfg(feature = "http")]
pub mod metrics;
pub mod policy;
pub mod qr;
pub mod receipts;
#[cfg(feature = "http")]
pub mod routes;
pub mod secrets;
pub mod service;
pub mod signature;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod timefmt;
pub mod web;

pub use actor::{Actor, Credential, Role};
pub use clock::Clock;
pub use config::Config;
pub use error::{Error, Result};
pub use lifecycle::DeviceStatus;
pub use policy::{authorize, Action, Principal};
pub use store::{Backend, Store, Tx};
