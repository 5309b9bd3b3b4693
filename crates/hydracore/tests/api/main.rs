//! Integration tests: the real server over HTTP, a fresh SQLite file each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abuse;
mod advance;
mod auth;
mod cli;
mod concurrency;
mod create;
mod dashboard;
mod decisions;
mod errors;
mod events;
mod expiry;
mod helpers;
mod history;
mod hostile;
mod idempotency;
mod limits;
mod openapi;
mod operations;
mod outage;
mod preconditions;
mod process;
mod properties;
mod read_and_list;
mod suspend_resume;
mod wait;
