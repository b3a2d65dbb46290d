//! The jobs route (`/api/v1/jobs/createTask`, `/api/v1/jobs/recordInfo`) in the
//! provider client, the reconciler and confirm mode, against a fake provider on a
//! loopback port.

mod common;
mod fake_provider;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{KEY, PATH, send, signer};
use fake_provider::{CREATE_TASK, FakeProvider, Reply, created, market_fixture, provider_fixture};
use serde_json::{Value, json};
use suno_callback::provider::{
    ConfirmMode, JobsTask, MemoryRegistry, Outcome, ProviderClient, Reconciler, SyntheticCallback,
    TaskAnswer, TaskRegistry, TaskStatus,
};
use suno_callback::{ApiRoute, CallbackEvent, EventSource, Family, SunoCallbacks};

const API_KEY: &str = "test-api-key";
const RECORD_INFO: &str = "/api/v1/jobs/recordInfo";
const RECEIVER_URL: &str = "https://api.example.com/callbacks/suno";

fn client(fake: &FakeProvider) -> ProviderClient {
    ProviderClient::builder(API_KEY)
        .base_url(fake.base_url())
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
        .build()
        .expect("client")
}

/// `(handler, task, family, source, first audio URL)` of every handler run.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Run>>>);

type Run = (&'static str, String, Family, EventSource, Option<String>);

impl Recorder {
    fn push(&self, handler: &'static str, event: &CallbackEvent) {
        self.0.lock().unwrap().push((
            handler,
            event.task_id().to_owned(),
            event.family(),
            EventSource::current(),
            event
                .tracks()
                .first()
                .and_then(|t| t.audio_url())
                .map(str::to_owned),
        ));
    }
    fn runs(&self) -> Vec<Run> {
        self.0.lock().unwrap().clone()
    }
}

fn receiver(
    recorder: &Recorder,
    registry: Arc<MemoryRegistry>,
    confirm: Option<ConfirmMode>,
    fake: &FakeProvider,
) -> SunoCallbacks {
    let (r1, r2, r3) = (recorder.clone(), recorder.clone(), recorder.clone());
    let mut builder = SunoCallbacks::builder()
        .hmac_key(KEY)
        .task_registry(registry)
        .on_complete(move |e| {
            r1.push("complete", &e);
            async { Ok(()) }
        })
        .on_failure(move |e| {
            r2.push("failure", &e);
            async { Ok(()) }
        })
        .fallback(move |e| {
            r3.push("other", &e);
            async { Ok(()) }
        });
    if let Some(mode) = confirm {
        builder = builder.confirm(client(fake), mode);
    }
    builder.build().expect("receiver")
}

fn reconciler(callbacks: &SunoCallbacks, fake: &FakeProvider) -> Reconciler {
    Reconciler::builder(callbacks, client(fake))
        .after(Duration::ZERO)
        .interval(Duration::ZERO)
        .callback_url(RECEIVER_URL)
        .build()
}

// ---------------------------------------------------------------- reading and mapping

#[test]
fn a_jobs_answer_reads_its_state_model_and_failure() {
    let pending = ["jobs_queuing", "jobs_generating"];
    for name in pending {
        let answer =
            TaskAnswer::from_jobs_json(provider_fixture(name, "t").as_bytes()).expect(name);
        assert_eq!(answer.status(), &TaskStatus::Pending, "{name}");
        assert_eq!(answer.route(), ApiRoute::Jobs);
        assert_eq!(answer.family(), Family::Music);
        assert_eq!(
            SyntheticCallback::from_answer(&answer).unwrap(),
            None,
            "{name}"
        );
    }
    let waiting = json!({"code": 200, "msg": "success", "data": {"taskId": "t",
        "model": "ai-music-api/generate", "state": "waiting"}});
    let answer = TaskAnswer::from_jobs_json(waiting.to_string().as_bytes()).unwrap();
    assert_eq!(answer.status(), &TaskStatus::Pending);

    let failed =
        TaskAnswer::from_jobs_json(provider_fixture("jobs_music_fail", "t").as_bytes()).unwrap();
    assert!(failed.status().is_failure());
    assert_eq!(failed.error_code(), Some(500));
    assert_eq!(failed.error_message(), Some("Internal server error"));

    let wav =
        TaskAnswer::from_jobs_json(provider_fixture("jobs_wav_success", "t").as_bytes()).unwrap();
    assert_eq!(wav.family(), Family::Wav);
    assert_eq!(wav.status(), &TaskStatus::Success);

    // What is not a jobs answer is refused, never guessed.
    let unknown_state = json!({"code": 200, "data": {"taskId": "t",
        "model": "ai-music-api/generate", "state": "thinking"}});
    let error = TaskAnswer::from_jobs_json(unknown_state.to_string().as_bytes()).unwrap_err();
    assert!(error.is_unknown_status(), "{error}");
    let no_model = json!({"code": 200, "data": {"taskId": "t", "state": "success"}});
    let error = TaskAnswer::from_jobs_json(no_model.to_string().as_bytes()).unwrap_err();
    assert!(error.is_missing_field(), "{error}");
    let refused = json!({"code": 422, "msg": "task not found", "data": null});
    let error = TaskAnswer::from_jobs_json(refused.to_string().as_bytes()).unwrap_err();
    assert_eq!(error.refused_code(), Some(422));
}

/// The synthetic callback of a jobs answer is the callback's shape: the answer's
/// `data` verbatim, `code` 200 on success, else the `failCode` when it is an integer,
/// else 500.
#[test]
fn a_final_jobs_answer_is_its_callback_with_the_data_verbatim() {
    let body = provider_fixture("jobs_music_success", "t1");
    let answer = TaskAnswer::from_jobs_json(body.as_bytes()).unwrap();
    let synthetic = SyntheticCallback::from_answer(&answer).unwrap().unwrap();
    let sent: Value = serde_json::from_slice(synthetic.body()).unwrap();
    let given: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sent["data"], given["data"], "data verbatim");
    assert_eq!(sent["code"], 200);
    assert_eq!(sent["msg"], "success");
    assert_eq!(synthetic.route(), ApiRoute::Jobs);
    assert_eq!(
        (synthetic.task_id(), synthetic.family(), synthetic.outcome()),
        ("t1", Family::Music, Outcome::Success)
    );
    assert!(synthetic.is_final());

    let codes = [
        (json!("500"), 500),
        (json!(501), 501),
        (json!("E_TIMEOUT"), 500),
        (Value::Null, 500),
    ];
    for (fail_code, code) in codes {
        let mut answer: Value =
            serde_json::from_str(&provider_fixture("jobs_music_fail", "t2")).unwrap();
        answer["data"]["failCode"] = fail_code.clone();
        let answer = TaskAnswer::from_jobs_json(answer.to_string().as_bytes()).unwrap();
        let synthetic = SyntheticCallback::from_answer(&answer).unwrap().unwrap();
        let sent: Value = serde_json::from_slice(synthetic.body()).unwrap();
        assert_eq!(sent["code"], code, "failCode {fail_code}");
        assert_eq!(sent["msg"], "Internal server error");
        assert_eq!(sent["data"]["state"], "fail");
        assert_eq!(synthetic.outcome(), Outcome::Failure);
        assert_eq!(synthetic.code(), code);
    }
}

