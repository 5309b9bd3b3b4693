//! A suspended workflow as a question put to a person: the answer it
//! expects (a JSON Schema for `resume_data`), who should give it and by
//! when, and how it escalates when nobody does.

use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::validation::query::QueryReader;
use crate::validation::{values, FieldError, Invalid, ValidationErrors};
use crate::{Timestamp, Workflow, WorkflowType};

/// The largest resume schema, as compact JSON.
pub const SCHEMA_MAX_BYTES: usize = 64 * 1024;
/// The shortest escalation period.
pub const ESCALATE_EVERY_MIN_SECONDS: i64 = 60;
/// Escalation levels a suspension may climb to, at most.
pub const MAX_ESCALATION_LEVEL: i64 = 10;
/// The longest escalation period.
pub const ESCALATE_EVERY_MAX_SECONDS: i64 = 365 * 86_400;
/// The most violations a refused resume lists: a schema can fail an
/// answer in as many ways as it has clauses.
pub const MAX_VIOLATIONS: usize = 50;
/// A violation echoes its input, and says its message, only up to this
/// size.
const ECHOED_MAX_BYTES: usize = 1024;
/// The level escalation stops at when the suspension names none.
pub const DEFAULT_MAX_ESCALATION_LEVEL: i64 = 3;

/// A JSON Schema (draft 2020-12) that a resume's `resume_data` must
/// satisfy; checked when the suspension is made.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumeSchema(Value);

impl ResumeSchema {
    /// A schema a suspension may carry: at most [`SCHEMA_MAX_BYTES`], no
    /// `$ref` outside the schema itself, and valid against the 2020-12
    /// meta-schema.
    pub fn parse(schema: &Value) -> Result<Self, Invalid> {
        let size = serde_json::to_string(schema).map_or(usize::MAX, |s| s.len());
        if size > SCHEMA_MAX_BYTES {
            return Err(Invalid::value_error(&format!(
                "resume_schema must be at most {SCHEMA_MAX_BYTES} bytes of JSON (it is {size})"
            )));
        }
        if let Some(reference) = remote_ref(schema) {
            return Err(Invalid::value_error(&format!(
                "resume_schema may only refer to itself ($ref \"#...\"), not to {reference:?}"
            )));
        }
        compile(schema).map_err(|e| {
            Invalid::value_error(&format!("resume_schema is not a valid JSON Schema: {e}"))
        })?;
        Ok(Self(schema.clone()))
    }

    /// A schema as stored with a suspension (checked when it was made).
    pub fn stored(schema: Value) -> Self {
        Self(schema)
    }

    pub fn as_value(&self) -> &Value {
        &self.0
    }

    pub fn into_value(self) -> Value {
        self.0
    }

    /// Every way `data` fails the schema, each placed at
    /// `["body", "resume_data", ...]` with the keyword that failed as its
    /// `type`.
    pub fn check(&self, data: &Map<String, Value>) -> Result<(), ValidationErrors> {
        let validator = match compile(&self.0) {
            Ok(validator) => validator,
            Err(e) => {
                let reason = format!("the suspension's resume_schema cannot be used: {e}");
                return Err(ValidationErrors::single(
                    Invalid::value_error(&reason).at(loc(&[]), Value::Null),
                ));
            }
        };
        let instance = Value::Object(data.clone());
        let errors: Vec<FieldError> = validator
            .iter_errors(&instance)
            .take(MAX_VIOLATIONS)
            .map(|e| {
                let path: Vec<Value> = e
                    .instance_path()
                    .iter()
                    .map(|segment| match segment {
                        jsonschema::paths::LocationSegment::Index(i) => json!(i),
                        jsonschema::paths::LocationSegment::Property(p) => json!(p),
                    })
                    .collect();
                let input = e.instance().clone().into_owned();
                let small =
                    serde_json::to_string(&input).is_ok_and(|s| s.len() <= ECHOED_MAX_BYTES);
                let mut msg = e.to_string();
                if msg.len() > ECHOED_MAX_BYTES {
                    let cut = (0..=ECHOED_MAX_BYTES)
                        .rev()
                        .find(|i| msg.is_char_boundary(*i))
                        .unwrap_or(0);
                    msg.truncate(cut);
                    msg.push('…');
                }
                FieldError {
                    error_type: keyword_type(e.kind().keyword()),
                    loc: loc(&path),
                    msg,
                    input: if small { input } else { Value::Null },
                    ctx: None,
                }
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(errors))
        }
    }
}

fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::draft202012::options()
        .build(schema)
        .map_err(|e| e.to_string())
}

fn loc(path: &[Value]) -> Vec<Value> {
    let mut loc = vec![json!("body"), json!("resume_data")];
    loc.extend_from_slice(path);
    loc
}

/// The keywords of 2020-12 as `'static` names for the error `type`; one
/// this list does not know is `schema`.
fn keyword_type(keyword: &str) -> &'static str {
    const KEYWORDS: &[&str] = &[
        "type",
        "enum",
        "const",
        "multipleOf",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "uniqueItems",
        "maxContains",
        "minContains",
        "contains",
        "maxProperties",
        "minProperties",
        "required",
        "dependentRequired",
        "additionalProperties",
        "unevaluatedProperties",
        "unevaluatedItems",
        "propertyNames",
        "items",
        "prefixItems",
        "additionalItems",
        "not",
        "anyOf",
        "oneOf",
        "allOf",
        "if",
        "format",
        "falseSchema",
    ];
    KEYWORDS
        .iter()
        .find(|k| **k == keyword)
        .copied()
        .unwrap_or("schema")
}

/// The first `$ref` (or `$dynamicRef`) in `schema` that points outside it.
fn remote_ref(schema: &Value) -> Option<String> {
    match schema {
        Value::Object(map) => map
            .iter()
            .find_map(|(key, value)| match (key.as_str(), value) {
                ("$ref" | "$dynamicRef", Value::String(r)) if !r.starts_with('#') => {
                    Some(r.clone())
                }
                _ => remote_ref(value),
            }),
        Value::Array(items) => items.iter().find_map(remote_ref),
        _ => None,
    }
}

/// `escalate_every`: whole seconds, or an ISO-8601 duration of weeks,
/// days, hours, minutes and seconds (`PT30M`, `P1DT12H`, `P2W`); at least
/// [`ESCALATE_EVERY_MIN_SECONDS`].
pub fn escalation_period(v: &Value) -> Result<i64, Invalid> {
    let seconds = match v {
        Value::String(s) => iso8601_seconds(s).ok_or_else(|| {
            Invalid::value_error(
                "escalate_every must be seconds or an ISO-8601 duration such as PT30M",
            )
        })?,
        other => crate::validation::values::int(other)?,
    };
    if !(ESCALATE_EVERY_MIN_SECONDS..=ESCALATE_EVERY_MAX_SECONDS).contains(&seconds) {
        return Err(Invalid::value_error(&format!(
            "escalate_every must be at least {ESCALATE_EVERY_MIN_SECONDS} seconds and at most \
             {ESCALATE_EVERY_MAX_SECONDS} (a year)"
        )));
    }
    Ok(seconds)
}

/// `PnW`, or `PnD` / `PTnHnMnS` and their combinations, in seconds. Years
/// and months have no fixed length and are refused.
fn iso8601_seconds(text: &str) -> Option<i64> {
    let rest = text.trim().strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) if !time.is_empty() => (date, Some(time)),
        Some(_) => return None,
        None => (rest, None),
    };
    let mut total: i64 = 0;
    let mut any = false;
    let mut add = |part: &str, units: &[(char, i64)]| -> Option<()> {
        let mut number = String::new();
        let mut next_unit = 0;
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let at = units[next_unit..].iter().position(|(u, _)| *u == c)? + next_unit;
            let n: i64 = number.parse().ok()?;
            total = total.checked_add(n.checked_mul(units[at].1)?)?;
            number.clear();
            next_unit = at + 1;
            any = true;
        }
        number.is_empty().then_some(())
    };
    add(date, &[('W', 7 * 86_400), ('D', 86_400)])?;
    if let Some(time) = time {
        add(time, &[('H', 3_600), ('M', 60), ('S', 1)])?;
    }
    any.then_some(total)
}

/// Decisions per inbox page at most, and by default.
pub const INBOX_LIMIT_MAX: i64 = 100;
pub const INBOX_LIMIT_DEFAULT: i64 = 20;

