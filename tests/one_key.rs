//! A callback and a poll of one outcome make one dedup key, whatever path the callback
//! came on and whatever shape its body has: a failure that carries only its task id
//! takes the family its task was registered with, and every failure status of a voice
//! task keys alike. Inline mode and inbox mode (SQLite).

mod common;
mod fake_provider;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{KEY, PATH, send, signer};
use fake_provider::{FakeProvider, Reply};
use serde_json::json;
use suno_callback::inbox::Inbox;
use suno_callback::provider::{ProviderClient, Reconciler};
use suno_callback::{EventSource, Family, SunoCallbacks, SunoCallbacksBuilder};

fn client(fake: &FakeProvider) -> ProviderClient {
    ProviderClient::builder("test-api-key")
        .base_url(fake.base_url())
        .requests_per_second(1000.0)
        .build()
        .expect("client")
}

/// The failures the handlers saw: `(family, task, source)`.
#[derive(Clone, Default)]
struct Failures(Arc<Mutex<Vec<(Family, String, EventSource)>>>);

impl Failures {
    fn of(&self, task: &str) -> Vec<(Family, EventSource)> {
        let seen = self.0.lock().unwrap();
        seen.iter()
            .filter(|(_, t, _)| t == task)
            .map(|(family, _, source)| (*family, *source))
            .collect()
    }
}

fn builder(failures: &Failures) -> SunoCallbacksBuilder {
    let seen = failures.clone();
    SunoCallbacks::builder()
        .hmac_key(KEY)
        .on_failure(move |event| {
            seen.0.lock().unwrap().push((
                event.family(),
                event.task_id().to_owned(),
                EventSource::current(),
            ));
            async { Ok(()) }
        })
}

/// One failure of each shape, as `(family, record-info answer, callback body)`.
fn failure_cases(task: &str) -> Vec<(Family, serde_json::Value, serde_json::Value)> {
    vec![
        (
            Family::Midi,
            json!({"code": 200, "data": {"taskId": task, "successFlag": 3,
                "errorCode": 500, "errorMessage": "MIDI generation failed"}}),
            json!({"code": 500, "msg": "MIDI generation failed", "data": {"taskId": task}}),
        ),
        (
            Family::Lyrics,
            json!({"code": 200, "data": {"taskId": task, "status": "SENSITIVE_WORD_ERROR",
                "response": null, "errorCode": 400, "errorMessage": "flagged"}}),
            json!({"code": 400, "msg": "Song Description flagged for moderation",
                "data": {"callbackType": "complete", "task_id": task, "data": null}}),
        ),
        (
            Family::Voice,
            json!({"code": 200, "data": {"taskId": task, "status": "fail",
                "errorCode": 500, "errorMessage": "no match"}}),
            json!({"code": 200, "msg": "Voice validation failed", "data": {"taskId": task,
                "status": "processing_validate_fail", "errorCode": 500,
                "errorMessage": "no match"}}),
        ),
        (
            Family::Voice,
            json!({"code": 200, "data": {"taskId": task, "status": "PROCESSING_VALIDATE_FAIL",
                "errorCode": 500, "errorMessage": "no match"}}),
            json!({"code": 400, "msg": "Voice validation failed", "data": {"taskId": task,
                "status": "fail", "errorCode": 500, "errorMessage": "no match"}}),
        ),
    ]
}

/// The poll first (a short `after`, or an outage of the callback endpoint), then the
/// sender's late callback on the shared path: the failure handler runs once, typed
/// with the registered family.
#[tokio::test]
async fn a_late_shapeless_failure_after_its_poll_is_a_duplicate() {
    let fake = FakeProvider::start().await;
    for n in 0..failure_cases("").len() {
        let task = format!("poll-first-{n}");
        let (family, answer, callback) = failure_cases(&task).swap_remove(n);
        let failures = Failures::default();
        let callbacks = builder(&failures).build().expect("receiver");
        let reconciler = Reconciler::builder(&callbacks, client(&fake))
            .after(Duration::ZERO)
            .build();
        fake.script(&task, [Reply::ok(answer.to_string())]);
        reconciler.expect(&task, family).await.unwrap();
        assert_eq!(reconciler.poll_due().await.unwrap().delivered, 1, "{task}");
        send(
            callbacks.service(),
            signer().request(PATH, callback.to_string()),
        )
        .await
        .expect(200, "duplicate");
        assert_eq!(
            failures.of(&task),
            [(family, EventSource::Poll)],
            "{family}: {callback}"
        );
    }
}

