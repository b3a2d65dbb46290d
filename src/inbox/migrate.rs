//! The migrations shipped with the crate (`migrations/{sqlite,postgres}/`), embedded
//! at build time. Each backend applies the ones missing from its
//! `suno_inbox_migrations` table, in one transaction, serialized against other
//! processes (SQLite `BEGIN IMMEDIATE`, PostgreSQL an advisory lock).

/// One migration: a version and its SQL.
#[derive(Debug)]
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) description: &'static str,
    pub(crate) sql: &'static str,
}

/// SQLite's migrations, oldest first.
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        description: "inbox",
        sql: include_str!("../../migrations/sqlite/0001_inbox.sql"),
    },
    Migration {
        version: 2,
        description: "expected tasks",
        sql: include_str!("../../migrations/sqlite/0002_expected_tasks.sql"),
    },
    Migration {
        version: 3,
        description: "expected task routes",
        sql: include_str!("../../migrations/sqlite/0003_expected_task_routes.sql"),
    },
    Migration {
        version: 6,
        description: "console indexes",
        sql: include_str!("../../migrations/sqlite/0006_console_indexes.sql"),
    },
];

/// PostgreSQL's migrations, oldest first.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        description: "inbox",
        sql: include_str!("../../migrations/postgres/0001_inbox.sql"),
    },
    Migration {
        version: 2,
        description: "expected tasks",
        sql: include_str!("../../migrations/postgres/0002_expected_tasks.sql"),
    },
    Migration {
        version: 3,
        description: "expected task routes",
        sql: include_str!("../../migrations/postgres/0003_expected_task_routes.sql"),
    },
    Migration {
        version: 6,
        description: "console indexes",
        sql: include_str!("../../migrations/postgres/0006_console_indexes.sql"),
    },
];

/// The table that records applied versions (the same SQL on both backends).
pub(crate) const CREATE_VERSIONS: &str = "CREATE TABLE IF NOT EXISTS suno_inbox_migrations (\
     version BIGINT PRIMARY KEY, description TEXT NOT NULL)";
