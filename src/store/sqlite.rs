//! A dedup store in SQLite: one file, durable across restarts (feature `sqlite`).

use std::fmt;
use std::future::Future;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row as _, query};

use super::sql::{
    Prunable, Pruner, Settings, held_binding, key_digest, millis, token_bytes, unavailable,
};
use super::{Binding, Claim, ClaimToken, DedupKey, DedupStore, SignatureUse, StoreError};

/// How long a statement waits for SQLite's write lock before failing (as the inbox).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The live row of a key: a read, which never waits for the write lock.
const LOOK_UP: &str = "SELECT token FROM suno_dedup_keys WHERE key = ?1 AND expires_at > ?2";

/// Takes the key if it is absent or expired. SQLite runs one write at a time, so the
/// upsert's `WHERE` decides alone.
const CLAIM: &str = "INSERT INTO suno_dedup_keys (key, token, expires_at) VALUES (?1, ?2, ?3) \
     ON CONFLICT (key) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at \
     WHERE expires_at <= ?4 RETURNING 1";

const COMPLETE: &str = "UPDATE suno_dedup_keys SET token = NULL, expires_at = ?3 \
     WHERE key = ?1 AND token = ?2 AND expires_at > ?4";

const RELEASE: &str =
    "DELETE FROM suno_dedup_keys WHERE key = ?1 AND token = ?2 AND expires_at > ?3";

const BOUND_USE: &str =
    "SELECT bound_use FROM suno_signature_bindings WHERE signature = ?1 AND expires_at > ?2";

const BIND: &str = "INSERT INTO suno_signature_bindings (signature, bound_use, expires_at) \
     VALUES (?1, ?2, ?3) \
     ON CONFLICT (signature) DO UPDATE SET bound_use = excluded.bound_use, \
     expires_at = excluded.expires_at WHERE expires_at <= ?4 RETURNING 1";

const PRUNE_KEYS: &str = "DELETE FROM suno_dedup_keys WHERE key IN \
     (SELECT key FROM suno_dedup_keys WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)";
const PRUNE_BINDINGS: &str = "DELETE FROM suno_signature_bindings WHERE signature IN \
     (SELECT signature FROM suno_signature_bindings WHERE expires_at <= ?1 \
      ORDER BY expires_at LIMIT ?2)";

