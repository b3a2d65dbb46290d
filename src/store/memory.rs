//! The in-process dedup store: sharded, bounded, expiring.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::{Future, ready};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{
    Binding, Claim, ClaimToken, DedupKey, DedupStore, SignatureUse, StoreError, random_u64,
};

/// How many entries a [`MemoryStore`] keeps by default.
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

/// Marks an entry as done rather than claimed.
const DONE: u32 = 0;
/// Deadlines count sixteenths of a second since the store was made: 32 bits last 8.5
/// years, and a 400 ms lease is still told from a 900 ms wait.
const TICKS_PER_SECOND: u64 = 16;
/// How often each shard drops expired entries that nobody asked about again (a minute).
const SWEEP_EVERY: u32 = 60 * TICKS_PER_SECOND as u32;

/// The default dedup store: in this process's memory, for a single replica.
///
/// - **Concurrent**: keys are spread over mutex-guarded shards; no lock is held across
///   an `.await`.
/// - **Expiring**: claims end with their lease, completed keys with their TTL; expired
///   entries are dropped when touched, and each shard sweeps itself once a minute.
/// - **Bounded**: at most `max_entries` keys, and every one of them is held before
///   anything is evicted. When full, expired entries go first, then the completed
///   keys closest to expiry (a later duplicate of an evicted key runs its handler
///   again, so size the bound above a TTL's worth of callbacks). In-flight claims are
///   never evicted; a store full of them refuses new claims.
/// - **Signature bindings** ([`DedupStore::bind_signature`]) live in a side table with
///   the same bound, `max_entries`. Only verified signatures make bindings, one per
///   signed `(task_id, timestamp)`, so the table fills only with genuine callbacks.
///   When it is full, expired bindings go first, then the eighth closest to expiry
///   (counted by [`evicted_bindings`](Self::evicted_bindings)): a body swapped under
///   one of those signatures is no longer recognised as swapped, and is
///   deduplicated as usual instead.
/// - **Compact**: a key is kept in 16 bytes: a 64-bit keyed fingerprint of its four
///   fields (not the strings), a 32-bit deadline and a 32-bit claim token. With the
///   hash table's control byte and spare room, that is 28.6 bytes per key measured at
///   10 million keys, and at most about 43 right after a table has doubled
///   (`benches/memory_store.rs`). Two keys share a fingerprint with odds of 1 in
///   2<sup>64</sup>: with 10 million keys held, a new key is mistaken for a held one
///   (and answered as a duplicate) with odds of 5 in 10<sup>13</sup>, about once in 60
///   years at 1,000 new callbacks a second. The fingerprint's key is random per store,
///   so no sender can aim for a collision. A signature binding takes 24 bytes: a
///   64-bit fingerprint of the signature, 64 bits of its use and a 32-bit deadline.
/// - **Deadlines** count sixteenths of a second and are rounded up: a lease or a TTL
///   never ends early, and at most 1/16 s late. A process running for more than 8.5
///   years forgets its keys (their deadlines no longer fit in 32 bits).
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
    max_entries: usize,
    /// Keys held in all shards together (expired ones included until dropped).
    held: AtomicUsize,
    bindings: Mutex<Bindings>,
    evicted_bindings: AtomicU64,
    fingerprint_key: RandomState,
    epoch: Instant,
    token_prefix: u64,
    next_token: AtomicU32,
    evicted: AtomicU64,
}

/// A 64-bit keyed hash of a [`DedupKey`] (or of a signature); bits 32 and up pick the
/// shard, and the hash table uses it as its own hash.
type Fingerprint = u64;

/// Sixteenths of a second since the store's epoch (see [`TICKS_PER_SECOND`]).
type Ticks = u32;

/// One key's state: 8 bytes, 16 with its fingerprint in the table.
#[derive(Clone, Copy)]
struct Entry {
    /// When the lease or the TTL ends.
    deadline: Ticks,
    /// The claim's token, or [`DONE`].
    token: u32,
}

struct Shard {
    entries: HashMap<Fingerprint, Entry, BuildHasherDefault<FingerprintHasher>>,
    next_sweep: Ticks,
}

/// The signature bindings: one table, since a binding is made once per verified
/// callback, not once per request.
struct Bindings {
    entries: HashMap<Fingerprint, Bound, BuildHasherDefault<FingerprintHasher>>,
    next_sweep: Ticks,
}

