//! A dedup store in PostgreSQL, shared by every replica of a service (feature
//! `postgres`).

use std::fmt;
use std::future::Future;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Row as _, query};

use super::sql::{
    Prunable, Pruner, Settings, held_binding, key_digest, millis, token_bytes, unavailable,
};
use super::{Binding, Claim, ClaimToken, DedupKey, DedupStore, SignatureUse, StoreError};

/// The server's time in Unix milliseconds (fixed for one statement).
macro_rules! now {
    () => {
        "floor(extract(epoch from now()) * 1000)::bigint"
    };
}

/// Takes the key if it is absent or expired, in one statement. The key's live row, if
/// any, is read first: then nothing is written (a duplicate costs no commit to disk),
/// and the last column says whether it is done (true) or in flight (false). Without
/// one, the upsert's `WHERE` decides under the row's lock, so of concurrent claims one
/// wins; a claim that loses there (last column NULL) lost to a concurrent claim: in
/// flight.
const CLAIM: &str = concat!(
    "WITH live AS (SELECT k.token IS NULL AS done FROM suno_dedup_keys k \
       WHERE k.key = $1 AND k.expires_at > ",
    now!(),
    "), claimed AS (\
       INSERT INTO suno_dedup_keys AS k (key, token, expires_at) SELECT $1, $2, ",
    now!(),
    " + $3 WHERE NOT EXISTS (SELECT 1 FROM live) \
       ON CONFLICT (key) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at \
       WHERE k.expires_at <= ",
    now!(),
    " RETURNING 1) \
     SELECT EXISTS (SELECT 1 FROM claimed), (SELECT done FROM live)"
);

const COMPLETE: &str = concat!(
    "UPDATE suno_dedup_keys SET token = NULL, expires_at = ",
    now!(),
    " + $3 WHERE key = $1 AND token = $2 AND expires_at > ",
    now!()
);

const RELEASE: &str = concat!(
    "DELETE FROM suno_dedup_keys WHERE key = $1 AND token = $2 AND expires_at > ",
    now!()
);

/// Binds the signature if it is unbound or expired, in one statement, as [`CLAIM`]
/// takes a key: a live binding is only read; the last column is the use it is bound to.
const BIND: &str = concat!(
    "WITH live AS (SELECT b.bound_use FROM suno_signature_bindings b \
       WHERE b.signature = $1 AND b.expires_at > ",
    now!(),
    "), bound AS (\
       INSERT INTO suno_signature_bindings AS b (signature, bound_use, expires_at) \
       SELECT $1, $2, ",
    now!(),
    " + $3 WHERE NOT EXISTS (SELECT 1 FROM live) \
       ON CONFLICT (signature) DO UPDATE SET bound_use = excluded.bound_use, \
       expires_at = excluded.expires_at WHERE b.expires_at <= ",
    now!(),
    " RETURNING 1) \
     SELECT EXISTS (SELECT 1 FROM bound), (SELECT bound_use FROM live)"
);