/// Filters and paging of the inbox (`GET /v1/decisions`).
#[derive(Debug, Clone, PartialEq)]
pub struct InboxQuery {
    pub assigned_to: Option<String>,
    /// `true`: only those past their due time; `false`: only the others.
    pub overdue: Option<bool>,
    pub workflow_type: Option<WorkflowType>,
    pub instance_id: Option<Uuid>,
    pub step: Option<String>,
    pub limit: i64,
    pub after: Option<InboxCursor>,
}

impl InboxQuery {
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, ValidationErrors> {
        let mut q = QueryReader::new(pairs);
        let query = Self {
            assigned_to: q.optional("assigned_to", |s| Ok(s.to_owned())),
            overdue: q.optional("overdue", |s| match s {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(Invalid::new(
                    "bool_parsing",
                    "Input should be a valid boolean",
                )),
            }),
            workflow_type: q.optional("workflow_type", |s| {
                WorkflowType::parse(s)
                    .ok_or_else(|| Invalid::enum_mismatch(WorkflowType::expected()))
            }),
            instance_id: q.optional("instance_id", values::uuid_str),
            step: q.optional("step", |s| Ok(s.to_owned())),
            limit: q.int("limit", INBOX_LIMIT_DEFAULT, 1, Some(INBOX_LIMIT_MAX)),
            after: q.optional("cursor", InboxCursor::parse),
        };
        q.finish(query)
    }
}

/// A place in the inbox's order: due time (none last), then suspension
/// time, then id. The page after it starts with the next decision in that
/// order, so pages neither skip nor repeat while decisions are resumed
/// between them. Clients see it as an opaque string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxCursor {
    pub due_at: Option<Timestamp>,
    pub suspended_at: Timestamp,
    pub id: Uuid,
}

impl InboxCursor {
    /// The place of `workflow` (suspended).
    pub fn of(workflow: &Workflow) -> Self {
        Self {
            due_at: workflow.next_action_at,
            suspended_at: workflow.suspended_at.unwrap_or(workflow.updated_at),
            id: workflow.id,
        }
    }

    /// 64 hex digits: the due time's microseconds (all `f` for none), the
    /// suspension's, then the id.
    pub fn encode(&self) -> String {
        // The bits of each i64 as they are: a round trip through u64 keeps them.
        let due = self.due_at.map_or(u64::MAX, |t| t.unix_micros() as u64);
        let suspended = self.suspended_at.unix_micros() as u64;
        format!("{due:016x}{suspended:016x}{}", self.id.simple())
    }

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let invalid = || Invalid::value_error("not a cursor this service gave out");
        if s.len() != 64 || !s.is_ascii() {
            return Err(invalid());
        }
        let micros = |hex: &str| u64::from_str_radix(hex, 16).map_err(|_| invalid());
        let time = |m: u64| Timestamp::from_unix_micros(m as i64).ok_or_else(invalid);
        let due = micros(&s[..16])?;
        let due_at = if due == u64::MAX {
            None
        } else {
            Some(time(due)?)
        };
        Ok(Self {
            due_at,
            suspended_at: time(micros(&s[16..32])?)?,
            id: Uuid::try_parse(&s[32..]).map_err(|_| invalid())?,
        })
    }
}

/// A suspended workflow as the inbox lists it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Decision {
    /// The workflow's id.
    pub id: Uuid,
    pub instance_id: Uuid,
    pub workflow_type: WorkflowType,
    pub title: Option<String>,
    pub reference: Option<String>,
    pub customer_id: Uuid,
    pub suspended_step: Option<String>,
    pub suspend_payload: Value,
    pub resume_schema: Option<Value>,
    pub assigned_to: Option<String>,
    /// The workflow's `next_action_at`.
    pub due_at: Option<Timestamp>,
    /// Whether `due_at` has passed.
    pub overdue: bool,
    pub escalation_level: i64,
    pub suspended_at: Option<Timestamp>,
    pub version: i64,
}

