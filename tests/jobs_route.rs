//! Callbacks of the jobs route (`POST /api/v1/jobs/createTask`): every fixture of
//! `fixtures/market/` through the service on the shared path and on every family path,
//! typed by its model; the shapes `resultJson` may take; hostile `resultJson`s; dedup
//! across a task's callbacks; the synthetic body the reconciler builds from a
//! task-details answer.

mod common;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::{PATH, fixture, send, signed_to};
use serde_json::{Value, json};
use suno_callback::event::{FailureReason, Payload};
use suno_callback::{ApiRoute, CallbackEvent, Family, Outcome, Route, Stage, SunoCallbacks};

type Seen = Arc<Mutex<Vec<(&'static str, CallbackEvent)>>>;

/// A receiver registered as the README shows, whatever the route: `on_complete`,
/// a success and a failure handler per family, `on_failure`, a fallback.
fn receiver(seen: &Seen) -> SunoCallbacks {
    let record = |name: &'static str, seen: &Seen| {
        let seen = Arc::clone(seen);
        move |event: CallbackEvent| {
            seen.lock().expect("lock").push((name, event));
            async { Ok(()) }
        }
    };
    let mut builder = SunoCallbacks::builder()
        .hmac_key(common::KEY)
        .on_complete(record("complete", seen));
    for family in Family::ALL {
        builder = builder
            .on(Route::success(family), record("success", seen))
            .on(Route::failure(family), record("failure", seen));
    }
    builder
        .on_failure(record("any_failure", seen))
        .fallback(record("fallback", seen))
        .build()
        .expect("valid configuration")
}

fn take(seen: &Seen) -> (&'static str, CallbackEvent) {
    let mut seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 1, "one handler run");
    seen.remove(0)
}

/// The handler a callback of this family and outcome reaches.
fn handler_for(family: Family, outcome: Outcome) -> &'static str {
    match (family, outcome) {
        (Family::Music, Outcome::Success) => "complete",
        (Family::Unknown, Outcome::Success) => "fallback",
        (Family::Unknown, Outcome::Failure) => "any_failure",
        (_, Outcome::Success) => "success",
        (_, Outcome::Failure) => "failure",
    }
}

/// Sends `body` signed to `path` and returns the one handler that ran and its event.
async fn deliver(path: &str, body: impl Into<Bytes>) -> (&'static str, CallbackEvent) {
    let seen = Seen::default();
    send(receiver(&seen).service(), signed_to(path, body))
        .await
        .expect(200, "processed");
    take(&seen)
}

