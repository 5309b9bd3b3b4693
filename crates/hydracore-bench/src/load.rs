//! Closed-loop load: each connection is a task with its own keep-alive
//! connection (`client`) that sends its next request as soon as the
//! previous one is answered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::Method;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::client::{Call, Connection};
use crate::stats::{Outcome, Recorder};

/// An instance and its proxy key.
#[derive(Debug, Clone)]
pub struct Agent {
    pub instance_id: Uuid,
    pub key: String,
}

/// What one request of a worker does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// POST a new workflow (it joins the connection's pool).
    Create,
    /// PATCH one of the connection's own workflows.
    Advance,
    /// GET one of the connection's own workflows.
    Get,
    /// GET the instance's list, `status=active&per_page=20`.
    List,
    /// Suspend, or resume, the connection's dedicated workflow: the two
    /// alternate, so each succeeds.
    SuspendResume,
    /// GET a random id of a sample (seeded workflows).
    GetSample,
    /// GET the dashboard's tenant-wide list, `status=active&per_page=20`.
    ListTenant,
    /// PATCH one fixed workflow with `Prefer: return=minimal`.
    AdvanceMinimal,
    /// GET the instance's list filtered on a random reference of a sample
    /// (references of seeded workflows), `per_page=20`.
    ListReference,
    /// GET a list's deepest page that `page` may ask for,
    /// `page=100&per_page=100` (rows 9,901 to 10,000).
    ListDeepPage(ListOf),
    /// GET a list page by page, `per_page=100`, each request with the
    /// previous answer's `next_cursor`; back to the first page after
    /// [`WALK_PAGES`] pages or at the list's end.
    ListCursorWalk(ListOf),
    /// GET the tenant's decisions inbox, its first page of 20, with the
    /// admin JWT.
    Inbox,
    /// GET the tenant's decision counts, `/v1/decisions/summary`, with the
    /// admin JWT.
    DecisionSummary,
    /// GET the web page's inbox, `/ui/` (its first 50 decisions and the
    /// counts, rendered), in a session the admin JWT signed in.
    UiInbox,
}

/// Which list a list action reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListOf {
    /// The instance's, `/internal/v1/instances/{id}/workflows`, with the
    /// proxy key.
    Instance,
    /// The tenant's, `/v1/workflows`, with the admin JWT.
    Tenant,
}

/// The query of [`Action::ListDeepPage`]: `page` × `per_page` may reach
/// 10,000 rows deep, and this page ends there.
pub const DEEP_PAGE_QUERY: &str = "page=100&per_page=100";

/// Pages a cursor walk reads before it starts over: as deep as
/// [`DEEP_PAGE_QUERY`] reaches, so the two cases read the same rows.
pub const WALK_PAGES: u32 = 100;

/// The agent mix of the issue, in percent: 15 create, 40 advance, 25 get,
/// 10 list, 10 suspend-or-resume (5 + 5).
pub const AGENT_MIX: [(u32, Action); 5] = [
    (15, Action::Create),
    (40, Action::Advance),
    (25, Action::Get),
    (10, Action::List),
    (10, Action::SuspendResume),
];

/// How to build one connection's worker.
#[derive(Debug, Clone)]
pub struct WorkerSetup {
    pub base_url: String,
    pub agent: Agent,
    /// Dashboard JWT, for [`Action::ListTenant`].
    pub admin_jwt: Option<String>,
    pub mix: Vec<(u32, Action)>,
    /// Workflows created up front for advance and get.
    pub pool_size: usize,
    /// Ids for [`Action::GetSample`].
    pub sample: Arc<Vec<Uuid>>,
    /// References for [`Action::ListReference`].
    pub references: Arc<Vec<String>>,
    /// The workflow of [`Action::AdvanceMinimal`]; a fresh one when `None`.
    pub fixed: Option<Uuid>,
    pub seed: u64,
}

