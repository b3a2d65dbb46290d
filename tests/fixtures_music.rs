//! Every music callback fixture parses into the event its shape calls for.

mod common;

use common::{fixture, fixtures_in};
use suno_callback::event::{CreateTime, FailureReason};
use suno_callback::{CallbackEvent, Family, Stage};

#[test]
fn every_music_fixture_parses() {
    let fixtures = fixtures_in("music");
    assert!(fixtures.len() >= 15, "fixtures copied: {}", fixtures.len());
    for (name, body) in fixtures {
        let event = CallbackEvent::from_json(body.clone())
            .unwrap_or_else(|e| panic!("{name} must parse: {e}"));
        assert!(!event.task_id().is_empty(), "{name}: task id");
        assert_eq!(event.raw_body(), &body, "{name}: raw body kept");
        let is_error_file = name.contains("error");
        assert_eq!(event.is_failure(), is_error_file, "{name}: failure or not");
    }
}

#[test]
fn stages_map_to_their_events() {
    let expectations = [
        ("music/add_instrumental_text.json", Stage::Text, 0),
        ("music/add_instrumental_first.json", Stage::First, 1),
        ("music/add_instrumental_complete.json", Stage::Complete, 2),
    ];
    for (file, stage, tracks) in expectations {
        let event = CallbackEvent::from_json(fixture(file)).expect(file);
        assert_eq!(event.family(), Family::Music, "{file}");
        assert!(!event.is_failure(), "{file}");
        let stage_event = &event;
        assert_eq!(stage_event.stage(), &stage, "{file}");
        assert_eq!(stage_event.tracks().len(), tracks, "{file}");
        assert_eq!(stage_event.code(), 200, "{file}");
        assert_eq!(stage_event.task_id(), "2fac7b1e4d5a4c3f8e9d0a1b2c3d9f72");
    }
}

#[test]
fn a_complete_track_exposes_every_documented_field() {
    let event =
        CallbackEvent::from_json(fixture("music/generate_complete_epoch_ms.json")).expect("parse");
    assert_eq!(event.stage(), &Stage::Complete);
    assert_eq!(event.msg(), Some("All generated successfully."));
    let track = &event.tracks()[1];
    assert_eq!(track.id(), Some("85511f3c-9a1e-4c57-b1f2-3a7d5e0c662c"));
    assert_eq!(
        track.audio_url(),
        Some("https://cdn.example.net/audio/1.mp3")
    );
    assert_eq!(
        track.stream_audio_url(),
        Some("https://cdn.example.net/stream/1")
    );
    assert_eq!(
        track.image_url(),
        Some("https://cdn.example.net/cover/1.jpeg")
    );
    assert_eq!(
        track.source_audio_url(),
        Some("https://cdn.example.net/src/1.mp3")
    );
    assert_eq!(
        track.source_stream_audio_url(),
        Some("https://cdn.example.net/src-stream/1")
    );
    assert_eq!(
        track.source_image_url(),
        Some("https://cdn.example.net/src-cover/1.jpeg")
    );
    assert_eq!(
        track.prompt(),
        Some("[Verse] Night city lights shining bright")
    );
    assert_eq!(track.model_name(), Some("chirp-v4-5"));
    assert_eq!(track.title(), Some("Iron Man"));
    assert_eq!(track.tags(), Some("electrifying, rock"));
    assert_eq!(track.duration_seconds(), Some(228.28));
    assert_eq!(
        track.create_time(),
        Some(&CreateTime::EpochMillis(1_786_343_609_818))
    );
}

#[test]
fn create_time_as_text_and_missing_tags() {
    let event =
        CallbackEvent::from_json(fixture("music/add_vocals_complete_no_tags.json")).expect("parse");
    assert_eq!(event.stage(), &Stage::Complete);
    let track = &event.tracks()[0];
    assert_eq!(track.tags(), None);
    let created = track.create_time().expect("createTime");
    assert_eq!(created, &CreateTime::Text("2025-01-01 00:00:00".into()));
    assert_eq!(created.epoch_millis(), Some(1_735_689_600_000));
}

#[test]
fn upload_cover_first_carries_source_urls() {
    let event = CallbackEvent::from_json(fixture("music/upload_cover_first_source_urls.json"))
        .expect("parse");
    assert_eq!(event.stage(), &Stage::First);
    assert_eq!(
        event.tracks()[0].source_audio_url(),
        Some("https://cdn.example.net/src/0.mp3")
    );
}

#[test]
fn failures_map_to_documented_reasons() {
    let expectations = [
        ("error_code_400.json", FailureReason::InvalidRequest),
        ("error_code_408.json", FailureReason::RateLimited),
        ("error_code_413.json", FailureReason::MatchesExistingWork),
        ("error_code_500.json", FailureReason::ServerError),
        ("error_code_531.json", FailureReason::FailedCreditsRefunded),
        (
            "add_instrumental_error.json",
            FailureReason::GenerationFailed,
        ),
        (
            "extend_error_empty_list.json",
            FailureReason::GenerationFailed,
        ),
    ];
    for (file, reason) in expectations {
        let path = format!("music/{file}");
        let event = CallbackEvent::from_json(fixture(&path)).expect(file);
        assert!(event.is_failure(), "failure expected");
        assert_eq!(event.reason(), Some(reason), "{file}");
        assert_eq!(event.family(), Family::Music, "{file}");
        assert_eq!(event.stage(), &Stage::Error, "{file}");
        assert!(event.tracks().is_empty(), "{file}");
        assert!(event.msg().is_some(), "{file}");
    }
}

#[test]
fn a_failure_with_a_string_error_keeps_it() {
    let event = CallbackEvent::from_json(fixture("music/replace_section_error_string.json"))
        .expect("parse");
    assert!(event.is_failure(), "failure expected");
    assert_eq!(
        event.error_detail(),
        Some("Generation failed due to technical issues")
    );
    assert!(event.tracks().is_empty(), "data.data absent");
}

#[test]
fn the_docs_masked_task_id_is_kept_verbatim() {
    let event = CallbackEvent::from_json(fixture("music/docs_masked_task_id.json")).expect("parse");
    assert_eq!(event.task_id(), "2fac****9f72");
}

#[test]
fn unknown_fields_and_callback_types_are_not_errors() {
    let body = r#"{"code":200,"msg":"ok","extra":{"nested":[1,2]},
        "data":{"callbackType":"remaster","task_id":"t","newField":true,
        "data":[{"id":"a","unknown":{"x":1}}, "not-an-object", null]}}"#;
    let event = CallbackEvent::from_json(body).expect("parse");
    assert!(!event.is_failure());
    assert_eq!(event.stage(), &Stage::Other("remaster".into()));
    assert_eq!(event.tracks().len(), 1, "non-object elements skipped");
    assert_eq!(
        event.raw_json()["data"]["newField"],
        serde_json::Value::Bool(true)
    );
    let code_599 = r#"{"code":599,"msg":"new","data":{"callbackType":"error","task_id":"t"}}"#;
    let failure = CallbackEvent::from_json(code_599).expect("parse");
    assert!(failure.is_failure(), "failure expected");
    assert_eq!(failure.reason(), Some(FailureReason::Other(599)));
}
