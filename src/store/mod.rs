//! Where the pipeline remembers which callbacks it has taken on (stages 4 and 6).
//!
//! A [`DedupStore`] holds one entry per [`DedupKey`], `(task_id, family, stage,
//! outcome)`. The pipeline
//! [claims](DedupStore::claim) the key before running a handler: the claim is one
//! atomic insert-if-absent with a lease, so of two concurrent deliveries exactly one
//! gets [`Claim::Acquired`]. After the handler it either
//! [completes](DedupStore::complete) the key (kept for a TTL, later deliveries are
//! duplicates) or [releases](DedupStore::release) it (the sender's retry runs the
//! handler again). Both take the [`ClaimToken`] the claim returned, so a caller whose
//! lease has expired, and whose key may now belong to someone else, is refused.
//!
//! It also [binds each signature](DedupStore::bind_signature) to the first callback
//! that presented it: the sender signs only `(task_id, timestamp)`, so the body sent
//! with a signature can be swapped by anyone who captured one request; the binding
//! makes a swapped body fail instead of taking the genuine callback's dedup key.
//!
//! [`MemoryStore`] is the default. Several replicas share `RedisStore` (feature
//! `redis`), `PostgresStore` (feature `postgres`), or, on one machine, `SqliteStore`
//! (feature `sqlite`); an inbox's own database gives one with
//! `Inbox::dedup_store`. Every store passes the same conformance suite
//! (`suno_callback::testing::conformance`, feature `testing`).

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

use bytes::Bytes;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use self::memory::{DEFAULT_MAX_ENTRIES, MemoryStore};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use self::postgres::{PostgresStore, PostgresStoreBuilder};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{DEFAULT_CALL_TIMEOUT, DEFAULT_KEY_PREFIX, RedisStore, RedisStoreBuilder};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use self::sql::{
    DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_PRUNE_BATCH, DEFAULT_PRUNE_INTERVAL,
    SqlStore,
};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use self::sqlite::{SqliteStore, SqliteStoreBuilder};
use crate::error::BoxError;
use crate::event::{Family, Outcome};
use crate::metrics;

/// The identity of one callback: its task, its [`Family`], its stage and its
/// [`Outcome`].
///
/// The stage is the `callbackType` for music and lyrics (and bodies of unknown
/// family), the `status` for voice, and `""` for the other families. Keys of two
/// families never collide, and a failure never shares a key with a success of the
/// same task and stage. Stores key their entries by [`canonical_bytes`]
/// (`DedupKey::canonical_bytes`), an unambiguous encoding of the four fields.
///
/// ```
/// use suno_callback::store::DedupKey;
/// use suno_callback::{Family, Outcome};
///
/// let key = DedupKey::new("2fac7b1e", Family::Music, "complete", Outcome::Success);
/// assert_eq!(key.task_id(), "2fac7b1e");
/// assert_eq!((key.family(), key.stage(), key.outcome()), (Family::Music, "complete", Outcome::Success));
/// let failure = DedupKey::new("2fac7b1e", Family::Music, "complete", Outcome::Failure);
/// assert_ne!(key.canonical_bytes(), failure.canonical_bytes());
/// ```
///
/// [`canonical_bytes`]: DedupKey::canonical_bytes
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DedupKey {
    task_id: String,
    family: Family,
    stage: String,
    outcome: Outcome,
}

impl DedupKey {
    /// The key for a task, family, stage and outcome.
    pub fn new(
        task_id: impl Into<String>,
        family: Family,
        stage: impl Into<String>,
        outcome: Outcome,
    ) -> Self {
        Self {
            task_id: task_id.into(),
            family,
            stage: stage.into(),
            outcome,
        }
    }

