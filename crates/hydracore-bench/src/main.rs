//! `hydracore-bench`: HydraCore's load generator.
//!
//! `run` provisions a tenant, instances and proxy keys, starts the release
//! `hydracore` binary on a fresh database (or targets a running server) and
//! runs closed-loop workloads; `seed` bulk-loads workflows; `scale`
//! measures get, list and history-length effects on a seeded database;
//! `pgbench` measures the PostgreSQL baseline. See docs/benchmarks.md.
#![forbid(unsafe_code)]

// The same allocator as the server: the load generator shares the machine's
// cores with it, so its own malloc costs come out of the server's figures.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod client;
mod db;
mod events;
mod load;
mod pgbench;
mod seed;
mod server;
mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use hydracore_domain::request::PAGE_DEPTH_MAX;
use hydracore_storage::{Store, StoreOptions};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::db::{redact, Backend, BenchDatabase, DEFAULT_POSTGRES_SERVER};
use crate::load::{Action, Agent, ListOf, Worker, WorkerSetup, AGENT_MIX, DEEP_PAGE_QUERY};
use crate::pgbench::{PgbenchConfig, PgbenchResult};
use crate::server::{Server, ServerConfig};
use crate::stats::OpReport;

#[derive(Debug, Parser)]
#[command(
    name = "hydracore-bench",
    version,
    about = "Load generator and scale benchmarks for HydraCore"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Closed-loop workloads against a server started here (or --target)
    Run(RunArgs),
    /// Bulk-load workflows into a database, and mint keys for it
    Seed(SeedArgs),
    /// Get/list latency on a seeded database, and advance latency on a long history
    Scale(ScaleArgs),
    /// The PostgreSQL baseline: pgbench -N in a scratch database
    Pgbench(PgbenchArgs),
    /// Commit-to-stream latency of events, and a server's memory with many streams open
    Events(EventsArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Workload {
    /// 15% create, 40% advance, 25% get, 10% list, 5% suspend, 5% resume
    Agent,
    Create,
    Advance,
    Get,
    /// `status=active&per_page=20`
    List,
    /// Suspend and resume alternating on each connection's own workflow
    SuspendResume,
    /// Agent, then each single operation
    All,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Agent => "agent",
            Workload::Create => "create",
            Workload::Advance => "advance",
            Workload::Get => "get",
            Workload::List => "list",
            Workload::SuspendResume => "suspend-resume",
            Workload::All => "all",
        }
    }

    fn phases(self) -> Vec<Workload> {
        match self {
            Workload::All => vec![
                Workload::Agent,
                Workload::Create,
                Workload::Advance,
                Workload::Get,
                Workload::List,
                Workload::SuspendResume,
            ],
            one => vec![one],
        }
    }

    fn mix(self) -> Vec<(u32, Action)> {
        match self {
            Workload::Agent | Workload::All => AGENT_MIX.to_vec(),
            Workload::Create => vec![(1, Action::Create)],
            Workload::Advance => vec![(1, Action::Advance)],
            Workload::Get => vec![(1, Action::Get)],
            Workload::List => vec![(1, Action::List)],
            Workload::SuspendResume => vec![(1, Action::SuspendResume)],
        }
    }
}

#[derive(Debug, Args)]
struct OutputArgs {
    /// Print one JSON object on stdout (the tables go to stderr)
    #[arg(long)]
    json: bool,
    /// Also write the JSON object to this file
    #[arg(long)]
    json_out: Option<PathBuf>,
}

impl OutputArgs {
    /// Human text: stdout, or stderr when stdout carries the JSON.
    fn say(&self, text: &str) {
        if self.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }

    fn finish(&self, value: &Value) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(value)?;
        if let Some(path) = &self.json_out {
            std::fs::write(path, format!("{text}\n"))
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        if self.json {
            println!("{}", serde_json::to_string(value)?);
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
struct LoadArgs {
    /// Concurrent connections (closed loop: one request in flight each)
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured time per workload
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured time before it
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// HYDRACORE_DB_MAX_CONNECTIONS of a server started here
    #[arg(long)]
    server_max_connections: Option<u32>,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[arg(long, value_enum, default_value = "agent")]
    workload: Workload,
    #[command(flatten)]
    load: LoadArgs,
    /// Backend of the fresh database made for this run
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// Use this database (kept) instead of a fresh one
    #[arg(long)]
    database_url: Option<String>,
    /// Server on which fresh PostgreSQL databases are created (and dropped)
    #[arg(long, default_value = DEFAULT_POSTGRES_SERVER)]
    postgres_server: String,
    /// Instances provisioned (connections are spread over them)
    #[arg(long, default_value_t = 4)]
    instances: usize,
    /// Workflows created up front per connection for advance and get
    #[arg(long, default_value_t = 10)]
    pool: usize,
    /// Use a running server at this URL instead of starting one
    #[arg(long, requires_all = ["instance", "proxy_key"])]
    target: Option<String>,
    /// With --target: an instance to act as (repeat; pairs with --proxy-key)
    #[arg(long)]
    instance: Vec<Uuid>,
    /// With --target: the proxy key of the matching --instance (repeat)
    #[arg(long)]
    proxy_key: Vec<String>,
    /// With --target: the server's pid, for its peak RSS
    #[arg(long)]
    server_pid: Option<u32>,
    /// Run `pgbench -N` on the same PostgreSQL server just before the agent mix
    #[arg(long)]
    compare_pgbench: bool,
    #[command(flatten)]
    pgbench: PgbenchOptions,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
struct PgbenchOptions {
    #[arg(long, default_value = "/usr/bin/pgbench")]
    pgbench_bin: String,
    /// pgbench -i -s
    #[arg(long, default_value_t = 10)]
    pgbench_scale: u32,
    /// pgbench -c
    #[arg(long, default_value_t = 32)]
    pgbench_clients: u32,
    /// pgbench -j
    #[arg(long, default_value_t = 2)]
    pgbench_threads: u32,
    /// pgbench -T (default: the run's --duration)
    #[arg(long, value_parser = humantime::parse_duration)]
    pgbench_duration: Option<Duration>,
}

impl PgbenchOptions {
    fn config(&self, server: &str, default_duration: Duration) -> PgbenchConfig {
        PgbenchConfig {
            binary: self.pgbench_bin.clone(),
            server: server.to_owned(),
            scale: self.pgbench_scale,
            clients: self.pgbench_clients,
            threads: self.pgbench_threads,
            duration: self.pgbench_duration.unwrap_or(default_duration),
        }
    }
}

#[derive(Debug, Args)]
struct SeedArgs {
    /// Workflows to load (each with its `created` history entry)
    #[arg(long)]
    workflows: u64,
    /// Without --database-url: `sqlite` loads ./hydracore-bench.db,
    /// `postgres` a new database hc_bench_<uuid> (kept; printed)
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long, default_value = DEFAULT_POSTGRES_SERVER)]
    postgres_server: String,
    /// Instances of the tenant; workflows are spread evenly over them
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// Tenant (default: a new one)
    #[arg(long)]
    tenant: Option<Uuid>,
    /// Share of `active` workflows (the rest: completed, suspended, paused, ...)
    #[arg(long, default_value_t = 0.7)]
    active_share: f64,
    /// Instead: exactly this many `active` workflows per instance (e.g. 4000)
    #[arg(long)]
    matches_per_instance: Option<u64>,
    /// Rows per INSERT (default: 1000 SQLite, 10000 PostgreSQL)
    #[arg(long)]
    batch: Option<usize>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
struct ScaleArgs {
    /// The seeded database (see `seed`)
    #[arg(long)]
    database_url: String,
    /// Instance to measure (default: the one with the most workflows)
    #[arg(long)]
    instance: Option<Uuid>,
    #[command(flatten)]
    load: LoadArgs,
    /// History entries of the long-history workflows
    #[arg(long, default_value_t = 10_000)]
    history: i64,
    /// Connections (each on its own workflow) for the history comparison
    #[arg(long, default_value_t = 4)]
    history_connections: usize,
    /// Random seeded ids, and references, that the get and reference-list cases pick from
    #[arg(long, default_value_t = 10_000)]
    sample: i64,
    /// Suspended decisions the tenant holds for the inbox cases: its oldest
    /// active workflows are made into them until it holds this many (0: none)
    #[arg(long, default_value_t = 50_000)]
    decisions: i64,
    /// Use a running server on that database instead of starting one
    #[arg(long, requires = "proxy_key")]
    target: Option<String>,
    /// With --target: a proxy key of the instance
    #[arg(long)]
    proxy_key: Option<String>,
    /// With --target: an admin JWT of the tenant (else the tenant-wide list is skipped)
    #[arg(long)]
    admin_jwt: Option<String>,
    /// Measure only this case, e.g. `list_deep_page` (repeat for more; default: all)
    #[arg(long = "case", value_name = "NAME")]
    cases: Vec<String>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
struct EventsArgs {
    /// Backend of the fresh database made for this run
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// Server on which the fresh PostgreSQL database is created (and dropped)
    #[arg(long, default_value = DEFAULT_POSTGRES_SERVER)]
    postgres_server: String,
    /// Read the streams from a second server on the same database (PostgreSQL)
    #[arg(long)]
    two_replicas: bool,
    /// Streams open at once; repeat to measure several counts in turn
    #[arg(long = "streams", default_values_t = [1, 1000])]
    streams: Vec<usize>,
    /// Workflows the changes go round
    #[arg(long, default_value_t = 20)]
    workflows: usize,
    /// Changes per second
    #[arg(long, default_value_t = 20)]
    rate: u32,
    /// How long changes are made, per stream count
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
struct PgbenchArgs {
    /// Any database URL of the server (a scratch database is made beside it)
    #[arg(long, default_value = DEFAULT_POSTGRES_SERVER)]
    postgres_server: String,
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    #[command(flatten)]
    pgbench: PgbenchOptions,
    #[command(flatten)]
    output: OutputArgs,
}

/// Facts about the machine a figure was measured on.
#[derive(Debug, Clone, Serialize)]
struct Machine {
    nproc: usize,
    cpu_model: String,
    memory_total_kib: Option<u64>,
    kernel: Option<String>,
}

impl Machine {
    fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, model)| model.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let memory_total_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|r| r.split_whitespace().next()?.parse().ok())
        });
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|k| k.trim().to_owned());
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            memory_total_kib,
            kernel,
        }
    }

    fn line(&self, backend: &str) -> String {
        format!(
            "machine: {} CPUs ({}), {} MiB RAM, kernel {}; backend: {backend}; \
             the load generator shares these CPUs with the server",
            self.nproc,
            self.cpu_model,
            self.memory_total_kib.map_or(0, |k| k / 1024),
            self.kernel.as_deref().unwrap_or("?"),
        )
    }
}

