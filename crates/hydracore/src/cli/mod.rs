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

    /// Print exactly one JSON object on stdout, for scripts
    #[arg(long, global = true)]
    pub json: bool,

    /// HS256 secret for dashboard JWTs (at least 32 bytes)
    #[arg(
        long,
        env = "HYDRACORE_JWT_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,

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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default command)
    Serve(ServeArgs),
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
        /// Comma-separated scopes
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

pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
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
        Command::Serve(args) => serve(global, args, output).await,
        Command::Migrate => admin::migrate(&global, output).await,
        Command::Instances(command) => admin::instances(&global, command, output).await,
        Command::Keys(command) => admin::keys(&global, command, output).await,
        Command::Token(args) => admin::token(&global, &args, output),
    }
}

async fn serve(global: GlobalArgs, args: ServeArgs, output: &Output) -> anyhow::Result<()> {
    let mut jwt = JwtSettings {
        secret: global.jwt_secret,
        public_key_file: args.jwt_public_key_file,
        algorithm: args.jwt_algorithm,
        issuer: args.jwt_issuer,
        audience: args.jwt_audience,
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
            ..StoreOptions::default()
        },
        jwt,
        shutdown_timeout: args.shutdown_timeout,
        sweep_interval: args.sweep_interval,
    };
    let app = crate::startup::App::build(&settings).await?;
    let base_url = format!("http://{}", app.local_addr()?);
    if args.demo {
        let secret = demo_secret.context(
            "serve --demo mints an HS256 admin JWT; it cannot with only a public key configured",
        )?;
        let demo = crate::demo::seed(app.store().as_ref(), &secret).await?;
        output.emit(demo.to_json(&base_url), || demo.to_text(&base_url));
    }
    tracing::info!(address = %base_url, "listening");
    app.run(crate::startup::shutdown_signal()).await?;
    Ok(())
}
