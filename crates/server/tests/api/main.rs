//! HTTP tests against the real router over real TCP, on both engines.

mod auth;
mod auth_cli;
mod binary;
mod concurrency;
mod deletion;
mod faults;
mod filter_parity;
mod helpers;
mod messages;
mod metrics;
mod peers;
mod pocketpaw;
mod pocketpaw_import;
mod search;
mod sessions;
mod transfer;
mod validation;
mod webhooks;
mod worker_race;
mod workspaces;