/// One measured workload.
#[derive(Debug, Clone, Serialize)]
struct Phase {
    workload: String,
    connections: usize,
    warmup_s: f64,
    duration_s: f64,
    ops: Vec<OpReport>,
    total: OpReport,
    /// The server's VmHWM after this phase (it only grows).
    server_peak_rss_kib: Option<u64>,
}

impl Phase {
    fn text(&self) -> String {
        let mut text = format!(
            "== {}: {} connections, {:.0} s measured (warmup {:.0} s) ==\n{}",
            self.workload,
            self.connections,
            self.duration_s,
            self.warmup_s,
            stats::table(&self.ops, &self.total)
        );
        if let Some(kib) = self.server_peak_rss_kib {
            text.push_str(&format!(
                "server peak RSS: {:.1} MiB\n",
                kib as f64 / 1024.0
            ));
        }
        text
    }
}

/// Builds, prepares and runs one phase.
async fn measure(
    name: &str,
    setups: Vec<WorkerSetup>,
    load: &LoadArgs,
    database_url: Option<&str>,
    rss: impl Fn() -> Option<u64>,
) -> anyhow::Result<Phase> {
    let connections = setups.len();
    let workers = setups
        .into_iter()
        .map(Worker::new)
        .collect::<anyhow::Result<Vec<_>>>()?;
    eprintln!("{name}: preparing {connections} connections ...");
    let workers = load::prepare(workers).await?;
    if let Some(url) = database_url {
        // Statistics as a running database has them (autovacuum would
        // gather them within a minute): plans are cached on the first
        // requests, and planned on an empty table's defaults they can
        // scan a whole tenant for a page.
        seed::analyze(url).await?;
    }
    eprintln!(
        "{name}: running {:?} warmup + {:?} ...",
        load.warmup, load.duration
    );
    let recorder = load::run(workers, load.warmup, load.duration).await?;
    let (ops, total) = recorder.report(load.duration)?;
    Ok(Phase {
        workload: name.to_owned(),
        connections,
        warmup_s: load.warmup.as_secs_f64(),
        duration_s: load.duration.as_secs_f64(),
        ops,
        total,
        server_peak_rss_kib: rss(),
    })
}

