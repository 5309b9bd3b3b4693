//! What the templates show: records turned into text for people (relative
//! due times, JSON as an indented tree, history as a timeline). Every
//! value reaches the page through a template, which escapes it.

use askama::Template;
use hydracore_domain::decision::Decision;
use hydracore_domain::{HistoryEntry, Status, Timestamp, Workflow};
use serde_json::Value;
use uuid::Uuid;

use super::form::{Control, Field};

/// The page's header: who is signed in, and the sign-out form's token.
pub struct Chrome {
    pub signed_in: bool,
    pub csrf: String,
    pub who: String,
    /// The page's script refreshes for events from this time on only: the
    /// events stream begins with the tenant's earlier events, which the
    /// page already shows. A second early, so that a change made while
    /// the page was being read costs a refresh rather than being missed.
    pub since: String,
}

impl Chrome {
    pub fn signed_out() -> Self {
        Self::new(false, String::new(), String::new())
    }

    pub fn new(signed_in: bool, csrf: String, who: String) -> Self {
        let now = Timestamp::now();
        let since = Timestamp::from_unix_micros(now.unix_micros() - 1_000_000).unwrap_or(now);
        Self {
            signed_in,
            csrf,
            who,
            since: since.to_rfc3339(),
        }
    }
}

#[derive(Template)]
#[template(path = "ui/error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub heading: &'static str,
    pub message: &'static str,
    pub back: &'static str,
    pub back_label: &'static str,
}

#[derive(Template)]
#[template(path = "ui/sign_in.html")]
pub struct SignInPage {
    pub chrome: Chrome,
    pub form_token: String,
    pub problem: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "ui/sign_in_link.html")]
pub struct SignInLinkPage {
    pub chrome: Chrome,
    pub token: String,
}

#[derive(Template)]
#[template(path = "ui/inbox.html")]
pub struct InboxPage {
    pub chrome: Chrome,
    pub answered: Option<String>,
    pub assigned_to: String,
    pub me: Option<String>,
    pub summary: String,
    pub decisions: Vec<DecisionRow>,
    pub next: Option<String>,
}

#[derive(Template)]
#[template(path = "ui/workflows.html")]
pub struct WorkflowsPage {
    pub chrome: Chrome,
    pub statuses: Vec<&'static str>,
    pub types: Vec<&'static str>,
    pub filters: ListFilters,
    pub problems: Vec<String>,
    pub total: i64,
    pub rows: Vec<WorkflowRow>,
    pub prev: Option<String>,
    pub next: Option<String>,
}

#[derive(Template)]
#[template(path = "ui/workflow.html")]
pub struct WorkflowPage {
    pub chrome: Chrome,
    pub csrf: String,
    pub w: WorkflowView,
    pub may_write: bool,
    pub question: Option<Question>,
    pub decide: Option<Decide>,
    pub problems: Vec<String>,
    pub done: Option<String>,
    pub state: Vec<TreeRow>,
    pub history: Vec<HistoryRow>,
    pub history_more: i64,
}

/// What an approval link's page shows.
pub enum ApprovalOutcome {
    /// The decision and its form.
    Open(Box<OpenApproval>),
    /// The answer was taken.
    Answered,
    /// The link was used, expired, or its suspension is over.
    Gone,
}

pub struct OpenApproval {
    pub w: WorkflowView,
    /// The link's creator's note.
    pub note: Option<String>,
    pub question: Option<Question>,
    pub decide: Option<Decide>,
}

#[derive(Template)]
#[template(path = "ui/approve.html")]
pub struct ApprovalPage {
    pub chrome: Chrome,
    pub outcome: ApprovalOutcome,
}

/// The list page's filters as the form shows them.
#[derive(Default)]
pub struct ListFilters {
    pub status: String,
    pub workflow_type: String,
    pub instance_id: String,
    pub customer_id: String,
    pub reference: String,
}

pub struct DecisionRow {
    pub id: Uuid,
    pub title: String,
    pub workflow_type: String,
    pub step: String,
    pub question: Option<String>,
    pub due: Option<String>,
    pub overdue: bool,
    pub escalation_level: i64,
    pub assigned_to: Option<String>,
}

impl DecisionRow {
    pub fn of(d: &Decision, now: Timestamp) -> Self {
        let (question, _) = split_question(&d.suspend_payload);
        Self {
            id: d.id,
            title: title_of(d.title.as_deref(), d.workflow_type.as_str(), d.id),
            workflow_type: d.workflow_type.as_str().to_owned(),
            step: d.suspended_step.clone().unwrap_or_default(),
            question,
            due: d.due_at.map(|due| relative_due(due, now)),
            overdue: d.overdue,
            escalation_level: d.escalation_level,
            assigned_to: d.assigned_to.clone(),
        }
    }
}

