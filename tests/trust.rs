//! Trust only what is signed: each attack on a captured signature, replayed as
//! an attacker would, against the receiver's defaults.
//!
//! The sender signs `task_id + "." + timestamp`, never the body, so whoever captures
//! one signed request can send any body with its headers. These tests hold such a
//! captured request and check that it can no longer take a genuine callback's place.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{Answer, Counter, KEY, PATH, send};
use http::Request;
use http_body_util::Full;
use suno_callback::store::MemoryStore;
use suno_callback::testing::{MusicCallback, Signer, TestTrack, unsigned_request};
use suno_callback::verify::{ManualClock, SignatureReuse};
use suno_callback::{HandlerError, SunoCallbacks, SunoCallbacksBuilder};

const TASK: &str = "5e1d0c3b2a19487f9e6d5c4b3a291807";
const NOW: i64 = 1_769_670_760;

/// Which handlers ran, with which stage.
#[derive(Clone, Default)]
struct Runs(Arc<Mutex<Vec<String>>>);

impl Runs {
    fn push(&self, what: impl Into<String>) {
        self.0.lock().expect("lock").push(what.into());
    }
    fn taken(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("lock"))
    }
}

fn receiver(builder: SunoCallbacksBuilder, runs: &Runs) -> SunoCallbacks {
    let handler = |name: &'static str| {
        let runs = runs.clone();
        move |event: suno_callback::CallbackEvent| {
            runs.push(format!("{name}:{}", event.tracks().len()));
            async { Ok(()) }
        }
    };
    let failures = runs.clone();
    let fallback = runs.clone();
    builder
        .hmac_key(KEY)
        .clock(ManualClock::new(NOW))
        .on_text(handler("text"))
        .on_first(handler("first"))
        .on_complete(handler("complete"))
        .on_failure(move |event| {
            failures.push(format!("failure:{}", event.stage()));
            async { Ok(()) }
        })
        .fallback(move |event| {
            fallback.push(format!("fallback:{}", event.stage()));
            async { Ok(()) }
        })
        .build()
        .expect("valid configuration")
}

fn signed_at(callback: &MusicCallback, at: i64) -> Request<Full<Bytes>> {
    callback.signed_request_at(&Signer::new(KEY), PATH, at)
}

/// `body` sent with the signature headers of a captured request.
fn with_headers_of(captured: &Request<Full<Bytes>>, body: Bytes) -> Request<Full<Bytes>> {
    let mut forged = unsigned_request(PATH, body);
    for name in ["x-webhook-timestamp", "x-webhook-signature"] {
        forged
            .headers_mut()
            .insert(name, captured.headers()[name].clone());
    }
    forged
}

fn forged_complete() -> Bytes {
    MusicCallback::complete(TASK)
        .map_tracks(|track| track.with_field("audio_url", "https://attacker.example/x.mp3"))
        .body()
}

#[track_caller]
fn expect_reused(answer: &Answer) {
    answer.expect(401, "rejected");
    assert_eq!(
        answer.json["reason"], "signature already used by another callback",
        "{:?}",
        answer.json
    );
}

/// Finding 1: a captured `text` signature, reused with a forged `complete` and a forged
/// failure typed `first`, used to take both dedup keys, so the genuine `first` and
/// `complete` were answered `200 duplicate` and never ran.
#[tokio::test]
async fn a_captured_signature_cannot_take_a_genuine_callbacks_place() {
    let runs = Runs::default();
    let callbacks = receiver(SunoCallbacks::builder(), &runs);
    let text = signed_at(&MusicCallback::text(TASK), NOW - 40);
    let captured = with_headers_of(&text, Bytes::new());
    send(callbacks.service(), text)
        .await
        .expect(200, "processed");

    let forgeries = [
        forged_complete(),
        MusicCallback::failure(TASK, 500)
            .with_callback_type("first")
            .body(),
        MusicCallback::text(TASK).with_code(501).body(),
    ];
    for forged in forgeries {
        expect_reused(&send(callbacks.service(), with_headers_of(&captured, forged)).await);
    }
    assert_eq!(callbacks.reused_signatures(), 3);
    assert_eq!(runs.taken(), ["text:2"], "no forged body ran a handler");

    send(
        callbacks.service(),
        signed_at(&MusicCallback::first(TASK), NOW - 20),
    )
    .await
    .expect(200, "processed");
    send(
        callbacks.service(),
        signed_at(&MusicCallback::complete(TASK), NOW),
    )
    .await
    .expect(200, "processed");
    assert_eq!(runs.taken(), ["first:1", "complete:2"]);
}

