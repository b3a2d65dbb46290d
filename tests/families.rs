//! Every fixture of every callback family, success and failure, through the service on
//! the shared path and on the family's own path, typed as its family; and failures
//! that never hide a success.

mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::{KEY, PATH, fixture, send, signed_to};
use http::{Request, Response};
use http_body_util::Full;
use suno_callback::event::{Payload, VoiceStatus};
use suno_callback::{CallbackEvent, Family, Outcome, Route, Stage, SunoCallbacks};
use tower::service_fn;

/// One fixture: the family it is typed as on the shared path and on its own path, its
/// outcome and stage, and a check of its payload.
struct Case {
    file: &'static str,
    family: Family,
    shared: Family,
    outcome: Outcome,
    stage: &'static str,
    check: fn(&CallbackEvent),
}

fn none(_: &CallbackEvent) {}

fn cases() -> Vec<Case> {
    use Family::*;
    use Outcome::*;
    let case = |file, family, shared, outcome, stage, check| Case {
        file,
        family,
        shared,
        outcome,
        stage,
        check,
    };
    vec![
        case(
            "music/add_instrumental_first.json",
            Music,
            Music,
            Success,
            "first",
            |ev| {
                assert_eq!(ev.tracks().len(), 1);
            },
        ),
        case(
            "music/add_instrumental_complete.json",
            Music,
            Music,
            Success,
            "complete",
            |ev| {
                assert!(ev.tracks()[0].audio_url().is_some());
            },
        ),
        case(
            "music/error_code_531.json",
            Music,
            Music,
            Failure,
            "error",
            |ev| {
                assert_eq!(ev.code(), 531);
            },
        ),
        case(
            "lyrics/complete.json",
            Lyrics,
            Lyrics,
            Success,
            "complete",
            |ev| {
                let Payload::Lyrics(lyrics) = ev.payload() else {
                    panic!("{ev:?}")
                };
                let [done, failed] = lyrics.variations() else {
                    panic!("two variations")
                };
                assert_eq!(done.title(), Some("Starry Night"));
                assert!(!done.is_failed() && failed.is_failed());
                assert_eq!(failed.error_message(), Some("flagged"));
                assert_eq!(lyrics.completed().count(), 1);
                assert!(ev.tracks().is_empty(), "variations are not tracks");
            },
        ),
        // A lyrics failure keeps `complete` and carries no variation: only its path
        // tells it from a music failure.
        case(
            "lyrics/failure_400.json",
            Lyrics,
            Unknown,
            Failure,
            "complete",
            |ev| {
                assert_eq!(ev.code(), 400);
            },
        ),
        case("wav/success.json", Wav, Wav, Success, "", |ev| {
            let Payload::Wav(wav) = ev.payload() else {
                panic!("{ev:?}")
            };
            assert_eq!(
                wav.audio_wav_url(),
                Some("https://cdn.example.net/s/04e6e727.wav")
            );
        }),
        case("wav/failure.json", Wav, Wav, Failure, "", |ev| {
            let Payload::Wav(wav) = ev.payload() else {
                panic!("{ev:?}")
            };
            assert_eq!(wav.audio_wav_url(), None);
        }),
        case(
            "separation/separate_vocal_success.json",
            Separation,
            Separation,
            Success,
            "",
            |ev| {
                let Payload::Separation(s) = ev.payload() else {
                    panic!("{ev:?}")
                };
                assert_eq!(s.vocal_url(), Some("https://cdn.example.net/s/vocals.mp3"));
                assert_eq!(
                    s.instrumental_url(),
                    Some("https://cdn.example.net/s/inst.mp3")
                );
                assert_eq!((s.origin_url(), s.stems().len()), (None, 2));
                assert_eq!(s.info_key(), Some("vocal_separation_info"));
            },
        ),
        case(
            "separation/split_stem_success.json",
            Separation,
            Separation,
            Success,
            "",
            |ev| {
                let Payload::Separation(s) = ev.payload() else {
                    panic!("{ev:?}")
                };
                assert_eq!(s.stems().len(), 12);
                assert_eq!(
                    s.stem("woodwinds"),
                    Some("https://cdn.example.net/s/woodwinds_url.mp3")
                );
                assert_eq!(
                    s.stem("backing_vocals"),
                    Some("https://cdn.example.net/s/backing_vocals_url.mp3")
                );
            },
        ),
        case(
            "separation/sunoapi_vocal_removal_info.json",
            Separation,
            Separation,
            Success,
            "",
            |ev| {
                let Payload::Separation(s) = ev.payload() else {
                    panic!("{ev:?}")
                };
                assert_eq!(s.info_key(), Some("vocal_removal_info"));
                assert_eq!(s.origin_url(), Some("https://cdn.example.net/s/orig2.mp3"));
                assert_eq!(s.vocal_url(), Some("https://cdn.example.net/s/voc2.mp3"));
            },
        ),
        case(
            "separation/failure.json",
            Separation,
            Separation,
            Failure,
            "",
            |ev| {
                let Payload::Separation(s) = ev.payload() else {
                    panic!("{ev:?}")
                };
                assert!(s.stems().is_empty());
            },
        ),
        case("midi/success.json", Midi, Midi, Success, "", |ev| {
            let Payload::Midi(midi) = ev.payload() else {
                panic!("{ev:?}")
            };
            assert_eq!(midi.state(), Some("complete"));
            let [drums, bass] = midi.instruments() else {
                panic!("two instruments")
            };
            assert_eq!(drums.name(), Some("Drums"));
            let note = &drums.notes()[0];
            assert_eq!(note.pitch(), Some(73));
            assert_eq!(note.start(), Some(0.036458333333333336), "a string start");
            assert_eq!(drums.notes()[1].start(), Some(0.046875), "a number start");
            assert_eq!(bass.notes()[0].end(), Some(7.911458333333333));
        }),
        case(
            "midi/success_top_level_task_id.json",
            Midi,
            Midi,
            Success,
            "",
            |ev| {
                assert_eq!(ev.task_id(), "7d1e0f3a5b6c4d2e8f9a0b1c2d3e4f51");
                let Payload::Midi(midi) = ev.payload() else {
                    panic!("{ev:?}")
                };
                assert_eq!(midi.instruments()[0].notes()[0].velocity(), Some(0.8));
            },
        ),
        // A MIDI failure's `data` holds only the task id.
        case("midi/failure.json", Midi, Unknown, Failure, "", |ev| {
            assert_eq!(ev.msg(), Some("MIDI generation failed"));
        }),
        case("video/success.json", Video, Video, Success, "", |ev| {
            let Payload::Video(video) = ev.payload() else {
                panic!("{ev:?}")
            };
            assert_eq!(video.video_url(), Some("https://cdn.example.net/v/1.mp4"));
        }),
        case("video/failure.json", Video, Video, Failure, "", none),
        case(
            "video/failure_451_sunoapi.json",
            Video,
            Video,
            Failure,
            "",
            |ev| {
                assert_eq!(
                    ev.reason(),
                    Some(suno_callback::event::FailureReason::DownloadFailed)
                );
            },
        ),
        case(
            "cover_images/success.json",
            Cover,
            Cover,
            Success,
            "",
            |ev| {
                let Payload::Cover(cover) = ev.payload() else {
                    panic!("{ev:?}")
                };
                assert_eq!(cover.images().len(), 2);
            },
        ),
        case(
            "cover_images/failure.json",
            Cover,
            Cover,
            Failure,
            "",
            |ev| {
                assert_eq!(ev.code(), 501);
            },
        ),
        case(
            "voice/validate_wait_validating.json",
            Voice,
            Voice,
            Success,
            "wait_validating",
            |ev| {
                let Payload::Voice(voice) = ev.payload() else {
                    panic!("{ev:?}")
                };
                assert_eq!(voice.status(), VoiceStatus::WaitValidating);
                assert!(!voice.status().is_final(), "a step, not the end");
                assert!(voice.validate_info().is_some());
            },
        ),
        case(
            "voice/generate_success.json",
            Voice,
            Voice,
            Success,
            "success",
            |ev| {
                let Payload::Voice(voice) = ev.payload() else {
                    panic!("{ev:?}")
                };
                assert_eq!(voice.voice_id(), Some("voice_5a6b7c8d"));
            },
        ),
        case("voice/failure.json", Voice, Voice, Failure, "fail", |ev| {
            let Payload::Voice(voice) = ev.payload() else {
                panic!("{ev:?}")
            };
            assert_eq!(voice.error_code(), Some(500));
            assert!(voice.error_message().is_some());
        }),
    ]
}

