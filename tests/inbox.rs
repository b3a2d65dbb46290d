//! The inbox against real databases: one conformance suite run on SQLite (files in a
//! temporary folder) and on PostgreSQL (each test in its own schema), and the
//! `inbox` example run as a process.
//!
//! PostgreSQL is `SUNO_CALLBACK_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). Without a server its tests are reported
//! as ignored, with a line saying why, unless `SUNO_CALLBACK_REQUIRE_POSTGRES=1` (as CI
//! sets it), which makes a missing server a failure.

mod common;
mod inbox_db;

use std::collections::HashMap;
use std::future::Future;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{KEY, RunningExample, http_send, send, signed};
use inbox_db::{Db, Kind, REQUIRE, postgres_answers, postgres_url};
use libtest_mimic::Arguments;
use suno_callback::event::Payload;
use suno_callback::inbox::sqlx;
use suno_callback::inbox::{
    EventContext, EventState, Inbox, InboxBuilder, Replay, RetryPolicy, RunReport, RunResult,
};
use suno_callback::testing::{FamilyCallback, MusicCallback};
use suno_callback::{CallbackEvent, Family, HandlerError, Route, SunoCallbacks};

/// Settings that make tests quick: tiny retry delays, short polls.
fn quick() -> InboxBuilder {
    Inbox::builder()
        .retry(RetryPolicy::new(
            Duration::from_millis(5),
            Duration::from_millis(50),
        ))
        .poll_interval(Duration::from_millis(20))
        .lease(Duration::from_secs(5))
}

type Runs = Arc<Mutex<HashMap<String, u32>>>;

/// A receiver in inbox mode whose one handler counts runs per task and then calls
/// `behaviour` with the run's attempt.
fn receiver<F, Fut>(inbox: &Inbox, runs: &Runs, behaviour: F) -> SunoCallbacks
where
    F: Fn(u32) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    let runs = Arc::clone(runs);
    let behaviour = Arc::new(behaviour);
    SunoCallbacks::builder()
        .hmac_key(KEY)
        .fallback(move |event: CallbackEvent| {
            *runs
                .lock()
                .expect("lock")
                .entry(event.task_id().to_owned())
                .or_default() += 1;
            let attempt = EventContext::current().map_or(0, |context| context.attempt());
            let behaviour = Arc::clone(&behaviour);
            async move { behaviour(attempt).await }
        })
        .inbox(inbox.clone())
        .build()
        .expect("valid configuration")
}

async fn succeed(_attempt: u32) -> Result<(), HandlerError> {
    Ok(())
}

/// Waits (up to 30 s) until `check` holds on the inbox's stats.
async fn wait_for(
    inbox: &Inbox,
    what: &str,
    check: impl Fn(&suno_callback::inbox::InboxStats) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stats = inbox.stats().await.expect("stats");
        if check(&stats) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn only_event(inbox: &Inbox, task: &str) -> suno_callback::inbox::StoredEvent {
    let mut events = inbox.events_of_task(task).await.expect("events");
    assert_eq!(events.len(), 1, "{events:?}");
    events.remove(0)
}

/// The public inbox types can be shared across tasks and threads.
#[allow(dead_code)]
fn send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Inbox>();
    check::<InboxBuilder>();
    check::<suno_callback::inbox::Workers>();
    check::<EventContext>();
    check::<suno_callback::inbox::InboxError>();
}

/// One handler run as the handler saw it: task, family, stage, outcome, the payload's
/// variant and which route took it.
type Seen = Arc<Mutex<Vec<(String, Family, String, String, &'static str, &'static str)>>>;

/// A receiver in inbox mode with a route for wav successes, one for wav failures and a
/// fallback, each recording what it ran in `seen`.
fn family_receiver(inbox: &Inbox, seen: &Seen) -> SunoCallbacks {
    let record = |route: &'static str, seen: &Seen| {
        let seen = Arc::clone(seen);
        move |event: CallbackEvent| {
            let payload = match event.payload() {
                Payload::Wav(_) => "wav",
                Payload::Music(_) => "music",
                Payload::Unknown => "unknown",
                _ => "other",
            };
            seen.lock().expect("lock").push((
                event.task_id().to_owned(),
                event.family(),
                event.stage().as_str().to_owned(),
                event.outcome().as_str().to_owned(),
                payload,
                route,
            ));
            async { Ok(()) }
        }
    };
    SunoCallbacks::builder()
        .hmac_key(KEY)
        .on(Route::success(Family::Wav), record("wav success", seen))
        .on(Route::failure(Family::Wav), record("wav failure", seen))
        .fallback(record("fallback", seen))
        .inbox(inbox.clone())
        .build()
        .expect("valid configuration")
}

/// A request for `body` to `path`, signed `seconds_ago` seconds ago.
fn signed_to(
    path: &str,
    body: bytes::Bytes,
    seconds_ago: i64,
) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let now = i64::try_from(now).expect("a 64-bit clock");
    common::signer().request_at(path, body, now - seconds_ago)
}

// ---- the conformance suite -------------------------------------------------------

async fn accepted_then_duplicate(db: &Db) {
    let inbox = db.inbox(quick()).await;
    let runs = Runs::default();
    let callbacks = receiver(&inbox, &runs, succeed);
    let body = MusicCallback::complete("t-accept").body();
    send(callbacks.service(), signed(body.clone()))
        .await
        .expect(200, "accepted");
    send(callbacks.service(), signed(body.clone()))
        .await
        .expect(200, "duplicate");
    // A failure of the same task and stage is another event.
    let failure = MusicCallback::new("t-accept", "complete")
        .with_code(500)
        .body();
    send(callbacks.service(), signed(failure))
        .await
        .expect(200, "accepted");
    // Refused requests store nothing.
    send(
        callbacks.service(),
        common::Signer::new("wrong").request(common::PATH, body.clone()),
    )
    .await
    .expect(401, "rejected");
    let events = inbox.events_of_task("t-accept").await.expect("events");
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0].body, body,
        "the body is stored exactly as received"
    );
    assert_eq!(
        (events[0].outcome.as_str(), events[1].outcome.as_str()),
        ("success", "failure")
    );
    assert!(
        events
            .iter()
            .all(|e| e.state == EventState::Pending && e.attempts == 0)
    );
    assert!(
        runs.lock().expect("lock").is_empty(),
        "no handler runs in the request"
    );
    inbox.close().await;
}

async fn a_wav_event_is_stored_and_run_as_wav(db: &Db) {
    let inbox = db.inbox(quick()).await;
    let seen = Seen::default();
    let callbacks = family_receiver(&inbox, &seen);
    let success = FamilyCallback::success(Family::Wav, "t-wav-ok");
    // A failure that carries only its task id: its body names no family.
    let shapeless = FamilyCallback::failure(Family::Midi, "t-wav-fail").body();
    assert_eq!(
        CallbackEvent::from_json(shapeless.clone())
            .expect("a callback")
            .family(),
        Family::Unknown,
        "the body alone says nothing of its family"
    );
    let wav_path = success.path(common::PATH);
    send(callbacks.service(), signed_to(&wav_path, success.body(), 1))
        .await
        .expect(200, "accepted");
    send(
        callbacks.service(),
        signed_to(&wav_path, shapeless.clone(), 2),
    )
    .await
    .expect(200, "accepted");
    // The same shapeless failure on the shared path is of no known family.
    let elsewhere = FamilyCallback::failure(Family::Midi, "t-no-family").body();
    send(callbacks.service(), signed_to(common::PATH, elsewhere, 3))
        .await
        .expect(200, "accepted");

    let stored = only_event(&inbox, "t-wav-ok").await;
    assert_eq!(
        (
            stored.family.as_str(),
            stored.stage.as_str(),
            stored.outcome.as_str()
        ),
        ("wav", "", "success")
    );
    let stored = only_event(&inbox, "t-wav-fail").await;
    assert_eq!(
        (
            stored.family.as_str(),
            stored.stage.as_str(),
            stored.outcome.as_str()
        ),
        ("wav", "", "failure"),
        "the path's family is stored"
    );
    assert_eq!(stored.body, shapeless, "the body is stored as received");
    let stored = only_event(&inbox, "t-no-family").await;
    assert_eq!(
        (stored.family.as_str(), stored.outcome.as_str()),
        ("unknown", "failure")
    );

    let workers = inbox.start_workers(&callbacks);
    wait_for(&inbox, "3 done", |s| s.done == 3).await;
    workers.shutdown().await;
    inbox.close().await;
    let mut seen = seen.lock().expect("lock").clone();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (
                "t-no-family".to_owned(),
                Family::Unknown,
                String::new(),
                "failure".to_owned(),
                "unknown",
                "fallback"
            ),
            (
                "t-wav-fail".to_owned(),
                Family::Wav,
                String::new(),
                "failure".to_owned(),
                "wav",
                "wav failure"
            ),
            (
                "t-wav-ok".to_owned(),
                Family::Wav,
                String::new(),
                "success".to_owned(),
                "wav",
                "wav success"
            ),
        ]
    );
}

