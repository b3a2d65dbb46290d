//! Every `testing::MusicCallback` the builders make is accepted by the receiver and
//! parsed as the event it was built for, and the builders write the documented shapes
//! (the fixtures).

mod common;

use std::sync::{Arc, Mutex};

use common::{KEY, PATH, fixture, send, signer};
use suno_callback::event::{CreateTime, FailureReason};
use suno_callback::testing::{
    DOCUMENTED_FAILURE_CODES, MusicCallback, Signer, TaskIdAt, TestTrack, failure_msg,
};
use suno_callback::{CallbackEvent, Family, Outcome, Stage, SunoCallbacks};

/// A receiver whose fallback records every event it is handed (with no specific
/// handler registered, the fallback receives every stage).
fn recording_receiver() -> (SunoCallbacks, Arc<Mutex<Vec<CallbackEvent>>>) {
    let seen: Arc<Mutex<Vec<CallbackEvent>>> = Arc::default();
    let log = Arc::clone(&seen);
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .fallback(move |event| {
            log.lock().expect("lock").push(event);
            async { Ok(()) }
        })
        .build()
        .expect("valid configuration");
    (callbacks, seen)
}

/// Sends `callback` signed through a fresh receiver; it must be processed. Returns the
/// event the handler got.
async fn deliver(callback: &MusicCallback) -> CallbackEvent {
    let (callbacks, seen) = recording_receiver();
    let answer = send(
        callbacks.service(),
        callback.signed_request(&signer(), PATH),
    )
    .await;
    answer.expect(200, "processed");
    assert_eq!(answer.json["task_id"], callback.task_id());
    let mut seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 1, "one handler run");
    seen.remove(0)
}

#[tokio::test]
async fn each_stage_builder_reaches_its_handler_as_that_stage() {
    let cases = [
        (MusicCallback::text("task-text"), Stage::Text, 2),
        (MusicCallback::first("task-first"), Stage::First, 1),
        (MusicCallback::complete("task-complete"), Stage::Complete, 2),
    ];
    for (callback, stage, tracks) in cases {
        let event = deliver(&callback).await;
        assert_eq!(event.family(), Family::Music);
        assert_eq!(event.outcome(), Outcome::Success);
        let stage_event = &event;
        assert_eq!(stage_event.stage(), &stage);
        assert_eq!(stage_event.task_id(), callback.task_id());
        assert_eq!(stage_event.code(), 200);
        assert_eq!(stage_event.msg(), callback.msg());
        assert_eq!(stage_event.tracks().len(), tracks, "{stage}");
    }
}

#[tokio::test]
async fn every_documented_failure_code_and_an_unknown_one_is_a_failure_with_its_reason() {
    let expected = [
        (400, FailureReason::InvalidRequest),
        (408, FailureReason::RateLimited),
        (413, FailureReason::MatchesExistingWork),
        (451, FailureReason::DownloadFailed),
        (500, FailureReason::ServerError),
        (501, FailureReason::GenerationFailed),
        (531, FailureReason::FailedCreditsRefunded),
        (599, FailureReason::Other(599)),
    ];
    let codes: Vec<i64> = expected.iter().map(|(code, _)| *code).collect();
    assert_eq!(
        codes[..7],
        DOCUMENTED_FAILURE_CODES,
        "every documented code"
    );
    for (code, reason) in expected {
        let callback = MusicCallback::failure(format!("task-fail-{code}"), code);
        let event = deliver(&callback).await;
        assert!(event.is_failure(), "failure expected");
        assert_eq!(event.reason(), Some(reason), "{code}");
        assert_eq!(event.code(), code);
        assert_eq!(event.stage(), &Stage::Error);
        assert_eq!(event.msg(), Some(failure_msg(code).as_str()));
        assert!(event.tracks().is_empty());
    }
}

#[tokio::test]
async fn a_non_200_code_on_a_stage_callback_is_a_failure() {
    let callback = MusicCallback::complete("task-odd").with_code(501);
    let event = deliver(&callback).await;
    assert!(event.is_failure(), "failure expected");
    assert_eq!(event.stage(), &Stage::Complete);
    assert_eq!(event.tracks().len(), 2, "tracks kept on a failure");
}

