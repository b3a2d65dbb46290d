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
        version: 4,
        description: "dedup store",
        sql: include_str!("../../migrations/sqlite/0004_dedup_store.sql"),
    },
    Migration {
        version: 5,
        description: "console indexes",
        sql: include_str!("../../migrations/sqlite/0005_console_indexes.sql"),
    },
    Migration {
        version: 6,
        description: "settled tasks",
        sql: include_str!("../../migrations/sqlite/0006_settled_tasks.sql"),
    },
    Migration {
        version: 7,
        description: "expected task last poll",
        sql: include_str!("../../migrations/sqlite/0007_expected_task_last_poll.sql"),
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
        version: 4,
        description: "dedup store",
        sql: include_str!("../../migrations/postgres/0004_dedup_store.sql"),
    },
    Migration {
        version: 5,
        description: "console indexes",
        sql: include_str!("../../migrations/postgres/0005_console_indexes.sql"),
    },
    Migration {
        version: 6,
        description: "settled tasks",
        sql: include_str!("../../migrations/postgres/0006_settled_tasks.sql"),
    },
    Migration {
        version: 7,
        description: "expected task last poll",
        sql: include_str!("../../migrations/postgres/0007_expected_task_last_poll.sql"),
    },
];

/// The table that records applied versions (the same SQL on both backends).
pub(crate) const CREATE_VERSIONS: &str = "CREATE TABLE IF NOT EXISTS suno_inbox_migrations (\
     version BIGINT PRIMARY KEY, description TEXT NOT NULL)";

/// Applies the migrations of a backend's statement table (`$sql`: its migrations, how
/// it begins a transaction, its migration lock, its placeholders) missing from
/// `suno_inbox_migrations` on `$pool`, in one transaction; evaluates to the commit's
/// `Result<(), sqlx::Error>`. The inbox and the SQL dedup stores both migrate with it.
macro_rules! apply_missing {
    ($pool:expr, $sql:expr) => {{
        let sql = $sql;
        let mut tx = $pool.begin_with(sql.begin).await?;
        if let Some(lock) = sql.migration_lock {
            sqlx::query(lock).execute(&mut *tx).await?;
        }
        sqlx::raw_sql($crate::inbox::migrate::CREATE_VERSIONS)
            .execute(&mut *tx)
            .await?;
        for migration in sql.migrations {
            let applied = sqlx::query(sql.migration_applied)
                .bind(migration.version)
                .fetch_optional(&mut *tx)
                .await?;
            if applied.is_none() {
                sqlx::raw_sql(migration.sql).execute(&mut *tx).await?;
                sqlx::query(sql.migration_record)
                    .bind(migration.version)
                    .bind(migration.description)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await
    }};
}
pub(crate) use apply_missing;

/// Applies the PostgreSQL migrations missing from `pool`'s database, for the stores
/// that use the crate's tables without an inbox.
#[cfg(feature = "postgres")]
pub(crate) async fn apply_postgres(pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
    apply_missing!(pool, &super::postgres::STATEMENTS)
}

/// Applies the SQLite migrations missing from `pool`'s database (`BEGIN IMMEDIATE`
/// serializes them against other connections).
#[cfg(feature = "sqlite")]
pub(crate) async fn apply_sqlite(pool: &sqlx::SqlitePool) -> Result<(), sqlx::Error> {
    apply_missing!(pool, &super::sqlite::STATEMENTS)
}
