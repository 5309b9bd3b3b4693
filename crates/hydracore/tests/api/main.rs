//! Integration tests: the real server over HTTP, a fresh SQLite file each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod advance;
mod auth;
mod cli;
mod concurrency;
mod create;
mod dashboard;
mod errors;
mod helpers;
mod openapi;
mod operations;
mod process;
mod read_and_list;
mod suspend_resume;
