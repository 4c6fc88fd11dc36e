//! HTTP tests against the real router over real TCP, on both engines.

mod auth;
mod auth_cli;
mod binary;
mod body_props;
mod cli_settings;
mod concurrency;
mod contract;
mod deletion;
mod disk_full;
mod faults;
mod filter_parity;
mod helpers;
mod messages;
mod metrics;
mod peers;
mod pocketpaw;
mod pocketpaw_import;
mod queue_status;
mod search;
mod sessions;
mod transfer;
mod validation;
mod webhooks;
mod worker_race;
mod workspaces;
