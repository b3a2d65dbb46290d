//! The tower mountings, each started as its example on a loopback port and sent real
//! signed requests: axum (routed service in the quickstart, layer around an app with
//! tower-http in front here), hyper alone, and poem; then axum with tower-http's
//! layers in front, in process, where their limits can be set.

mod common;
mod mounted;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use common::{Counter, KEY, PATH, callback_body, http_send, raw_http, signed};
use http::StatusCode;
use suno_callback::SunoCallbacks;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

#[tokio::test]
async fn axum_layer_example_answers_the_table() {
    mounted::answers_table("axum_layer").await;
}

#[tokio::test]
async fn axum_layer_example_passes_the_peer_address() {
    mounted::peer_address_reaches_the_allowlist("axum_layer").await;
}

#[tokio::test]
async fn axum_layer_example_keeps_the_apps_extractors_and_bodies() {
    let running =
        common::RunningExample::start("axum_layer", &[("SUNO_WEBHOOK_HMAC_KEY", KEY)], &[]).await;
    let order = r#"{"id":7,"item":"cassette"}"#;
    let answer = http_send(
        running.addr,
        suno_callback::testing::unsigned_request("/orders", order),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["item"], "cassette");
    // axum's own Json rejection, not the receiver's.
    let answer = http_send(
        running.addr,
        suno_callback::testing::unsigned_request("/orders", "{"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.json.get("status").is_none(), "{:?}", answer.json);
}

#[tokio::test]
async fn quickstart_passes_the_peer_address() {
    mounted::peer_address_reaches_the_allowlist("quickstart").await;
}

#[tokio::test]
async fn hyper_only_example_answers_the_table() {
    mounted::answers_table("hyper_only").await;
}

#[tokio::test]
async fn hyper_only_example_passes_the_peer_address() {
    mounted::peer_address_reaches_the_allowlist("hyper_only").await;
}

#[tokio::test]
async fn poem_example_answers_the_table() {
    mounted::answers_table("poem").await;
}

#[tokio::test]
async fn poem_example_passes_the_peer_address() {
    mounted::peer_address_reaches_the_allowlist("poem").await;
}

/// An axum app with the receiver as a layer and tower-http's trace and body-limit
/// layers in front, served on a loopback port.
async fn serve_behind_tower_http(
    runs: &Counter,
    receiver_limit: usize,
    app_limit: usize,
) -> SocketAddr {
    let runs = runs.clone();
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .body_limit(receiver_limit)
        .on_complete(move |_| {
            runs.bump();
            async { Ok(()) }
        })
        .build()
        .expect("valid configuration");
    let app = Router::new()
        .route(
            "/health",
            get(|State(status): State<&'static str>| async move { status }),
        )
        .route(
            "/upload",
            post(|body: axum::body::Bytes| async move { body.len().to_string() }),
        )
        .with_state("ok")
        .layer(callbacks.layer_at(PATH))
        .layer(RequestBodyLimitLayer::new(app_limit))
        .layer(TraceLayer::new_for_http());
    mounted::serve_axum(app).await
}

#[tokio::test]
async fn behind_tower_http_the_receivers_own_limit_still_answers_413() {
    let runs = Counter::default();
    let addr = serve_behind_tower_http(&runs, 2048, 1 << 20).await;
    // Declared too large: refused before reading.
    let padded = format!(
        r#"{{"code":200,"data":{{"callbackType":"complete","task_id":"big"}},"pad":"{}"}}"#,
        "x".repeat(4096)
    );
    http_send(addr, signed(padded)).await.expect(413, "invalid");
    // Chunked, no length declared: refused while reading.
    let (status, body) =
        raw_http(addr, &mounted::chunked_callback(addr, "big-chunked", 4096)).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains(r#""status":"invalid""#), "{body}");
    // Within both limits, chunked: read whole and processed.
    let (status, body) = raw_http(
        addr,
        &mounted::chunked_callback(addr, "small-chunked", 1500),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""status":"processed""#), "{body}");
    http_send(addr, signed(callback_body("plain", "complete", 200)))
        .await
        .expect(200, "processed");
    assert_eq!(runs.get(), 2);
}

#[tokio::test]
async fn behind_a_tighter_tower_http_limit_its_limit_answers_first() {
    let runs = Counter::default();
    let addr = serve_behind_tower_http(&runs, 1 << 20, 2048).await;
    // Declared too large for tower-http: its own 413, before the receiver.
    let padded = format!(
        r#"{{"code":200,"data":{{"callbackType":"complete","task_id":"big"}},"pad":"{}"}}"#,
        "x".repeat(4096)
    );
    let answer = http_send(addr, signed(padded)).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Chunked past tower-http's limit: the receiver reads the limited body, sees the
    // limit's error and answers its own 413.
    let (status, body) =
        raw_http(addr, &mounted::chunked_callback(addr, "big-chunked", 4096)).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains(r#""status":"invalid""#), "{body}");
    assert_eq!(runs.get(), 0);
}

#[tokio::test]
async fn behind_tower_http_other_routes_keep_state_and_bodies() {
    let runs = Counter::default();
    let addr = serve_behind_tower_http(&runs, 2048, 1 << 20).await;
    let health = http_send(addr, mounted::get_request("/health")).await;
    assert_eq!(
        (health.status, health.json.as_str()),
        (StatusCode::OK, Some("ok"))
    );
    // A body far above the receiver's limit reaches the app's route whole.
    let upload = suno_callback::testing::unsigned_request("/upload", vec![b'x'; 100_000]);
    let answer = http_send(addr, upload).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json, 100_000);
    assert_eq!(runs.get(), 0);
}