/// A secret for the servers started here: random, never printed.
fn jwt_secret() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args).await,
        Command::Seed(args) => seed_command(args).await,
        Command::Scale(args) => scale(args).await,
        Command::Pgbench(args) => pgbench_command(args).await,
        Command::Events(args) => events_command(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn provision(
    store: &dyn Store,
    tenant_id: Uuid,
    instances: usize,
) -> anyhow::Result<Vec<Agent>> {
    let mut agents = Vec::new();
    for n in 0..instances.max(1) {
        let instance = hydracore::provision::create_instance(
            store,
            tenant_id,
            Some(format!("bench-{}", n + 1)),
        )
        .await?;
        let issued = hydracore::provision::create_proxy_key(store, instance.id).await?;
        agents.push(Agent {
            instance_id: instance.id,
            key: issued.key,
        });
    }
    Ok(agents)
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    if args.load.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let machine = Machine::detect();
    if let Some(target) = &args.target {
        if args.instance.len() != args.proxy_key.len() {
            bail!("give one --proxy-key per --instance");
        }
        let agents: Vec<Agent> = args
            .instance
            .iter()
            .zip(&args.proxy_key)
            .map(|(instance_id, key)| Agent {
                instance_id: *instance_id,
                key: key.clone(),
            })
            .collect();
        let backend = args
            .database_url
            .as_deref()
            .map_or("unknown (--target)", |u| Backend::of_url(u).name());
        args.output.say(&machine.line(backend));
        let pid = args.server_pid;
        let phases = run_phases(&args, target, &agents, None, || {
            pid.and_then(server::peak_rss_kib)
        })
        .await?;
        let peak = pid.and_then(server::peak_rss_kib);
        return report_run(&args, &machine, backend, target, phases, peak, None);
    }

    // Before anything is provisioned: is there a server to start?
    server::hydracore_binary()?;
    let database = BenchDatabase::prepare(
        args.backend,
        args.database_url.clone(),
        &args.postgres_server,
        false,
    )
    .await?;
    let outcome = run_on(&args, &machine, &database).await;
    let cleaned = database.cleanup().await;
    outcome?;
    cleaned
}

async fn run_on(args: &RunArgs, machine: &Machine, database: &BenchDatabase) -> anyhow::Result<()> {
    let backend = database.backend.name();
    args.output.say(&machine.line(backend));
    eprintln!("database: {}", redact(&database.url));
    let store = hydracore_storage::connect(&database.url, &StoreOptions::default())
        .await
        .context("connecting to (and migrating) the benchmark database")?;
    let tenant_id = Uuid::new_v4();
    let agents = provision(store.as_ref(), tenant_id, args.instances).await;
    store.close().await;
    let agents = agents?;

    let pgbench = if args.compare_pgbench {
        if database.backend != Backend::Postgres {
            bail!("--compare-pgbench needs the postgres backend");
        }
        let config = args.pgbench.config(&database.url, args.load.duration);
        let result = pgbench::run(&config).await?;
        eprintln!("pgbench: {:.1} tps", result.tps);
        Some(result)
    } else {
        None
    };

    let server = Server::spawn(&ServerConfig {
        database_url: database.url.clone(),
        jwt_secret: jwt_secret(),
        max_connections: args.load.server_max_connections,
    })
    .await?;
    eprintln!("server: {} (pid {})", server.base_url, server.pid);
    let phases = run_phases(args, &server.base_url, &agents, Some(&database.url), || {
        server.peak_rss_kib()
    })
    .await;
    if phases.is_err() {
        let tail = server.tail();
        if !tail.is_empty() {
            eprintln!("server log tail:\n{tail}");
        }
    }
    let base_url = server.base_url.clone();
    let peak = server.stop().await;
    let phases = phases?;
    report_run(args, machine, backend, &base_url, phases, peak, pgbench)
}

async fn run_phases(
    args: &RunArgs,
    base_url: &str,
    agents: &[Agent],
    database_url: Option<&str>,
    rss: impl Fn() -> Option<u64>,
) -> anyhow::Result<Vec<Phase>> {
    if agents.is_empty() {
        bail!("no instance to act as");
    }
    let mut phases = Vec::new();
    for workload in args.workload.phases() {
        let setups = (0..args.load.connections)
            .map(|i| WorkerSetup {
                base_url: base_url.to_owned(),
                agent: agents[i % agents.len()].clone(),
                admin_jwt: None,
                mix: workload.mix(),
                pool_size: args.pool,
                sample: Arc::new(Vec::new()),
                references: Arc::new(Vec::new()),
                fixed: None,
                seed: i as u64 + 1,
            })
            .collect();
        let phase = measure(workload.name(), setups, &args.load, database_url, &rss).await?;
        args.output.say(&phase.text());
        phases.push(phase);
    }
    Ok(phases)
}

fn report_run(
    args: &RunArgs,
    machine: &Machine,
    backend: &str,
    target: &str,
    phases: Vec<Phase>,
    peak_rss_kib: Option<u64>,
    pgbench: Option<PgbenchResult>,
) -> anyhow::Result<()> {
    match peak_rss_kib {
        Some(kib) => args.output.say(&format!(
            "server peak RSS (VmHWM): {:.1} MiB",
            kib as f64 / 1024.0
        )),
        None => args
            .output
            .say("server peak RSS: unknown (pass --server-pid with --target)"),
    }
    let agent_rate = phases
        .iter()
        .find(|p| p.workload == "agent")
        .map(|p| p.total.req_per_s);
    let ratio = match (&pgbench, agent_rate) {
        (Some(pg), Some(rate)) if pg.tps > 0.0 => {
            let ratio = rate / pg.tps;
            args.output.say(&format!(
                "agent mix: {rate:.1} req/s; pgbench -N -c {} -j {} -M prepared: {:.1} tps; \
                 ratio agent/pgbench = {ratio:.3}",
                pg.clients, pg.threads, pg.tps
            ));
            Some(ratio)
        }
        _ => None,
    };
    let value = json!({
        "command": "run",
        "workload": args.workload.name(),
        "machine": machine,
        "backend": backend,
        "target": target,
        "phases": phases,
        "server_peak_rss_kib": peak_rss_kib,
        "pgbench": pgbench,
        "agent_req_per_s_over_pgbench_tps": ratio,
    });
    args.output.finish(&value)
}

async fn seed_command(args: SeedArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.active_share) {
        bail!("--active-share must be between 0 and 1");
    }
    let database = BenchDatabase::prepare(
        args.backend,
        args.database_url.clone(),
        &args.postgres_server,
        true,
    )
    .await?;
    eprintln!("database: {}", redact(&database.url));
    let store = hydracore_storage::connect(&database.url, &StoreOptions::default())
        .await
        .context("connecting to (and migrating) the database")?;
    let result = seed_into(&args, &database, store.as_ref()).await;
    store.close().await;
    let value = result?;
    args.output.finish(&value)
}

