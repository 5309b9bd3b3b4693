//! Idempotent requests: an `Idempotency-Key` makes a retried create, or a
//! retried (or double-clicked) suspend, resume or abort, return the first
//! answer instead of acting twice.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::validation::{Invalid, ValidationErrors};
use crate::{loc, Timestamp};

/// How long a key is remembered.
pub const KEY_TTL_MICROS: i64 = 24 * 3600 * 1_000_000;
/// A claim whose request never finished (the process died) is taken over
/// after this long, so that a crash cannot block a key for a day.
pub const IN_FLIGHT_STALE_MICROS: i64 = 60 * 1_000_000;
const MAX_KEY_CHARS: usize = 255;

/// A validated `Idempotency-Key` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// 1 to 255 visible ASCII characters.
    pub fn parse(raw: &str) -> Result<Self, ValidationErrors> {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_KEY_CHARS
            && raw.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationErrors::single(
                Invalid::value_error("Idempotency-Key must be 1 to 255 visible ASCII characters")
                    .at(
                        loc!["header", "idempotency-key"],
                        Value::String(raw.to_owned()),
                    ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The SHA-256 of a request body with object keys sorted, so that a retry
/// that serializes its keys in another order is still the same request.
///
/// Numbers are hashed as the literal text they were sent as (serde_json's
/// `arbitrary_precision` keeps it): the body is stored as sent, so `1.0`
/// and `1`, or `1e2` and `100`, make different records, and a retry that
/// writes a number differently is another request (a mismatch), not a
/// replay of a record it would not have created.
pub fn fingerprint(body: &Value) -> Vec<u8> {
    let mut hasher = Sha256::new();
    write_canonical(body, &mut hasher);
    hasher.finalize().to_vec()
}

fn write_canonical(value: &Value, hasher: &mut Sha256) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            hasher.update(b"{");
            for key in keys {
                hasher.update(Value::String(key.clone()).to_string().as_bytes());
                hasher.update(b":");
                if let Some(v) = map.get(key) {
                    write_canonical(v, hasher);
                }
                hasher.update(b",");
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                write_canonical(item, hasher);
                hasher.update(b",");
            }
            hasher.update(b"]");
        }
        Value::Number(n) => hasher.update(n.as_str().as_bytes()),
        Value::String(_) => hasher.update(value.to_string().as_bytes()),
        Value::Bool(true) => hasher.update(b"true"),
        Value::Bool(false) => hasher.update(b"false"),
        Value::Null => hasher.update(b"null"),
    }
}

/// A key as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredKey {
    pub fingerprint: Vec<u8>,
    /// Set once the create or change it guards has committed.
    pub workflow_id: Option<Uuid>,
    /// A change's answer (an [`ActionAnswer`]), kept to answer a replay;
    /// a create's replay reads the workflow instead.
    pub answer: Option<Value>,
    pub created_at: Timestamp,
}

/// What a suspend, resume or abort answers, as kept for its replays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionAnswer {
    pub id: Uuid,
    pub message: String,
    pub status: crate::Status,
    pub version: i64,
}

/// What a request holding a key may do.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// First use (or the old use expired): go ahead and create.
    Fresh,
    /// Answer as the first request was answered: with the workflow it
    /// created, or the answer its change kept.
    Replay {
        workflow_id: Uuid,
        answer: Option<Value>,
    },
    /// The key was used with another body: 422.
    Mismatch,
    /// The first request is still running: 409.
    InFlight,
}

