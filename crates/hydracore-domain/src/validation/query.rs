//! Reads query parameters, collecting every problem.

use serde_json::Value;

use super::{values, FieldError, Invalid, ValidationErrors};
use crate::loc;

pub struct QueryReader<'a> {
    pairs: &'a [(String, String)],
    errors: Vec<FieldError>,
}

impl<'a> QueryReader<'a> {
    pub fn new(pairs: &'a [(String, String)]) -> Self {
        Self {
            pairs,
            errors: Vec::new(),
        }
    }

    /// The last value given for `name`, as FastAPI takes scalar parameters.
    fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn optional<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&'a str) -> Result<T, Invalid>,
    ) -> Option<T> {
        let raw = self.get(name)?;
        match values::text_str(raw).and_then(parse) {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors
                    .push(e.at(loc!["query", name], Value::String(raw.to_owned())));
                None
            }
        }
    }

    /// An integer with a default and inclusive bounds.
    pub fn int(&mut self, name: &str, default: i64, min: i64, max: Option<i64>) -> i64 {
        self.optional(name, |s| {
            let i = values::greater_than_equal(values::int_str(s)?, min)?;
            match max {
                Some(max) => values::less_than_equal(i, max),
                None => Ok(i),
            }
        })
        .unwrap_or(default)
    }

    /// Whether the query names `name` at all.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Refuses `name`'s value for a reason that involves other parameters.
    pub fn refuse(&mut self, name: &str, reason: Invalid) {
        let raw = self.get(name).unwrap_or_default();
        self.errors
            .push(reason.at(loc!["query", name], Value::String(raw.to_owned())));
    }

    pub fn finish<T>(self, value: T) -> Result<T, ValidationErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ValidationErrors(self.errors))
        }
    }
}