async fn a_failure_then_a_success_of_one_task_both_run(db: &Db) {
    let inbox = db.inbox(quick()).await;
    let seen = Seen::default();
    let callbacks = family_receiver(&inbox, &seen);
    let workers = inbox.start_workers(&callbacks);
    let failure = FamilyCallback::failure(Family::Wav, "t-again");
    let success = FamilyCallback::success(Family::Wav, "t-again");
    send(
        callbacks.service(),
        signed_to(&failure.path(common::PATH), failure.body(), 4),
    )
    .await
    .expect(200, "accepted");
    wait_for(&inbox, "the failure done", |s| s.done == 1).await;
    // The task was retried at the provider and succeeded: a new event, not a duplicate.
    send(
        callbacks.service(),
        signed_to(&success.path(common::PATH), success.body(), 2),
    )
    .await
    .expect(200, "accepted");
    wait_for(&inbox, "the success done", |s| s.done == 2).await;
    // Each is a duplicate of itself only.
    send(
        callbacks.service(),
        signed_to(&success.path(common::PATH), success.body(), 1),
    )
    .await
    .expect(200, "duplicate");
    // The same for music: `error` then `complete`.
    send(
        callbacks.service(),
        signed(MusicCallback::failure("t-music-again", 501).body()),
    )
    .await
    .expect(200, "accepted");
    send(
        callbacks.service(),
        signed(MusicCallback::complete("t-music-again").body()),
    )
    .await
    .expect(200, "accepted");
    wait_for(&inbox, "all done", |s| s.done == 4).await;
    let events = inbox.events_of_task("t-again").await.expect("events");
    let keys: Vec<(&str, &str, EventState)> = events
        .iter()
        .map(|e| (e.family.as_str(), e.outcome.as_str(), e.state))
        .collect();
    assert_eq!(
        keys,
        [
            ("wav", "failure", EventState::Done),
            ("wav", "success", EventState::Done)
        ]
    );
    workers.shutdown().await;
    inbox.close().await;
    let seen = seen.lock().expect("lock").clone();
    let runs: Vec<(&str, &str, &str)> = seen
        .iter()
        .map(|(task, _, _, outcome, _, route)| (task.as_str(), outcome.as_str(), *route))
        .collect();
    assert_eq!(
        &runs[..2],
        &[
            ("t-again", "failure", "wav failure"),
            ("t-again", "success", "wav success"),
        ]
    );
    let mut music: Vec<(&str, &str)> = seen
        .iter()
        .filter(|run| run.0 == "t-music-again")
        .map(|run| (run.2.as_str(), run.3.as_str()))
        .collect();
    music.sort_unstable();
    assert_eq!(music, [("complete", "success"), ("error", "failure")]);
}

/// Inbox mode keeps verification's signature binding: the signature of a stored `text`,
/// reused with a forged `complete` of the same task, is refused and stores nothing.
async fn a_reused_signature_is_refused_and_not_stored(db: &Db) {
    let inbox = db.inbox(quick()).await;
    let runs = Runs::default();
    let callbacks = receiver(&inbox, &runs, succeed);
    let at = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs(),
    )
    .expect("a 64-bit clock")
        - 30;
    let text = MusicCallback::text("t-reused").body();
    send(
        callbacks.service(),
        common::signer().request_at(common::PATH, text, at),
    )
    .await
    .expect(200, "accepted");
    let forged = MusicCallback::complete("t-reused").body();
    let answer = send(
        callbacks.service(),
        common::signer().request_at(common::PATH, forged, at),
    )
    .await;
    answer.expect(401, "rejected");
    assert_eq!(
        answer.json["reason"], "signature already used by another callback",
        "{:?}",
        answer.json
    );
    let stored = only_event(&inbox, "t-reused").await;
    assert_eq!(stored.stage, "text", "the forged complete is not stored");
    inbox.close().await;
}

async fn workers_run_each_event_once(db: &Db) {
    let inbox = db.inbox(quick().concurrency(4)).await;
    let runs = Runs::default();
    let callbacks = receiver(&inbox, &runs, |_| async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(())
    });
    let workers = inbox.start_workers(&callbacks);
    for n in 0..20 {
        let body = MusicCallback::complete(format!("t-once-{n}")).body();
        send(callbacks.service(), signed(body))
            .await
            .expect(200, "accepted");
    }
    wait_for(&inbox, "20 done", |s| s.done == 20).await;
    for n in 0..20 {
        let body = MusicCallback::complete(format!("t-once-{n}")).body();
        send(callbacks.service(), signed(body))
            .await
            .expect(200, "duplicate");
    }
    workers.shutdown().await;
    inbox.close().await;
    let runs = runs.lock().expect("lock");
    assert_eq!(runs.len(), 20);
    assert!(runs.values().all(|&count| count == 1), "{runs:?}");
}