/// A replay of the callback a signature was first used with is the ordinary duplicate.
#[tokio::test]
async fn a_replay_of_the_same_callback_stays_a_duplicate() {
    let runs = Runs::default();
    let callbacks = receiver(SunoCallbacks::builder(), &runs);
    let complete = MusicCallback::complete(TASK);
    send(callbacks.service(), signed_at(&complete, NOW))
        .await
        .expect(200, "processed");
    send(callbacks.service(), signed_at(&complete, NOW))
        .await
        .expect(200, "duplicate");
    assert_eq!(callbacks.reused_signatures(), 0);
    assert_eq!(runs.taken(), ["complete:2"]);
}

/// Finding 1, second half: one signature ran the fallback and `on_failure` with
/// made-up `callbackType`s; now only its first use runs anything.
#[tokio::test]
async fn one_signature_runs_one_handler_whatever_callback_types_it_carries() {
    let runs = Runs::default();
    let callbacks = receiver(SunoCallbacks::builder(), &runs);
    let captured = signed_at(&MusicCallback::new(TASK, "stage-0"), NOW);
    send(
        callbacks.service(),
        with_headers_of(&captured, MusicCallback::new(TASK, "stage-0").body()),
    )
    .await
    .expect(200, "processed");
    for n in 1..200 {
        let body = MusicCallback::new(TASK, format!("stage-{n}")).with_code(if n % 4 == 0 {
            500
        } else {
            200
        });
        expect_reused(&send(callbacks.service(), with_headers_of(&captured, body.body())).await);
    }
    assert_eq!(runs.taken(), ["fallback:stage-0"]);
    assert_eq!(callbacks.reused_signatures(), 199);
}

/// Finding 2: forged callbacks under one captured signature minted a store entry
/// each, evicting genuine keys, so a replayed genuine `complete` ran again. Now the
/// signature mints one binding and one key, and nothing is evicted.
#[tokio::test]
async fn one_signature_cannot_flood_the_store() {
    let runs = Runs::default();
    let store = MemoryStore::with_max_entries(64);
    let callbacks = receiver(SunoCallbacks::builder().store(store.clone()), &runs);
    let complete = signed_at(&MusicCallback::complete("genuine-task"), NOW - 100);
    let replay = with_headers_of(&complete, MusicCallback::complete("genuine-task").body());
    send(callbacks.service(), complete)
        .await
        .expect(200, "processed");

    let captured = signed_at(&MusicCallback::text(TASK), NOW);
    send(
        callbacks.service(),
        with_headers_of(&captured, MusicCallback::text(TASK).body()),
    )
    .await
    .expect(200, "processed");
    for n in 0..1_000 {
        let body = MusicCallback::new(TASK, format!("made-up-{n}")).body();
        expect_reused(&send(callbacks.service(), with_headers_of(&captured, body)).await);
    }
    assert_eq!(
        store.len(),
        2,
        "one key per genuine callback, none per forgery"
    );
    assert_eq!(store.bindings_len(), 2, "one binding per signature");
    assert_eq!(store.evicted(), 0);
    send(callbacks.service(), replay)
        .await
        .expect(200, "duplicate");
    assert_eq!(runs.taken(), ["complete:2", "text:2"]);
}

/// The residual risk, as documented: a genuine second stage signed in the same second
/// as the first shares its signature and is refused, until a retry carries a new
/// timestamp.
#[tokio::test]
async fn a_second_stage_signed_in_the_same_second_waits_for_its_retry() {
    let runs = Runs::default();
    let callbacks = receiver(SunoCallbacks::builder(), &runs);
    send(
        callbacks.service(),
        signed_at(&MusicCallback::text(TASK), NOW),
    )
    .await
    .expect(200, "processed");
    expect_reused(
        &send(
            callbacks.service(),
            signed_at(&MusicCallback::first(TASK), NOW),
        )
        .await,
    );
    send(
        callbacks.service(),
        signed_at(&MusicCallback::first(TASK), NOW + 60),
    )
    .await
    .expect(200, "processed");
    assert_eq!(runs.taken(), ["text:2", "first:1"]);
}

