//! The page handlers: each reads the request, calls the use cases under
//! the session's scope, and renders a template. Changes are POSTed forms
//! carrying the session's form token and the version the page showed,
//! which the change runs with as `If-Match`: a decision made on a stale
//! page is refused, never applied to a record its maker did not see.

use axum::extract::{Path, RawForm, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use hydracore_domain::decision::InboxQuery;
use hydracore_domain::precondition::IfMatch;
use hydracore_domain::request::{ListQuery, ResumeWorkflow, SuspendWorkflow};
use hydracore_domain::transition::{Command, TransitionError};
use hydracore_domain::{Status, Timestamp, Workflow, WorkflowType};
use hydracore_storage::ui_tokens::{ApprovalRefused, SessionDetail, TokenText};
use hydracore_storage::{UiTokenKind, UseCaseError, WithHistory};
use serde_json::{json, Value};
use uuid::Uuid;

use super::form::{self, Field};
use super::session::{self, UiSession, COOKIE, SIGN_IN_COOKIE};
use super::view::{
    ApprovalOutcome, ApprovalPage, Chrome, Decide, DecisionRow, HistoryRow, InboxPage, ListFilters,
    OpenApproval, Question, SignInLinkPage, SignInPage, WorkflowPage, WorkflowRow, WorkflowView,
    WorkflowsPage,
};
use super::{render, UiError};
use crate::auth::{keys, SCOPE_WRITE};
use crate::http::auth::{Read, Write};
use crate::http::AppState;

type Page = Result<Response, UiError>;

fn chrome<S>(session: &UiSession<S>) -> Chrome {
    Chrome::new(
        true,
        session.csrf.clone(),
        session.principal.default_actor(),
    )
}

fn pairs_of(text: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(text).into_owned().collect()
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn workflow_id(text: &str) -> Result<Uuid, UiError> {
    Uuid::try_parse(text).map_err(|_| UiError::NotFound)
}

/// A form the session posted about workflow `id`: its fields, once its
/// form token checks out, and the workflow's id.
fn posted<S>(
    session: &UiSession<S>,
    id: &str,
    body: &[u8],
) -> Result<(Vec<(String, String)>, Uuid), UiError> {
    let pairs = pairs_of(body);
    session.check_form(field(&pairs, "csrf"))?;
    Ok((pairs, workflow_id(id)?))
}

/// The version a form showed, as the `If-Match` its change runs with.
fn shown_version(pairs: &[(String, String)]) -> Option<IfMatch> {
    field(pairs, "version")
        .and_then(|v| v.parse().ok())
        .map(|v| IfMatch::Versions(vec![v]))
}

/// Whether the page is served over https, so cookies say `Secure`.
fn over_https(state: &AppState, headers: &HeaderMap) -> bool {
    let public = state
        .ui
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let forwarded = state.limits.trust_forwarded_for
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    public || forwarded
}

const STALE: &str = "This workflow changed since you opened it — reload to see it as it is now.";

// ---- Signing in and out ----

pub async fn sign_in_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let token = keys::random_secret();
    let jar = CookieJar::new().add(session::cookie(
        SIGN_IN_COOKIE,
        token.clone(),
        over_https(&state, &headers),
    ));
    let page = SignInPage {
        chrome: Chrome::signed_out(),
        form_token: token,
        problem: None,
    };
    (jar, render(&page)).into_response()
}

pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    RawForm(body): RawForm,
) -> Page {
    let pairs = pairs_of(&body);
    let expected = jar.get(SIGN_IN_COOKIE).map(|c| c.value().to_owned());
    match (expected, field(&pairs, "csrf")) {
        (Some(expected), Some(posted)) if keys::same_secret(posted, &expected) => {}
        _ => return Err(UiError::Csrf),
    }
    let credential = field(&pairs, "credential").unwrap_or_default();
    let start = match session::session_for(&state, credential).await {
        Ok(start) => start,
        Err(UiError::BadSignIn) => {
            let page = SignInPage {
                chrome: Chrome::signed_out(),
                form_token: jar
                    .get(SIGN_IN_COOKIE)
                    .map(|c| c.value().to_owned())
                    .unwrap_or_default(),
                problem: Some("That key or token was not accepted."),
            };
            return Ok((StatusCode::UNAUTHORIZED, render(&page)).into_response());
        }
        Err(e) => return Err(e),
    };
    let cookie = session::open(&state, &start, over_https(&state, &headers)).await?;
    let jar = jar
        .remove(Cookie::build(SIGN_IN_COOKIE).path("/ui"))
        .add(cookie);
    Ok((jar, Redirect::to("/ui/")).into_response())
}

