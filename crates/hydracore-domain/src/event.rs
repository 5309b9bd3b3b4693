//! What a change tells the world: every create and change of a workflow is
//! also one event, written with it, that clients stream, page or wait on.

use serde::Serialize;
use serde_json::Value;

use uuid::Uuid;

use crate::validation::query::QueryReader;
use crate::validation::{values, Invalid, ValidationErrors};
use crate::{Status, Timestamp, Workflow};

/// The kind of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
pub enum EventType {
    #[serde(rename = "workflow.created")]
    Created,
    #[serde(rename = "workflow.advanced")]
    Advanced,
    #[serde(rename = "workflow.suspended")]
    Suspended,
    #[serde(rename = "workflow.resumed")]
    Resumed,
    #[serde(rename = "workflow.aborted")]
    Aborted,
    #[serde(rename = "workflow.expired")]
    Expired,
    #[serde(rename = "workflow.escalated")]
    Escalated,
    /// A change that made the workflow `completed`.
    #[serde(rename = "workflow.completed")]
    Completed,
}

impl EventType {
    pub const ALL: [EventType; 8] = [
        EventType::Created,
        EventType::Advanced,
        EventType::Suspended,
        EventType::Resumed,
        EventType::Aborted,
        EventType::Expired,
        EventType::Escalated,
        EventType::Completed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Created => "workflow.created",
            EventType::Advanced => "workflow.advanced",
            EventType::Suspended => "workflow.suspended",
            EventType::Resumed => "workflow.resumed",
            EventType::Aborted => "workflow.aborted",
            EventType::Expired => "workflow.expired",
            EventType::Escalated => "workflow.escalated",
            EventType::Completed => "workflow.completed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The event of a change that left `workflow` as it is, by a command
    /// that reports itself as `by_command`: a change into `completed` is
    /// `workflow.completed` whatever made it.
    pub fn of_change(by_command: EventType, from: Status, workflow: &Workflow) -> Self {
        if workflow.status == Status::Completed && from != Status::Completed {
            EventType::Completed
        } else {
            by_command
        }
    }
}

/// An event as clients read it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Event {
    /// Ordered within the tenant; opaque.
    #[schema(value_type = String)]
    pub id: EventId,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub occurred_at: Timestamp,
    pub tenant_id: Uuid,
    pub instance_id: Uuid,
    pub workflow_id: Uuid,
    pub version: i64,
    pub actor: Option<String>,
    /// The record after the change, without its history.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// An event's place in its tenant's order: two numbers (PostgreSQL: the
/// writing transaction and the insertion; SQLite: 0 and the row), shown to
/// clients as 32 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct EventId(pub i64, pub i64);

impl EventId {
    pub fn encode(&self) -> String {
        // The bits of each i64 as they are: a round trip through u64 keeps them.
        format!("{:016x}{:016x}", self.0 as u64, self.1 as u64)
    }

    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 32 || !s.is_ascii() {
            return None;
        }
        let part = |hex: &str| u64::from_str_radix(hex, 16).ok().map(|n| n as i64);
        Some(Self(part(&s[..16])?, part(&s[16..])?))
    }
}

impl Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.encode())
    }
}

/// Events per page at most, and by default.
pub const EVENTS_LIMIT_MAX: i64 = 500;
pub const EVENTS_LIMIT_DEFAULT: i64 = 100;

/// Which events to read: those after `after`, at most `limit`, of one
/// workflow and of some types when asked.
#[derive(Debug, Clone, PartialEq)]
pub struct EventQuery {
    pub after: Option<EventId>,
    pub limit: i64,
    pub workflow_id: Option<Uuid>,
    /// Empty: every type.
    pub types: Vec<EventType>,
}

impl EventQuery {
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, ValidationErrors> {
        let mut q = QueryReader::new(pairs);
        let types = pairs
            .iter()
            .filter(|(k, _)| k == "type")
            .filter_map(|(_, v)| match EventType::parse(v) {
                Some(t) => Some(t),
                None => {
                    let expected =
                        crate::validation::expected_list(EventType::ALL.iter().map(|t| t.as_str()));
                    q.refuse("type", Invalid::enum_mismatch(expected));
                    None
                }
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let query = Self {
            after: q.optional("after", |s| {
                EventId::parse(s)
                    .ok_or_else(|| Invalid::value_error("not an event id this service gave out"))
            }),
            limit: q.int("limit", EVENTS_LIMIT_DEFAULT, 1, Some(EVENTS_LIMIT_MAX)),
            workflow_id: q.optional("workflow_id", values::uuid_str),
            types,
        };
        q.finish(query)
    }
}

/// An event's `data`: the record after the change, without its history.
pub fn data(workflow: &Workflow) -> Value {
    let mut value = serde_json::to_value(workflow).unwrap_or_default();
    if let Value::Object(map) = &mut value {
        map.remove("history");
        map.remove("history_total");
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_from_its_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(
                serde_json::to_value(t).ok(),
                Some(Value::String(t.as_str().into()))
            );
        }
        assert_eq!(EventType::parse("workflow.nope"), None);
    }

    #[test]
    fn an_event_id_reads_back_and_orders_as_its_numbers() {
        let id = EventId(12_345, 7);
        assert_eq!(EventId::parse(&id.encode()), Some(id));
        assert!(EventId(1, 9) < EventId(2, 0));
        assert_eq!(EventId::parse("nope"), None);
    }
}
