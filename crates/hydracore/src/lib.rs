//! HydraCore: durable workflow records for AI agents.
//!
//! Layers, outermost first: [`cli`] (the command line) and [`startup`] (the
//! server's assembly) → [`http`] (routes, extractors, error mapping) → the
//! `hydracore-domain` crate (types and rules, no I/O) → the
//! `hydracore-storage` crate (the `Store` trait and its backends). [`ui`] is
//! the web page, beside [`http`] over the same use cases.
#![forbid(unsafe_code)]

pub mod auth;
pub mod cli;
pub mod config;
pub mod demo;
pub mod http;
pub mod mcp;
pub mod provision;
pub mod startup;
pub mod sweeper;
pub mod telemetry;
pub mod ui;
pub mod webhooks;
