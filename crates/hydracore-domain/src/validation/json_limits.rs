//! Limits on free-form JSON (`workflow_state`, `payload`, ...): what
//! PostgreSQL can store, and what a request may cost us to walk.

use serde_json::Value;

use super::{values, FieldError, Invalid};

/// Deeper documents are refused; ordinary workflow state is a few levels.
pub const MAX_DEPTH: usize = 64;
/// Object keys in one request body, counted over all its levels.
pub const MAX_KEYS: usize = 10_000;

/// Walks a free-form value, reporting the first NUL in a key or string at
/// its exact location (`["body", "workflow_state", "a", 0]`) and refusing
/// documents deeper than [`MAX_DEPTH`]. `keys` counts object keys across
/// calls so a whole body can be bounded.
///
/// Numbers are not limited: each keeps its literal (serde_json's
/// `arbitrary_precision`) and is stored as that text, however many digits
/// or whatever exponent it has, within the request body's size limit.
pub fn check(value: &Value, loc: &mut Vec<Value>, keys: &mut usize) -> Result<(), Box<FieldError>> {
    walk(value, loc, keys, 0)
}

fn walk(
    value: &Value,
    loc: &mut Vec<Value>,
    keys: &mut usize,
    depth: usize,
) -> Result<(), Box<FieldError>> {
    if depth > MAX_DEPTH {
        return Err(Invalid::value_error(&format!(
            "JSON must not be nested deeper than {MAX_DEPTH} levels"
        ))
        .boxed_at(loc.clone(), Value::Null));
    }
    match value {
        Value::String(s) => values::text_str(s)
            .map(|_| ())
            .map_err(|e| e.boxed_at(loc.clone(), value.clone())),
        Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| {
            loc.push(i.into());
            let result = walk(item, loc, keys, depth + 1);
            loc.pop();
            result
        }),
        Value::Object(map) => {
            *keys += map.len();
            if *keys > MAX_KEYS {
                return Err(Invalid::value_error(&format!(
                    "a request body may hold at most {MAX_KEYS} object keys"
                ))
                .boxed_at(loc.clone(), Value::Null));
            }
            map.iter().try_for_each(|(key, item)| {
                loc.push(key.as_str().into());
                let result = values::text_str(key)
                    .map_err(|e| e.boxed_at(loc.clone(), Value::String(key.clone())))
                    .and_then(|_| walk(item, loc, keys, depth + 1));
                loc.pop();
                result
            })
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn checked(value: Value) -> Result<(), Box<FieldError>> {
        check(
            &value,
            &mut vec!["body".into(), "workflow_state".into()],
            &mut 0,
        )
    }

    #[test]
    fn a_nul_inside_state_is_reported_at_its_path() {
        let e = checked(json!({"a": [1, "x\u{0}"]})).err();
        assert_eq!(
            e.map(|e| e.loc),
            Some(vec![
                json!("body"),
                json!("workflow_state"),
                json!("a"),
                json!(1)
            ])
        );
    }

    #[test]
    fn a_nul_in_a_key_is_refused() {
        assert!(checked(json!({"a\u{0}": 1})).is_err());
    }

    #[test]
    fn nesting_is_limited_to_64_levels() {
        let mut deep = json!(1);
        for _ in 0..MAX_DEPTH {
            deep = json!([deep]);
        }
        assert!(checked(deep.clone()).is_ok());
        assert!(checked(json!([deep])).is_err());
    }

    #[test]
    fn numbers_of_any_size_and_precision_are_left_as_they_are() {
        let state: Value = serde_json::from_str(&format!(
            r#"{{"a": [12345678901234567890123, 0.1000000000000000000001, -0.0, 1e400, -1E-400, {}]}}"#,
            "9".repeat(5_000)
        ))
        .unwrap_or(Value::Null);
        assert!(state.is_object());
        assert!(checked(state).is_ok());
    }

    #[test]
    fn more_than_ten_thousand_keys_are_refused() {
        let wide: serde_json::Map<String, Value> =
            (0..=MAX_KEYS).map(|i| (i.to_string(), json!(i))).collect();
        assert!(checked(Value::Object(wide)).is_err());
    }
}