/// [`BIND`] and [`CLAIM`] in one statement, for a signed first delivery in one round
/// trip: the claim's insert runs only when the bind's result lets the callback through
/// (bound now, or bound to this same use). Columns: bound now, the live binding's use,
/// claimed now, the live key's `done`. When the binding is neither (a concurrent first
/// use this snapshot predates), nothing was claimed and the caller reads the binding
/// again and claims on its own.
const BIND_AND_CLAIM: &str = concat!(
    "WITH blive AS (SELECT b.bound_use FROM suno_signature_bindings b \
       WHERE b.signature = $1 AND b.expires_at > ",
    now!(),
    "), bound AS (\
       INSERT INTO suno_signature_bindings AS b (signature, bound_use, expires_at) \
       SELECT $1, $2, ",
    now!(),
    " + $3 WHERE NOT EXISTS (SELECT 1 FROM blive) \
       ON CONFLICT (signature) DO UPDATE SET bound_use = excluded.bound_use, \
       expires_at = excluded.expires_at WHERE b.expires_at <= ",
    now!(),
    " RETURNING 1), admitted AS (\
       SELECT 1 WHERE EXISTS (SELECT 1 FROM bound) \
       OR (SELECT bound_use FROM blive) = $2), \
     klive AS (SELECT k.token IS NULL AS done FROM suno_dedup_keys k \
       WHERE k.key = $4 AND k.expires_at > ",
    now!(),
    "), claimed AS (\
       INSERT INTO suno_dedup_keys AS k (key, token, expires_at) SELECT $4, $5, ",
    now!(),
    " + $6 WHERE EXISTS (SELECT 1 FROM admitted) AND NOT EXISTS (SELECT 1 FROM klive) \
       ON CONFLICT (key) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at \
       WHERE k.expires_at <= ",
    now!(),
    " RETURNING 1) \
     SELECT EXISTS (SELECT 1 FROM bound), (SELECT bound_use FROM blive), \
       EXISTS (SELECT 1 FROM claimed), (SELECT done FROM klive)"
);

/// The binding as it is now (after a concurrent first use this statement could not see).
const BOUND_USE: &str = concat!(
    "SELECT bound_use FROM suno_signature_bindings WHERE signature = $1 AND expires_at > ",
    now!()
);

/// One batch of expired rows of each table, skipping rows a claim holds locked.
const PRUNE_KEYS: &str = concat!(
    "DELETE FROM suno_dedup_keys WHERE key IN (SELECT key FROM suno_dedup_keys \
     WHERE expires_at <= ",
    now!(),
    " ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
);
const PRUNE_BINDINGS: &str = concat!(
    "DELETE FROM suno_signature_bindings WHERE signature IN (SELECT signature \
     FROM suno_signature_bindings WHERE expires_at <= ",
    now!(),
    " ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
);

/// A [`DedupStore`] in PostgreSQL, for several replicas that already share a
/// database: a callback claimed by one replica is in flight or done for all of them,
/// and a signature bound on one is bound on all.
///
/// - **Tables**: `suno_dedup_keys` and `suno_signature_bindings`, created by the
///   crate's migrations (the inbox's, `migrations/postgres/`), which
///   [`connect`](PostgresStoreBuilder::connect) runs. Rows are keyed by SHA-256
///   digests, so no input costs more than a fixed-size row.
/// - **Claim** is one statement: a read of the key's live row (a duplicate writes
///   nothing), else an `INSERT … ON CONFLICT DO UPDATE … WHERE` the row is expired:
///   one round trip, atomic under the row's lock. Complete and
///   release are one token-checked `UPDATE` / `DELETE` each. The signature's binding
///   and the claim are one statement too, so a signed callback costs two round trips
///   (bind and claim, complete) and a duplicate one.
/// - **Time** is the database server's clock, so the replicas' clocks need not agree.
/// - **Pruning**: expired rows are deleted in the background every
///   [`prune_interval`](PostgresStoreBuilder::prune_interval), in batches of
///   [`prune_batch`](PostgresStoreBuilder::prune_batch) rows that skip locked rows, so
///   it never holds up a claim for longer than one small batch.
/// - **Faults** fail closed: a database that is down or slow makes calls fail with
///   [`StoreError::unavailable`], which the pipeline answers `503`.
///
/// Alone, from a URL or a pool you already have, or on an inbox's pool with
/// [`Inbox::dedup_store`](crate::inbox::Inbox::dedup_store):
///
/// ```no_run
/// use suno_callback::SunoCallbacks;
/// use suno_callback::store::PostgresStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PostgresStore::connect("postgres://app@db.internal:5432/app").await?;
/// let callbacks = SunoCallbacks::builder()
///     .hmac_key("webhook-hmac-key")
///     .store(store)
///     .on_complete(|ev| async move { Ok(()) })
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    pruner: Pruner,
    prune_batch: u32,
}

