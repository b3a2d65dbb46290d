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
];

/// The table that records applied versions (the same SQL on both backends).
pub(crate) const CREATE_VERSIONS: &str = "CREATE TABLE IF NOT EXISTS suno_inbox_migrations (\
     version BIGINT PRIMARY KEY, description TEXT NOT NULL)";

/// The advisory lock that serializes PostgreSQL migrations between processes (the
/// inbox's backend takes the same one).
#[cfg(feature = "postgres")]
const POSTGRES_LOCK: i64 = 0x5355_4e4f_4942_5831; // "SUNOIBX1"

/// Applies the PostgreSQL migrations missing from `pool`'s database, for the stores
/// that use the crate's tables without an inbox.
#[cfg(feature = "postgres")]
pub(crate) async fn apply_postgres(pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(POSTGRES_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(CREATE_VERSIONS).execute(&mut *tx).await?;
    for migration in POSTGRES {
        let applied = sqlx::query("SELECT 1 FROM suno_inbox_migrations WHERE version = $1")
            .bind(migration.version)
            .fetch_optional(&mut *tx)
            .await?;
        if applied.is_none() {
            sqlx::raw_sql(migration.sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO suno_inbox_migrations (version, description) VALUES ($1, $2)")
                .bind(migration.version)
                .bind(migration.description)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await
}

/// Applies the SQLite migrations missing from `pool`'s database (`BEGIN IMMEDIATE`
/// serializes them against other connections).
#[cfg(feature = "sqlite")]
pub(crate) async fn apply_sqlite(pool: &sqlx::SqlitePool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::raw_sql(CREATE_VERSIONS).execute(&mut *tx).await?;
    for migration in SQLITE {
        let applied = sqlx::query("SELECT 1 FROM suno_inbox_migrations WHERE version = ?1")
            .bind(migration.version)
            .fetch_optional(&mut *tx)
            .await?;
        if applied.is_none() {
            sqlx::raw_sql(migration.sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO suno_inbox_migrations (version, description) VALUES (?1, ?2)")
                .bind(migration.version)
                .bind(migration.description)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await
}