async fn failures_retry_then_succeed(db: &Db) {
    let reports = Arc::new(Mutex::new(Vec::<RunReport>::new()));
    let seen = Arc::clone(&reports);
    let inbox = db
        .inbox(quick().on_outcome(move |report| seen.lock().expect("lock").push(report.clone())))
        .await;
    let runs = Runs::default();
    let callbacks = receiver(&inbox, &runs, |attempt| async move {
        match attempt {
            1 => Err(HandlerError::msg("first run fails")),
            2 => panic!("second run panics"),
            _ => Ok(()),
        }
    });
    let workers = inbox.start_workers(&callbacks);
    send(
        callbacks.service(),
        signed(MusicCallback::complete("t-retry").body()),
    )
    .await
    .expect(200, "accepted");
    wait_for(&inbox, "done", |s| s.done == 1).await;
    workers.shutdown().await;
    let event = only_event(&inbox, "t-retry").await;
    assert_eq!((event.state, event.attempts), (EventState::Done, 3));
    inbox.close().await;
    let reports = reports.lock().expect("lock");
    let results: Vec<_> = reports
        .iter()
        .map(|r| (r.attempt, r.result.clone()))
        .collect();
    assert!(
        matches!(results[0], (1, RunResult::Retry { .. })),
        "{results:?}"
    );
    assert!(
        matches!(results[1], (2, RunResult::Retry { .. })),
        "{results:?}"
    );
    assert_eq!(results[2], (3, RunResult::Done));
    assert!(
        reports[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("first run fails")
    );
    assert!(
        reports[1]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("panicked")
    );
}

async fn a_timeout_is_retried(db: &Db) {
    let inbox = db
        .inbox(quick().handler_timeout(Duration::from_millis(200)))
        .await;
    let runs = Runs::default();
    let callbacks = receiver(&inbox, &runs, |attempt| async move {
        if attempt == 1 {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        Ok(())
    });
    let workers = inbox.start_workers(&callbacks);
    send(
        callbacks.service(),
        signed(MusicCallback::complete("t-timeout").body()),
    )
    .await
    .expect(200, "accepted");
    wait_for(&inbox, "done", |s| s.done == 1).await;
    workers.shutdown().await;
    let event = only_event(&inbox, "t-timeout").await;
    assert_eq!(event.attempts, 2);
    inbox.close().await;
}

async fn dead_after_max_attempts_then_replayed(db: &Db) {
    let inbox = db.inbox(quick().max_attempts(3)).await;
    let runs = Runs::default();
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&healthy);
    let callbacks = receiver(&inbox, &runs, move |_| {
        let ok = flag.load(Ordering::SeqCst);
        async move {
            if ok {
                Ok(())
            } else {
                Err(HandlerError::msg("downstream is down"))
            }
        }
    });
    let workers = inbox.start_workers(&callbacks);
    send(
        callbacks.service(),
        signed(MusicCallback::complete("t-dead").body()),
    )
    .await
    .expect(200, "accepted");
    wait_for(&inbox, "dead", |s| s.dead == 1).await;
    let event = only_event(&inbox, "t-dead").await;
    assert_eq!((event.state, event.attempts), (EventState::Dead, 3));
    assert!(
        event
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("downstream is down")
    );
    // Still a duplicate while dead: the sender's retry does not store it again.
    send(
        callbacks.service(),
        signed(MusicCallback::complete("t-dead").body()),
    )
    .await
    .expect(200, "duplicate");

    healthy.store(true, Ordering::SeqCst);
    assert_eq!(inbox.replay(Replay::Dead).await.expect("replay"), 1);
    wait_for(&inbox, "done after replay", |s| s.done == 1).await;
    // A done event replays too (by task), and runs once more.
    assert_eq!(
        inbox
            .replay(Replay::Task("t-dead".into()))
            .await
            .expect("replay"),
        1
    );
    wait_for(&inbox, "done again", |s| {
        s.done == 1 && s.queue_depth() == 0
    })
    .await;
    workers.shutdown().await;
    assert_eq!(runs.lock().expect("lock")["t-dead"], 5);
    let event = only_event(&inbox, "t-dead").await;
    assert_eq!(
        inbox.replay(Replay::Event(event.id)).await.expect("replay"),
        1
    );
    assert_eq!(
        inbox.replay(Replay::Event(event.id)).await.expect("replay"),
        0,
        "pending is not replayed"
    );
    inbox.close().await;
}

/// `max_age` bounds the retries of failures: an event older than it still runs once,
/// is dead after its first failure, and runs once more when replayed.
async fn dead_after_max_age(db: &Db) {
    let inbox = db.inbox(quick().max_age(Duration::ZERO)).await;
    let runs = Runs::default();
    let callbacks = receiver(&inbox, &runs, |_| async { Err(HandlerError::msg("nope")) });
    send(
        callbacks.service(),
        signed(MusicCallback::complete("t-old").body()),
    )
    .await
    .expect(200, "accepted");
    let workers = inbox.start_workers(&callbacks);
    wait_for(&inbox, "dead", |s| s.dead == 1).await;
    assert_eq!(runs.lock().expect("lock").get("t-old").copied(), Some(1));
    let event = only_event(&inbox, "t-old").await;
    assert_eq!((event.state, event.attempts), (EventState::Dead, 1));
    assert!(
        event.last_error.as_deref().unwrap_or("").contains("nope"),
        "{event:?}"
    );
    assert_eq!(inbox.replay(Replay::Dead).await.expect("replay"), 1);
    wait_for(&inbox, "dead again", |s| {
        s.dead == 1 && s.queue_depth() == 0
    })
    .await;
    workers.shutdown().await;
    assert_eq!(runs.lock().expect("lock")["t-old"], 2, "a replay runs once");
    inbox.close().await;
}

async fn heartbeat_keeps_a_long_handler_exclusive(db: &Db) {
    // A lease long enough that a loaded machine extends it in time (the heartbeat has
    // half of it), a handler that outlives it several times over.
    let builder = || quick().lease(Duration::from_millis(900)).concurrency(2);
    let inbox = db.inbox(builder()).await;
    let other = db.inbox(builder()).await;
    let runs = Runs::default();
    let slow = |_| async {
        tokio::time::sleep(Duration::from_millis(3000)).await;
        Ok(())
    };
    let callbacks = receiver(&inbox, &runs, slow);
    let other_callbacks = receiver(&other, &runs, slow);
    send(
        callbacks.service(),
        signed(MusicCallback::complete("t-long").body()),
    )
    .await
    .expect(200, "accepted");
    let workers = inbox.start_workers(&callbacks);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let other_workers = other.start_workers(&other_callbacks);
    wait_for(&inbox, "done", |s| s.done == 1).await;
    workers.shutdown().await;
    other_workers.shutdown().await;
    assert_eq!(
        runs.lock().expect("lock")["t-long"],
        1,
        "the lease was extended"
    );
    inbox.close().await;
    other.close().await;
}

/// A worker whose runtime disappears mid-handler (as a killed process would) leaves
/// its event running; another inbox takes it over once the lease ends. (That a SQLite
/// inbox takes a dead process's events back at once is tested with the example.)
async fn a_dead_workers_event_is_taken_over(db: &Db) {
    let url = db.url();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let dying = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let inbox = quick()
                .lease(Duration::from_millis(600))
                .connect(&url)
                .await
                .expect("connect");
            let runs = Runs::default();
            let callbacks = receiver(&inbox, &runs, move |_| {
                let started = started_tx.clone();
                async move {
                    let _ = started.send(());
                    std::future::pending::<()>().await;
                    Ok(())
                }
            });
            send(
                callbacks.service(),
                signed(MusicCallback::complete("t-killed").body()),
            )
            .await
            .expect(200, "accepted");
            std::mem::forget(inbox.start_workers(&callbacks));
            tokio::time::sleep(Duration::from_secs(1)).await;
        });
        runtime.shutdown_background();
    });
    tokio::task::spawn_blocking(move || started_rx.recv_timeout(Duration::from_secs(30)))
        .await
        .expect("join")
        .expect("the first handler started");
    tokio::task::spawn_blocking(move || dying.join())
        .await
        .expect("join")
        .expect("the dying worker thread");

    let inbox = db.inbox(quick()).await;
    let event = only_event(&inbox, "t-killed").await;
    assert_eq!((event.state, event.attempts), (EventState::Running, 1));
    let runs = Runs::default();
    let callbacks = receiver(&inbox, &runs, succeed);
    let started = tokio::time::Instant::now();
    let workers = inbox.start_workers(&callbacks);
    wait_for(&inbox, "taken over", |s| s.done == 1).await;
    assert!(started.elapsed() < Duration::from_secs(20));
    workers.shutdown().await;
    assert_eq!(only_event(&inbox, "t-killed").await.attempts, 2);
    inbox.close().await;
}

async fn shutdown_finishes_running_handlers(db: &Db) {
    let inbox = db.inbox(quick()).await;
    let runs = Runs::default();
    let callbacks = receiver(&inbox, &runs, |_| async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        Ok(())
    });
    let workers = inbox.start_workers(&callbacks);
    send(
        callbacks.service(),
        signed(MusicCallback::complete("t-finish").body()),
    )
    .await
    .expect(200, "accepted");
    wait_for(&inbox, "running", |s| s.running == 1).await;
    workers.shutdown_within(Duration::from_secs(10)).await;
    assert_eq!(only_event(&inbox, "t-finish").await.state, EventState::Done);
    inbox.close().await;
}

async fn shutdown_releases_what_it_cannot_finish(db: &Db) {
    let reports = Arc::new(Mutex::new(Vec::<RunReport>::new()));
    let seen = Arc::clone(&reports);
    let inbox = db
        .inbox(quick().on_outcome(move |report| seen.lock().expect("lock").push(report.clone())))
        .await;
    let runs = Runs::default();
    let callbacks = receiver(&inbox, &runs, |_| std::future::pending());
    let workers = inbox.start_workers(&callbacks);
    send(
        callbacks.service(),
        signed(MusicCallback::complete("t-release").body()),
    )
    .await
    .expect(200, "accepted");
    wait_for(&inbox, "running", |s| s.running == 1).await;
    workers.shutdown_within(Duration::from_millis(100)).await;
    let event = only_event(&inbox, "t-release").await;
    assert_eq!((event.state, event.attempts), (EventState::Pending, 0));
    assert_eq!(reports.lock().expect("lock")[0].result, RunResult::Released);
    inbox.close().await;
}