#[tokio::test]
async fn every_market_fixture_is_typed_by_its_model_on_every_path() {
    let expected: Value =
        serde_json::from_slice(&fixture("market/expected.json")).expect("expected.json");
    let expected = expected.as_object().expect("an object");
    assert_eq!(
        expected.len(),
        common::fixtures_in("market").len() - 1,
        "every fixture is listed"
    );
    for (file, want) in expected {
        let family =
            Family::from_name(want["family"].as_str().expect("family")).unwrap_or(Family::Unknown);
        let outcome = match want["outcome"].as_str() {
            Some("success") => Outcome::Success,
            _ => Outcome::Failure,
        };
        let tracks = want["tracks"].as_u64().expect("tracks") as usize;
        let body = fixture(&format!("market/{file}"));
        let paths = std::iter::once(PATH.to_owned())
            .chain(Family::ALL.iter().map(|family| format!("{PATH}/{family}")));
        for path in paths {
            let (handler, event) = deliver(&path, body.clone()).await;
            let at = format!("{file} on {path}");
            assert_eq!(event.family(), family, "{at}");
            assert_eq!(event.outcome(), outcome, "{at}");
            assert_eq!(event.tracks().len(), tracks, "{at}");
            assert_eq!(event.api_route(), ApiRoute::Jobs, "{at}");
            assert_eq!(handler, handler_for(family, outcome), "{at}");
            assert_eq!(event.task_id(), "market-task-1", "{at}");
            let jobs = event.jobs().expect("jobs metadata");
            assert!(
                jobs.model().is_some() && jobs.param_json().is_some(),
                "{at}"
            );
            assert_eq!(jobs.consume_credits(), Some(12.0), "{at}");
            assert_eq!(jobs.remained_credits(), Some(2488.0), "{at}");
            assert_eq!(jobs.cost_time(), Some(41.0), "{at}");
            assert_eq!(
                jobs.create_time().and_then(|t| t.epoch_millis()),
                Some(1_791_201_600_000),
                "{at}"
            );
            assert_eq!(
                jobs.complete_time().and_then(|t| t.epoch_millis()),
                Some(1_791_201_641_000),
                "{at}"
            );
            assert_eq!(&event.raw_body()[..], &body[..], "{at}");
            if family == Family::Music && outcome == Outcome::Success {
                assert_eq!(event.stage(), &Stage::Complete, "{at}");
                assert!(
                    event.tracks().iter().all(|t| t.audio_url().is_some()),
                    "{at}"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_market_fixtures_payloads_are_typed() {
    let (_, music) = deliver(PATH, fixture("market/music_generate_success.json")).await;
    let track = &music.tracks()[1];
    assert_eq!(
        (track.id(), track.title(), track.duration_seconds()),
        (Some("trk-2"), Some("Night Drive 2"), Some(183.3))
    );
    assert_eq!(
        music.jobs().and_then(|j| j.model()),
        Some("ai-music-api/generate")
    );

    let (_, urls) = deliver(
        PATH,
        fixture("market/music_extend_success_result_urls.json"),
    )
    .await;
    assert_eq!(
        urls.tracks()[1].audio_url(),
        Some("https://tempfile.example.com/2.mp3")
    );
    assert_eq!(urls.jobs().map(|j| j.result_urls().len()), Some(2));

    let (_, fail) = deliver(PATH, fixture("market/music_generate_fail.json")).await;
    assert_eq!(fail.stage().as_str(), "error");
    let jobs = fail.jobs().expect("jobs");
    assert_eq!(
        (jobs.fail_code(), jobs.fail_msg()),
        (Some("500"), Some("Internal server error"))
    );
    assert_eq!(fail.reason(), Some(FailureReason::ServerError));
    assert_eq!(fail.error_detail(), Some("Internal server error"));

    let (_, lyrics) = deliver(PATH, fixture("market/lyrics_success.json")).await;
    let Payload::Lyrics(lyrics) = lyrics.payload() else {
        panic!("lyrics: {:?}", lyrics.payload())
    };
    assert_eq!(lyrics.variations()[0].title(), Some("Night"));
    assert_eq!(lyrics.completed().count(), 1);

    let (_, wav) = deliver(PATH, fixture("market/wav_success.json")).await;
    let Payload::Wav(wav) = wav.payload() else {
        panic!("wav: {:?}", wav.payload())
    };
    assert_eq!(
        wav.audio_wav_url(),
        Some("https://tempfile.example.com/a.wav")
    );

    let (_, sora) = deliver(PATH, fixture("market/not_suno_model_success.json")).await;
    assert_eq!(
        sora.jobs().and_then(|j| j.model()),
        Some("sora-2-text-to-video")
    );
    assert_eq!(
        sora.jobs().map(|j| j.result_urls().to_vec()),
        Some(vec!["https://example.com/video.mp4".to_owned()])
    );
}

/// A jobs-route body of `model` and `state`, `resultJson` as given (a JSON value: a
/// string holds the text, anything else stands in its place).
fn jobs_body(task: &str, model: &str, state: &str, code: i64, result: Value) -> String {
    json!({
        "code": code,
        "msg": "Playground task completed successfully.",
        "data": {
            "taskId": task, "model": model, "state": state, "resultJson": result,
            "failCode": if state == "fail" { json!("501") } else { Value::Null },
            "failMsg": if state == "fail" { json!("generation failed") } else { Value::Null },
            "param": "{\"model\":\"x\"}", "createTime": 1791201600000_i64,
            "completeTime": 1791201641000_i64, "costTime": 41, "consumeCredits": 12,
            "remainedCredits": 2488
        }
    })
    .to_string()
}

fn text(value: Value) -> Value {
    Value::String(value.to_string())
}

#[tokio::test]
async fn every_shape_of_a_music_result_gives_its_tracks() {
    let snake = json!([{"id": "a", "audio_url": "https://x/a.mp3"}, {"id": "b", "audio_url": "https://x/b.mp3"}]);
    let camel = json!([{"id": "a", "audioUrl": "https://x/a.mp3", "streamAudioUrl": "https://x/a"},
        {"id": "b", "audioUrl": "https://x/b.mp3"}]);
    let results = [
        (
            "the old callback's data",
            text(json!({"callbackType": "complete", "task_id": "t", "data": snake})),
        ),
        (
            "the old callback's body",
            text(json!({"code": 200, "msg": "ok",
            "data": {"callbackType": "complete", "task_id": "t", "data": snake}})),
        ),
        ("code and data", text(json!({"code": 200, "data": snake}))),
        ("sunoData", text(json!({"sunoData": camel}))),
        (
            "response.sunoData",
            text(json!({"taskId": "t", "response": {"sunoData": camel}})),
        ),
        (
            "resultUrls",
            text(json!({"resultUrls": ["https://x/a.mp3", "https://x/b.mp3"]})),
        ),
        ("an object", json!({"data": snake})),
        (
            "data before resultUrls",
            text(json!({"resultUrls": ["https://x/z.mp3"], "data": snake})),
        ),
    ];
    for (what, result) in results {
        let body = jobs_body("t", "ai-music-api/generate", "success", 200, result);
        for path in [PATH.to_owned(), format!("{PATH}/wav")] {
            let (handler, event) = deliver(&path, body.clone()).await;
            assert_eq!(handler, "complete", "{what} on {path}");
            let urls: Vec<_> = event.tracks().iter().map(|t| t.audio_url()).collect();
            assert_eq!(
                urls,
                [Some("https://x/a.mp3"), Some("https://x/b.mp3")],
                "{what} on {path}"
            );
        }
    }
    let (_, event) = deliver(
        PATH,
        jobs_body(
            "t",
            "ai-music-api/generate",
            "success",
            200,
            text(json!({"sunoData": camel})),
        ),
    )
    .await;
    assert_eq!(event.tracks()[0].stream_audio_url(), Some("https://x/a"));
}

#[tokio::test]
async fn every_family_reads_its_old_fields_from_the_result() {
    type Check = fn(&Payload) -> bool;
    let cases: [(&str, Value, Check); 8] = [
        (
            "convert-to-wav-format",
            json!({"audioWavUrl": "https://x/a.wav"}),
            |p| matches!(p, Payload::Wav(w) if w.audio_wav_url() == Some("https://x/a.wav")),
        ),
        (
            "separate-vocals",
            json!({"vocal_separation_info": {"vocal_url": "https://x/v.mp3"}}),
            |p| matches!(p, Payload::Separation(s) if s.vocal_url() == Some("https://x/v.mp3")),
        ),
        (
            "create-music-video",
            json!({"video_url": "https://x/v.mp4"}),
            |p| matches!(p, Payload::Video(v) if v.video_url() == Some("https://x/v.mp4")),
        ),
        (
            "cover-generate",
            json!({"images": ["https://x/1.png", "https://x/2.png"]}),
            |p| matches!(p, Payload::Cover(c) if c.images().len() == 2),
        ),
        (
            "generate-midi-from-audio",
            json!({"instruments": [{"name": "Drums", "notes": [{"pitch": 36}]}]}),
            |p| matches!(p, Payload::Midi(m) if m.instruments()[0].notes().len() == 1),
        ),
        ("create-voice", json!({"voiceId": "v-1"}), |p| {
            matches!(p, Payload::Voice(v) if v.voice_id() == Some("v-1")
                && v.status() == suno_callback::event::VoiceStatus::Success)
        }),
        (
            "generate-lyrics",
            json!({"data": [{"text": "la", "status": "complete"}, {"errorMessage": "flagged"}]}),
            |p| {
                matches!(p, Payload::Lyrics(l) if l.completed().count() == 1
                && l.variations()[1].error_message() == Some("flagged"))
            },
        ),
        (
            "convert-to-wav-format",
            json!({"resultUrls": ["https://x/b.wav"]}),
            |p| matches!(p, Payload::Wav(w) if w.audio_wav_url() == Some("https://x/b.wav")),
        ),
    ];
    for (model, result, check) in cases {
        let model = format!("ai-music-api/{model}");
        let family = Family::from_model(&model).expect("a listed model");
        for result in [text(result.clone()), result] {
            let body = jobs_body("t", &model, "success", 200, result);
            let (handler, event) = deliver(&format!("{PATH}/music"), body).await;
            assert_eq!((event.family(), handler), (family, "success"), "{model}");
            assert!(check(event.payload()), "{model}: {:?}", event.payload());
        }
    }
}

#[tokio::test]
async fn unknown_models_are_delivered_as_unknown_with_their_name() {
    for model in [
        "ai-music-api/not-yet-listed",
        "sora-2-text-to-video",
        "veo3",
    ] {
        for state in ["success", "fail"] {
            let body = jobs_body(
                "t",
                model,
                state,
                200,
                text(json!({"resultUrls": ["https://x/1"]})),
            );
            let (handler, event) = deliver(&format!("{PATH}/video"), body).await;
            assert_eq!(event.family(), Family::Unknown, "{model}");
            assert_eq!(event.jobs().and_then(|j| j.model()), Some(model));
            let outcome = if state == "fail" {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            assert_eq!(
                handler,
                handler_for(Family::Unknown, outcome),
                "{model} {state}"
            );
            assert!(matches!(event.payload(), Payload::Unknown));
            assert!(event.tracks().is_empty());
        }
    }
}

#[tokio::test]
async fn state_decides_the_outcome_whatever_the_code() {
    let (handler, event) = deliver(
        PATH,
        jobs_body(
            "t",
            "ai-music-api/generate",
            "fail",
            200,
            Value::String(String::new()),
        ),
    )
    .await;
    assert_eq!((handler, event.outcome()), ("failure", Outcome::Failure));
    assert_eq!(event.code(), 200);
    assert_eq!(event.reason(), Some(FailureReason::GenerationFailed));
    assert_eq!(
        event.jobs().and_then(|j| j.fail_msg()),
        Some("generation failed")
    );
}

#[tokio::test]
async fn a_result_that_is_not_json_is_kept_as_text_and_the_event_runs() {
    for result in ["not json at all", "{\"resultUrls\": [", "[1, 2]", "42"] {
        let body = jobs_body("t", "ai-music-api/generate", "success", 200, json!(result));
        let (handler, event) = deliver(PATH, body).await;
        assert_eq!(handler, "complete", "{result}");
        assert!(event.tracks().is_empty(), "{result}");
        let jobs = event.jobs().expect("jobs");
        assert_eq!(jobs.result_json(), Some(result));
        assert_eq!(
            jobs.result_json_value().is_some(),
            result == "[1, 2]" || result == "42"
        );
    }
}

#[tokio::test]
async fn hostile_results_cost_nothing_out_of_proportion() {
    // Deeper than a body may nest: kept as text, nothing read from it.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_object = format!(r#"{{"data":{}1{}}}"#, "[".repeat(5000), "]".repeat(5000));
    // Large: many tracks, each costing its text.
    let many: Vec<Value> = (0..20_000)
        .map(|i| json!({"id": format!("t{i}")}))
        .collect();
    let large = text(json!({ "data": many }));
    for (what, result, tracks) in [
        ("deep", json!(deep), 0),
        ("deep object", json!(deep_object), 0),
        ("large", large, 20_000),
    ] {
        let body = jobs_body("t", "ai-music-api/generate", "success", 200, result);
        assert!(body.len() < suno_callback::DEFAULT_BODY_LIMIT, "{what}");
        let (handler, event) = deliver(PATH, body).await;
        assert_eq!(
            (handler, event.tracks().len()),
            ("complete", tracks),
            "{what}"
        );
        assert!(
            event.jobs().expect("jobs").result_json().is_some(),
            "{what}"
        );
        // `resultJson` and `param` show by length only; each track as on the classic
        // route.
        let debug = format!("{event:?}");
        assert!(
            debug.len() < 2_000 + 300 * tracks,
            "{what}: Debug is {} bytes",
            debug.len()
        );
    }
    // Unsigned, such a body is refused before anything of it is read.
    let body = jobs_body("t", "ai-music-api/generate", "success", 200, json!(deep));
    let seen = Seen::default();
    let request = http::Request::post(PATH)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from(body)))
        .expect("request");
    send(receiver(&seen).service(), request)
        .await
        .expect(401, "rejected");
    assert!(seen.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn a_failure_then_a_success_of_one_task_both_run_and_a_success_again_is_a_duplicate() {
    for path in [PATH.to_owned(), format!("{PATH}/music")] {
        let seen = Seen::default();
        let callbacks = receiver(&seen);
        let failure = jobs_body("task-9", "ai-music-api/generate", "fail", 501, json!(""));
        let success = jobs_body(
            "task-9",
            "ai-music-api/generate",
            "success",
            200,
            text(json!({"resultUrls": ["https://x/1.mp3"]})),
        );
        send(callbacks.service(), signed_to(&path, failure))
            .await
            .expect(200, "processed");
        send(callbacks.service(), signed_to(&path, success.clone()))
            .await
            .expect(200, "processed");
        send(callbacks.service(), signed_to(&path, success))
            .await
            .expect(200, "duplicate");
        let runs: Vec<_> = seen
            .lock()
            .expect("lock")
            .iter()
            .map(|(name, event)| (*name, event.outcome()))
            .collect();
        assert_eq!(
            runs,
            [
                ("failure", Outcome::Failure),
                ("complete", Outcome::Success)
            ],
            "{path}"
        );
    }
}

/// The body the reconciler builds of a task-details answer (`{code, msg, data}` with
/// the answer's `data` verbatim) is typed by the jobs shape with the key of the
/// callback itself.
#[test]
fn a_task_details_answer_reads_as_its_callback() {
    let key = |event: &CallbackEvent| {
        (
            event.task_id().to_owned(),
            event.family(),
            event.stage().clone(),
            event.outcome(),
            event.api_route(),
        )
    };
    let synthetic = |file: &str| {
        let answer: Value = serde_json::from_slice(&fixture(file)).expect("answer");
        json!({"code": answer["code"], "msg": answer["msg"], "data": answer["data"]}).to_string()
    };
    for (answer, callback) in [
        (
            "provider/jobs_music_success.json",
            "market/music_generate_success.json",
        ),
        (
            "provider/jobs_music_fail.json",
            "market/music_generate_fail.json",
        ),
        ("provider/jobs_wav_success.json", "market/wav_success.json"),
    ] {
        let callback = CallbackEvent::from_json(fixture(callback)).expect("callback");
        for family in [None, Some(callback.family()), Some(Family::Midi)] {
            let body = synthetic(answer);
            let event = match family {
                None => CallbackEvent::from_json(body),
                Some(family) => CallbackEvent::from_json_as(family, body),
            }
            .expect("synthetic");
            assert_eq!(key(&event), key(&callback), "{answer} as {family:?}");
        }
    }
    let music =
        CallbackEvent::from_json(synthetic("provider/jobs_music_success.json")).expect("music");
    assert_eq!(music.tracks().len(), 2);
    let pending =
        CallbackEvent::from_json(synthetic("provider/jobs_generating.json")).expect("pending");
    assert_eq!(
        (pending.stage().as_str(), pending.outcome()),
        ("generating", Outcome::Success)
    );
}

/// The texts a jobs body carries show in `Debug` cut short, however long they are.
#[test]
fn debug_shows_long_texts_cut_short() {
    let long = "x".repeat(200_000);
    let body = json!({
        "code": 501,
        "msg": long,
        "data": {
            "taskId": "t",
            "model": format!("ai-music-api/{long}"),
            "state": "fail",
            "failCode": long,
            "failMsg": long,
        }
    })
    .to_string();
    let event = CallbackEvent::from_json(body).expect("a jobs failure");
    assert_eq!(event.jobs().expect("jobs").fail_msg(), Some(long.as_str()));
    let debug = format!("{event:?}");
    assert!(debug.len() < 5_000, "Debug is {} bytes", debug.len());
}
