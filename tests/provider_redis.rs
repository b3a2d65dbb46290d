//! `RedisRegistry` against a real Redis server: the registry conformance suite, two replicas
//! sharing the due tasks, a registry that outlives its process, the reconciler
//! polling through it, and a late shapeless failure on another replica after a poll.
//!
//! The server is `REDIS_URL` (default `redis://127.0.0.1:6379`); every test writes
//! under its own key prefix. Without a server the tests are reported as ignored,
//! unless `SUNO_CALLBACK_REQUIRE_REDIS=1` (as CI sets it), which makes a missing server
//! a failure.

mod common;
mod fake_provider;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use common::redis::{REQUIRE_REDIS as REQUIRE, answers_ping, redis_url};
use common::{Counter, PATH, send, signer, trial};

/// A key prefix no other test or run uses.
fn unique_prefix(test: &str) -> String {
    common::redis::unique_prefix(&format!("provider:{test}"))
}
use fake_provider::{FakeProvider, Reply, provider_fixture};
use libtest_mimic::Arguments;
use suno_callback::provider::{ProviderClient, Reconciler, RedisRegistry, TaskRegistry};
use suno_callback::store::RedisStore;
use suno_callback::testing::registry_conformance;
use suno_callback::{EventSource, Family, SunoCallbacks};

async fn registry(prefix: &str) -> RedisRegistry {
    RedisRegistry::connect(&redis_url(), prefix)
        .await
        .expect("connect to REDIS_URL")
}

/// The registry conformance suite, on a key prefix of its own.
async fn conformance() {
    let registry = registry(&unique_prefix("conformance")).await;
    registry_conformance::run_all(Arc::new(registry)).await;
}

/// Two replicas, each with its own connection to one Redis under one prefix.
async fn replicas_share_the_due_tasks() {
    let prefix = unique_prefix("replicas");
    let replicas = [registry(&prefix).await, registry(&prefix).await].map(Arc::new);
    registry_conformance::replicas_never_share_a_task(&replicas).await;
}

async fn the_registry_outlives_its_process() {
    let prefix = unique_prefix("restart");
    let first = registry(&prefix).await;
    registry_conformance::a_task_outlives_its_registry(first, |first| async move {
        drop(first);
        registry(&prefix).await
    })
    .await;
}

async fn the_reconciler_polls_through_redis() {
    let fake = FakeProvider::start().await;
    let prefix = unique_prefix("reconcile");
    let runs = Counter::default();
    let counted = runs.clone();
    let callbacks = SunoCallbacks::builder()
        .hmac_key(common::KEY)
        .task_registry(registry(&prefix).await)
        .on_complete(move |_| {
            counted.bump();
            async { Ok(()) }
        })
        .build()
        .unwrap();
    let client = ProviderClient::builder("k")
        .base_url(fake.base_url())
        .build()
        .unwrap();
    let reconciler = Reconciler::builder(&callbacks, client)
        .after(Duration::ZERO)
        .build();
    fake.script(
        "redis-task",
        [Reply::ok(provider_fixture("music_success", "redis-task"))],
    );
    reconciler
        .expect("redis-task", Family::Music)
        .await
        .unwrap();
    assert_eq!(reconciler.poll_due().await.unwrap().delivered, 1);
    assert_eq!(runs.get(), 1);
    let check = registry(&prefix).await;
    assert_eq!(
        check.take_due(u64::MAX / 2, 10, 10).await.unwrap(),
        [],
        "a task delivered is no longer due"
    );
    assert_eq!(
        check.family_of("redis-task").await.unwrap(),
        Some(Family::Music),
        "a task delivered keeps its family for a late callback"
    );
    let client = redis::Client::open(redis_url().as_str()).expect("REDIS_URL");
    let mut direct = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{prefix}:settled:redis-task"))
        .query_async(&mut direct)
        .await
        .expect("TTL");
    let week = i64::try_from(suno_callback::provider::SETTLED_FAMILY_TTL.as_secs()).unwrap();
    assert!(
        (week - 60..=week).contains(&ttl),
        "the settled family expires after a week: TTL {ttl}"
    );
    // Keyed as unknown, a task keeps `Unknown` for its late callbacks.
    check
        .expect(
            suno_callback::provider::ExpectedTask::new("keyed-unknown", Family::Wav, 0),
            0,
        )
        .await
        .unwrap();
    check
        .done_as("keyed-unknown", Family::Unknown)
        .await
        .unwrap();
    assert_eq!(
        check.family_of("keyed-unknown").await.unwrap(),
        Some(Family::Unknown)
    );
}