pub struct Worker {
    connection: Connection,
    /// The instance's workflows, `/internal/v1/instances/{id}/workflows`.
    workflows_path: String,
    auth: HeaderValue,
    admin_auth: Option<HeaderValue>,
    /// The web page's session cookie, signed in by `prepare`.
    ui_cookie: Option<HeaderValue>,
    base_url: String,
    mix: Vec<(u32, Action)>,
    total_weight: u32,
    pool_size: usize,
    pool: Vec<Uuid>,
    next_replace: usize,
    suspend_resume: Option<(Uuid, bool)>,
    sample: Arc<Vec<Uuid>>,
    references: Arc<Vec<String>>,
    /// Where [`Action::ListCursorWalk`] is.
    walk: Walk,
    fixed: Option<Uuid>,
    rng: StdRng,
    steps: u64,
}

/// A cursor walk's place: the cursor of the next page (`None`: the first
/// page), and the pages read since the first.
#[derive(Debug, Default)]
struct Walk {
    cursor: Option<String>,
    pages: u32,
}

const WORKFLOW_TYPES: [&str; 6] = [
    "rent_arrears",
    "maintenance",
    "viewing",
    "lead",
    "compliance_renewal",
    "invoice_chase",
];

impl Worker {
    pub fn new(setup: WorkerSetup) -> anyhow::Result<Worker> {
        let total_weight = setup.mix.iter().map(|(w, _)| w).sum();
        if total_weight == 0 {
            bail!("an empty workload mix");
        }
        Ok(Worker {
            connection: Connection::new(setup.base_url.trim_end_matches('/'))?,
            workflows_path: format!(
                "/internal/v1/instances/{}/workflows",
                setup.agent.instance_id
            ),
            auth: bearer(&setup.agent.key)?,
            admin_auth: setup.admin_jwt.as_deref().map(bearer).transpose()?,
            ui_cookie: None,
            base_url: setup.base_url.trim_end_matches('/').to_owned(),
            mix: setup.mix,
            total_weight,
            pool_size: setup.pool_size,
            pool: Vec::new(),
            next_replace: 0,
            suspend_resume: None,
            sample: setup.sample,
            references: setup.references,
            walk: Walk::default(),
            fixed: setup.fixed,
            rng: StdRng::seed_from_u64(setup.seed),
            steps: 0,
        })
    }

    fn uses(&self, action: Action) -> bool {
        self.mix.iter().any(|(_, a)| *a == action)
    }

    fn uses_tenant_list(&self) -> bool {
        self.mix.iter().any(|(_, a)| {
            matches!(
                a,
                Action::ListTenant
                    | Action::ListDeepPage(ListOf::Tenant)
                    | Action::ListCursorWalk(ListOf::Tenant)
                    | Action::Inbox
                    | Action::DecisionSummary
                    | Action::UiInbox
            )
        })
    }

    /// Creates the workflows this worker's actions need, before the clock
    /// starts.
    pub async fn prepare(&mut self) -> anyhow::Result<()> {
        if self.uses(Action::Advance) || self.uses(Action::Get) {
            for _ in 0..self.pool_size.max(1) {
                let id = self.create_for_setup().await?;
                self.pool.push(id);
            }
        }
        if self.uses(Action::SuspendResume) {
            let id = self.create_for_setup().await?;
            self.suspend_resume = Some((id, false));
        }
        if self.uses(Action::AdvanceMinimal) && self.fixed.is_none() {
            self.fixed = Some(self.create_for_setup().await?);
        }
        if self.uses(Action::GetSample) && self.sample.is_empty() {
            bail!("no workflow ids to get");
        }
        if self.uses(Action::ListReference) && self.references.is_empty() {
            bail!("no references to filter the list on");
        }
        if self.uses_tenant_list() && self.admin_auth.is_none() {
            bail!("the tenant-wide list needs an admin JWT");
        }
        if self.uses(Action::UiInbox) {
            let jwt = self
                .admin_auth
                .as_ref()
                .and_then(|a| a.to_str().ok())
                .and_then(|a| a.strip_prefix("Bearer "))
                .context("the web page needs an admin JWT to sign in with")?;
            let cookie = ui_session(&self.base_url, jwt).await?;
            self.ui_cookie = Some(HeaderValue::from_str(&cookie)?);
        }
        Ok(())
    }