pub struct WorkflowRow {
    pub id: Uuid,
    pub title: String,
    pub workflow_type: String,
    pub status: &'static str,
    pub stage: String,
    pub updated: String,
}

impl WorkflowRow {
    pub fn of(w: &Workflow, now: Timestamp) -> Self {
        Self {
            id: w.id,
            title: title_of(w.title.as_deref(), w.workflow_type.as_str(), w.id),
            workflow_type: w.workflow_type.as_str().to_owned(),
            status: w.status.as_str(),
            stage: w.stage.clone().unwrap_or_default(),
            updated: relative_past(w.updated_at, now),
        }
    }
}

pub struct WorkflowView {
    pub id: Uuid,
    pub title: String,
    pub workflow_type: String,
    pub status: &'static str,
    pub stage: String,
    pub customer_id: Uuid,
    pub reference: String,
    pub version: i64,
    pub terminal: bool,
    pub suspended: bool,
}

impl WorkflowView {
    pub fn of(w: &Workflow) -> Self {
        Self {
            id: w.id,
            title: title_of(w.title.as_deref(), w.workflow_type.as_str(), w.id),
            workflow_type: w.workflow_type.as_str().to_owned(),
            status: w.status.as_str(),
            stage: w.stage.clone().unwrap_or_default(),
            customer_id: w.customer_id,
            reference: w.reference.clone().unwrap_or_default(),
            version: w.version,
            terminal: w.status.is_terminal(),
            suspended: w.status == Status::Suspended,
        }
    }
}

/// The question a suspension asks.
pub struct Question {
    pub step: String,
    pub text: Option<String>,
    pub payload: Vec<TreeRow>,
    pub due: Option<String>,
    pub overdue: bool,
    pub escalation_level: i64,
    pub assigned_to: Option<String>,
}

impl Question {
    pub fn of(w: &Workflow, now: Timestamp) -> Option<Self> {
        if w.status != Status::Suspended {
            return None;
        }
        let (text, rest) = split_question(&w.suspend_payload);
        Some(Self {
            step: w.suspended_step.clone().unwrap_or_default(),
            text,
            payload: rest.map(|v| tree(&v)).unwrap_or_default(),
            due: w.next_action_at.map(|due| relative_due(due, now)),
            overdue: w.next_action_at.is_some_and(|due| due <= now),
            escalation_level: w.escalation_level,
            assigned_to: w.assigned_to.clone(),
        })
    }
}

/// The decide form as a page shows it.
pub struct Decide {
    pub action: String,
    pub csrf: String,
    pub version: i64,
    pub fields: Vec<Field>,
    pub problems: Vec<String>,
}

/// One line of a JSON value shown as a tree.
pub struct TreeRow {
    pub depth: usize,
    pub key: String,
    /// `None` for an object or array, whose members follow one deeper.
    pub value: Option<String>,
}

/// Lines shown of a value at most; the rest is summed up in one line.
const TREE_MAX_ROWS: usize = 500;
/// Characters of one value shown at most.
const VALUE_MAX_CHARS: usize = 2_000;

/// `value` as indented lines: keys (or item numbers) and scalars.
pub fn tree(value: &Value) -> Vec<TreeRow> {
    let mut rows = Vec::new();
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                walk(k.clone(), v, 0, &mut rows);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(format!("{}.", i + 1), v, 0, &mut rows);
            }
        }
        Value::Null => {}
        scalar => walk(String::new(), scalar, 0, &mut rows),
    }
    if rows.len() > TREE_MAX_ROWS {
        let more = rows.len() - TREE_MAX_ROWS;
        rows.truncate(TREE_MAX_ROWS);
        rows.push(TreeRow {
            depth: 0,
            key: format!("… and {more} more lines"),
            value: None,
        });
    }
    rows
}

fn walk(key: String, value: &Value, depth: usize, rows: &mut Vec<TreeRow>) {
    if rows.len() > TREE_MAX_ROWS {
        return;
    }
    match value {
        Value::Object(map) if !map.is_empty() => {
            rows.push(TreeRow {
                depth,
                key,
                value: None,
            });
            for (k, v) in map {
                walk(k.clone(), v, depth + 1, rows);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            rows.push(TreeRow {
                depth,
                key,
                value: None,
            });
            for (i, v) in items.iter().enumerate() {
                walk(format!("{}.", i + 1), v, depth + 1, rows);
            }
        }
        scalar => rows.push(TreeRow {
            depth,
            key,
            value: Some(scalar_text(scalar)),
        }),
    }
}

fn scalar_text(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Null => "—".to_owned(),
        Value::Object(_) => "{}".to_owned(),
        Value::Array(_) => "[]".to_owned(),
        other => other.to_string(),
    };
    shorten(text, VALUE_MAX_CHARS)
}