/// A one-time link's page: a button, so that a link preview fetching the
/// URL does not use it up.
pub async fn sign_in_link(Path(token): Path<String>) -> Page {
    TokenText::parse(&token).ok_or(UiError::NotFound)?;
    Ok(render(&SignInLinkPage {
        chrome: Chrome::signed_out(),
        token,
    }))
}

pub async fn use_sign_in_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    Path(token): Path<String>,
) -> Page {
    let token = TokenText::parse(&token).ok_or(UiError::NotFound)?;
    let Some(link) = state.ui_tokens.spend(&token, UiTokenKind::SignIn).await? else {
        return Ok(gone_link());
    };
    let mut detail: SessionDetail = serde_json::from_value(link.detail).map_err(|e| {
        UiError::from(hydracore_storage::StoreError::Corrupt(format!(
            "sign-in link: {e}"
        )))
    })?;
    detail.csrf = keys::random_secret();
    let start = session::SessionStart {
        tenant_id: token.tenant_id(),
        detail,
    };
    let cookie = session::open(&state, &start, over_https(&state, &headers)).await?;
    Ok((jar.add(cookie), Redirect::to("/ui/")).into_response())
}

fn gone_link() -> Response {
    let page = super::view::ErrorPage {
        chrome: Chrome::signed_out(),
        heading: "This link no longer works",
        message:
            "Sign-in links work once, for ten minutes. Ask for a new one, or sign in with a key.",
        back: "/ui/sign-in",
        back_label: "Sign in",
    };
    (StatusCode::GONE, render(&page)).into_response()
}

pub async fn sign_out(
    State(state): State<AppState>,
    session: UiSession<Read>,
    jar: CookieJar,
    RawForm(body): RawForm,
) -> Page {
    session.check_form(field(&pairs_of(&body), "csrf"))?;
    state.ui_tokens.end(&session.token).await?;
    let jar = jar.remove(Cookie::build(COOKIE).path("/ui"));
    Ok((jar, Redirect::to("/ui/sign-in")).into_response())
}

// ---- The inbox and the list ----

pub async fn inbox(
    State(state): State<AppState>,
    session: UiSession<Read>,
    RawQuery(query): RawQuery,
) -> Page {
    let pairs = pairs_of(query.unwrap_or_default().as_bytes());
    let assigned_to = field(&pairs, "assigned_to").unwrap_or_default().to_owned();
    let mut asked: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, v)| (k == "assigned_to" || k == "cursor") && !v.is_empty())
        .cloned()
        .collect();
    asked.push(("limit".to_owned(), "50".to_owned()));
    let query = InboxQuery::from_pairs(&asked).map_err(|e| UiError::Api(e.into()))?;
    let inbox = state.workflows.inbox(session.scope, &query).await?;
    let now = Timestamp::now();
    // Counted on the page, not in the tenant: counting every decision
    // costs more than the page itself.
    let overdue = inbox.decisions.iter().filter(|d| d.overdue).count();
    let shown = inbox.decisions.len();
    let answered = match field(&pairs, "answered").and_then(|id| Uuid::try_parse(id).ok()) {
        Some(id) => state
            .workflows
            .get(session.scope, id, WithHistory::No)
            .await
            .ok()
            .map(|w| WorkflowView::of(&w).title),
        None => None,
    };
    let next = inbox.next_cursor.map(|c| {
        let mut link = form_urlencoded::Serializer::new(String::new());
        if !assigned_to.is_empty() {
            link.append_pair("assigned_to", &assigned_to);
        }
        link.append_pair("cursor", &c.encode());
        format!("/ui/?{}", link.finish())
    });
    let page = InboxPage {
        chrome: chrome(&session),
        answered,
        me: session.subject().map(str::to_owned),
        assigned_to,
        summary: match (shown, next.is_some()) {
            (0, _) => String::new(),
            (n, false) => format!("{n} waiting, {overdue} of them overdue"),
            (n, true) => {
                format!("The {n} due first, {overdue} of them overdue; more on the next page")
            }
        },
        decisions: inbox
            .decisions
            .iter()
            .map(|d| DecisionRow::of(d, now))
            .collect(),
        next,
    };
    Ok(render(&page))
}

const LIST_FILTERS: [&str; 5] = [
    "status",
    "workflow_type",
    "instance_id",
    "customer_id",
    "reference",
];