/// `SignatureReuse::Confirm` without a provider client to confirm with answers a reused
/// signature `503` with `Retry-After`, and still runs nothing.
#[tokio::test]
async fn confirm_mode_holds_reused_signatures_with_503() {
    let runs = Runs::default();
    let callbacks = receiver(
        SunoCallbacks::builder().signature_reuse(SignatureReuse::Confirm),
        &runs,
    );
    let text = signed_at(&MusicCallback::text(TASK), NOW);
    let captured = with_headers_of(&text, Bytes::new());
    send(callbacks.service(), text)
        .await
        .expect(200, "processed");
    let answer = send(
        callbacks.service(),
        with_headers_of(&captured, forged_complete()),
    )
    .await;
    answer.expect(503, "unavailable");
    assert_eq!(answer.headers["retry-after"], "30");
    assert_eq!(callbacks.reused_signatures(), 1);
    assert_eq!(runs.taken(), ["text:2"]);
}

/// Verifiers without a signature are not bound: an IP-allowlist-only receiver takes
/// every stage of a task in the same second.
#[tokio::test]
async fn receivers_without_an_hmac_key_bind_nothing() {
    let runs = Counter::default();
    let counted = runs.clone();
    let callbacks = SunoCallbacks::builder()
        .verifier(suno_callback::verify::IpAllowlist::new(["0.0.0.0/0"]).expect("range"))
        .fallback(move |_| {
            counted.bump();
            async { Ok(()) }
        })
        .build()
        .expect("valid configuration");
    for stage in ["text", "first", "complete"] {
        let mut request = MusicCallback::new(TASK, stage).request(PATH);
        request.extensions_mut().insert(suno_callback::PeerAddr(
            "203.0.113.7:4000".parse().expect("addr"),
        ));
        send(callbacks.service(), request)
            .await
            .expect(200, "processed");
    }
    assert_eq!(runs.get(), 3);
    assert_eq!(callbacks.reused_signatures(), 0);
}

/// Finding 6: the sender's retries after 1, 5 and 15 minutes may reuse the first
/// attempt's headers; with a 300 s tolerance they were refused and the callback lost.
#[tokio::test]
async fn retries_reusing_the_first_headers_are_accepted_for_25_minutes() {
    let clock = ManualClock::new(NOW);
    let attempts = Counter::default();
    let counted = attempts.clone();
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .clock(clock.clone())
        .on_complete(move |_| {
            let attempt = counted.bump();
            async move {
                if attempt < 4 {
                    Err(HandlerError::msg("database down"))
                } else {
                    Ok(())
                }
            }
        })
        .build()
        .expect("valid configuration");
    let first = signed_at(&MusicCallback::complete(TASK), NOW);
    let body = MusicCallback::complete(TASK).body();
    send(callbacks.service(), with_headers_of(&first, body.clone()))
        .await
        .expect(500, "failed");
    for (after_minutes, status, label) in [
        (1, 500, "failed"),
        (6, 500, "failed"),
        (21, 200, "processed"),
    ] {
        clock.set(NOW + after_minutes * 60);
        send(callbacks.service(), with_headers_of(&first, body.clone()))
            .await
            .expect(status, label);
    }
    clock.set(NOW + 25 * 60);
    send(callbacks.service(), with_headers_of(&first, body))
        .await
        .expect(200, "duplicate");
    assert_eq!(attempts.get(), 4);
}

/// Finding 4: a signed request with a 1,000,000-character `callbackType` got a 1 MB
/// answer. Answers now carry at most a few hundred bytes of request text.
#[tokio::test]
async fn answers_carry_attacker_text_cut_short_and_escaped() {
    let runs = Runs::default();
    let callbacks = receiver(SunoCallbacks::builder(), &runs);
    let huge = format!("x\n{}", "y".repeat(1_000_000));
    let callback = MusicCallback::new(TASK, huge).with_track(TestTrack::finished(TASK, 0));
    let response = tower::ServiceExt::oneshot(callbacks.service(), signed_at(&callback, NOW))
        .await
        .unwrap_or_else(|e| match e {});
    let status = response.status();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    assert!(
        body.len() < 1024,
        "{status}: answer of {} bytes",
        body.len()
    );
    let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
    if let Some(callback_type) = json["callback_type"].as_str() {
        assert!(callback_type.starts_with("x\\ny"), "{callback_type}");
        assert!(!callback_type.contains('\n'));
    }
}

/// A tolerance narrowed by the user is still honoured.
#[tokio::test]
async fn a_narrowed_tolerance_still_refuses_old_headers() {
    let runs = Runs::default();
    let callbacks = receiver(
        SunoCallbacks::builder().timestamp_tolerance(Duration::from_secs(300)),
        &runs,
    );
    send(
        callbacks.service(),
        signed_at(&MusicCallback::complete(TASK), NOW - 301),
    )
    .await
    .expect(401, "rejected");
}