async fn seed_into(
    args: &SeedArgs,
    database: &BenchDatabase,
    store: &dyn Store,
) -> anyhow::Result<Value> {
    let tenant_id = args.tenant.unwrap_or_else(Uuid::new_v4);
    let mut instances = Vec::new();
    for n in 0..args.instances.max(1) {
        let instance = hydracore::provision::create_instance(
            store,
            tenant_id,
            Some(format!("seeded-{}", n + 1)),
        )
        .await?;
        instances.push(instance.id);
    }
    let postgres = database.backend == Backend::Postgres;
    let batch = args.batch.unwrap_or(if postgres { 10_000 } else { 1_000 });
    let shape = seed::Shape {
        tenant_id,
        instances: instances.clone(),
        workflows: args.workflows,
        active_share: args.active_share,
        active_per_instance: args.matches_per_instance,
        batch,
        transaction_rows: 50_000,
    };
    eprintln!(
        "seeding {} workflows into tenant {tenant_id} ({} instances) ...",
        args.workflows,
        instances.len()
    );
    let mut db = seed::Db::connect(&database.url).await?;
    let took = seed::seed(&mut db, &shape).await;
    db.close().await?;
    let took = took?;
    let rate = args.workflows as f64 / took.as_secs_f64().max(1e-9);
    let mut keys = Vec::new();
    for instance in &instances {
        let issued = hydracore::provision::create_proxy_key(store, *instance).await?;
        keys.push(json!({"instance_id": instance, "proxy_key": issued.key}));
    }
    let scopes = ["workflows:read".to_owned(), "workflows:write".to_owned()];
    let api_key = hydracore::provision::create_api_key(store, tenant_id, &scopes).await?;
    args.output.say(&format!(
        "seeded {} workflows (+ {} history rows) in {:.1} s: {rate:.0} workflows/s\n\
         database:  {}\ntenant:    {tenant_id}\napi key:   {}",
        args.workflows,
        args.workflows,
        took.as_secs_f64(),
        redact(&database.url),
        api_key.key
    ));
    for key in &keys {
        args.output.say(&format!(
            "instance:  {}  proxy key: {}",
            key["instance_id"].as_str().unwrap_or_default(),
            key["proxy_key"].as_str().unwrap_or_default()
        ));
    }
    if postgres && args.database_url.is_none() {
        args.output.say(&format!(
            "(a new database, kept: drop it with DROP DATABASE {} WITH (FORCE))",
            database.url.rsplit('/').next().unwrap_or_default()
        ));
    }
    Ok(json!({
        "command": "seed",
        "database_url": redact(&database.url),
        "backend": database.backend,
        "tenant_id": tenant_id,
        "instances": keys,
        "api_key": api_key.key,
        "workflows": args.workflows,
        "active_share": if args.matches_per_instance.is_some() { Value::Null } else { json!(args.active_share) },
        "matches_per_instance": args.matches_per_instance,
        "seconds": took.as_secs_f64(),
        "workflows_per_s": rate,
    }))
}

async fn scale(args: ScaleArgs) -> anyhow::Result<()> {
    if args.load.connections == 0 || args.history_connections == 0 {
        bail!("--connections and --history-connections must be at least 1");
    }
    if args.target.is_none() {
        server::hydracore_binary()?;
    }
    let machine = Machine::detect();
    let backend = Backend::of_url(&args.database_url);
    args.output.say(&machine.line(backend.name()));
    let store = hydracore_storage::connect(&args.database_url, &StoreOptions::default())
        .await
        .context("connecting to the seeded database")?;
    let prepared = scale_prepare(&args, store.as_ref()).await;
    store.close().await;
    let prepared = prepared?;

    let secret = jwt_secret();
    let (server, base_url, admin_jwt) = match &args.target {
        Some(target) => (None, target.clone(), args.admin_jwt.clone()),
        None => {
            let server = Server::spawn(&ServerConfig {
                database_url: args.database_url.clone(),
                jwt_secret: secret.clone(),
                max_connections: args.load.server_max_connections,
            })
            .await?;
            eprintln!("server: {} (pid {})", server.base_url, server.pid);
            let (jwt, _) = hydracore::auth::jwt::mint_hs256(
                &secret,
                prepared.tenant_id,
                "admin",
                "hydracore-bench",
                Duration::from_secs(3600),
            )?;
            let base_url = server.base_url.clone();
            (Some(server), base_url, Some(jwt))
        }
    };
    let rss = || server.as_ref().and_then(Server::peak_rss_kib);
    let result = scale_phases(&args, &prepared, &base_url, admin_jwt, &rss).await;
    let peak = match server {
        Some(server) => {
            if result.is_err() {
                eprintln!("server log tail:\n{}", server.tail());
            }
            server.stop().await
        }
        None => None,
    };
    let ScaleMeasured {
        phases,
        totals,
        deep_list,
    } = result?;

    let fresh = phases.iter().find(|p| p.workload == "advance_history_1");
    let long = phases
        .iter()
        .find(|p| p.workload.starts_with("advance_history_") && p.workload != "advance_history_1");
    let history = match (fresh, long) {
        (Some(fresh), Some(long)) => {
            let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
            let value = json!({
                "entries": args.history,
                "p50_ms": {"fresh": fresh.total.p50_ms, "long": long.total.p50_ms,
                           "ratio": ratio(long.total.p50_ms, fresh.total.p50_ms)},
                "p99_ms": {"fresh": fresh.total.p99_ms, "long": long.total.p99_ms,
                           "ratio": ratio(long.total.p99_ms, fresh.total.p99_ms)},
                "mean_ms": {"fresh": fresh.total.mean_ms, "long": long.total.mean_ms,
                            "ratio": ratio(long.total.mean_ms, fresh.total.mean_ms)},
            });
            args.output.say(&format!(
                "advance (Prefer: return=minimal) on a workflow with {} history entries vs 1: \
                 p50 {:.2} vs {:.2} ms (ratio {:.2}), p99 {:.2} vs {:.2} ms (ratio {:.2})",
                args.history,
                long.total.p50_ms,
                fresh.total.p50_ms,
                ratio(long.total.p50_ms, fresh.total.p50_ms),
                long.total.p99_ms,
                fresh.total.p99_ms,
                ratio(long.total.p99_ms, fresh.total.p99_ms),
            ));
            value
        }
        _ => Value::Null,
    };
    if let Some(kib) = peak {
        args.output.say(&format!(
            "server peak RSS (VmHWM): {:.1} MiB",
            kib as f64 / 1024.0
        ));
    }
    let value = json!({
        "command": "scale",
        "machine": machine,
        "backend": backend,
        "database_url": redact(&args.database_url),
        "tenant_id": prepared.tenant_id,
        "instance_id": prepared.agent.instance_id,
        "instance_workflows": prepared.instance_workflows,
        "list_totals": totals,
        "deep_list": deep_list,
        "decisions": prepared.decisions,
        "phases": phases,
        "history": history,
        "server_peak_rss_kib": peak,
    });
    args.output.finish(&value)
}

