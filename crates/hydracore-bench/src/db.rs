//! The database a run works on: a fresh SQLite file in a temporary
//! directory, a fresh PostgreSQL database (dropped at the end), or one the
//! caller names (left as it is).

use anyhow::Context;
use tempfile::TempDir;
use uuid::Uuid;

/// Where fresh PostgreSQL databases are created unless told otherwise.
pub const DEFAULT_POSTGRES_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Backend {
        if is_postgres(url) {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A database URL, and what to remove when done with it.
#[derive(Debug)]
pub struct BenchDatabase {
    pub url: String,
    pub backend: Backend,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Keep,
    /// Removed (with the SQLite file in it) when dropped.
    Dir(#[allow(dead_code)] TempDir),
    DropPostgres {
        server: String,
        name: String,
    },
}

impl BenchDatabase {
    /// `url` as given (kept afterwards), else a fresh database of `backend`
    /// (removed by [`BenchDatabase::cleanup`] unless `keep`).
    pub async fn prepare(
        backend: Backend,
        url: Option<String>,
        postgres_server: &str,
        keep: bool,
    ) -> anyhow::Result<Self> {
        if let Some(url) = url {
            return Ok(Self {
                backend: Backend::of_url(&url),
                url,
                cleanup: Cleanup::Keep,
            });
        }
        match backend {
            Backend::Sqlite => {
                if keep {
                    return Ok(Self {
                        url: "sqlite:hydracore-bench.db".to_owned(),
                        backend,
                        cleanup: Cleanup::Keep,
                    });
                }
                let dir = tempfile::tempdir().context("creating a temporary directory")?;
                let url = format!("sqlite:{}", dir.path().join("bench.db").display());
                Ok(Self {
                    url,
                    backend,
                    cleanup: Cleanup::Dir(dir),
                })
            }
            Backend::Postgres => {
                let name = format!("hc_bench_{}", Uuid::new_v4().simple());
                create_postgres_database(postgres_server, &name).await?;
                let url = with_database(postgres_server, &name);
                let cleanup = if keep {
                    Cleanup::Keep
                } else {
                    Cleanup::DropPostgres {
                        server: postgres_server.to_owned(),
                        name,
                    }
                };
                Ok(Self {
                    url,
                    backend,
                    cleanup,
                })
            }
        }
    }

    /// Removes what [`BenchDatabase::prepare`] created for this run.
    pub async fn cleanup(self) -> anyhow::Result<()> {
        match self.cleanup {
            Cleanup::Keep | Cleanup::Dir(_) => Ok(()),
            Cleanup::DropPostgres { server, name } => drop_postgres_database(&server, &name).await,
        }
    }
}

pub async fn create_postgres_database(server: &str, name: &str) -> anyhow::Result<()> {
    let admin = connect_postgres(server)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {}", redact(server)))?;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .with_context(|| format!("creating database {name}"))?;
    Ok(())
}

pub async fn drop_postgres_database(server: &str, name: &str) -> anyhow::Result<()> {
    let admin = connect_postgres(server)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {}", redact(server)))?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .with_context(|| format!("dropping database {name}"))?;
    Ok(())
}

/// One PostgreSQL connection to `url`, its driving task spawned (it ends,
/// and the session with it, when the client is dropped).
///
/// Opened as the server opens its own (the storage crate's URL reading
/// and TLS), so that whatever URL the server takes (`sslmode`,
/// `sslrootcert`, libpq's `key=value` form) the bench takes too.
pub async fn connect_postgres(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let settings = hydracore_storage::postgres::tls::settings(url, None)?;
    Ok(hydracore_storage::postgres::tls::connect(&settings).await?)
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let prefix = base[authority..]
        .find('/')
        .map_or(base, |slash| &base[..authority + slash]);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{prefix}/{database}{query}")
}

/// A URL fit for printing: any password replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let Some(at) = rest.find('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &rest[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_swapped_and_passwords_hidden() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite:x.db"), "sqlite:x.db");
    }
}
