//! HTTP tests against the real router over real TCP, on both engines.

mod concurrency;
mod deletion;
mod faults;
mod filter_parity;
mod helpers;
mod messages;
mod peers;
mod pocketpaw;
mod sessions;
mod transfer;
mod validation;
mod workspaces;