// ---------------------------------------------------------------- the reconciler

#[tokio::test]
async fn a_jobs_task_is_polled_pending_then_success_once() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let registry = Arc::new(MemoryRegistry::new());
    let callbacks = receiver(&recorder, Arc::clone(&registry), None, &fake);
    let reconciler = reconciler(&callbacks, &fake);
    let task = "jobs-pending-then-success";
    fake.script(
        task,
        [
            Reply::ok(provider_fixture("jobs_queuing", task)),
            Reply::ok(provider_fixture("jobs_generating", task)),
            Reply::ok(provider_fixture("jobs_music_success", task)),
        ],
    );
    reconciler.expect_jobs(task, Family::Unknown).await.unwrap();
    for _ in 0..2 {
        let report = reconciler.poll_due().await.unwrap();
        assert_eq!((report.polled, report.retry_later), (1, 1));
    }
    assert!(recorder.runs().is_empty());
    let report = reconciler.poll_due().await.unwrap();
    assert_eq!(report.delivered, 1);
    let runs = recorder.runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].0, "complete");
    assert_eq!(
        runs[0].2,
        Family::Music,
        "the answer's model tells the family"
    );
    assert_eq!(runs[0].3, EventSource::Poll);
    assert_eq!(
        runs[0].4.as_deref(),
        Some("https://tempfile.example.com/1.mp3")
    );
    assert!(fake.seen().iter().all(|seen| seen.path == RECORD_INFO));
    // Final: no longer expected, never asked again.
    assert!(registry.is_empty());
    let asked = fake.count(task);
    assert_eq!(reconciler.poll_due().await.unwrap().polled, 0);
    assert_eq!(fake.count(task), asked);

    // The same outcome as a callback afterwards is a duplicate.
    let late = market_fixture("music_generate_success", task);
    send(callbacks.service(), signer().request(PATH, late))
        .await
        .expect(200, "duplicate");
    assert_eq!(recorder.runs().len(), 1);
}

