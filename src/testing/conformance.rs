//! The dedup store conformance suite: what every [`DedupStore`] must do, as async
//! checks that panic on a violation. `MemoryStore` passes it, and so must any store
//! you write or publish.
//!
//! # One line in your store's tests
//!
//! In the store crate's `Cargo.toml`:
//!
//! ```toml
//! [dev-dependencies]
//! suno-callback = { version = "0.1", features = ["testing"] }
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! ```
//!
//! and in a test file, say `tests/conformance.rs`, an async fn that makes a store
//! (connect, create a schema...) and the one line:
//!
//! ```no_run
//! # use suno_callback::store::MemoryStore as MyStore;
//! async fn make_store() -> MyStore {
//!     MyStore::new() // for example: MyStore::connect("redis://127.0.0.1/").await.unwrap()
//! }
//!
//! suno_callback::dedup_store_conformance!(make_store);
//! # fn main() {}
//! ```
//!
//! The macro expands to one `#[tokio::test]` per check, named after it
//! ([`claim_is_exclusive`], [`lease_expiry_frees_the_key`], ...), so `cargo test`
//! reports each one. `make_store` is called once per check; every check uses keys of
//! its own (random task ids), so the checks may share one backing database, run
//! concurrently and run again against a store that kept the last run's keys.
//!
//! What the checks need from the store: the lease and TTL are honoured to within
//! about 400 ms (the expiry checks use a 400 ms lease and wait 900 ms), 64
//! concurrent claims of one key, on a multi-threaded runtime, have exactly one
//! winner, and a signature is bound to its first use
//! ([`signature_binds_to_its_first_use`], [`signature_binding_expires`],
//! [`concurrent_bindings_have_one_winner`]: of 32 concurrent first uses with different
//! bodies, one binds). The whole suite takes about three seconds run one check after
//! another.
//!
//! To run the checks in one test instead, for example around a setup that must not
//! be repeated, call [`run_all`]:
//!
//! ```no_run
//! use std::sync::Arc;
//! use suno_callback::store::MemoryStore;
//!
//! #[tokio::test(flavor = "multi_thread")]
//! async fn memory_store_conforms() {
//!     suno_callback::testing::conformance::run_all(Arc::new(MemoryStore::new())).await;
//! }
//! # fn main() {}
//! ```

use std::sync::Arc;
use std::time::Duration;

use crate::store::{Binding, Claim, ClaimToken, DedupKey, DedupStore, SignatureUse};
use crate::{Family, Outcome};

const LEASE: Duration = Duration::from_secs(30);
const TTL: Duration = Duration::from_secs(3600);
/// Short enough to wait out in a test, long enough for a slow CI machine to finish
/// the operations that must happen inside it.
const SHORT: Duration = Duration::from_millis(400);
const PAST_SHORT: Duration = Duration::from_millis(900);

/// A key no other check or run uses.
pub fn unique_key(check: &str, callback_type: &str) -> DedupKey {
    DedupKey::new(
        format!("conformance-{check}-{}", ClaimToken::new_unique()),
        Family::Music,
        callback_type,
        Outcome::Success,
    )
}

async fn acquire<S: DedupStore>(store: &S, key: &DedupKey, lease: Duration) -> ClaimToken {
    match store.claim(key, lease).await {
        Ok(Claim::Acquired(token)) => token,
        other => panic!("claim of a free key {key:?} must be Acquired, got {other:?}"),
    }
}

async fn expect_claim<S: DedupStore>(store: &S, key: &DedupKey, expected: Claim, why: &str) {
    let got = store.claim(key, LEASE).await.expect("claim must not fail");
    assert_eq!(got, expected, "{why} (key {key:?})");
}

/// A free key is acquired; while claimed, it is in flight for everyone else.
pub async fn claim_is_exclusive<S: DedupStore>(store: &S) {
    let key = unique_key("exclusive", "complete");
    acquire(store, &key, LEASE).await;
    expect_claim(store, &key, Claim::InFlight, "a claimed key is in flight").await;
}

/// A completed key is done for later claims.
pub async fn complete_marks_done<S: DedupStore>(store: &S) {
    let key = unique_key("complete", "complete");
    let token = acquire(store, &key, LEASE).await;
    store
        .complete(&key, token, TTL)
        .await
        .expect("the holder completes its claim");
    expect_claim(store, &key, Claim::Done, "a completed key is done").await;
}