async fn a_handlers_transaction_commits_with_done(db: &Db) {
    let inbox = db.inbox(quick()).await;
    db.exec("CREATE TABLE effects (task_id TEXT NOT NULL, attempt BIGINT NOT NULL)")
        .await;
    let kind = db.kind;
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .fallback(move |event: CallbackEvent| async move {
            let context = EventContext::current().expect("run by an inbox worker");
            let attempt = i64::from(context.attempt());
            match kind {
                Kind::Sqlite => {
                    let mut tx = context
                        .sqlite_transaction()
                        .await
                        .map_err(HandlerError::new)?;
                    sqlx::query("INSERT INTO effects VALUES (?1, ?2)")
                        .bind(event.task_id())
                        .bind(attempt)
                        .execute(&mut *tx)
                        .await?;
                }
                Kind::Postgres => {
                    let mut tx = context
                        .postgres_transaction()
                        .await
                        .map_err(HandlerError::new)?;
                    sqlx::query("INSERT INTO effects VALUES ($1, $2)")
                        .bind(event.task_id())
                        .bind(attempt)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            // The first run fails after writing: its write must not survive.
            if attempt == 1 {
                return Err(HandlerError::msg("fails after its write"));
            }
            Ok(())
        })
        .inbox(inbox.clone())
        .build()
        .expect("valid configuration");
    let workers = inbox.start_workers(&callbacks);
    send(
        callbacks.service(),
        signed(MusicCallback::complete("t-tx").body()),
    )
    .await
    .expect(200, "accepted");
    wait_for(&inbox, "done", |s| s.done == 1).await;
    workers.shutdown().await;
    assert_eq!(db.count("SELECT COUNT(*) FROM effects").await, 1);
    assert_eq!(db.count("SELECT MAX(attempt) FROM effects").await, 2);
    inbox.close().await;
}

async fn prune_removes_old_finished_events_only(db: &Db) {
    let inbox = db.inbox(quick()).await;
    let runs = Runs::default();
    let callbacks = receiver(&inbox, &runs, succeed);
    send(
        callbacks.service(),
        signed(MusicCallback::complete("t-prune-a").body()),
    )
    .await
    .expect(200, "accepted");
    let workers = inbox.start_workers(&callbacks);
    wait_for(&inbox, "done", |s| s.done == 1).await;
    workers.shutdown().await;
    send(
        callbacks.service(),
        signed(MusicCallback::complete("t-prune-b").body()),
    )
    .await
    .expect(200, "accepted");
    assert_eq!(
        inbox
            .prune_older_than(Duration::from_secs(3600))
            .await
            .expect("prune"),
        0
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        inbox.prune_older_than(Duration::ZERO).await.expect("prune"),
        1
    );
    let stats = inbox.stats().await.expect("stats");
    assert_eq!((stats.done, stats.pending), (0, 1));
    // A pruned event is forgotten: delivered again, it is stored again.
    send(
        callbacks.service(),
        signed(MusicCallback::complete("t-prune-a").body()),
    )
    .await
    .expect(200, "accepted");
    inbox.close().await;
}

/// More events to prune than one pruning statement deletes: all of them go, over
/// several short statements, and nothing that is not due for pruning.
async fn prune_deletes_past_one_batch(db: &Db) {
    let inbox = db.inbox(quick()).await;
    // 2,500 done events finished a day ago, 3 finished now, 2 dead a day ago, 1 pending.
    let day_ago = "(1000 * 86400)";
    for (rows, state, finished) in [
        (2500, "'done'", day_ago),
        (3, "'done'", "0"),
        (2, "'dead'", day_ago),
        (1, "'pending'", day_ago),
    ] {
        db.exec(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
             INSERT INTO suno_inbox_events (task_id, family, stage, outcome, body, state, \
             attempts, received_at, run_after, finished_at) \
             SELECT 'prune-' || {state} || '-' || {finished} || '-' || i, 'music', 'complete', \
             'success', CAST('{{}}' AS {blob}), {state}, 1, 0, 0, \
             CASE WHEN {state} = 'pending' THEN NULL ELSE {now} - {finished} END FROM n",
            blob = db.blob_type(),
            now = db.now_ms_sql(),
        ))
        .await;
    }
    assert_eq!(
        inbox
            .prune_older_than(Duration::from_secs(3600))
            .await
            .expect("prune"),
        2502,
        "every done and dead event finished a day ago"
    );
    let stats = inbox.stats().await.expect("stats");
    assert_eq!((stats.done, stats.dead, stats.pending), (3, 0, 1));
    inbox.close().await;
}

async fn stats_report_depth_and_oldest_age(db: &Db) {
    let inbox = db.inbox(quick()).await;
    let runs = Runs::default();
    let callbacks = receiver(&inbox, &runs, succeed);
    assert_eq!(inbox.stats().await.expect("stats").oldest_pending_age, None);
    for task in ["t-s1", "t-s2", "t-s3"] {
        send(
            callbacks.service(),
            signed(MusicCallback::complete(task).body()),
        )
        .await
        .expect(200, "accepted");
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    let stats = inbox.stats().await.expect("stats");
    assert_eq!(stats.queue_depth(), 3);
    assert!(
        stats.oldest_pending_age >= Some(Duration::from_millis(50)),
        "{stats:?}"
    );
    inbox.close().await;
}

async fn a_large_body_is_stored_intact(db: &Db) {
    let inbox = db.inbox(quick()).await;
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .body_limit(8 << 20)
        .fallback(|_| async { Ok(()) })
        .inbox(inbox.clone())
        .build()
        .expect("valid configuration");
    let prompt: String = (0..(6 << 20) / 16).map(|n| format!("{n:015x} ")).collect();
    let body = format!(
        r#"{{"code":200,"msg":"ok","data":{{"callbackType":"complete","task_id":"t-big","data":[{{"id":"a","prompt":"{prompt}"}}]}}}}"#
    );
    send(callbacks.service(), signed(body.clone()))
        .await
        .expect(200, "accepted");
    let event = only_event(&inbox, "t-big").await;
    assert_eq!(event.body.len(), body.len());
    assert!(event.body == body.as_bytes(), "stored intact");
    inbox.close().await;
}

async fn a_database_down_is_503_with_retry_after(db: &Db) {
    let url = match db.kind {
        Kind::Sqlite => format!(
            "sqlite://{}",
            db.folder.join("missing-folder").join("inbox.db").display()
        ),
        Kind::Postgres => "postgres://postgres@127.0.0.1:1/test".to_owned(),
    };
    let error = Inbox::builder()
        .connect(&url)
        .await
        .expect_err("cannot connect");
    assert!(error.is_unavailable(), "{error}");
    let inbox = Inbox::builder()
        .migrate_on_start(false)
        .store_timeout(Duration::from_secs(2))
        .connect(&url)
        .await
        .expect("a lazy inbox builds while its database is down");
    let runs = Runs::default();
    let callbacks = receiver(&inbox, &runs, succeed);
    let answer = send(
        callbacks.service(),
        signed(MusicCallback::complete("t-down").body()),
    )
    .await;
    answer.expect(503, "unavailable");
    assert!(answer.headers.contains_key(http::header::RETRY_AFTER));
    assert!(inbox.stats().await.is_err());
}

async fn a_constraint_error_is_503_and_stores_nothing(db: &Db) {
    let inbox = db.inbox(quick()).await;
    db.exec(match db.kind {
        Kind::Sqlite => {
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON suno_inbox_events \
             WHEN NEW.task_id = 't-poison' BEGIN SELECT RAISE(ABORT, 'poison refused'); END"
        }
        Kind::Postgres => {
            "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN \
             IF NEW.task_id = 't-poison' THEN RAISE EXCEPTION 'poison refused'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse_poison BEFORE INSERT ON suno_inbox_events \
             FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
        }
    })
    .await;
    let runs = Runs::default();
    let callbacks = receiver(&inbox, &runs, succeed);
    let answer = send(
        callbacks.service(),
        signed(MusicCallback::complete("t-poison").body()),
    )
    .await;
    answer.expect(503, "unavailable");
    assert!(answer.headers.contains_key(http::header::RETRY_AFTER));
    assert!(
        inbox
            .events_of_task("t-poison")
            .await
            .expect("events")
            .is_empty()
    );
    send(
        callbacks.service(),
        signed(MusicCallback::complete("t-fine").body()),
    )
    .await
    .expect(200, "accepted");
    inbox.close().await;
}

/// SQLite only: the database file cannot grow (as on a full disk).
async fn a_full_disk_is_503(db: &Db) {
    use std::str::FromStr as _;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(&db.url())
        .expect("options")
        .pragma("max_page_count", "64");
    let inbox = quick().connect_sqlite(options).await.expect("connect");
    let runs = Runs::default();
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .body_limit(4 << 20)
        .fallback(|_| async { Ok(()) })
        .inbox(inbox.clone())
        .build()
        .expect("valid configuration");
    let _ = runs;
    let prompt = "x".repeat(1 << 20);
    let big = format!(
        r#"{{"code":200,"msg":"ok","data":{{"callbackType":"complete","task_id":"t-full","data":[{{"prompt":"{prompt}"}}]}}}}"#
    );
    let answer = send(callbacks.service(), signed(big)).await;
    answer.expect(503, "unavailable");
    assert!(
        inbox
            .events_of_task("t-full")
            .await
            .expect("events")
            .is_empty()
    );
    send(
        callbacks.service(),
        signed(MusicCallback::complete("t-small").body()),
    )
    .await
    .expect(200, "accepted");
    inbox.close().await;
}

/// Sends every body at once, each from a task of its own; the answers' labels in order.
async fn send_all(callbacks: &SunoCallbacks, bodies: Vec<bytes::Bytes>) -> Vec<String> {
    let mut tasks = Vec::new();
    for body in bodies {
        let service = callbacks.service();
        tasks.push(tokio::spawn(async move {
            let answer = send(service, signed(body)).await;
            format!("{} {}", answer.status.as_u16(), answer.label())
        }));
    }
    let mut labels = Vec::new();
    for task in tasks {
        labels.push(task.await.expect("request task"));
    }
    labels
}

/// Concurrent deliveries are stored together (group commit): each callback once, a
/// callback delivered twice at once is one row, one request `accepted` and the other
/// `duplicate`.
async fn concurrent_accepts_store_each_callback_once(db: &Db) {
    let inbox = db.inbox(quick()).await;
    let runs = Runs::default();
    let callbacks = receiver(&inbox, &runs, succeed);
    let task = task_of(db, "t-burst");
    let bodies: Vec<bytes::Bytes> = (0..60)
        .flat_map(|n| {
            let body = MusicCallback::complete(format!("{task}-{n}")).body();
            [body.clone(), body]
        })
        .collect();
    let labels = send_all(&callbacks, bodies).await;
    for pair in labels.chunks(2) {
        let mut pair = pair.to_vec();
        pair.sort();
        assert_eq!(pair, ["200 accepted", "200 duplicate"], "{labels:?}");
    }
    for n in 0..60 {
        let event = only_event(&inbox, &format!("{task}-{n}")).await;
        assert_eq!((event.state, event.attempts), (EventState::Pending, 0));
    }
    assert_eq!(inbox.stats().await.expect("stats").pending, 60);
    inbox.close().await;
}

/// A batch the database refuses is `503` for each of its requests and stores nothing
/// of it: whatever was answered `200 accepted` is stored, whatever was `503` is not.
async fn a_refused_batch_stores_none_of_it(db: &Db) {
    let inbox = db.inbox(quick()).await;
    let poison = task_of(db, "t-poison-burst");
    db.exec(&match db.kind {
        Kind::Sqlite => format!(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON suno_inbox_events \
             WHEN NEW.task_id = '{poison}' BEGIN SELECT RAISE(ABORT, 'poison refused'); END"
        ),
        Kind::Postgres => format!(
            "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN \
             IF NEW.task_id = '{poison}' THEN RAISE EXCEPTION 'poison refused'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse_poison BEFORE INSERT ON suno_inbox_events \
             FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
        ),
    })
    .await;
    let runs = Runs::default();
    let callbacks = receiver(&inbox, &runs, succeed);
    let task = task_of(db, "t-beside-poison");
    let mut bodies = vec![MusicCallback::complete(&poison).body()];
    bodies.extend((0..40).map(|n| MusicCallback::complete(format!("{task}-{n}")).body()));
    let labels = send_all(&callbacks, bodies).await;
    assert_eq!(labels[0], "503 unavailable");
    assert!(
        inbox
            .events_of_task(&poison)
            .await
            .expect("events")
            .is_empty()
    );
    for (n, label) in labels[1..].iter().enumerate() {
        let stored = inbox
            .events_of_task(&format!("{task}-{n}"))
            .await
            .expect("events")
            .len();
        match label.as_str() {
            "200 accepted" => assert_eq!(stored, 1, "{labels:?}"),
            "503 unavailable" => assert_eq!(stored, 0, "{labels:?}"),
            other => panic!("unexpected answer {other}: {labels:?}"),
        }
    }
    inbox.close().await;
}

/// The workers lease several due events in one statement and run each on its own: a
/// slow handler never holds the others back.
async fn a_slow_handler_never_holds_others_back(db: &Db) {
    let inbox = db.inbox(quick().concurrency(3)).await;
    let slow = Arc::new(tokio::sync::Notify::new());
    let release = Arc::clone(&slow);
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .fallback(move |event: CallbackEvent| {
            let release = Arc::clone(&release);
            let is_slow = event.task_id() == "t-slow";
            async move {
                if is_slow {
                    release.notified().await;
                }
                Ok(())
            }
        })
        .inbox(inbox.clone())
        .build()
        .expect("valid configuration");
    for task in std::iter::once("t-slow".to_owned()).chain((0..12).map(|n| format!("t-quick-{n}")))
    {
        send(
            callbacks.service(),
            signed(MusicCallback::complete(task).body()),
        )
        .await
        .expect(200, "accepted");
    }
    let workers = inbox.start_workers(&callbacks);
    wait_for(&inbox, "the quick ones done", |s| {
        s.done == 12 && s.running == 1
    })
    .await;
    slow.notify_one();
    wait_for(&inbox, "all done", |s| s.done == 13).await;
    workers.shutdown().await;
    inbox.close().await;
}

// ---- faults: a stalled database, a commit that fails, a lost lease ---------------

/// Everything the crate logs at `info` and above, from every test of this binary.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

#[derive(Clone, Copy)]
struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(|| LogWriter)
        .with_ansi(false)
        .finish();
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// The lines logged so far that contain `needle` (a task id is in its run's span).
fn logged(needle: &str) -> Vec<String> {
    String::from_utf8_lossy(&LOGS.lock().expect("lock"))
        .lines()
        .filter(|line| line.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// A task id of its own for each backend: the suites run at the same time and share
/// the captured logs.
fn task_of(db: &Db, name: &str) -> String {
    match db.kind {
        Kind::Sqlite => format!("{name}-sqlite"),
        Kind::Postgres => format!("{name}-postgres"),
    }
}

/// The database's clock in Unix milliseconds, as the inbox reads it.
fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis(),
    )
    .expect("a 64-bit clock")
}

/// `true` while the handler's future lives: set at its start, cleared when it is
/// dropped or returns.
struct Alive(Arc<AtomicBool>);

impl Alive {
    fn new(flag: &Arc<AtomicBool>) -> Self {
        flag.store(true, Ordering::SeqCst);
        Self(Arc::clone(flag))
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// A lock held by another connection (SQLite's write lock, PostgreSQL's row lock) stops
/// the heartbeat longer than the lease. The run must be stopped before the lease can
/// pass: once it has run out, whoever takes the event over (here the test, in the
/// transaction that held the lock, as a second worker would) never finds the first run
/// still alive. Shutdown returns within its grace while the lock is still held.
async fn a_run_stops_before_its_lease_can_pass(db: &Db) {
    use suno_callback::inbox::sqlx::{Connection as _, Row as _};
    let reports = Arc::new(Mutex::new(Vec::<RunReport>::new()));
    let seen = Arc::clone(&reports);
    let inbox = db
        .inbox(
            quick()
                .lease(Duration::from_millis(600))
                .concurrency(1)
                .on_outcome(move |report| seen.lock().expect("lock").push(report.clone())),
        )
        .await;
    let alive = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&alive);
    let runs = Runs::default();
    let callbacks = receiver(&inbox, &runs, move |_| {
        let alive = Alive::new(&flag);
        async move {
            let _alive = alive;
            tokio::time::sleep(Duration::from_secs(20)).await;
            Ok(())
        }
    });
    let task = task_of(db, "t-stalled");
    send(
        callbacks.service(),
        signed(MusicCallback::complete(&task).body()),
    )
    .await
    .expect(200, "accepted");
    let workers = inbox.start_workers(&callbacks);
    wait_for(&inbox, "running", |s| s.running == 1).await;
    let id = only_event(&inbox, &task).await.id;

    let take_over = |now: &str| {
        format!(
            "UPDATE suno_inbox_events SET lease_token = 'taken-over', attempts = attempts + 1, \
             run_after = {now} + 600000 WHERE id = {id} AND state = 'running' AND run_after <= {now}"
        )
    };
    let (taken, alive_at_takeover, shutdown_took) = match db.kind {
        Kind::Sqlite => {
            let mut connection = sqlx::SqliteConnection::connect(&db.url())
                .await
                .expect("connect");
            sqlx::raw_sql("BEGIN IMMEDIATE")
                .execute(&mut connection)
                .await
                .expect("write lock");
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let alive_now = alive.load(Ordering::SeqCst);
            let taken = sqlx::raw_sql(&take_over(&now_ms().to_string()))
                .execute(&mut connection)
                .await
                .expect("take over")
                .rows_affected();
            let started = std::time::Instant::now();
            let shutdown = tokio::time::timeout(
                Duration::from_secs(10),
                workers.shutdown_within(Duration::from_millis(300)),
            )
            .await;
            let took = started.elapsed();
            assert!(shutdown.is_ok(), "shutdown did not return in 10 s");
            sqlx::raw_sql("COMMIT")
                .execute(&mut connection)
                .await
                .expect("commit");
            (taken, alive_now, took)
        }
        Kind::Postgres => {
            let mut connection = sqlx::PgConnection::connect(&db.url())
                .await
                .expect("connect");
            let mut tx = connection.begin().await.expect("begin");
            let locked = sqlx::query(&format!(
                "SELECT id FROM suno_inbox_events WHERE id = {id} FOR UPDATE"
            ))
            .fetch_all(&mut *tx)
            .await
            .expect("row lock");
            assert_eq!(locked.len(), 1);
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let alive_now = alive.load(Ordering::SeqCst);
            let now = "(extract(epoch from clock_timestamp()) * 1000)::bigint";
            let taken = sqlx::raw_sql(&take_over(now))
                .execute(&mut *tx)
                .await
                .expect("take over")
                .rows_affected();
            let started = std::time::Instant::now();
            let shutdown = tokio::time::timeout(
                Duration::from_secs(10),
                workers.shutdown_within(Duration::from_millis(300)),
            )
            .await;
            let took = started.elapsed();
            assert!(shutdown.is_ok(), "shutdown did not return in 10 s");
            let state: String = sqlx::query(&format!(
                "SELECT state FROM suno_inbox_events WHERE id = {id}"
            ))
            .fetch_one(&mut *tx)
            .await
            .expect("state")
            .get(0);
            assert_eq!(state, "running");
            tx.commit().await.expect("commit");
            (taken, alive_now, took)
        }
    };
    assert_eq!(taken, 1, "the lease had run out and could be taken over");
    assert!(
        !alive_at_takeover,
        "the first run was still alive when its lease could pass to another worker"
    );
    assert!(
        shutdown_took < Duration::from_millis(800),
        "shutdown_within(300 ms) took {shutdown_took:?}"
    );
    assert_eq!(runs.lock().expect("lock")[&task], 1);
    let results: Vec<RunResult> = reports
        .lock()
        .expect("lock")
        .iter()
        .map(|report| report.result.clone())
        .collect();
    assert_eq!(results, [RunResult::LeaseLost]);
    inbox.close().await;
}

/// A lease whose commit fails (a deferred constraint refuses it, as a full disk or an
/// I/O error would refuse the commit) runs nothing: the workers stop with one clear
/// error line and resume once the database commits again, running the event once.
async fn a_lease_that_cannot_commit_runs_nothing(db: &Db) {
    let inbox = db.inbox(quick().concurrency(2)).await;
    let runs = Runs::default();
    let callbacks = receiver(&inbox, &runs, succeed);
    let task = task_of(db, "t-no-commit");
    send(
        callbacks.service(),
        signed(MusicCallback::complete(&task).body()),
    )
    .await
    .expect(200, "accepted");
    db.exec(match db.kind {
        Kind::Sqlite => {
            "CREATE TABLE lease_parent (id INTEGER PRIMARY KEY); \
             CREATE TABLE lease_child (parent INTEGER REFERENCES lease_parent (id) \
                 DEFERRABLE INITIALLY DEFERRED); \
             CREATE TRIGGER lease_commit_fails AFTER UPDATE ON suno_inbox_events \
             WHEN NEW.state = 'running' BEGIN INSERT INTO lease_child VALUES (1); END"
        }
        Kind::Postgres => {
            "CREATE FUNCTION lease_commit_fails() RETURNS trigger AS $$ BEGIN \
             IF NEW.state = 'running' THEN RAISE EXCEPTION 'commit refused'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql; \
             CREATE CONSTRAINT TRIGGER lease_commit_fails AFTER UPDATE ON suno_inbox_events \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lease_commit_fails()"
        }
    })
    .await;
    let workers = inbox.start_workers(&callbacks);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        runs.lock().expect("lock").get(&task).copied().unwrap_or(0),
        0,
        "a handler ran on a lease that was never stored"
    );
    let event = only_event(&inbox, &task).await;
    assert_eq!((event.state, event.attempts), (EventState::Pending, 0));
    let refused = match db.kind {
        Kind::Sqlite => "FOREIGN KEY constraint failed",
        Kind::Postgres => "commit refused",
    };
    let stopped: Vec<String> = logged("inbox workers stopped")
        .into_iter()
        .filter(|line| line.contains(refused))
        .collect();
    assert_eq!(
        stopped.len(),
        1,
        "one line says the workers stopped: {stopped:?}"
    );

    db.exec(match db.kind {
        Kind::Sqlite => "DROP TRIGGER lease_commit_fails",
        Kind::Postgres => "DROP TRIGGER lease_commit_fails ON suno_inbox_events",
    })
    .await;
    wait_for(&inbox, "done once the database commits", |s| s.done == 1).await;
    workers.shutdown().await;
    assert_eq!(runs.lock().expect("lock")[&task], 1);
    assert_eq!(only_event(&inbox, &task).await.attempts, 1);
    assert!(!logged("inbox workers resumed").is_empty());
    inbox.close().await;
}

/// The worker logs and reports only what it stored: a run whose lease another worker
/// took before its outcome was written logs no `retry scheduled` nor `dead`.
async fn nothing_is_logged_for_an_outcome_not_stored(db: &Db) {
    let reports = Arc::new(Mutex::new(Vec::<RunReport>::new()));
    let seen = Arc::clone(&reports);
    let inbox = db
        .inbox(
            quick()
                .concurrency(1)
                .max_attempts(2)
                .on_outcome(move |report| seen.lock().expect("lock").push(report.clone())),
        )
        .await;
    let url = db.url();
    let kind = db.kind;
    let runs = Runs::default();
    // Each run loses its lease to "another worker" (the lease is taken and left
    // expired), then fails.
    let callbacks = receiver(&inbox, &runs, move |_| {
        let url = url.clone();
        async move {
            const STEAL: &str = "UPDATE suno_inbox_events SET lease_token = 'stolen', run_after = 0 \
                 WHERE state = 'running'";
            match kind {
                Kind::Sqlite => {
                    let pool = sqlx::SqlitePool::connect(&url).await?;
                    sqlx::query(STEAL).execute(&pool).await?;
                    pool.close().await;
                }
                Kind::Postgres => {
                    let pool = sqlx::PgPool::connect(&url).await?;
                    sqlx::query(STEAL).execute(&pool).await?;
                    pool.close().await;
                }
            }
            Err(HandlerError::msg("fails after losing its lease"))
        }
    });
    let task = task_of(db, "t-lost-outcome");
    send(
        callbacks.service(),
        signed(MusicCallback::complete(&task).body()),
    )
    .await
    .expect(200, "accepted");
    let workers = inbox.start_workers(&callbacks);
    wait_for(&inbox, "dead", |s| s.dead == 1).await;
    workers.shutdown().await;
    let results: Vec<(u32, RunResult)> = reports
        .lock()
        .expect("lock")
        .iter()
        .map(|report| (report.attempt, report.result.clone()))
        .collect();
    assert_eq!(
        results,
        [
            (1, RunResult::LeaseLost),
            (2, RunResult::LeaseLost),
            (3, RunResult::Dead)
        ]
    );
    let lines = logged(&format!("task_id={task:?}"));
    assert!(
        lines.iter().all(|line| !line.contains("retry scheduled")),
        "{lines:#?}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|line| line.contains("inbox event dead"))
            .count(),
        1,
        "only the stored dead letter is logged: {lines:#?}"
    );
    inbox.close().await;
}

/// A loopback TCP proxy to PostgreSQL that can stop forwarding, as a connection that
/// stops answering does.
struct StallingProxy {
    addr: std::net::SocketAddr,
    stalled: Arc<AtomicBool>,
}

impl StallingProxy {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let stalled = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stalled);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(Self::forward(client_read, server_write, Arc::clone(&flag)));
                tokio::spawn(Self::forward(server_read, client_write, Arc::clone(&flag)));
            }
        });
        Self { addr, stalled }
    }

    /// Copies one direction, holding what it reads while stalled.
    async fn forward(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        stalled: Arc<AtomicBool>,
    ) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let read = match from.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => read,
            };
            while stalled.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if to.write_all(&buffer[..read]).await.is_err() {
                return;
            }
        }
    }
}