    async fn create_for_setup(&mut self) -> anyhow::Result<Uuid> {
        let json = self.create_body();
        let call = Call::new(Method::POST, &self.workflows_path)
            .json(json)
            .keep_body();
        let (status, body) = self
            .connection
            .send(call, &self.auth)
            .await
            .context("creating a workflow")?;
        if status != 201 {
            bail!(
                "creating a workflow answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        created_id(&body).context("a create answer without an id")
    }

    fn create_body(&mut self) -> Vec<u8> {
        let n: u32 = self.rng.gen_range(0..1_000_000);
        let workflow_type = WORKFLOW_TYPES[self.rng.gen_range(0..WORKFLOW_TYPES.len())];
        json!({
            "customer_id": Uuid::new_v4(),
            "workflow_type": workflow_type,
            "stage": "intake",
            "title": format!("Bench workflow {n}"),
            "reference": format!("REF-{n:06}"),
            "assigned_to": "agent-7",
            "workflow_state": {
                "amount_due": 1200,
                "currency": "GBP",
                "property": {"ref": format!("P-{n}"), "address": "3 Harbour Lane"},
                "contacts": ["sms", "email"],
            },
        })
        .to_string()
        .into_bytes()
    }

    fn advance_body(&mut self) -> Vec<u8> {
        self.steps += 1;
        json!({
            "action": "contacted",
            "stage": "chasing",
            "action_detail": {"channel": "sms", "attempt": self.steps},
            "workflow_state": {"last_contact": "sms", "attempts": self.steps},
        })
        .to_string()
        .into_bytes()
    }

    fn pick(&mut self) -> Action {
        let mut roll = self.rng.gen_range(0..self.total_weight);
        for (weight, action) in &self.mix {
            if roll < *weight {
                return *action;
            }
            roll -= weight;
        }
        self.mix[0].1
    }

    fn pooled(&mut self) -> Uuid {
        if self.pool.is_empty() {
            return Uuid::nil();
        }
        self.pool[self.rng.gen_range(0..self.pool.len())]
    }

    /// Sends one request; returns its operation name and outcome.
    pub async fn step(&mut self) -> (&'static str, Outcome) {
        match self.pick() {
            Action::Create => {
                let json = self.create_body();
                let call = Call::new(Method::POST, &self.workflows_path)
                    .json(json)
                    .keep_body();
                let (outcome, body) = outcome_of(self.connection.send(call, &self.auth).await);
                if let (Outcome::Status(201), Some(id)) = (outcome, created_id(&body)) {
                    // New workflows join the pool (up to 4 times its size).
                    let cap = self.pool_size.max(1) * 4;
                    if self.pool.len() < cap {
                        self.pool.push(id);
                    } else {
                        self.pool[self.next_replace % cap] = id;
                        self.next_replace += 1;
                    }
                }
                ("create", outcome)
            }
            Action::Advance => {
                let id = self.pooled();
                let json = self.advance_body();
                let path = format!("{}/{id}", self.workflows_path);
                let call = Call::new(Method::PATCH, &path).json(json);
                ("advance", self.send(call).await.0)
            }
            Action::Get => {
                let id = self.pooled();
                let path = format!("{}/{id}", self.workflows_path);
                ("get", self.send(Call::new(Method::GET, &path)).await.0)
            }
            Action::List => {
                let path = format!("{}?status=active&per_page=20", self.workflows_path);
                ("list", self.send(Call::new(Method::GET, &path)).await.0)
            }
            Action::SuspendResume => {
                let Some((id, suspended)) = self.suspend_resume else {
                    return ("suspend", Outcome::Transport);
                };
                let (op, path, json) = if suspended {
                    (
                        "resume",
                        format!("{}/{id}/resume", self.workflows_path),
                        json!({"resume_data": {"plan_approved": true}}),
                    )
                } else {
                    (
                        "suspend",
                        format!("{}/{id}/suspend", self.workflows_path),
                        json!({
                            "step": "approve_payment_plan",
                            "payload": {"plan": [400, 400, 400]},
                        }),
                    )
                };
                let call = Call::new(Method::POST, &path).json(json.to_string().into_bytes());
                let (outcome, _) = self.send(call).await;
                // A success flips the state; so does a 409, which says the
                // workflow already is where the other call would take it.
                if matches!(outcome, Outcome::Status(200..=299 | 409)) {
                    self.suspend_resume = Some((id, !suspended));
                }
                (op, outcome)
            }
            Action::GetSample => {
                let id = if self.sample.is_empty() {
                    Uuid::nil()
                } else {
                    self.sample[self.rng.gen_range(0..self.sample.len())]
                };
                let path = format!("{}/{id}", self.workflows_path);
                ("get", self.send(Call::new(Method::GET, &path)).await.0)
            }
            Action::ListTenant => {
                let call = Call::new(Method::GET, "/v1/workflows?status=active&per_page=20");
                let auth = self.admin_auth.as_ref().unwrap_or(&self.auth);
                (
                    "list_tenant",
                    outcome_of(self.connection.send(call, auth).await).0,
                )
            }
            Action::AdvanceMinimal => {
                let id = self.fixed.unwrap_or_else(Uuid::nil);
                let json = self.advance_body();
                let path = format!("{}/{id}", self.workflows_path);
                let call = Call::new(Method::PATCH, &path)
                    .json(json)
                    .header(PREFER, HeaderValue::from_static("return=minimal"));
                ("advance", self.send(call).await.0)
            }
            Action::ListReference => {
                let reference = if self.references.is_empty() {
                    ""
                } else {
                    &self.references[self.rng.gen_range(0..self.references.len())]
                };
                let path = format!(
                    "{}?reference={}&per_page=20",
                    self.workflows_path,
                    query_value(reference)
                );
                let call = Call::new(Method::GET, &path);
                ("list_reference", self.send(call).await.0)
            }
            Action::ListDeepPage(of) => {
                let (path, auth) = self.list_of(of, DEEP_PAGE_QUERY);
                let call = Call::new(Method::GET, &path);
                (
                    "list_deep_page",
                    outcome_of(self.connection.send(call, &auth).await).0,
                )
            }
            Action::ListCursorWalk(of) => {
                let query = match &self.walk.cursor {
                    Some(cursor) => format!("cursor={}&per_page=100", query_value(cursor)),
                    None => "per_page=100".to_owned(),
                };
                let (path, auth) = self.list_of(of, &query);
                let call = Call::new(Method::GET, &path).keep_body();
                let (outcome, body) = outcome_of(self.connection.send(call, &auth).await);
                self.walk.pages += 1;
                // A failed page, the list's end or the walk's depth: the
                // next request reads the first page.
                let next = match outcome {
                    Outcome::Status(200) if self.walk.pages < WALK_PAGES => next_cursor(&body),
                    _ => None,
                };
                if next.is_none() {
                    self.walk.pages = 0;
                }
                self.walk.cursor = next;
                ("list_cursor_walk", outcome)
            }
            Action::Inbox => ("inbox", self.send_admin("/v1/decisions?limit=20").await),
            Action::DecisionSummary => (
                "decisions_summary",
                self.send_admin("/v1/decisions/summary").await,
            ),
            Action::UiInbox => {
                let mut call = Call::new(Method::GET, "/ui/");
                if let Some(cookie) = &self.ui_cookie {
                    call = call.header(http::header::COOKIE, cookie.clone());
                }
                let outcome = outcome_of(self.connection.send(call, &self.auth).await).0;
                ("ui_inbox", outcome)
            }
        }
    }

    /// GETs `path` with the admin JWT.
    async fn send_admin(&mut self, path: &str) -> Outcome {
        let auth = self.admin_auth.as_ref().unwrap_or(&self.auth);
        outcome_of(
            self.connection
                .send(Call::new(Method::GET, path), auth)
                .await,
        )
        .0
    }

    /// The path of `of`'s list with `query`, and the credential it takes.
    fn list_of(&self, of: ListOf, query: &str) -> (String, HeaderValue) {
        match of {
            ListOf::Instance => (
                format!("{}?{query}", self.workflows_path),
                self.auth.clone(),
            ),
            ListOf::Tenant => (
                format!("/v1/workflows?{query}"),
                self.admin_auth.as_ref().unwrap_or(&self.auth).clone(),
            ),
        }
    }

    /// Sends `call` with the agent's key.
    async fn send(&mut self, call: Call<'_>) -> (Outcome, Bytes) {
        outcome_of(self.connection.send(call, &self.auth).await)
    }
}

/// `Authorization: Bearer <token>`, kept out of debug output.
fn bearer(token: &str) -> anyhow::Result<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .context("a token that is no header value")?;
    value.set_sensitive(true);
    Ok(value)
}

const PREFER: HeaderName = HeaderName::from_static("prefer");

/// An answer's outcome, and its body (empty when there was no answer).
fn outcome_of(answer: anyhow::Result<(u16, Bytes)>) -> (Outcome, Bytes) {
    match answer {
        Ok((status, body)) => (Outcome::Status(status), body),
        Err(_) => (Outcome::Transport, Bytes::new()),
    }
}

/// `value` as a query string value: unreserved characters as they are,
/// every other byte percent-encoded. Cursors are opaque, and a reference
/// is any text.
fn query_value(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// A list answer's `next_cursor` (`None`: the last page, or no list).
fn next_cursor(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Page {
        next_cursor: Option<String>,
    }
    serde_json::from_slice::<Page>(body)
        .ok()
        .and_then(|p| p.next_cursor)
}

fn created_id(body: &[u8]) -> Option<Uuid> {
    #[derive(serde::Deserialize)]
    struct Created {
        id: Uuid,
    }
    serde_json::from_slice::<Created>(body).ok().map(|c| c.id)
}

/// Prepares `workers` concurrently (their pools), in order.
pub async fn prepare(workers: Vec<Worker>) -> anyhow::Result<Vec<Worker>> {
    let mut set = JoinSet::new();
    for (index, mut worker) in workers.into_iter().enumerate() {
        set.spawn(async move {
            worker.prepare().await?;
            anyhow::Ok((index, worker))
        });
    }
    let mut prepared = Vec::new();
    while let Some(joined) = set.join_next().await {
        prepared.push(joined.context("a preparing task failed")??);
    }
    prepared.sort_by_key(|(index, _)| *index);
    Ok(prepared.into_iter().map(|(_, w)| w).collect())
}

/// Runs every worker in a closed loop: `warmup` unrecorded, then
/// `duration` recorded. Requests started in the window are counted.
pub async fn run(
    workers: Vec<Worker>,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Recorder> {
    let start = Instant::now();
    let measured = start + warmup;
    let end = measured + duration;
    let mut set = JoinSet::new();
    for mut worker in workers {
        set.spawn(async move {
            let mut recorder = Recorder::new()?;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let (op, outcome) = worker.step().await;
                if sent >= measured {
                    recorder.record(op, outcome, sent.elapsed());
                }
            }
            anyhow::Ok(recorder)
        });
    }
    let mut total = Recorder::new()?;
    while let Some(joined) = set.join_next().await {
        total.merge(&joined.context("a load task failed")??)?;
    }
    Ok(total)
}

/// Signs in to the web page with the admin `jwt` as a browser does (the
/// sign-in form's token, then the form); answers the session's `Cookie`.
async fn ui_session(base_url: &str, jwt: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let form = client.get(format!("{base_url}/ui/sign-in")).send().await?;
    let form_cookie = cookie_named(&form, "hydracore_sign_in")?;
    let html = form.text().await?;
    let marker = "name=\"csrf\" value=\"";
    let start = html
        .find(marker)
        .context("no form token on the sign-in page")?
        + marker.len();
    let csrf = &html[start..start + html[start..].find('"').unwrap_or(0)];
    let signed_in = client
        .post(format!("{base_url}/ui/sign-in"))
        .header(http::header::COOKIE, form_cookie)
        .form(&[("csrf", csrf), ("credential", jwt)])
        .send()
        .await?;
    cookie_named(&signed_in, "hydracore_session")
}

fn cookie_named(response: &reqwest::Response, name: &str) -> anyhow::Result<String> {
    response
        .headers()
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
        .with_context(|| format!("no {name} cookie (status {})", response.status()))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    #[test]
    fn query_values_keep_unreserved_characters_and_encode_the_rest() {
        assert_eq!(query_value("SEED-00000042"), "SEED-00000042");
        assert_eq!(query_value("a b/c+d&é"), "a%20b%2Fc%2Bd%26%C3%A9");
    }

    /// Answers list requests on keep-alive connections and notes their
    /// paths: page `n` (the first without a cursor, then `cursor=c<n-1>`)
    /// has `next_cursor` `c<n>`, or null from page `last` on.
    async fn pages(listener: TcpListener, last: u32, paths: Arc<Mutex<Vec<String>>>) {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(answer_pages(socket, last, Arc::clone(&paths)));
        }
    }

    async fn answer_pages(mut socket: TcpStream, last: u32, paths: Arc<Mutex<Vec<String>>>) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(read) => buf.extend_from_slice(&chunk[..read]),
                }
            }
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                return;
            };
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
            let page = path
                .split_once("cursor=c")
                .and_then(|(_, rest)| rest.split('&').next()?.parse::<u32>().ok())
                .map_or(1, |n| n + 1);
            if let Ok(mut paths) = paths.lock() {
                paths.push(path);
            }
            let body = if page >= last {
                r#"{"workflows":[],"next_cursor":null}"#.to_owned()
            } else {
                format!(r#"{{"workflows":[],"next_cursor":"c{page}"}}"#)
            };
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            if socket.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    /// The queries of `steps` cursor-walk requests against [`pages`].
    async fn walk(last: u32, steps: usize) -> Vec<String> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let paths = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(pages(listener, last, Arc::clone(&paths)));
        let instance_id = Uuid::new_v4();
        let mut worker = Worker::new(WorkerSetup {
            base_url: format!("http://{address}"),
            agent: Agent {
                instance_id,
                key: "hcp_test".into(),
            },
            admin_jwt: None,
            mix: vec![(1, Action::ListCursorWalk(ListOf::Instance))],
            pool_size: 0,
            sample: Arc::new(Vec::new()),
            references: Arc::new(Vec::new()),
            fixed: None,
            seed: 1,
        })
        .expect("worker");
        worker.prepare().await.expect("prepare");
        for _ in 0..steps {
            let (op, outcome) = worker.step().await;
            assert_eq!((op, outcome), ("list_cursor_walk", Outcome::Status(200)));
        }
        let prefix = format!("/internal/v1/instances/{instance_id}/workflows?");
        let paths = paths.lock().expect("paths").clone();
        paths
            .iter()
            .map(|p| p.strip_prefix(&prefix).unwrap_or(p).to_owned())
            .collect()
    }

    #[tokio::test]
    async fn a_cursor_walk_follows_next_cursor_and_starts_over_at_the_end() {
        assert_eq!(
            walk(3, 5).await,
            [
                "per_page=100",
                "cursor=c1&per_page=100",
                "cursor=c2&per_page=100",
                "per_page=100",
                "cursor=c1&per_page=100",
            ]
        );
    }

    #[tokio::test]
    async fn a_cursor_walk_starts_over_after_its_pages() {
        let queries = walk(u32::MAX, WALK_PAGES as usize + 2).await;
        let firsts: Vec<usize> = queries
            .iter()
            .enumerate()
            .filter(|(_, q)| *q == "per_page=100")
            .map(|(i, _)| i)
            .collect();
        assert_eq!(firsts, [0, WALK_PAGES as usize]);
        assert_eq!(queries[WALK_PAGES as usize - 1], "cursor=c99&per_page=100");
    }
}
