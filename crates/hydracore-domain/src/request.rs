//! What callers ask for, parsed and validated from their JSON bodies and
//! query strings. Field names, optionality and bounds follow the seed API.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::decision::{escalation_period, ResumeSchema, MAX_ESCALATION_LEVEL};
use crate::validation::body::BodyReader;
use crate::validation::query::QueryReader;
use crate::validation::{values, Invalid, ValidationErrors};
use crate::{ActionName, Status, StepName, Timestamp, Workflow, WorkflowType};

/// `per_page` bounds and default of every list.
pub const PER_PAGE_DEFAULT: i64 = 20;
pub const PER_PAGE_MAX: i64 = 100;

fn workflow_type(v: &Value) -> Result<WorkflowType, Invalid> {
    let s = values::string(v)?;
    WorkflowType::parse(s).ok_or_else(|| Invalid::enum_mismatch(WorkflowType::expected()))
}

fn status(v: &Value) -> Result<Status, Invalid> {
    let s = values::string(v)?;
    Status::parse(s).ok_or_else(|| Invalid::enum_mismatch(Status::expected()))
}

/// Names and labels (`stage`, `reference`, `assigned_to`, `actor`): at
/// most this many characters.
pub const TEXT_MAX_CHARS: usize = 255;
/// A workflow's `title`: at most this many characters.
pub const TITLE_MAX_CHARS: usize = 1_000;
/// One history entry's free-form JSON (`action_detail`, `resume_data`):
/// at most this many bytes, as compact JSON. History is kept for good, so
/// each entry is bounded.
pub const DETAIL_MAX_BYTES: usize = 64 * 1024;

/// A string of at most `max` characters.
fn text(max: usize) -> impl Fn(&Value) -> Result<String, Invalid> {
    move |v| values::bounded(values::string(v)?, 0, max).map(str::to_owned)
}

/// An agent's own name for itself in the history: not the sweeper's.
fn actor(v: &Value) -> Result<String, Invalid> {
    let actor = text(TEXT_MAX_CHARS)(v)?;
    if actor
        .trim()
        .eq_ignore_ascii_case(&crate::Principal::System.default_actor())
    {
        return Err(Invalid::value_error(
            "actor cannot be \"system\": that name is the service's own",
        ));
    }
    Ok(actor)
}

/// Refuses `value` (the field `name`) when its compact JSON is larger than
/// [`DETAIL_MAX_BYTES`].
fn refuse_oversized(r: &mut BodyReader<'_>, name: &str, value: &impl serde::Serialize) {
    let size = serde_json::to_string(value).map_or(usize::MAX, |s| s.len());
    if size > DETAIL_MAX_BYTES {
        r.reject(
            name,
            Invalid::value_error(&format!(
                "{name} must be at most {DETAIL_MAX_BYTES} bytes of JSON (it is {size})"
            )),
        );
    }
}

/// `POST .../workflows`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateWorkflow {
    pub customer_id: Uuid,
    pub workflow_type: WorkflowType,
    pub stage: Option<String>,
    pub title: Option<String>,
    pub reference: Option<String>,
    pub assigned_to: Option<String>,
    pub workflow_state: Map<String, Value>,
    pub next_action_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
}

impl CreateWorkflow {
    /// `path_instance` is the instance of the URL: a body `instance_id` may
    /// repeat it but not contradict it.
    pub fn from_json(body: &Value, path_instance: Uuid) -> Result<Self, ValidationErrors> {
        let mut r = BodyReader::new(body)?;
        let customer_id = r.required("customer_id", values::uuid);
        let workflow_type = r.required("workflow_type", workflow_type);
        let stage = r.optional_value("stage", text(TEXT_MAX_CHARS));
        let title = r.optional_value("title", text(TITLE_MAX_CHARS));
        let reference = r.optional_value("reference", text(TEXT_MAX_CHARS));
        let assigned_to = r.optional_value("assigned_to", text(TEXT_MAX_CHARS));
        let workflow_state = r.json_object("workflow_state").unwrap_or_default();
        let next_action_at = r.optional_value("next_action_at", values::datetime);
        let expires_at = r.optional_value("expires_at", values::datetime);
        if let Some(instance_id) = r.optional_value("instance_id", values::uuid) {
            if instance_id != path_instance {
                r.reject(
                    "instance_id",
                    Invalid::value_error("instance_id must match the instance in the path"),
                );
            }
        }
        r.finish(|| {
            Some(Self {
                customer_id: customer_id?,
                workflow_type: workflow_type?,
                stage,
                title,
                reference,
                assigned_to,
                workflow_state,
                next_action_at,
                expires_at,
            })
        })
    }
}