#[tokio::test]
async fn a_failed_jobs_task_runs_the_failure_handler() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let registry = Arc::new(MemoryRegistry::new());
    let callbacks = receiver(&recorder, Arc::clone(&registry), None, &fake);
    let reconciler = reconciler(&callbacks, &fake);
    let task = "jobs-fail";
    fake.script(task, [Reply::ok(provider_fixture("jobs_music_fail", task))]);
    reconciler.expect_jobs(task, Family::Music).await.unwrap();
    assert_eq!(reconciler.poll_due().await.unwrap().delivered, 1);
    let runs = recorder.runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!((runs[0].0, runs[0].2), ("failure", Family::Music));
    assert!(registry.is_empty());
}

#[tokio::test]
async fn a_jobs_task_of_a_wav_model_is_a_wav_event() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let callbacks = receiver(&recorder, Arc::new(MemoryRegistry::new()), None, &fake);
    let reconciler = reconciler(&callbacks, &fake);
    let task = "jobs-wav";
    fake.script(
        task,
        [Reply::ok(provider_fixture("jobs_wav_success", task))],
    );
    reconciler.expect_jobs(task, Family::Wav).await.unwrap();
    assert_eq!(reconciler.poll_due().await.unwrap().delivered, 1);
    let runs = recorder.runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].2, Family::Wav);
    assert_ne!(runs[0].0, "failure");
    assert_eq!(fake.seen()[0].path, RECORD_INFO);
}

/// A classic task of the unknown family has no endpoint: given up at its first poll,
/// nothing asked.
#[tokio::test]
async fn a_classic_task_of_no_family_is_given_up_unasked() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let registry = Arc::new(MemoryRegistry::new());
    let callbacks = receiver(&recorder, Arc::clone(&registry), None, &fake);
    let overdue = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&overdue);
    let reconciler = Reconciler::builder(&callbacks, client(&fake))
        .after(Duration::ZERO)
        .on_overdue(move |task| seen.lock().unwrap().push(task.task_id().to_owned()))
        .build();
    reconciler
        .expect("no-family", Family::Unknown)
        .await
        .unwrap();
    let report = reconciler.poll_due().await.unwrap();
    assert_eq!(report.overdue, 1);
    assert_eq!(*overdue.lock().unwrap(), ["no-family"]);
    assert!(fake.seen().is_empty());
    assert!(registry.is_empty());
}

// ---------------------------------------------------------------- confirm mode

/// A verified callback in the jobs shape is confirmed at the jobs route's endpoint:
/// the provider's tracks run the handler, never the body's.
#[tokio::test]
async fn confirm_mode_confirms_a_jobs_callback_at_record_info() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let callbacks = receiver(
        &recorder,
        Arc::new(MemoryRegistry::new()),
        Some(ConfirmMode::all()),
        &fake,
    );
    let task = "jobs-confirm";
    fake.script(
        task,
        [Reply::ok(provider_fixture("jobs_music_success", task))],
    );
    let forged = market_fixture("music_generate_success", task).replace(
        "https://tempfile.example.com/1.mp3",
        "https://evil.example/x.mp3",
    );
    send(callbacks.service(), signer().request(PATH, forged))
        .await
        .expect(200, "processed");
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, RECORD_INFO);
    assert_eq!(seen[0].task_id, task);
    let runs = recorder.runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].0, "complete");
    assert_eq!(runs[0].3, EventSource::Confirmed);
    assert_eq!(
        runs[0].4.as_deref(),
        Some("https://tempfile.example.com/1.mp3")
    );
}

