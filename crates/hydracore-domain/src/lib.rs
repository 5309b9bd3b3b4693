//! HydraCore's domain: what a workflow record is and the rules it lives by.
//!
//! Nothing here does I/O. The HTTP layer parses requests into the types of
//! [`request`] (collecting pydantic-shaped [`validation::FieldError`]s), the
//! storage layer loads a [`Workflow`] and hands it to [`transition::apply`]
//! inside its transaction, and writes back what that returns.
#![forbid(unsafe_code)]

pub mod decision;
pub mod event;
pub mod idempotency;
pub mod merge;
pub mod precondition;
pub mod principal;
pub mod record;
pub mod request;
pub mod scope;
pub mod status;
pub mod text;
pub mod timestamp;
pub mod transition;
pub mod validation;
pub mod webhook;
pub mod workflow_type;

pub use principal::Principal;
pub use record::{HistoryEntry, Workflow};
pub use scope::Scope;
pub use status::Status;
pub use text::{ActionName, StepName};
pub use timestamp::Timestamp;
pub use workflow_type::WorkflowType;
