//! Parsers for single values, each failing with pydantic's error type and
//! message for that kind of value.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::Invalid;
use crate::Timestamp;

pub fn uuid_str(s: &str) -> Result<Uuid, Invalid> {
    Uuid::parse_str(s).map_err(|e| {
        Invalid::new("uuid_parsing", format!("Input should be a valid UUID, {e}"))
            .with_ctx(json!({ "error": e.to_string() }))
    })
}

pub fn uuid(v: &Value) -> Result<Uuid, Invalid> {
    match v {
        Value::String(s) => uuid_str(s),
        _ => Err(Invalid::new(
            "uuid_type",
            "UUID input should be a string, bytes or UUID object",
        )),
    }
}

/// A string that PostgreSQL can store: no NUL character. SQLite answers
/// the same so that the backends stay interchangeable.
pub fn text_str(s: &str) -> Result<&str, Invalid> {
    if s.contains('\0') {
        Err(Invalid::value_error(
            "text must not contain the NUL character (\\u0000)",
        ))
    } else {
        Ok(s)
    }
}

pub fn string(v: &Value) -> Result<&str, Invalid> {
    match v {
        Value::String(s) => text_str(s),
        _ => Err(Invalid::new(
            "string_type",
            "Input should be a valid string",
        )),
    }
}

/// Length bounds in characters, as pydantic counts them.
pub fn bounded(s: &str, min: usize, max: usize) -> Result<&str, Invalid> {
    let len = s.chars().count();
    let unit = |n: usize| if n == 1 { "character" } else { "characters" };
    if len < min {
        Err(Invalid::new(
            "string_too_short",
            format!("String should have at least {min} {}", unit(min)),
        )
        .with_ctx(json!({ "min_length": min })))
    } else if len > max {
        Err(Invalid::new(
            "string_too_long",
            format!("String should have at most {max} {}", unit(max)),
        )
        .with_ctx(json!({ "max_length": max })))
    } else {
        Ok(s)
    }
}

pub fn int_str(s: &str) -> Result<i64, Invalid> {
    s.trim().parse::<i64>().map_err(|_| {
        Invalid::new(
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer",
        )
    })
}

/// Integers in pydantic's lax mode: JSON integers, floats without a
/// fractional part, and numeric strings.
///
/// A [`serde_json::Number`] keeps the literal it was sent as (serde_json's
/// `arbitrary_precision`): an integer literal within i64 is taken exactly,
/// anything else as the nearest f64, as pydantic reads a JSON float:
/// `int_parsing_size` for an integer above i64 up to `u64::MAX` and for a
/// number beyond f64 (`1e400`); `int_from_float` for every other number
/// (an integer literal beyond u64 included, as pydantic reads it as a
/// float).
pub fn int(v: &Value) -> Result<i64, Invalid> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i)
            } else if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                // The guard keeps the value well inside i64.
                #[allow(clippy::cast_possible_truncation)]
                Ok(f as i64)
            } else if n.is_u64() || n.as_f64().is_none() {
                Err(Invalid::new(
                    "int_parsing_size",
                    "Unable to parse input string as an integer, exceeded maximum size",
                ))
            } else {
                Err(Invalid::new(
                    "int_from_float",
                    "Input should be a valid integer, got a number with a fractional part",
                ))
            }
        }
        Value::String(s) => int_str(s),
        _ => Err(Invalid::new("int_type", "Input should be a valid integer")),
    }
}

pub fn greater_than_equal(i: i64, ge: i64) -> Result<i64, Invalid> {
    if i >= ge {
        Ok(i)
    } else {
        Err(Invalid::new(
            "greater_than_equal",
            format!("Input should be greater than or equal to {ge}"),
        )
        .with_ctx(json!({ "ge": ge })))
    }
}

pub fn less_than_equal(i: i64, le: i64) -> Result<i64, Invalid> {
    if i <= le {
        Ok(i)
    } else {
        Err(Invalid::new(
            "less_than_equal",
            format!("Input should be less than or equal to {le}"),
        )
        .with_ctx(json!({ "le": le })))
    }
}

fn datetime_parsing(reason: &str) -> Invalid {
    Invalid::new(
        "datetime_parsing",
        format!("Input should be a valid datetime, {reason}"),
    )
    .with_ctx(json!({ "error": reason }))
}

/// RFC 3339 with any offset; without an offset the time is read as UTC.
pub fn datetime_str(s: &str) -> Result<Timestamp, Invalid> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Timestamp::new(dt.with_timezone(&Utc))
            .ok_or_else(|| datetime_parsing("value is outside the supported range"));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, format) {
            return Timestamp::new(naive.and_utc())
                .ok_or_else(|| datetime_parsing("value is outside the supported range"));
        }
    }
    if s.len() < 10 {
        Err(datetime_parsing("input is too short"))
    } else {
        Err(datetime_parsing("invalid datetime format"))
    }
}

/// Datetimes as pydantic takes them from JSON: strings, or numbers as Unix
/// time (seconds, or milliseconds past 2e10).
pub fn datetime(v: &Value) -> Result<Timestamp, Invalid> {
    match v {
        Value::String(s) => datetime_str(s),
        Value::Number(n) => {
            let secs = n.as_f64().unwrap_or(f64::NAN);
            let secs = if secs.abs() > 2e10 {
                secs / 1000.0
            } else {
                secs
            };
            Timestamp::from_unix_seconds(secs)
                .ok_or_else(|| datetime_parsing("value is outside the supported range"))
        }
        _ => Err(Invalid::new(
            "datetime_type",
            "Input should be a valid datetime",
        )),
    }
}