/// PostgreSQL only: the connection stops answering while a handler runs. The run is
/// dropped before its lease ends (the database still shows it leased), and shutdown
/// returns within its grace although every database call hangs.
async fn a_stalled_connection_stops_the_run_and_shutdown_returns(db: &Db) {
    use suno_callback::inbox::sqlx::{Connection as _, Row as _};
    let url = db.url();
    let authority = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("host:port in the URL")
        .to_owned();
    // The schema and the table, through a direct connection.
    db.inbox(quick()).await.close().await;
    let proxy = StallingProxy::start(authority.clone()).await;
    let proxied = url.replacen(&authority, &proxy.addr.to_string(), 1);
    let inbox = quick()
        .lease(Duration::from_millis(600))
        .store_timeout(Duration::from_millis(500))
        .concurrency(1)
        .connect(&proxied)
        .await
        .expect("connect through the proxy");
    let alive = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&alive);
    let runs = Runs::default();
    let callbacks = receiver(&inbox, &runs, move |_| {
        let alive = Alive::new(&flag);
        async move {
            let _alive = alive;
            tokio::time::sleep(Duration::from_secs(20)).await;
            Ok(())
        }
    });
    send(
        callbacks.service(),
        signed(MusicCallback::complete("t-stalled-connection").body()),
    )
    .await
    .expect(200, "accepted");
    let workers = inbox.start_workers(&callbacks);
    wait_for(&inbox, "running", |s| s.running == 1).await;
    let id = only_event(&inbox, "t-stalled-connection").await.id;

    proxy.stalled.store(true, Ordering::SeqCst);
    let stalled_at = std::time::Instant::now();
    while alive.load(Ordering::SeqCst) {
        assert!(
            stalled_at.elapsed() < Duration::from_secs(3),
            "the run outlived its lease"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut direct = sqlx::PgConnection::connect(&url).await.expect("connect");
    let left: i64 = sqlx::query(&format!(
        "SELECT run_after - (extract(epoch from clock_timestamp()) * 1000)::bigint \
         FROM suno_inbox_events WHERE id = {id} AND state = 'running'"
    ))
    .fetch_one(&mut direct)
    .await
    .expect("the event is still leased")
    .get(0);
    assert!(
        left > 0,
        "the run was dropped {}ms after its lease ended",
        -left
    );

    let started = std::time::Instant::now();
    let shutdown = tokio::time::timeout(
        Duration::from_secs(10),
        workers.shutdown_within(Duration::from_millis(300)),
    )
    .await;
    assert!(shutdown.is_ok(), "shutdown did not return in 10 s");
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(800),
        "shutdown_within(300 ms) took {took:?}"
    );
    proxy.stalled.store(false, Ordering::SeqCst);
    assert_eq!(runs.lock().expect("lock")["t-stalled-connection"], 1);
    inbox.close().await;
}

