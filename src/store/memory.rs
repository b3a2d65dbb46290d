//! The in-process dedup store: sharded, bounded, expiring.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::{Future, ready};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{Claim, ClaimToken, DedupKey, DedupStore, StoreError, random_u64};

/// How many entries a [`MemoryStore`] keeps by default.
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

/// Marks an entry as done rather than claimed.
const DONE: u64 = 0;
/// How often each shard drops expired entries that nobody asked about again.
const SWEEP_EVERY_MS: u64 = 60_000;

/// The default dedup store: in this process's memory, for a single replica.
///
/// - **Concurrent**: keys are spread over mutex-guarded shards; no lock is held across
///   an `.await`.
/// - **Expiring**: claims end with their lease, completed keys with their TTL; expired
///   entries are dropped when touched, and each shard sweeps itself once a minute.
/// - **Bounded**: at most `max_entries` keys. When full, expired entries go first,
///   then the completed keys closest to expiry (a later duplicate of an evicted key
///   runs its handler again, so size the bound above a TTL's worth of callbacks).
///   In-flight claims are never evicted; a store full of them refuses new claims.
/// - **Compact**: a key is kept as a 128-bit keyed fingerprint of
///   `DedupKey::canonical_bytes`, not as strings.
///
/// Clones share the same entries, so one store can serve several receivers (for
/// example a tower mounting and an actix one in the same process). Several replicas
/// need a shared store such as Redis instead.
///
/// ```
/// use std::time::Duration;
/// use suno_callback::store::{Claim, DedupKey, DedupStore, MemoryStore};
/// use suno_callback::{Family, Outcome};
///
/// # tokio_test_block_on(async {
/// let store = MemoryStore::with_max_entries(10_000);
/// let key = DedupKey::new("task-1", Family::Music, "complete", Outcome::Success);
/// let Claim::Acquired(token) = store.claim(&key, Duration::from_secs(30)).await? else {
///     unreachable!("a fresh key is free")
/// };
/// assert_eq!(store.claim(&key, Duration::from_secs(30)).await?, Claim::InFlight);
/// store.complete(&key, token, Duration::from_secs(3600)).await?;
/// assert_eq!(store.claim(&key, Duration::from_secs(30)).await?, Claim::Done);
/// # Ok::<(), suno_callback::store::StoreError>(()) }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f) }
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Box<[Mutex<Shard>]>,
    shard_mask: usize,
    per_shard_capacity: usize,
    max_entries: usize,
    fingerprint_keys: (RandomState, RandomState),
    epoch: Instant,
    token_prefix: u64,
    next_token: AtomicU64,
    evicted: AtomicU64,
}

/// A 128-bit keyed hash of a [`DedupKey`]; the high half picks the shard, the low half
/// is the hash inside it.
type Fingerprint = u128;

#[derive(Clone, Copy)]
struct Entry {
    /// Milliseconds since the store's epoch when the lease or the TTL ends.
    deadline_ms: u64,
    /// The claim's token, or [`DONE`].
    token: u64,
}

struct Shard {
    entries: HashMap<Fingerprint, Entry, BuildHasherDefault<FingerprintHasher>>,
    next_sweep_ms: u64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store keeping at most [`DEFAULT_MAX_ENTRIES`] keys.
    pub fn new() -> Self {
        Self::with_max_entries(DEFAULT_MAX_ENTRIES)
    }