/// A released key can be claimed again, with a new token.
pub async fn release_frees_the_key<S: DedupStore>(store: &S) {
    let key = unique_key("release", "first");
    let first = acquire(store, &key, LEASE).await;
    store
        .release(&key, first)
        .await
        .expect("the holder releases its claim");
    let second = acquire(store, &key, LEASE).await;
    assert_ne!(first, second, "a new claim gets a new token");
}

/// A claim whose lease ran out no longer holds the key: the next claim acquires it,
/// and the old token can neither complete nor release it.
pub async fn lease_expiry_frees_the_key<S: DedupStore>(store: &S) {
    let key = unique_key("lease", "complete");
    let stale = acquire(store, &key, SHORT).await;
    tokio::time::sleep(PAST_SHORT).await;
    let fresh = acquire(store, &key, LEASE).await;
    let completed = store.complete(&key, stale, TTL).await;
    assert!(
        completed.is_err_and(|e| e.is_claim_lost()),
        "an expired token must not complete another holder's claim"
    );
    let released = store.release(&key, stale).await;
    assert!(
        released.is_err_and(|e| e.is_claim_lost()),
        "an expired token must not release another holder's claim"
    );
    expect_claim(store, &key, Claim::InFlight, "the fresh claim still holds").await;
    store
        .complete(&key, fresh, TTL)
        .await
        .expect("the fresh holder completes");
}

/// An expired lease with nobody else claiming still refuses the old token.
pub async fn expired_token_cannot_complete<S: DedupStore>(store: &S) {
    let key = unique_key("expired", "text");
    let stale = acquire(store, &key, SHORT).await;
    tokio::time::sleep(PAST_SHORT).await;
    let completed = store.complete(&key, stale, TTL).await;
    assert!(
        completed.is_err_and(|e| e.is_claim_lost()),
        "a claim past its lease is lost"
    );
    acquire(store, &key, LEASE).await;
}

/// A done key is forgotten after its TTL.
pub async fn ttl_expiry_forgets_done<S: DedupStore>(store: &S) {
    let key = unique_key("ttl", "complete");
    let token = acquire(store, &key, LEASE).await;
    store
        .complete(&key, token, SHORT)
        .await
        .expect("complete with a short TTL");
    expect_claim(store, &key, Claim::Done, "done within its TTL").await;
    tokio::time::sleep(PAST_SHORT).await;
    acquire(store, &key, LEASE).await;
}

/// A token that never held the key is refused, and the holder is unaffected.
pub async fn token_mismatch_is_refused<S: DedupStore>(store: &S) {
    let key = unique_key("mismatch", "first");
    let holder = acquire(store, &key, LEASE).await;
    let forged = ClaimToken::new_unique();
    assert!(
        store
            .complete(&key, forged, TTL)
            .await
            .is_err_and(|e| e.is_claim_lost()),
        "a foreign token must not complete"
    );
    assert!(
        store
            .release(&key, forged)
            .await
            .is_err_and(|e| e.is_claim_lost()),
        "a foreign token must not release"
    );
    expect_claim(store, &key, Claim::InFlight, "the holder still holds").await;
    store
        .complete(&key, holder, TTL)
        .await
        .expect("the holder completes");
}

/// Once completed, a token cannot release (or re-complete) the key.
pub async fn settled_token_is_spent<S: DedupStore>(store: &S) {
    let key = unique_key("spent", "complete");
    let token = acquire(store, &key, LEASE).await;
    store.complete(&key, token, TTL).await.expect("complete");
    assert!(
        store.release(&key, token).await.is_err(),
        "a completed key cannot be released"
    );
    expect_claim(store, &key, Claim::Done, "still done").await;
}

/// Keys differ by task, family, stage and outcome, and no pair of strings collides
/// with another.
pub async fn keys_are_independent<S: DedupStore>(store: &S) {
    let base = unique_key("independent", "").task_id().to_owned();
    let music =
        |task: String, stage: &str| DedupKey::new(task, Family::Music, stage, Outcome::Success);
    let mut keys = vec![
        music(format!("{base}:a"), "b"),
        music(base.clone(), "a:b"),
        music(format!("{base}a"), "b"),
        music(format!("{base}\u{0}a"), "b"),
        music(format!("{base}-\u{2603}"), "complete"),
        music(base.clone(), "complete"),
        music(base.clone(), "first"),
        music(base.clone(), ""),
        DedupKey::new(base.clone(), Family::Music, "complete", Outcome::Failure),
        DedupKey::new(base.clone(), Family::Lyrics, "complete", Outcome::Success),
        DedupKey::new(base.clone(), Family::Unknown, "complete", Outcome::Failure),
        DedupKey::new(
            base.clone(),
            Family::Voice,
            "wait_validating",
            Outcome::Success,
        ),
        DedupKey::new(base.clone(), Family::Voice, "fail", Outcome::Failure),
    ];
    for family in Family::ALL {
        for outcome in [Outcome::Success, Outcome::Failure] {
            // The music success with stage "" is in the list already.
            if (family, outcome) != (Family::Music, Outcome::Success) {
                keys.push(DedupKey::new(base.clone(), family, "", outcome));
            }
        }
    }
    for key in &keys {
        acquire(store, key, LEASE).await;
    }
}