/// `PATCH .../workflows/{id}`: an advance. For nullable fields `None` is
/// "not given" and `Some(None)` clears; for the others `None` is "no change".
#[derive(Debug, Clone, PartialEq)]
pub struct AdvanceWorkflow {
    pub action: ActionName,
    pub action_detail: Value,
    pub actor: Option<String>,
    pub approver_id: Option<Option<Uuid>>,
    pub assigned_to: Option<Option<String>>,
    pub escalation_level: Option<i64>,
    pub expires_at: Option<Option<Timestamp>>,
    pub next_action_at: Option<Option<Timestamp>>,
    pub stage: Option<Option<String>>,
    pub status: Option<Status>,
    pub workflow_state: Option<Map<String, Value>>,
}

impl AdvanceWorkflow {
    pub fn from_json(body: &Value) -> Result<Self, ValidationErrors> {
        let mut r = BodyReader::new(body)?;
        let action = r.required("action", |v| ActionName::parse(values::string(v)?));
        let action_detail = r.json("action_detail");
        refuse_oversized(&mut r, "action_detail", &action_detail);
        let actor = r.optional_value("actor", actor);
        let approver_id = r.optional("approver_id", values::uuid);
        let assigned_to = r.optional("assigned_to", text(TEXT_MAX_CHARS));
        let escalation_level = r.optional_value("escalation_level", |v| {
            values::greater_than_equal(values::int(v)?, 0)
        });
        let expires_at = r.optional("expires_at", values::datetime);
        let next_action_at = r.optional("next_action_at", values::datetime);
        let stage = r.optional("stage", text(TEXT_MAX_CHARS));
        let status = r.optional_value("status", status);
        let workflow_state = r.json_object("workflow_state");
        r.finish(|| {
            Some(Self {
                action: action?,
                action_detail,
                actor,
                approver_id,
                assigned_to,
                escalation_level,
                expires_at,
                next_action_at,
                stage,
                status,
                workflow_state,
            })
        })
    }
}

/// `POST .../suspend`: the question, and optionally the answer it expects,
/// who should give it, by when, and how it escalates.
#[derive(Debug, Clone, PartialEq)]
pub struct SuspendWorkflow {
    pub step: StepName,
    pub payload: Value,
    pub resume_schema: Option<ResumeSchema>,
    pub assigned_to: Option<String>,
    pub due_at: Option<Timestamp>,
    /// Seconds.
    pub escalate_every: Option<i64>,
    pub max_escalation_level: Option<i64>,
}

impl SuspendWorkflow {
    /// A suspension at `step` with `payload` and nothing more.
    pub fn at(step: StepName, payload: Value) -> Self {
        Self {
            step,
            payload,
            resume_schema: None,
            assigned_to: None,
            due_at: None,
            escalate_every: None,
            max_escalation_level: None,
        }
    }