#[derive(Clone, Copy)]
struct Bound {
    deadline: Ticks,
    /// A keyed hash of the use (family, `callbackType`, outcome, body).
    use_hash: u64,
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
                    next_sweep: SWEEP_EVERY,
                })
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                shards,
                shard_mask: shard_count - 1,
                max_entries,
                held: AtomicUsize::new(0),
                bindings: Mutex::new(Bindings {
                    entries: HashMap::default(),
                    next_sweep: SWEEP_EVERY,
                }),
                evicted_bindings: AtomicU64::new(0),
                fingerprint_key: RandomState::new(),
                epoch: Instant::now(),
                token_prefix: random_u64(),
                next_token: AtomicU32::new(DONE + 1),
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

    /// Signature bindings held now, including expired ones not yet dropped.
    pub fn bindings_len(&self) -> usize {
        lock(&self.inner.bindings).entries.len()
    }

    /// How many signature bindings were evicted before their TTL to respect the bound.
    pub fn evicted_bindings(&self) -> u64 {
        self.inner.evicted_bindings.load(Ordering::Relaxed)
    }

    /// Now, rounded down: a deadline of `now` or earlier has passed.
    fn now(&self) -> Ticks {
        to_ticks(self.inner.epoch.elapsed().as_nanos(), false)
    }

    /// Now, as [`now`](Self::now) reads it, and now plus `duration` rounded up (the
    /// lease or TTL never ends early), from one reading of the clock.
    fn now_and_deadline(&self, duration: Duration) -> (Ticks, Ticks) {
        now_and_deadline_at(self.inner.epoch.elapsed().as_nanos(), duration)
    }

    /// The key's four fields, hashed without copying them (`str` hashes end with a
    /// byte UTF-8 never uses, so the fields cannot run into each other).
    fn fingerprint(&self, key: &DedupKey) -> Fingerprint {
        self.inner.fingerprint_key.hash_one(key)
    }

    fn shard_index(&self, fingerprint: Fingerprint) -> usize {
        // Bits 32 and up pick the shard; the table's buckets use the low bits and its
        // tags the top 7, so no bit does two jobs. Truncation is the point.
        #[allow(clippy::cast_possible_truncation)]
        let index = (fingerprint >> 32) as usize & self.inner.shard_mask;
        index
    }

    /// The next claim token: never [`DONE`]. Wrapping after 4 billion claims is
    /// harmless: a token is checked against its key's entry, and only while the claim
    /// it came from could still be live.
    fn next_token(&self) -> u32 {
        loop {
            let token = self.inner.next_token.fetch_add(1, Ordering::Relaxed);
            if token != DONE {
                return token;
            }
        }
    }

    fn shard(&self, fingerprint: Fingerprint) -> MutexGuard<'_, Shard> {
        lock(&self.inner.shards[self.shard_index(fingerprint)])
    }

    /// Takes one of the `max_entries` places, if one is free.
    fn reserve(&self) -> bool {
        self.inner
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < self.inner.max_entries).then_some(held + 1)
            })
            .is_ok()
    }

    fn forget(&self, count: usize) {
        self.inner.held.fetch_sub(count, Ordering::AcqRel);
    }

    fn is_full(&self) -> bool {
        self.inner.held.load(Ordering::Acquire) >= self.inner.max_entries
    }

    /// Drops `shard`'s expired entries and, if the store is still full, evicts the
    /// eighth of its completed keys closest to expiry.
    fn make_room_in(&self, shard: &mut Shard, now: Ticks) {
        let expired = shard.drop_expired(now);
        self.forget(expired);
        if !self.is_full() {
            return;
        }
        let evicted = shard.evict_oldest_done();
        self.forget(evicted);
        self.inner
            .evicted
            .fetch_add(evicted as u64, Ordering::Relaxed);
    }

    fn sweep_if_due(&self, shard: &mut Shard, now: Ticks) {
        if now >= shard.next_sweep {
            let expired = shard.drop_expired(now);
            self.forget(expired);
            shard.next_sweep = now.saturating_add(SWEEP_EVERY);
        }
    }

    /// Our tokens carry this store's prefix; the low 32 bits are the entry's token.
    fn own_token(&self, token: ClaimToken) -> Option<u32> {
        let value = token.as_u128();
        // Splitting the u128 into its halves.
        #[allow(clippy::cast_possible_truncation)]
        let (prefix, low) = ((value >> 64) as u64, value as u64);
        let low = u32::try_from(low).ok()?;
        (prefix == self.inner.token_prefix && low != DONE).then_some(low)
    }

    fn claim_now(&self, key: &DedupKey, lease: Duration) -> Result<Claim, StoreError> {
        let fingerprint = self.fingerprint(key);
        let (now, deadline) = self.now_and_deadline(lease);
        let home = self.shard_index(fingerprint);
        // Room is made in the key's own shard first; if it has nothing to evict (all
        // its keys in flight), in the others, and the claim is tried once more.
        for attempt in 0..2 {
            let mut shard = lock(&self.inner.shards[home]);
            self.sweep_if_due(&mut shard, now);
            let held = shard.entries.get(&fingerprint).copied();
            match held {
                Some(entry) if entry.deadline > now => {
                    return Ok(if entry.token == DONE {
                        Claim::Done
                    } else {
                        Claim::InFlight
                    });
                }
                // An expired entry is taken over in place: no new place needed.
                Some(_) => {}
                None => {
                    if !self.reserve() {
                        self.make_room_in(&mut shard, now);
                        if !self.reserve() {
                            drop(shard);
                            if attempt == 0 {
                                self.make_room_elsewhere(home, now);
                                continue;
                            }
                            return Err(StoreError::capacity_exhausted());
                        }
                    }
                }
            }
            let token = self.next_token();
            shard.entries.insert(fingerprint, Entry { deadline, token });
            return Ok(Claim::Acquired(ClaimToken::from_u128(
                (u128::from(self.inner.token_prefix) << 64) | u128::from(token),
            )));
        }
        Err(StoreError::capacity_exhausted())
    }

    /// Makes room in the shards other than `home`, one lock at a time, until a place
    /// is free.
    fn make_room_elsewhere(&self, home: usize, now: Ticks) {
        for (index, shard) in self.inner.shards.iter().enumerate() {
            if index == home {
                continue;
            }
            self.make_room_in(&mut lock(shard), now);
            if !self.is_full() {
                return;
            }
        }
    }

    fn complete_now(
        &self,
        key: &DedupKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let own = self.own_token(token).ok_or_else(StoreError::claim_lost)?;
        let fingerprint = self.fingerprint(key);
        let (now, deadline) = self.now_and_deadline(ttl);
        let mut shard = self.shard(fingerprint);
        match shard.entries.get_mut(&fingerprint) {
            Some(entry) if entry.token == own && entry.deadline > now => {
                *entry = Entry {
                    deadline,
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
        let now = self.now();
        let mut shard = self.shard(fingerprint);
        match shard.entries.get(&fingerprint) {
            Some(entry) if entry.token == own && entry.deadline > now => {
                shard.entries.remove(&fingerprint);
                self.forget(1);
                Ok(())
            }
            _ => Err(StoreError::claim_lost()),
        }
    }
}

impl Shard {
    /// Drops the expired entries; returns how many.
    fn drop_expired(&mut self, now: Ticks) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, entry| entry.deadline > now);
        before - self.entries.len()
    }

    /// Evicts the eighth of this shard's completed keys closest to expiry (at least
    /// one, if it has any); returns how many.
    fn evict_oldest_done(&mut self) -> usize {
        let mut done_deadlines: Vec<Ticks> = self
            .entries
            .values()
            .filter(|entry| entry.token == DONE)
            .map(|entry| entry.deadline)
            .collect();
        if done_deadlines.is_empty() {
            return 0;
        }
        let evict_count = (self.entries.len() / 8).clamp(1, done_deadlines.len());
        let (_, cutoff, _) = done_deadlines.select_nth_unstable(evict_count - 1);
        let cutoff = *cutoff;
        let before = self.entries.len();
        self.entries
            .retain(|_, entry| entry.token != DONE || entry.deadline > cutoff);
        before - self.entries.len()
    }
}