struct ScalePrepared {
    tenant_id: Uuid,
    agent: Agent,
    instance_workflows: Option<i64>,
    sample: Arc<Vec<Uuid>>,
    /// References of the instance's workflows, for the reference filter.
    references: Arc<Vec<String>>,
    /// Where the history cases write: see `scale_prepare`.
    history_agent: Agent,
    long_history: Vec<Uuid>,
    /// Suspended decisions the tenant holds.
    decisions: i64,
}

async fn scale_prepare(args: &ScaleArgs, store: &dyn Store) -> anyhow::Result<ScalePrepared> {
    let mut db = seed::Db::connect(&args.database_url).await?;
    let prepared = async {
        let (instance_id, tenant_id, count) = match args.instance {
            Some(id) => {
                let instance = store
                    .get_instance(id)
                    .await?
                    .with_context(|| format!("no instance {id}"))?;
                (instance.id, instance.tenant_id, None)
            }
            None => {
                eprintln!("finding the instance with the most workflows ...");
                let (i, t, n) = seed::largest_instance(&mut db)
                    .await?
                    .context("no workflows in this database: run `seed` first")?;
                (i, t, Some(n))
            }
        };
        eprintln!(
            "instance {instance_id} of tenant {tenant_id}{}",
            count
                .map(|n| format!(", {n} workflows"))
                .unwrap_or_default()
        );
        let key = match &args.proxy_key {
            Some(key) => key.clone(),
            None => {
                hydracore::provision::create_proxy_key(store, instance_id)
                    .await?
                    .key
            }
        };
        eprintln!("sampling {} ids ...", args.sample);
        let sample = seed::sample_ids(&mut db, instance_id, args.sample).await?;
        let references =
            seed::sample_references(&mut db, tenant_id, instance_id, args.sample).await?;
        let decisions = if args.decisions > 0 {
            eprintln!("making {} suspended decisions ...", args.decisions);
            seed::decisions(&mut db, tenant_id, args.decisions).await?
        } else {
            0
        };
        // The history cases write (workflows of thousands of entries, then
        // tens of thousands of advances) in a tenant of their own: in the
        // measured instance they would top its lists, and every later run's
        // list pages would carry their histories.
        let history_tenant = Uuid::new_v4();
        let history_instance = hydracore::provision::create_instance(
            store,
            history_tenant,
            Some("hydracore-bench history".into()),
        )
        .await?;
        let history_agent = Agent {
            instance_id: history_instance.id,
            key: hydracore::provision::create_proxy_key(store, history_instance.id)
                .await?
                .key,
        };
        eprintln!(
            "writing {} workflow(s) with {} history entries ...",
            args.history_connections, args.history
        );
        let started = Instant::now();
        let mut long_history = Vec::new();
        for _ in 0..args.history_connections {
            long_history.push(
                seed::long_history_workflow(
                    &mut db,
                    history_tenant,
                    history_instance.id,
                    args.history,
                )
                .await?,
            );
        }
        eprintln!("  took {:.1} s", started.elapsed().as_secs_f64());
        anyhow::Ok(ScalePrepared {
            tenant_id,
            agent: Agent { instance_id, key },
            instance_workflows: count,
            sample: Arc::new(sample),
            references: Arc::new(references),
            history_agent,
            long_history,
            decisions,
        })
    }
    .await;
    db.close().await?;
    prepared
}

/// What `scale_phases` returns.
struct ScaleMeasured {
    phases: Vec<Phase>,
    /// The status-filtered lists' totals.
    totals: Value,
    /// The list of the deep-page and cursor cases, and its rows.
    deep_list: Value,
}