    pub fn from_json(body: &Value) -> Result<Self, ValidationErrors> {
        let mut r = BodyReader::new(body)?;
        let step = r.required("step", |v| StepName::parse(values::string(v)?));
        let payload = r.json("payload");
        // Each suspended workflow's payload is in the approval queue's
        // answer: bounded as an entry is.
        refuse_oversized(&mut r, "payload", &payload);
        let resume_schema = r.optional_value("resume_schema", ResumeSchema::parse);
        let assigned_to = r.optional_value("assigned_to", text(TEXT_MAX_CHARS));
        let due_at = r.optional_value("due_at", values::datetime);
        let escalate_every = r.optional_value("escalate_every", escalation_period);
        let max_escalation_level = r.optional_value("max_escalation_level", |v| {
            values::less_than_equal(
                values::greater_than_equal(values::int(v)?, 1)?,
                MAX_ESCALATION_LEVEL,
            )
        });
        if max_escalation_level.is_some() && escalate_every.is_none() {
            r.reject(
                "max_escalation_level",
                Invalid::value_error("max_escalation_level needs escalate_every"),
            );
        }
        if escalate_every.is_some() && due_at.is_none() {
            r.reject(
                "escalate_every",
                Invalid::value_error(
                    "escalate_every needs due_at: escalation starts when it passes",
                ),
            );
        }
        r.finish(|| {
            Some(Self {
                step: step?,
                payload,
                resume_schema,
                assigned_to,
                due_at,
                escalate_every,
                max_escalation_level,
            })
        })
    }
}

/// `POST .../resume`. A missing or empty body resumes with no data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResumeWorkflow {
    pub resume_data: Map<String, Value>,
}

impl ResumeWorkflow {
    pub fn from_json(body: Option<&Value>) -> Result<Self, ValidationErrors> {
        let Some(body) = body else {
            return Ok(Self::default());
        };
        let mut r = BodyReader::new(body)?;
        let resume_data = r.json_object("resume_data").unwrap_or_default();
        refuse_oversized(&mut r, "resume_data", &resume_data);
        r.finish(|| Some(Self { resume_data }))
    }
}

/// A page of one workflow's history: the entries after `after` (a `seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryQuery {
    pub after: i64,
    pub limit: i64,
}

/// History entries per page at most, and by default.
pub const HISTORY_LIMIT_MAX: i64 = 1_000;
pub const HISTORY_LIMIT_DEFAULT: i64 = 100;

impl HistoryQuery {
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, ValidationErrors> {
        let mut q = QueryReader::new(pairs);
        let query = Self {
            after: q.int("after", 0, 0, None),
            limit: q.int("limit", HISTORY_LIMIT_DEFAULT, 1, Some(HISTORY_LIMIT_MAX)),
        };
        q.finish(query)
    }
}

/// How deep into a list `page` may reach (`page` × `per_page`): a deep
/// `OFFSET` reads every row it skips, so past this a client follows
/// `next_cursor`, which costs one page wherever it is.
pub const PAGE_DEPTH_MAX: i64 = 10_000;

/// Filters and paging of the workflow lists.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub customer_id: Option<Uuid>,
    pub workflow_type: Option<WorkflowType>,
    pub status: Option<Status>,
    pub reference: Option<String>,
    /// Dashboard only: the agent runtime's list is one instance already.
    pub instance_id: Option<Uuid>,
    pub page: i64,
    pub per_page: i64,
    /// The page after this row instead of page `page`.
    pub cursor: Option<ListCursor>,
}

/// A place in a list's order (newest first: `created_at`, then `id`, both
/// descending): a cursor page holds the rows after it. Clients see it as
/// an opaque string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListCursor {
    pub created_at: Timestamp,
    pub id: Uuid,
}

impl ListCursor {
    /// The place just after `workflow`.
    pub fn after(workflow: &Workflow) -> Self {
        Self {
            created_at: workflow.created_at,
            id: workflow.id,
        }
    }

    /// 48 hex digits: the time's microseconds, then the id.
    pub fn encode(&self) -> String {
        // The bits of the i64 as they are: a round trip through u64 keeps them.
        let micros = self.created_at.unix_micros() as u64;
        format!("{micros:016x}{}", self.id.simple())
    }

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let invalid = || Invalid::value_error("not a cursor this service gave out");
        if s.len() != 48 || !s.is_ascii() {
            return Err(invalid());
        }
        let (micros, id) = s.split_at(16);
        let micros = u64::from_str_radix(micros, 16).map_err(|_| invalid())?;
        let id = Uuid::try_parse(id).map_err(|_| invalid())?;
        let created_at = Timestamp::from_unix_micros(micros as i64).ok_or_else(invalid)?;
        Ok(Self { created_at, id })
    }
}