type Seen = Arc<Mutex<Vec<(&'static str, CallbackEvent)>>>;

/// A receiver with a handler on every route kind, each recording which one ran.
fn receiver(seen: &Seen) -> SunoCallbacks {
    let record = |name: &'static str, seen: &Seen| {
        let seen = Arc::clone(seen);
        move |event: CallbackEvent| {
            seen.lock().expect("lock").push((name, event));
            async { Ok(()) }
        }
    };
    let mut builder = SunoCallbacks::builder().hmac_key(KEY);
    for family in Family::ALL {
        builder = builder
            .on(Route::success(family), record("success", seen))
            .on(Route::failure(family), record("failure", seen));
    }
    builder
        .on(Route::any_failure(), record("any_failure", seen))
        .fallback(record("fallback", seen))
        .build()
        .expect("valid configuration")
}

fn take(seen: &Seen) -> (&'static str, CallbackEvent) {
    let mut seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 1, "one handler run");
    seen.remove(0)
}

fn check(case: &Case, family: Family, route: &str, event: &CallbackEvent) {
    let file = case.file;
    assert_eq!(event.family(), family, "{file}");
    assert_eq!(event.outcome(), case.outcome, "{file}");
    assert_eq!(event.stage().as_str(), case.stage, "{file}");
    let expected_route = match (case.outcome, family) {
        (Outcome::Failure, Family::Unknown) => "any_failure",
        (Outcome::Failure, _) => "failure",
        (Outcome::Success, _) => "success",
    };
    assert_eq!(route, expected_route, "{file}");
    (case.check)(event);
}