pub async fn workflows(
    State(state): State<AppState>,
    session: UiSession<Read>,
    RawQuery(query): RawQuery,
) -> Page {
    let pairs = pairs_of(query.unwrap_or_default().as_bytes());
    // Empty filters are the form's "any".
    let asked: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, v)| (LIST_FILTERS.contains(&k.as_str()) || k == "page") && !v.is_empty())
        .cloned()
        .collect();
    let value = |name: &str| field(&asked, name).unwrap_or_default().to_owned();
    let filters = ListFilters {
        status: value("status"),
        workflow_type: value("workflow_type"),
        instance_id: value("instance_id"),
        customer_id: value("customer_id"),
        reference: value("reference"),
    };
    let mut page = WorkflowsPage {
        chrome: chrome(&session),
        statuses: Status::ALL.iter().map(|s| s.as_str()).collect(),
        types: WorkflowType::ALL.iter().map(|t| t.as_str()).collect(),
        filters,
        problems: Vec::new(),
        total: 0,
        rows: Vec::new(),
        prev: None,
        next: None,
    };
    let query = match ListQuery::from_pairs(&asked, true) {
        Ok(query) => query,
        Err(errors) => {
            page.problems = errors
                .0
                .iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e.loc.last().map_or(String::new(), |l| l
                            .to_string()
                            .trim_matches('"')
                            .to_owned()),
                        e.msg
                    )
                })
                .collect();
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response());
        }
    };
    let found = state.workflows.list(session.scope, &query).await?;
    let now = Timestamp::now();
    let number = field(&asked, "page")
        .and_then(|p| p.parse::<i64>().ok())
        .unwrap_or(1);
    let link = |to: i64| {
        let mut link = form_urlencoded::Serializer::new(String::new());
        for (k, v) in asked.iter().filter(|(k, _)| k != "page") {
            link.append_pair(k, v);
        }
        link.append_pair("page", &to.to_string());
        format!("/ui/workflows?{}", link.finish())
    };
    page.prev = (number > 1).then(|| link(number - 1));
    page.next =
        (query.offset() + (found.workflows.len() as i64) < found.total).then(|| link(number + 1));
    page.total = found.total;
    page.rows = found
        .workflows
        .iter()
        .map(|w| WorkflowRow::of(w, now))
        .collect();
    Ok(render(&page))
}

// ---- A workflow, and what can be done to it ----

pub async fn workflow(
    State(state): State<AppState>,
    session: UiSession<Read>,
    Path(id): Path<String>,
) -> Page {
    let id = workflow_id(&id)?;
    let w = state
        .workflows
        .get(session.scope, id, WithHistory::Yes)
        .await?;
    let page = workflow_page(&session, &w, None, Vec::new(), None);
    Ok(render(&page))
}

/// The workflow page, with the decide form as given (`decide`, after a
/// refused answer) or fresh.
fn workflow_page<S>(
    session: &UiSession<S>,
    w: &Workflow,
    decide: Option<Vec<Field>>,
    problems: Vec<String>,
    done: Option<String>,
) -> WorkflowPage {
    let now = Timestamp::now();
    let may_write = session.may(SCOPE_WRITE);
    let decide = (may_write && w.status == Status::Suspended).then(|| Decide {
        action: format!("/ui/workflows/{}/resume", w.id),
        csrf: session.csrf.clone(),
        version: w.version,
        fields: decide
            .clone()
            .unwrap_or_else(|| form::fields(w.resume_schema.as_ref())),
        problems: Vec::new(),
    });
    let state = Value::Object(w.workflow_state.clone());
    WorkflowPage {
        chrome: chrome(session),
        csrf: session.csrf.clone(),
        w: WorkflowView::of(w),
        may_write,
        question: Question::of(w, now),
        decide,
        problems,
        done,
        state: super::view::tree(&state),
        history: w.history.iter().rev().map(HistoryRow::of).collect(),
        history_more: w
            .history_total
            .map_or(0, |total| total - w.history.len() as i64),
    }
}

/// A change refused: the page again, saying why, with what was posted.
fn refused<S>(
    session: &UiSession<S>,
    w: &Workflow,
    status: StatusCode,
    decide: Option<Vec<Field>>,
    problems: Vec<String>,
) -> Response {
    let mut page = workflow_page(session, w, decide, Vec::new(), None);
    if let Some(d) = &mut page.decide {
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            d.problems = problems;
        } else {
            page.problems = problems;
        }
    } else {
        page.problems = problems;
    }
    (status, render(&page)).into_response()
}

