//! The `hydracore` command line: `serve` (the default) and the
//! administrative commands, which work directly on the configured database,
//! also while a server runs on it.

mod admin;
pub mod config_file;
mod output;

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

use anyhow::Context;

use crate::auth::jwt::JwtSettings;
use crate::config::{Settings, DEFAULT_DATABASE_URL, DEFAULT_LISTEN};
use crate::telemetry::{self, LogFormat};
use hydracore_storage::StoreOptions;
pub use output::Output;

#[derive(Debug, Parser)]
#[command(
    name = "hydracore",
    version,
    about = "Durable workflow records for AI agents",
    long_about = "Durable workflow records for AI agents.\n\nWith no command, runs `serve`."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The database: `sqlite:PATH` (created if missing) or `postgres://...`
    #[arg(long, env = "HYDRACORE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true, hide_env_values = true)]
    pub database_url: String,

    /// PEM file of the CA(s) that sign the PostgreSQL server's certificate,
    /// for `sslmode=verify-ca`/`verify-full` (default: `sslrootcert` from
    /// the URL, else the system's roots)
    #[arg(long, env = "HYDRACORE_DATABASE_CA_FILE", global = true)]
    pub database_ca_file: Option<std::path::PathBuf>,

    /// Print exactly one JSON object on stdout, for scripts
    #[arg(long, global = true)]
    pub json: bool,

    /// HS256 secret for dashboard JWTs (at least 32 bytes). From the
    /// environment or the config file only: `main` refuses the flag, which
    /// would show the secret to anyone who can list processes.
    #[arg(
        long,
        env = "HYDRACORE_JWT_SECRET",
        global = true,
        hide = true,
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,

    /// File holding the HS256 secret for dashboard JWTs (instead of HYDRACORE_JWT_SECRET)
    #[arg(long, env = "HYDRACORE_JWT_SECRET_FILE", global = true)]
    pub jwt_secret_file: Option<std::path::PathBuf>,

    /// TOML file of settings (keys: the HYDRACORE_* names in lower case, without the prefix)
    #[arg(long, env = "HYDRACORE_CONFIG", global = true)]
    pub config: Option<std::path::PathBuf>,

    /// Log line format (logs go to stderr; filter with RUST_LOG)
    #[arg(
        long,
        env = "HYDRACORE_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
}

impl GlobalArgs {
    /// The HS256 secret: `HYDRACORE_JWT_SECRET`, or the contents of
    /// `--jwt-secret-file` (without a trailing newline).
    pub fn jwt_secret(&self) -> anyhow::Result<Option<String>> {
        match (&self.jwt_secret, &self.jwt_secret_file) {
            (Some(_), Some(_)) => {
                anyhow::bail!("set only one of HYDRACORE_JWT_SECRET and HYDRACORE_JWT_SECRET_FILE")
            }
            (Some(secret), None) => Ok(Some(secret.clone())),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("reading HYDRACORE_JWT_SECRET_FILE {}", path.display())
                })?;
                Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()))
            }
            (None, None) => Ok(None),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default command)
    Serve(Box<ServeArgs>),
    /// Create or upgrade the database schema, then exit
    Migrate,
    /// Register and list agent instances
    #[command(subcommand)]
    Instances(InstancesCommand),
    /// Issue, list and revoke proxy keys and tenant API keys
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Mint a dashboard JWT with the configured secret (for development)
    Token(TokenArgs),
    /// Print a one-time link that signs in to the web page as a tenant admin (valid 10 minutes)
    UiLink(UiLinkArgs),
    /// Serve MCP on stdin/stdout for a local agent host, relaying to a
    /// running server with the proxy key in HYDRACORE_PROXY_KEY
    Mcp(McpArgs),
}

#[derive(Debug, Args)]
pub struct UiLinkArgs {
    /// The tenant to sign in to
    #[arg(long)]
    pub tenant: Uuid,
    /// The name history records behind what the session does
    #[arg(long, default_value = "admin")]
    pub sub: String,
    /// Where users reach the server
    #[arg(
        long,
        env = "HYDRACORE_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub public_url: String,
}