/// While the provider says the jobs task is still generating, the callback is
/// answered 503 and nothing runs.
#[tokio::test]
async fn confirm_mode_waits_while_a_jobs_task_is_generating() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let callbacks = receiver(
        &recorder,
        Arc::new(MemoryRegistry::new()),
        Some(ConfirmMode::all()),
        &fake,
    );
    let task = "jobs-confirm-pending";
    fake.script(task, [Reply::ok(provider_fixture("jobs_generating", task))]);
    let body = market_fixture("music_generate_success", task);
    send(callbacks.service(), signer().request(PATH, body))
        .await
        .expect(503, "unavailable");
    assert_eq!(fake.seen()[0].path, RECORD_INFO);
    assert!(recorder.runs().is_empty());
}

// ---------------------------------------------------------------- submit

#[tokio::test]
async fn submit_creates_the_task_and_registers_it_before_returning() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let registry = Arc::new(MemoryRegistry::new());
    let callbacks = receiver(&recorder, Arc::clone(&registry), None, &fake);
    let reconciler = reconciler(&callbacks, &fake);
    fake.script(CREATE_TASK, [created("created-1")]);
    let input = json!({"prompt": "a calm piano piece", "custom_mode": false, "model": "V6"});
    let task_id = reconciler
        .submit(JobsTask::new("ai-music-api/generate", input.clone()))
        .await
        .expect("submitted");
    assert_eq!(task_id, "created-1");

    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/api/v1/jobs/createTask")
    );
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Bearer test-api-key")
    );
    let sent: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(
        sent,
        json!({"model": "ai-music-api/generate", "callBackUrl": RECEIVER_URL, "input": input})
    );

    // Registered already: a jobs task of the model's family, due now.
    let taken = registry.take_due(u64::MAX / 2, 10, 1).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].task_id(), "created-1");
    assert_eq!(taken[0].route(), ApiRoute::Jobs);
    assert_eq!(taken[0].family(), Family::Music);

    // A task's own callback URL wins over the reconciler's.
    fake.script(CREATE_TASK, [created("created-2")]);
    let own = JobsTask::new("sora-2-text-to-video", json!({"prompt": "rain"}))
        .callback_url("https://other.example/cb");
    assert_eq!(reconciler.submit(own).await.unwrap(), "created-2");
    let sent: Value = serde_json::from_str(&fake.seen()[1].body).unwrap();
    assert_eq!(sent["callBackUrl"], "https://other.example/cb");
    assert_eq!(registry.len(), 2);
}

#[tokio::test]
async fn a_submitted_task_is_recovered_by_polling() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let callbacks = receiver(&recorder, Arc::new(MemoryRegistry::new()), None, &fake);
    let reconciler = reconciler(&callbacks, &fake);
    let task = "created-then-polled";
    fake.script(CREATE_TASK, [created(task)]);
    fake.script(
        task,
        [Reply::ok(provider_fixture("jobs_wav_success", task))],
    );
    let submitted = JobsTask::new(
        "ai-music-api/convert-to-wav-format",
        json!({"task_id": "x"}),
    );
    assert_eq!(reconciler.submit(submitted).await.unwrap(), task);
    assert_eq!(reconciler.poll_due().await.unwrap().delivered, 1);
    assert_eq!(recorder.runs().len(), 1);
    assert_eq!(fake.seen().last().unwrap().path, RECORD_INFO);
}