/// Of many concurrent claims of one key, exactly one acquires it.
pub async fn concurrent_claims_have_one_winner<S: DedupStore>(store: Arc<S>) {
    const CLAIMERS: usize = 64;
    let key = unique_key("race", "complete");
    let barrier = Arc::new(tokio::sync::Barrier::new(CLAIMERS));
    let mut claimers = Vec::with_capacity(CLAIMERS);
    for _ in 0..CLAIMERS {
        let (store, key, barrier) = (Arc::clone(&store), key.clone(), Arc::clone(&barrier));
        claimers.push(tokio::spawn(async move {
            barrier.wait().await;
            store.claim(&key, LEASE).await
        }));
    }
    let mut winners = 0;
    for claimer in claimers {
        match claimer.await.expect("claimer task") {
            Ok(Claim::Acquired(_)) => winners += 1,
            Ok(Claim::InFlight) => {}
            other => panic!("a concurrent claim must be Acquired or InFlight, got {other:?}"),
        }
    }
    assert_eq!(
        winners, 1,
        "exactly one of {CLAIMERS} concurrent claims wins"
    );
}

/// A signature no other check or run uses, for `callback_type` and outcome.
fn unique_signature(check: &str, callback_type: &str, failure: bool) -> SignatureUse {
    SignatureUse::new(
        format!("conformance-{check}-{}", ClaimToken::new_unique()),
        "1769670760",
        callback_type,
        failure,
    )
}

async fn expect_binding<S: DedupStore>(
    store: &S,
    signature: &SignatureUse,
    ttl: Duration,
    expected: Binding,
    why: &str,
) {
    let got = store
        .bind_signature(signature, ttl)
        .await
        .expect("bind_signature must not fail");
    assert_eq!(got, expected, "{why} ({signature:?})");
}

/// A signature is bound to its first use: the same use again is [`Binding::Same`],
/// another `callbackType`, outcome or family is [`Binding::Other`], and none of them
/// changes the binding.
pub async fn signature_binds_to_its_first_use<S: DedupStore>(store: &S) {
    let first = unique_signature("bind", "text", false);
    let at = |callback_type: &str, failure: bool| {
        SignatureUse::new(first.task_id(), first.timestamp(), callback_type, failure)
    };
    expect_binding(store, &first, TTL, Binding::First, "a new signature binds").await;
    expect_binding(store, &first, TTL, Binding::Same, "the same use again").await;
    expect_binding(
        store,
        &at("complete", false),
        TTL,
        Binding::Other,
        "another stage",
    )
    .await;
    expect_binding(
        store,
        &at("text", true),
        TTL,
        Binding::Other,
        "another outcome",
    )
    .await;
    expect_binding(
        store,
        &at("text", false).with_family(crate::Family::Lyrics),
        TTL,
        Binding::Other,
        "another family",
    )
    .await;
    let bodied = unique_signature("bind-body", "complete", false)
        .with_body(bytes::Bytes::from_static(b"{\"genuine\":1}"));
    let other_body = SignatureUse::new(bodied.task_id(), bodied.timestamp(), "complete", false)
        .with_body(bytes::Bytes::from_static(b"{\"forged\":1}"));
    expect_binding(
        store,
        &bodied,
        TTL,
        Binding::First,
        "a signature with its body binds",
    )
    .await;
    expect_binding(store, &bodied, TTL, Binding::Same, "the same body again").await;
    expect_binding(
        store,
        &other_body,
        TTL,
        Binding::Other,
        "another body, same stage",
    )
    .await;
    let wav = unique_signature("bind-family", "", false).with_family(crate::Family::Wav);
    let video = SignatureUse::new(wav.task_id(), wav.timestamp(), "", false)
        .with_family(crate::Family::Video);
    expect_binding(store, &wav, TTL, Binding::First, "a wav signature binds").await;
    expect_binding(store, &video, TTL, Binding::Other, "a video body under it").await;
    expect_binding(store, &first, TTL, Binding::Same, "the binding never moves").await;
    let other_timestamp = SignatureUse::new(first.task_id(), "1769670761", "complete", false);
    expect_binding(
        store,
        &other_timestamp,
        TTL,
        Binding::First,
        "another timestamp",
    )
    .await;
    let other_task = SignatureUse::new(
        format!("{}x", first.task_id()),
        first.timestamp(),
        "complete",
        false,
    );
    expect_binding(store, &other_task, TTL, Binding::First, "another task").await;
}