/// SQLite: a second process on the same file does not take over the events the first
/// is running; its workers wait until the first process is gone (here: killed), then
/// take its events back at once.
async fn a_second_process_waits_for_the_first(db: &Db) {
    let url = db.url();
    let env = [
        ("SUNO_WEBHOOK_HMAC_KEY", KEY),
        ("SUNO_INBOX_DATABASE_URL", url.as_str()),
        ("SUNO_INBOX_CONCURRENCY", "1"),
        ("SUNO_EXAMPLE_HANDLER_DELAY_MS", "3000"),
    ];
    let mut first = RunningExample::start_with_args("inbox", &["serve"], &env, &[]).await;
    http_send(
        first.addr,
        signed(MusicCallback::complete("t-two-a").body()),
    )
    .await
    .expect(200, "accepted");
    let inbox = db.inbox(Inbox::builder()).await;
    wait_for(&inbox, "running", |s| s.running == 1).await;
    let mut second = RunningExample::start_with_args("inbox", &["serve"], &env, &[]).await;
    // The second process stores what it receives, but runs nothing while the first
    // lives.
    http_send(
        second.addr,
        signed(MusicCallback::complete("t-two-b").body()),
    )
    .await
    .expect(200, "accepted");
    let mut lines = Vec::new();
    read_until(&mut first, &mut lines, |lines| {
        done_tasks(lines).contains(&"t-two-a".to_owned())
            || lines.iter().any(|line| line.contains("lease-lost"))
    })
    .await;
    assert!(
        lines.iter().all(|line| !line.contains("lease-lost")),
        "{lines:?}"
    );
    // At most the first has leased it (it is free once `t-two-a` is done).
    assert!(
        inbox.events_of_task("t-two-b").await.expect("events")[0].attempts <= 1,
        "the second process runs nothing while the first holds the inbox"
    );
    // The first leases `t-two-b` and is killed mid-run; the second takes it back at once.
    wait_for(&inbox, "running", |s| s.running == 1).await;
    first.child.start_kill().expect("SIGKILL");
    let _ = first.child.wait().await;
    let killed = tokio::time::Instant::now();
    let mut second_lines = Vec::new();
    read_until(&mut second, &mut second_lines, |lines| {
        done_tasks(lines).contains(&"t-two-b".to_owned())
    })
    .await;
    assert!(
        killed.elapsed() < Duration::from_secs(20),
        "taken back at once, not after the 30 s lease"
    );
    second.child.start_kill().expect("SIGKILL");
    let _ = second.child.wait().await;
    assert!(
        second_lines.iter().all(|line| !line.contains("t-two-a")),
        "{second_lines:?}"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM example_results WHERE task_id = 't-two-a'")
            .await,
        1
    );
    assert_eq!(only_event(&inbox, "t-two-a").await.attempts, 1);
    inbox.close().await;
}

