//! Stage 4 of the pipeline: claim the callback's dedup key, or wait a bounded time for
//! the delivery that holds it.
//!
//! Waiting is cheap. A delivery that finds its key in flight keeps neither its parsed
//! event nor its body: the [`Waiters`] of one key in this process form one group that
//! keeps a single standby body (the first one offered) and polls the store with a
//! single poller, so many duplicates of one callback cost one store call per poll
//! interval, not one each. A duplicate that arrives while its key already has a group
//! joins it without any store call. The standby body lets the group take over a
//! callback whose run failed elsewhere (its key released) without the sender's retry.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::{Instant, sleep, timeout_at};

use crate::deadline::timeout;

use crate::store::{Claim, ClaimToken, DedupKey, DynStore, StoreError};
use crate::timing::Timing;

/// The first pause between two claims of an in-flight key; it doubles up to
/// [`MAX_POLL_INTERVAL`].
const FIRST_POLL_INTERVAL: Duration = Duration::from_millis(5);
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// What the claim stage decided.
#[derive(Debug)]
pub(crate) enum ClaimOutcome<T> {
    /// This delivery runs the handler with what it arrived with.
    Run(ClaimToken, T),
    /// This delivery waited, and now runs the handler with the group's standby body
    /// (its own event was dropped while it waited).
    RunFromBody(ClaimToken, Bytes),
    /// The callback was already processed.
    Duplicate,
    /// Another delivery still holds the key after the wait.
    StillInFlight,
    /// The store failed or timed out.
    Unavailable(StoreError),
}

/// The groups of deliveries waiting for an in-flight key, one group per key.
#[derive(Default)]
pub(crate) struct Waiters {
    groups: Mutex<HashMap<DedupKey, Arc<Group>>>,
}

impl fmt::Debug for Waiters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiters")
            .field("keys", &lock(&self.groups).len())
            .finish()
    }
}

#[derive(Default)]
struct Group {
    state: Mutex<GroupState>,
    changed: Notify,
}

#[derive(Default)]
struct GroupState {
    members: usize,
    /// Whether a member is polling the store for the group.
    polling: bool,
    /// One body to run the handler with if the key is released.
    standby: Option<Bytes>,
    /// What the poller found, once it is final.
    settled: Option<Settled>,
}

#[derive(Clone, Copy)]
enum Settled {
    Done,
    Unavailable,
}

/// A member's place in a group; leaving (even by being dropped mid-wait, when the
/// connection closes) hands polling on and removes an empty group.
struct Membership<'a> {
    waiters: &'a Waiters,
    key: &'a DedupKey,
    group: Arc<Group>,
    polling: bool,
}

impl Drop for Membership<'_> {
    fn drop(&mut self) {
        let mut groups = lock(&self.waiters.groups);
        let mut state = lock(&self.group.state);
        state.members -= 1;
        if self.polling {
            state.polling = false;
        }
        let empty = state.members == 0;
        drop(state);
        if empty {
            if groups
                .get(self.key)
                .is_some_and(|group| Arc::ptr_eq(group, &self.group))
            {
                groups.remove(self.key);
            }
        } else if self.polling {
            // Another member takes over polling.
            self.group.changed.notify_waiters();
        }
    }
}

impl Waiters {
    /// Joins the key's group: an existing one that has not settled yet (only when
    /// `existing_only`), or a new one.
    fn join<'a>(&'a self, key: &'a DedupKey, existing_only: bool) -> Option<Membership<'a>> {
        let mut groups = lock(&self.groups);
        let group = match groups.get(key) {
            Some(group) if lock(&group.state).settled.is_none() => Arc::clone(group),
            _ if existing_only => return None,
            _ => {
                let group = Arc::new(Group::default());
                groups.insert(key.clone(), Arc::clone(&group));
                group
            }
        };
        lock(&group.state).members += 1;
        Some(Membership {
            waiters: self,
            key,
            group,
            polling: false,
        })
    }
}