impl ListQuery {
    pub fn from_pairs(
        pairs: &[(String, String)],
        instance_filter: bool,
    ) -> Result<Self, ValidationErrors> {
        let mut q = QueryReader::new(pairs);
        let query = Self {
            customer_id: q.optional("customer_id", values::uuid_str),
            workflow_type: q.optional("workflow_type", |s| {
                WorkflowType::parse(s)
                    .ok_or_else(|| Invalid::enum_mismatch(WorkflowType::expected()))
            }),
            status: q.optional("status", |s| {
                Status::parse(s).ok_or_else(|| Invalid::enum_mismatch(Status::expected()))
            }),
            reference: q.optional("reference", |s| Ok(s.to_owned())),
            instance_id: if instance_filter {
                q.optional("instance_id", values::uuid_str)
            } else {
                None
            },
            page: q.int("page", 1, 1, None),
            per_page: q.int("per_page", PER_PAGE_DEFAULT, 1, Some(PER_PAGE_MAX)),
            cursor: q.optional("cursor", ListCursor::parse),
        };
        if query.cursor.is_some() && q.has("page") {
            q.refuse(
                "page",
                Invalid::value_error(
                    "give page or cursor, not both: a cursor page starts after its cursor",
                ),
            );
        } else if query.offset().saturating_add(query.per_page) > PAGE_DEPTH_MAX {
            q.refuse(
                "page",
                Invalid::value_error(
                    "pages end 10000 rows deep; follow next_cursor (or pass cursor) to read further",
                ),
            );
        }
        q.finish(query)
    }

    /// Rows to skip; saturates, so that an absurd page is refused as too
    /// deep rather than overflowing.
    pub fn offset(&self) -> i64 {
        (self.page - 1).saturating_mul(self.per_page)
    }
}

/// `POST /v1/workflows/{id}/approval-links`: how long the link lives, and
/// a note shown to whoever opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApprovalLink {
    /// Seconds.
    pub expires_in: i64,
    pub note: Option<String>,
}

/// An approval link's life when the request does not say.
pub const APPROVAL_LINK_DEFAULT_SECONDS: i64 = 24 * 3600;