pub fn decide(stored: Option<&StoredKey>, fingerprint: &[u8], now: Timestamp) -> Claim {
    let Some(stored) = stored else {
        return Claim::Fresh;
    };
    let age = now
        .unix_micros()
        .saturating_sub(stored.created_at.unix_micros());
    if age > KEY_TTL_MICROS {
        return Claim::Fresh;
    }
    if stored.fingerprint != fingerprint {
        return Claim::Mismatch;
    }
    match stored.workflow_id {
        Some(workflow_id) => Claim::Replay {
            workflow_id,
            answer: stored.answer.clone(),
        },
        None if age > IN_FLIGHT_STALE_MICROS => Claim::Fresh,
        None => Claim::InFlight,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(micros: i64) -> Timestamp {
        Timestamp::from_unix_micros(micros).unwrap_or_else(Timestamp::now)
    }

    fn stored(workflow_id: Option<Uuid>, created: i64) -> StoredKey {
        StoredKey {
            fingerprint: fingerprint(&json!({"a": 1})),
            workflow_id,
            answer: None,
            created_at: at(created),
        }
    }

    #[test]
    fn key_order_does_not_change_the_fingerprint_but_values_do() {
        assert_eq!(
            fingerprint(&json!({"a": 1, "b": [1, {"c": 2, "d": 3}]})),
            fingerprint(&json!({"b": [1, {"d": 3, "c": 2}], "a": 1}))
        );
        assert_ne!(fingerprint(&json!({"a": 1})), fingerprint(&json!({"a": 2})));
        assert_ne!(
            fingerprint(&json!({"a": "1"})),
            fingerprint(&json!({"a": 1}))
        );
    }

    fn parsed(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or(Value::Null)
    }

    #[test]
    fn the_fingerprint_of_a_body_is_stable_and_numbers_count_by_their_exact_text() {
        let text = r#"{"b": [1e2, -0.0, 12345678901234567890123], "a": {"y": 0.1000000000000000000001, "x": "é\n"}, "c": 1e400}"#;
        let reordered = r#"{"c": 1e400, "a": {"x": "é\n", "y": 0.1000000000000000000001}, "b": [1e2, -0.0, 12345678901234567890123]}"#;
        let first = fingerprint(&parsed(text));
        assert_eq!(first.len(), 32);
        assert_eq!(fingerprint(&parsed(text)), first);
        assert_eq!(fingerprint(&parsed(reordered)), first);
        // Pinned, so that retries across an upgrade still replay: keys
        // sorted, each value as its JSON text, numbers as stored (the
        // digits as sent; serde_json writes an exponent as `e+` or `e-`).
        let canonical = r#"{"a":{"x":"é\n","y":0.1000000000000000000001,},"b":[1e+2,-0.0,12345678901234567890123,],"c":1e+400,}"#;
        assert_eq!(first, Sha256::digest(canonical.as_bytes()).to_vec());
    }

    #[test]
    fn numbers_written_differently_are_different_requests() {
        let bodies = [
            r#"{"a": 1}"#,
            r#"{"a": 1.0}"#,
            r#"{"a": 100}"#,
            r#"{"a": 1e2}"#,
            r#"{"a": 1e-2}"#,
            r#"{"a": 0}"#,
            r#"{"a": -0}"#,
            r#"{"a": -0.0}"#,
            r#"{"a": 12345678901234567890123}"#,
            r#"{"a": 12345678901234567890124}"#,
            r#"{"a": 0.1000000000000000000001}"#,
            r#"{"a": 0.1000000000000000000002}"#,
            r#"{"a": "1"}"#,
        ];
        let distinct: std::collections::HashSet<Vec<u8>> =
            bodies.iter().map(|b| fingerprint(&parsed(b))).collect();
        assert_eq!(distinct.len(), bodies.len());
        // Only the exponent's spelling is not kept: these are stored alike.
        assert_eq!(
            fingerprint(&parsed(r#"{"a": 1E2}"#)),
            fingerprint(&parsed(r#"{"a": 1e+2}"#))
        );
    }

    #[test]
    fn a_finished_request_is_replayed_and_another_body_is_a_mismatch() {
        let id = Uuid::from_u128(9);
        let s = stored(Some(id), 0);
        assert_eq!(
            decide(Some(&s), &fingerprint(&json!({"a": 1})), at(1)),
            Claim::Replay {
                workflow_id: id,
                answer: None
            }
        );
        assert_eq!(
            decide(Some(&s), &fingerprint(&json!({"a": 2})), at(1)),
            Claim::Mismatch
        );
    }

    #[test]
    fn a_running_request_blocks_until_it_goes_stale() {
        let s = stored(None, 0);
        let f = fingerprint(&json!({"a": 1}));
        assert_eq!(decide(Some(&s), &f, at(1)), Claim::InFlight);
        assert_eq!(
            decide(Some(&s), &f, at(IN_FLIGHT_STALE_MICROS + 1)),
            Claim::Fresh
        );
    }

    #[test]
    fn keys_are_forgotten_after_a_day() {
        let s = stored(Some(Uuid::from_u128(9)), 0);
        assert_eq!(
            decide(
                Some(&s),
                &fingerprint(&json!({"b": 1})),
                at(KEY_TTL_MICROS + 1)
            ),
            Claim::Fresh
        );
        assert_eq!(decide(None, &[], at(0)), Claim::Fresh);
    }

    #[test]
    fn keys_must_be_short_visible_ascii() {
        assert!(IdempotencyKey::parse("order-123").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("é").is_err());
    }
}