#[derive(Debug, Args)]
pub struct McpArgs {
    /// The running server's URL, e.g. http://127.0.0.1:8080
    #[arg(long, env = "HYDRACORE_SERVER")]
    pub server: String,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, env = "HYDRACORE_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: String,

    /// Also seed a demo tenant and instance and print working credentials
    #[arg(long)]
    pub demo: bool,

    /// Database connections for requests (PostgreSQL: the pool, plus as many again, at least 2, that carry the one-call reads; SQLite: reader threads, at most one per CPU)
    #[arg(long, env = "HYDRACORE_DB_MAX_CONNECTIONS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_connections: u32,

    /// SQLite: `full` (an answered write survives a power loss) or `normal` (it survives a process crash; faster)
    #[arg(long, env = "HYDRACORE_SQLITE_SYNC", default_value = "full", value_parser = parse_sqlite_sync)]
    pub sqlite_sync: hydracore_storage::SqliteSync,

    /// A record embeds at most this many of its newest history entries (the history routes page through all)
    #[arg(long, env = "HYDRACORE_HISTORY_INLINE", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub history_inline: u32,

    /// ... and only those that start within this many bytes of the newest, so that a record stays small whatever its entries hold (at least 131072: twice the largest entry)
    #[arg(long, env = "HYDRACORE_HISTORY_INLINE_BYTES", default_value_t = 262_144, value_parser = clap::value_parser!(u32).range(131_072..=67_108_864))]
    pub history_inline_bytes: u32,

    /// A page of the history routes holds only the entries that start within this many bytes of its first
    #[arg(long, env = "HYDRACORE_HISTORY_PAGE_BYTES", default_value_t = 1_048_576, value_parser = clap::value_parser!(u32).range(131_072..=67_108_864))]
    pub history_page_bytes: u32,

    /// PostgreSQL: the longest a statement may run, or a transaction sit idle, before the server ends it (`off`: not set, for a pooler that refuses startup options)
    #[arg(long, env = "HYDRACORE_DB_STATEMENT_TIMEOUT", default_value = "10s", value_parser = parse_optional_duration)]
    pub statement_timeout: OptionalDuration,

    /// PostgreSQL: where replicas LISTEN for each other's changes, when the database URL goes through a transaction pooler (`pooler=transaction`), which cannot carry a LISTEN: the server itself. Unset there, replicas find each other's changes by polling
    #[arg(long, env = "HYDRACORE_DB_LISTEN_URL", hide_env_values = true)]
    pub db_listen_url: Option<String>,

    /// How long a request waits for a database connection before a 503
    #[arg(long, env = "HYDRACORE_DB_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub acquire_timeout: Duration,

    /// How long in-flight requests may take to finish after SIGTERM/SIGINT
    #[arg(long, env = "HYDRACORE_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// How often overdue workflows are expired: seconds (`10`) or a duration (`500ms`)
    #[arg(long, env = "HYDRACORE_SWEEP_INTERVAL", default_value = "10", value_parser = parse_interval)]
    pub sweep_interval: Duration,

    /// PEM public key verifying dashboard JWTs (instead of the HS256 secret)
    #[arg(long, env = "HYDRACORE_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<std::path::PathBuf>,

    /// JWT algorithm: HS256 (with the secret), RS256, ES256 or EdDSA (with the key file)
    #[arg(long, env = "HYDRACORE_JWT_ALGORITHM")]
    pub jwt_algorithm: Option<String>,

    /// Required `iss` of dashboard JWTs
    #[arg(long, env = "HYDRACORE_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Required `aud` of dashboard JWTs
    #[arg(long, env = "HYDRACORE_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Refuse dashboard JWTs issued (`iat`) longer ago than this, e.g. `1h`
    /// (default: no limit beyond `exp`)
    #[arg(long, env = "HYDRACORE_JWT_MAX_AGE", value_parser = humantime::parse_duration)]
    pub jwt_max_age: Option<Duration>,