#[tokio::test]
async fn an_unknown_callback_type_reaches_the_fallback() {
    let event = deliver(&MusicCallback::new("task-remix", "remix")).await;
    assert_eq!(
        (event.family(), event.outcome()),
        (Family::Music, Outcome::Success)
    );
    assert_eq!(event.stage(), &Stage::Other("remix".into()));
}

#[tokio::test]
async fn finished_tracks_carry_every_documented_field() {
    let callback = MusicCallback::complete("task-fields").with_source_urls();
    let event = deliver(&callback).await;
    assert_eq!(event.stage(), &Stage::Complete);
    for track in event.tracks() {
        let fields = [
            track.id(),
            track.audio_url(),
            track.stream_audio_url(),
            track.image_url(),
            track.source_audio_url(),
            track.source_stream_audio_url(),
            track.source_image_url(),
            track.prompt(),
            track.model_name(),
            track.title(),
            track.tags(),
        ];
        assert!(fields.iter().all(Option::is_some), "{track:?}");
        assert!(track.duration_seconds().is_some_and(|d| d > 0.0));
        assert_eq!(
            track.create_time().and_then(CreateTime::epoch_millis),
            Some(1_735_689_600_000)
        );
    }
    assert_ne!(event.tracks()[0].id(), event.tracks()[1].id());
}

#[tokio::test]
async fn text_tracks_have_no_audio_yet() {
    let event = deliver(&MusicCallback::text("task-early")).await;
    assert_eq!(event.stage(), &Stage::Text);
    let track = &event.tracks()[0];
    assert_eq!(track.audio_url(), None, "an empty URL reads as None");
    assert_eq!(track.stream_audio_url(), None);
    assert_eq!(track.duration_seconds(), None);
    assert!(track.title().is_some() && track.prompt().is_some());
}

#[tokio::test]
async fn every_override_reaches_the_handler() {
    let callback = MusicCallback::first("task-before")
        .with_task_id("task-after")
        .with_msg("custom message")
        .map_tracks(|track| {
            track
                .with_create_time_epoch_millis(1_786_343_609_818)
                .with_title("Overridden")
                .without_field("tags")
                .with_field("unknown", serde_json::json!({"nested": [1, 2]}))
        })
        .with_track(TestTrack::empty().with_id("bare"))
        .with_field("/data/newField", true)
        .with_field("/extra", "top-level");
    let event = deliver(&callback).await;
    assert_eq!(event.stage(), &Stage::First);
    assert_eq!(event.task_id(), "task-after");
    assert_eq!(event.msg(), Some("custom message"));
    let [overridden, bare] = event.tracks() else {
        panic!("two tracks expected: {:?}", event.tracks())
    };
    assert_eq!(overridden.title(), Some("Overridden"));
    assert_eq!(overridden.tags(), None);
    assert_eq!(
        overridden.create_time(),
        Some(&CreateTime::EpochMillis(1_786_343_609_818))
    );
    assert_eq!(bare.id(), Some("bare"));
    assert_eq!(bare.audio_url(), None);
    let raw = event.raw_json();
    assert_eq!(raw["data"]["newField"], true);
    assert_eq!(raw["extra"], "top-level");
    assert_eq!(raw["data"]["data"][0]["unknown"]["nested"][1], 2);
}