async fn scale_phases(
    args: &ScaleArgs,
    prepared: &ScalePrepared,
    base_url: &str,
    admin_jwt: Option<String>,
    rss: &impl Fn() -> Option<u64>,
) -> anyhow::Result<ScaleMeasured> {
    let setup_for = |agent: &Agent, i: usize, action: Action, fixed: Option<Uuid>| WorkerSetup {
        base_url: base_url.to_owned(),
        agent: agent.clone(),
        admin_jwt: admin_jwt.clone(),
        mix: vec![(1, action)],
        pool_size: 0,
        sample: Arc::clone(&prepared.sample),
        references: Arc::clone(&prepared.references),
        fixed,
        seed: i as u64 + 1,
    };
    let setup = |i, action, fixed| setup_for(&prepared.agent, i, action, fixed);
    let history = |i, action, fixed| setup_for(&prepared.history_agent, i, action, fixed);
    let totals = list_totals(base_url, prepared, admin_jwt.as_deref()).await?;
    args.output
        .say(&format!("list totals (status=active): {totals}"));
    let n = args.load.connections;
    let mut cases: Vec<(String, Vec<WorkerSetup>)> = vec![
        (
            "get_seeded".into(),
            (0..n).map(|i| setup(i, Action::GetSample, None)).collect(),
        ),
        (
            "list_instance".into(),
            (0..n).map(|i| setup(i, Action::List, None)).collect(),
        ),
    ];
    if admin_jwt.is_some() {
        cases.push((
            "list_tenant".into(),
            (0..n).map(|i| setup(i, Action::ListTenant, None)).collect(),
        ));
    }
    if prepared.references.is_empty() {
        args.output
            .say("list_reference: skipped (the instance's workflows have no reference)");
    } else {
        cases.push((
            "list_reference".into(),
            (0..n)
                .map(|i| setup(i, Action::ListReference, None))
                .collect(),
        ));
    }
    let deep = deep_list(base_url, prepared, admin_jwt.as_deref()).await?;
    let deep_list = match deep {
        Some((of, rows)) => {
            let (name, path) = match of {
                ListOf::Instance => ("instance", "/internal/v1/instances/{id}/workflows"),
                ListOf::Tenant => ("tenant", "/v1/workflows"),
            };
            args.output.say(&format!(
                "list_deep_page ({DEEP_PAGE_QUERY}) and list_cursor_walk (per_page=100): \
                 the {name} list, {path}, {rows} workflows"
            ));
            cases.push((
                "list_deep_page".into(),
                (0..n)
                    .map(|i| setup(i, Action::ListDeepPage(of), None))
                    .collect(),
            ));
            cases.push((
                "list_cursor_walk".into(),
                (0..n)
                    .map(|i| setup(i, Action::ListCursorWalk(of), None))
                    .collect(),
            ));
            json!({"list": name, "path": path, "workflows": rows})
        }
        None => {
            args.output.say(&format!(
                "list_deep_page and list_cursor_walk: skipped (the instance holds fewer than \
                 {PAGE_DEPTH_MAX} workflows, and the tenant's list needs an admin JWT)"
            ));
            Value::Null
        }
    };
    if admin_jwt.is_some() && prepared.decisions > 0 {
        args.output.say(&format!(
            "inbox, decisions_summary and ui_inbox: the tenant's {} suspended decisions",
            prepared.decisions
        ));
        cases.push((
            "inbox".into(),
            (0..n).map(|i| setup(i, Action::Inbox, None)).collect(),
        ));
        cases.push((
            "decisions_summary".into(),
            (0..n)
                .map(|i| setup(i, Action::DecisionSummary, None))
                .collect(),
        ));
        cases.push((
            "ui_inbox".into(),
            (0..n).map(|i| setup(i, Action::UiInbox, None)).collect(),
        ));
    } else {
        args.output.say(
            "inbox, decisions_summary and ui_inbox: skipped (they need an admin JWT and --decisions > 0)",
        );
    }
    cases.push((
        "advance_history_1".into(),
        (0..args.history_connections)
            .map(|i| history(i, Action::AdvanceMinimal, None))
            .collect(),
    ));
    cases.push((
        format!("advance_history_{}", args.history),
        prepared
            .long_history
            .iter()
            .enumerate()
            .map(|(i, id)| history(i, Action::AdvanceMinimal, Some(*id)))
            .collect(),
    ));
    if let Some(unknown) = args
        .cases
        .iter()
        .find(|wanted| !cases.iter().any(|(name, _)| name == *wanted))
    {
        let names: Vec<&str> = cases.iter().map(|(name, _)| name.as_str()).collect();
        bail!(
            "no case {unknown} in this run; there are {}",
            names.join(", ")
        );
    }
    let mut phases = Vec::new();
    for (name, setups) in cases {
        if !args.cases.is_empty() && !args.cases.contains(&name) {
            continue;
        }
        let phase = measure(&name, setups, &args.load, None, rss).await?;
        args.output.say(&phase.text());
        phases.push(phase);
    }
    Ok(ScaleMeasured {
        phases,
        totals,
        deep_list,
    })
}