pub async fn resume(
    State(state): State<AppState>,
    session: UiSession<Write>,
    Path(id): Path<String>,
    RawForm(body): RawForm,
) -> Page {
    let (pairs, id) = posted(&session, &id, &body)?;
    let w = state
        .workflows
        .get(session.scope, id, WithHistory::Yes)
        .await?;
    let mut fields = form::fields(w.resume_schema.as_ref());
    let resume_data = match form::read(&mut fields, &pairs) {
        Ok(data) => data,
        Err(unreadable) => {
            form::place_unreadable(&mut fields, &unreadable);
            return Ok(refused(
                &session,
                &w,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(fields),
                Vec::new(),
            ));
        }
    };
    let acted = state
        .workflows
        .act(
            session.scope,
            id,
            Command::Resume(ResumeWorkflow { resume_data }),
            &session.principal,
            shown_version(&pairs),
            None,
        )
        .await;
    match acted {
        Ok(_) => Ok(Redirect::to(&format!("/ui/?answered={id}")).into_response()),
        Err(UseCaseError::Refused(TransitionError::Invalid(errors)))
        | Err(UseCaseError::Invalid(errors)) => {
            let unplaced = form::place_errors(&mut fields, &errors.0);
            Ok(refused(
                &session,
                &w,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(fields),
                unplaced,
            ))
        }
        Err(UseCaseError::Refused(_)) => stale(&state, &session, id).await,
        Err(e) => Err(e.into()),
    }
}

/// The page as the workflow now stands, saying that it changed.
async fn stale<S>(state: &AppState, session: &UiSession<S>, id: Uuid) -> Page {
    let w = state
        .workflows
        .get(session.scope, id, WithHistory::Yes)
        .await?;
    Ok(refused(
        session,
        &w,
        StatusCode::CONFLICT,
        None,
        vec![STALE.to_owned()],
    ))
}

pub async fn abort(
    State(state): State<AppState>,
    session: UiSession<Write>,
    Path(id): Path<String>,
    RawForm(body): RawForm,
) -> Page {
    let (pairs, id) = posted(&session, &id, &body)?;
    let reason = field(&pairs, "reason")
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let problem = if field(&pairs, "confirm") != Some("yes") {
        Some("Tick the box to confirm the abort.")
    } else if reason.is_none() {
        Some("Give a reason for the abort.")
    } else if reason.is_some_and(|r| r.chars().count() > REASON_MAX_CHARS) {
        Some("Keep the reason under 1,000 characters.")
    } else {
        None
    };
    if let Some(problem) = problem {
        let w = state
            .workflows
            .get(session.scope, id, WithHistory::Yes)
            .await?;
        return Ok(refused(
            &session,
            &w,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            vec![problem.to_owned()],
        ));
    }
    let command = Command::Abort {
        reason: reason.map(str::to_owned),
    };
    changed(&state, &session, id, command, &pairs, "Aborted.").await
}

/// The longest abort reason kept.
const REASON_MAX_CHARS: usize = 1_000;

pub async fn suspend(
    State(state): State<AppState>,
    session: UiSession<Write>,
    Path(id): Path<String>,
    RawForm(body): RawForm,
) -> Page {
    let (pairs, id) = posted(&session, &id, &body)?;
    let text = |name| field(&pairs, name).map(str::trim).filter(|v| !v.is_empty());
    let mut body = json!({ "step": text("step").unwrap_or_default() });
    if let Some(question) = text("question") {
        body["payload"] = json!({ "question": question });
    }
    if let Some(who) = text("assigned_to") {
        body["assigned_to"] = json!(who);
    }
    let suspension = match SuspendWorkflow::from_json(&body) {
        Ok(s) => s,
        Err(errors) => {
            let w = state
                .workflows
                .get(session.scope, id, WithHistory::Yes)
                .await?;
            let problems = errors
                .0
                .iter()
                .map(|e| {
                    let at = e.loc.last().map(|l| l.to_string()).unwrap_or_default();
                    format!("{}: {}", at.trim_matches('"'), e.msg)
                })
                .collect();
            return Ok(refused(
                &session,
                &w,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                problems,
            ));
        }
    };
    changed(
        &state,
        &session,
        id,
        Command::Suspend(suspension),
        &pairs,
        "Suspended: it is in the inbox now.",
    )
    .await
}

/// Runs `command` with the form's version as `If-Match` and shows the
/// workflow after it, or why it was refused.
async fn changed<S>(
    state: &AppState,
    session: &UiSession<S>,
    id: Uuid,
    command: Command,
    pairs: &[(String, String)],
    done: &str,
) -> Page {
    let acted = state
        .workflows
        .act(
            session.scope,
            id,
            command,
            &session.principal,
            shown_version(pairs),
            None,
        )
        .await;
    match acted {
        Ok(_) => {
            let w = state
                .workflows
                .get(session.scope, id, WithHistory::Yes)
                .await?;
            Ok(render(&workflow_page(
                session,
                &w,
                None,
                Vec::new(),
                Some(done.to_owned()),
            )))
        }
        Err(UseCaseError::Refused(TransitionError::Invalid(errors)))
        | Err(UseCaseError::Invalid(errors)) => {
            let w = state
                .workflows
                .get(session.scope, id, WithHistory::Yes)
                .await?;
            let problems = errors.0.iter().map(|e| e.msg.clone()).collect();
            Ok(refused(
                session,
                &w,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                problems,
            ))
        }
        Err(UseCaseError::Refused(_)) => stale(state, session, id).await,
        Err(e) => Err(e.into()),
    }
}

