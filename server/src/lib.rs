//! The Casola server: configuration, the database pool, the router and the
//! operator commands. `main.rs` only parses the command line.

pub mod accounts;
pub mod billing_demo;
pub mod database;
pub mod export;
pub mod ingest;
pub mod jobs;
pub mod router;
pub mod security;
pub mod seed;
pub mod settings;
pub mod spa;
pub mod telemetry;
pub mod web_auth;
pub mod webhooks;
