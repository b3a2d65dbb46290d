//! The task-details client, the mapping of its answers to events, the reconciler and
//! confirm mode, against a fake task-details server on a loopback port.

mod common;
mod fake_provider;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{KEY, PATH, fixture, send, signer};
use fake_provider::{FakeProvider, Reply, provider_fixture};
use serde_json::{Map, Value};
use suno_callback::event::Payload;
use suno_callback::provider::{
    ConfirmMode, MemoryRegistry, Outcome, ProviderClient, Reconciler, SyntheticCallback,
    TaskAnswer, TaskPayload, TaskRegistry, TaskStatus,
};
use suno_callback::{CallbackEvent, EventSource, Family, Stage, SunoCallbacks};

const API_KEY: &str = "test-api-key";

fn client(fake: &FakeProvider) -> ProviderClient {
    ProviderClient::builder(API_KEY)
        .base_url(fake.base_url())
        .requests_per_second(1000.0)
        .backoff(Duration::from_millis(10), Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

fn fixture_json(name: &str, task_id: &str) -> Value {
    serde_json::from_str(&provider_fixture(name, task_id)).expect("fixture JSON")
}

// ---------------------------------------------------------------- the client

#[tokio::test]
async fn every_family_success_is_read_and_mapped_to_a_callback_event() {
    let fake = FakeProvider::start().await;
    let client = client(&fake);
    let cases = [
        (
            Family::Music,
            "music_success",
            "/api/v1/generate/record-info",
        ),
        (
            Family::Lyrics,
            "lyrics_success",
            "/api/v1/lyrics/record-info",
        ),
        (Family::Wav, "wav_success", "/api/v1/wav/record-info"),
        (
            Family::Separation,
            "separation_success",
            "/api/v1/vocal-removal/record-info",
        ),
        (Family::Midi, "midi_success", "/api/v1/midi/record-info"),
        (Family::Video, "video_success", "/api/v1/mp4/record-info"),
        (
            Family::Cover,
            "cover_success",
            "/api/v1/suno/cover/record-info",
        ),
        (Family::Voice, "voice_success", "/api/v1/voice/record-info"),
    ];
    for (family, name, path) in cases {
        let task = format!("every-family-{family}");
        fake.script(&task, [Reply::ok(provider_fixture(name, &task))]);
        let answer = client.task_details(family, &task).await.expect(name);
        assert_eq!(answer.status(), &TaskStatus::Success, "{name}");
        assert_eq!(answer.task_id(), task);
        assert!(
            answer.payload().has_result(),
            "{name}: {:?}",
            answer.payload()
        );
        let synthetic = SyntheticCallback::from_answer(&answer)
            .expect(name)
            .expect("final");
        assert_eq!(synthetic.outcome(), Outcome::Success);
        assert!(synthetic.is_final());
        let event = synthetic.to_event().expect("synthetic body parses");
        assert_eq!(event.task_id(), task, "{name}");
        assert!(!event.is_failure(), "{name}");
        let seen = fake.seen();
        let last = seen.last().expect("a request");
        assert_eq!(last.path, path);
        assert_eq!(last.authorization.as_deref(), Some("Bearer test-api-key"));
    }
}

#[tokio::test]
async fn what_each_family_carries_reaches_the_callback_shape() {
    let fake = FakeProvider::start().await;
    let client = client(&fake);
    let body_of = |family: Family, name: &str| {
        let task = format!("carry-{name}");
        fake.script(&task, [Reply::ok(provider_fixture(name, &task))]);
        let client = client.clone();
        async move {
            let answer = client.task_details(family, &task).await.expect("answer");
            let synthetic = SyntheticCallback::from_answer(&answer).unwrap().unwrap();
            synthetic.to_event().expect("parses").raw_json()
        }
    };
    let wav = body_of(Family::Wav, "wav_success").await;
    assert_eq!(
        wav["data"]["audioWavUrl"],
        "https://cdn.example.net/p/a.wav"
    );
    let stems = body_of(Family::Separation, "separation_success").await;
    assert_eq!(
        stems["data"]["vocal_separation_info"]["vocal_url"],
        "https://cdn.example.net/p/v.mp3"
    );
    let midi = body_of(Family::Midi, "midi_success").await;
    assert_eq!(midi["data"]["instruments"][0]["name"], "Drums");
    let video = body_of(Family::Video, "video_success").await;
    assert_eq!(
        video["data"]["video_url"],
        "https://cdn.example.net/p/v.mp4"
    );
    let cover = body_of(Family::Cover, "cover_success").await;
    assert_eq!(
        cover["data"]["images"][0],
        "https://cdn.example.net/p/c.png"
    );
    let voice = body_of(Family::Voice, "voice_success").await;
    assert_eq!(voice["data"]["voiceId"], "voice_1a2b");
    let lyrics = body_of(Family::Lyrics, "lyrics_success").await;
    assert_eq!(lyrics["data"]["callbackType"], "complete");
    assert_eq!(lyrics["data"]["data"][0]["title"], "Starry Night");
}

#[tokio::test]
async fn every_music_status_kind_maps_to_its_event() {
    let fake = FakeProvider::start().await;
    let client = client(&fake);
    let read = |name: &'static str| {
        let task = format!("music-{name}");
        fake.script(&task, [Reply::ok(provider_fixture(name, &task))]);
        let client = client.clone();
        async move { client.task_details(Family::Music, &task).await.expect(name) }
    };

    let pending = read("music_pending").await;
    assert_eq!(pending.status(), &TaskStatus::Pending);
    assert_eq!(SyntheticCallback::from_answer(&pending), Ok(None));

    let first = read("music_first_success").await;
    let synthetic = SyntheticCallback::from_answer(&first).unwrap().unwrap();
    assert_eq!(synthetic.stage(), "first");
    assert!(!synthetic.is_final());
    let event = synthetic.to_event().unwrap();
    assert_eq!(event.stage(), &Stage::First);
    assert_eq!(event.family(), Family::Music);
    assert_eq!(event.tracks().len(), 1);

    let success = read("music_success").await;
    let event = SyntheticCallback::from_answer(&success)
        .unwrap()
        .unwrap()
        .to_event()
        .unwrap();
    assert_eq!(event.stage(), &Stage::Complete);
    assert_eq!(event.outcome(), Outcome::Success);
    assert_eq!(event.tracks().len(), 2);

    let failed = read("music_failed").await;
    let synthetic = SyntheticCallback::from_answer(&failed).unwrap().unwrap();
    assert_eq!(synthetic.outcome(), Outcome::Failure);
    assert_eq!(synthetic.stage(), "error");
    let event = synthetic.to_event().unwrap();
    assert_eq!(event.outcome(), Outcome::Failure);
    assert_eq!(event.code(), 501);
    assert_eq!(event.msg(), Some("Audio generation failed"));
}

#[test]
fn text_success_and_every_failure_word_map() {
    let answer_with = |status: &str, code: Value| {
        let body = serde_json::json!({"code": 200, "data": {
            "taskId": "t", "status": status, "errorCode": code, "errorMessage": null,
            "response": {"sunoData": [{"id": "a", "audioUrl": "https://x/a.mp3"}]}}});
        TaskAnswer::from_json(Family::Music, body.to_string().as_bytes()).expect(status)
    };
    let text = answer_with("TEXT_SUCCESS", Value::Null);
    let synthetic = SyntheticCallback::from_answer(&text).unwrap().unwrap();
    assert_eq!(synthetic.to_event().unwrap().stage(), &Stage::Text);
    for word in [
        "CREATE_TASK_FAILED",
        "GENERATE_AUDIO_FAILED",
        "SENSITIVE_WORD_ERROR",
    ] {
        let synthetic = SyntheticCallback::from_answer(&answer_with(word, Value::Null))
            .unwrap()
            .unwrap();
        let event = synthetic.to_event().unwrap();
        assert!(event.is_failure(), "{word}");
        assert_ne!(event.code(), 200, "{word}");
        assert_eq!(event.msg(), Some(word));
    }
    // The provider could not deliver the callback, but the tracks are there.
    let exception = answer_with("CALLBACK_EXCEPTION", Value::Null);
    let synthetic = SyntheticCallback::from_answer(&exception).unwrap().unwrap();
    let event = synthetic.to_event().unwrap();
    assert_eq!(event.stage(), &Stage::Complete);
    assert_eq!(event.outcome(), Outcome::Success);
}

#[test]
fn integer_and_text_success_flags_follow_each_family() {
    let read = |family: Family, flag: Value| {
        let body = serde_json::json!({"code": 200, "data": {"taskId": "t", "successFlag": flag}});
        TaskAnswer::from_json(family, body.to_string().as_bytes()).map(|a| a.status().clone())
    };
    assert_eq!(read(Family::Midi, 0.into()), Ok(TaskStatus::Pending));
    assert!(read(Family::Midi, 2.into()).unwrap().is_failure());
    assert!(read(Family::Midi, 3.into()).unwrap().is_failure());
    assert_eq!(read(Family::Cover, 2.into()), Ok(TaskStatus::Pending));
    assert!(read(Family::Cover, 3.into()).unwrap().is_failure());
    assert_eq!(read(Family::Cover, "1".into()), Ok(TaskStatus::Success));
    assert!(
        read(Family::Wav, "GENERATE_WAV_FAILED".into())
            .unwrap()
            .is_failure()
    );
    assert!(
        read(Family::Video, "GENERATE_MP4_FAILED".into())
            .unwrap()
            .is_failure()
    );
    assert!(
        read(Family::Separation, "CREATE_TASK_FAILED".into())
            .unwrap()
            .is_failure()
    );
    assert!(
        read(Family::Midi, 7.into())
            .unwrap_err()
            .is_unknown_status()
    );
    assert!(
        read(Family::Wav, "MAYBE".into())
            .unwrap_err()
            .is_unknown_status()
    );
    // `FIRST_SUCCESS` belongs to music only.
    assert!(
        read(Family::Wav, "FIRST_SUCCESS".into())
            .unwrap_err()
            .is_unknown_status()
    );
}

#[test]
fn voice_steps_are_delivered_but_not_final() {
    let read = |status: &str| {
        let body = serde_json::json!({"code": 200, "data": {"taskId": "t", "status": status,
            "validateInfo": "read this"}});
        TaskAnswer::from_json(Family::Voice, body.to_string().as_bytes()).expect(status)
    };
    for pending in ["wait_processing", "processing_validate"] {
        assert_eq!(SyntheticCallback::from_answer(&read(pending)), Ok(None));
    }
    let step = SyntheticCallback::from_answer(&read("wait_validating"))
        .unwrap()
        .unwrap();
    assert_eq!(step.stage(), "wait_validating");
    assert!(!step.is_final());
    let json = step.to_event().unwrap().raw_json();
    assert_eq!(json["data"]["validateInfo"], "read this");
    let failed = SyntheticCallback::from_answer(&read("processing_validate_fail"))
        .unwrap()
        .unwrap();
    assert_eq!(failed.outcome(), Outcome::Failure);
    assert!(failed.to_event().unwrap().is_failure());
}

#[test]
fn what_cannot_be_mapped_is_an_error() {
    let music = |body: &str| TaskAnswer::from_json(Family::Music, body.as_bytes());
    assert!(music("not json").unwrap_err().is_json());
    let refused = music(r#"{"code":401,"msg":"bad key","data":null}"#).unwrap_err();
    assert_eq!(refused.refused_code(), Some(401));
    assert!(
        music(r#"{"code":200,"data":{"taskId":"t"}}"#)
            .unwrap_err()
            .is_missing_field()
    );
    assert!(
        music(r#"{"code":200,"data":{"status":"SUCCESS"}}"#)
            .unwrap_err()
            .is_missing_field()
    );
    assert!(
        music(r#"{"code":200,"data":{"taskId":"t","status":"DONE"}}"#)
            .unwrap_err()
            .is_unknown_status()
    );
    // A success without its result is not guessed into an event.
    let empty = music(
        r#"{"code":200,"data":{"taskId":"t","status":"SUCCESS","response":{"sunoData":[]}}}"#,
    )
    .expect("readable");
    assert!(
        SyntheticCallback::from_answer(&empty)
            .unwrap_err()
            .is_no_result()
    );
    let wav = TaskAnswer::from_json(Family::Wav, br#"{"code":200,"data":{"taskId":"t","successFlag":"SUCCESS","response":{"audioWavUrl":null}}}"#)
        .expect("readable");
    assert_eq!(
        wav.payload(),
        &TaskPayload::Wav {
            audio_wav_url: None
        }
    );
    assert!(
        SyntheticCallback::from_answer(&wav)
            .unwrap_err()
            .is_no_result()
    );
}

/// The music callback fixture, rewritten as the task-details endpoint would answer it
/// (camelCase tracks in `data.response.sunoData`), maps back to the same tracks.
#[test]
fn music_success_gives_the_complete_event_a_callback_would() {
    let callback_body = fixture("music/generate_complete_epoch_ms.json");
    let callback = CallbackEvent::from_json(callback_body.clone()).expect("callback");
    let callback_json: Value = serde_json::from_slice(&callback_body).unwrap();
    let camel = |track: &Value| -> Value {
        let object: Map<String, Value> = track
            .as_object()
            .unwrap()
            .iter()
            .map(|(key, value)| {
                let mut out = String::new();
                let mut upper = false;
                for c in key.chars() {
                    if c == '_' {
                        upper = true;
                    } else if upper {
                        out.push(c.to_ascii_uppercase());
                        upper = false;
                    } else {
                        out.push(c);
                    }
                }
                (out, value.clone())
            })
            .collect();
        Value::Object(object)
    };
    let tracks: Vec<Value> = callback_json["data"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(camel)
        .collect();
    let task = callback.task_id().to_owned();
    let answer = serde_json::json!({"code": 200, "msg": "success", "data": {
        "taskId": task, "status": "SUCCESS",
        "response": {"taskId": task, "sunoData": tracks}}});
    let answer = TaskAnswer::from_json(Family::Music, answer.to_string().as_bytes()).unwrap();
    let synthetic = SyntheticCallback::from_answer(&answer).unwrap().unwrap();
    let (polled, called) = (synthetic.to_event().unwrap(), callback);
    assert_eq!(polled.task_id(), called.task_id());
    assert_eq!(polled.family(), called.family());
    assert_eq!(polled.stage(), &Stage::Complete);
    assert_eq!(polled.stage(), called.stage());
    assert_eq!(polled.outcome(), called.outcome());
    assert_eq!(polled.payload(), called.payload());
    assert_eq!(polled.tracks(), called.tracks());
    assert_eq!(polled.tracks().len(), 2);
}

#[tokio::test]
async fn the_provider_fixture_tracks_keep_their_values() {
    let answer = TaskAnswer::from_json(
        Family::Music,
        provider_fixture("music_success", "t").as_bytes(),
    )
    .unwrap();
    let raw = fixture_json("music_success", "t");
    let event = SyntheticCallback::from_answer(&answer)
        .unwrap()
        .unwrap()
        .to_event()
        .unwrap();
    assert_eq!(event.stage(), &Stage::Complete);
    for (track, raw) in event
        .tracks()
        .iter()
        .zip(raw["data"]["response"]["sunoData"].as_array().unwrap())
    {
        assert_eq!(track.id(), raw["id"].as_str());
        assert_eq!(track.audio_url(), raw["audioUrl"].as_str());
        assert_eq!(track.stream_audio_url(), raw["streamAudioUrl"].as_str());
        assert_eq!(track.image_url(), raw["imageUrl"].as_str());
        assert_eq!(track.model_name(), raw["modelName"].as_str());
        assert_eq!(track.title(), raw["title"].as_str());
        assert_eq!(track.duration_seconds(), raw["duration"].as_f64());
        assert!(track.create_time().is_some());
    }
}

/// A client of the HTTPS fake trusting `roots` besides the platform's store.
fn tls_client(fake: &FakeProvider, roots: &[&[u8]]) -> ProviderClient {
    let mut builder = ProviderClient::builder(API_KEY)
        .base_url(fake.base_url())
        .requests_per_second(1000.0)
        .max_retries(1)
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .timeout(Duration::from_secs(5));
    for root in roots {
        builder = builder.add_root_certificate(root);
    }
    builder.build().expect("client")
}

#[tokio::test]
async fn the_client_trusts_an_added_root_certificate_over_https() {
    let (fake, certificate) = FakeProvider::start_tls().await;
    assert!(fake.base_url().starts_with("https://127.0.0.1:"));
    fake.script("tls", [Reply::ok(provider_fixture("wav_success", "tls"))]);
    for root in [certificate.pem.as_bytes(), &certificate.der] {
        let answer = tls_client(&fake, &[root])
            .task_details(Family::Wav, "tls")
            .await
            .expect("an answer over HTTPS");
        assert_eq!(answer.status(), &TaskStatus::Success);
    }
    let seen = fake.seen();
    assert_eq!(seen.len(), 2, "one request per client: {seen:?}");
    for request in &seen {
        assert_eq!(request.path, "/api/v1/wav/record-info");
        assert_eq!(
            request.authorization.as_deref(),
            Some("Bearer test-api-key")
        );
    }
}

#[tokio::test]
async fn the_client_refuses_a_certificate_it_was_not_told_to_trust() {
    let (fake, _) = FakeProvider::start_tls().await;
    let (_, stranger) = FakeProvider::start_tls().await;
    fake.script("tls", [Reply::ok(provider_fixture("wav_success", "tls"))]);
    for roots in [&[][..], &[stranger.pem.as_bytes()][..]] {
        let error = tls_client(&fake, roots)
            .task_details(Family::Wav, "tls")
            .await
            .expect_err("an untrusted certificate");
        assert!(error.is_transport(), "{error:?}");
    }
    assert!(
        fake.seen().is_empty(),
        "no request passed the TLS handshake: {:?}",
        fake.seen()
    );
}

#[test]
fn a_root_certificate_that_cannot_be_read_is_refused_at_build() {
    let not_base64 = "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n";
    let no_certificate = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let not_der: &[u8] = b"\x30\x03 not a certificate";
    for root in [not_base64.as_bytes(), no_certificate.as_bytes(), not_der] {
        let error = ProviderClient::builder(API_KEY)
            .add_root_certificate(root)
            .build()
            .expect_err("an unreadable root certificate");
        assert!(error.is_config(), "{error:?}");
    }
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    let fake = FakeProvider::start().await;
    let client = ProviderClient::builder(API_KEY)
        .base_url(fake.base_url())
        .timeout(Duration::from_millis(200))
        .max_retries(1)
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .build()
        .unwrap();
    let slow = Reply::ok(provider_fixture("wav_success", "slow")).slow(Duration::from_secs(3));
    fake.script("slow", [slow]);
    let error = client.task_details(Family::Wav, "slow").await.unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(fake.count("slow"), 2);

    // A slow first answer, then a quick one: the retry gets it.
    let slow = Reply::ok(provider_fixture("wav_success", "slow-once")).slow(Duration::from_secs(3));
    fake.script(
        "slow-once",
        [
            slow,
            Reply::ok(provider_fixture("wav_success", "slow-once")),
        ],
    );
    let answer = client
        .task_details(Family::Wav, "slow-once")
        .await
        .expect("retried");
    assert_eq!(answer.status(), &TaskStatus::Success);
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_then_reported() {
    let fake = FakeProvider::start().await;
    let client = ProviderClient::builder(API_KEY)
        .base_url(fake.base_url())
        .max_retries(2)
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
        .build()
        .unwrap();
    fake.script(
        "flaky",
        [
            Reply::status(502),
            Reply::status(500),
            Reply::ok(provider_fixture("video_success", "flaky")),
        ],
    );
    let answer = client
        .task_details(Family::Video, "flaky")
        .await
        .expect("third try");
    assert_eq!(answer.status(), &TaskStatus::Success);
    assert_eq!(fake.count("flaky"), 3);

    fake.script("down", [Reply::status(503)]);
    let error = client
        .task_details(Family::Video, "down")
        .await
        .unwrap_err();
    assert_eq!(error.http_status(), Some(503));
    assert_eq!(fake.count("down"), 3);

    // Client errors are not retried.
    fake.script("gone", [Reply::status(404)]);
    let error = client
        .task_details(Family::Video, "gone")
        .await
        .unwrap_err();
    assert_eq!(error.http_status(), Some(404));
    assert_eq!(fake.count("gone"), 1);

    // An answer with a `code` other than 200 is an error, not retried.
    let error = client
        .task_details(Family::Video, "unknown-task")
        .await
        .unwrap_err();
    assert_eq!(
        error.answer_error().and_then(|e| e.refused_code()),
        Some(422)
    );
    assert_eq!(fake.count("unknown-task"), 1);
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let fake = FakeProvider::start().await;
    let client = ProviderClient::builder(API_KEY)
        .base_url(fake.base_url())
        .backoff(Duration::from_millis(1), Duration::from_secs(5))
        .build()
        .unwrap();
    fake.script(
        "busy",
        [
            Reply::status(429).retry_after("1"),
            Reply::ok(provider_fixture("cover_success", "busy")),
        ],
    );
    let started = Instant::now();
    let answer = client
        .task_details(Family::Cover, "busy")
        .await
        .expect("after the wait");
    assert_eq!(answer.status(), &TaskStatus::Success);
    assert_eq!(fake.count("busy"), 2);
    // The backoff alone would have retried after a few milliseconds.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );

    // A Retry-After longer than the longest backoff is not waited for here.
    fake.script("very-busy", [Reply::status(429).retry_after("3600")]);
    let error = client
        .task_details(Family::Cover, "very-busy")
        .await
        .unwrap_err();
    assert_eq!(error.http_status(), Some(429));
    assert_eq!(fake.count("very-busy"), 1);
}

/// `Retry-After` as an HTTP date is honoured like the seconds form.
#[tokio::test]
async fn too_many_requests_waits_for_a_retry_after_date() {
    let fake = FakeProvider::start().await;
    let client = ProviderClient::builder(API_KEY)
        .base_url(fake.base_url())
        .backoff(Duration::from_millis(1), Duration::from_secs(5))
        .build()
        .unwrap();
    let in_two_seconds =
        httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2));
    fake.script(
        "busy-until",
        [
            Reply::status(429).retry_after(&in_two_seconds),
            Reply::ok(provider_fixture("cover_success", "busy-until")),
        ],
    );
    let started = Instant::now();
    client
        .task_details(Family::Cover, "busy-until")
        .await
        .expect("after the wait");
    assert_eq!(fake.count("busy-until"), 2);
    // The date has whole seconds: at least one of the two is waited.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );

    // A date further away than the longest backoff is not waited for here.
    let in_an_hour =
        httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
    fake.script(
        "busy-for-long",
        [Reply::status(429).retry_after(&in_an_hour)],
    );
    let error = client
        .task_details(Family::Cover, "busy-for-long")
        .await
        .unwrap_err();
    assert_eq!(error.http_status(), Some(429));
    assert_eq!(fake.count("busy-for-long"), 1);
}

#[tokio::test]
async fn one_task_gets_at_most_three_requests_a_second() {
    let fake = FakeProvider::start().await;
    let client = client(&fake);
    fake.script("hot", [Reply::ok(provider_fixture("wav_success", "hot"))]);
    let calls: Vec<_> = (0..7)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.task_details(Family::Wav, "hot").await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(900)).await;
    let early = fake.count("hot");
    assert!(
        (1..=3).contains(&early),
        "{early} requests in the first 0.9 s"
    );
    for call in calls {
        call.await.unwrap().expect("answer");
    }
    assert_eq!(fake.count("hot"), 7);
}

#[tokio::test]
async fn the_global_rate_holds_across_tasks() {
    let fake = FakeProvider::start().await;
    let client = ProviderClient::builder(API_KEY)
        .base_url(fake.base_url())
        .requests_per_second(4.0)
        .build()
        .unwrap();
    let calls: Vec<_> = (0..8)
        .map(|n| {
            let task = format!("many-{n}");
            fake.script(&task, [Reply::ok(provider_fixture("wav_success", &task))]);
            let client = client.clone();
            tokio::spawn(async move { client.task_details(Family::Wav, &task).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(900)).await;
    let early = fake.seen().len();
    assert!(
        (1..=4).contains(&early),
        "{early} requests in the first 0.9 s"
    );
    for call in calls {
        call.await.unwrap().expect("answer");
    }
    assert_eq!(fake.seen().len(), 8);
}

#[test]
fn the_api_key_never_shows_in_debug() {
    let client = ProviderClient::builder("secret-api-key-123")
        .build()
        .unwrap();
    assert!(!format!("{client:?}").contains("secret-api-key-123"));
    let builder = ProviderClient::builder("secret-api-key-123");
    assert!(!format!("{builder:?}").contains("secret-api-key-123"));
    assert!(
        ProviderClient::builder("k")
            .base_url("ftp://x")
            .build()
            .unwrap_err()
            .is_config()
    );
    assert!(
        ProviderClient::builder("k")
            .requests_per_second(0.0)
            .build()
            .unwrap_err()
            .is_config()
    );
}

// ---------------------------------------------------------------- the reconciler

/// A receiver that records `(stage or "failure", task, source, first audio URL)`.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

/// `(stage, task, source, first audio URL)`.
type Seen = (String, String, EventSource, Option<String>);

impl Recorder {
    fn push(&self, stage: &str, task: &str, url: Option<&str>) {
        self.0.lock().unwrap().push((
            stage.to_owned(),
            task.to_owned(),
            EventSource::current(),
            url.map(str::to_owned),
        ));
    }
    fn events(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
    fn count(&self, stage: &str, task: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| e.0 == stage && e.1 == task)
            .count()
    }
}

fn receiver(recorder: &Recorder, confirm: Option<(ProviderClient, ConfirmMode)>) -> SunoCallbacks {
    receiver_from(SunoCallbacks::builder(), recorder, confirm)
}

fn receiver_from(
    builder: suno_callback::SunoCallbacksBuilder,
    recorder: &Recorder,
    confirm: Option<(ProviderClient, ConfirmMode)>,
) -> SunoCallbacks {
    let (r1, r2, r3, r4, r5) = (
        recorder.clone(),
        recorder.clone(),
        recorder.clone(),
        recorder.clone(),
        recorder.clone(),
    );
    let mut builder = builder
        .hmac_key(KEY)
        .on_text(move |e| {
            r1.push("text", e.task_id(), None);
            async { Ok(()) }
        })
        .on_first(move |e| {
            r2.push(
                "first",
                e.task_id(),
                e.tracks().first().and_then(|t| t.audio_url()),
            );
            async { Ok(()) }
        })
        .on_complete(move |e| {
            r3.push(
                "complete",
                e.task_id(),
                e.tracks().first().and_then(|t| t.audio_url()),
            );
            async { Ok(()) }
        })
        .on_failure(move |e| {
            r4.push("failure", e.task_id(), None);
            async { Ok(()) }
        })
        .fallback(move |e| {
            r5.push("other", e.task_id(), None);
            async { Ok(()) }
        });
    if let Some((client, mode)) = confirm {
        builder = builder.confirm(client, mode);
    }
    builder.build().expect("receiver")
}

fn music_callback(task: &str, stage: &str, audio: &str) -> String {
    serde_json::json!({"code": 200, "msg": "ok", "data": {"callbackType": stage, "task_id": task,
        "data": [{"id": "x", "audio_url": audio}]}})
    .to_string()
}

#[tokio::test]
async fn polls_deliver_first_then_complete_once_and_end_the_task() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let callbacks = receiver(&recorder, None);
    let reconciler = Reconciler::builder(&callbacks, client(&fake))
        .after(Duration::ZERO)
        .interval(Duration::ZERO)
        .build();
    let task = "poll-stages";
    fake.script(task, [Reply::ok(provider_fixture("music_pending", task))]);
    reconciler.expect(task, Family::Music).await.unwrap();

    let report = reconciler.poll_due().await.unwrap();
    assert_eq!(
        (report.polled, report.delivered, report.retry_later),
        (1, 0, 1)
    );
    assert!(recorder.events().is_empty());

    fake.script(
        task,
        [Reply::ok(provider_fixture("music_first_success", task))],
    );
    reconciler.poll_due().await.unwrap();
    reconciler.poll_due().await.unwrap();
    assert_eq!(recorder.count("first", task), 1, "{:?}", recorder.events());

    fake.script(task, [Reply::ok(provider_fixture("music_success", task))]);
    let report = reconciler.poll_due().await.unwrap();
    assert_eq!(report.delivered, 1);
    assert_eq!(recorder.count("complete", task), 1);
    assert!(recorder.events().iter().all(|e| e.2 == EventSource::Poll));
    assert_eq!(
        recorder.events().last().unwrap().3.as_deref(),
        Some("https://cdn.example.net/p/0.mp3")
    );

    // Final: no longer polled.
    let before = fake.count(task);
    let report = reconciler.poll_due().await.unwrap();
    assert_eq!(report.polled, 0);
    assert_eq!(fake.count(task), before);
}

#[tokio::test]
async fn a_final_callback_ends_the_task_and_is_never_polled() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let callbacks = receiver(&recorder, None);
    let reconciler = Reconciler::builder(&callbacks, client(&fake))
        .after(Duration::ZERO)
        .build();
    let task = "callback-first";
    fake.script(task, [Reply::ok(provider_fixture("music_success", task))]);
    reconciler.expect(task, Family::Music).await.unwrap();
    let body = music_callback(task, "complete", "https://cdn.example.net/cb.mp3");
    send(callbacks.service(), signer().request(PATH, body))
        .await
        .expect(200, "processed");
    let report = reconciler.poll_due().await.unwrap();
    assert_eq!(report.polled, 0);
    assert_eq!(fake.count(task), 0);
    assert_eq!(recorder.count("complete", task), 1);
    assert_eq!(recorder.events()[0].2, EventSource::Callback);
}

#[tokio::test]
async fn a_poll_then_the_same_callback_runs_the_handler_once() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let callbacks = receiver(&recorder, None);
    let reconciler = Reconciler::builder(&callbacks, client(&fake))
        .after(Duration::ZERO)
        .build();
    let task = "poll-first";
    fake.script(task, [Reply::ok(provider_fixture("music_failed", task))]);
    reconciler.expect(task, Family::Music).await.unwrap();
    let report = reconciler.poll_due().await.unwrap();
    assert_eq!(report.delivered, 1);
    let late = serde_json::json!({"code": 501, "msg": "Audio generation failed", "data": {
        "callbackType": "error", "task_id": task}});
    send(
        callbacks.service(),
        signer().request(PATH, late.to_string()),
    )
    .await
    .expect(200, "duplicate");
    assert_eq!(recorder.count("failure", task), 1);
}

#[tokio::test]
async fn a_task_not_final_after_the_maximum_age_is_reported() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let callbacks = receiver(&recorder, None);
    let overdue = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&overdue);
    let reconciler = Reconciler::builder(&callbacks, client(&fake))
        .after(Duration::ZERO)
        .max_age(Duration::from_millis(1))
        .on_overdue(move |task| seen.lock().unwrap().push(task.task_id().to_owned()))
        .build();
    reconciler.expect("too-old", Family::Wav).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = reconciler.poll_due().await.unwrap();
    assert_eq!(report.overdue, 1);
    assert_eq!(*overdue.lock().unwrap(), ["too-old"]);
    assert_eq!(fake.count("too-old"), 0);
    assert_eq!(reconciler.poll_due().await.unwrap().overdue, 0);
}

#[tokio::test]
async fn failing_polls_are_retried_on_later_passes() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let callbacks = receiver(&recorder, None);
    let client = ProviderClient::builder(API_KEY)
        .base_url(fake.base_url())
        .max_retries(0)
        .build()
        .unwrap();
    let reconciler = Reconciler::builder(&callbacks, client)
        .after(Duration::ZERO)
        .interval(Duration::ZERO)
        .build();
    let task = "wav-late";
    fake.script(
        task,
        [
            Reply::status(500),
            Reply::ok(provider_fixture("wav_success", task)),
        ],
    );
    reconciler.expect(task, Family::Wav).await.unwrap();
    assert_eq!(reconciler.poll_due().await.unwrap().retry_later, 1);
    assert_eq!(reconciler.poll_due().await.unwrap().delivered, 1);
    assert_eq!(recorder.count("other", task), 1);
}

#[tokio::test]
async fn registries_share_work_between_pollers() {
    let registry = MemoryRegistry::new();
    for n in 0..10 {
        let task = suno_callback::provider::ExpectedTask::new(format!("t{n}"), Family::Music, 0);
        registry.expect(task, 0).await.unwrap();
    }
    let (a, b) = tokio::join!(
        registry.take_due(1, 6, 60_000),
        registry.take_due(1, 6, 60_000)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 10);
    assert!(a.iter().all(|t| !b.contains(t)));
}

// ---------------------------------------------------------------- confirm mode

#[tokio::test]
async fn confirm_mode_dispatches_what_the_provider_says() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let callbacks = receiver(&recorder, Some((client(&fake), ConfirmMode::all())));
    let task = "confirm-ok";
    fake.script(task, [Reply::ok(provider_fixture("music_success", task))]);
    let forged = music_callback(task, "complete", "https://evil.example/x.mp3");
    send(callbacks.service(), signer().request(PATH, forged))
        .await
        .expect(200, "processed");
    let events = recorder.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].2, EventSource::Confirmed);
    assert_eq!(
        events[0].3.as_deref(),
        Some("https://cdn.example.net/p/0.mp3")
    );
}

