//! Confirm mode under pressure: a provider ahead of its callbacks confirms each stage
//! as that stage, replays of a captured request and bursts of genuine callbacks cannot
//! take the request rate from the genuine callbacks that follow them.

mod common;
mod fake_provider;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{KEY, PATH, send, signer};
use fake_provider::{FakeProvider, Reply, provider_fixture};
use suno_callback::provider::{ConfirmMode, ProviderClient};
use suno_callback::{EventSource, SunoCallbacks};

fn client(fake: &FakeProvider, per_second: f64) -> ProviderClient {
    ProviderClient::builder("test-api-key")
        .base_url(fake.base_url())
        .requests_per_second(per_second)
        .max_retries(0)
        .build()
        .expect("client")
}

/// `(stage, task, source, first audio URL)` of one handler run.
type Run = (String, String, EventSource, Option<String>);

/// Every handler run.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Run>>>);

impl Seen {
    fn of(&self, task: &str) -> Vec<(String, EventSource, Option<String>)> {
        let seen = self.0.lock().unwrap();
        seen.iter()
            .filter(|(_, t, _, _)| t == task)
            .map(|(stage, _, source, url)| (stage.clone(), *source, url.clone()))
            .collect()
    }
}

fn receiver(seen: &Seen, client: ProviderClient) -> SunoCallbacks {
    let record = |stage: &'static str| {
        let seen = seen.clone();
        move |event: suno_callback::CallbackEvent| {
            seen.0.lock().unwrap().push((
                stage.to_owned(),
                event.task_id().to_owned(),
                EventSource::current(),
                event
                    .tracks()
                    .first()
                    .and_then(|t| t.audio_url())
                    .map(str::to_owned),
            ));
            async { Ok(()) }
        }
    };
    SunoCallbacks::builder()
        .hmac_key(KEY)
        .on_text(record("text"))
        .on_first(record("first"))
        .on_complete(record("complete"))
        .on_failure(record("failure"))
        .confirm(client, ConfirmMode::all())
        .build()
        .expect("receiver")
}

fn music_callback(task: &str, stage: &str) -> String {
    serde_json::json!({"code": 200, "msg": "ok", "data": {"callbackType": stage, "task_id": task,
        "data": [{"id": "x", "audio_url": "https://evil.example/x.mp3"}]}})
    .to_string()
}

/// The provider is ahead: it says `SUCCESS` when the `text` and `first` callbacks
/// arrive. Each is confirmed as its own stage (its handler runs, with the provider's
/// tracks), and the `complete` after them too.
#[tokio::test]
async fn a_provider_ahead_of_the_callbacks_confirms_each_stage() {
    let fake = FakeProvider::start().await;
    let seen = Seen::default();
    let callbacks = receiver(&seen, client(&fake, 1000.0));
    let task = "provider-ahead";
    fake.script(task, [Reply::ok(provider_fixture("music_success", task))]);
    // Each stage signed at a second of its own, as the sender signs them.
    let now = common_now();
    for (ago, stage) in [(30, "text"), (20, "first"), (10, "complete")] {
        send(
            callbacks.service(),
            signer().request_at(PATH, music_callback(task, stage), now - ago),
        )
        .await
        .expect(200, "processed");
    }
    let provider_url = Some("https://cdn.example.net/p/0.mp3".to_owned());
    assert_eq!(
        seen.of(task),
        [
            (
                "text".to_owned(),
                EventSource::Confirmed,
                provider_url.clone()
            ),
            (
                "first".to_owned(),
                EventSource::Confirmed,
                provider_url.clone()
            ),
            ("complete".to_owned(), EventSource::Confirmed, provider_url),
        ]
    );
}

/// The provider ahead by one step (`FIRST_SUCCESS` when `text` arrives): the `text` is
/// confirmed as `text`, not held until the task is complete.
#[tokio::test]
async fn a_text_is_confirmed_while_the_provider_says_first() {
    let fake = FakeProvider::start().await;
    let seen = Seen::default();
    let callbacks = receiver(&seen, client(&fake, 1000.0));
    let task = "provider-ahead-first";
    fake.script(
        task,
        [Reply::ok(provider_fixture("music_first_success", task))],
    );
    send(
        callbacks.service(),
        signer().request(PATH, music_callback(task, "text")),
    )
    .await
    .expect(200, "processed");
    let stages: Vec<String> = seen.of(task).into_iter().map(|(s, _, _)| s).collect();
    assert_eq!(stages, ["text"]);
}

fn common_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Sends `request`, giving up (dropping it, as a sender that disconnects) after
/// `patience`.
async fn send_impatient(
    callbacks: &SunoCallbacks,
    request: http::Request<http_body_util::Full<bytes::Bytes>>,
    patience: Duration,
) {
    let _ = tokio::time::timeout(patience, send(callbacks.service(), request)).await;
}