/// Two replicas share one store and one registry. Replica A's reconciler polls a MIDI
/// task's failure and runs the failure handler; the sender's late callback of that
/// failure, which names no family, reaches replica B, where the task is no longer
/// expected. B takes the family the task was registered with from the registry and
/// answers duplicate: the failure handler ran once, for `midi`.
async fn a_late_shapeless_failure_on_another_replica_is_a_duplicate() {
    let fake = FakeProvider::start().await;
    let prefix = unique_prefix("late-shapeless");
    let failures: Arc<std::sync::Mutex<Vec<(Family, EventSource)>>> = Arc::default();
    let replica = || async {
        let seen = failures.clone();
        let store = RedisStore::builder(redis_url())
            .key_prefix(format!("{prefix}:store"))
            .connect()
            .await
            .expect("store");
        SunoCallbacks::builder()
            .hmac_key(common::KEY)
            .store(store)
            .task_registry(registry(&format!("{prefix}:expected")).await)
            .on_failure(move |event| {
                seen.lock()
                    .unwrap()
                    .push((event.family(), EventSource::current()));
                async { Ok(()) }
            })
            .build()
            .unwrap()
    };
    let (a, b) = (replica().await, replica().await);
    let task = "late-midi";
    let client = ProviderClient::builder("k")
        .base_url(fake.base_url())
        .build()
        .unwrap();
    let reconciler = Reconciler::builder(&a, client)
        .after(Duration::ZERO)
        .build();
    fake.script(
        task,
        [Reply::ok(
            serde_json::json!({"code": 200, "data": {"taskId": task, "successFlag": 3,
                "errorCode": 500, "errorMessage": "MIDI generation failed"}})
            .to_string(),
        )],
    );
    reconciler.expect(task, Family::Midi).await.unwrap();
    assert_eq!(reconciler.poll_due().await.unwrap().delivered, 1);
    let late = serde_json::json!({"code": 500, "msg": "MIDI generation failed",
        "data": {"taskId": task}});
    send(b.service(), signer().request(PATH, late.to_string()))
        .await
        .expect(200, "duplicate");
    assert_eq!(
        *failures.lock().unwrap(),
        [(Family::Midi, EventSource::Poll)],
        "the failure handler ran once, for the registered family"
    );
}

fn main() -> ExitCode {
    let arguments = Arguments::from_args();
    let url = redis_url();
    let required = std::env::var(REQUIRE).is_ok_and(|value| value == "1");
    let server = answers_ping(&url);
    if required && !server {
        eprintln!("{REQUIRE}=1 but no Redis server answers at {url}");
        return ExitCode::FAILURE;
    }
    if !server {
        println!("Redis registry tests skipped: no Redis server answers at {url}");
    }
    let trials = vec![
        trial("registry::conformance", conformance),
        trial(
            "registry::replicas_share_the_due_tasks",
            replicas_share_the_due_tasks,
        ),
        trial(
            "registry::outlives_its_process",
            the_registry_outlives_its_process,
        ),
        trial(
            "reconciler::polls_through_redis",
            the_reconciler_polls_through_redis,
        ),
        trial(
            "reconciler::a_late_shapeless_failure_on_another_replica_is_a_duplicate",
            a_late_shapeless_failure_on_another_replica_is_a_duplicate,
        ),
    ]
    .into_iter()
    .map(|trial| trial.with_ignored_flag(!server))
    .collect();
    libtest_mimic::run(&arguments, trials).exit_code()
}