/// A duplicate of a confirmed callback is answered from the dedup store: it costs no
/// request to the provider.
#[tokio::test]
async fn confirm_mode_asks_nothing_for_a_duplicate() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let callbacks = receiver(&recorder, Some((client(&fake), ConfirmMode::all())));
    let task = "confirm-duplicate";
    fake.script(task, [Reply::ok(provider_fixture("music_success", task))]);
    let body = music_callback(task, "complete", "https://cdn.example.net/x.mp3");
    let request = signer().request(PATH, body);
    let (parts, body) = request.into_parts();
    let again = http::Request::from_parts(parts.clone(), body.clone());
    send(callbacks.service(), http::Request::from_parts(parts, body))
        .await
        .expect(200, "processed");
    assert_eq!(fake.count(task), 1);
    send(callbacks.service(), again)
        .await
        .expect(200, "duplicate");
    assert_eq!(fake.count(task), 1, "the duplicate asked the provider");
    assert_eq!(recorder.count("complete", task), 1);
}

#[tokio::test]
async fn confirm_mode_answers_503_until_the_provider_knows() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let callbacks = receiver(&recorder, Some((client(&fake), ConfirmMode::all())));
    let task = "confirm-pending";
    fake.script(task, [Reply::ok(provider_fixture("music_pending", task))]);
    let body = music_callback(task, "complete", "https://cdn.example.net/x.mp3");
    let answer = send(callbacks.service(), signer().request(PATH, body.clone())).await;
    answer.expect(503, "unavailable");
    assert!(answer.headers.contains_key("retry-after"));

    // Behind the callback (first while it says complete): still 503.
    fake.script(
        task,
        [Reply::ok(provider_fixture("music_first_success", task))],
    );
    send(callbacks.service(), signer().request(PATH, body.clone()))
        .await
        .expect(503, "unavailable");

    // The provider unreachable: 503 as well.
    fake.script(task, [Reply::status(404)]);
    send(callbacks.service(), signer().request(PATH, body.clone()))
        .await
        .expect(503, "unavailable");
    assert!(recorder.events().is_empty());

    fake.script(task, [Reply::ok(provider_fixture("music_success", task))]);
    send(callbacks.service(), signer().request(PATH, body))
        .await
        .expect(200, "processed");
    assert_eq!(recorder.count("complete", task), 1);
}

