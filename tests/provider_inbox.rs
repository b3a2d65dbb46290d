//! `InboxRegistry`, the registry of expected tasks in the inbox's database, against
//! real databases: SQLite (a file in a temporary folder) and PostgreSQL (a schema of
//! its own per test). The registry conformance suite, two replicas sharing the due
//! tasks through two connection pools, a registry that outlives its process, and the
//! reconciler polling through it, keeping each poll's answer.
//!
//! PostgreSQL is `SUNO_CALLBACK_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). Without a server its tests are reported
//! as ignored, unless `SUNO_CALLBACK_REQUIRE_POSTGRES=1` (as CI sets it), which makes a
//! missing server a failure.

mod common;
mod fake_provider;
mod inbox_db;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use common::Counter;
use fake_provider::{FakeProvider, Reply, provider_fixture};
use inbox_db::{Db, Kind, REQUIRE, postgres_answers, postgres_url};
use libtest_mimic::Arguments;
use suno_callback::SunoCallbacks;
use suno_callback::inbox::Inbox;
use suno_callback::provider::{ExpectedTask, ProviderClient, Reconciler, TaskRegistry};
use suno_callback::testing::registry_conformance;
use suno_callback::{ApiRoute, Family};

async fn conformance(db: &Db) {
    let inbox = db.inbox(Inbox::builder()).await;
    registry_conformance::run_all(Arc::new(inbox.task_registry())).await;
    inbox.close().await;
}

/// Two replicas, each with its own connection pool to one database, polling at once:
/// every task goes to exactly one of them.
async fn replicas_share_the_due_tasks(db: &Db) {
    let (a, b) = (
        db.inbox(Inbox::builder()).await,
        db.inbox(Inbox::builder()).await,
    );
    let replicas = [a.task_registry(), b.task_registry()].map(Arc::new);
    registry_conformance::replicas_never_share_a_task(&replicas).await;
    a.close().await;
    b.close().await;
}

/// The tasks are in the database: a new process (a new inbox on the same database)
/// finds them due, with their family and registration time.
async fn the_registry_outlives_its_process(db: &Db) {
    let first = db.inbox(Inbox::builder()).await;
    let registry = first.task_registry();
    registry_conformance::a_task_outlives_its_registry(registry, |registry| async move {
        drop(registry);
        first.close().await;
        // The second inbox's pool lives as long as the registry made from it.
        db.inbox(Inbox::builder()).await.task_registry()
    })
    .await;
}

/// A row of a family this version does not know is skipped, not a panic nor an error
/// that stops the other tasks.
async fn an_unknown_family_in_the_table_is_skipped(db: &Db) {
    let inbox = db.inbox(Inbox::builder()).await;
    let registry = inbox.task_registry();
    registry
        .expect(ExpectedTask::new("good", Family::Wav, 1), 0)
        .await
        .expect("expect");
    db.exec(
        "INSERT INTO suno_expected_tasks (task_id, family, registered_at, due_at) \
         VALUES ('odd', 'hologram', 1, 0)",
    )
    .await;
    assert_eq!(
        registry.take_due(5, 10, 10).await.expect("take_due"),
        [ExpectedTask::new("good", Family::Wav, 1)]
    );
    assert_eq!(registry.family_of("odd").await.expect("family_of"), None);
    inbox.close().await;
}

/// A row written without a route (before the route was kept) is a classic task; a row
/// of a route this version does not know is skipped.
async fn rows_without_a_route_are_classic(db: &Db) {
    let inbox = db.inbox(Inbox::builder()).await;
    let registry = inbox.task_registry();
    registry
        .expect(
            ExpectedTask::new("jobs-row", Family::Unknown, 2).with_route(ApiRoute::Jobs),
            0,
        )
        .await
        .expect("expect");
    db.exec(
        "INSERT INTO suno_expected_tasks (task_id, family, registered_at, due_at) \
         VALUES ('old-row', 'music', 1, 0)",
    )
    .await;
    db.exec(
        "INSERT INTO suno_expected_tasks (task_id, family, registered_at, due_at, route) \
         VALUES ('odd-route', 'music', 1, 0, 'carrier-pigeon')",
    )
    .await;
    let mut taken = registry.take_due(5, 10, 10).await.expect("take_due");
    taken.sort_by_key(ExpectedTask::registered_at_ms);
    assert_eq!(
        taken,
        [
            ExpectedTask::new("old-row", Family::Music, 1),
            ExpectedTask::new("jobs-row", Family::Unknown, 2).with_route(ApiRoute::Jobs),
        ]
    );
    inbox.close().await;
}

