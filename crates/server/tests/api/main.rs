//! HTTP tests against the real router over real TCP, on both engines.

mod binary;
mod concurrency;
mod deletion;
mod faults;
mod filter_parity;
mod helpers;
mod messages;
mod peers;
mod pocketpaw;
mod pocketpaw_import;
mod sessions;
mod transfer;
mod validation;
mod workspaces;
