//! HydraCore as a Model Context Protocol server: agents get durable
//! workflow records and "ask a human and wait" as tools.
//!
//! One set of tools, two transports: streamable HTTP at `/mcp` on the API
//! listener ([`http`]), where the tools run the use cases directly, and
//! stdio (`hydracore mcp`, [`stdio`]), a client of a running server that
//! relays each message to its `/mcp`.

pub mod http;
mod resources;
mod schema;
mod server;
pub mod stdio;
mod tools;