#[tokio::test]
async fn an_hmac_key_added_as_a_verifier_still_binds_its_signature() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use suno_callback::verify::{HmacVerifier, IpAllowlist, VerifierExt};
    // The key given through `verifier` (combined with an allowlist, as the README's
    // `a.and(b)` shows) instead of `hmac_key`: its signatures are bound all the same.
    let completes = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&completes);
    let verifier = HmacVerifier::new([KEY])
        .expect("key")
        .clock(ManualClock::new(NOW))
        .or(IpAllowlist::new(["192.0.2.0/24"]).expect("range"));
    let callbacks = SunoCallbacks::builder()
        .verifier(verifier)
        .on_text(|_| async { Ok(()) })
        .on_complete(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .build()
        .expect("valid configuration");
    let text = MusicCallback::text(TASK).signed_request_at(&Signer::new(KEY), PATH, NOW - 40);
    let forged = with_headers_of(&text, forged_complete());
    send(callbacks.service(), text)
        .await
        .expect(200, "processed");
    let answer = send(callbacks.service(), forged).await;
    expect_reused(&answer);
    assert_eq!(
        completes.load(Ordering::SeqCst),
        0,
        "the forged complete ran"
    );
}

/// A receiver whose `complete` handler records the first track's audio URL and fails
/// its first run after `first_run_takes`.
fn failing_once(urls: &Runs, first_run_takes: Duration) -> SunoCallbacks {
    let urls = urls.clone();
    let calls = Counter::default();
    SunoCallbacks::builder()
        .hmac_key(KEY)
        .clock(ManualClock::new(NOW))
        .on_complete(move |event| {
            let urls = urls.clone();
            let call = calls.bump();
            async move {
                urls.push(event.tracks()[0].audio_url().unwrap_or_default());
                if call == 1 {
                    tokio::time::sleep(first_run_takes).await;
                    return Err(HandlerError::msg("storage down"));
                }
                Ok(())
            }
        })
        .build()
        .expect("valid configuration")
}

/// A forged body of the same family, stage and outcome, sent
/// with a captured signature right after the genuine run failed, used to claim the
/// released key and run before the sender's retry.
#[tokio::test]
async fn a_forged_body_of_the_same_stage_cannot_run_after_a_failed_genuine_run() {
    let urls = Runs::default();
    let callbacks = failing_once(&urls, Duration::ZERO);
    let genuine = MusicCallback::complete(TASK);
    let captured = signed_at(&genuine, NOW - 30);
    let retry = with_headers_of(&captured, genuine.body());
    send(callbacks.service(), captured)
        .await
        .expect(500, "failed");

    expect_reused(
        &send(
            callbacks.service(),
            with_headers_of(&retry, forged_complete()),
        )
        .await,
    );
    send(callbacks.service(), retry)
        .await
        .expect(200, "processed");
    let genuine_url = genuine.tracks()[0]
        .get("audio_url")
        .and_then(|url| url.as_str())
        .expect("a finished track has audio")
        .to_owned();
    assert_eq!(urls.taken(), [genuine_url.clone(), genuine_url]);
    assert_eq!(callbacks.reused_signatures(), 1);
}

/// The same forged body, sent while the genuine run was in
/// flight, used to wait as the standby body of its key and run in the genuine run's
/// place when that failed.
#[tokio::test]
async fn a_forged_body_of_the_same_stage_cannot_wait_as_the_standby_of_a_genuine_run() {
    let urls = Runs::default();
    let callbacks = failing_once(&urls, Duration::from_millis(300));
    let genuine = MusicCallback::complete(TASK);
    let captured = signed_at(&genuine, NOW - 30);
    let forged = with_headers_of(&captured, forged_complete());
    let in_flight = tokio::spawn(send(callbacks.service(), captured));
    tokio::time::sleep(Duration::from_millis(50)).await;

    expect_reused(&send(callbacks.service(), forged).await);
    in_flight
        .await
        .expect("genuine delivery")
        .expect(500, "failed");
    let genuine_url = genuine.tracks()[0]
        .get("audio_url")
        .and_then(|url| url.as_str())
        .expect("a finished track has audio")
        .to_owned();
    assert_eq!(urls.taken(), [genuine_url], "the forged body never ran");
}