/// The callback first, on the shared path, while its task is registered: it is typed
/// with the registered family, and a poll of the same failure is a duplicate.
#[tokio::test]
async fn a_shapeless_failure_takes_its_registered_family() {
    let fake = FakeProvider::start().await;
    for n in 0..failure_cases("").len() {
        let task = format!("callback-first-{n}");
        let (family, answer, callback) = failure_cases(&task).swap_remove(n);
        let failures = Failures::default();
        let callbacks = builder(&failures).build().expect("receiver");
        let reconciler = Reconciler::builder(&callbacks, client(&fake))
            .after(Duration::ZERO)
            .build();
        reconciler.expect(&task, family).await.unwrap();
        send(
            callbacks.service(),
            signer().request(PATH, callback.to_string()),
        )
        .await
        .expect(200, "processed");
        // Registered again (as after a restart that replays registrations): the poll
        // finds the failure processed.
        fake.script(&task, [Reply::ok(answer.to_string())]);
        reconciler.expect(&task, family).await.unwrap();
        assert_eq!(reconciler.poll_due().await.unwrap().delivered, 1, "{task}");
        assert_eq!(
            failures.of(&task),
            [(family, EventSource::Callback)],
            "{family}: {callback}"
        );
    }
}

/// Inbox mode: the poll's row and the late callback's are one row.
#[tokio::test]
async fn the_inbox_stores_a_failure_and_its_late_callback_once() {
    let fake = FakeProvider::start().await;
    let folder = std::env::temp_dir().join(format!(
        "suno-callback-one-key-{}",
        suno_callback::store::ClaimToken::new_unique()
    ));
    std::fs::create_dir_all(&folder).unwrap();
    let url = format!("sqlite://{}", folder.join("inbox.db").display());
    let inbox = Inbox::builder().connect(&url).await.expect("inbox");
    for n in 0..failure_cases("").len() {
        let task = format!("inbox-{n}");
        let (family, answer, callback) = failure_cases(&task).swap_remove(n);
        let failures = Failures::default();
        let callbacks = builder(&failures)
            .inbox(inbox.clone())
            .build()
            .expect("receiver");
        let reconciler = Reconciler::builder(&callbacks, client(&fake))
            .after(Duration::ZERO)
            .build();
        fake.script(&task, [Reply::ok(answer.to_string())]);
        reconciler.expect(&task, family).await.unwrap();
        reconciler.poll_due().await.unwrap();
        assert_eq!(inbox.events_of_task(&task).await.expect("rows").len(), 1);
        send(
            callbacks.service(),
            signer().request(PATH, callback.to_string()),
        )
        .await
        .expect(200, "duplicate");
        let rows = inbox.events_of_task(&task).await.expect("rows");
        assert_eq!(rows.len(), 1, "{family}: {rows:?}");
        // And the callback first, on a task still registered: typed by its registry.
        let task = format!("inbox-callback-first-{n}");
        let (family, _, callback) = failure_cases(&task).swap_remove(n);
        reconciler.expect(&task, family).await.unwrap();
        send(
            callbacks.service(),
            signer().request(PATH, callback.to_string()),
        )
        .await
        .expect(200, "accepted");
        let rows = inbox.events_of_task(&task).await.expect("rows");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].family, family.as_str(), "{rows:?}");
    }
    inbox.close().await;
    let _ = std::fs::remove_dir_all(&folder);
}