/// Replays of one captured signed request, each dropped by its sender while it waits
/// for the provider: they share one confirmation and leave no rate slot behind, so the
/// genuine callback of the task that follows is confirmed at once, and asks once.
#[tokio::test]
async fn replays_of_a_captured_request_leave_the_task_its_rate() {
    let fake = FakeProvider::start().await;
    let seen = Seen::default();
    let callbacks = receiver(&seen, client(&fake, 1000.0));
    let task = "replayed-task";
    fake.script(
        task,
        [Reply::ok(provider_fixture("music_pending", task)).slow(Duration::from_millis(300))],
    );
    let captured = signer().request_at(PATH, music_callback(task, "first"), common_now() - 5);
    let (parts, body) = captured.into_parts();
    let mut replays = Vec::new();
    for _ in 0..60 {
        let request = http::Request::from_parts(parts.clone(), body.clone());
        let callbacks = callbacks.clone();
        replays.push(tokio::spawn(async move {
            send_impatient(&callbacks, request, Duration::from_millis(100)).await;
        }));
    }
    for replay in replays {
        replay.await.unwrap();
    }
    let asked_by_replays = fake.count(task);
    assert!(
        asked_by_replays <= 3,
        "{asked_by_replays} task-details requests for 60 replays of one request"
    );
    fake.script(task, [Reply::ok(provider_fixture("music_success", task))]);
    send(
        callbacks.service(),
        signer().request(PATH, music_callback(task, "complete")),
    )
    .await
    .expect(200, "processed");
    assert_eq!(seen.of(task).len(), 1);
}

/// The global rate: replays of a few tasks, and a task whose confirmations wait for
/// their slot, cannot hold the slots of another task's callback.
#[tokio::test]
async fn replays_of_a_few_tasks_leave_other_tasks_their_rate() {
    let fake = FakeProvider::start().await;
    let seen = Seen::default();
    let callbacks = receiver(&seen, client(&fake, 4.0));
    let mut replays = Vec::new();
    for n in 0..40 {
        let task = format!("replayed-{n}");
        fake.script(&task, [Reply::ok(provider_fixture("music_pending", &task))]);
        let captured = signer().request_at(PATH, music_callback(&task, "first"), common_now() - 7);
        let (parts, body) = captured.into_parts();
        for _ in 0..2 {
            let request = http::Request::from_parts(parts.clone(), body.clone());
            let callbacks = callbacks.clone();
            replays.push(tokio::spawn(async move {
                send_impatient(&callbacks, request, Duration::from_millis(100)).await;
            }));
        }
    }
    for replay in replays {
        replay.await.unwrap();
    }
    let task = "genuine-after-replays";
    fake.script(task, [Reply::ok(provider_fixture("music_success", task))]);
    send(
        callbacks.service(),
        signer().request(PATH, music_callback(task, "complete")),
    )
    .await
    .expect(200, "processed");
}

/// A burst of genuine callbacks of many tasks, more than the rate serves in one
/// confirmation's time: those answered `503` give their slots back, and the sender's
/// retries of them are confirmed.
#[tokio::test]
async fn a_burst_of_genuine_callbacks_is_confirmed() {
    let fake = FakeProvider::start().await;
    let seen = Seen::default();
    let callbacks = receiver(&seen, client(&fake, 2.0));
    let tasks: Vec<String> = (0..40).map(|n| format!("burst-{n}")).collect();
    for task in &tasks {
        fake.script(task, [Reply::ok(provider_fixture("music_success", task))]);
    }
    let wave = |tasks: Vec<String>| {
        let callbacks = callbacks.clone();
        async move {
            let mut sent = Vec::new();
            for task in tasks {
                let callbacks = callbacks.clone();
                sent.push(tokio::spawn(async move {
                    let answer = send(
                        callbacks.service(),
                        signer().request(PATH, music_callback(&task, "complete")),
                    )
                    .await;
                    (task, answer.status.as_u16())
                }));
            }
            let mut unanswered = Vec::new();
            for sent in sent {
                let (task, status) = sent.await.unwrap();
                if status != 200 {
                    assert_eq!(status, 503);
                    unanswered.push(task);
                }
            }
            unanswered
        }
    };
    let retry = wave(tasks.clone()).await;
    assert!(!retry.is_empty(), "the burst exceeds the rate");
    assert!(retry.len() < tasks.len(), "some of the burst is confirmed");
    let retried = retry.len();
    let still = wave(retry).await;
    assert!(
        still.len() < retried,
        "none of the {retried} retries was confirmed"
    );
}