impl Decision {
    /// `workflow` (suspended) as a decision at `now`.
    pub fn of(workflow: Workflow, now: Timestamp) -> Self {
        Self {
            overdue: workflow.next_action_at.is_some_and(|due| due <= now),
            id: workflow.id,
            instance_id: workflow.instance_id,
            workflow_type: workflow.workflow_type,
            title: workflow.title,
            reference: workflow.reference,
            customer_id: workflow.customer_id,
            suspended_step: workflow.suspended_step,
            suspend_payload: workflow.suspend_payload,
            resume_schema: workflow.resume_schema,
            assigned_to: workflow.assigned_to,
            due_at: workflow.next_action_at,
            escalation_level: workflow.escalation_level,
            suspended_at: workflow.suspended_at,
            version: workflow.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> ResumeSchema {
        ResumeSchema::parse(&json!({
            "type": "object",
            "required": ["approved", "plan"],
            "properties": {
                "approved": {"type": "boolean"},
                "plan": {
                    "type": "array",
                    "items": {"type": "object", "required": ["amount"],
                              "properties": {"amount": {"type": "number", "minimum": 1}}}
                }
            }
        }))
        .unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn an_answer_that_fits_the_schema_passes() {
        let data = json!({"approved": true, "plan": [{"amount": 100}]});
        assert!(schema()
            .check(data.as_object().unwrap_or(&Map::new()))
            .is_ok());
    }

    #[test]
    fn each_violation_is_placed_in_the_data_and_named_by_its_keyword() {
        let data = json!({"approved": "yes", "plan": [{"amount": 0}, {}]});
        let e = schema()
            .check(data.as_object().unwrap_or(&Map::new()))
            .err();
        let mut found: Vec<(&str, Vec<Value>)> = e
            .as_ref()
            .map(|e| e.0.iter().map(|f| (f.error_type, f.loc.clone())).collect())
            .unwrap_or_default();
        found.sort_by_key(|(_, loc)| loc.iter().map(Value::to_string).collect::<Vec<_>>());
        assert_eq!(
            found,
            vec![
                ("type", loc(&[json!("approved")])),
                ("minimum", loc(&[json!("plan"), json!(0), json!("amount")])),
                ("required", loc(&[json!("plan"), json!(1)])),
            ]
        );
    }

    #[test]
    fn a_schema_that_is_not_one_or_refers_elsewhere_or_is_too_big_is_refused() {
        assert!(ResumeSchema::parse(&json!({"type": 12})).is_err());
        assert!(ResumeSchema::parse(&json!({"$ref": "https://example.com/s.json"})).is_err());
        assert!(ResumeSchema::parse(
            &json!({"$defs": {"a": {"type": "string"}}, "properties": {"x": {"$ref": "#/$defs/a"}}})
        )
        .is_ok());
        let big = json!({"description": "x".repeat(SCHEMA_MAX_BYTES)});
        assert!(ResumeSchema::parse(&big).is_err());
    }

    #[test]
    fn an_inbox_cursor_reads_back_as_the_place_it_was_made_from() {
        for due_at in [None, Some(Timestamp::now())] {
            let place = InboxCursor {
                due_at,
                suspended_at: Timestamp::now(),
                id: Uuid::now_v7(),
            };
            assert_eq!(InboxCursor::parse(&place.encode()), Ok(place));
        }
        assert!(InboxCursor::parse("nope").is_err());
    }

    #[test]
    fn an_inbox_query_takes_its_filters_and_refuses_bad_ones() {
        let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let q = InboxQuery::from_pairs(&pairs(&[("overdue", "true"), ("assigned_to", "ops")]));
        assert!(q.is_ok_and(|q| q.overdue == Some(true)
            && q.assigned_to.as_deref() == Some("ops")
            && q.limit == INBOX_LIMIT_DEFAULT));
        for bad in [
            ("overdue", "yes"),
            ("limit", "101"),
            ("cursor", "x"),
            ("workflow_type", "x"),
        ] {
            assert!(InboxQuery::from_pairs(&pairs(&[bad])).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_escalation_period_is_seconds_or_an_iso_duration_of_a_minute_or_more() {
        for (given, seconds) in [
            (json!(60), 60),
            (json!("PT30M"), 1_800),
            (json!("P1DT12H"), 129_600),
            (json!("P2W"), 1_209_600),
            (json!("PT1H30M15S"), 5_415),
        ] {
            assert_eq!(escalation_period(&given).ok(), Some(seconds), "{given}");
        }
        for refused in [
            json!(59),
            json!("PT59S"),
            json!("P53W"),
            json!("P1M"),
            json!("PT"),
            json!("P"),
            json!("1h"),
            json!("PT5M1H"),
        ] {
            assert!(escalation_period(&refused).is_err(), "{refused}");
        }
    }
}
