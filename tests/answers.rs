//! One test per row of the table of answers, through `tower::ServiceExt::oneshot`.

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{Answer, Counter, KEY, PATH, callback_body, send, signed};
use http::{Method, Request, header};
use suno_callback::store::{
    Binding, Claim, ClaimToken, DedupKey, DedupStore, MemoryStore, SignatureUse, StoreError,
};
use suno_callback::testing::{MusicCallback, Signer, unsigned_request};
use suno_callback::{HandlerError, SunoCallbacks, SunoCallbacksBuilder};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The task of the callbacks these tests send.
const TASK: &str = "2fac7b1e4d5a4c3f8e9d0a1b2c3d9f72";

fn counting_receiver(runs: &Counter) -> SunoCallbacks {
    let runs = runs.clone();
    SunoCallbacks::builder()
        .hmac_key(KEY)
        .on_complete(move |_event| {
            let runs = runs.clone();
            async move {
                runs.bump();
                Ok(())
            }
        })
        .build()
        .expect("valid configuration")
}

#[tokio::test]
async fn processed_then_duplicate() {
    let runs = Counter::default();
    let callbacks = counting_receiver(&runs);
    let body = MusicCallback::complete(TASK).body();

    let first = send(callbacks.service(), signed(body.clone())).await;
    first.expect(200, "processed");
    assert_eq!(first.json["task_id"], TASK);
    assert_eq!(first.json["stage"], "complete");
    assert_eq!(first.headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(runs.get(), 1);

    let again = send(callbacks.service(), signed(body)).await;
    again.expect(200, "duplicate");
    assert_eq!(runs.get(), 1, "a duplicate does not run the handler");
}

#[tokio::test]
async fn ignored_when_no_handler_and_no_fallback() {
    let runs = Counter::default();
    let callbacks = counting_receiver(&runs);
    let answer = send(
        callbacks.service(),
        signed(MusicCallback::text(TASK).body()),
    )
    .await;
    answer.expect(200, "ignored");
    assert_eq!(answer.json["stage"], "text");
    assert_eq!(runs.get(), 0);
}

#[tokio::test]
async fn the_fallback_receives_unknown_callback_types() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .fallback(move |event| {
            log.lock()
                .expect("lock")
                .push(event.stage().as_str().to_owned());
            async { Ok(()) }
        })
        .build()
        .expect("valid configuration");
    let body = callback_body("task-unknown", "remaster", 200);
    send(callbacks.service(), signed(body))
        .await
        .expect(200, "processed");
    send(
        callbacks.service(),
        signed(MusicCallback::text(TASK).body()),
    )
    .await
    .expect(200, "processed");
    assert_eq!(*seen.lock().expect("lock"), ["remaster", "text"]);
}

/// A `complete` handler that says when it has started and finishes when released.
#[derive(Clone, Default)]
struct Gate {
    entered: Arc<Notify>,
    release: Arc<Notify>,
    finished: Arc<Notify>,
}

impl Gate {
    fn receiver(&self, in_flight_wait: Duration, runs: &Counter) -> SunoCallbacks {
        self.receiver_from(
            SunoCallbacks::builder().in_flight_wait(in_flight_wait),
            runs,
        )
    }

    /// `builder` with the key and a `complete` handler that holds until released.
    fn receiver_from(&self, builder: SunoCallbacksBuilder, runs: &Counter) -> SunoCallbacks {
        let (gate, runs) = (self.clone(), runs.clone());
        builder
            .hmac_key(KEY)
            .on_complete(move |_event| {
                let (gate, runs) = (gate.clone(), runs.clone());
                async move {
                    runs.bump();
                    gate.entered.notify_one();
                    gate.release.notified().await;
                    gate.finished.notify_one();
                    Ok(())
                }
            })
            .build()
            .expect("valid configuration")
    }

    /// Delivers `body` in the background and returns once its handler holds the claim.
    async fn hold(&self, callbacks: &SunoCallbacks, body: Bytes) -> JoinHandle<Answer> {
        let delivery = tokio::spawn(send(callbacks.service(), signed(body)));
        within(
            "the first delivery's handler start",
            self.entered.notified(),
        )
        .await;
        delivery
    }
}

/// Fails the test instead of hanging it.
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within 10 s"))
}