    /// A store keeping at most `max_entries` keys (at least 1).
    pub fn with_max_entries(max_entries: usize) -> Self {
        let max_entries = max_entries.max(1);
        let shard_count = if max_entries < 4096 {
            1
        } else {
            let cores = std::thread::available_parallelism().map_or(4, usize::from);
            (cores * 4).next_power_of_two()
        };
        let shards = (0..shard_count)
            .map(|_| {
                Mutex::new(Shard {
                    entries: HashMap::default(),
                    next_sweep_ms: SWEEP_EVERY_MS,
                })
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                shards,
                shard_mask: shard_count - 1,
                // Rounded down, so the shards together never hold more than the bound.
                per_shard_capacity: (max_entries / shard_count).max(1),
                max_entries,
                fingerprint_keys: (RandomState::new(), RandomState::new()),
                epoch: Instant::now(),
                token_prefix: random_u64(),
                next_token: AtomicU64::new(DONE + 1),
                evicted: AtomicU64::new(0),
            }),
        }
    }

    /// Keys held now, including expired ones not yet dropped.
    pub fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| lock(s).entries.len())
            .sum()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound on keys.
    pub fn max_entries(&self) -> usize {
        self.inner.max_entries
    }

    /// How many completed keys were evicted before their TTL to respect the bound.
    pub fn evicted(&self) -> u64 {
        self.inner.evicted.load(Ordering::Relaxed)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn fingerprint(&self, key: &DedupKey) -> Fingerprint {
        let bytes = key.canonical_bytes();
        let (high, low) = &self.inner.fingerprint_keys;
        (u128::from(high.hash_one(&bytes)) << 64) | u128::from(low.hash_one(&bytes))
    }

    fn shard(&self, fingerprint: Fingerprint) -> MutexGuard<'_, Shard> {
        // The high half of the fingerprint picks the shard: truncation is the point.
        #[allow(clippy::cast_possible_truncation)]
        let index = (fingerprint >> 64) as usize & self.inner.shard_mask;
        lock(&self.inner.shards[index])
    }

    /// Our tokens carry this store's prefix; the low half is the entry's token.
    fn own_token(&self, token: ClaimToken) -> Option<u64> {
        let value = token.as_u128();
        // Splitting the u128 into its halves.
        #[allow(clippy::cast_possible_truncation)]
        let (prefix, low) = ((value >> 64) as u64, value as u64);
        (prefix == self.inner.token_prefix && low != DONE).then_some(low)
    }

    fn claim_now(&self, key: &DedupKey, lease: Duration) -> Result<Claim, StoreError> {
        let fingerprint = self.fingerprint(key);
        let now = self.now_ms();
        let deadline_ms = now.saturating_add(millis(lease));
        let mut shard = self.shard(fingerprint);
        shard.sweep_if_due(now);
        if let Some(entry) = shard.entries.get(&fingerprint)
            && entry.deadline_ms > now
        {
            return Ok(if entry.token == DONE {
                Claim::Done
            } else {
                Claim::InFlight
            });
        }
        if !shard.entries.contains_key(&fingerprint)
            && shard.entries.len() >= self.inner.per_shard_capacity
        {
            let evicted = shard.make_room(now, self.inner.per_shard_capacity)?;
            self.inner.evicted.fetch_add(evicted, Ordering::Relaxed);
        }
        let token = self.inner.next_token.fetch_add(1, Ordering::Relaxed);
        shard
            .entries
            .insert(fingerprint, Entry { deadline_ms, token });
        Ok(Claim::Acquired(ClaimToken::from_u128(
            (u128::from(self.inner.token_prefix) << 64) | u128::from(token),
        )))
    }

    fn complete_now(
        &self,
        key: &DedupKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let own = self.own_token(token).ok_or_else(StoreError::claim_lost)?;
        let fingerprint = self.fingerprint(key);
        let now = self.now_ms();
        let mut shard = self.shard(fingerprint);
        match shard.entries.get_mut(&fingerprint) {
            Some(entry) if entry.token == own && entry.deadline_ms > now => {
                *entry = Entry {
                    deadline_ms: now.saturating_add(millis(ttl)),
                    token: DONE,
                };
                Ok(())
            }
            _ => Err(StoreError::claim_lost()),
        }
    }

    fn release_now(&self, key: &DedupKey, token: ClaimToken) -> Result<(), StoreError> {
        let own = self.own_token(token).ok_or_else(StoreError::claim_lost)?;
        let fingerprint = self.fingerprint(key);
        let now = self.now_ms();
        let mut shard = self.shard(fingerprint);
        match shard.entries.get(&fingerprint) {
            Some(entry) if entry.token == own && entry.deadline_ms > now => {
                shard.entries.remove(&fingerprint);
                Ok(())
            }
            _ => Err(StoreError::claim_lost()),
        }
    }
}

impl Shard {
    fn sweep_if_due(&mut self, now: u64) {
        if now >= self.next_sweep_ms {
            self.entries.retain(|_, entry| entry.deadline_ms > now);
            self.next_sweep_ms = now.saturating_add(SWEEP_EVERY_MS);
        }
    }