#[tokio::test]
async fn every_fixture_on_the_shared_path_is_typed_by_its_shape() {
    for case in cases() {
        let seen = Seen::default();
        let answer = send(
            receiver(&seen).service(),
            signed_to(PATH, fixture(case.file)),
        )
        .await;
        answer.expect(200, "processed");
        assert_eq!(answer.json["family"], case.shared.as_str(), "{}", case.file);
        let (route, event) = take(&seen);
        check(&case, case.shared, route, &event);
    }
}

#[tokio::test]
async fn every_fixture_on_its_family_path_is_typed_as_that_family() {
    for case in cases() {
        let path = format!("{PATH}/{}", case.family);
        // Through the service (mounted with a wildcard) and through the layer.
        let seen = Seen::default();
        let callbacks = receiver(&seen);
        send(callbacks.service(), signed_to(&path, fixture(case.file)))
            .await
            .expect(200, "processed");
        let (route, event) = take(&seen);
        check(&case, case.family, route, &event);

        let seen = Seen::default();
        let inner = service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        });
        let layered = tower::Layer::layer(&receiver(&seen).layer_at(PATH), inner);
        send(layered, signed_to(&path, fixture(case.file)))
            .await
            .expect(200, "processed");
        let (route, event) = take(&seen);
        check(&case, case.family, route, &event);
    }
}

#[tokio::test]
async fn a_failure_then_a_success_of_one_task_both_run_in_every_family() {
    let pairs = [
        ("wav/failure.json", "wav/success.json"),
        (
            "separation/failure.json",
            "separation/separate_vocal_success.json",
        ),
        ("video/failure.json", "video/success.json"),
        ("cover_images/failure.json", "cover_images/success.json"),
        ("midi/failure.json", "midi/success.json"),
        ("lyrics/failure_400.json", "lyrics/complete.json"),
        ("voice/failure.json", "voice/generate_success.json"),
        (
            "music/error_code_500.json",
            "music/add_instrumental_complete.json",
        ),
    ];
    for (failure, success) in pairs {
        for path in [PATH.to_owned(), format!("{PATH}/{}", family_dir(failure))] {
            let seen = Seen::default();
            let callbacks = receiver(&seen);
            for file in [failure, success] {
                send(callbacks.service(), signed_to(&path, fixture(file)))
                    .await
                    .expect(200, "processed");
            }
            let outcomes: Vec<Outcome> = {
                let runs = seen.lock().expect("lock");
                runs.iter().map(|(_, ev)| ev.outcome()).collect()
            };
            assert_eq!(
                outcomes,
                [Outcome::Failure, Outcome::Success],
                "{path} {failure}"
            );
            // Each is still a duplicate of itself.
            for file in [failure, success] {
                send(callbacks.service(), signed_to(&path, fixture(file)))
                    .await
                    .expect(200, "duplicate");
            }
        }
    }
}

/// The family name of a fixture's folder.
fn family_dir(file: &str) -> &'static str {
    let dir = file.split('/').next().unwrap_or_default();
    Family::ALL
        .into_iter()
        .find(|family| dir.starts_with(family.as_str()))
        .map_or("unknown", Family::as_str)
}

