//! `PostgresStore` and `SqliteStore` against the real databases: the store conformance
//! suite (on one store, and spread over two replicas' pools), several inline replicas
//! sharing one database, a replica that dies holding a claim, signature bindings in an
//! inbox's own database, pruning, and migrations shared with the inbox.
//!
//! Each test has a database of its own: a SQLite file in its own folder, or a
//! PostgreSQL schema (`SUNO_CALLBACK_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`). Without a PostgreSQL server its tests are
//! reported as ignored, unless `SUNO_CALLBACK_REQUIRE_POSTGRES=1` (as CI sets it).

mod common;
mod inbox_db;

use std::collections::HashMap;
use std::future::Future;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Counter, KEY, send, signed, two_quickstarts_are_one_receiver};
use inbox_db::{Db, Kind, REQUIRE, postgres_answers, postgres_url};
use libtest_mimic::Arguments;
use suno_callback::inbox::Inbox;
use suno_callback::store::{
    Binding, Claim, ClaimToken, DedupKey, DedupStore, PostgresStore, SignatureUse, SqlStore,
    SqliteStore, StoreError,
};
use suno_callback::testing::{MusicCallback, conformance};
use suno_callback::{CallbackEvent, Family, Outcome, SunoCallbacks};
use tokio::sync::Notify;

/// A store of its own (its own pool, as a separate process would have) on `db`.
async fn store(db: &Db) -> SqlStore {
    match db.kind {
        Kind::Sqlite => SqlStore::Sqlite(
            SqliteStore::connect(&db.url())
                .await
                .expect("open the SQLite store"),
        ),
        Kind::Postgres => SqlStore::Postgres(
            PostgresStore::connect(&db.url())
                .await
                .expect("connect the PostgreSQL store"),
        ),
    }
}

/// Two replicas' stores on one database, taking turns call by call: a claim made
/// through one is completed or released through the other.
struct Replicas {
    stores: [SqlStore; 2],
    next: AtomicUsize,
}

impl Replicas {
    async fn on(db: &Db) -> Self {
        Self {
            stores: [store(db).await, store(db).await],
            next: AtomicUsize::new(0),
        }
    }

    fn pick(&self) -> &SqlStore {
        &self.stores[self.next.fetch_add(1, Ordering::Relaxed) % 2]
    }
}

impl DedupStore for Replicas {
    fn claim(
        &self,
        key: &DedupKey,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send {
        self.pick().claim(key, lease)
    }

    fn complete(
        &self,
        key: &DedupKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.pick().complete(key, token, ttl)
    }

    fn release(
        &self,
        key: &DedupKey,
        token: ClaimToken,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.pick().release(key, token)
    }

    fn bind_signature(
        &self,
        signature: &SignatureUse,
        ttl: Duration,
    ) -> impl Future<Output = Result<Binding, StoreError>> + Send {
        self.pick().bind_signature(signature, ttl)
    }
}

macro_rules! conformance_tests {
    ($($check:ident),*) => {
        $(
            async fn $check(db: &Db) {
                conformance::$check(&store(db).await).await;
            }
        )*
    };
}

conformance_tests!(
    claim_is_exclusive,
    complete_marks_done,
    release_frees_the_key,
    lease_expiry_frees_the_key,
    expired_token_cannot_complete,
    ttl_expiry_forgets_done,
    token_mismatch_is_refused,
    settled_token_is_spent,
    keys_are_independent,
    signature_binds_to_its_first_use,
    signature_binding_expires,
    bind_and_claim_keeps_both_guarantees
);

async fn concurrent_claims_have_one_winner(db: &Db) {
    conformance::concurrent_claims_have_one_winner(Arc::new(store(db).await)).await;
}

async fn concurrent_bindings_have_one_winner(db: &Db) {
    conformance::concurrent_bindings_have_one_winner(Arc::new(store(db).await)).await;
}

async fn concurrent_bind_and_claims_have_one_winner(db: &Db) {
    conformance::concurrent_bind_and_claims_have_one_winner(Arc::new(store(db).await)).await;
}

/// The whole suite with every call going to the other replica than the last.
async fn the_suite_passes_across_two_replicas(db: &Db) {
    conformance::run_all(Arc::new(Replicas::on(db).await)).await;
}

/// A receiver whose text, first and complete handlers count runs per callback.
fn counting_replica(store: SqlStore, seen: &Arc<Mutex<HashMap<String, usize>>>) -> SunoCallbacks {
    let record = |seen: &Arc<Mutex<HashMap<String, usize>>>| {
        let seen = Arc::clone(seen);
        move |event: CallbackEvent| {
            let key = format!("{}/{}", event.task_id(), event.stage());
            *seen.lock().expect("lock").entry(key).or_default() += 1;
            async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok(())
            }
        }
    };
    SunoCallbacks::builder()
        .hmac_key(KEY)
        .store(store)
        // A burst of 240 deliveries on a shared test machine: SQLite commits one write
        // at a time, and the test is about exactly once, not speed.
        .store_timeout(Duration::from_secs(10))
        .on_text(record(seen))
        .on_first(record(seen))
        .on_complete(record(seen))
        .build()
        .expect("valid configuration")
}