    /// Frees room for one more key: expired entries first, then the eighth of the
    /// completed keys closest to expiry. Returns how many unexpired keys were evicted.
    fn make_room(&mut self, now: u64, capacity: usize) -> Result<u64, StoreError> {
        self.entries.retain(|_, entry| entry.deadline_ms > now);
        if self.entries.len() < capacity {
            return Ok(0);
        }
        let mut done_deadlines: Vec<u64> = self
            .entries
            .values()
            .filter(|entry| entry.token == DONE)
            .map(|entry| entry.deadline_ms)
            .collect();
        if done_deadlines.is_empty() {
            return Err(StoreError::capacity_exhausted());
        }
        let evict_count = (capacity / 8).clamp(1, done_deadlines.len());
        let (_, cutoff, _) = done_deadlines.select_nth_unstable(evict_count - 1);
        let cutoff = *cutoff;
        let before = self.entries.len();
        self.entries
            .retain(|_, entry| entry.token != DONE || entry.deadline_ms > cutoff);
        Ok((before - self.entries.len()) as u64)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The shards hold plain data and run no user code under the lock, so a poisoned
/// lock still guards consistent entries.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The map's keys are already random 128-bit fingerprints; hashing them again would
/// only cost time. This hasher passes the low 64 bits through.
#[derive(Default)]
struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u128(&mut self, value: u128) {
        // The low half; the high half chose the shard.
        #[allow(clippy::cast_possible_truncation)]
        let low = value as u64;
        self.0 = low;
    }
}

impl DedupStore for MemoryStore {
    fn claim(
        &self,
        key: &DedupKey,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send {
        ready(self.claim_now(key, lease))
    }

    fn complete(
        &self,
        key: &DedupKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        ready(self.complete_now(key, token, ttl))
    }

    fn release(
        &self,
        key: &DedupKey,
        token: ClaimToken,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        ready(self.release_now(key, token))
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("len", &self.len())
            .field("max_entries", &self.inner.max_entries)
            .field("shards", &self.inner.shards.len())
            .field("evicted", &self.evicted())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Family, Outcome};

    const LEASE: Duration = Duration::from_secs(30);
    const TTL: Duration = Duration::from_secs(3600);

    fn acquire(store: &MemoryStore, key: &DedupKey) -> ClaimToken {
        match store.claim_now(key, LEASE).expect("claim") {
            Claim::Acquired(token) => token,
            other => panic!("expected Acquired, got {other:?}"),
        }
    }

    #[test]
    fn the_bound_evicts_the_oldest_completed_keys_first() {
        let store = MemoryStore::with_max_entries(64);
        for n in 0..64 {
            let key = DedupKey::new(
                format!("task-{n}"),
                Family::Music,
                "complete",
                Outcome::Success,
            );
            let token = acquire(&store, &key);
            // Later keys live longer, so the earliest are the first to go.
            let ttl = TTL + Duration::from_secs(n);
            store.complete_now(&key, token, ttl).expect("complete");
        }
        assert_eq!(store.len(), 64);
        let newcomer = DedupKey::new("task-new", Family::Music, "complete", Outcome::Success);
        acquire(&store, &newcomer);
        assert!(store.len() <= 64, "bound respected: {}", store.len());
        assert_eq!(store.evicted(), 8, "an eighth of the capacity evicted");
        let oldest = DedupKey::new("task-0", Family::Music, "complete", Outcome::Success);
        let newest = DedupKey::new("task-63", Family::Music, "complete", Outcome::Success);
        assert!(matches!(
            store.claim_now(&oldest, LEASE),
            Ok(Claim::Acquired(_))
        ));
        assert_eq!(store.claim_now(&newest, LEASE).expect("claim"), Claim::Done);
    }

    #[test]
    fn in_flight_claims_are_never_evicted() {
        let store = MemoryStore::with_max_entries(4);
        for n in 0..4 {
            acquire(
                &store,
                &DedupKey::new(
                    format!("task-{n}"),
                    Family::Music,
                    "first",
                    Outcome::Success,
                ),
            );
        }
        let refused = store
            .claim_now(
                &DedupKey::new("task-x", Family::Music, "first", Outcome::Success),
                LEASE,
            )
            .expect_err("full of claims");
        assert!(refused.is_capacity_exhausted());
        for n in 0..4 {
            let key = DedupKey::new(
                format!("task-{n}"),
                Family::Music,
                "first",
                Outcome::Success,
            );
            assert_eq!(
                store.claim_now(&key, LEASE).expect("claim"),
                Claim::InFlight
            );
        }
    }

    #[test]
    fn tokens_from_another_store_are_refused() {
        let (a, b) = (MemoryStore::new(), MemoryStore::new());
        let key = DedupKey::new("task", Family::Music, "text", Outcome::Success);
        let token = acquire(&a, &key);
        acquire(&b, &key);
        assert!(
            b.complete_now(&key, token, TTL)
                .expect_err("foreign")
                .is_claim_lost()
        );
        a.complete_now(&key, token, TTL).expect("own token");
    }

    #[test]
    fn keys_differ_by_task_and_by_stage() {
        let store = MemoryStore::new();
        acquire(
            &store,
            &DedupKey::new("ab", Family::Music, "c", Outcome::Success),
        );
        acquire(
            &store,
            &DedupKey::new("a", Family::Music, "bc", Outcome::Success),
        );
        acquire(
            &store,
            &DedupKey::new("ab", Family::Music, "complete", Outcome::Success),
        );
        assert_eq!(store.len(), 3);
    }
}