#[tokio::test]
async fn tolerated_shapes_are_accepted() {
    let cases = [
        (
            "data.data null",
            MusicCallback::complete("t-null").with_null_tracks(),
        ),
        (
            "data.data absent",
            MusicCallback::complete("t-absent").without_tracks(),
        ),
        (
            "data.taskId",
            MusicCallback::complete("t-camel").with_task_id_at(TaskIdAt::DataTaskIdCamel),
        ),
        (
            "top-level taskId",
            MusicCallback::complete("t-top").with_task_id_at(TaskIdAt::TopLevel),
        ),
        ("no msg", MusicCallback::complete("t-no-msg").without_msg()),
        (
            "null URLs",
            MusicCallback::first("t-null-urls")
                .map_tracks(|t| t.with_field("audio_url", serde_json::Value::Null)),
        ),
        (
            "code as a string",
            MusicCallback::complete("t-code-text").with_field("/code", "200"),
        ),
    ];
    for (what, callback) in cases {
        let event = deliver(&callback).await;
        assert!(
            matches!(event.stage(), Stage::Complete | Stage::First) && !event.is_failure(),
            "{what}: {event:?}"
        );
        assert_eq!(event.task_id(), callback.task_id(), "{what}");
    }
    let no_type = deliver(&MusicCallback::complete("t-no-type").without_callback_type()).await;
    assert_eq!(no_type.family(), Family::Music, "tracks make it music");
    assert_eq!(no_type.stage(), &Stage::Other(String::new()));
    let detail = MusicCallback::failure("t-detail", 501)
        .without_tracks()
        .with_error_detail("Generation failed due to technical issues");
    let event = deliver(&detail).await;
    assert!(event.is_failure(), "failure expected");
    assert_eq!(
        event.error_detail(),
        Some("Generation failed due to technical issues")
    );
}

#[tokio::test]
async fn unsigned_stale_and_wrongly_signed_requests_are_rejected() {
    let (callbacks, seen) = recording_receiver();
    let callback = MusicCallback::complete("task-rejected");
    send(callbacks.service(), callback.request(PATH))
        .await
        .expect(401, "rejected");
    send(
        callbacks.service(),
        callback.signed_request(&Signer::new("another-key"), PATH),
    )
    .await
    .expect(401, "rejected");
    let an_hour_ago = {
        use suno_callback::verify::{Clock, SystemClock};
        SystemClock.unix_seconds() - 3600
    };
    send(
        callbacks.service(),
        callback.signed_request_at(&signer(), PATH, an_hour_ago),
    )
    .await
    .expect(401, "rejected");
    assert!(seen.lock().expect("lock").is_empty());
}

/// The fixtures' task id.
const FIXTURE_TASK: &str = "2fac7b1e4d5a4c3f8e9d0a1b2c3d9f72";

fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture(&format!("music/{name}"))).expect("fixture JSON")
}

#[test]
fn failure_builders_write_the_documented_bodies() {
    for code in [400, 408, 413, 500, 531] {
        assert_eq!(
            MusicCallback::failure(FIXTURE_TASK, code).to_json(),
            fixture_json(&format!("error_code_{code}.json")),
            "{code}"
        );
    }
    assert_eq!(
        MusicCallback::new(FIXTURE_TASK, "text").to_json(),
        fixture_json("add_instrumental_text.json")
    );
}

#[test]
fn stage_builders_write_the_fields_the_fixtures_have() {
    let keys = |value: &serde_json::Value| -> Vec<String> {
        let mut keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
        keys.sort();
        keys
    };
    let cases = [
        (
            "add_instrumental_first.json",
            MusicCallback::first(FIXTURE_TASK),
        ),
        (
            "add_instrumental_complete.json",
            MusicCallback::complete(FIXTURE_TASK),
        ),
        (
            "upload_cover_first_source_urls.json",
            MusicCallback::first(FIXTURE_TASK).with_source_urls(),
        ),
    ];
    for (file, callback) in cases {
        let documented = fixture_json(file);
        let built = callback.to_json();
        assert_eq!(keys(&built), keys(&documented), "{file}: envelope");
        assert_eq!(
            keys(&built["data"]),
            keys(&documented["data"]),
            "{file}: data"
        );
        assert_eq!(built["msg"], documented["msg"], "{file}: msg");
        let (built_tracks, documented_tracks) = (
            built["data"]["data"].as_array().expect("tracks"),
            documented["data"]["data"].as_array().expect("tracks"),
        );
        assert_eq!(built_tracks.len(), documented_tracks.len(), "{file}");
        for (built, documented) in built_tracks.iter().zip(documented_tracks) {
            assert_eq!(keys(built), keys(documented), "{file}: track fields");
        }
    }
}