    /// Serve /metrics on a listener of its own, e.g. 127.0.0.1:9090 (default: not served)
    #[arg(long, env = "HYDRACORE_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,

    /// A request still running after this is answered 503 with Retry-After (`off`: none)
    #[arg(long, env = "HYDRACORE_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_optional_duration)]
    pub request_timeout: OptionalDuration,

    /// Requests in flight at most; beyond, 503 at once instead of a queue
    #[arg(long, env = "HYDRACORE_MAX_IN_FLIGHT", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_in_flight: u32,

    /// Requests per credential: `500/s`, `6000/min`, with the burst after a colon (`500/s:1000`), or `off`
    #[arg(long, env = "HYDRACORE_RATE_LIMIT", default_value = crate::http::limits::DEFAULT_RATE, value_parser = parse_rate)]
    pub rate_limit: RateSetting,

    /// Tenants with a rate of their own: `TENANT_ID=RATE,...` (RATE as for the rate limit)
    #[arg(long, env = "HYDRACORE_TENANT_RATE_LIMITS", default_value = "", value_parser = parse_tenant_rates)]
    pub tenant_rate_limits: TenantRates,

    /// Failed authentications per client address before it gets 429 (`10/s:50`, or `off`)
    #[arg(long, env = "HYDRACORE_FAILED_AUTH_LIMIT", default_value = crate::http::limits::DEFAULT_FAILED_AUTH_RATE, value_parser = parse_rate)]
    pub failed_auth_limit: RateSetting,

    /// How long a key that matched no credential is refused from memory, without a database lookup
    #[arg(long, env = "HYDRACORE_UNKNOWN_KEY_TTL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub unknown_key_ttl: Duration,

    /// Count failed authentications against the last `X-Forwarded-For` address (set only behind a proxy that appends it; otherwise clients could pick their address)
    #[arg(long, env = "HYDRACORE_TRUST_FORWARDED_FOR", default_value_t = false, action = clap::ArgAction::Set)]
    pub trust_forwarded_for: bool,

    /// The most suspensions `GET /v1/workflows/suspended` answers, newest first
    #[arg(long, env = "HYDRACORE_SUSPENDED_LIST_MAX", default_value_t = crate::http::limits::DEFAULT_SUSPENDED_MAX, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub suspended_list_max: u32,

    /// The longest a read with `If-None-Match` and `Prefer: wait=N` waits for a change (never past the request timeout)
    #[arg(long, env = "HYDRACORE_MAX_WAIT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub max_wait: Duration,

    /// Reads waiting with `Prefer: wait` at once, at most; more answer at once
    #[arg(long, env = "HYDRACORE_MAX_WAITING", default_value_t = crate::http::limits::DEFAULT_MAX_WAITING, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub max_waiting: u32,

    /// Event streams (`Accept: text/event-stream`) open at once, at most; more are answered 503
    #[arg(long, env = "HYDRACORE_MAX_STREAMS", default_value_t = crate::http::limits::DEFAULT_MAX_STREAMS, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub max_streams: u32,

    /// How long events are kept for `GET /v1/events` (a resume point older than this answers 410)
    #[arg(long, env = "HYDRACORE_EVENT_RETENTION", default_value = "7days", value_parser = humantime::parse_duration)]
    pub event_retention: Duration,

    /// Allow webhook URLs with plain `http` or a loopback, private, link-local or metadata address (local development and tests only)
    #[arg(long, env = "HYDRACORE_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,

    /// How long a webhook receiver has to answer an attempt
    #[arg(long, env = "HYDRACORE_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_interval)]
    pub webhook_timeout: Duration,

    /// How long a failing webhook delivery is retried before it is given up
    #[arg(long, env = "HYDRACORE_WEBHOOK_RETRY_FOR", default_value = "24h", value_parser = humantime::parse_duration)]
    pub webhook_retry_for: Duration,

    /// How long a webhook endpoint may fail every delivery before it is disabled
    #[arg(long, env = "HYDRACORE_WEBHOOK_DISABLE_AFTER", default_value = "24h", value_parser = humantime::parse_duration)]
    pub webhook_disable_after: Duration,