/// The list whose deepest `page` the deep-page and cursor cases read, and
/// how many workflows it holds: the instance's when it reaches that deep
/// (a tenant seeded as one instance), else the tenant's; `None` when the
/// tenant's is needed and there is no admin JWT to read it with.
async fn deep_list(
    base_url: &str,
    prepared: &ScalePrepared,
    admin_jwt: Option<&str>,
) -> anyhow::Result<Option<(ListOf, i64)>> {
    let client = reqwest::Client::new();
    let instance = list_total(
        &client,
        &format!(
            "{base_url}/internal/v1/instances/{}/workflows?per_page=1",
            prepared.agent.instance_id
        ),
        &prepared.agent.key,
    )
    .await?
    .as_i64()
    .context("an instance list without a total")?;
    if instance >= PAGE_DEPTH_MAX {
        return Ok(Some((ListOf::Instance, instance)));
    }
    let Some(jwt) = admin_jwt else {
        return Ok(None);
    };
    let tenant = list_total(&client, &format!("{base_url}/v1/workflows?per_page=1"), jwt)
        .await?
        .as_i64()
        .context("a tenant list without a total")?;
    Ok(Some((ListOf::Tenant, tenant)))
}

/// The `total` of the list at `url` (`null` when the answer has none).
async fn list_total(client: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Value> {
    let answer: Value = client
        .get(url)
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(answer.get("total").cloned().unwrap_or(Value::Null))
}

/// The `total` of the status-filtered lists, as the server counts it.
async fn list_totals(
    base_url: &str,
    prepared: &ScalePrepared,
    admin_jwt: Option<&str>,
) -> anyhow::Result<Value> {
    let client = reqwest::Client::new();
    let instance = list_total(
        &client,
        &format!(
            "{base_url}/internal/v1/instances/{}/workflows?status=active&per_page=20",
            prepared.agent.instance_id
        ),
        &prepared.agent.key,
    )
    .await?;
    let tenant = match admin_jwt {
        Some(jwt) => {
            list_total(
                &client,
                &format!("{base_url}/v1/workflows?status=active&per_page=20"),
                jwt,
            )
            .await?
        }
        None => Value::Null,
    };
    Ok(json!({"instance": instance, "tenant": tenant}))
}

async fn pgbench_command(args: PgbenchArgs) -> anyhow::Result<()> {
    let machine = Machine::detect();
    args.output.say(&machine.line("postgres"));
    let config = args.pgbench.config(&args.postgres_server, args.duration);
    let result = pgbench::run(&config).await?;
    args.output
        .say(&format!("{}\ntps = {:.1}", result.command, result.tps));
    args.output.finish(&json!({
        "command": "pgbench",
        "machine": machine,
        "pgbench": result,
    }))
}

async fn events_command(args: EventsArgs) -> anyhow::Result<()> {
    if args.two_replicas && args.backend != Backend::Postgres {
        bail!("--two-replicas needs the postgres backend: SQLite is one server's file");
    }
    server::hydracore_binary()?;
    let database = BenchDatabase::prepare(args.backend, None, &args.postgres_server, false).await?;
    let outcome = events_on(&args, &database).await;
    let cleaned = database.cleanup().await;
    outcome?;
    cleaned
}

async fn events_on(args: &EventsArgs, database: &BenchDatabase) -> anyhow::Result<()> {
    let machine = Machine::detect();
    args.output.say(&machine.line(database.backend.name()));
    let store = hydracore_storage::connect(&database.url, &StoreOptions::default())
        .await
        .context("connecting to (and migrating) the benchmark database")?;
    let tenant_id = Uuid::new_v4();
    let agents = provision(store.as_ref(), tenant_id, 1).await;
    store.close().await;
    let agent = agents?.pop().context("provisioning made no instance")?;
    let secret = jwt_secret();
    let (admin_jwt, _) = hydracore::auth::jwt::mint_hs256(
        &secret,
        tenant_id,
        "admin",
        "hydracore-bench",
        Duration::from_secs(3600),
    )?;
    let config = ServerConfig {
        database_url: database.url.clone(),
        jwt_secret: secret,
        max_connections: None,
    };
    let writer = Server::spawn(&config).await?;
    let reader = if args.two_replicas {
        Some(Server::spawn(&config).await?)
    } else {
        None
    };
    let reading = reader.as_ref().unwrap_or(&writer);
    args.output.say(&format!(
        "writes to {}, streams from {}{}; {} changes/s for {:?} per stream count",
        writer.base_url,
        reading.base_url,
        if args.two_replicas {
            " (another replica)"
        } else {
            " (the same server)"
        },
        args.rate,
        args.duration
    ));
    let mut runs = Vec::new();
    let mut failed = None;
    for streams in &args.streams {
        let plan = events::Plan {
            writer: writer.base_url.clone(),
            reader: reading.base_url.clone(),
            agent: agent.clone(),
            admin_jwt: admin_jwt.clone(),
            streams: *streams,
            workflows: args.workflows,
            rate: args.rate,
            duration: args.duration,
            reader_pid: Some(reading.pid),
        };
        match events::measure(&plan).await {
            Ok(measured) => {
                args.output.say(&measured.text());
                runs.push(measured);
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    if failed.is_some() {
        eprintln!("writer log tail:\n{}", writer.tail());
    }
    if let Some(reader) = reader {
        reader.stop().await;
    }
    writer.stop().await;
    if let Some(e) = failed {
        return Err(e);
    }
    args.output.finish(&json!({
        "command": "events",
        "machine": machine,
        "backend": database.backend.name(),
        "two_replicas": args.two_replicas,
        "rate": args.rate,
        "duration_s": args.duration.as_secs_f64(),
        "runs": runs,
    }))
}
