//! How rusqlite reads the shared row mapping's columns (`crate::rows`), and
//! how domain values are written: UUIDs as 16-byte blobs, times as Unix
//! microseconds (UTC), JSON as text.

use hydracore_domain::Timestamp;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::rows::{corrupt, Columns};
use crate::StoreError;

/// A rusqlite row, read by position.
pub struct SqliteRow<'a, 'r>(pub &'a rusqlite::Row<'r>);

impl Columns for SqliteRow<'_, '_> {
    fn uuid(&self, i: usize) -> Result<Uuid, StoreError> {
        Ok(self.0.get(i)?)
    }
    fn opt_uuid(&self, i: usize) -> Result<Option<Uuid>, StoreError> {
        Ok(self.0.get(i)?)
    }
    fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.0.get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.0.get(i)?)
    }
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        Ok(self.0.get(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.0.get(i)?)
    }
    fn opt_time(&self, i: usize) -> Result<Option<Timestamp>, StoreError> {
        timestamp_opt(self.0.get(i)?)
    }
    fn json(&self, i: usize) -> Result<Value, StoreError> {
        let text: Option<String> = self.0.get(i)?;
        text.map_or(Ok(Value::Null), |text| {
            serde_json::from_str(&text).map_err(|e| corrupt("JSON column", &e.to_string()))
        })
    }
}

pub fn timestamp(micros: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_unix_micros(micros).ok_or_else(|| corrupt("timestamp", &micros.to_string()))
}

pub fn timestamp_opt(micros: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    micros.map(timestamp).transpose()
}

pub fn micros(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::unix_micros)
}

/// JSON `null` is stored as SQL `NULL`.
pub fn json_text(value: &Value) -> Option<String> {
    (!value.is_null()).then(|| value.to_string())
}

pub fn object_text(map: &Map<String, Value>) -> Result<String, StoreError> {
    serde_json::to_string(map).map_err(|e| StoreError::Corrupt(format!("workflow_state: {e}")))
}