/// What a lookup of a key's row found, for the claim that did not take it.
fn held_claim(token: Option<Vec<u8>>) -> Claim {
    match token {
        None => Claim::Done,
        Some(_) => Claim::InFlight,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

/// A [`DedupStore`] in a SQLite file: claims and completed keys survive a restart,
/// and an application whose inbox (or other data) is in SQLite needs no other engine.
/// Several processes on one machine may share the file; replicas on several machines
/// need [`PostgresStore`](super::PostgresStore) or [`RedisStore`](super::RedisStore).
///
/// - **Tables**: `suno_dedup_keys` and `suno_signature_bindings`, created by the
///   crate's migrations (the inbox's, `migrations/sqlite/`), which
///   [`connect`](SqliteStoreBuilder::connect) runs. Rows are keyed by SHA-256
///   digests, so no input costs more than a fixed-size row.
/// - **Claim**: a read of the key's row (reads never wait for SQLite's write lock, so
///   duplicates cost no write), then, if it is free, one `INSERT … ON CONFLICT DO
///   UPDATE … WHERE` the row is expired. SQLite runs one write at a time, so of
///   concurrent claims one wins. Complete and release are one token-checked
///   `UPDATE` / `DELETE` each.
/// - **Durability**: the file is opened as the inbox opens it (WAL journal,
///   `synchronous=FULL`, a 5 s busy timeout): a completed key is on disk before the
///   answer.
/// - **Time** is this process's clock.
/// - **Pruning**: expired rows are deleted in the background every
///   [`prune_interval`](SqliteStoreBuilder::prune_interval), in batches of
///   [`prune_batch`](SqliteStoreBuilder::prune_batch) rows, each its own short write,
///   with a pause between batches so claims take the write lock in between.
///
/// ```no_run
/// use suno_callback::SunoCallbacks;
/// use suno_callback::store::SqliteStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = SqliteStore::connect("sqlite://suno-dedup.db").await?;
/// let callbacks = SunoCallbacks::builder()
///     .hmac_key("webhook-hmac-key")
///     .store(store)
///     .on_complete(|ev| async move { Ok(()) })
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    pruner: Pruner,
    prune_batch: u32,
}

/// Configures a [`SqliteStore`]. Made by [`SqliteStore::builder`].
#[derive(Clone, Debug)]
pub struct SqliteStoreBuilder {
    settings: Settings,
}

impl SqliteStore {
    /// Opens (or creates) the file at `url` (`sqlite://path`) with the default
    /// settings and runs the migrations.
    ///
    /// # Errors
    ///
    /// [`StoreError::unavailable`] when the URL cannot be read, the file cannot be
    /// opened or created, or a migration fails.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder().connect(url).await
    }

    /// A builder with the default settings.
    pub fn builder() -> SqliteStoreBuilder {
        SqliteStoreBuilder {
            settings: Settings::default(),
        }
    }

    /// A store on a pool the application already has, without running the
    /// migrations (see [`SqliteStoreBuilder::from_pool`] for that). The pool's
    /// connections should have a busy timeout, as the inbox's have.
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self::on_pool(pool, &Settings::default())
    }

    fn on_pool(pool: SqlitePool, settings: &Settings) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                pruner: Pruner::new(settings.prune_interval, settings.prune_batch),
                prune_batch: settings.prune_batch,
            }),
        }
    }

    /// The connection pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    /// Runs the crate's migrations that are not applied yet.
    ///
    /// # Errors
    ///
    /// [`StoreError::unavailable`] when the database fails or a migration's SQL does.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        crate::inbox::migrate::apply_sqlite(&self.inner.pool)
            .await
            .map_err(unavailable)
    }

    /// Deletes the expired rows now (the store also does it in the background);
    /// returns how many.
    ///
    /// # Errors
    ///
    /// [`StoreError::unavailable`] when the database fails; rows deleted before the
    /// failure stay deleted.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        super::sql::prune(&*self.inner, self.inner.prune_batch).await
    }

    async fn claim_now(&self, key: &DedupKey, lease: Duration) -> Result<Claim, StoreError> {
        self.inner.pruner.start(&self.inner);
        let digest = key_digest(key);
        let now = now_ms();
        let held = query(LOOK_UP)
            .bind(&digest)
            .bind(now)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(unavailable)?;
        if let Some(row) = held {
            return Ok(held_claim(row.try_get(0).map_err(unavailable)?));
        }
        let token = ClaimToken::new_unique();
        let claimed = query(CLAIM)
            .bind(&digest)
            .bind(token_bytes(token))
            .bind(now.saturating_add(millis(lease)))
            .bind(now_ms())
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(unavailable)?;
        Ok(match claimed {
            Some(_) => Claim::Acquired(token),
            // Taken by a concurrent claim between the read and the write.
            None => Claim::InFlight,
        })
    }

    async fn complete_now(
        &self,
        key: &DedupKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let done = query(COMPLETE)
            .bind(key_digest(key))
            .bind(token_bytes(token))
            .bind(now.saturating_add(millis(ttl)))
            .bind(now)
            .execute(&self.inner.pool)
            .await
            .map_err(unavailable)?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::claim_lost())
        }
    }

    async fn release_now(&self, key: &DedupKey, token: ClaimToken) -> Result<(), StoreError> {
        let done = query(RELEASE)
            .bind(key_digest(key))
            .bind(token_bytes(token))
            .bind(now_ms())
            .execute(&self.inner.pool)
            .await
            .map_err(unavailable)?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::claim_lost())
        }
    }

    async fn bound_use(&self, digest: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        query(BOUND_USE)
            .bind(digest)
            .bind(now_ms())
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(unavailable)?
            .map(|row| row.try_get::<Vec<u8>, _>(0))
            .transpose()
            .map_err(unavailable)
    }

    async fn bind_now(
        &self,
        signature: &SignatureUse,
        ttl: Duration,
    ) -> Result<Binding, StoreError> {
        let digest = signature.signature_digest().to_vec();
        let wanted = signature.use_digest().to_vec();
        if let Some(bound) = self.bound_use(&digest).await? {
            return Ok(held_binding(Some(bound), &wanted));
        }
        let now = now_ms();
        let bound = query(BIND)
            .bind(&digest)
            .bind(&wanted)
            .bind(now.saturating_add(millis(ttl)))
            .bind(now)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(unavailable)?;
        if bound.is_some() {
            return Ok(Binding::First);
        }
        // Bound by a concurrent first use between the read and the write.
        let bound = self.bound_use(&digest).await?;
        Ok(held_binding(bound, &wanted))
    }
}