    /// The delay before a webhook's first retry, doubled at each further one (with jitter)
    #[arg(long, env = "HYDRACORE_WEBHOOK_BACKOFF_BASE", default_value = "5s", value_parser = parse_interval)]
    pub webhook_backoff_base: Duration,

    /// The longest delay between two webhook retries
    #[arg(long, env = "HYDRACORE_WEBHOOK_BACKOFF_MAX", default_value = "1h", value_parser = parse_interval)]
    pub webhook_backoff_max: Duration,

    /// How often each replica looks for new events and due webhook deliveries
    #[arg(long, env = "HYDRACORE_WEBHOOK_POLL_INTERVAL", default_value = "1s", value_parser = parse_interval)]
    pub webhook_poll_interval: Duration,

    /// Where users reach the server (`https://...` behind a proxy): the base of the links it hands out; `https` marks the web page's cookies `Secure` (default: the request's Host, over http)
    #[arg(long, env = "HYDRACORE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// How long a web page session lasts after sign-in
    #[arg(long, env = "HYDRACORE_UI_SESSION_TTL", default_value = "12h", value_parser = humantime::parse_duration)]
    pub ui_session_ttl: Duration,

    /// The longest life an approval link may be given
    #[arg(long, env = "HYDRACORE_APPROVAL_LINK_MAX_TTL", default_value = "7days", value_parser = humantime::parse_duration)]
    pub approval_link_max_ttl: Duration,

    /// Webhook endpoints per tenant, at most
    #[arg(long, env = "HYDRACORE_WEBHOOK_MAX_ENDPOINTS", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub webhook_max_endpoints: u32,

    /// The longest webhook URL, in bytes
    #[arg(long, env = "HYDRACORE_WEBHOOK_MAX_URL_BYTES", default_value_t = 2048, value_parser = clap::value_parser!(u32).range(64..=65_536))]
    pub webhook_max_url_bytes: u32,

    /// The longest webhook description, in characters
    #[arg(long, env = "HYDRACORE_WEBHOOK_MAX_DESCRIPTION", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub webhook_max_description: u32,

    /// Also serve /metrics on the API listener, to `Authorization: Bearer <token>` only
    /// (from the environment or the config file only, as the JWT secret)
    #[arg(
        long,
        env = "HYDRACORE_METRICS_TOKEN",
        hide = true,
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum InstancesCommand {
    /// Register an agent instance of a tenant
    Create {
        /// The tenant (UUID)
        #[arg(long)]
        tenant: Uuid,
        /// A name for people
        #[arg(long)]
        name: Option<String>,
    },
    /// List every registered instance
    List,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Issue a proxy key for an instance (the agent runtime's credential)
    CreateProxy {
        /// The instance (UUID)
        #[arg(long)]
        instance: Uuid,
    },
    /// Issue a tenant API key for the dashboard API
    CreateApi {
        /// The tenant (UUID)
        #[arg(long)]
        tenant: Uuid,
        /// Comma-separated scopes: workflows:read, workflows:write, webhooks:read, webhooks:write
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "workflows:read,workflows:write"
        )]
        scopes: Vec<String>,
    },
    /// List keys (never the secrets)
    List,
    /// Revoke a key by its id; it stops working at once
    Revoke {
        /// The key's id (UUID), as `keys list` shows
        id: Uuid,
    },
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The tenant (UUID)
    #[arg(long)]
    pub tenant: Uuid,
    /// The role claim; the dashboard API accepts `admin`
    #[arg(long, default_value = "admin")]
    pub role: String,
    /// The subject, named as actor in history
    #[arg(long, default_value = "dev-admin")]
    pub sub: String,
    /// Lifetime, e.g. `30m`, `1h`, `7d`
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
}

/// A parsed `HYDRACORE_RATE_LIMIT`-style value (`None`: off). A newtype,
/// since clap takes an `Option` field for an optional flag.
#[derive(Debug, Clone)]
pub struct RateSetting(pub Option<crate::http::limits::Rate>);