pub fn object(v: &Value) -> Result<&Map<String, Value>, Invalid> {
    v.as_object()
        .ok_or_else(|| Invalid::new("dict_type", "Input should be a valid dictionary"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_errors_explain_the_problem_like_pydantic() {
        let e = uuid(&json!("not-a-uuid")).err();
        assert_eq!(e.as_ref().map(|e| e.error_type), Some("uuid_parsing"));
        assert!(e.is_some_and(|e| e.msg.starts_with("Input should be a valid UUID, ")));
        assert_eq!(
            uuid(&json!(5)).err().map(|e| e.error_type),
            Some("uuid_type")
        );
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        assert!(bounded(&"é".repeat(100), 1, 100).is_ok());
        assert_eq!(
            bounded(&"é".repeat(101), 1, 100).err().map(|e| e.msg),
            Some("String should have at most 100 characters".into())
        );
        assert_eq!(
            bounded("", 1, 100).err().map(|e| e.msg),
            Some("String should have at least 1 character".into())
        );
    }

    #[test]
    fn integers_are_lax_like_pydantic() {
        assert_eq!(int(&json!(3)).ok(), Some(3));
        assert_eq!(int(&json!(3.0)).ok(), Some(3));
        assert_eq!(int(&json!("7")).ok(), Some(7));
        assert_eq!(
            int(&json!(3.5)).err().map(|e| e.error_type),
            Some("int_from_float")
        );
        assert_eq!(
            int(&json!("x")).err().map(|e| e.error_type),
            Some("int_parsing")
        );
        assert_eq!(
            int(&json!(true)).err().map(|e| e.error_type),
            Some("int_type")
        );
        assert_eq!(
            int(&json!(u64::MAX)).err().map(|e| e.error_type),
            Some("int_parsing_size")
        );
    }

    /// Every kind of JSON number an integer field can be sent, as its
    /// literal text, and what it validates to. Pinned before serde_json's
    /// `arbitrary_precision` was enabled: the answers did not change.
    #[test]
    fn integers_from_any_number_literal_validate_as_before_exact_numbers() {
        let cases: &[(&str, Result<i64, &str>)] = &[
            ("3", Ok(3)),
            ("1.0", Ok(1)),
            ("1e2", Ok(100)),
            ("1E2", Ok(100)),
            ("1.5e3", Ok(1500)),
            ("-0", Ok(0)),
            ("-0.0", Ok(0)),
            ("1e15", Ok(1_000_000_000_000_000)),
            // Read as a float, as pydantic does: the fraction is below f64's.
            ("1.0000000000000000000001", Ok(1)),
            ("9223372036854775807", Ok(i64::MAX)),
            ("-9223372036854775808", Ok(i64::MIN)),
            ("3.5", Err("int_from_float")),
            ("2.5E-7", Err("int_from_float")),
            ("-0.5", Err("int_from_float")),
            ("1e16", Err("int_from_float")),
            ("9223372036854775808", Err("int_parsing_size")),
            ("18446744073709551615", Err("int_parsing_size")),
            ("18446744073709551616", Err("int_from_float")),
            ("12345678901234567890123", Err("int_from_float")),
            ("-9223372036854775809", Err("int_from_float")),
            ("-12345678901234567890123", Err("int_from_float")),
            // Beyond f64.
            ("1e400", Err("int_parsing_size")),
            ("-1.5E+400", Err("int_parsing_size")),
        ];
        for (text, expected) in cases {
            let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            assert!(value.is_number(), "{text} is a JSON number");
            assert_eq!(
                int(&value).map_err(|e| e.error_type),
                *expected,
                "int({text})"
            );
        }
    }

    #[test]
    fn datetimes_accept_offsets_and_read_naive_times_as_utc() {
        let with_offset = datetime(&json!("2026-01-02T03:04:05+02:00")).ok();
        let naive = datetime(&json!("2026-01-02T01:04:05")).ok();
        assert!(with_offset.is_some());
        assert_eq!(with_offset, naive);
        assert_eq!(
            datetime(&json!("tomorrow")).err().map(|e| e.error_type),
            Some("datetime_parsing")
        );
        assert_eq!(
            datetime(&json!(null)).err().map(|e| e.error_type),
            Some("datetime_type")
        );
    }

    #[test]
    fn unix_times_are_read_from_any_number_literal() {
        let read = |text: &str| {
            datetime(&serde_json::from_str(text).unwrap_or(Value::Null)).map_err(|e| e.error_type)
        };
        let expected = Timestamp::from_unix_micros(1_700_000_000_000_000).ok_or("range");
        assert_eq!(read("1700000000"), expected);
        assert_eq!(read("1.7e9"), expected);
        assert_eq!(read("1700000000000"), expected);
        assert_eq!(read("-0.0"), Timestamp::from_unix_micros(0).ok_or("range"));
        assert_eq!(read("12345678901234567890123"), Err("datetime_parsing"));
        assert_eq!(read("1e400"), Err("datetime_parsing"));
    }

    #[test]
    fn nul_characters_are_refused_in_text() {
        assert_eq!(
            string(&json!("a\u{0}b")).err().map(|e| e.error_type),
            Some("value_error")
        );
        assert_eq!(
            string(&json!(1)).err().map(|e| e.error_type),
            Some("string_type")
        );
    }
}