#[tokio::test]
async fn the_same_task_in_two_families_has_two_keys() {
    let seen = Seen::default();
    let callbacks = receiver(&seen);
    let wav = r#"{"code":200,"msg":"success","data":{"task_id":"shared-task","audioWavUrl":"https://x/a.wav"}}"#;
    let video = r#"{"code":200,"msg":"success","data":{"task_id":"shared-task","video_url":"https://x/v.mp4"}}"#;
    for body in [wav, video] {
        send(callbacks.service(), signed_to(PATH, body))
            .await
            .expect(200, "processed");
    }
    assert_eq!(seen.lock().expect("lock").len(), 2);
}

#[tokio::test]
async fn stage_routes_come_before_family_routes_and_music_sugar_is_a_stage_route() {
    let seen = Seen::default();
    let record = |name: &'static str| {
        let seen = Arc::clone(&seen);
        move |event: CallbackEvent| {
            seen.lock().expect("lock").push((name, event));
            async { Ok(()) }
        }
    };
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .on_complete(record("on_complete"))
        .on(Route::success(Family::Music), record("music"))
        .on(
            Route::stage(Family::Voice, "wait_validating"),
            record("validating"),
        )
        .on(Route::failure(Family::Wav), record("wav failure"))
        .on_failure(record("on_failure"))
        .fallback(record("fallback"))
        .build()
        .expect("valid configuration");
    let sends = [
        ("music/add_instrumental_complete.json", "on_complete"),
        ("music/add_instrumental_first.json", "music"),
        ("voice/validate_wait_validating.json", "validating"),
        ("voice/generate_success.json", "fallback"),
        ("wav/failure.json", "wav failure"),
        ("video/failure.json", "on_failure"),
        ("lyrics/complete.json", "fallback"),
    ];
    for (file, _) in sends {
        send(callbacks.service(), signed_to(PATH, fixture(file)))
            .await
            .expect(200, "processed");
    }
    let routes: Vec<&str> = seen.lock().expect("lock").iter().map(|(r, _)| *r).collect();
    let expected: Vec<&str> = sends.iter().map(|(_, r)| *r).collect();
    assert_eq!(routes, expected);
}

#[tokio::test]
async fn a_success_of_no_known_family_reaches_the_fallback() {
    let seen = Seen::default();
    let body =
        r#"{"code":200,"msg":"new endpoint","data":{"task_id":"t-new","someUrl":"https://x"}}"#;
    send(receiver(&seen).service(), signed_to(PATH, body))
        .await
        .expect(200, "processed");
    let (route, event) = take(&seen);
    assert_eq!((route, event.family()), ("fallback", Family::Unknown));
    assert_eq!(event.stage(), &Stage::Other(String::new()));
    assert_eq!(event.raw_json()["data"]["someUrl"], "https://x");
    let ignored = SunoCallbacks::builder()
        .hmac_key(KEY)
        .on_complete(|_| async { Ok(()) })
        .build()
        .expect("valid configuration");
    send(ignored.service(), signed_to(PATH, body))
        .await
        .expect(200, "ignored");
}

#[tokio::test]
async fn a_long_or_unprintable_callback_type_is_refused() {
    let seen = Seen::default();
    let callbacks = receiver(&seen);
    for callback_type in [
        "x".repeat(65),
        "first\\u0000".to_owned(),
        "line\\nbreak".to_owned(),
    ] {
        let body = format!(
            r#"{{"code":200,"data":{{"task_id":"t-label","callbackType":"{callback_type}"}}}}"#
        );
        send(callbacks.service(), signed_to(PATH, body))
            .await
            .expect(400, "invalid");
    }
    assert!(seen.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn raw_json_gives_back_every_body_the_receiver_accepts() {
    let seen = Seen::default();
    let callbacks = receiver(&seen);
    let nested = |depth: usize| {
        format!(
            r#"{{"code":200,"data":{{"task_id":"t-deep","audioWavUrl":"u"}},"x":{}{}}}"#,
            "[".repeat(depth - 1),
            "]".repeat(depth - 1)
        )
    };
    send(callbacks.service(), signed_to(PATH, nested(127)))
        .await
        .expect(200, "processed");
    let (_, event) = take(&seen);
    assert_ne!(event.raw_json(), serde_json::Value::Null);
    send(callbacks.service(), signed_to(PATH, nested(200)))
        .await
        .expect(400, "invalid");
}

#[test]
fn the_public_family_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync + std::fmt::Debug>() {}
    send_sync::<CallbackEvent>();
    send_sync::<Payload>();
    send_sync::<Route>();
    send_sync::<Family>();
    send_sync::<Outcome>();
    send_sync::<suno_callback::store::DedupKey>();
    send_sync::<suno_callback::testing::FamilyCallback>();
}
