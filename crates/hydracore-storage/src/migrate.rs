//! The schema migrations of both backends and the rules that run them: each
//! backend's list is embedded in the binary and applied in order, each
//! migration once, recorded in `hydracore_migrations` with a checksum.
//! Released migrations are never edited: a change is a new migration.

use sha2::{Digest, Sha256};

use crate::StoreError;

/// One migration file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    pub fn checksum(&self) -> Vec<u8> {
        Sha256::digest(self.sql.as_bytes()).to_vec()
    }
}

pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "hardening",
        sql: include_str!("../migrations/sqlite/0002_hardening.sql"),
    },
    Migration {
        version: 3,
        name: "webhooks",
        sql: include_str!("../migrations/sqlite/0003_webhooks.sql"),
    },
    Migration {
        version: 4,
        name: "ui",
        sql: include_str!("../migrations/sqlite/0004_ui.sql"),
    },
];

pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "hardening",
        sql: include_str!("../migrations/postgres/0002_hardening.sql"),
    },
    Migration {
        version: 3,
        name: "webhooks",
        sql: include_str!("../migrations/postgres/0003_webhooks.sql"),
    },
    Migration {
        version: 4,
        name: "ui",
        sql: include_str!("../migrations/postgres/0004_ui.sql"),
    },
    Migration {
        version: 5,
        name: "citus",
        sql: include_str!("../migrations/postgres/0005_citus.sql"),
    },
];

/// The table that records applied migrations (both backends).
pub const TABLE: &str = "hydracore_migrations";

/// A migration the database says it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub version: i64,
    pub checksum: Vec<u8>,
}

/// The migrations of `known` still to apply, in order; refused when the
/// database was migrated by a newer build, or a migration applied there is
/// not the one this build has.
pub fn pending<'a>(
    known: &'a [Migration],
    applied: &[Applied],
) -> Result<Vec<&'a Migration>, StoreError> {
    for done in applied {
        match known.iter().find(|m| m.version == done.version) {
            None => {
                return Err(StoreError::Config(format!(
                    "refusing to start: the database has migration {}, which this build of \
                     HydraCore does not know; it was migrated by a newer HydraCore, so run that \
                     version (or newer) instead",
                    done.version
                )))
            }
            Some(m) if m.checksum() != done.checksum => {
                return Err(StoreError::Config(format!(
                    "refusing to start: migration {} ({}) in the database differs from this \
                     build's; the database was migrated by another build of HydraCore",
                    m.version, m.name
                )))
            }
            Some(_) => {}
        }
    }
    Ok(known
        .iter()
        .filter(|m| !applied.iter().any(|a| a.version == m.version))
        .collect())
}

/// The migration of `known` to apply next, if any (see [`pending`]).
pub fn next<'a>(
    known: &'a [Migration],
    applied: &[Applied],
) -> Result<Option<&'a Migration>, StoreError> {
    Ok(pending(known, applied)?.first().copied())
}

/// What a backend reads to learn the applied migrations.
pub const SELECT_APPLIED: &str = "SELECT version, checksum FROM hydracore_migrations";

/// Every migration of both backends, named, for checks over their text.
#[cfg(test)]
pub fn all_migrations() -> impl Iterator<Item = (String, &'static str)> {
    let named = |backend: &'static str| {
        move |m: &Migration| (format!("{backend} {:04}_{}", m.version, m.name), m.sql)
    };
    SQLITE
        .iter()
        .map(named("sqlite"))
        .chain(POSTGRES.iter().map(named("postgres")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(m: &Migration) -> Applied {
        Applied {
            version: m.version,
            checksum: m.checksum(),
        }
    }

    #[test]
    fn a_fresh_database_gets_every_migration_in_order() {
        let todo = pending(SQLITE, &[]).expect("pending");
        let versions: Vec<i64> = todo.iter().map(|m| m.version).collect();
        let mut sorted = versions.clone();
        sorted.sort_unstable();
        assert_eq!(versions, sorted);
        assert_eq!(versions.len(), SQLITE.len());
    }

    #[test]
    fn the_applied_migrations_are_read_from_the_table() {
        assert!(SELECT_APPLIED.ends_with(TABLE));
    }

    #[test]
    fn a_migrated_database_gets_nothing() {
        let done: Vec<Applied> = POSTGRES.iter().map(applied).collect();
        assert!(pending(POSTGRES, &done).expect("pending").is_empty());
    }

    #[test]
    fn a_database_migrated_by_a_newer_build_is_refused_with_a_clear_sentence() {
        let newer = Applied {
            version: 20_990_101,
            checksum: vec![0],
        };
        let e = pending(SQLITE, &[newer]).expect_err("refused");
        assert!(matches!(&e, StoreError::Config(m) if m.contains("newer HydraCore")));
    }

    #[test]
    fn an_edited_migration_is_refused() {
        let edited = Applied {
            version: 1,
            checksum: vec![1, 2, 3],
        };
        let e = pending(POSTGRES, &[edited]).expect_err("refused");
        assert!(matches!(&e, StoreError::Config(m) if m.contains("differs")));
    }
}