// ---- Approval links ----

fn approval_token(text: &str) -> Option<TokenText> {
    TokenText::parse(text)
}

fn gone_approval() -> Response {
    let page = ApprovalPage {
        chrome: Chrome::signed_out(),
        outcome: ApprovalOutcome::Gone,
    };
    (StatusCode::GONE, render(&page)).into_response()
}

fn approval_page(
    token: &str,
    note: Option<String>,
    w: &Workflow,
    fields: Option<Vec<Field>>,
    problems: Vec<String>,
) -> ApprovalPage {
    ApprovalPage {
        chrome: Chrome::signed_out(),
        outcome: ApprovalOutcome::Open(Box::new(OpenApproval {
            w: WorkflowView::of(w),
            note,
            question: Question::of(w, Timestamp::now()),
            decide: Some(Decide {
                action: format!("/ui/approve/{token}"),
                csrf: String::new(),
                version: w.version,
                fields: fields.unwrap_or_else(|| form::fields(w.resume_schema.as_ref())),
                problems,
            }),
        })),
    }
}

pub async fn approval(State(state): State<AppState>, Path(text): Path<String>) -> Page {
    let Some(token) = approval_token(&text) else {
        return Ok(gone_approval());
    };
    match state.ui_tokens.approval(&state.workflows, &token).await {
        Ok((detail, w)) => Ok(render(&approval_page(
            &text,
            detail.note,
            &w,
            None,
            Vec::new(),
        ))),
        Err(ApprovalRefused::Gone) => Ok(gone_approval()),
        Err(ApprovalRefused::UseCase(e)) => Err(e.into()),
    }
}

pub async fn answer_approval(
    State(state): State<AppState>,
    Path(text): Path<String>,
    RawForm(body): RawForm,
) -> Page {
    let Some(token) = approval_token(&text) else {
        return Ok(gone_approval());
    };
    let (detail, w) = match state.ui_tokens.approval(&state.workflows, &token).await {
        Ok(found) => found,
        Err(ApprovalRefused::Gone) => return Ok(gone_approval()),
        Err(ApprovalRefused::UseCase(e)) => return Err(e.into()),
    };
    let pairs = pairs_of(&body);
    let mut fields = form::fields(w.resume_schema.as_ref());
    let resume_data = match form::read(&mut fields, &pairs) {
        Ok(data) => data,
        Err(unreadable) => {
            form::place_unreadable(&mut fields, &unreadable);
            let page = approval_page(&text, detail.note, &w, Some(fields), Vec::new());
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response());
        }
    };
    let answered = state
        .ui_tokens
        .answer_approval(
            &state.workflows,
            &token,
            &detail,
            ResumeWorkflow { resume_data },
        )
        .await;
    match answered {
        Ok(_) => {
            let page = ApprovalPage {
                chrome: Chrome::signed_out(),
                outcome: ApprovalOutcome::Answered,
            };
            Ok(render(&page))
        }
        Err(ApprovalRefused::Gone) => Ok(gone_approval()),
        Err(ApprovalRefused::UseCase(
            UseCaseError::Refused(TransitionError::Invalid(errors)) | UseCaseError::Invalid(errors),
        )) => {
            let unplaced = form::place_errors(&mut fields, &errors.0);
            let page = approval_page(&text, detail.note, &w, Some(fields), unplaced);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
        Err(ApprovalRefused::UseCase(e)) => Err(e.into()),
    }
}

// ---- Live updates ----

/// The tenant's events for the page's script: the API's stream, under
/// the session, from now on (a page shows the past already); a
/// reconnecting script resumes after its `Last-Event-ID`.
pub async fn events(
    State(state): State<AppState>,
    session: UiSession<Read>,
    headers: HeaderMap,
) -> Page {
    let now = state.workflows.events_now(session.scope.tenant_id).await?;
    let from_now: Vec<(String, String)> = now
        .map(|id| ("after".to_owned(), id.encode()))
        .into_iter()
        .collect();
    crate::http::events::stream_or_page(state, session.scope, &headers, &from_now)
        .await
        .map_err(UiError::Api)
}
