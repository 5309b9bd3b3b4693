//! Assembling and running the server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use hydracore_storage::Store;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use crate::auth::jwt::JwtVerifier;
use crate::config::Settings;
use crate::http::{self, AppState};
use crate::sweeper;
use crate::webhooks::{self, Deliverer};

/// How long closing the pool may wait for connections still checked out.
const POOL_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A server bound to its port, ready to run.
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    /// `/metrics` on a listener of its own, when configured.
    metrics: Option<(TcpListener, axum::Router)>,
    store: Arc<dyn Store>,
    workflows: hydracore_storage::Workflows,
    shutdown_timeout: Duration,
    sweep_interval: Duration,
    sweeps: watch::Sender<u64>,
    deliverer: Deliverer,
    delivery_interval: Duration,
    delivery_rounds: watch::Sender<u64>,
}

impl App {
    /// Opens the database (creating and migrating it) and binds the listener.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        // Built first, so that a bad JWT setting is refused before the
        // database is touched.
        let jwt = JwtVerifier::from_settings(&settings.jwt)?;
        let store = hydracore_storage::connect(&settings.database_url, &settings.store)
            .await
            .context("opening the database")?;
        let listener = TcpListener::bind(&settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        let mut state = AppState::new(store.clone(), jwt);
        let mut limits = settings.limits.clone();
        // A wait answers 304 before the request timeout would answer 503.
        if let Some(timeout) = settings.load.request_timeout {
            limits.max_wait = limits
                .max_wait
                .min(timeout.saturating_sub(Duration::from_secs(1)));
        }
        state.limits = Arc::new(crate::http::limits::Limits::new(&limits));
        state.ui = Arc::new(settings.ui.clone());
        state.workflows = state
            .workflows
            .clone()
            .with_event_retention(settings.event_retention);
        let workflows = state.workflows.clone();
        state.webhooks = hydracore_storage::Webhooks::new(store.clone(), settings.webhooks.rules());
        let deliverer = Deliverer::new(state.webhooks.clone(), &settings.webhooks)
            .context("building the webhook client")?;
        state.metrics_token = settings.metrics.token.as_deref().map(Arc::from);
        let metrics = match &settings.metrics.listen {
            Some(address) => {
                let listener = TcpListener::bind(address)
                    .await
                    .with_context(|| format!("binding the metrics listener {address}"))?;
                Some((listener, http::metrics_router(state.clone())))
            }
            None => None,
        };
        let router = http::router(state, settings.load);
        Ok(Self {
            listener,
            router,
            metrics,
            store,
            workflows,
            shutdown_timeout: settings.shutdown_timeout,
            sweep_interval: settings.sweep_interval,
            sweeps: watch::Sender::new(0),
            deliverer,
            delivery_interval: settings.webhooks.poll_interval,
            delivery_rounds: watch::Sender::new(0),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where `/metrics` listens on its own, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Counts the sweeper's finished sweeps, once running.
    pub fn sweeps(&self) -> watch::Receiver<u64> {
        self.sweeps.subscribe()
    }

    /// Counts the webhook worker's finished rounds, once running.
    pub fn delivery_rounds(&self) -> watch::Receiver<u64> {
        self.delivery_rounds.subscribe()
    }

    /// Serves until `shutdown` resolves, then stops accepting, gives
    /// in-flight requests up to the shutdown timeout to finish, and closes
    /// the database pool.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // Subscribed before anything runs, so that no change goes unheard.
        let news = self.workflows.news();
        let (stop_sweeper, sweeper_stop) = watch::channel(false);
        let hearing = {
            let (workflows, stop) = (self.workflows.clone(), sweeper_stop.clone());
            tokio::spawn(async move { workflows.hear_other_replicas(stop).await })
        };
        // The requests' own use cases, so that what the sweeper changes
        // wakes the reads waiting on this replica.
        let sweeper = tokio::spawn(sweeper::run(
            self.workflows,
            hydracore_storage::UiTokens::new(Arc::clone(&self.store)),
            self.sweep_interval,
            sweeper_stop,
            self.sweeps,
        ));
        let (stop_delivering, delivery_stop) = watch::channel(false);
        let delivering = tokio::spawn(webhooks::run(
            self.deliverer,
            self.delivery_interval,
            news,
            delivery_stop,
            self.delivery_rounds,
        ));
        let (stop_metrics, metrics_stop) = watch::channel(false);
        if let Some((listener, router)) = self.metrics {
            let mut stop = metrics_stop;
            tokio::spawn(async move {
                let stopped = async move {
                    let _ = stop.wait_for(|stop| *stop).await;
                };
                if let Err(e) = axum::serve(listener, router)
                    .with_graceful_shutdown(stopped)
                    .await
                {
                    tracing::warn!(error = %e, "the metrics listener failed");
                }
            });
        }
        let stopping = Arc::new(Notify::new());
        let signal = stopping.clone();
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let server = axum::serve(self.listener, service).with_graceful_shutdown(async move {
            shutdown.await;
            signal.notify_one();
        });
        let grace = self.shutdown_timeout;
        let deadline = async {
            stopping.notified().await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            served = server => served?,
            () = deadline => tracing::warn!(?grace, "in-flight requests did not finish in time; stopping anyway"),
        }
        let _ = stop_sweeper.send(true);
        let _ = stop_delivering.send(true);
        let _ = stop_metrics.send(true);
        // A sweep in progress is one bounded transaction; let it commit.
        if tokio::time::timeout(POOL_CLOSE_TIMEOUT, sweeper)
            .await
            .is_err()
        {
            tracing::warn!("the sweeper did not stop in time");
        }
        hearing.abort();
        // Attempts under way are bounded by the webhook timeout; one cut
        // short is claimed again after its lease.
        if tokio::time::timeout(POOL_CLOSE_TIMEOUT, delivering)
            .await
            .is_err()
        {
            tracing::warn!("the webhook worker did not stop in time");
        }
        if tokio::time::timeout(POOL_CLOSE_TIMEOUT, self.store.close())
            .await
            .is_err()
        {
            tracing::warn!("database connections still busy; exiting without waiting");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