impl MemoryStore {
    fn signature_fingerprint(&self, signature: &SignatureUse) -> (Fingerprint, u64) {
        let parts = ("signature", signature.task_id(), signature.timestamp());
        let hasher = &self.inner.fingerprint_key;
        let key = hasher.hash_one(parts);
        let use_hash = hasher.hash_one((
            "use",
            signature.callback_type(),
            signature.is_failure(),
            signature.family().map(crate::Family::as_str),
            signature.body(),
        ));
        (key, use_hash)
    }

    fn bind_now(&self, signature: &SignatureUse, ttl: Duration) -> Binding {
        let (key, use_hash) = self.signature_fingerprint(signature);
        let (now, deadline) = self.now_and_deadline(ttl);
        let mut bindings = lock(&self.inner.bindings);
        if now >= bindings.next_sweep {
            bindings.entries.retain(|_, bound| bound.deadline > now);
            bindings.next_sweep = now.saturating_add(SWEEP_EVERY);
        }
        match bindings.entries.get(&key) {
            Some(bound) if bound.deadline > now => {
                return if bound.use_hash == use_hash {
                    Binding::Same
                } else {
                    Binding::Other
                };
            }
            Some(_) => {}
            None => {
                if bindings.entries.len() >= self.inner.max_entries {
                    let evicted = bindings.make_room(now, self.inner.max_entries);
                    self.inner
                        .evicted_bindings
                        .fetch_add(evicted, Ordering::Relaxed);
                }
            }
        }
        bindings.entries.insert(key, Bound { deadline, use_hash });
        Binding::First
    }
}