#[tokio::test]
async fn submit_errors_say_what_failed() {
    let fake = FakeProvider::start().await;
    let registry = Arc::new(MemoryRegistry::new());
    let callbacks = receiver(&Recorder::default(), Arc::clone(&registry), None, &fake);
    let task = || JobsTask::new("ai-music-api/generate", json!({"prompt": "rain"}));

    // No callback URL: nothing is sent.
    let bare = Reconciler::builder(&callbacks, client(&fake)).build();
    let error = bare.submit(task()).await.unwrap_err();
    assert!(error.is_config() && !error.is_provider(), "{error}");
    assert!(fake.seen().is_empty());

    let reconciler = reconciler(&callbacks, &fake);
    // Refused by the provider (credits, validation): its code, no task, no retry.
    fake.script(
        CREATE_TASK,
        [Reply::ok(
            r#"{"code":402,"msg":"Insufficient credits","data":null}"#,
        )],
    );
    let error = reconciler.submit(task()).await.unwrap_err();
    assert!(error.is_provider(), "{error}");
    let answer = error
        .provider_error()
        .and_then(|e| e.answer_error())
        .unwrap();
    assert_eq!(answer.refused_code(), Some(402));
    assert_eq!(error.task_id(), None);
    assert_eq!(fake.count(CREATE_TASK), 1);

    // A server error may have created the task: never sent twice.
    fake.script(CREATE_TASK, [Reply::status(500)]);
    let error = reconciler.submit(task()).await.unwrap_err();
    assert_eq!(
        error.provider_error().and_then(|e| e.http_status()),
        Some(500)
    );
    assert_eq!(fake.count(CREATE_TASK), 2);

    // A 429 created nothing: retried.
    fake.script(CREATE_TASK, [Reply::status(429), created("after-429")]);
    assert_eq!(reconciler.submit(task()).await.unwrap(), "after-429");
    assert_eq!(fake.count(CREATE_TASK), 4);

    // An answer without a task id.
    fake.script(CREATE_TASK, [Reply::ok(r#"{"code":200,"data":{}}"#)]);
    let error = reconciler.submit(task()).await.unwrap_err();
    let answer = error
        .provider_error()
        .and_then(|e| e.answer_error())
        .unwrap();
    assert!(answer.is_missing_field(), "{answer}");
    assert_eq!(registry.len(), 1, "only the task created after the 429");
}

/// A registry that is down after the task was created: the error carries the task id.
#[tokio::test]
async fn a_task_created_but_not_registered_keeps_its_id_in_the_error() {
    let fake = FakeProvider::start().await;
    let full = Arc::new(MemoryRegistry::with_max_tasks(0));
    let callbacks = receiver(&Recorder::default(), full, None, &fake);
    let reconciler = reconciler(&callbacks, &fake);
    fake.script(CREATE_TASK, [created("orphan")]);
    let error = reconciler
        .submit(JobsTask::new("ai-music-api/generate", json!({})))
        .await
        .unwrap_err();
    assert!(error.is_registry(), "{error}");
    assert_eq!(error.task_id(), Some("orphan"));
    assert!(std::error::Error::source(&error).is_some());
}

// ---------------------------------------------------------------- the example

#[tokio::test]
async fn the_reconcile_example_polls_a_jobs_task() {
    let fake = FakeProvider::start().await;
    fake.script(
        "ex-jobs",
        [Reply::ok(provider_fixture("jobs_music_success", "ex-jobs"))],
    );
    let base = fake.base_url();
    let mut example = common::RunningExample::start(
        "reconcile",
        &[
            ("SUNO_WEBHOOK_HMAC_KEY", "reconcile-example-key"),
            ("SUNO_API_KEY", API_KEY),
            ("SUNO_API_BASE", &base),
            ("SUNO_EXPECT", "jobs:ex-jobs"),
            ("SUNO_RECONCILE_AFTER_MS", "0"),
            ("SUNO_RECONCILE_INTERVAL_MS", "100"),
        ],
        &["SUNO_CONFIRM"],
    )
    .await;
    let line = example.next_line().await;
    assert!(
        line.starts_with("music complete task=ex-jobs ") && line.ends_with(" source=poll"),
        "{line:?}"
    );
    assert_eq!(fake.seen()[0].path, RECORD_INFO);
}
