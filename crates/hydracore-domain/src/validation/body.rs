//! Reads a JSON request body field by field, collecting every problem.

use serde_json::{Map, Value};

use super::{json_limits, FieldError, Invalid, ValidationErrors};
use crate::loc;

pub struct BodyReader<'a> {
    body: &'a Value,
    fields: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> BodyReader<'a> {
    /// A body must be a JSON object, as FastAPI's model bodies are, within
    /// [`json_limits`] everywhere (also in fields no reader asks for).
    pub fn new(body: &'a Value) -> Result<Self, ValidationErrors> {
        match body {
            Value::Object(fields) => {
                json_limits::check(body, &mut loc!["body"], &mut 0)
                    .map_err(|e| ValidationErrors::single(*e))?;
                Ok(Self {
                    body,
                    fields,
                    errors: Vec::new(),
                })
            }
            Value::Null => Err(ValidationErrors::single(
                Invalid::missing().at(loc!["body"], Value::Null),
            )),
            other => Err(ValidationErrors::single(
                Invalid::new(
                    "model_attributes_type",
                    "Input should be a valid dictionary or object to extract fields from",
                )
                .at(loc!["body"], other.clone()),
            )),
        }
    }

    fn fail(&mut self, name: &str, invalid: Invalid, input: Value) {
        self.errors.push(invalid.at(loc!["body", name], input));
    }

    /// A field that must be present; `null` goes to `parse` like any value.
    pub fn required<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&'a Value) -> Result<T, Invalid>,
    ) -> Option<T> {
        let Some(value) = self.fields.get(name) else {
            self.fail(name, Invalid::missing(), self.body.clone());
            return None;
        };
        parse(value)
            .map_err(|e| self.fail(name, e, value.clone()))
            .ok()
    }

    /// A field that may be absent (`None`), `null` (`Some(None)`) or a value.
    pub fn optional<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&'a Value) -> Result<T, Invalid>,
    ) -> Option<Option<T>> {
        match self.fields.get(name)? {
            Value::Null => Some(None),
            value => parse(value)
                .map(Some)
                .map_err(|e| self.fail(name, e, value.clone()))
                .ok(),
        }
    }

    /// A field whose absence and `null` both mean "not given".
    pub fn optional_value<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&'a Value) -> Result<T, Invalid>,
    ) -> Option<T> {
        self.optional(name, parse).flatten()
    }

    /// Free-form JSON (already checked by [`BodyReader::new`]);
    /// `Value::Null` when absent.
    pub fn json(&mut self, name: &str) -> Value {
        self.fields.get(name).cloned().unwrap_or(Value::Null)
    }

    /// An object merged into state; absent or `null` means "no change".
    pub fn json_object(&mut self, name: &str) -> Option<Map<String, Value>> {
        self.optional_value(name, super::values::object).cloned()
    }

    /// A rule between fields, found by the caller.
    pub fn reject(&mut self, name: &str, invalid: Invalid) {
        let input = self.fields.get(name).cloned().unwrap_or(Value::Null);
        self.fail(name, invalid, input);
    }

    pub fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, ValidationErrors> {
        if !self.errors.is_empty() {
            return Err(ValidationErrors(self.errors));
        }
        build().ok_or_else(|| {
            // Every `None` from a reader comes with an error, so this is
            // unreachable; answer a 422 rather than trusting that.
            ValidationErrors::single(
                Invalid::new("value_error", "Value error, invalid body")
                    .at(loc!["body"], Value::Null),
            )
        })
    }
}