/// Three inline replicas, each delivered copies of every callback at once: each
/// callback runs exactly once, every other copy is a duplicate.
async fn replicas_run_each_callback_once(db: &Db) {
    const TASKS: usize = 20;
    const COPIES: usize = 4;
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let replicas = [
        counting_replica(store(db).await, &seen),
        counting_replica(store(db).await, &seen),
        counting_replica(store(db).await, &seen),
    ];
    let mut deliveries = Vec::new();
    for task in 0..TASKS {
        let task_id = format!("replica-task-{task}");
        for stage in ["text", "first", "complete"] {
            let body = MusicCallback::new(task_id.clone(), stage).body();
            for copy in 0..COPIES {
                let replica = &replicas[(task + copy) % replicas.len()];
                deliveries.push(tokio::spawn(send(replica.service(), signed(body.clone()))));
            }
        }
    }
    let mut labels: HashMap<String, usize> = HashMap::new();
    for delivery in deliveries {
        let answer = delivery.await.expect("delivery");
        assert_eq!(answer.status.as_u16(), 200, "{:?}", answer.json);
        *labels.entry(answer.label().to_owned()).or_default() += 1;
    }
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), TASKS * 3, "every callback ran");
    assert!(
        seen.values().all(|&runs| runs == 1),
        "each exactly once: {seen:?}"
    );
    assert_eq!(labels.get("processed"), Some(&(TASKS * 3)), "{labels:?}");
    assert_eq!(
        labels.get("duplicate"),
        Some(&(TASKS * 3 * (COPIES - 1))),
        "{labels:?}"
    );
}