/// Claims `key` for a delivery carrying `held` (its parsed event, ready to run) and
/// `body`. While another delivery holds the key, waits in the key's group, having
/// dropped `held` and offered `body` as the group's standby, until the key is done (a
/// duplicate), free again (this delivery runs the handler with the standby body), or
/// `timing.in_flight_wait` has passed. `first` is the first claim's result when it was
/// made already, with the signature's binding (then it is not made again).
pub(crate) async fn claim_or_wait<T>(
    store: &dyn DynStore,
    waiters: &Waiters,
    key: &DedupKey,
    timing: &Timing,
    first: Option<Claim>,
    held: T,
    body: Bytes,
) -> ClaimOutcome<T> {
    let now = Instant::now();
    // A wait too long to represent means "wait for as long as it takes".
    let give_up_at = now
        .checked_add(timing.in_flight_wait)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365));
    let existing = match first {
        Some(_) => None,
        // Others here already wait for this key: no need to ask the store.
        None => waiters.join(key, true),
    };
    let membership = match existing {
        Some(membership) => membership,
        None => {
            let claimed = match first {
                Some(claim) => Ok(claim),
                None => claim_once(store, key, timing).await,
            };
            match claimed {
                Ok(Claim::Acquired(token)) => return ClaimOutcome::Run(token, held),
                Ok(Claim::Done) => return ClaimOutcome::Duplicate,
                Err(error) => return ClaimOutcome::Unavailable(error),
                Ok(Claim::InFlight) => match waiters.join(key, false) {
                    Some(membership) => membership,
                    None => return ClaimOutcome::StillInFlight,
                },
            }
        }
    };
    // A waiting delivery holds nothing of its request: its event goes now, and its
    // body goes to the group only if the group has none.
    drop(held);
    {
        let mut state = lock(&membership.group.state);
        if state.standby.is_none() {
            state.standby = Some(body);
        } else {
            drop(body);
        }
    }
    wait_in_group(store, key, timing, membership, give_up_at).await
}

async fn wait_in_group<T>(
    store: &dyn DynStore,
    key: &DedupKey,
    timing: &Timing,
    mut membership: Membership<'_>,
    give_up_at: Instant,
) -> ClaimOutcome<T> {
    let group = Arc::clone(&membership.group);
    let mut pause = FIRST_POLL_INTERVAL;
    loop {
        let changed = group.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        {
            let mut state = lock(&group.state);
            match state.settled {
                Some(Settled::Done) => return ClaimOutcome::Duplicate,
                Some(Settled::Unavailable) => {
                    return ClaimOutcome::Unavailable(StoreError::unavailable(
                        "the dedup store failed while polling an in-flight callback",
                    ));
                }
                None => {}
            }
            if !state.polling {
                state.polling = true;
                membership.polling = true;
            }
        }
        if !membership.polling {
            if timeout_at(give_up_at, changed).await.is_err() {
                return ClaimOutcome::StillInFlight;
            }
            continue;
        }
        let now = Instant::now();
        if now >= give_up_at {
            return ClaimOutcome::StillInFlight;
        }
        sleep(pause.min(give_up_at - now)).await;
        pause = (pause * 2).min(MAX_POLL_INTERVAL);
        match claim_once(store, key, timing).await {
            Ok(Claim::InFlight) => {}
            Ok(Claim::Done) => {
                settle_group(&group, Settled::Done);
                return ClaimOutcome::Duplicate;
            }
            Err(error) => {
                settle_group(&group, Settled::Unavailable);
                return ClaimOutcome::Unavailable(error);
            }
            Ok(Claim::Acquired(token)) => {
                let standby = lock(&group.state).standby.take();
                match standby {
                    // The others keep waiting, for this run's outcome.
                    Some(body) => return ClaimOutcome::RunFromBody(token, body),
                    None => {
                        // The group's body already went to an earlier takeover: hand
                        // the key back, and let the sender's retry run it.
                        let _ =
                            timeout(timing.store_timeout, store.release_boxed(key, token)).await;
                        return ClaimOutcome::StillInFlight;
                    }
                }
            }
        }
    }
}

