//! Points in time as the API shows them: UTC, microsecond precision.

use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

/// A UTC instant truncated to microseconds, the precision both backends
/// store, so that a value reads back exactly as it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// Years outside 1..=9999 cannot be written as RFC 3339.
    pub fn new(dt: DateTime<Utc>) -> Option<Self> {
        if !(1..=9999).contains(&dt.year()) {
            return None;
        }
        Self::from_unix_micros(dt.timestamp_micros())
    }

    pub fn now() -> Self {
        let now = Utc::now();
        DateTime::from_timestamp_micros(now.timestamp_micros())
            .map(Self)
            .unwrap_or(Self(now))
    }

    pub fn from_unix_micros(micros: i64) -> Option<Self> {
        DateTime::from_timestamp_micros(micros).map(Self)
    }

    pub fn from_unix_seconds(secs: f64) -> Option<Self> {
        let micros = (secs * 1e6).round();
        if !micros.is_finite() || micros.abs() > 2.5e17 {
            return None;
        }
        // Bounded just above, so the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let micros = micros as i64;
        Self::from_unix_micros(micros).and_then(|t| Self::new(t.0))
    }

    /// `seconds` later, if that is still a time the API can write.
    pub fn plus_seconds(self, seconds: i64) -> Option<Self> {
        self.0
            .checked_add_signed(chrono::TimeDelta::try_seconds(seconds)?)
            .and_then(Self::new)
    }

    pub fn unix_micros(self) -> i64 {
        self.0.timestamp_micros()
    }

    pub fn as_datetime(self) -> DateTime<Utc> {
        self.0
    }

    /// RFC 3339, UTC, `Z` suffix, six fractional digits.
    pub fn to_rfc3339(self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(t: Timestamp) -> Self {
        t.0
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        crate::validation::values::datetime_str(&text).map_err(|e| serde::de::Error::custom(e.msg))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// In OpenAPI documents: an RFC 3339 `date-time` string.
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_in_utc_with_z_and_microseconds() {
        let t = Timestamp::from_unix_micros(1_700_000_000_123_456);
        assert_eq!(
            t.map(|t| t.to_rfc3339()).as_deref(),
            Some("2023-11-14T22:13:20.123456Z")
        );
    }

    #[test]
    fn now_has_no_sub_microsecond_part_so_it_round_trips() {
        let now = Timestamp::now();
        assert_eq!(Timestamp::from_unix_micros(now.unix_micros()), Some(now));
    }

    #[test]
    fn years_beyond_rfc_3339_are_refused() {
        assert!(Timestamp::from_unix_seconds(1e15).is_none());
        assert!(Timestamp::from_unix_seconds(f64::NAN).is_none());
    }
}
