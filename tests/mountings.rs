//! The tower mountings, each started as its example on a loopback port and sent real
//! signed requests: axum (routed service in the quickstart, layer around an app with
//! tower-http in front here), hyper alone, and poem; then axum with tower-http's
//! layers in front, in process, where their limits can be set.

mod common;
mod mounted;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

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
async fn axum_layer_example_answers_the_paths_below_the_callback_path() {
    mounted::paths_below_the_callback_path("axum_layer", true).await;
}

#[tokio::test]
async fn quickstart_answers_the_paths_below_the_callback_path() {
    mounted::paths_below_the_callback_path("quickstart", true).await;
}

#[tokio::test]
async fn hyper_only_example_answers_the_paths_below_the_callback_path() {
    mounted::paths_below_the_callback_path("hyper_only", true).await;
}

#[tokio::test]
async fn poem_example_answers_the_paths_below_the_callback_path() {
    mounted::paths_below_the_callback_path("poem", true).await;
}

#[tokio::test]
async fn quickstart_passes_the_peer_address() {
    mounted::peer_address_reaches_the_allowlist("quickstart").await;
}

#[tokio::test]
async fn shared_state_example_shares_its_state_and_stops_on_sigterm() {
    let mut running =
        common::RunningExample::start("shared_state", &[("SUNO_WEBHOOK_HMAC_KEY", KEY)], &[]).await;
    let addr = running.addr;
    for task in ["state-1", "state-2"] {
        http_send(addr, signed(callback_body(task, "complete", 200)))
            .await
            .expect(200, "processed");
        assert_eq!(
            running.next_line().await,
            format!("finished task={task} tracks=0")
        );
    }
    // The route reads what the handler wrote, through the same `Arc<AppState>`.
    let (status, body) = raw_http(
        addr,
        &format!("GET /finished HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "state-1\nstate-2"));
    let pid = running.child.id().expect("pid");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    assert_eq!(running.next_line().await, "stopped");
    let exit = tokio::time::timeout(std::time::Duration::from_secs(10), running.child.wait())
        .await
        .expect("the example stops in time")
        .expect("exit status");
    assert!(exit.success(), "{exit:?}");
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

/// A receiver recording `family stage task` for every event it runs.
fn recording_receiver(seen: &Arc<Mutex<Vec<String>>>) -> SunoCallbacks {
    let record = |seen: &Arc<Mutex<Vec<String>>>| {
        let seen = Arc::clone(seen);
        move |event: suno_callback::CallbackEvent| {
            let seen = Arc::clone(&seen);
            async move {
                let stage = if event.is_failure() {
                    "failure"
                } else {
                    event.stage().as_str()
                };
                seen.lock().expect("lock").push(format!(
                    "{} {stage} {}",
                    event.family(),
                    event.task_id()
                ));
                Ok(())
            }
        }
    };
    SunoCallbacks::builder()
        .hmac_key(KEY)
        .on_complete(record(seen))
        .on_failure(record(seen))
        .build()
        .expect("valid configuration")
}

/// The app nested under `/api` in the three ways that reach the receiver.
fn nested_apps(callbacks: &SunoCallbacks) -> [(&'static str, Router); 3] {
    let app = || Router::new().route("/health", get(|| async { "ok" }));
    [
        (
            "nest_service, the layer inside",
            Router::new().nest_service("/api", app().layer(callbacks.layer_at(PATH))),
        ),
        (
            "nest, the layer outside with the full path",
            Router::new()
                .nest("/api", app())
                .layer(callbacks.layer_at(format!("/api{PATH}"))),
        ),
        (
            "nest, router_at merged inside",
            Router::new().nest("/api", app().merge(callbacks.router_at(PATH))),
        ),
    ]
}

#[tokio::test]
async fn nested_under_axum_nest_every_mounting_answers_alike() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let callbacks = recording_receiver(&seen);
    for (n, (how, app)) in nested_apps(&callbacks).into_iter().enumerate() {
        let addr = mounted::serve_axum(app).await;
        let task = |name: &str| format!("nested-{n}-{name}");
        let api = format!("/api{PATH}");
        for (path, name) in [
            (api.clone(), "base"),
            (format!("{api}/"), "slash"),
            (format!("{api}/bogus"), "bogus"),
            (format!("{api}/music/"), "music-slash"),
        ] {
            http_send(
                addr,
                common::signed_to(&path, callback_body(&task(name), "complete", 200)),
            )
            .await
            .expect(200, "processed");
        }
        // The family's path types a shapeless failure.
        let midi = format!(
            r#"{{"code":500,"msg":"failed","data":{{"task_id":"{}"}}}}"#,
            task("midi")
        );
        http_send(addr, common::signed_to(&format!("{api}/midi"), midi))
            .await
            .expect(200, "processed");
        let health = http_send(addr, mounted::get_request("/api/health")).await;
        assert_eq!(health.json.as_str(), Some("ok"), "{how}");
        for path in [format!("{api}/wav/x"), PATH.to_owned()] {
            let answer = http_send(
                addr,
                common::signed_to(&path, callback_body(&task("elsewhere"), "complete", 200)),
            )
            .await;
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{how} {path}");
        }
        let mut seen = seen.lock().expect("lock");
        assert_eq!(
            *seen,
            [
                format!("music complete {}", task("base")),
                format!("music complete {}", task("slash")),
                format!("music complete {}", task("bogus")),
                format!("music complete {}", task("music-slash")),
                format!("midi failure {}", task("midi")),
            ],
            "{how}"
        );
        seen.clear();
    }
}

/// What the README warns of: a layer on a router given to `Router::nest` never sees a
/// callback, since axum drops the nested router's fallback. Should axum change that,
/// this fails and the README's warning goes.
#[tokio::test]
async fn a_layer_on_a_router_given_to_nest_sees_no_callback() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let callbacks = recording_receiver(&seen);
    let api = Router::new()
        .route("/health", get(|| async { "ok" }))
        .layer(callbacks.layer_at(PATH));
    let addr = mounted::serve_axum(Router::new().nest("/api", api)).await;
    for path in [format!("/api{PATH}"), format!("/api{PATH}/wav")] {
        let answer = http_send(
            addr,
            common::signed_to(&path, callback_body("nest-inner", "complete", 200)),
        )
        .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert!(seen.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn router_at_and_layer_at_answer_the_same_paths() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let callbacks = recording_receiver(&seen);
    let app = || Router::new().route("/health", get(|| async { "ok" }));
    let layered = mounted::serve_axum(app().layer(callbacks.layer_at(PATH))).await;
    let routed = mounted::serve_axum(app().merge(callbacks.router_at(PATH))).await;
    for path in [
        PATH.to_owned(),
        format!("{PATH}/"),
        format!("{PATH}/wav"),
        format!("{PATH}/wav/"),
        format!("{PATH}/anything"),
        format!("{PATH}//"),
        format!("{PATH}///"),
        format!("{PATH}/wav/x"),
        format!("{PATH}x"),
        "/callbacks".to_owned(),
        "/health".to_owned(),
    ] {
        let mut statuses = Vec::new();
        for addr in [layered, routed] {
            let body = callback_body(&format!("same-{}", statuses.len()), "complete", 200);
            let mut request = common::signed_to(&path, body);
            if path == "/health" {
                *request.method_mut() = http::Method::GET;
            }
            statuses.push(http_send(addr, request).await.status);
        }
        assert_eq!(statuses[0], statuses[1], "{path}");
    }
}