impl NewApprovalLink {
    /// `max_seconds`: the longest life the server allows.
    pub fn from_json(body: Option<&Value>, max_seconds: i64) -> Result<Self, ValidationErrors> {
        let Some(body) = body else {
            return Ok(Self {
                expires_in: APPROVAL_LINK_DEFAULT_SECONDS.min(max_seconds),
                note: None,
            });
        };
        let mut r = BodyReader::new(body)?;
        let expires_in = r.optional_value("expires_in", |v| {
            values::less_than_equal(
                values::greater_than_equal(values::int(v)?, 60)?,
                max_seconds,
            )
        });
        let note = r.optional_value("note", text(TEXT_MAX_CHARS));
        r.finish(|| {
            Some(Self {
                expires_in: expires_in.unwrap_or(APPROVAL_LINK_DEFAULT_SECONDS.min(max_seconds)),
                note,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list(query: &[(&str, &str)]) -> Result<ListQuery, ValidationErrors> {
        let pairs: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ListQuery::from_pairs(&pairs, true)
    }

    #[test]
    fn a_cursor_reads_back_as_the_place_it_was_made_from() {
        let place = ListCursor {
            created_at: Timestamp::now(),
            id: Uuid::now_v7(),
        };
        assert_eq!(ListCursor::parse(&place.encode()), Ok(place));
        for junk in ["", "abc", &"z".repeat(48), &"é".repeat(24)] {
            assert!(ListCursor::parse(junk).is_err(), "{junk}");
        }
    }

    #[test]
    fn a_page_may_reach_ten_thousand_rows_deep_and_no_further() {
        assert!(list(&[("page", "100"), ("per_page", "100")]).is_ok());
        let e = list(&[("page", "101"), ("per_page", "100")]).err();
        assert_eq!(
            e.as_ref().map(types),
            Some(vec![("value_error", vec![json!("query"), json!("page")])])
        );
        assert!(e.is_some_and(|e| e.0[0].msg.contains("next_cursor")));
        assert!(list(&[("page", &i64::MAX.to_string())]).is_err());
    }

    #[test]
    fn a_cursor_goes_without_a_page() {
        let cursor = ListCursor {
            created_at: Timestamp::now(),
            id: Uuid::nil(),
        }
        .encode();
        let q = list(&[("cursor", &cursor), ("per_page", "5")]);
        assert!(q.is_ok_and(|q| q.cursor.is_some() && q.offset() == 0));
        let e = list(&[("cursor", &cursor), ("page", "1")]).err();
        assert_eq!(
            e.as_ref().map(types),
            Some(vec![("value_error", vec![json!("query"), json!("page")])])
        );
        let e = list(&[("cursor", "nope")]).err();
        assert_eq!(
            e.as_ref().map(types),
            Some(vec![("value_error", vec![json!("query"), json!("cursor")])])
        );
    }

    const INSTANCE: Uuid = Uuid::from_u128(7);

    fn types(e: &ValidationErrors) -> Vec<(&str, Vec<Value>)> {
        e.0.iter().map(|e| (e.error_type, e.loc.clone())).collect()
    }

    #[test]
    fn a_create_needs_customer_id_and_workflow_type() {
        let e = CreateWorkflow::from_json(&json!({}), INSTANCE).err();
        assert_eq!(
            e.as_ref().map(types),
            Some(vec![
                ("missing", vec![json!("body"), json!("customer_id")]),
                ("missing", vec![json!("body"), json!("workflow_type")]),
            ])
        );
    }

    #[test]
    fn a_create_reports_every_bad_field_at_once() {
        let body = json!({"customer_id": "x", "workflow_type": "nope", "workflow_state": [1], "expires_at": "soon"});
        let e = CreateWorkflow::from_json(&body, INSTANCE).err();
        let kinds: Vec<&str> = e
            .iter()
            .flat_map(|e| e.0.iter().map(|f| f.error_type))
            .collect();
        assert_eq!(
            kinds,
            ["uuid_parsing", "enum", "dict_type", "datetime_parsing"]
        );
    }

    #[test]
    fn a_create_with_another_instance_in_the_body_is_refused() {
        let body = json!({"customer_id": Uuid::from_u128(1), "workflow_type": "lead", "instance_id": Uuid::from_u128(8)});
        let e = CreateWorkflow::from_json(&body, INSTANCE).err();
        assert_eq!(
            e.map(|e| e.0[0].loc.clone()),
            Some(vec![json!("body"), json!("instance_id")])
        );
        let same = json!({"customer_id": Uuid::from_u128(1), "workflow_type": "lead", "instance_id": INSTANCE});
        assert!(CreateWorkflow::from_json(&same, INSTANCE).is_ok());
    }

    #[test]
    fn a_create_without_state_starts_with_an_empty_object() {
        let body = json!({"customer_id": Uuid::from_u128(1), "workflow_type": "viewing", "workflow_state": null});
        let c = CreateWorkflow::from_json(&body, INSTANCE).ok();
        assert_eq!(c.map(|c| c.workflow_state), Some(Map::new()));
    }

    #[test]
    fn an_advance_tells_null_from_absent() {
        let a = AdvanceWorkflow::from_json(&json!({"action": "x", "stage": null, "status": null}));
        let a = a.ok();
        assert_eq!(a.as_ref().map(|a| a.stage.clone()), Some(Some(None)));
        assert_eq!(a.as_ref().map(|a| a.assigned_to.clone()), Some(None));
        assert_eq!(a.as_ref().map(|a| a.status), Some(None));
    }

    #[test]
    fn an_advance_refuses_a_negative_escalation_level() {
        let e = AdvanceWorkflow::from_json(&json!({"action": "x", "escalation_level": -1})).err();
        assert_eq!(e.map(|e| e.0[0].error_type), Some("greater_than_equal"));
    }

    fn escalation_level(literal: &str) -> Result<Option<i64>, (&'static str, String)> {
        let body: Value = serde_json::from_str(&format!(
            r#"{{"action": "x", "escalation_level": {literal}}}"#
        ))
        .unwrap_or(Value::Null);
        AdvanceWorkflow::from_json(&body)
            .map(|a| a.escalation_level)
            .map_err(|e| (e.0[0].error_type, e.0[0].input.to_string()))
    }

    #[test]
    fn an_escalation_level_is_an_integer_however_the_number_is_written() {
        assert_eq!(escalation_level("2"), Ok(Some(2)));
        assert_eq!(escalation_level("1.0"), Ok(Some(1)));
        assert_eq!(escalation_level("1e2"), Ok(Some(100)));
        assert_eq!(escalation_level("-0.0"), Ok(Some(0)));
        assert_eq!(escalation_level("null"), Ok(None));
        let refused = |literal: &str, error_type: &'static str, input: &str| {
            assert_eq!(
                escalation_level(literal),
                Err((error_type, input.to_owned())),
                "{literal}"
            );
        };
        refused("2.5", "int_from_float", "2.5");
        refused("-1", "greater_than_equal", "-1");
        refused("-1.0", "greater_than_equal", "-1.0");
        refused(
            "9223372036854775808",
            "int_parsing_size",
            "9223372036854775808",
        );
        // The error echoes the number as it was sent, not rounded.
        refused(
            "12345678901234567890123",
            "int_from_float",
            "12345678901234567890123",
        );
        refused("1e400", "int_parsing_size", "1e+400");
    }

    #[test]
    fn free_form_state_keeps_its_numbers_as_they_were_sent() {
        let body: Value = serde_json::from_str(
            r#"{"customer_id": "00000000-0000-0000-0000-000000000001", "workflow_type": "lead",
                "workflow_state": {"big": 12345678901234567890123, "long": 0.1000000000000000000001, "zero": -0.0}}"#,
        )
        .unwrap_or(Value::Null);
        let state = CreateWorkflow::from_json(&body, INSTANCE).map(|c| c.workflow_state);
        assert_eq!(
            state.map(|s| Value::Object(s).to_string()).ok().as_deref(),
            Some(r#"{"big":12345678901234567890123,"long":0.1000000000000000000001,"zero":-0.0}"#)
        );
    }

    #[test]
    fn free_text_is_bounded_and_the_title_has_room_for_a_sentence() {
        let long = |n: usize| "x".repeat(n);
        let body = json!({"customer_id": Uuid::from_u128(1), "workflow_type": "lead",
            "stage": long(256), "reference": long(255), "title": long(1001), "assigned_to": long(256)});
        let e = CreateWorkflow::from_json(&body, Uuid::nil()).err();
        let refused = e.as_ref().map(types).unwrap_or_default();
        assert_eq!(
            refused,
            vec![
                ("string_too_long", vec![json!("body"), json!("stage")]),
                ("string_too_long", vec![json!("body"), json!("title")]),
                ("string_too_long", vec![json!("body"), json!("assigned_to")]),
            ]
        );
        let fits = json!({"customer_id": Uuid::from_u128(1), "workflow_type": "lead",
            "stage": long(255), "title": long(1000)});
        assert!(CreateWorkflow::from_json(&fits, Uuid::nil()).is_ok());
    }

    #[test]
    fn an_agent_cannot_sign_its_advance_as_the_system_or_at_length() {
        for actor in ["system", "SYSTEM", " system "] {
            let e = AdvanceWorkflow::from_json(&json!({"action": "a", "actor": actor})).err();
            assert_eq!(
                e.as_ref().map(types).unwrap_or_default(),
                vec![("value_error", vec![json!("body"), json!("actor")])]
            );
        }
        let long = AdvanceWorkflow::from_json(&json!({"action": "a", "actor": "a".repeat(256)}));
        assert!(long.is_err());
        assert!(AdvanceWorkflow::from_json(&json!({"action": "a", "actor": "agent-7"})).is_ok());
    }

    #[test]
    fn a_history_entry_and_a_suspension_payload_hold_at_most_64_kib() {
        let big = "x".repeat(DETAIL_MAX_BYTES);
        let e = AdvanceWorkflow::from_json(&json!({"action": "a", "action_detail": {"note": big}}))
            .err();
        assert_eq!(
            e.as_ref().map(types).unwrap_or_default(),
            vec![("value_error", vec![json!("body"), json!("action_detail")])]
        );
        let e = ResumeWorkflow::from_json(Some(&json!({"resume_data": {"note": big}}))).err();
        assert_eq!(
            e.as_ref().map(types).unwrap_or_default(),
            vec![("value_error", vec![json!("body"), json!("resume_data")])]
        );
        let fits = "x".repeat(DETAIL_MAX_BYTES - 20);
        let e = SuspendWorkflow::from_json(&json!({"step": "s", "payload": {"a": big}})).err();
        assert_eq!(
            e.as_ref().map(types),
            Some(vec![("value_error", vec![json!("body"), json!("payload")])])
        );
        assert!(SuspendWorkflow::from_json(&json!({"step": "s", "payload": {"a": fits}})).is_ok());
        assert!(
            AdvanceWorkflow::from_json(&json!({"action": "a", "action_detail": {"n": fits}}))
                .is_ok()
        );
    }

    #[test]
    fn a_history_page_starts_at_the_beginning_and_is_bounded() {
        assert_eq!(
            HistoryQuery::from_pairs(&[]).ok(),
            Some(HistoryQuery {
                after: 0,
                limit: 100
            })
        );
        let q = [
            ("after".to_owned(), "5".to_owned()),
            ("limit".to_owned(), "1000".to_owned()),
        ];
        assert_eq!(
            HistoryQuery::from_pairs(&q).ok(),
            Some(HistoryQuery {
                after: 5,
                limit: 1000
            })
        );
        for (name, bad) in [
            ("limit", "0"),
            ("limit", "1001"),
            ("after", "-1"),
            ("after", "x"),
        ] {
            let q = [(name.to_owned(), bad.to_owned())];
            assert!(HistoryQuery::from_pairs(&q).is_err(), "{name}={bad}");
        }
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused() {
        let e = SuspendWorkflow::from_json(&json!([1])).err();
        assert_eq!(e.map(|e| e.0[0].error_type), Some("model_attributes_type"));
    }

    #[test]
    fn a_resume_without_a_body_resumes_with_no_data() {
        assert_eq!(
            ResumeWorkflow::from_json(None).ok(),
            Some(ResumeWorkflow::default())
        );
        let e = ResumeWorkflow::from_json(Some(&json!({"resume_data": "yes"}))).err();
        assert_eq!(e.map(|e| e.0[0].error_type), Some("dict_type"));
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn list_paging_defaults_and_bounds_follow_the_seed() {
        let q = ListQuery::from_pairs(&[], false).ok();
        assert_eq!(q.map(|q| (q.page, q.per_page)), Some((1, 20)));
        let e = ListQuery::from_pairs(&pairs(&[("page", "0"), ("per_page", "101")]), false).err();
        assert_eq!(
            e.as_ref().map(types),
            Some(vec![
                ("greater_than_equal", vec![json!("query"), json!("page")]),
                ("less_than_equal", vec![json!("query"), json!("per_page")]),
            ])
        );
    }

    #[test]
    fn list_filters_refuse_unknown_values() {
        let e =
            ListQuery::from_pairs(&pairs(&[("status", "done"), ("customer_id", "1")]), false).err();
        let kinds: Vec<&str> = e
            .iter()
            .flat_map(|e| e.0.iter().map(|f| f.error_type))
            .collect();
        assert_eq!(kinds, ["uuid_parsing", "enum"]);
    }

    #[test]
    fn the_instance_filter_is_read_only_where_it_exists() {
        let p = pairs(&[("instance_id", "not-a-uuid")]);
        assert!(ListQuery::from_pairs(&p, false).is_ok());
        assert!(ListQuery::from_pairs(&p, true).is_err());
    }
}
