//! A redelivery whose body was rebuilt on the way (re-serialized: other spacing, other
//! key order) still carries the signature of the callback it repeats. Where nothing
//! would run (its callback is processed, or stored in the inbox) it is the duplicate it
//! is; a different body under a used signature is refused only where it could run.

mod common;

use bytes::Bytes;
use common::{Counter, KEY, PATH, send};
use http::Request;
use http_body_util::Full;
use suno_callback::inbox::Inbox;
use suno_callback::testing::{MusicCallback, Signer};
use suno_callback::verify::ManualClock;
use suno_callback::{HandlerError, SunoCallbacks, SunoCallbacksBuilder};

const NOW: i64 = 1_769_670_760;

/// `body` with the headers of `signed`.
fn with_headers_of(signed: &Request<Full<Bytes>>, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(body.into()));
    *request.method_mut() = signed.method().clone();
    *request.uri_mut() = signed.uri().clone();
    *request.headers_mut() = signed.headers().clone();
    request
}

/// The same JSON, re-serialized with spaces and its members in another order.
fn rebuilt(body: &Bytes) -> Bytes {
    let value: serde_json::Value = serde_json::from_slice(body).expect("JSON");
    let serde_json::Value::Object(members) = value else {
        panic!("an object");
    };
    let mut reversed: Vec<String> = members
        .iter()
        .map(|(key, value)| format!("{}: {}", serde_json::json!(key), value))
        .collect();
    reversed.reverse();
    let text = format!("{{ {} }}", reversed.join(", "));
    assert_ne!(text.as_bytes(), &body[..]);
    Bytes::from(text)
}

fn receiver(builder: SunoCallbacksBuilder, runs: &Counter, fail_first: bool) -> SunoCallbacks {
    let runs = runs.clone();
    builder
        .hmac_key(KEY)
        .clock(ManualClock::new(NOW))
        .on_complete(move |_| {
            let n = runs.bump();
            async move {
                if fail_first && n == 1 {
                    return Err(HandlerError::msg("first run fails"));
                }
                Ok(())
            }
        })
        .build()
        .expect("receiver")
}

#[tokio::test]
async fn a_rebuilt_redelivery_of_a_processed_callback_is_a_duplicate() {
    let runs = Counter::default();
    let callbacks = receiver(SunoCallbacks::builder(), &runs, false);
    let complete = MusicCallback::complete("rebuilt-task");
    let genuine = complete.signed_request_at(&Signer::new(KEY), PATH, NOW);
    let again = with_headers_of(&genuine, rebuilt(&complete.body()));
    let other_stage = with_headers_of(&genuine, MusicCallback::first("rebuilt-task").body());
    send(callbacks.service(), genuine)
        .await
        .expect(200, "processed");
    send(callbacks.service(), again)
        .await
        .expect(200, "duplicate");
    // Another stage could run: refused.
    let refused = send(callbacks.service(), other_stage).await;
    refused.expect(401, "rejected");
    assert_eq!(runs.get(), 1);
    assert_eq!(
        callbacks.reused_signatures(),
        1,
        "the redelivery is no reuse"
    );
}

/// The first run failed, its key is free again: a different body could run, so it is
/// refused; the sender's byte-identical retry runs it.
#[tokio::test]
async fn a_rebuilt_body_that_could_run_is_refused() {
    let runs = Counter::default();
    let callbacks = receiver(SunoCallbacks::builder(), &runs, true);
    let complete = MusicCallback::complete("rebuilt-failed-task");
    let genuine = complete.signed_request_at(&Signer::new(KEY), PATH, NOW);
    let retry = with_headers_of(&genuine, complete.body());
    let again = with_headers_of(&genuine, rebuilt(&complete.body()));
    send(callbacks.service(), genuine)
        .await
        .expect(500, "failed");
    send(callbacks.service(), again)
        .await
        .expect(401, "rejected");
    send(callbacks.service(), retry)
        .await
        .expect(200, "processed");
    assert_eq!(runs.get(), 2);
}

/// Inbox mode: a rebuilt body of a stored callback is a duplicate; another stage is
/// refused, and stores nothing.
#[tokio::test]
async fn a_rebuilt_redelivery_of_a_stored_callback_is_a_duplicate() {
    let folder = std::env::temp_dir().join(format!(
        "suno-callback-redelivery-{}",
        suno_callback::store::ClaimToken::new_unique()
    ));
    std::fs::create_dir_all(&folder).unwrap();
    let url = format!("sqlite://{}", folder.join("inbox.db").display());
    let inbox = Inbox::builder().connect(&url).await.expect("inbox");
    let runs = Counter::default();
    let callbacks = receiver(SunoCallbacks::builder().inbox(inbox.clone()), &runs, false);
    let task = "rebuilt-inbox-task";
    let complete = MusicCallback::complete(task);
    let genuine = complete.signed_request_at(&Signer::new(KEY), PATH, NOW);
    let again = with_headers_of(&genuine, rebuilt(&complete.body()));
    let other_stage = with_headers_of(&genuine, MusicCallback::first(task).body());
    send(callbacks.service(), genuine)
        .await
        .expect(200, "accepted");
    send(callbacks.service(), again)
        .await
        .expect(200, "duplicate");
    send(callbacks.service(), other_stage)
        .await
        .expect(401, "rejected");
    assert_eq!(inbox.events_of_task(task).await.unwrap().len(), 1);
    inbox.close().await;
    let _ = std::fs::remove_dir_all(&folder);
}