/// A binding is forgotten after its TTL.
pub async fn signature_binding_expires<S: DedupStore>(store: &S) {
    let first = unique_signature("bind-ttl", "first", false);
    let other = SignatureUse::new(first.task_id(), first.timestamp(), "complete", false);
    expect_binding(
        store,
        &first,
        SHORT,
        Binding::First,
        "a new signature binds",
    )
    .await;
    expect_binding(store, &other, SHORT, Binding::Other, "bound within its TTL").await;
    tokio::time::sleep(PAST_SHORT).await;
    expect_binding(
        store,
        &other,
        TTL,
        Binding::First,
        "free again after its TTL",
    )
    .await;
}

/// Of many concurrent first uses of one signature with different bodies, exactly one
/// binds it, and every other is told [`Binding::Other`].
pub async fn concurrent_bindings_have_one_winner<S: DedupStore>(store: Arc<S>) {
    const BINDERS: usize = 32;
    let base = unique_signature("bind-race", "", false);
    let barrier = Arc::new(tokio::sync::Barrier::new(BINDERS));
    let mut binders = Vec::with_capacity(BINDERS);
    for n in 0..BINDERS {
        let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
        let signature = SignatureUse::new(
            base.task_id(),
            base.timestamp(),
            format!("stage-{n}"),
            false,
        );
        binders.push(tokio::spawn(async move {
            barrier.wait().await;
            store.bind_signature(&signature, TTL).await
        }));
    }
    let mut firsts = 0;
    for binder in binders {
        match binder.await.expect("binder task") {
            Ok(Binding::First) => firsts += 1,
            Ok(Binding::Other) => {}
            other => panic!("a concurrent first use must be First or Other, got {other:?}"),
        }
    }
    assert_eq!(firsts, 1, "exactly one of {BINDERS} concurrent uses binds");
}

/// Concurrent [`DedupStore::bind_and_claim`] calls of one signature, half with one
/// body and half with another: one body's use binds, and exactly one call claims the
/// key (one of that body's); every call of the other body is refused unclaimed.
pub async fn concurrent_bind_and_claims_have_one_winner<S: DedupStore>(store: Arc<S>) {
    const CALLERS: usize = 32;
    let base = unique_signature("bind-claim-race", "complete", false);
    let key = unique_key("bind-claim-race", "complete");
    let barrier = Arc::new(tokio::sync::Barrier::new(CALLERS));
    let mut callers = Vec::with_capacity(CALLERS);
    for n in 0..CALLERS {
        let (store, key, barrier) = (Arc::clone(&store), key.clone(), Arc::clone(&barrier));
        let body = if n % 2 == 0 { "body-a" } else { "body-b" };
        let signature = SignatureUse::new(base.task_id(), base.timestamp(), "complete", false)
            .with_body(bytes::Bytes::from(body));
        callers.push(tokio::spawn(async move {
            barrier.wait().await;
            (
                body,
                store.bind_and_claim(&signature, TTL, &key, LEASE).await,
            )
        }));
    }
    let (mut firsts, mut winners, mut admitted_bodies) = (0, 0, Vec::new());
    for caller in callers {
        let (body, result) = caller.await.expect("caller task");
        match result.expect("bind_and_claim must not fail") {
            (Binding::Other, None) => {}
            (Binding::Other, claim) => {
                panic!("a refused use must claim nothing, got {claim:?}")
            }
            (binding, Some(claim)) => {
                if binding == Binding::First {
                    firsts += 1;
                }
                admitted_bodies.push(body);
                match claim {
                    Claim::Acquired(_) => winners += 1,
                    Claim::InFlight => {}
                    Claim::Done => panic!("nothing completed the key yet"),
                }
            }
            (binding, None) => panic!("an admitted use ({binding:?}) must claim"),
        }
    }
    assert_eq!(firsts, 1, "exactly one of {CALLERS} concurrent uses binds");
    assert_eq!(
        winners, 1,
        "exactly one of {CALLERS} concurrent calls claims"
    );
    admitted_bodies.sort_unstable();
    admitted_bodies.dedup();
    assert_eq!(
        admitted_bodies.len(),
        1,
        "only the binding body's calls are let through: {admitted_bodies:?}"
    );
}