impl Bindings {
    /// Drops the expired bindings, then, if still full, the eighth closest to expiry.
    /// Returns how many unexpired bindings were evicted.
    fn make_room(&mut self, now: Ticks, max: usize) -> u64 {
        self.entries.retain(|_, bound| bound.deadline > now);
        let len = self.entries.len();
        if len < max {
            return 0;
        }
        let mut deadlines: Vec<Ticks> = self.entries.values().map(|b| b.deadline).collect();
        let evict_count = (len / 8).clamp(1, len);
        let (_, cutoff, _) = deadlines.select_nth_unstable(evict_count - 1);
        let cutoff = *cutoff;
        self.entries.retain(|_, bound| bound.deadline > cutoff);
        (len - self.entries.len()) as u64
    }
}

/// Nanoseconds as ticks, rounded up or down, saturating at `Ticks::MAX`.
fn to_ticks(nanos: u128, round_up: bool) -> Ticks {
    let scaled = nanos.saturating_mul(u128::from(TICKS_PER_SECOND));
    let ticks = if round_up {
        scaled.div_ceil(1_000_000_000)
    } else {
        scaled / 1_000_000_000
    };
    Ticks::try_from(ticks).unwrap_or(Ticks::MAX)
}

/// [`MemoryStore::now_and_deadline`] at `elapsed` nanoseconds since the store's epoch:
/// now rounded down, now plus `duration` rounded up.
fn now_and_deadline_at(elapsed: u128, duration: Duration) -> (Ticks, Ticks) {
    let deadline = to_ticks(elapsed.saturating_add(duration.as_nanos()), true);
    (to_ticks(elapsed, false), deadline)
}