/// A duplicate on one replica waits for the run on the other, then is a duplicate.
async fn a_duplicate_waits_for_the_other_replica(db: &Db) {
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let runs = Counter::default();
    let slow = {
        let (entered, release, runs) = (Arc::clone(&entered), Arc::clone(&release), runs.clone());
        SunoCallbacks::builder()
            .hmac_key(KEY)
            .store(store(db).await)
            .on_complete(move |_| {
                let (entered, release) = (Arc::clone(&entered), Arc::clone(&release));
                runs.bump();
                async move {
                    entered.notify_one();
                    release.notified().await;
                    Ok(())
                }
            })
            .build()
            .expect("valid configuration")
    };
    let other = {
        let runs = runs.clone();
        SunoCallbacks::builder()
            .hmac_key(KEY)
            .store(store(db).await)
            .in_flight_wait(Duration::from_secs(5))
            .on_complete(move |_| {
                runs.bump();
                async { Ok(()) }
            })
            .build()
            .expect("valid configuration")
    };
    let body = MusicCallback::complete("waiting-task").body();
    let first = tokio::spawn(send(slow.service(), signed(body.clone())));
    tokio::time::timeout(Duration::from_secs(10), entered.notified())
        .await
        .expect("the first replica's handler started");
    let second = tokio::spawn(send(other.service(), signed(body)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    release.notify_one();
    first.await.expect("first").expect(200, "processed");
    second.await.expect("second").expect(200, "duplicate");
    assert_eq!(runs.get(), 1);
}

/// A replica that dies holding a claim holds the callback off for its lease only.
async fn a_dead_replicas_claim_expires_with_its_lease(db: &Db) {
    let key = DedupKey::new(
        "dead-replica-task",
        Family::Music,
        "complete",
        Outcome::Success,
    );
    let dying = store(db).await;
    let claimed = dying.claim(&key, Duration::from_millis(1200)).await;
    assert!(matches!(claimed, Ok(Claim::Acquired(_))), "{claimed:?}");
    drop(dying);

    let runs = Counter::default();
    let survivor = {
        let runs = runs.clone();
        SunoCallbacks::builder()
            .hmac_key(KEY)
            .store(store(db).await)
            .in_flight_wait(Duration::from_millis(200))
            .on_complete(move |_| {
                runs.bump();
                async { Ok(()) }
            })
            .build()
            .expect("valid configuration")
    };
    let body = MusicCallback::complete("dead-replica-task").body();
    send(survivor.service(), signed(body.clone()))
        .await
        .expect(409, "in_flight");
    assert_eq!(runs.get(), 0);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    send(survivor.service(), signed(body))
        .await
        .expect(200, "processed");
    assert_eq!(runs.get(), 1);
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// `text`'s signature headers on a forged `complete` body.
fn forged_complete(
    text: &http::Request<http_body_util::Full<bytes::Bytes>>,
    task: &str,
) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    let mut forged = suno_callback::testing::unsigned_request(
        common::PATH,
        MusicCallback::complete(task).body(),
    );
    for name in ["x-webhook-timestamp", "x-webhook-signature"] {
        forged
            .headers_mut()
            .insert(name, text.headers()[name].clone());
    }
    forged
}

/// A signature used on one inline replica is bound on the other: its headers on a
/// forged body are refused there, and the genuine callback, freshly signed, runs.
async fn a_signature_used_on_one_replica_is_bound_on_the_other(db: &Db) {
    let runs = Counter::default();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let runs = runs.clone();
        replicas.push(
            SunoCallbacks::builder()
                .hmac_key(KEY)
                .store(store(db).await)
                .fallback(move |_| {
                    runs.bump();
                    async { Ok(()) }
                })
                .build()
                .expect("valid configuration"),
        );
    }
    let signer = suno_callback::testing::Signer::new(KEY);
    let now = unix_now();
    let text =
        MusicCallback::text("binding-task").signed_request_at(&signer, common::PATH, now - 30);
    let forged = forged_complete(&text, "binding-task");
    send(replicas[0].service(), text)
        .await
        .expect(200, "processed");
    let refused = send(replicas[1].service(), forged).await;
    refused.expect(401, "rejected");
    assert_eq!(
        refused.json["reason"],
        "signature already used by another callback"
    );
    let complete =
        MusicCallback::complete("binding-task").signed_request_at(&signer, common::PATH, now);
    send(replicas[1].service(), complete)
        .await
        .expect(200, "processed");
    assert_eq!(runs.get(), 2);
}

/// Two replicas sharing one inbox bind signatures in the inbox's own database
/// (`Inbox::dedup_store`): a signature stored on one is refused with a forged body on
/// the other, and nothing forged is stored.
async fn an_inbox_binds_signatures_in_its_own_database(db: &Db) {
    let mut replicas = Vec::new();
    let mut inboxes = Vec::new();
    for _ in 0..2 {
        let inbox = db.inbox(Inbox::builder()).await;
        replicas.push(
            SunoCallbacks::builder()
                .hmac_key(KEY)
                .store(inbox.dedup_store())
                .fallback(|_| async { Ok(()) })
                .inbox(inbox.clone())
                .build()
                .expect("valid configuration"),
        );
        inboxes.push(inbox);
    }
    let signer = suno_callback::testing::Signer::new(KEY);
    let text = MusicCallback::text("inbox-binding").signed_request_at(
        &signer,
        common::PATH,
        unix_now() - 30,
    );
    let forged = forged_complete(&text, "inbox-binding");
    send(replicas[0].service(), text)
        .await
        .expect(200, "accepted");
    send(replicas[1].service(), forged)
        .await
        .expect(401, "rejected");
    assert_eq!(
        db.count("SELECT COUNT(*) FROM suno_signature_bindings")
            .await,
        1,
        "the binding is a row of the inbox's database"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM suno_inbox_events").await,
        1,
        "only the genuine callback is stored"
    );
    for inbox in inboxes {
        inbox.close().await;
    }
}

/// Pruning deletes the expired rows, batch after batch, and nothing live.
async fn pruning_deletes_expired_rows_only(db: &Db) {
    let store = match db.kind {
        Kind::Sqlite => SqlStore::Sqlite(
            SqliteStore::builder()
                .prune_interval(Duration::ZERO)
                .prune_batch(3)
                .connect(&db.url())
                .await
                .expect("open"),
        ),
        Kind::Postgres => SqlStore::Postgres(
            PostgresStore::builder()
                .prune_interval(Duration::ZERO)
                .prune_batch(3)
                .connect(&db.url())
                .await
                .expect("connect"),
        ),
    };
    let short = Duration::from_millis(200);
    let key = |n: usize| {
        DedupKey::new(
            format!("prune-{n}"),
            Family::Music,
            "complete",
            Outcome::Success,
        )
    };
    for n in 0..10 {
        let Claim::Acquired(token) = store.claim(&key(n), short).await.expect("claim") else {
            panic!("a fresh key is free");
        };
        if n % 2 == 0 {
            store
                .complete(&key(n), token, short)
                .await
                .expect("complete");
        }
    }
    for n in 0..4 {
        let signature = SignatureUse::new(format!("prune-{n}"), "1700000000", "text", false);
        store.bind_signature(&signature, short).await.expect("bind");
    }
    // Live: a claim, a done key and a binding that outlast the test.
    let live = Duration::from_secs(3600);
    let Claim::Acquired(token) = store.claim(&key(100), live).await.expect("claim") else {
        panic!("a fresh key is free");
    };
    store
        .complete(&key(100), token, live)
        .await
        .expect("complete");
    store.claim(&key(101), live).await.expect("claim");
    let signature = SignatureUse::new("prune-live", "1700000000", "text", false);
    store.bind_signature(&signature, live).await.expect("bind");

    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        store.prune().await.expect("prune"),
        14,
        "every expired row, in batches of 3"
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM suno_dedup_keys").await, 2);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM suno_signature_bindings")
            .await,
        1
    );
    assert_eq!(store.prune().await.expect("prune"), 0);
    assert_eq!(
        store.claim(&key(100), live).await.expect("claim"),
        Claim::Done
    );
    assert_eq!(
        store.claim(&key(101), live).await.expect("claim"),
        Claim::InFlight
    );
}