#[tokio::test]
async fn in_flight_after_the_wait_is_409_with_retry_after() {
    let (gate, runs) = (Gate::default(), Counter::default());
    let callbacks = gate.receiver(Duration::from_millis(100), &runs);
    let body = MusicCallback::complete(TASK).body();
    let first = gate.hold(&callbacks, body.clone()).await;

    let second = within("the second answer", send(callbacks.service(), signed(body))).await;
    second.expect(409, "in_flight");
    assert_eq!(second.headers[header::RETRY_AFTER], "5");

    gate.release.notify_one();
    within("the first answer", first)
        .await
        .expect("first delivery")
        .expect(200, "processed");
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn a_duplicate_waiting_in_flight_gets_the_outcome() {
    let (gate, runs) = (Gate::default(), Counter::default());
    let callbacks = gate.receiver(Duration::from_secs(5), &runs);
    let body = MusicCallback::complete(TASK).body();
    let first = gate.hold(&callbacks, body.clone()).await;
    let second = tokio::spawn(send(callbacks.service(), signed(body)));
    // Give the second delivery time to find the key in flight and start waiting.
    tokio::time::sleep(Duration::from_millis(50)).await;
    gate.release.notify_one();
    within("the first answer", first)
        .await
        .expect("first")
        .expect(200, "processed");
    within("the second answer", second)
        .await
        .expect("second")
        .expect(200, "duplicate");
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn a_dropped_request_does_not_cancel_its_handler() {
    let (gate, runs) = (Gate::default(), Counter::default());
    let callbacks = gate.receiver(Duration::from_secs(5), &runs);
    let body = MusicCallback::complete(TASK).body();
    let request = gate.hold(&callbacks, body.clone()).await;
    // The sender hangs up: the request future is dropped mid-handler.
    request.abort();
    assert!(request.await.expect_err("aborted").is_cancelled());
    gate.release.notify_one();
    within("the handler end", gate.finished.notified()).await;
    // The handler finished and its claim was completed: the retry is a duplicate.
    let retry = within("the retry", async {
        loop {
            let answer = send(callbacks.service(), signed(body.clone())).await;
            if answer.label() != "in_flight" {
                break answer;
            }
        }
    })
    .await;
    retry.expect(200, "duplicate");
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn a_memory_store_full_of_claims_is_503() {
    let (gate, runs) = (Gate::default(), Counter::default());
    let full_after_one = SunoCallbacks::builder().store(MemoryStore::with_max_entries(1));
    let callbacks = gate.receiver_from(full_after_one, &runs);
    let first = gate
        .hold(&callbacks, callback_body("held", "complete", 200).into())
        .await;
    let refused = send(
        callbacks.service(),
        signed(callback_body("other", "complete", 200)),
    )
    .await;
    refused.expect(503, "unavailable");
    gate.release.notify_one();
    within("the first answer", first)
        .await
        .expect("first")
        .expect(200, "processed");
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn a_title_cut_inside_an_emoji_is_still_processed() {
    let runs = Counter::default();
    let callbacks = counting_receiver(&runs);
    let body = r#"{"code":200,"msg":"ok","data":{"callbackType":"complete","task_id":"cut-emoji",
        "data":[{"id":"a","title":"Night City \ud83c"}]}}"#;
    send(callbacks.service(), signed(body))
        .await
        .expect(200, "processed");
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn missing_bad_and_stale_signatures_are_rejected() {
    let runs = Counter::default();
    let callbacks = counting_receiver(&runs);
    let body = MusicCallback::complete(TASK).body();

    let unsigned = send(callbacks.service(), unsigned_request(PATH, body.clone())).await;
    unsigned.expect(401, "rejected");
    assert_eq!(
        unsigned.json["reason"],
        "missing x-webhook-signature header"
    );

    let wrong_key = Signer::new("another-key").request(PATH, body.clone());
    let bad = send(callbacks.service(), wrong_key).await;
    bad.expect(401, "rejected");
    assert_eq!(bad.json["reason"], "signature does not match");

    let an_hour_ago = now() - 3600;
    let stale = send(
        callbacks.service(),
        common::signer().request_at(PATH, body.clone(), an_hour_ago),
    )
    .await;
    stale.expect(401, "rejected");
    assert_eq!(stale.json["reason"], "timestamp outside the tolerance");

    let mut garbled = signed(body.clone());
    garbled.headers_mut().insert(
        "x-webhook-signature",
        "not base64!".parse().expect("header"),
    );
    send(callbacks.service(), garbled)
        .await
        .expect(401, "rejected");

    let mut no_timestamp = signed(body);
    no_timestamp.headers_mut().remove("x-webhook-timestamp");
    let answer = send(callbacks.service(), no_timestamp).await;
    answer.expect(401, "rejected");
    assert_eq!(answer.json["reason"], "missing x-webhook-timestamp header");

    assert_eq!(runs.get(), 0, "no handler runs for a rejected request");
}

#[tokio::test]
async fn a_signature_for_another_task_is_rejected() {
    let runs = Counter::default();
    let callbacks = counting_receiver(&runs);
    let mut request = signed(callback_body("task-a", "complete", 200));
    let [(_, _), (name, other)] = common::signer().headers_at("task-b", now());
    request.headers_mut().insert(name, other);
    send(callbacks.service(), request)
        .await
        .expect(401, "rejected");
    assert_eq!(runs.get(), 0);
}

#[tokio::test]
async fn bodies_that_are_not_callbacks_are_400() {
    let runs = Counter::default();
    let callbacks = counting_receiver(&runs);
    for body in [
        "not json",
        "[1,2,3]",
        r#"{"code":200,"data":{"callbackType":"complete"}}"#,
        r#"{"data":{"callbackType":"complete","task_id":"t"}}"#,
        "",
    ] {
        let answer = send(callbacks.service(), unsigned_request(PATH, body)).await;
        answer.expect(400, "invalid");
        assert!(
            answer.json["reason"].is_string(),
            "{body}: {:?}",
            answer.json
        );
    }
    assert_eq!(runs.get(), 0);
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let callbacks = counting_receiver(&Counter::default());
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let mut request = signed(MusicCallback::complete(TASK).body());
        *request.method_mut() = method.clone();
        let answer = send(callbacks.service(), request).await;
        answer.expect(405, "invalid");
        assert_eq!(answer.headers[header::ALLOW], "POST", "{method}");
    }
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_415() {
    let callbacks = counting_receiver(&Counter::default());
    let mut text = signed(MusicCallback::complete(TASK).body());
    text.headers_mut()
        .insert(header::CONTENT_TYPE, "text/plain".parse().expect("header"));
    send(callbacks.service(), text).await.expect(415, "invalid");
    let mut missing = signed(MusicCallback::complete(TASK).body());
    missing.headers_mut().remove(header::CONTENT_TYPE);
    send(callbacks.service(), missing)
        .await
        .expect(415, "invalid");
    let mut with_charset = signed(MusicCallback::complete(TASK).body());
    with_charset.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json; charset=utf-8".parse().expect("header"),
    );
    send(callbacks.service(), with_charset)
        .await
        .expect(200, "processed");
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_declared_or_not() {
    let runs = Counter::default();
    let limited = SunoCallbacks::builder()
        .hmac_key(KEY)
        .body_limit(256)
        .on_complete({
            let runs = runs.clone();
            move |_| {
                runs.bump();
                async { Ok(()) }
            }
        })
        .build()
        .expect("valid configuration");
    let big = MusicCallback::complete(TASK).body();
    assert!(big.len() > 256);

    let mut declared = signed(big.clone());
    declared
        .headers_mut()
        .insert(header::CONTENT_LENGTH, big.len().into());
    send(limited.service(), declared)
        .await
        .expect(413, "invalid");

    // No Content-Length: the limit is enforced while reading.
    send(limited.service(), signed(big))
        .await
        .expect(413, "invalid");

    let small = callback_body("t", "complete", 200);
    assert!(small.len() < 256);
    send(limited.service(), signed(small))
        .await
        .expect(200, "processed");
    assert_eq!(runs.get(), 1);
}

/// A receiver whose `complete` handler fails in the given way on its first run only.
fn failing_once<F, Fut>(first_run: F, runs: &Counter) -> SunoCallbacks
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    let runs = runs.clone();
    let first_run = Arc::new(first_run);
    SunoCallbacks::builder()
        .hmac_key(KEY)
        .handler_timeout(Duration::from_millis(200))
        .claim_lease(Duration::from_secs(5))
        .on_complete(move |_event| {
            let attempt = runs.bump();
            let first_run = Arc::clone(&first_run);
            async move {
                if attempt == 1 {
                    first_run().await
                } else {
                    Ok(())
                }
            }
        })
        .build()
        .expect("valid configuration")
}

async fn expect_failed_then_retried(callbacks: SunoCallbacks, runs: &Counter, reason: &str) {
    let body = MusicCallback::complete(TASK).body();
    let failed = send(callbacks.service(), signed(body.clone())).await;
    failed.expect(500, "failed");
    assert_eq!(failed.json["reason"], reason);
    let retried = send(callbacks.service(), signed(body.clone())).await;
    retried.expect(200, "processed");
    assert_eq!(runs.get(), 2, "the retry ran the handler again");
    send(callbacks.service(), signed(body))
        .await
        .expect(200, "duplicate");
}

#[tokio::test]
async fn a_failed_handler_is_500_and_its_retry_runs() {
    let runs = Counter::default();
    let callbacks = failing_once(|| async { Err(HandlerError::msg("database down")) }, &runs);
    expect_failed_then_retried(callbacks, &runs, "handler failed").await;
}

#[tokio::test]
async fn a_panicking_handler_is_500_and_its_retry_runs() {
    let runs = Counter::default();
    let callbacks = failing_once(|| async { panic!("handler bug") }, &runs);
    expect_failed_then_retried(callbacks, &runs, "handler panicked").await;
}

#[tokio::test]
async fn a_handler_panicking_before_its_future_is_500() {
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .on_complete(|_event| -> std::future::Ready<Result<(), HandlerError>> {
            panic!("panics while building the future")
        })
        .build()
        .expect("valid configuration");
    let answer = send(
        callbacks.service(),
        signed(MusicCallback::complete(TASK).body()),
    )
    .await;
    answer.expect(500, "failed");
    assert_eq!(answer.json["reason"], "handler panicked");
}

#[tokio::test]
async fn a_slow_handler_times_out_as_500_and_its_retry_runs() {
    let runs = Counter::default();
    let callbacks = failing_once(
        || async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        },
        &runs,
    );
    expect_failed_then_retried(callbacks, &runs, "handler timed out").await;
}

/// A store that is down.
struct DownStore;

impl DedupStore for DownStore {
    async fn claim(&self, _: &DedupKey, _: Duration) -> Result<Claim, StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }
    async fn complete(&self, _: &DedupKey, _: ClaimToken, _: Duration) -> Result<(), StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }
    async fn release(&self, _: &DedupKey, _: ClaimToken) -> Result<(), StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }
    async fn bind_signature(&self, _: &SignatureUse, _: Duration) -> Result<Binding, StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }
}