#[tokio::test]
async fn confirm_mode_delivers_the_provider_outcome_over_the_body() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let callbacks = receiver(&recorder, Some((client(&fake), ConfirmMode::all())));
    let task = "confirm-forged-success";
    fake.script(task, [Reply::ok(provider_fixture("music_failed", task))]);
    let forged = music_callback(task, "complete", "https://evil.example/x.mp3");
    send(callbacks.service(), signer().request(PATH, forged))
        .await
        .expect(200, "processed");
    assert_eq!(recorder.count("failure", task), 1);
    assert_eq!(recorder.count("complete", task), 0);
}

#[tokio::test]
async fn confirm_mode_applies_only_to_its_families() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let mode = ConfirmMode::families([Family::Wav]);
    let callbacks = receiver(&recorder, Some((client(&fake), mode)));
    let task = "confirm-music-skipped";
    let body = music_callback(task, "complete", "https://cdn.example.net/as-sent.mp3");
    send(callbacks.service(), signer().request(PATH, body))
        .await
        .expect(200, "processed");
    assert_eq!(fake.count(task), 0);
    assert_eq!(recorder.events()[0].2, EventSource::Callback);

    // A wav callback is confirmed.
    let task = "confirm-wav";
    fake.script(task, [Reply::ok(provider_fixture("wav_success", task))]);
    let wav = serde_json::json!({"code": 200, "msg": "success", "data": {
        "task_id": task, "audioWavUrl": "https://evil.example/a.wav"}});
    send(callbacks.service(), signer().request(PATH, wav.to_string()))
        .await
        .expect(200, "processed");
    assert_eq!(fake.count(task), 1);
    assert_eq!(fake.seen().last().unwrap().path, "/api/v1/wav/record-info");
}

