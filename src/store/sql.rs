//! What the two SQL stores share (features `postgres`, `sqlite`): how a key, a token
//! and a signature are stored, the settings, the background pruning, and
//! [`SqlStore`], the store of an inbox's own database.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{Binding, Claim, ClaimToken, DedupKey, DedupStore, SignatureUse, StoreError};

/// How often a SQL store deletes its expired rows by default (a minute).
pub const DEFAULT_PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// How many expired rows one pruning statement deletes by default.
pub const DEFAULT_PRUNE_BATCH: u32 = 500;
/// How long a SQL store waits for a pooled connection by default before a call
/// counts as unavailable: longer than the receiver's own store timeout (2 s by
/// default), which then decides.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// The size of a SQL store's own connection pool by default.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;

/// At most this many batches per pruning run; the rest waits for the next run.
const PRUNE_MAX_BATCHES: u32 = 200;

/// The primary key of a dedup key's row: SHA-256 of its canonical bytes (32 bytes,
/// whatever the task id's length).
pub(super) fn key_digest(key: &DedupKey) -> Vec<u8> {
    Sha256::digest(key.canonical_bytes()).to_vec()
}

/// A claim token as stored: 16 bytes, big-endian.
pub(super) fn token_bytes(token: ClaimToken) -> Vec<u8> {
    token.as_u128().to_be_bytes().to_vec()
}

/// Milliseconds as the tables store them, saturating.
pub(super) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// What a lookup of a signature's binding found, for the bind that did not make it.
/// Absent means it expired or was pruned between the two statements; it is counted
/// as another use, so a race never lets a body through unbound.
pub(super) fn held_binding(bound: Option<Vec<u8>>, wanted: &[u8]) -> Binding {
    match bound {
        Some(bound) if bound == wanted => Binding::Same,
        _ => Binding::Other,
    }
}

pub(super) fn unavailable(error: sqlx::Error) -> StoreError {
    StoreError::unavailable(error)
}

/// The settings both SQL stores' builders take.
#[derive(Clone, Debug)]
pub(super) struct Settings {
    pub(super) max_connections: u32,
    pub(super) acquire_timeout: Duration,
    pub(super) prune_interval: Duration,
    pub(super) prune_batch: u32,
    pub(super) migrate_on_start: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            prune_interval: DEFAULT_PRUNE_INTERVAL,
            prune_batch: DEFAULT_PRUNE_BATCH,
            migrate_on_start: true,
        }
    }
}

/// A store whose expired rows a background task deletes.
pub(super) trait Prunable: Send + Sync + 'static {
    /// Deletes at most `batch` expired rows of each table; returns how many in all,
    /// and whether a table gave a full batch (so more may be left).
    fn prune_batch(
        &self,
        batch: u32,
    ) -> impl Future<Output = Result<(u64, bool), StoreError>> + Send;
}

/// Runs pruning: once a store is first used (on its runtime), a task that deletes the
/// expired rows every `interval`, in batches, and ends with the store.
#[derive(Debug)]
pub(super) struct Pruner {
    started: AtomicBool,
    interval: Duration,
    batch: u32,
}

impl Pruner {
    pub(super) fn new(interval: Duration, batch: u32) -> Self {
        Self {
            started: AtomicBool::new(false),
            interval,
            batch: batch.max(1),
        }
    }

    /// Starts the pruning task of `store` if it is not running yet (and pruning is
    /// on). Called from the store's calls, so it runs on the application's runtime.
    pub(super) fn start<P: Prunable>(&self, store: &Arc<P>) {
        if self.interval.is_zero() || self.started.swap(true, Ordering::Relaxed) {
            return;
        }
        let store = Arc::downgrade(store);
        let (interval, batch) = (self.interval, self.batch);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(store) = Weak::upgrade(&store) else {
                    return;
                };
                match prune(&*store, batch).await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::debug!(pruned, "expired dedup rows deleted"),
                    Err(error) => tracing::debug!(%error, "pruning the dedup store failed"),
                }
            }
        });
    }
}

/// Deletes the expired rows, one small batch per statement, pausing between batches.
pub(super) async fn prune<P: Prunable>(store: &P, batch: u32) -> Result<u64, StoreError> {
    let batch = batch.max(1);
    crate::batches::delete_in_batches(PRUNE_MAX_BATCHES, || store.prune_batch(batch)).await
}

/// The dedup store in an inbox's own database: [`SqliteStore`](super::SqliteStore) or
/// [`PostgresStore`](super::PostgresStore), on the inbox's connection pool. Made by
/// [`Inbox::dedup_store`](crate::inbox::Inbox::dedup_store).
///
/// ```no_run
/// use suno_callback::SunoCallbacks;
/// use suno_callback::inbox::Inbox;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let inbox = Inbox::builder().connect("postgres://127.0.0.1:5432/app").await?;
/// let callbacks = SunoCallbacks::builder()
///     .hmac_key("webhook-hmac-key")
///     // Signatures are bound in the inbox's database: no other engine needed.
///     .store(inbox.dedup_store())
///     .inbox(inbox.clone())
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SqlStore {
    /// On SQLite.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    Sqlite(super::SqliteStore),
    /// On PostgreSQL.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    Postgres(super::PostgresStore),
}

/// Calls the same method on whichever store is in use.
macro_rules! route {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            #[cfg(feature = "sqlite")]
            SqlStore::Sqlite($store) => $call,
            #[cfg(feature = "postgres")]
            SqlStore::Postgres($store) => $call,
        }
    };
}

impl SqlStore {
    /// Deletes the expired rows now (the store also does it in the background);
    /// returns how many.
    ///
    /// # Errors
    ///
    /// [`StoreError::unavailable`] when the database fails; rows deleted before the
    /// failure stay deleted.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        route!(self, store => store.prune().await)
    }
}

impl DedupStore for SqlStore {
    async fn claim(&self, key: &DedupKey, lease: Duration) -> Result<Claim, StoreError> {
        route!(self, store => store.claim(key, lease).await)
    }

    async fn complete(
        &self,
        key: &DedupKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        route!(self, store => store.complete(key, token, ttl).await)
    }

    async fn release(&self, key: &DedupKey, token: ClaimToken) -> Result<(), StoreError> {
        route!(self, store => store.release(key, token).await)
    }

    async fn bind_signature(
        &self,
        signature: &SignatureUse,
        ttl: Duration,
    ) -> Result<Binding, StoreError> {
        route!(self, store => store.bind_signature(signature, ttl).await)
    }

    async fn bind_and_claim(
        &self,
        signature: &SignatureUse,
        binding_ttl: Duration,
        key: &DedupKey,
        lease: Duration,
    ) -> Result<(Binding, Option<Claim>), StoreError> {
        route!(self, store => store.bind_and_claim(signature, binding_ttl, key, lease).await)
    }
}