#[derive(Debug, Clone)]
pub struct TenantRates(pub std::collections::HashMap<Uuid, Option<crate::http::limits::Rate>>);

/// A duration, or `off`.
#[derive(Debug, Clone, Copy)]
pub struct OptionalDuration(pub Option<Duration>);

fn parse_optional_duration(s: &str) -> Result<OptionalDuration, String> {
    if s.trim().eq_ignore_ascii_case("off") {
        return Ok(OptionalDuration(None));
    }
    humantime::parse_duration(s)
        .map(|d| OptionalDuration(Some(d)))
        .map_err(|e| e.to_string())
}

fn parse_sqlite_sync(s: &str) -> Result<hydracore_storage::SqliteSync, String> {
    hydracore_storage::SqliteSync::parse(s).ok_or_else(|| format!("{s:?}: expected full or normal"))
}

fn parse_rate(s: &str) -> Result<RateSetting, String> {
    crate::http::limits::parse_rate(s).map(RateSetting)
}

fn parse_tenant_rates(s: &str) -> Result<TenantRates, String> {
    crate::http::limits::parse_tenant_rates(s).map(TenantRates)
}

/// A positive interval: plain seconds, as `HYDRACORE_SWEEP_INTERVAL`
/// documents, or a duration such as `500ms`.
fn parse_interval(s: &str) -> Result<Duration, String> {
    let interval = match s.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => Duration::from_secs_f64(secs),
        Ok(_) => return Err("must be a positive number of seconds".into()),
        Err(_) => humantime::parse_duration(s).map_err(|e| e.to_string())?,
    };
    if interval.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(interval)
}

/// Parses the process's arguments, treating no command as `serve`.
fn parse(mut args: Vec<OsString>) -> Cli {
    let cli = Cli::parse_from(&args);
    if cli.command.is_some() {
        return cli;
    }
    args.push("serve".into());
    Cli::parse_from(args)
}

/// A flag that would carry a secret on the command line, if given.
fn secret_flag(args: &[OsString]) -> Option<&'static str> {
    ["--jwt-secret", "--metrics-token"]
        .into_iter()
        .find(|flag| {
            args.iter().any(|a| {
                let a = a.to_string_lossy();
                a == *flag || a.starts_with(&format!("{flag}="))
            })
        })
}

pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if let Some(flag) = secret_flag(&args) {
        eprintln!(
            "error: {flag} would show the secret to anyone who can list processes; \
             set it in the environment or the config file instead{}",
            if flag == "--jwt-secret" {
                " (or pass --jwt-secret-file FILE)"
            } else {
                ""
            }
        );
        return ExitCode::FAILURE;
    }
    if let Err(e) = config_file::apply(&args) {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    let cli = parse(args);
    let output = Output::new(cli.global.json);
    let is_serve = matches!(cli.command, Some(Command::Serve(_)));
    telemetry::init(
        cli.global.log_format,
        if is_serve { "info" } else { "warn" },
    );
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return output.fail(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(run(cli, &output)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => output.fail(&e),
    }
}

async fn run(cli: Cli, output: &Output) -> anyhow::Result<()> {
    let global = cli.global;
    match cli
        .command
        .unwrap_or_else(|| unreachable!("parse() always sets a command"))
    {
        Command::Serve(args) => serve(global, *args, output).await,
        Command::Migrate => admin::migrate(&global, output).await,
        Command::Instances(command) => admin::instances(&global, command, output).await,
        Command::Keys(command) => admin::keys(&global, command, output).await,
        Command::Token(args) => admin::token(&global, &args, output),
        Command::UiLink(args) => admin::ui_link(&global, &args, output).await,
        Command::Mcp(args) => {
            // From the environment only: a flag would show the key to
            // anyone who can list processes.
            let key = std::env::var("HYDRACORE_PROXY_KEY")
                .context("set HYDRACORE_PROXY_KEY to the instance's proxy key (hcp_...)")?;
            crate::mcp::stdio::run(&args.server, &key).await
        }
    }
}

async fn serve(global: GlobalArgs, args: ServeArgs, output: &Output) -> anyhow::Result<()> {
    let mut jwt = JwtSettings {
        secret: global.jwt_secret()?,
        public_key_file: args.jwt_public_key_file,
        algorithm: args.jwt_algorithm,
        issuer: args.jwt_issuer,
        audience: args.jwt_audience,
        max_age: args.jwt_max_age,
    };
    // The demo's admin JWT needs a secret the server verifies with; with
    // none configured, one lives in memory for this run only.
    let demo_secret = match (&jwt.secret, &jwt.public_key_file) {
        (Some(secret), _) => Some(secret.clone()),
        (None, None) if args.demo => {
            tracing::warn!("HYDRACORE_JWT_SECRET is not set: the demo JWT is signed with a secret of this run only");
            let secret = crate::auth::keys::random_secret();
            jwt.secret = Some(secret.clone());
            Some(secret)
        }
        (None, _) => None,
    };
    let settings = Settings {
        database_url: global.database_url,
        listen: args.listen,
        store: StoreOptions {
            max_connections: args.max_connections,
            acquire_timeout: args.acquire_timeout,
            ca_file: global.database_ca_file,
            sqlite_sync: args.sqlite_sync,
            statement_timeout: args.statement_timeout.0,
            listen_url: args.db_listen_url,
            history_inline: args.history_inline,
            history_inline_bytes: args.history_inline_bytes,
            history_page_bytes: args.history_page_bytes,
            ..StoreOptions::default()
        },
        jwt,
        shutdown_timeout: args.shutdown_timeout,
        sweep_interval: args.sweep_interval,
        event_retention: args.event_retention,
        metrics: crate::config::MetricsSettings {
            listen: args.metrics_listen,
            token: args.metrics_token,
        },
        load: crate::config::LoadSettings {
            request_timeout: args.request_timeout.0,
            max_in_flight: usize::try_from(args.max_in_flight).unwrap_or(usize::MAX),
        },
        limits: crate::config::LimitSettings {
            per_credential: args.rate_limit.0,
            tenants: args.tenant_rate_limits.0,
            failed_auth: args.failed_auth_limit.0,
            unknown_key_ttl: args.unknown_key_ttl,
            trust_forwarded_for: args.trust_forwarded_for,
            suspended_max: args.suspended_list_max,
            max_wait: args.max_wait,
            max_waiting: args.max_waiting,
            max_streams: args.max_streams,
        },
        webhooks: crate::config::WebhookSettings {
            allow_private: args.webhook_allow_private,
            timeout: args.webhook_timeout,
            retry_for: args.webhook_retry_for,
            disable_after: args.webhook_disable_after,
            backoff_base: args.webhook_backoff_base,
            backoff_max: args.webhook_backoff_max,
            poll_interval: args.webhook_poll_interval,
            max_endpoints: args.webhook_max_endpoints,
            max_url_bytes: usize::try_from(args.webhook_max_url_bytes).unwrap_or(usize::MAX),
            max_description_chars: usize::try_from(args.webhook_max_description)
                .unwrap_or(usize::MAX),
            retention: args.event_retention,
        },
        ui: crate::ui::UiSettings {
            session_ttl: args.ui_session_ttl,
            approval_link_max_ttl: args.approval_link_max_ttl,
            public_url: args.public_url.clone(),
        },
    };
    let app = crate::startup::App::build(&settings).await?;
    let base_url = format!("http://{}", app.local_addr()?);
    let public_url = args
        .public_url
        .as_deref()
        .map_or_else(|| base_url.clone(), |u| u.trim_end_matches('/').to_owned());
    if args.demo {
        let secret = demo_secret.context(
            "serve --demo mints an HS256 admin JWT; it cannot with only a public key configured",
        )?;
        let demo = crate::demo::seed(app.store(), &secret, &public_url).await?;
        output.emit(demo.to_json(&base_url), || demo.to_text(&base_url));
    }
    tracing::info!(address = %base_url, "listening");
    app.run(crate::startup::shutdown_signal()).await?;
    Ok(())
}