#[tokio::test]
async fn unconfirmed_outcomes_are_left_to_the_reconciler() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let callbacks = receiver(&recorder, Some((client(&fake), ConfirmMode::all())));
    let reconciler = Reconciler::builder(&callbacks, client(&fake))
        .after(Duration::ZERO)
        .build();
    let task = "confirm-then-poll";
    reconciler.expect(task, Family::Music).await.unwrap();
    fake.script(task, [Reply::ok(provider_fixture("music_pending", task))]);
    let body = music_callback(task, "complete", "https://cdn.example.net/x.mp3");
    send(callbacks.service(), signer().request(PATH, body))
        .await
        .expect(503, "unavailable");
    fake.script(task, [Reply::ok(provider_fixture("music_success", task))]);
    assert_eq!(reconciler.poll_due().await.unwrap().delivered, 1);
    assert_eq!(recorder.count("complete", task), 1);
    assert_eq!(recorder.events()[0].2, EventSource::Poll);
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<ProviderClient>();
    check::<Reconciler>();
    check::<MemoryRegistry>();
    check::<TaskAnswer>();
    check::<SyntheticCallback>();
    check::<suno_callback::provider::ProviderError>();
}

// ---------------------------------------------------------------- the example

#[tokio::test]
async fn the_reconcile_example_prints_polled_and_called_events() {
    let fake = FakeProvider::start().await;
    fake.script(
        "ex-music",
        [Reply::ok(provider_fixture("music_success", "ex-music"))],
    );
    fake.script(
        "ex-wav",
        [Reply::ok(
            r#"{"code":200,"data":{"taskId":"ex-wav","successFlag":"PENDING"}}"#,
        )],
    );
    let key = "reconcile-example-key";
    let base = fake.base_url();
    let mut example = common::RunningExample::start(
        "reconcile",
        &[
            ("SUNO_WEBHOOK_HMAC_KEY", key),
            ("SUNO_API_KEY", API_KEY),
            ("SUNO_API_BASE", &base),
            ("SUNO_EXPECT", "music:ex-music, wav:ex-wav"),
            ("SUNO_RECONCILE_AFTER_MS", "0"),
            ("SUNO_RECONCILE_INTERVAL_MS", "100"),
        ],
        &["SUNO_CONFIRM"],
    )
    .await;
    let line = example.next_line().await;
    assert_line(
        &line,
        "music complete task=ex-music ",
        "audio=https://cdn.example.net/p/0.mp3",
        " source=poll",
    );
    let wav = serde_json::json!({"code": 200, "msg": "success", "data": {
        "task_id": "ex-wav", "audioWavUrl": "https://cdn.example.net/cb.wav"}});
    common::http_send(
        example.addr,
        common::Signer::new(key).request(PATH, wav.to_string()),
    )
    .await
    .expect(200, "processed");
    let line = example.next_line().await;
    assert_eq!(
        line,
        "wav complete task=ex-wav url=https://cdn.example.net/cb.wav source=callback"
    );
    let failure = serde_json::json!({"code": 501, "msg": "failed", "data": {
        "callbackType": "error", "task_id": "ex-other"}});
    common::http_send(
        example.addr,
        common::Signer::new(key).request(PATH, failure.to_string()),
    )
    .await
    .expect(200, "processed");
    assert_line(
        &example.next_line().await,
        "music failure task=ex-other code=501 ",
        "msg=\"failed\"",
        " source=callback",
    );
}