fn shorten(mut text: String, max_chars: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max_chars) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// A suspension's payload as the question it asks (`question`, or the
/// payload itself when it is text) and the rest of it.
fn split_question(payload: &Value) -> (Option<String>, Option<Value>) {
    match payload {
        Value::String(s) => (Some(shorten(s.clone(), VALUE_MAX_CHARS)), None),
        Value::Object(map) => {
            let text = map
                .get("question")
                .and_then(Value::as_str)
                .map(|s| shorten(s.to_owned(), VALUE_MAX_CHARS));
            let mut rest = map.clone();
            if text.is_some() {
                rest.remove("question");
            }
            (text, (!rest.is_empty()).then_some(Value::Object(rest)))
        }
        Value::Null => (None, None),
        other => (None, Some(other.clone())),
    }
}

fn title_of(title: Option<&str>, workflow_type: &str, id: Uuid) -> String {
    match title.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => shorten(t.to_owned(), 200),
        None => format!("{workflow_type} {}", &id.simple().to_string()[..8]),
    }
}

/// One entry of the history timeline.
pub struct HistoryRow {
    pub at: String,
    pub action: String,
    /// `active → suspended`, `intake → chasing`.
    pub change: Option<String>,
    pub actor: String,
    pub detail: Option<String>,
}

impl HistoryRow {
    pub fn of(e: &HistoryEntry) -> Self {
        let mut changes = Vec::new();
        if e.from_status != e.to_status {
            if let (Some(from), Some(to)) = (e.from_status, e.to_status) {
                changes.push(format!("{} → {}", from.as_str(), to.as_str()));
            }
        }
        if e.from_stage != e.to_stage {
            changes.push(format!(
                "stage {} → {}",
                e.from_stage.as_deref().unwrap_or("—"),
                e.to_stage.as_deref().unwrap_or("—")
            ));
        }
        let detail = match &e.action_detail {
            Value::Null => None,
            Value::Object(m) if m.is_empty() => None,
            other => Some(shorten(
                serde_json::to_string_pretty(other).unwrap_or_default(),
                VALUE_MAX_CHARS,
            )),
        };
        Self {
            at: e.at.to_rfc3339().replace('T', " ")[..19].to_owned() + " UTC",
            action: e.action.clone(),
            change: (!changes.is_empty()).then(|| changes.join(", ")),
            actor: e
                .actor
                .clone()
                .or_else(|| e.principal.clone())
                .unwrap_or_else(|| "unknown".to_owned()),
            detail,
        }
    }
}

/// "due in 40 min", "3 h overdue".
pub fn relative_due(due: Timestamp, now: Timestamp) -> String {
    let seconds = (due.unix_micros() - now.unix_micros()) / 1_000_000;
    if seconds >= 0 {
        format!("due in {}", span(seconds))
    } else {
        format!("{} overdue", span(-seconds))
    }
}

/// "5 min ago".
fn relative_past(at: Timestamp, now: Timestamp) -> String {
    let seconds = (now.unix_micros() - at.unix_micros()) / 1_000_000;
    format!("{} ago", span(seconds.max(0)))
}

fn span(seconds: i64) -> String {
    match seconds {
        s if s < 60 => "under a minute".to_owned(),
        s if s < 3_600 => format!("{} min", s / 60),
        s if s < 48 * 3_600 => format!("{} h", s / 3_600),
        s => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_micros(1_800_000_000_000_000 + seconds * 1_000_000)
            .unwrap_or_else(Timestamp::now)
    }

    #[test]
    fn due_times_read_as_people_say_them() {
        assert_eq!(relative_due(at(40 * 60), at(0)), "due in 40 min");
        assert_eq!(relative_due(at(0), at(3 * 3600 + 5)), "3 h overdue");
        assert_eq!(relative_due(at(3 * 86_400), at(0)), "due in 3 days");
        assert_eq!(relative_due(at(10), at(0)), "due in under a minute");
    }

    #[test]
    fn json_shows_as_an_indented_tree_of_keys_and_values() {
        let rows = tree(&json!({"amount": 1200, "tenant": {"name": "Ann"}, "tags": ["a"]}));
        let lines: Vec<String> = rows
            .iter()
            .map(|r| format!("{}{}={:?}", " ".repeat(r.depth), r.key, r.value))
            .collect();
        assert_eq!(
            lines,
            [
                "amount=Some(\"1200\")",
                "tenant=None",
                " name=Some(\"Ann\")",
                "tags=None",
                " 1.=Some(\"a\")",
            ]
        );
    }

    #[test]
    fn the_question_is_read_out_of_the_payload_and_the_rest_kept() {
        let (text, rest) = split_question(&json!({"question": "Approve?", "amount": 5}));
        assert_eq!(text.as_deref(), Some("Approve?"));
        assert_eq!(rest, Some(json!({"amount": 5})));
        assert_eq!(
            split_question(&json!("Approve?")).0.as_deref(),
            Some("Approve?")
        );
    }
}
