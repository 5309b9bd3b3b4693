//! Server settings, gathered by the command line from flags,
//! `HYDRACORE_*` variables and an optional TOML file (see
//! [`crate::cli::config_file`]). Nothing here writes files.

use std::time::Duration;

use hydracore_storage::StoreOptions;

use crate::auth::jwt::JwtSettings;
pub use crate::http::limits::LimitSettings;
pub use crate::http::LoadSettings;
pub use crate::webhooks::WebhookSettings;

/// Where the embedded default database lives: beside the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite:hydracore.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, Clone)]
pub struct Settings {
    /// `sqlite:PATH` or `postgres://...`.
    pub database_url: String,
    /// `host:port`; port 0 picks a free one (tests do).
    pub listen: String,
    pub store: StoreOptions,
    pub jwt: JwtSettings,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_timeout: Duration,
    /// How often the sweeper expires overdue workflows.
    pub sweep_interval: Duration,
    /// How long events are kept.
    pub event_retention: Duration,
    pub metrics: MetricsSettings,
    pub load: LoadSettings,
    pub limits: LimitSettings,
    pub webhooks: WebhookSettings,
    pub ui: crate::ui::UiSettings,
}

/// Where `/metrics` is served: it shows the service's load and workflow
/// counts across tenants, so never to anyone on the API port by default.
#[derive(Debug, Clone, Default)]
pub struct MetricsSettings {
    /// A listener of its own (e.g. `127.0.0.1:9090`), without credentials.
    pub listen: Option<String>,
    /// On the API listener too, to `Authorization: Bearer <token>` only.
    pub token: Option<String>,
}

impl Settings {
    /// Settings for a server on `database_url`, on a free local port,
    /// verifying HS256 JWTs with `jwt_secret`.
    pub fn for_tests(database_url: impl Into<String>, jwt_secret: &str) -> Self {
        Self {
            database_url: database_url.into(),
            listen: "127.0.0.1:0".into(),
            store: StoreOptions::default(),
            jwt: JwtSettings {
                secret: Some(jwt_secret.to_owned()),
                ..JwtSettings::default()
            },
            shutdown_timeout: Duration::from_secs(5),
            sweep_interval: Duration::from_millis(100),
            event_retention: hydracore_storage::service::DEFAULT_EVENT_RETENTION,
            metrics: MetricsSettings::default(),
            load: LoadSettings::default(),
            // Tests make many requests per key quickly; the limits have
            // tests of their own.
            limits: LimitSettings {
                per_credential: None,
                failed_auth: None,
                ..LimitSettings::default()
            },
            // The tests' receivers listen on loopback, and are retried soon.
            webhooks: WebhookSettings {
                allow_private: true,
                poll_interval: Duration::from_millis(50),
                backoff_base: Duration::from_millis(100),
                backoff_max: Duration::from_secs(1),
                ..WebhookSettings::default()
            },
            ui: crate::ui::UiSettings::default(),
        }
    }
}