impl Prunable for Inner {
    async fn prune_batch(&self, batch: u32) -> Result<(u64, bool), StoreError> {
        let (mut total, mut full) = (0, false);
        for statement in [PRUNE_KEYS, PRUNE_BINDINGS] {
            let deleted = query(statement)
                .bind(now_ms())
                .bind(i64::from(batch))
                .execute(&self.pool)
                .await
                .map_err(unavailable)?
                .rows_affected();
            total += deleted;
            full |= deleted >= u64::from(batch);
        }
        Ok((total, full))
    }
}

impl SqliteStoreBuilder {
    /// The size of the store's own connection pool (default 8). Not used with
    /// [`from_pool`](Self::from_pool).
    #[must_use]
    pub fn max_connections(mut self, connections: u32) -> Self {
        self.settings.max_connections = connections;
        self
    }

    /// How long a call waits for a pooled connection (default 5 s) before it counts
    /// as unavailable. Not used with [`from_pool`](Self::from_pool).
    #[must_use]
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.settings.acquire_timeout = timeout;
        self
    }

    /// How often expired rows are deleted in the background (default a minute);
    /// `Duration::ZERO` turns it off (call [`SqliteStore::prune`] yourself).
    #[must_use]
    pub fn prune_interval(mut self, interval: Duration) -> Self {
        self.settings.prune_interval = interval;
        self
    }

    /// How many rows one pruning statement deletes at most (default 500).
    #[must_use]
    pub fn prune_batch(mut self, rows: u32) -> Self {
        self.settings.prune_batch = rows;
        self
    }

    /// Whether connecting runs the migrations (default `true`).
    #[must_use]
    pub fn migrate_on_start(mut self, migrate: bool) -> Self {
        self.settings.migrate_on_start = migrate;
        self
    }

    /// Opens (or creates) the file at `url` (`sqlite://path`) and runs the
    /// migrations.
    ///
    /// # Errors
    ///
    /// [`StoreError::unavailable`] when the URL cannot be read, the file cannot be
    /// opened or created, or a migration fails.
    pub async fn connect(self, url: &str) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url).map_err(unavailable)?;
        self.connect_with(options).await
    }

    /// Opens the file with these options (WAL journal, `synchronous=FULL` and a busy
    /// timeout are set on top of them) and runs the migrations.
    ///
    /// # Errors
    ///
    /// [`StoreError::unavailable`] when the URL cannot be read, the file cannot be
    /// opened or created, or a migration fails.
    pub async fn connect_with(
        self,
        options: SqliteConnectOptions,
    ) -> Result<SqliteStore, StoreError> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(self.settings.max_connections)
            .acquire_timeout(self.settings.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        self.from_pool(pool).await
    }

    /// A store on a pool the application already has; runs the migrations unless
    /// [`migrate_on_start(false)`](Self::migrate_on_start).
    ///
    /// # Errors
    ///
    /// [`StoreError::unavailable`] when a migration fails.
    pub async fn from_pool(self, pool: SqlitePool) -> Result<SqliteStore, StoreError> {
        let store = SqliteStore::on_pool(pool, &self.settings);
        if self.settings.migrate_on_start {
            store.migrate().await?;
        }
        Ok(store)
    }
}

impl DedupStore for SqliteStore {
    fn claim(
        &self,
        key: &DedupKey,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send {
        self.claim_now(key, lease)
    }

    fn complete(
        &self,
        key: &DedupKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.complete_now(key, token, ttl)
    }

    fn release(
        &self,
        key: &DedupKey,
        token: ClaimToken,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.release_now(key, token)
    }

    fn bind_signature(
        &self,
        signature: &SignatureUse,
        ttl: Duration,
    ) -> impl Future<Output = Result<Binding, StoreError>> + Send {
        self.bind_now(signature, ttl)
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("connections", &self.inner.pool.size())
            .field("prune_batch", &self.inner.prune_batch)
            .finish_non_exhaustive()
    }
}
