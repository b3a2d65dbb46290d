//! `HmacVerifier::verify_event`: the one call that verifies and parses a callback
//! without mounting the receiver, with the receiver's own envelope and verification.

mod common;

use std::sync::{Arc, Mutex};

use common::{KEY, PATH, fixtures_in, send, signer};
use http::{HeaderMap, StatusCode};
use suno_callback::store::DedupKey;
use suno_callback::verify::{HmacVerifier, ManualClock};
use suno_callback::{CallbackEvent, Family, SunoCallbacks};

/// Signed headers for `body`, each call with a timestamp (so a signature) of its own.
fn headers_for(body: &bytes::Bytes) -> HeaderMap {
    common::signed(body.clone()).into_parts().0.headers
}

/// Every fixture of every family: the event `verify_event` returns is the one the
/// mounted receiver hands its handler, and keys the same.
#[tokio::test]
async fn the_event_is_the_one_the_receiver_dispatches() {
    let verifier = HmacVerifier::new([KEY]).expect("verifier");
    let dispatched: Arc<Mutex<Vec<CallbackEvent>>> = Arc::default();
    // A receiver per callback: one that has settled a task types that task's later
    // shapeless failure with the family it learned, which a stateless call cannot.
    let receiver = || {
        let seen = Arc::clone(&dispatched);
        SunoCallbacks::builder()
            .hmac_key(KEY)
            .fallback(move |event| {
                seen.lock().unwrap().push(event);
                async { Ok(()) }
            })
            .build()
            .expect("receiver")
    };
    let mut checked = 0;
    for dir in [
        "music",
        "lyrics",
        "wav",
        "separation",
        "midi",
        "video",
        "cover_images",
        "voice",
        "market",
    ] {
        for (name, body) in fixtures_in(dir) {
            if name == "expected.json" {
                continue; // the market fixtures' table, not a callback
            }
            let headers = headers_for(&body);
            let event = verifier
                .verify_event(&headers, body.clone())
                .unwrap_or_else(|error| panic!("{dir}/{name}: {error}"));
            let mut request = signer().request(PATH, body.clone());
            *request.headers_mut() = headers;
            let answer = send(receiver().service(), request).await;
            assert_eq!(
                answer.status,
                StatusCode::OK,
                "{dir}/{name}: {:?}",
                answer.json
            );
            let handled = dispatched.lock().unwrap().pop().expect("dispatched");
            assert_eq!(event.task_id(), handled.task_id(), "{dir}/{name}");
            assert_eq!(event.family(), handled.family(), "{dir}/{name}");
            assert_eq!(event.stage(), handled.stage(), "{dir}/{name}");
            assert_eq!(event.outcome(), handled.outcome(), "{dir}/{name}");
            assert_eq!(event.payload(), handled.payload(), "{dir}/{name}");
            assert_eq!(DedupKey::of_event(&event), DedupKey::of_event(&handled));
            assert_eq!(answer.json["stage"], DedupKey::of_event(&event).stage());
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked} fixtures checked");
}

#[test]
fn what_is_refused_says_why() {
    let verifier = HmacVerifier::new([KEY])
        .expect("verifier")
        .clock(ManualClock::new(1_769_670_760));
    let body = bytes::Bytes::from_static(
        br#"{"code":200,"msg":"ok","data":{"callbackType":"text","task_id":"t1","data":[]}}"#,
    );
    let signed_now = signer()
        .request_at(PATH, body.clone(), 1_769_670_760)
        .into_parts()
        .0
        .headers;
    assert_eq!(
        verifier
            .verify_event(&signed_now, body.clone())
            .expect("valid")
            .task_id(),
        "t1"
    );

    let missing = verifier
        .verify_event(&HeaderMap::new(), body.clone())
        .unwrap_err();
    assert!(missing.is_rejected() && missing.verify_error().unwrap().is_missing_header());
    assert_eq!(missing.status_code(), StatusCode::UNAUTHORIZED);

    let stale = signer()
        .request_at(PATH, body.clone(), 1_769_670_760 - 3600)
        .into_parts()
        .0
        .headers;
    let error = verifier.verify_event(&stale, body.clone()).unwrap_err();
    assert!(
        error.verify_error().unwrap().is_stale_timestamp(),
        "{error}"
    );

    // Another task's signature.
    let other = signer()
        .request_at(PATH, body.clone(), 1_769_670_760)
        .into_parts()
        .0
        .headers;
    let forged = bytes::Bytes::from(
        String::from_utf8(body.to_vec())
            .unwrap()
            .replace("\"t1\"", "\"t2\""),
    );
    let error = verifier.verify_event(&other, forged).unwrap_err();
    assert!(error.verify_error().unwrap().is_bad_signature(), "{error}");
    assert_eq!(
        error.to_string(),
        "callback rejected: signature does not match"
    );

    for not_a_callback in [
        "",
        "[]",
        "{\"code\":200}",
        "{\"data\":{\"task_id\":\"t1\"}}",
    ] {
        let error = verifier
            .verify_event(&signed_now, not_a_callback)
            .unwrap_err();
        assert!(error.is_invalid(), "{not_a_callback:?}: {error}");
        assert!(error.parse_error().is_some());
        assert_eq!(error.status_code(), StatusCode::BAD_REQUEST);
    }
    let shapeless = br#"{"code":500,"msg":"failed","data":{"taskId":"t1"}}"#;
    let headers = signer()
        .request_at(PATH, &shapeless[..], 1_769_670_760)
        .into_parts()
        .0
        .headers;
    assert_eq!(
        verifier
            .verify_event(&headers, &shapeless[..])
            .unwrap()
            .family(),
        Family::Unknown
    );
    assert_eq!(
        verifier
            .verify_event_as(Family::Midi, &headers, &shapeless[..])
            .unwrap()
            .family(),
        Family::Midi
    );
}