/// Configures a [`PostgresStore`]. Made by [`PostgresStore::builder`].
#[derive(Clone, Debug)]
pub struct PostgresStoreBuilder {
    settings: Settings,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://…`) with the default settings
    /// and runs the migrations. Fails if the database cannot be reached now.
    ///
    /// # Errors
    ///
    /// [`StoreError::unavailable`] when the URL cannot be read, the database does not
    /// answer, or a migration fails.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder().connect(url).await
    }

    /// A builder with the default settings.
    pub fn builder() -> PostgresStoreBuilder {
        PostgresStoreBuilder {
            settings: Settings::default(),
        }
    }

    /// A store on a pool the application already has, without running the
    /// migrations (see [`PostgresStoreBuilder::from_pool`] for that).
    pub fn from_pool(pool: PgPool) -> Self {
        Self::on_pool(pool, &Settings::default())
    }

    fn on_pool(pool: PgPool, settings: &Settings) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                pruner: Pruner::new(settings.prune_interval, settings.prune_batch),
                prune_batch: settings.prune_batch,
            }),
        }
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Runs the crate's migrations that are not applied yet (serialized against other
    /// replicas by an advisory lock).
    ///
    /// # Errors
    ///
    /// [`StoreError::unavailable`] when the database fails or a migration's SQL does.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        crate::inbox::migrate::apply_postgres(&self.inner.pool)
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
        let token = ClaimToken::new_unique();
        let row = query(CLAIM)
            .bind(key_digest(key))
            .bind(token_bytes(token))
            .bind(millis(lease))
            .fetch_one(&self.inner.pool)
            .await
            .map_err(unavailable)?;
        if row.try_get::<bool, _>(0).map_err(unavailable)? {
            return Ok(Claim::Acquired(token));
        }
        let done: Option<bool> = row.try_get(1).map_err(unavailable)?;
        Ok(if done == Some(true) {
            Claim::Done
        } else {
            Claim::InFlight
        })
    }

    async fn complete_now(
        &self,
        key: &DedupKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let done = query(COMPLETE)
            .bind(key_digest(key))
            .bind(token_bytes(token))
            .bind(millis(ttl))
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
            .execute(&self.inner.pool)
            .await
            .map_err(unavailable)?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::claim_lost())
        }
    }

    async fn bind_now(
        &self,
        signature: &SignatureUse,
        ttl: Duration,
    ) -> Result<Binding, StoreError> {
        let digest = signature.signature_digest().to_vec();
        let wanted = signature.use_digest().to_vec();
        let row = query(BIND)
            .bind(&digest)
            .bind(&wanted)
            .bind(millis(ttl))
            .fetch_one(&self.inner.pool)
            .await
            .map_err(unavailable)?;
        if row.try_get::<bool, _>(0).map_err(unavailable)? {
            return Ok(Binding::First);
        }
        if let Some(bound) = row.try_get::<Option<Vec<u8>>, _>(1).map_err(unavailable)? {
            return Ok(held_binding(Some(bound), &wanted));
        }
        // Bound by a concurrent first use, which this statement's snapshot predates.
        let bound = query(BOUND_USE)
            .bind(&digest)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(unavailable)?
            .map(|row| row.try_get::<Vec<u8>, _>(0))
            .transpose()
            .map_err(unavailable)?;
        Ok(held_binding(bound, &wanted))
    }
}