/// The reconciler polls a task registered in the inbox's database, delivers its
/// outcome once, and removes it from the table.
async fn the_reconciler_polls_through_the_inbox_registry(db: &Db) {
    let fake = FakeProvider::start().await;
    let inbox = db.inbox(Inbox::builder()).await;
    let runs = Counter::default();
    let counted = runs.clone();
    let callbacks = SunoCallbacks::builder()
        .hmac_key(common::KEY)
        .task_registry(inbox.task_registry())
        .on_complete(move |_| {
            counted.bump();
            async { Ok(()) }
        })
        .build()
        .expect("receiver");
    let client = ProviderClient::builder("k")
        .base_url(fake.base_url())
        .build()
        .expect("client");
    let reconciler = Reconciler::builder(&callbacks, client)
        .after(Duration::ZERO)
        .build();
    fake.script(
        "inbox-task",
        [Reply::ok(provider_fixture("music_success", "inbox-task"))],
    );
    reconciler
        .expect("inbox-task", Family::Music)
        .await
        .expect("expect");
    assert_eq!(
        db.count("SELECT COUNT(*) FROM suno_expected_tasks").await,
        1
    );
    assert_eq!(reconciler.poll_due().await.expect("poll").delivered, 1);
    assert_eq!(runs.get(), 1);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM suno_expected_tasks").await,
        0
    );
    inbox.close().await;
}

/// Each poll that leaves a task registered keeps what it got, and when, in the task's
/// row: what the console's expected-tasks page shows.
async fn each_poll_keeps_its_answer_for_the_operator(db: &Db) {
    let fake = FakeProvider::start().await;
    let inbox = db.inbox(Inbox::builder()).await;
    let callbacks = SunoCallbacks::builder()
        .hmac_key(common::KEY)
        .task_registry(inbox.task_registry())
        .on_complete(|_| async { Ok(()) })
        .build()
        .expect("receiver");
    let client = ProviderClient::builder("k")
        .base_url(fake.base_url())
        .max_retries(0)
        .build()
        .expect("client");
    let reconciler = Reconciler::builder(&callbacks, client)
        .after(Duration::ZERO)
        .build();
    fake.script(
        "polled-task",
        [
            Reply::ok(provider_fixture("music_pending", "polled-task")),
            Reply::status(503),
            Reply::ok(provider_fixture("music_first_success", "polled-task")),
        ],
    );
    reconciler
        .expect("polled-task", Family::Music)
        .await
        .expect("expect");
    let admin = inbox.admin();
    let last_poll = || async {
        let rows = admin.expected(None, 10).await.expect("expected tasks");
        assert_eq!(rows.len(), 1, "{rows:?}");
        rows[0].last_poll.clone()
    };
    assert_eq!(last_poll().await, None, "not polled yet");

    let before = now_ms();
    let mut answers = Vec::new();
    for _ in 0..3 {
        assert!(admin.poll_now("polled-task").await.expect("poll now"));
        assert_eq!(reconciler.poll_due().await.expect("poll").polled, 1);
        let (answer, polled_at) = last_poll().await.expect("a poll's answer");
        assert!(
            (before..=now_ms()).contains(&polled_at),
            "{polled_at} not in {before}.."
        );
        answers.push(answer);
    }
    assert_eq!(answers[0], "pending: nothing to deliver yet");
    assert!(
        answers[1].starts_with("request failed:") && answers[1].contains("503"),
        "{answers:?}"
    );
    assert_eq!(answers[2], "first delivered: ignored", "{answers:?}");
    // Registered again, the task starts afresh: no answer of its earlier life.
    reconciler
        .expect("polled-task", Family::Music)
        .await
        .expect("expect");
    assert_eq!(last_poll().await, None, "registered again");
    inbox.close().await;
}