/// A store alone runs the crate's migrations; an inbox on the same database later
/// finds them applied, and a store on an inbox's database finds its tables.
async fn migrations_are_shared_with_the_inbox(db: &Db) {
    let alone = store(db).await;
    let key = DedupKey::new("migrations", Family::Wav, "", Outcome::Success);
    assert!(matches!(
        alone.claim(&key, Duration::from_secs(30)).await,
        Ok(Claim::Acquired(_))
    ));
    let inbox = db.inbox(Inbox::builder()).await;
    assert_eq!(
        inbox
            .dedup_store()
            .claim(&key, Duration::from_secs(30))
            .await
            .expect("claim"),
        Claim::InFlight,
        "the inbox's store sees the rows of the store alone"
    );
    let versions = db
        .count("SELECT COUNT(*) FROM suno_inbox_migrations WHERE version = 4")
        .await;
    assert_eq!(versions, 1);
    inbox.close().await;
}

/// A database that cannot be reached is an error at once, with no password in it.
async fn an_unreachable_database_is_reported(db: &Db) {
    match db.kind {
        Kind::Sqlite => {
            let error = SqliteStore::connect("sqlite:///nonexistent-folder/deeper/store.db")
                .await
                .expect_err("no such folder");
            assert!(error.is_unavailable(), "{error}");
        }
        Kind::Postgres => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free port")
                .port();
            let url = format!("postgres://user:hunter2@127.0.0.1:{port}/app");
            let error = PostgresStore::builder()
                .acquire_timeout(Duration::from_millis(500))
                .connect(&url)
                .await
                .expect_err("nothing listens there");
            assert!(error.is_unavailable(), "{error}");
            assert!(!error.to_string().contains("hunter2"), "{error}");
        }
    }
}

/// Two copies of the quickstart with one PostgreSQL `DATABASE_URL` say they use
/// `PostgresStore` and behave as one receiver.
async fn two_quickstarts_on_one_postgres_are_one_receiver(db: &Db) {
    let url = db.url();
    let env = [
        ("SUNO_WEBHOOK_HMAC_KEY", KEY),
        ("DATABASE_URL", url.as_str()),
    ];
    two_quickstarts_are_one_receiver(&env, "PostgresStore").await;
}