impl PostgresStore {
    async fn bind_and_claim_now(
        &self,
        signature: &SignatureUse,
        binding_ttl: Duration,
        key: &DedupKey,
        lease: Duration,
    ) -> Result<(Binding, Option<Claim>), StoreError> {
        self.inner.pruner.start(&self.inner);
        let wanted = signature.use_digest().to_vec();
        let token = ClaimToken::new_unique();
        let row = query(BIND_AND_CLAIM)
            .bind(signature.signature_digest().to_vec())
            .bind(&wanted)
            .bind(millis(binding_ttl))
            .bind(key_digest(key))
            .bind(token_bytes(token))
            .bind(millis(lease))
            .fetch_one(&self.inner.pool)
            .await
            .map_err(unavailable)?;
        let binding = if row.try_get::<bool, _>(0).map_err(unavailable)? {
            Binding::First
        } else if let Some(bound) = row.try_get::<Option<Vec<u8>>, _>(1).map_err(unavailable)? {
            held_binding(Some(bound), &wanted)
        } else {
            // A concurrent first use: read the binding again, then claim on its own.
            let binding = self.bind_now(signature, binding_ttl).await?;
            if binding == Binding::Other {
                return Ok((binding, None));
            }
            return Ok((binding, Some(self.claim_now(key, lease).await?)));
        };
        if binding == Binding::Other {
            return Ok((binding, None));
        }
        if row.try_get::<bool, _>(2).map_err(unavailable)? {
            return Ok((binding, Some(Claim::Acquired(token))));
        }
        let done: Option<bool> = row.try_get(3).map_err(unavailable)?;
        let claim = if done == Some(true) {
            Claim::Done
        } else {
            Claim::InFlight
        };
        Ok((binding, Some(claim)))
    }
}

impl Prunable for Inner {
    async fn prune_batch(&self, batch: u32) -> Result<(u64, bool), StoreError> {
        let keys = query(PRUNE_KEYS)
            .bind(i64::from(batch))
            .execute(&self.pool)
            .await
            .map_err(unavailable)?
            .rows_affected();
        let bindings = query(PRUNE_BINDINGS)
            .bind(i64::from(batch))
            .execute(&self.pool)
            .await
            .map_err(unavailable)?
            .rows_affected();
        let full = keys.max(bindings) >= u64::from(batch);
        Ok((keys + bindings, full))
    }
}

impl PostgresStoreBuilder {
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
    /// `Duration::ZERO` turns it off (call [`PostgresStore::prune`] yourself).
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

    /// Connects to `url` (`postgres://…`) and runs the migrations.
    ///
    /// # Errors
    ///
    /// [`StoreError::unavailable`] when the URL cannot be read, the database does not
    /// answer, or a migration fails.
    pub async fn connect(self, url: &str) -> Result<PostgresStore, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(unavailable)?;
        self.connect_with(options).await
    }

    /// Connects with these options (for example a `search_path` to keep the tables in
    /// a schema of their own) and runs the migrations.
    ///
    /// # Errors
    ///
    /// [`StoreError::unavailable`] when the URL cannot be read, the database does not
    /// answer, or a migration fails.
    pub async fn connect_with(
        self,
        options: PgConnectOptions,
    ) -> Result<PostgresStore, StoreError> {
        let pool = PgPoolOptions::new()
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
    pub async fn from_pool(self, pool: PgPool) -> Result<PostgresStore, StoreError> {
        let store = PostgresStore::on_pool(pool, &self.settings);
        if self.settings.migrate_on_start {
            store.migrate().await?;
        }
        Ok(store)
    }
}

impl DedupStore for PostgresStore {
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

    /// One round trip (the `BIND_AND_CLAIM` statement) for a signed first delivery or a duplicate.
    fn bind_and_claim(
        &self,
        signature: &SignatureUse,
        binding_ttl: Duration,
        key: &DedupKey,
        lease: Duration,
    ) -> impl Future<Output = Result<(Binding, Option<Claim>), StoreError>> + Send {
        self.bind_and_claim_now(signature, binding_ttl, key, lease)
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The pool's options hold the password: only its size is shown.
        f.debug_struct("PostgresStore")
            .field("connections", &self.inner.pool.size())
            .field("prune_batch", &self.inner.prune_batch)
            .finish_non_exhaustive()
    }
}
