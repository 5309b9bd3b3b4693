//! Request validation with pydantic v2's error shapes.
//!
//! The original service answered every validation failure with FastAPI's
//! 422 body, `{"detail": [{"type", "loc", "msg", "input", "ctx"?}]}`, and its
//! clients match on `type` and `loc`. Parsers of single values return an
//! [`Invalid`] (what is wrong); the readers in [`body`] and [`query`] place it
//! at a location with its input, collecting every problem of a request before
//! answering.

pub mod body;
pub mod json_limits;
pub mod query;
pub mod values;

use serde::Serialize;
use serde_json::{json, Value};

/// One problem in a request, as pydantic v2 reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    #[serde(rename = "type")]
    pub error_type: &'static str,
    pub loc: Vec<Value>,
    pub msg: String,
    pub input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Value>,
}

/// All problems found in one request; never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} validation error(s), first: {}", .0.len(), .0.first().map(|e| e.msg.as_str()).unwrap_or(""))]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn single(error: FieldError) -> Self {
        Self(vec![error])
    }
}

/// What is wrong with one value, before it is known where the value was.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub error_type: &'static str,
    pub msg: String,
    pub ctx: Option<Value>,
}

impl Invalid {
    pub fn new(error_type: &'static str, msg: impl Into<String>) -> Self {
        Self {
            error_type,
            msg: msg.into(),
            ctx: None,
        }
    }

    pub fn with_ctx(mut self, ctx: Value) -> Self {
        self.ctx = Some(ctx);
        self
    }

    pub fn at(self, loc: Vec<Value>, input: Value) -> FieldError {
        FieldError {
            error_type: self.error_type,
            loc,
            msg: self.msg,
            input,
            ctx: self.ctx,
        }
    }

    /// [`Invalid::at`], boxed for the deep walks that pass it back up.
    pub fn boxed_at(self, loc: Vec<Value>, input: Value) -> Box<FieldError> {
        Box::new(self.at(loc, input))
    }

    pub fn missing() -> Self {
        Self::new("missing", "Field required")
    }

    /// A custom rule of ours, in pydantic's `value_error` shape.
    pub fn value_error(reason: &str) -> Self {
        Self::new("value_error", format!("Value error, {reason}"))
            .with_ctx(json!({ "error": reason }))
    }

    pub fn enum_mismatch(expected: String) -> Self {
        Self::new("enum", format!("Input should be {expected}"))
            .with_ctx(json!({ "expected": expected }))
    }
}

/// `'a', 'b' or 'c'`, the way pydantic lists an enum's accepted values.
pub fn expected_list<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = values.map(|v| format!("'{v}'")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// A location: `loc!["body", "customer_id"]`.
#[macro_export]
macro_rules! loc {
    ($($part:expr),* $(,)?) => { vec![$(serde_json::Value::from($part)),*] };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_serialize_in_pydantic_shape() {
        let e = Invalid::missing().at(loc!["body", "customer_id"], json!({}));
        assert_eq!(
            serde_json::to_value(&e).ok(),
            Some(
                json!({"type": "missing", "loc": ["body", "customer_id"], "msg": "Field required", "input": {}})
            )
        );
    }

    #[test]
    fn expected_lists_join_with_or() {
        assert_eq!(expected_list(["a"].into_iter()), "'a'");
        assert_eq!(
            expected_list(["a", "b", "c"].into_iter()),
            "'a', 'b' or 'c'"
        );
    }
}