/// A store that never answers.
struct HungStore;

impl DedupStore for HungStore {
    async fn claim(&self, _: &DedupKey, _: Duration) -> Result<Claim, StoreError> {
        std::future::pending().await
    }
    async fn complete(&self, _: &DedupKey, _: ClaimToken, _: Duration) -> Result<(), StoreError> {
        std::future::pending().await
    }
    async fn release(&self, _: &DedupKey, _: ClaimToken) -> Result<(), StoreError> {
        std::future::pending().await
    }
    async fn bind_signature(&self, _: &SignatureUse, _: Duration) -> Result<Binding, StoreError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn an_unavailable_store_is_503_with_retry_after_and_no_handler_runs() {
    for builder in [
        SunoCallbacks::builder().store(DownStore),
        SunoCallbacks::builder()
            .store(HungStore)
            .store_timeout(Duration::from_millis(100)),
    ] {
        let runs = Counter::default();
        let counted = runs.clone();
        let callbacks = builder
            .hmac_key(KEY)
            .on_complete(move |_| {
                counted.bump();
                async { Ok(()) }
            })
            .build()
            .expect("valid configuration");
        let answer = send(
            callbacks.service(),
            signed(MusicCallback::complete(TASK).body()),
        )
        .await;
        answer.expect(503, "unavailable");
        assert_eq!(answer.headers[header::RETRY_AFTER], "30");
        assert_eq!(runs.get(), 0, "no handler runs without a claim");
    }
}

#[tokio::test]
async fn answers_to_a_real_body_type_other_than_full() {
    // axum's Body, as a router would pass it.
    let callbacks = counting_receiver(&Counter::default());
    let signed_request = signed(MusicCallback::complete(TASK).body());
    let (parts, body) = signed_request.into_parts();
    let bytes: Bytes = http_body_util::BodyExt::collect(body)
        .await
        .expect("body")
        .to_bytes();
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    send(callbacks.service(), request)
        .await
        .expect(200, "processed");
}

fn now() -> i64 {
    use suno_callback::verify::{Clock, SystemClock};
    SystemClock.unix_seconds()
}