// ---- the example as a process ----------------------------------------------------

/// Reads the example's lines until `enough` says so (or 60 s pass), collecting them.
async fn read_until(
    example: &mut RunningExample,
    lines: &mut Vec<String>,
    enough: impl Fn(&[String]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !enough(lines) {
        assert!(tokio::time::Instant::now() < deadline, "{lines:?}");
        lines.push(example.next_line().await);
    }
}

fn done_tasks(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|line| line.starts_with("done "))
        .filter_map(|line| line.split("task=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

async fn two_examples_on_one_postgres(db: &Db) {
    let url = db.url();
    let env = [
        ("SUNO_WEBHOOK_HMAC_KEY", KEY),
        ("SUNO_INBOX_DATABASE_URL", url.as_str()),
        ("SUNO_INBOX_CONCURRENCY", "2"),
        ("SUNO_EXAMPLE_HANDLER_DELAY_MS", "20"),
    ];
    let mut a = RunningExample::start_with_args("inbox", &["serve"], &env, &[]).await;
    let mut b = RunningExample::start_with_args("inbox", &["serve"], &env, &[]).await;
    let tasks: Vec<String> = (0..10).map(|n| format!("t-pair-{n}")).collect();
    for (n, task) in tasks.iter().enumerate() {
        let body = MusicCallback::complete(task).body();
        let (first, second) = if n % 2 == 0 { (&a, &b) } else { (&b, &a) };
        http_send(first.addr, signed(body.clone()))
            .await
            .expect(200, "accepted");
        http_send(second.addr, signed(body))
            .await
            .expect(200, "duplicate");
    }
    let inbox = db.inbox(Inbox::builder()).await;
    wait_for(&inbox, "10 done", |s| s.done == 10).await;
    // Both copies stop cleanly; every line they printed is read.
    let mut lines = Vec::new();
    for example in [&mut a, &mut b] {
        let pid = example.child.id().expect("pid");
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        while let Ok(Some(line)) =
            tokio::time::timeout(Duration::from_secs(30), example.lines.next_line())
                .await
                .expect("the example stops in time")
        {
            lines.push(line);
        }
    }
    let mut done = done_tasks(&lines);
    done.sort();
    assert_eq!(
        done, tasks,
        "each event done exactly once across both copies: {lines:?}"
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM example_results").await, 10);
    inbox.close().await;
}

async fn killed_example_finishes_every_event_once(db: &Db) {
    let url = db.url();
    let env = [
        ("SUNO_WEBHOOK_HMAC_KEY", KEY),
        ("SUNO_INBOX_DATABASE_URL", url.as_str()),
        ("SUNO_INBOX_CONCURRENCY", "2"),
        ("SUNO_EXAMPLE_HANDLER_DELAY_MS", "150"),
        ("SUNO_EXAMPLE_FAIL_FIRST", "1"),
        ("SUNO_INBOX_RETRY_SCALE", "0.001"),
    ];
    let tasks: Vec<String> = (0..8).map(|n| format!("t-kill-{n}")).collect();
    let mut first = RunningExample::start_with_args("inbox", &["serve"], &env, &[]).await;
    for task in &tasks {
        http_send(first.addr, signed(MusicCallback::complete(task).body()))
            .await
            .expect(200, "accepted");
    }
    let mut lines = Vec::new();
    read_until(&mut first, &mut lines, |lines| {
        !done_tasks(lines).is_empty()
    })
    .await;
    first.child.start_kill().expect("SIGKILL");
    let _ = first.child.wait().await;
    while let Ok(Some(line)) = first.lines.next_line().await {
        lines.push(line);
    }
    assert!(
        done_tasks(&lines).len() < tasks.len(),
        "killed before the end: {lines:?}"
    );

    let restarted = tokio::time::Instant::now();
    let mut second = RunningExample::start_with_args("inbox", &["serve"], &env, &[]).await;
    let inbox = db.inbox(Inbox::builder()).await;
    wait_for(&inbox, "every accepted event done", |s| s.done == 8).await;
    assert!(
        restarted.elapsed() < Duration::from_secs(20),
        "the killed run's events were taken back at once, not after their 30 s lease"
    );
    second.child.start_kill().expect("SIGKILL");
    let _ = second.child.wait().await;
    while let Ok(Some(line)) = second.lines.next_line().await {
        lines.push(line);
    }
    let done = done_tasks(&lines);
    let mut unique = done.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        done.len(),
        "no event printed done twice: {lines:?}"
    );
    // Exactly-once effects: one row per event, whatever the kill interrupted.
    assert_eq!(db.count("SELECT COUNT(*) FROM example_results").await, 8);
    assert_eq!(
        db.count("SELECT COUNT(DISTINCT task_id) FROM example_results")
            .await,
        8
    );
    inbox.close().await;
}

async fn the_example_prints_each_events_family(db: &Db) {
    let url = db.url();
    let env = [
        ("SUNO_WEBHOOK_HMAC_KEY", KEY),
        ("SUNO_INBOX_DATABASE_URL", url.as_str()),
        ("SUNO_EXAMPLE_FAIL_FIRST", "1"),
        ("SUNO_INBOX_RETRY_SCALE", "0.001"),
    ];
    let mut example = RunningExample::start_with_args("inbox", &["serve"], &env, &[]).await;
    let wav = FamilyCallback::success(Family::Wav, "t-ex-wav");
    let wav_path = wav.path(common::PATH);
    let shapeless = FamilyCallback::failure(Family::Midi, "t-ex-wav-fail").body();
    let requests = [
        signed_to(&wav_path, wav.body(), 1),
        signed_to(&wav_path, shapeless, 2),
        signed_to(
            common::PATH,
            MusicCallback::complete("t-ex-music").body(),
            3,
        ),
    ];
    for request in requests {
        http_send(example.addr, request)
            .await
            .expect(200, "accepted");
    }
    let mut lines = Vec::new();
    read_until(&mut example, &mut lines, |lines| {
        done_tasks(lines).len() == 3
    })
    .await;
    let (status, metrics) = common::raw_http(
        example.addr,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200, "{metrics}");
    for line in [
        r#"suno_callback_inbox_attempts_total{family="wav"} 4"#,
        r#"suno_callback_inbox_attempts_total{family="music"} 2"#,
        r#"suno_callback_inbox_retries_total{family="wav"} 2"#,
        "suno_callback_inbox_queue_depth ",
        "suno_callback_inbox_oldest_pending_age_seconds ",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
    assert!(
        metrics.contains(r#"outcome="accepted",family="wav""#),
        "{metrics}"
    );
    example.child.start_kill().expect("SIGKILL");
    let _ = example.child.wait().await;
    let mut done: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|line| line.starts_with("done "))
        .collect();
    done.sort_unstable();
    assert_eq!(
        done,
        [
            "done music complete task=t-ex-music attempt=2",
            "done wav complete task=t-ex-wav attempt=2",
            "done wav failure task=t-ex-wav-fail attempt=2",
        ],
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("failed wav failure task=t-ex-wav-fail attempt=1")),
        "{lines:?}"
    );
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM example_results \
             WHERE task_id = 't-ex-wav-fail' AND family = 'wav' AND outcome = 'failure'"
        )
        .await,
        1
    );
}

// ---- the runner ------------------------------------------------------------------

/// A test run on its own multi-threaded tokio runtime, against a fresh database.
fn main() -> ExitCode {
    let arguments = Arguments::from_args();
    capture_logs();
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
        let mut suite = suite!(kind;
            accepted_then_duplicate,
            a_wav_event_is_stored_and_run_as_wav,
            a_failure_then_a_success_of_one_task_both_run,
            a_reused_signature_is_refused_and_not_stored,
            workers_run_each_event_once,
            failures_retry_then_succeed,
            a_timeout_is_retried,
            dead_after_max_attempts_then_replayed,
            dead_after_max_age,
            heartbeat_keeps_a_long_handler_exclusive,
            a_dead_workers_event_is_taken_over,
            shutdown_finishes_running_handlers,
            shutdown_releases_what_it_cannot_finish,
            a_handlers_transaction_commits_with_done,
            prune_removes_old_finished_events_only,
            prune_deletes_past_one_batch,
            stats_report_depth_and_oldest_age,
            a_large_body_is_stored_intact,
            a_database_down_is_503_with_retry_after,
            a_constraint_error_is_503_and_stores_nothing,
            a_run_stops_before_its_lease_can_pass,
            a_lease_that_cannot_commit_runs_nothing,
            nothing_is_logged_for_an_outcome_not_stored,
            concurrent_accepts_store_each_callback_once,
            a_refused_batch_stores_none_of_it,
            a_slow_handler_never_holds_others_back,
        );
        match kind {
            Kind::Sqlite => suite.extend(suite!(kind;
                a_full_disk_is_503,
                a_second_process_waits_for_the_first,
                killed_example_finishes_every_event_once,
                the_example_prints_each_events_family,
            )),
            Kind::Postgres => suite.extend(suite!(kind;
                two_examples_on_one_postgres,
                a_stalled_connection_stops_the_run_and_shutdown_returns,
            )),
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