    /// The key the receiver dedupes `event` by, whether it came as a callback or from a
    /// poll of the task's details: for a receiver of your own (built on
    /// [`HmacVerifier::verify_event`](crate::verify::HmacVerifier::verify_event)), the
    /// key to dedupe by.
    ///
    /// A task fails once, and its failure makes one key whichever words report it: the
    /// failure of a known family is keyed under the stage the provider's task details
    /// give it (music `error`, lyrics `complete`, voice `fail`, the other families
    /// `""`), so a voice `processing_validate_fail` callback and the poll's `fail` are
    /// one key. Successes keep their stage.
    ///
    /// ```
    /// use suno_callback::store::DedupKey;
    /// use suno_callback::{CallbackEvent, Family};
    ///
    /// let event = CallbackEvent::from_json(
    ///     r#"{"code":200,"msg":"failed","data":{"taskId":"v1","status":"processing_validate_fail"}}"#,
    /// )?;
    /// let key = DedupKey::of_event(&event);
    /// assert_eq!((key.family(), key.stage()), (Family::Voice, "fail"));
    /// # Ok::<(), suno_callback::ParseError>(())
    /// ```
    pub fn of_event(event: &crate::CallbackEvent) -> Self {
        Self::of(
            event.task_id(),
            event.family(),
            event.stage().as_str(),
            event.outcome(),
        )
    }

    /// [`of_event`](Self::of_event) from the event's parts.
    pub(crate) fn of(task_id: &str, family: Family, stage: &str, outcome: Outcome) -> Self {
        let stage = match (outcome, family) {
            (Outcome::Success, _) | (_, Family::Unknown) => stage,
            (Outcome::Failure, Family::Music) => "error",
            (Outcome::Failure, Family::Lyrics) => "complete",
            (Outcome::Failure, Family::Voice) => "fail",
            (Outcome::Failure, _) => "",
        };
        Self::new(task_id, family, stage, outcome)
    }

    /// The task id.
    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    /// The family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The stage (`""` for families without stages, or a body without one).
    pub fn stage(&self) -> &str {
        &self.stage
    }

    /// Success or failure.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The key as bytes, for stores that hash or persist it: a version byte, then each
    /// field (task id, family name, stage, outcome name) as an 8-byte big-endian
    /// length and its bytes, so two different keys never give the same bytes.
    ///
    /// ```
    /// use suno_callback::store::DedupKey;
    /// use suno_callback::{Family, Outcome};
    ///
    /// let a = DedupKey::new("ab", Family::Wav, "c", Outcome::Success);
    /// let b = DedupKey::new("a", Family::Wav, "bc", Outcome::Success);
    /// assert_ne!(a.canonical_bytes(), b.canonical_bytes());
    /// ```
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let fields: [&[u8]; 4] = [
            self.task_id.as_bytes(),
            self.family.as_str().as_bytes(),
            self.stage.as_bytes(),
            self.outcome.as_str().as_bytes(),
        ];
        let len = 1 + fields.iter().map(|field| 8 + field.len()).sum::<usize>();
        let mut bytes = Vec::with_capacity(len);
        bytes.push(CANONICAL_VERSION);
        for field in fields {
            bytes.extend_from_slice(&(field.len() as u64).to_be_bytes());
            bytes.extend_from_slice(field);
        }
        bytes
    }
}

/// The first byte of [`DedupKey::canonical_bytes`]; changes if the encoding does.
const CANONICAL_VERSION: u8 = 2;

/// Proof of a claim, handed back to [`complete`](DedupStore::complete) and
/// [`release`](DedupStore::release).
///
/// ```
/// use suno_callback::store::ClaimToken;
///
/// let a = ClaimToken::new_unique();
/// let b = ClaimToken::new_unique();
/// assert_ne!(a, b);
/// assert_eq!(ClaimToken::from_u128(a.as_u128()), a);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClaimToken(u128);

impl ClaimToken {
    /// A token no other call in any process is expected to produce: a random
    /// per-process prefix and a counter.
    pub fn new_unique() -> Self {
        static PREFIX: OnceLock<u64> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        let prefix = *PREFIX.get_or_init(random_u64);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self((u128::from(prefix) << 64) | u128::from(count))
    }