/// Counts the statements sqlx sends (its `sqlx::query` events) on this thread.
#[derive(Clone, Default)]
struct StatementCounter(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StatementCounter {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _context: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if event.metadata().target() == "sqlx::query" {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl StatementCounter {
    /// The statements sent since the last call.
    fn take(&self) -> usize {
        self.0.swap(0, Ordering::SeqCst)
    }
}

/// On PostgreSQL a signed callback's signature binding and claim are one statement:
/// a first delivery costs two round trips (bind and claim, complete), a duplicate
/// one, and a forged body one (nothing claimed).
async fn a_signed_callback_costs_two_statements_and_a_duplicate_one(db: &Db) {
    use tracing_subscriber::layer::SubscriberExt as _;
    let store = PostgresStore::connect(&db.url())
        .await
        .expect("connect the PostgreSQL store");
    let counter = StatementCounter::default();
    let _counting =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(counter.clone()));
    // The first call opens the connection and starts the pruner.
    let warm = DedupKey::new("warm-up", Family::Music, "complete", Outcome::Success);
    assert!(matches!(
        store.claim(&warm, Duration::from_secs(30)).await,
        Ok(Claim::Acquired(_))
    ));
    counter.take();

    let key = DedupKey::new("two-trips", Family::Music, "complete", Outcome::Success);
    let signature = SignatureUse::new("two-trips", "1700000000", "complete", false)
        .with_body(bytes::Bytes::from_static(b"first body"));
    let ttl = Duration::from_secs(600);
    let lease = Duration::from_secs(30);
    let (binding, claim) = store
        .bind_and_claim(&signature, ttl, &key, lease)
        .await
        .expect("bind and claim");
    assert_eq!(binding, Binding::First);
    let Some(Claim::Acquired(token)) = claim else {
        panic!("the first delivery claims the key: {claim:?}");
    };
    assert_eq!(counter.take(), 1, "binding and claim are one statement");
    store.complete(&key, token, ttl).await.expect("complete");
    assert_eq!(counter.take(), 1, "completion is one statement");

    let duplicate = store
        .bind_and_claim(&signature, ttl, &key, lease)
        .await
        .expect("bind and claim the duplicate");
    assert_eq!(duplicate, (Binding::Same, Some(Claim::Done)));
    assert_eq!(counter.take(), 1, "a duplicate is one statement");

    let forged = SignatureUse::new("two-trips", "1700000000", "complete", false)
        .with_body(bytes::Bytes::from_static(b"another body"));
    let untouched = DedupKey::new("forged", Family::Music, "complete", Outcome::Success);
    let refused = store
        .bind_and_claim(&forged, ttl, &untouched, lease)
        .await
        .expect("bind and claim the forged body");
    assert_eq!(refused, (Binding::Other, None));
    assert_eq!(counter.take(), 1, "a forged body is one statement");
    // The forged body's key was not claimed.
    assert!(matches!(
        store.claim(&untouched, lease).await,
        Ok(Claim::Acquired(_))
    ));
}

fn main() -> ExitCode {
    let arguments = Arguments::from_args();
    let url = postgres_url();
    let required = std::env::var(REQUIRE).is_ok_and(|value| value == "1");
    let postgres = postgres_answers(&url);
    if required && !postgres {
        eprintln!(
            "{REQUIRE}=1 but no PostgreSQL server answers at {url}: the PostgreSQL tests cannot run"
        );
        return ExitCode::FAILURE;
    }
    if !postgres {
        println!(
            "PostgreSQL tests skipped: no PostgreSQL server answers at {url} (start one or set \
             SUNO_CALLBACK_POSTGRES_URL; {REQUIRE}=1 makes this a failure)"
        );
    }
    let mut trials = Vec::new();
    for kind in [Kind::Sqlite, Kind::Postgres] {
        let mut suite = suno_callback_tests_suite(kind);
        if kind == Kind::Postgres {
            suite.extend(suite!(kind;
                two_quickstarts_on_one_postgres_are_one_receiver,
                a_signed_callback_costs_two_statements_and_a_duplicate_one,
            ));
        }
        let ignored = kind == Kind::Postgres && !postgres;
        trials.extend(
            suite
                .into_iter()
                .map(|trial| trial.with_ignored_flag(ignored)),
        );
    }
    libtest_mimic::run(&arguments, trials).exit_code()
}

fn suno_callback_tests_suite(kind: Kind) -> Vec<libtest_mimic::Trial> {
    suite!(kind;
        claim_is_exclusive,
        complete_marks_done,
        release_frees_the_key,
        lease_expiry_frees_the_key,
        expired_token_cannot_complete,
        ttl_expiry_forgets_done,
        token_mismatch_is_refused,
        settled_token_is_spent,
        keys_are_independent,
        signature_binds_to_its_first_use,
        signature_binding_expires,
        bind_and_claim_keeps_both_guarantees,
        concurrent_claims_have_one_winner,
        concurrent_bindings_have_one_winner,
        concurrent_bind_and_claims_have_one_winner,
        the_suite_passes_across_two_replicas,
        replicas_run_each_callback_once,
        a_duplicate_waits_for_the_other_replica,
        a_dead_replicas_claim_expires_with_its_lease,
        a_signature_used_on_one_replica_is_bound_on_the_other,
        an_inbox_binds_signatures_in_its_own_database,
        pruning_deletes_expired_rows_only,
        migrations_are_shared_with_the_inbox,
        an_unreachable_database_is_reported,
    )
}