fn settle_group(group: &Group, settled: Settled) {
    lock(&group.state).settled = Some(settled);
    group.changed.notify_waiters();
}

async fn claim_once(
    store: &dyn DynStore,
    key: &DedupKey,
    timing: &Timing,
) -> Result<Claim, StoreError> {
    match timeout(timing.store_timeout, store.claim_boxed(key, timing.lease)).await {
        Ok(result) => result,
        Err(_elapsed) => Err(StoreError::unavailable("claim timed out")),
    }
}

/// The guarded maps hold plain data and run no user code under the lock, so a
/// poisoned lock still guards consistent data.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::future::ready;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;
    use crate::store::{Binding, DedupStore, SignatureUse};
    use crate::{Family, Outcome};

    /// A key held elsewhere until `done` is set; counts claims.
    #[derive(Default)]
    struct Elsewhere {
        claims: AtomicUsize,
        done: AtomicBool,
    }

    impl DedupStore for Elsewhere {
        fn claim(
            &self,
            _: &DedupKey,
            _: Duration,
        ) -> impl Future<Output = Result<Claim, StoreError>> + Send {
            self.claims.fetch_add(1, Ordering::SeqCst);
            ready(Ok(if self.done.load(Ordering::SeqCst) {
                Claim::Done
            } else {
                Claim::InFlight
            }))
        }
        fn complete(
            &self,
            _: &DedupKey,
            _: ClaimToken,
            _: Duration,
        ) -> impl Future<Output = Result<(), StoreError>> + Send {
            ready(Ok(()))
        }
        fn release(
            &self,
            _: &DedupKey,
            _: ClaimToken,
        ) -> impl Future<Output = Result<(), StoreError>> + Send {
            ready(Ok(()))
        }
        fn bind_signature(
            &self,
            _: &SignatureUse,
            _: Duration,
        ) -> impl Future<Output = Result<Binding, StoreError>> + Send {
            ready(Ok(Binding::First))
        }
    }

    /// Stands for a parsed event; counts how many are still held.
    struct Held(Arc<AtomicUsize>);

    impl Drop for Held {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl fmt::Debug for Held {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Held")
        }
    }

    fn timing() -> Timing {
        Timing {
            handler_timeout: Duration::from_secs(10),
            lease: Duration::from_secs(30),
            done_ttl: Duration::from_secs(3600),
            in_flight_wait: Duration::from_secs(5),
            store_timeout: Duration::from_secs(2),
        }
    }

    /// Finding 5: 10,000 concurrent duplicates of one in-flight callback made ~22.7
    /// store calls each, and held their bodies while they waited.
    #[tokio::test(start_paused = true)]
    async fn waiting_duplicates_share_one_poll_and_hold_no_event() {
        const WAITERS: usize = 10_000;
        let store = Arc::new(Elsewhere::default());
        let waiters = Arc::new(Waiters::default());
        let key = DedupKey::new("task", Family::Music, "complete", Outcome::Success);
        let held = Arc::new(AtomicUsize::new(WAITERS));
        let mut deliveries = Vec::with_capacity(WAITERS);
        for n in 0..WAITERS {
            let (store, waiters, key, held) = (
                Arc::clone(&store),
                Arc::clone(&waiters),
                key.clone(),
                Arc::clone(&held),
            );
            deliveries.push(tokio::spawn(async move {
                let event = Held(held);
                let body = Bytes::from(vec![b'x'; 1024 + n]);
                let outcome =
                    claim_or_wait(&*store, &waiters, &key, &timing(), None, event, body).await;
                matches!(outcome, ClaimOutcome::Duplicate)
            }));
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(held.load(Ordering::SeqCst), 0, "no waiter holds its event");
        {
            let groups = lock(&waiters.groups);
            let state = lock(&groups[&key].state);
            assert_eq!(state.members, WAITERS);
            assert_eq!(
                state.standby.as_ref().map(Bytes::len),
                Some(1024),
                "one body kept"
            );
        }
        let while_waiting = store.claims.load(Ordering::SeqCst);
        assert!(
            while_waiting <= 12,
            "{while_waiting} store calls for {WAITERS} waiters"
        );
        store.done.store(true, Ordering::SeqCst);
        for delivery in deliveries {
            assert!(delivery.await.expect("delivery"), "a duplicate once done");
        }
        let total = store.claims.load(Ordering::SeqCst);
        assert!(total <= while_waiting + 2, "{total} store calls in all");
        assert!(
            lock(&waiters.groups).is_empty(),
            "the group is gone with its members"
        );
    }

    /// A waiting delivery that gives up hands the polling on to the others.
    #[tokio::test(start_paused = true)]
    async fn the_poller_leaving_hands_polling_on() {
        let store = Arc::new(Elsewhere::default());
        let waiters = Arc::new(Waiters::default());
        let key = DedupKey::new("task", Family::Music, "first", Outcome::Success);
        let short = Timing {
            in_flight_wait: Duration::from_millis(100),
            ..timing()
        };
        let held = Arc::new(AtomicUsize::new(2));
        let first = {
            let (store, waiters, key, held) = (
                Arc::clone(&store),
                Arc::clone(&waiters),
                key.clone(),
                Arc::clone(&held),
            );
            tokio::spawn(async move {
                claim_or_wait(
                    &*store,
                    &waiters,
                    &key,
                    &short,
                    None,
                    Held(held),
                    Bytes::new(),
                )
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let second = {
            let (store, waiters, key, held) = (
                Arc::clone(&store),
                Arc::clone(&waiters),
                key.clone(),
                Arc::clone(&held),
            );
            tokio::spawn(async move {
                claim_or_wait(
                    &*store,
                    &waiters,
                    &key,
                    &timing(),
                    None,
                    Held(held),
                    Bytes::new(),
                )
                .await
            })
        };
        assert!(matches!(
            first.await.expect("first"),
            ClaimOutcome::StillInFlight
        ));
        let polls_before = store.claims.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(
            store.claims.load(Ordering::SeqCst) > polls_before,
            "the second polls now"
        );
        store.done.store(true, Ordering::SeqCst);
        assert!(matches!(
            second.await.expect("second"),
            ClaimOutcome::Duplicate
        ));
    }

    /// A waiting duplicate whose body is not the group's standby once held that
    /// body until its wait ends (the parameter is dropped at the end of
    /// `claim_or_wait`, after `wait_in_group` returns).
    #[tokio::test(start_paused = true)]
    async fn a_waiting_duplicate_holds_no_body_of_its_own() {
        struct Owner(Vec<u8>, Arc<AtomicUsize>);
        impl AsRef<[u8]> for Owner {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }
        impl Drop for Owner {
            fn drop(&mut self) {
                self.1.fetch_sub(1, Ordering::SeqCst);
            }
        }
        const WAITERS: usize = 100;
        let store = Arc::new(Elsewhere::default());
        let waiters = Arc::new(Waiters::default());
        let key = DedupKey::new("task", Family::Music, "complete", Outcome::Success);
        let alive = Arc::new(AtomicUsize::new(WAITERS));
        let mut deliveries = Vec::new();
        for _ in 0..WAITERS {
            let (store, waiters, key, alive) = (
                Arc::clone(&store),
                Arc::clone(&waiters),
                key.clone(),
                Arc::clone(&alive),
            );
            deliveries.push(tokio::spawn(async move {
                let body = Bytes::from_owner(Owner(vec![b'x'; 1 << 20], alive));
                claim_or_wait(&*store, &waiters, &key, &timing(), None, (), body).await;
            }));
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let held = alive.load(Ordering::SeqCst);
        store.done.store(true, Ordering::SeqCst);
        for delivery in deliveries {
            delivery.await.expect("delivery");
        }
        assert_eq!(
            held, 1,
            "{held} MiB bodies held by {WAITERS} waiters (only the standby should be)"
        );
    }
}
