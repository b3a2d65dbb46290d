//! The layer answers its path and passes everything else to the inner service
//! untouched; in axum, other routes keep their extractors, state and bodies.

mod common;

use std::convert::Infallible;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use common::{Counter, KEY, PATH, send, signed};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use suno_callback::SunoCallbacks;
use suno_callback::testing::MusicCallback;
use tower::{ServiceBuilder, ServiceExt, service_fn};

/// The task of the callbacks these tests send.
const TASK: &str = "2fac7b1e4d5a4c3f8e9d0a1b2c3d9f72";

fn receiver(runs: &Counter) -> SunoCallbacks {
    let runs = runs.clone();
    SunoCallbacks::builder()
        .hmac_key(KEY)
        .on_complete(move |_| {
            runs.bump();
            async { Ok(()) }
        })
        .build()
        .expect("valid configuration")
}

/// An inner service that echoes method, path and body, so passing through untouched
/// can be checked.
async fn echo(request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .unwrap_or_else(|e| match e {})
        .to_bytes();
    let text = format!(
        "{} {} {}",
        parts.method,
        parts.uri.path(),
        String::from_utf8_lossy(&body)
    );
    Ok(Response::builder()
        .status(StatusCode::IM_A_TEAPOT)
        .header("x-inner", "yes")
        .body(Full::new(Bytes::from(text)))
        .unwrap_or_default())
}

#[tokio::test]
async fn other_paths_reach_the_inner_service_untouched() {
    let runs = Counter::default();
    let service = ServiceBuilder::new()
        .layer(receiver(&runs).layer_at(PATH))
        .service(service_fn(echo));

    for (method, path) in [
        (Method::POST, "/other"),
        // One segment below the path is the receiver's (`/callbacks/suno/wav`, or any
        // other segment, read as the shared path); two are not, nor a longer name.
        (Method::GET, "/callbacks/suno/wav/extra"),
        (Method::POST, "/callbacks/sunox"),
        (Method::POST, "/callbacks"),
        (Method::PUT, "/"),
    ] {
        let mut request = Request::new(Full::new(Bytes::from_static(b"payload")));
        *request.method_mut() = method.clone();
        *request.uri_mut() = path.parse().expect("uri");
        let answer = send(service.clone(), request).await;
        assert_eq!(answer.status, StatusCode::IM_A_TEAPOT, "{method} {path}");
        assert_eq!(answer.headers["x-inner"], "yes");
        assert_eq!(answer.json, format!("{method} {path} payload"));
    }
    assert_eq!(runs.get(), 0);

    let answer = send(
        service.clone(),
        signed(MusicCallback::complete(TASK).body()),
    )
    .await;
    answer.expect(200, "processed");
    assert_eq!(runs.get(), 1);

    let mut get = signed(MusicCallback::complete(TASK).body());
    *get.method_mut() = Method::GET;
    send(service, get).await.expect(405, "invalid");
}

#[derive(Clone)]
struct AppState {
    greeting: &'static str,
}

#[derive(serde::Deserialize, serde::Serialize)]
struct Order {
    id: u32,
}

fn app(callbacks: &SunoCallbacks) -> Router {
    Router::new()
        .route(
            "/health",
            get(|State(state): State<AppState>| async move { state.greeting }),
        )
        .route(
            "/orders",
            post(|Json(order): Json<Order>| async move { Json(order) }),
        )
        .with_state(AppState { greeting: "ok" })
        .layer(callbacks.layer_at(PATH))
}

async fn call(router: Router, request: Request<axum::body::Body>) -> (StatusCode, String) {
    let response = router.oneshot(request).await.unwrap_or_else(|e| match e {});
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn around_an_axum_router_other_routes_keep_state_and_extractors() {
    let runs = Counter::default();
    let router = app(&receiver(&runs));

    let health = Request::get("/health")
        .body(axum::body::Body::empty())
        .expect("request");
    assert_eq!(
        call(router.clone(), health).await,
        (StatusCode::OK, "ok".into())
    );

    let order = Request::post("/orders")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(r#"{"id":7}"#))
        .expect("request");
    assert_eq!(
        call(router.clone(), order).await,
        (StatusCode::OK, r#"{"id":7}"#.into())
    );

    let missing = Request::get("/nowhere")
        .body(axum::body::Body::empty())
        .expect("request");
    assert_eq!(call(router.clone(), missing).await.0, StatusCode::NOT_FOUND);

    let (parts, body) = signed(MusicCallback::complete(TASK).body()).into_parts();
    let body = body
        .collect()
        .await
        .unwrap_or_else(|e| match e {})
        .to_bytes();
    let callback = Request::from_parts(parts, axum::body::Body::from(body));
    let (status, text) = call(router, callback).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains(r#""status":"processed""#), "{text}");
    assert_eq!(runs.get(), 1);
}