    /// A token from its numeric form (for stores that persist it).
    pub const fn from_u128(value: u128) -> Self {
        Self(value)
    }

    /// The numeric form.
    pub const fn as_u128(self) -> u128 {
        self.0
    }
}

/// 64 random bits from the operating system; if that fails, from the standard
/// library's randomly keyed hasher (seeded from the OS as well where it can be).
pub(crate) fn random_u64() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        use std::hash::{BuildHasher, Hasher};
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    })
}

impl fmt::Debug for ClaimToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClaimToken({:032x})", self.0)
    }
}

impl fmt::Display for ClaimToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// What a claim found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key was free (or its lease had expired): the caller owns it until the lease
    /// ends, and must complete or release it with this token.
    Acquired(ClaimToken),
    /// Someone else holds an unexpired claim: the callback is being processed.
    InFlight,
    /// The callback was processed and is remembered until its TTL ends.
    Done,
}

/// One use of a signature: the signed `(task_id, timestamp)`, and what the request
/// that presented it claimed to be (its family, `callbackType`, whether it reports a
/// failure, and a digest of its body). See [`DedupStore::bind_signature`].
///
/// ```
/// use suno_callback::store::SignatureUse;
///
/// let genuine = SignatureUse::new("task-1", "1700000000", "text", false);
/// let forged = SignatureUse::new("task-1", "1700000000", "complete", false);
/// assert_eq!(genuine.signature_digest(), forged.signature_digest());
/// assert_ne!(genuine.use_digest(), forged.use_digest());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SignatureUse {
    task_id: String,
    timestamp: String,
    callback_type: String,
    failure: bool,
    family: Option<Family>,
    body: Option<Bytes>,
}

impl fmt::Debug for SignatureUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureUse")
            .field("task_id", &self.task_id)
            .field("timestamp", &self.timestamp)
            .field("callback_type", &self.callback_type)
            .field("failure", &self.failure)
            .field("family", &self.family)
            .field("body_len", &self.body.as_ref().map(Bytes::len))
            .finish()
    }
}

impl SignatureUse {
    /// The use of the signature over `task_id` and `timestamp` (the exact text of
    /// `X-Webhook-Timestamp`) by a request with this `callbackType` and outcome.
    pub fn new(
        task_id: impl Into<String>,
        timestamp: impl Into<String>,
        callback_type: impl Into<String>,
        failure: bool,
    ) -> Self {
        Self {
            task_id: task_id.into(),
            timestamp: timestamp.into(),
            callback_type: callback_type.into(),
            failure,
            family: None,
            body: None,
        }
    }

    /// The same use, by a request with this body: another body presenting the
    /// signature, even of the same family, stage and outcome, is then another use. The
    /// body is shared, not copied.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use suno_callback::store::SignatureUse;
    ///
    /// let genuine = SignatureUse::new("task-1", "1700000000", "complete", false)
    ///     .with_body(Bytes::from_static(br#"{"data":{"audio_url":"https://cdn.example/a.mp3"}}"#));
    /// let forged = SignatureUse::new("task-1", "1700000000", "complete", false)
    ///     .with_body(Bytes::from_static(br#"{"data":{"audio_url":"https://evil.example/a.mp3"}}"#));
    /// assert_eq!(genuine.signature_digest(), forged.signature_digest());
    /// assert_ne!(genuine.use_digest(), forged.use_digest());
    /// ```
    #[must_use]
    pub fn with_body(mut self, body: Bytes) -> Self {
        self.body = Some(body);
        self
    }

    /// The body the request presented, if given. A store that keeps its bindings in
    /// one process may hash it with a secret key of its own, as `MemoryStore` does; a
    /// store shared by replicas needs a digest they agree on:
    /// [`use_digest`](Self::use_digest), which includes [`body_digest`](Self::body_digest).
    pub fn body(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }

    /// The first 16 bytes of the SHA-256 of the body the request presented, if given.
    /// Computed on each call.
    pub fn body_digest(&self) -> Option<[u8; 16]> {
        use sha2::{Digest, Sha256};
        let body = self.body.as_ref()?;
        let full: [u8; 32] = Sha256::digest(body).into();
        let mut kept = [0u8; 16];
        kept.copy_from_slice(&full[..16]);
        Some(kept)
    }

    /// The same use, by a request of `family`: a body of another family presenting the
    /// signature is then another use too.
    ///
    /// ```
    /// use suno_callback::Family;
    /// use suno_callback::store::SignatureUse;
    ///
    /// let wav = SignatureUse::new("task-1", "1700000000", "", false).with_family(Family::Wav);
    /// let video = SignatureUse::new("task-1", "1700000000", "", false).with_family(Family::Video);
    /// assert_eq!(wav.signature_digest(), video.signature_digest());
    /// assert_ne!(wav.use_digest(), video.use_digest());
    /// ```
    #[must_use]
    pub fn with_family(mut self, family: Family) -> Self {
        self.family = Some(family);
        self
    }

    /// The family the request presented, if given.
    pub fn family(&self) -> Option<Family> {
        self.family
    }

    /// The signed task id.
    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    /// The signed timestamp, as sent.
    pub fn timestamp(&self) -> &str {
        &self.timestamp
    }

    /// The `callbackType` the request presented.
    pub fn callback_type(&self) -> &str {
        &self.callback_type
    }

    /// Whether the request reported a failure.
    pub fn is_failure(&self) -> bool {
        self.failure
    }

    /// SHA-256 of what is signed, `(task_id, timestamp)`, length-prefixed so no two
    /// pairs share it: the key a store binds.
    pub fn signature_digest(&self) -> [u8; 32] {
        digest(b"signature", &self.task_id, self.timestamp.as_bytes())
    }

    /// SHA-256 of what the request presented, `(family, callbackType, outcome, body
    /// digest)`: the value a store binds to the signature.
    pub fn use_digest(&self) -> [u8; 32] {
        let outcome: &str = if self.failure { "failure" } else { "success" };
        let family = self.family.map_or("", Family::as_str);
        let mut presented = Vec::with_capacity(family.len() + outcome.len() + 18);
        presented.extend_from_slice(outcome.as_bytes());
        presented.push(b'/');
        presented.extend_from_slice(family.as_bytes());
        if let Some(body) = self.body_digest() {
            // After the family, which is ASCII: the separator cannot occur in it.
            presented.push(0);
            presented.extend_from_slice(&body);
        }
        digest(b"use", &self.callback_type, &presented)
    }
}

fn digest(domain: &[u8], first: &str, second: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(domain);
    hasher.update((first.len() as u64).to_be_bytes());
    hasher.update(first.as_bytes());
    hasher.update(second);
    hasher.finalize().into()
}

/// What [`DedupStore::bind_signature`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// The signature was not bound: it is now bound to this use.
    First,
    /// The signature is bound to this same use: an ordinary replay (the dedup key
    /// then decides whether it is a duplicate).
    Same,
    /// The signature is bound to another use (family, `callbackType`, outcome or body
    /// digest): this body is not the one the signature was first sent with.
    Other,
}