#[tokio::test]
async fn the_reconcile_example_confirms_callbacks_when_asked() {
    let fake = FakeProvider::start().await;
    fake.script(
        "ex-confirm",
        [Reply::ok(provider_fixture("video_success", "ex-confirm"))],
    );
    let key = "reconcile-example-key";
    let base = fake.base_url();
    let mut example = common::RunningExample::start(
        "reconcile",
        &[
            ("SUNO_WEBHOOK_HMAC_KEY", key),
            ("SUNO_API_KEY", API_KEY),
            ("SUNO_API_BASE", &base),
            ("SUNO_CONFIRM", "1"),
        ],
        &["SUNO_EXPECT"],
    )
    .await;
    let forged = serde_json::json!({"code": 200, "msg": "success", "data": {
        "task_id": "ex-confirm", "video_url": "https://evil.example/v.mp4"}});
    common::http_send(
        example.addr,
        common::Signer::new(key).request(PATH, forged.to_string()),
    )
    .await
    .expect(200, "processed");
    assert_line(
        &example.next_line().await,
        "video complete task=ex-confirm ",
        "https://cdn.example.net/p/v.mp4",
        " source=callback",
    );
    assert_eq!(fake.count("ex-confirm"), 1);
}

#[tokio::test]
async fn old_pending_tasks_are_polled_less_often() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let registry = Arc::new(MemoryRegistry::new());
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .task_registry(Arc::clone(&registry))
        .fallback({
            let recorder = recorder.clone();
            move |e| {
                recorder.push("any", e.task_id(), None);
                async { Ok(()) }
            }
        })
        .build()
        .unwrap();
    let reconciler = Reconciler::builder(&callbacks, client(&fake))
        .interval(Duration::from_secs(30))
        .max_interval(Duration::from_secs(600))
        .build();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let two_hours = 2 * 60 * 60 * 1000;
    let task = suno_callback::provider::ExpectedTask::new("old", Family::Music, now - two_hours);
    registry.expect(task, 0).await.unwrap();
    fake.script("old", [Reply::ok(provider_fixture("music_pending", "old"))]);
    assert_eq!(reconciler.poll_due().await.unwrap().retry_later, 1);
    // A twentieth of two hours: six minutes, not the 30 s interval.
    assert!(
        registry
            .take_due(now + 5 * 60 * 1000, 10, 1)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        registry
            .take_due(now + 7 * 60 * 1000, 10, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(recorder.events().is_empty());
}

#[test]
fn a_poll_of_every_family_is_the_event_its_callback_is() {
    // (family, provider answer, the callback of the same outcome)
    let cases = [
        (
            Family::Music,
            "music_success",
            "music/generate_complete_epoch_ms.json",
        ),
        (
            Family::Music,
            "music_first_success",
            "music/add_instrumental_first.json",
        ),
        (Family::Music, "music_failed", "music/error_code_500.json"),
        (Family::Lyrics, "lyrics_success", "lyrics/complete.json"),
        (Family::Wav, "wav_success", "wav/success.json"),
        (
            Family::Separation,
            "separation_success",
            "separation/separate_vocal_success.json",
        ),
        (Family::Midi, "midi_success", "midi/success.json"),
        (Family::Video, "video_success", "video/success.json"),
        (Family::Cover, "cover_success", "cover_images/success.json"),
        (
            Family::Voice,
            "voice_success",
            "voice/generate_success.json",
        ),
    ];
    for (family, answer_name, callback_name) in cases {
        let answer = TaskAnswer::from_json(family, provider_fixture(answer_name, "t").as_bytes())
            .expect(answer_name);
        let polled = SyntheticCallback::from_answer(&answer)
            .expect(answer_name)
            .expect(answer_name)
            .to_event()
            .expect(answer_name);
        let called =
            CallbackEvent::from_json_as(family, fixture(callback_name)).expect(callback_name);
        assert_eq!(polled.family(), family, "{answer_name}");
        assert_eq!(polled.family(), called.family(), "{answer_name}");
        assert_eq!(polled.stage(), called.stage(), "{answer_name}");
        assert_eq!(polled.outcome(), called.outcome(), "{answer_name}");
        // The same typed payload (the values differ: another task's URLs).
        assert_eq!(
            std::mem::discriminant(polled.payload()),
            std::mem::discriminant(called.payload()),
            "{answer_name}"
        );
        assert_ne!(polled.payload(), &Payload::Unknown, "{answer_name}");
        // A callback without a path is read as the same family by its shape.
        if answer_name != "music_failed" {
            let by_shape = CallbackEvent::from_json(polled.raw_body().clone()).unwrap();
            assert_eq!(by_shape.family(), polled.family(), "{answer_name}");
        }
    }
}

#[tokio::test]
async fn confirm_mode_confirms_a_voice_step() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let callbacks = receiver(&recorder, Some((client(&fake), ConfirmMode::all())));
    let task = "confirm-voice-step";
    let answer = serde_json::json!({"code": 200, "data": {"taskId": task,
        "status": "wait_validating", "validateInfo": "read this"}});
    fake.script(task, [Reply::ok(answer.to_string())]);
    let step = serde_json::json!({"code": 200, "msg": "success", "data": {"taskId": task,
        "status": "wait_validating", "validateInfo": "read that"}});
    send(
        callbacks.service(),
        signer().request(PATH, step.to_string()),
    )
    .await
    .expect(200, "processed");
    assert_eq!(recorder.count("other", task), 1);
    assert_eq!(
        fake.seen().last().unwrap().path,
        "/api/v1/voice/record-info"
    );
}