/// [`DedupStore::bind_and_claim`] binds and claims as the two calls do: a first use
/// binds and claims, the same use again finds the claim, another use claims nothing.
pub async fn bind_and_claim_keeps_both_guarantees<S: DedupStore>(store: &S) {
    let signature = unique_signature("bind-claim", "complete", false);
    let key = unique_key("bind-claim", "complete");
    let (binding, claim) = store
        .bind_and_claim(&signature, TTL, &key, LEASE)
        .await
        .expect("bind_and_claim must not fail");
    assert_eq!(binding, Binding::First, "a new signature binds");
    let Some(Claim::Acquired(token)) = claim else {
        panic!("a free key is claimed with the binding, got {claim:?}");
    };
    let again = store.bind_and_claim(&signature, TTL, &key, LEASE).await;
    assert_eq!(
        again.expect("bind_and_claim"),
        (Binding::Same, Some(Claim::InFlight)),
        "the same use again finds the key in flight"
    );
    let forged = SignatureUse::new(signature.task_id(), signature.timestamp(), "text", false);
    let untouched = unique_key("bind-claim-untouched", "text");
    let refused = store.bind_and_claim(&forged, TTL, &untouched, LEASE).await;
    assert_eq!(
        refused.expect("bind_and_claim"),
        (Binding::Other, None),
        "another use is refused and claims nothing"
    );
    acquire(store, &untouched, LEASE).await;
    store
        .complete(&key, token, TTL)
        .await
        .expect("the token of the combined claim completes");
    let done = store.bind_and_claim(&signature, TTL, &key, LEASE).await;
    assert_eq!(
        done.expect("bind_and_claim"),
        (Binding::Same, Some(Claim::Done)),
        "a replay of a processed callback is a duplicate"
    );
}

/// Runs every check, one after another, against one store.
pub async fn run_all<S: DedupStore>(store: Arc<S>) {
    claim_is_exclusive(&*store).await;
    complete_marks_done(&*store).await;
    release_frees_the_key(&*store).await;
    lease_expiry_frees_the_key(&*store).await;
    expired_token_cannot_complete(&*store).await;
    ttl_expiry_forgets_done(&*store).await;
    token_mismatch_is_refused(&*store).await;
    settled_token_is_spent(&*store).await;
    keys_are_independent(&*store).await;
    signature_binds_to_its_first_use(&*store).await;
    signature_binding_expires(&*store).await;
    bind_and_claim_keeps_both_guarantees(&*store).await;
    concurrent_bindings_have_one_winner(Arc::clone(&store)).await;
    concurrent_bind_and_claims_have_one_winner(Arc::clone(&store)).await;
    concurrent_claims_have_one_winner(store).await;
}

/// Expands to one `#[tokio::test]` per conformance check, each calling
/// `$make_store().await` (an async fn returning the store) for a store to test.
///
/// The calling crate needs `tokio` with the `macros` and `rt-multi-thread` features
/// (as a dev-dependency) and `suno-callback` with the `testing` feature. See
/// [`testing::conformance`](crate::testing::conformance) for the whole recipe.
///
/// ```no_run
/// use suno_callback::store::MemoryStore;
///
/// async fn make_store() -> MemoryStore {
///     MemoryStore::new()
/// }
///
/// suno_callback::dedup_store_conformance!(make_store);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! dedup_store_conformance {
    ($make_store:path) => {
        $crate::dedup_store_conformance!(@checks $make_store;
            claim_is_exclusive, complete_marks_done, release_frees_the_key,
            lease_expiry_frees_the_key, expired_token_cannot_complete,
            ttl_expiry_forgets_done, token_mismatch_is_refused, settled_token_is_spent,
            keys_are_independent, signature_binds_to_its_first_use,
            signature_binding_expires, bind_and_claim_keeps_both_guarantees);

        #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_claims_have_one_winner() {
            let store = ::std::sync::Arc::new($make_store().await);
            $crate::testing::conformance::concurrent_claims_have_one_winner(store).await;
        }

        #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_bindings_have_one_winner() {
            let store = ::std::sync::Arc::new($make_store().await);
            $crate::testing::conformance::concurrent_bindings_have_one_winner(store).await;
        }

        #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_bind_and_claims_have_one_winner() {
            let store = ::std::sync::Arc::new($make_store().await);
            $crate::testing::conformance::concurrent_bind_and_claims_have_one_winner(store)
                .await;
        }
    };
    (@checks $make_store:path; $($check:ident),*) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let store = $make_store().await;
                $crate::testing::conformance::$check(&store).await;
            }
        )*
    };
}