/// A settled task's family answers for `SETTLED_FAMILY_TTL`, then not; each `done`
/// deletes a bounded number of the expired rows.
async fn settled_families_expire(db: &Db) {
    let inbox = db.inbox(Inbox::builder()).await;
    let registry = inbox.task_registry();
    let week_ms = i64::try_from(suno_callback::provider::SETTLED_FAMILY_TTL.as_millis()).unwrap();
    let now = now_ms();
    db.exec(&format!(
        "INSERT INTO suno_settled_tasks (task_id, family, settled_at) VALUES \
         ('old', 'midi', {}), ('recent', 'wav', {})",
        now - week_ms - 60_000,
        now - week_ms + 600_000
    ))
    .await;
    assert_eq!(registry.family_of("old").await.expect("family"), None);
    assert_eq!(
        registry.family_of("recent").await.expect("family"),
        Some(Family::Wav)
    );
    registry
        .expect(ExpectedTask::new("fresh", Family::Midi, 0), 0)
        .await
        .expect("expect");
    registry.done("fresh").await.expect("done");
    assert_eq!(
        registry.family_of("fresh").await.expect("family"),
        Some(Family::Midi)
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM suno_settled_tasks WHERE task_id = 'old'")
            .await,
        0,
        "done forgets the expired rows"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM suno_settled_tasks").await,
        2,
        "recent and fresh stay"
    );
    // Keyed as unknown (a shapeless failure whose family was not known then): that
    // is the family kept, so its redeliveries keep the key on every replica.
    registry
        .expect(ExpectedTask::new("keyed-unknown", Family::Wav, 0), 0)
        .await
        .expect("expect");
    registry
        .done_as("keyed-unknown", Family::Unknown)
        .await
        .expect("done as");
    assert_eq!(
        registry.family_of("keyed-unknown").await.expect("family"),
        Some(Family::Unknown)
    );
    // A poll's answer quoting a NUL (which PostgreSQL's text refuses) is stored.
    registry
        .expect(ExpectedTask::new("nul-answer", Family::Wav, 0), 0)
        .await
        .expect("expect");
    registry
        .reschedule_after_poll("nul-answer", 0, "unmapped: status \"a\u{0}b\"")
        .await
        .expect("an answer with a NUL");
    let rows = inbox.admin().expected(None, 10).await.expect("expected");
    let row = rows
        .iter()
        .find(|row| row.task_id == "nul-answer")
        .expect("the task");
    assert_eq!(
        row.last_poll.as_ref().map(|(answer, _)| answer.as_str()),
        Some("unmapped: status \"a b\"")
    );
    // A task that was never registered settles nothing.
    registry.done("never-registered").await.expect("done");
    assert_eq!(
        registry
            .family_of("never-registered")
            .await
            .expect("family"),
        None
    );
    inbox.close().await;
}

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since_epoch.as_millis()).expect("milliseconds fit")
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
        println!("PostgreSQL registry tests skipped: no PostgreSQL server answers at {url}");
    }
    let mut trials = Vec::new();
    for kind in [Kind::Sqlite, Kind::Postgres] {
        let ignored = kind == Kind::Postgres && !postgres;
        trials.extend(
            suite!(kind;
                conformance,
                replicas_share_the_due_tasks,
                the_registry_outlives_its_process,
                an_unknown_family_in_the_table_is_skipped,
                rows_without_a_route_are_classic,
                the_reconciler_polls_through_the_inbox_registry,
                each_poll_keeps_its_answer_for_the_operator,
                settled_families_expire,
            )
            .into_iter()
            .map(|trial| trial.with_ignored_flag(ignored)),
        );
    }
    libtest_mimic::run(&arguments, trials).exit_code()
}