/// A line of the example: the quickstart's line with its `source=`.
fn assert_line(line: &str, start: &str, middle: &str, end: &str) {
    assert!(
        line.starts_with(start) && line.contains(middle) && line.ends_with(end),
        "{line:?} is not {start:?}…{middle:?}…{end:?}"
    );
}

/// `SignatureReuse::Confirm` hands a callback reusing another's signature to confirm
/// mode, whatever families the mode names: the provider's outcome is dispatched, never
/// the forged body's; `503` only while the provider does not know it.
#[tokio::test]
async fn a_reused_signature_is_confirmed_with_the_provider() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let callbacks = receiver_from(
        SunoCallbacks::builder().signature_reuse(suno_callback::verify::SignatureReuse::Confirm),
        &recorder,
        Some((client(&fake), ConfirmMode::families([]))),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let task = "reused-signature";
    // The genuine `first`: not confirmed (no family is), the provider is not asked.
    send(
        callbacks.service(),
        signer().request_at(
            PATH,
            music_callback(task, "first", "https://cdn.example.net/first.mp3"),
            now,
        ),
    )
    .await
    .expect(200, "processed");
    assert_eq!(fake.count(task), 0);
    // A forged `complete` with the same signature, while the provider knows nothing.
    let forged = music_callback(task, "complete", "https://evil.example/x.mp3");
    fake.script(task, [Reply::ok(provider_fixture("music_pending", task))]);
    let answer = send(
        callbacks.service(),
        signer().request_at(PATH, forged.clone(), now),
    )
    .await;
    answer.expect(503, "unavailable");
    assert_eq!(answer.headers["retry-after"], "30");
    // Once the provider knows: its tracks run the handler, the forged URL never does.
    fake.script(task, [Reply::ok(provider_fixture("music_success", task))]);
    send(callbacks.service(), signer().request_at(PATH, forged, now))
        .await
        .expect(200, "processed");
    assert_eq!(fake.count(task), 2);
    let completes: Vec<Seen> = recorder
        .events()
        .into_iter()
        .filter(|e| e.0 == "complete")
        .collect();
    assert_eq!(completes.len(), 1, "{completes:?}");
    assert_eq!(completes[0].2, EventSource::Confirmed);
    let url = completes[0].3.as_deref().unwrap();
    assert!(url.starts_with("https://cdn.example.net/"), "{url}");
    assert_eq!(callbacks.reused_signatures(), 2);
}

/// A callback whose family neither the registry, its path nor its shape tells cannot be
/// confirmed: `503`, and no endpoint is guessed.
#[tokio::test]
async fn confirm_mode_does_not_guess_an_unknown_family() {
    let fake = FakeProvider::start().await;
    let recorder = Recorder::default();
    let callbacks = receiver(&recorder, Some((client(&fake), ConfirmMode::all())));
    let task = "confirm-unknown-family";
    let body = serde_json::json!({"code": 500, "msg": "MIDI generation failed",
        "data": {"taskId": task}});
    send(
        callbacks.service(),
        signer().request(PATH, body.to_string()),
    )
    .await
    .expect(503, "unavailable");
    assert!(fake.seen().is_empty());
    assert!(recorder.events().is_empty());
}

/// The registry conformance suite on the default registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_registry_conforms() {
    suno_callback::testing::registry_conformance::run_all(std::sync::Arc::new(
        suno_callback::provider::MemoryRegistry::new(),
    ))
    .await;
}
