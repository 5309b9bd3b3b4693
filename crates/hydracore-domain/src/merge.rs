//! RFC 7396 JSON Merge Patch, how `workflow_state` and `resume_data` land.
//!
//! Values are moved as they are: a number keeps the literal it was sent as
//! (serde_json's `arbitrary_precision`), never rounded through f64.

use serde_json::{Map, Value};

/// Merges `patch` into `target`: objects merge recursively, `null` deletes
/// a key, anything else replaces the value.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        merge_object(target, patch);
    }
}

/// [`merge_patch`] for the common case, an object patched by an object.
pub fn merge_object(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merged(target: Value, patch: Value) -> Value {
        let mut target = target;
        merge_patch(&mut target, &patch);
        target
    }

    /// The examples of RFC 7396, appendix A.
    #[test]
    fn merge_follows_every_example_of_rfc_7396() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (target, patch, expected) in cases {
            assert_eq!(
                merged(target.clone(), patch.clone()),
                expected,
                "{target} + {patch}"
            );
        }
    }

    fn parsed(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or(Value::Null)
    }

    /// serde_json's `arbitrary_precision` keeps each number's literal:
    /// nothing is rounded through f64, in the target or from the patch.
    #[test]
    fn a_merge_keeps_every_number_exactly_as_it_was_sent() {
        let target = parsed(
            r#"{"big": 12345678901234567890123, "long": 0.1000000000000000000001, "keep": {"zero": -0.0, "huge": 1e400}, "gone": 1}"#,
        );
        let patch = parsed(
            r#"{"gone": null, "keep": {"tiny": 2.5E-7, "neg": -98765432109876543210987654321}, "added": [12345678901234567890123, 0.1000000000000000000001, -0.0, 1e400]}"#,
        );
        let merged = merged(target, patch);
        assert_eq!(
            merged.to_string(),
            r#"{"big":12345678901234567890123,"long":0.1000000000000000000001,"keep":{"zero":-0.0,"huge":1e+400,"tiny":2.5e-7,"neg":-98765432109876543210987654321},"added":[12345678901234567890123,0.1000000000000000000001,-0.0,1e+400]}"#,
        );
        // Written back and read again, the merged state is the same value.
        assert_eq!(parsed(&merged.to_string()), merged);
    }

    #[test]
    fn numbers_that_f64_would_round_stay_distinct_after_a_merge() {
        let merged = merged(
            parsed(r#"{"a": 12345678901234567890123, "z": -0.0}"#),
            parsed(r#"{"b": 12345678901234567890124, "c": 0.1000000000000000000001}"#),
        );
        assert_ne!(merged["a"], merged["b"]);
        assert_ne!(merged["a"], json!(12_345_678_901_234_567_890_123_f64));
        assert_ne!(merged["c"], json!(0.1));
        assert_ne!(merged["z"], json!(0.0));
        assert_eq!(merged["z"].to_string(), "-0.0");
        assert_eq!(
            merged["a"].as_number().map(serde_json::Number::as_str),
            Some("12345678901234567890123")
        );
    }

    #[test]
    fn an_empty_patch_changes_nothing() {
        assert_eq!(
            merged(json!({"a":{"b":1}}), json!({})),
            json!({"a":{"b":1}})
        );
    }
}