/// A dedup store: atomic claims with a lease, completion with a TTL, release.
///
/// Every method is async and fallible because a networked store can be slow or down;
/// the pipeline answers `503` when a claim fails, so no handler ever runs without one.
/// See [`MemoryStore`] for the in-process implementation.
///
/// # Writing your own store
///
/// Implement the four methods as plain `async fn`s. The one rule that matters is
/// that [`claim`](DedupStore::claim) decides atomically: here one lock covers the
/// look-up and the insert (in a database, one conditional insert does). This store
/// keeps every key forever; a real one also drops expired entries.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::{Mutex, MutexGuard, PoisonError};
/// use std::time::{Duration, Instant};
///
/// use suno_callback::store::{
///     Binding, Claim, ClaimToken, DedupKey, DedupStore, SignatureUse, StoreError,
/// };
///
/// #[derive(Debug)]
/// enum Entry {
///     Claimed { token: ClaimToken, until: Instant },
///     Done { until: Instant },
/// }
///
/// #[derive(Debug, Default)]
/// struct MyStore {
///     entries: Mutex<HashMap<DedupKey, Entry>>,
///     /// Signature digest -> (use digest, until).
///     bindings: Mutex<HashMap<[u8; 32], ([u8; 32], Instant)>>,
/// }
///
/// impl MyStore {
///     fn entries(&self) -> MutexGuard<'_, HashMap<DedupKey, Entry>> {
///         self.entries.lock().unwrap_or_else(PoisonError::into_inner)
///     }
///
///     /// Whether `token` holds an unexpired claim on `key`.
///     fn holds(entries: &HashMap<DedupKey, Entry>, key: &DedupKey, token: ClaimToken) -> bool {
///         matches!(entries.get(key),
///             Some(Entry::Claimed { token: held, until }) if *held == token && *until > Instant::now())
///     }
/// }
///
/// /// `now + duration`, or far in the future for a duration too long to add.
/// fn after(duration: Duration) -> Instant {
///     let now = Instant::now();
///     now.checked_add(duration).unwrap_or(now + Duration::from_secs(86_400 * 365))
/// }
///
/// impl DedupStore for MyStore {
///     async fn claim(&self, key: &DedupKey, lease: Duration) -> Result<Claim, StoreError> {
///         let mut entries = self.entries();
///         let now = Instant::now();
///         match entries.get(key) {
///             Some(Entry::Done { until }) if *until > now => return Ok(Claim::Done),
///             Some(Entry::Claimed { until, .. }) if *until > now => return Ok(Claim::InFlight),
///             _ => {} // absent or expired: free
///         }
///         let token = ClaimToken::new_unique();
///         entries.insert(key.clone(), Entry::Claimed { token, until: after(lease) });
///         Ok(Claim::Acquired(token))
///     }
///
///     async fn complete(&self, key: &DedupKey, token: ClaimToken, ttl: Duration) -> Result<(), StoreError> {
///         let mut entries = self.entries();
///         if !Self::holds(&entries, key, token) {
///             return Err(StoreError::claim_lost());
///         }
///         entries.insert(key.clone(), Entry::Done { until: after(ttl) });
///         Ok(())
///     }
///
///     async fn release(&self, key: &DedupKey, token: ClaimToken) -> Result<(), StoreError> {
///         let mut entries = self.entries();
///         if !Self::holds(&entries, key, token) {
///             return Err(StoreError::claim_lost());
///         }
///         entries.remove(key);
///         Ok(())
///     }
///
///     async fn bind_signature(&self, signature: &SignatureUse, ttl: Duration) -> Result<Binding, StoreError> {
///         let mut bindings = self.bindings.lock().unwrap_or_else(PoisonError::into_inner);
///         let (bound, now) = (signature.use_digest(), Instant::now());
///         match bindings.get(&signature.signature_digest()) {
///             Some((held, until)) if *until > now => {
///                 return Ok(if *held == bound { Binding::Same } else { Binding::Other });
///             }
///             _ => {} // absent or expired: free
///         }
///         bindings.insert(signature.signature_digest(), (bound, after(ttl)));
///         Ok(Binding::First)
///     }
/// }
///
/// // In your tests (feature `testing`), one line runs the conformance suite,
/// // a `#[tokio::test]` per check:
/// async fn make_store() -> MyStore {
///     MyStore::default()
/// }
/// # #[cfg(feature = "testing")]
/// suno_callback::dedup_store_conformance!(make_store);
/// # #[cfg(feature = "testing")]
/// # fn main() {
/// #     // Here, the whole suite runs against the example store.
/// #     let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
/// #     runtime.block_on(suno_callback::testing::conformance::run_all(std::sync::Arc::new(MyStore::default())));
/// # }
/// # #[cfg(not(feature = "testing"))]
/// # fn main() { let _ = make_store; }
/// ```
pub trait DedupStore: Send + Sync + 'static {
    /// Atomically: if `key` is absent, or its claim's lease has expired, take it for
    /// `lease` and return [`Claim::Acquired`]; otherwise report what holds it.
    fn claim(
        &self,
        key: &DedupKey,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Marks `key` done for `ttl`, if `token` still holds an unexpired claim on it;
    /// otherwise fails with [`StoreError::is_claim_lost`].
    fn complete(
        &self,
        key: &DedupKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes the claim on `key`, if `token` still holds it; otherwise fails with
    /// [`StoreError::is_claim_lost`].
    fn release(
        &self,
        key: &DedupKey,
        token: ClaimToken,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Atomically: if the signature of `signature` ([`SignatureUse::signature_digest`])
    /// is not bound, bind it to this use ([`SignatureUse::use_digest`]) for `ttl` and
    /// return [`Binding::First`]; otherwise say whether it is bound to the
    /// [same](Binding::Same) use or [another](Binding::Other). A binding is never
    /// changed by a later call, only forgotten when its TTL ends.
    ///
    /// The pipeline calls it once per verified callback, with a TTL that covers the
    /// time the signature's timestamp stays within tolerance.
    fn bind_signature(
        &self,
        signature: &SignatureUse,
        ttl: Duration,
    ) -> impl Future<Output = Result<Binding, StoreError>> + Send;

    /// [`bind_signature`](Self::bind_signature), then, unless the signature is bound
    /// to [another](Binding::Other) use, [`claim`](Self::claim): what the pipeline does
    /// with a signed callback in inline mode. The claim is `None` exactly when the
    /// binding is `Other` (nothing is claimed then).
    ///
    /// The default makes the two calls one after the other. A networked store may
    /// override it to do both in one round trip, as `RedisStore` does with one script;
    /// each half must keep its own guarantees (the conformance suite checks both
    /// through this method too).
    fn bind_and_claim(
        &self,
        signature: &SignatureUse,
        binding_ttl: Duration,
        key: &DedupKey,
        lease: Duration,
    ) -> impl Future<Output = Result<(Binding, Option<Claim>), StoreError>> + Send {
        async move {
            let binding = self.bind_signature(signature, binding_ttl).await?;
            if binding == Binding::Other {
                return Ok((binding, None));
            }
            let claim = self.claim(key, lease).await?;
            Ok((binding, Some(claim)))
        }
    }
}

impl<S: DedupStore> DedupStore for std::sync::Arc<S> {
    fn claim(
        &self,
        key: &DedupKey,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send {
        (**self).claim(key, lease)
    }

    fn complete(
        &self,
        key: &DedupKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).complete(key, token, ttl)
    }

    fn release(
        &self,
        key: &DedupKey,
        token: ClaimToken,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).release(key, token)
    }

    fn bind_signature(
        &self,
        signature: &SignatureUse,
        ttl: Duration,
    ) -> impl Future<Output = Result<Binding, StoreError>> + Send {
        (**self).bind_signature(signature, ttl)
    }

    fn bind_and_claim(
        &self,
        signature: &SignatureUse,
        binding_ttl: Duration,
        key: &DedupKey,
        lease: Duration,
    ) -> impl Future<Output = Result<(Binding, Option<Claim>), StoreError>> + Send {
        (**self).bind_and_claim(signature, binding_ttl, key, lease)
    }
}

/// Why a store operation failed.
///
/// ```
/// use suno_callback::store::StoreError;
///
/// let down = StoreError::unavailable(std::io::Error::other("connection refused"));
/// assert!(down.is_unavailable());
/// assert!(StoreError::claim_lost().is_claim_lost());
/// ```
#[derive(Debug)]
pub struct StoreError {
    kind: StoreErrorKind,
    source: Option<BoxError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreErrorKind {
    Unavailable,
    ClaimLost,
    CapacityExhausted,
}

impl StoreError {
    /// The backend could not be reached, timed out or failed.
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        Self {
            kind: StoreErrorKind::Unavailable,
            source: Some(source.into()),
        }
    }

    /// The token no longer holds the claim (its lease expired, or it never did).
    pub fn claim_lost() -> Self {
        Self {
            kind: StoreErrorKind::ClaimLost,
            source: None,
        }
    }

    /// The store is full of claims it may not evict.
    pub fn capacity_exhausted() -> Self {
        Self {
            kind: StoreErrorKind::CapacityExhausted,
            source: None,
        }
    }

    /// See [`StoreError::unavailable`].
    pub fn is_unavailable(&self) -> bool {
        self.kind == StoreErrorKind::Unavailable
    }

    /// See [`StoreError::claim_lost`].
    pub fn is_claim_lost(&self) -> bool {
        self.kind == StoreErrorKind::ClaimLost
    }

    /// See [`StoreError::capacity_exhausted`].
    pub fn is_capacity_exhausted(&self) -> bool {
        self.kind == StoreErrorKind::CapacityExhausted
    }

    /// The `kind` label of the store error metric.
    fn kind_label(&self) -> &'static str {
        match self.kind {
            StoreErrorKind::Unavailable => "unavailable",
            StoreErrorKind::ClaimLost => "claim_lost",
            StoreErrorKind::CapacityExhausted => "capacity_exhausted",
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            StoreErrorKind::Unavailable => f.write_str("dedup store unavailable")?,
            StoreErrorKind::ClaimLost => f.write_str("claim no longer held")?,
            StoreErrorKind::CapacityExhausted => f.write_str("dedup store full")?,
        }
        match &self.source {
            Some(source) => write!(f, ": {source}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe form of [`DedupStore`] the pipeline stores.
pub(crate) trait DynStore: Send + Sync + 'static {
    fn claim_boxed<'a>(
        &'a self,
        key: &'a DedupKey,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Claim, StoreError>>;

    fn complete_boxed<'a>(
        &'a self,
        key: &'a DedupKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    fn release_boxed<'a>(
        &'a self,
        key: &'a DedupKey,
        token: ClaimToken,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    fn bind_signature_boxed<'a>(
        &'a self,
        signature: &'a SignatureUse,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Binding, StoreError>>;

    fn bind_and_claim_boxed<'a>(
        &'a self,
        signature: &'a SignatureUse,
        binding_ttl: Duration,
        key: &'a DedupKey,
        lease: Duration,
    ) -> BoxFuture<'a, Result<(Binding, Option<Claim>), StoreError>>;

    fn type_name(&self) -> &'static str;
}

impl<S: DedupStore> DynStore for S {
    fn claim_boxed<'a>(
        &'a self,
        key: &'a DedupKey,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        Box::pin(metrics::store_call(
            "claim",
            self.claim(key, lease),
            StoreError::kind_label,
        ))
    }

    fn complete_boxed<'a>(
        &'a self,
        key: &'a DedupKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(metrics::store_call(
            "complete",
            self.complete(key, token, ttl),
            StoreError::kind_label,
        ))
    }

    fn release_boxed<'a>(
        &'a self,
        key: &'a DedupKey,
        token: ClaimToken,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(metrics::store_call(
            "release",
            self.release(key, token),
            StoreError::kind_label,
        ))
    }

    fn bind_signature_boxed<'a>(
        &'a self,
        signature: &'a SignatureUse,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Binding, StoreError>> {
        Box::pin(self.bind_signature(signature, ttl))
    }

    fn bind_and_claim_boxed<'a>(
        &'a self,
        signature: &'a SignatureUse,
        binding_ttl: Duration,
        key: &'a DedupKey,
        lease: Duration,
    ) -> BoxFuture<'a, Result<(Binding, Option<Claim>), StoreError>> {
        // Counted as the claim it ends with.
        Box::pin(metrics::store_call(
            "claim",
            self.bind_and_claim(signature, binding_ttl, key, lease),
            StoreError::kind_label,
        ))
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<S>()
    }
}

impl fmt::Debug for dyn DynStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.type_name())
    }
}