/// The shards hold plain data and run no user code under the lock, so a poisoned
/// lock still guards consistent entries.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The map's keys are already random 64-bit fingerprints; hashing them again would
/// only cost time. This hasher passes them through.
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

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
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

    fn bind_signature(
        &self,
        signature: &SignatureUse,
        ttl: Duration,
    ) -> impl Future<Output = Result<Binding, StoreError>> + Send {
        ready(Ok(self.bind_now(signature, ttl)))
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
    fn a_remembered_key_takes_sixteen_bytes_in_its_table() {
        assert_eq!(std::mem::size_of::<(Fingerprint, Entry)>(), 16);
        assert_eq!(std::mem::size_of::<(Fingerprint, Bound)>(), 24);
    }

    #[test]
    fn deadlines_round_up_and_now_rounds_down() {
        let tick = 1_000_000_000 / u128::from(TICKS_PER_SECOND);
        assert_eq!(to_ticks(0, true), 0);
        assert_eq!(to_ticks(1, true), 1, "a lease never ends early");
        assert_eq!(to_ticks(tick, true), 1);
        assert_eq!(to_ticks(tick + 1, true), 2);
        assert_eq!(to_ticks(tick - 1, false), 0);
        assert_eq!(to_ticks(tick, false), 1);
        assert_eq!(to_ticks(u128::MAX, true), Ticks::MAX, "saturates");
        // A deadline made now for a lease has not passed now.
        let store = MemoryStore::new();
        let (now, deadline) = store.now_and_deadline(Duration::from_nanos(1));
        assert!(deadline > now);
        // One reading of the clock: now rounded down, the deadline rounded up.
        let nanos = |d: Duration| d.as_nanos();
        let one_ns = Duration::from_nanos(1);
        assert_eq!(
            now_and_deadline_at(tick, one_ns),
            (1, 2),
            "on a tick boundary"
        );
        assert_eq!(now_and_deadline_at(tick - 1, one_ns), (0, 1));
        assert_eq!(now_and_deadline_at(tick + 1, Duration::ZERO), (1, 2));
        assert_eq!(now_and_deadline_at(tick, Duration::ZERO), (1, 1));
        let second = Duration::from_secs(1);
        assert_eq!(
            now_and_deadline_at(3 * tick + 1, second),
            (3, to_ticks(3 * tick + 1 + nanos(second), true))
        );
    }

    #[test]
    fn tokens_skip_the_done_marker_when_they_wrap() {
        let store = MemoryStore::new();
        store.inner.next_token.store(u32::MAX, Ordering::Relaxed);
        assert_eq!(store.next_token(), u32::MAX);
        assert_eq!(store.next_token(), DONE + 1);
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
    fn the_store_holds_all_its_keys_before_evicting_any() {
        // Many shards, unevenly filled: the bound is the store's, not each shard's.
        let store = MemoryStore::with_max_entries(100_000);
        for n in 0..100_000 {
            let key = DedupKey::new(
                format!("task-{n}"),
                Family::Music,
                "complete",
                Outcome::Success,
            );
            let token = acquire(&store, &key);
            store.complete_now(&key, token, TTL).expect("complete");
        }
        assert_eq!(store.evicted(), 0, "nothing evicted below the bound");
        assert_eq!(store.len(), 100_000);
        acquire(
            &store,
            &DedupKey::new("one-more", Family::Music, "complete", Outcome::Success),
        );
        assert!(store.evicted() > 0);
        assert!(store.len() <= 100_000, "bound respected: {}", store.len());
    }

    #[test]
    fn a_full_shard_of_claims_borrows_room_from_the_others() {
        let store = MemoryStore::with_max_entries(8192);
        // Fill the store with completed keys, then claim keys until every shard has
        // had to make room: no claim is refused while completed keys remain anywhere.
        for n in 0..8192 {
            let key = DedupKey::new(
                format!("done-{n}"),
                Family::Music,
                "complete",
                Outcome::Success,
            );
            let token = acquire(&store, &key);
            store.complete_now(&key, token, TTL).expect("complete");
        }
        for n in 0..4096 {
            acquire(
                &store,
                &DedupKey::new(
                    format!("claim-{n}"),
                    Family::Music,
                    "first",
                    Outcome::Success,
                ),
            );
        }
        assert!(store.len() <= 8192);
    }

    #[test]
    fn signatures_bind_to_their_first_use_within_the_bound() {
        let store = MemoryStore::with_max_entries(16);
        let ttl = Duration::from_secs(1800);
        let genuine = SignatureUse::new("task", "1700000000", "text", false);
        assert_eq!(store.bind_now(&genuine, ttl), Binding::First);
        assert_eq!(store.bind_now(&genuine, ttl), Binding::Same);
        for (callback_type, failure) in [("complete", false), ("text", true), ("first", true)] {
            let forged = SignatureUse::new("task", "1700000000", callback_type, failure);
            assert_eq!(store.bind_now(&forged, ttl), Binding::Other);
        }
        assert_eq!(store.bindings_len(), 1, "forgeries mint no binding");
        for n in 0..64 {
            let other = SignatureUse::new(format!("task-{n}"), "1700000000", "text", false);
            assert_eq!(store.bind_now(&other, ttl), Binding::First);
        }
        assert!(store.bindings_len() <= 16, "{}", store.bindings_len());
        assert!(store.evicted_bindings() > 0);
        assert_eq!(store.len(), 0, "bindings take no dedup place");
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
