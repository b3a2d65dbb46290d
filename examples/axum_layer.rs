//! The receiver as a layer around an existing axum app: `/callbacks/suno` and one
//! segment below it (`/callbacks/suno/wav`, ...) are answered by the receiver, every
//! other route by the app as before (its state, extractors and bodies untouched), with
//! tower-http's trace and body-limit layers in front of both.
//!
//! ```text
//! cargo run --example axum_layer
//! ```
//!
//! Settings as in the quickstart (`BIND_ADDR`, `SUNO_WEBHOOK_HMAC_KEY`,
//! `SUNO_ALLOWED_IPS`, `RUST_LOG`); one printed line per event. The app's own routes:
//! `GET /health` (reads the app state) and `POST /orders` (a JSON extractor, echoed).

mod common;

use std::net::SocketAddr;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use common::PATH;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

/// The app's own limit, for its uploads; the receiver keeps its own (1 MiB) and answers
/// a larger callback with its own `413`.
const APP_BODY_LIMIT: usize = 8 * 1024 * 1024;

#[derive(Clone)]
struct AppState {
    status: &'static str,
}

#[derive(serde::Deserialize, serde::Serialize)]
struct Order {
    id: u64,
    item: String,
}

/// The app as it was before the receiver came.
fn app() -> Router {
    Router::new()
        .route(
            "/health",
            get(|State(app): State<AppState>| async move { app.status }),
        )
        .route(
            "/orders",
            post(|Json(order): Json<Order>| async move { Json(order) }),
        )
        .with_state(AppState { status: "ok" })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = common::settings()?;
    let callbacks = common::receiver(&settings)?;

    let app = app()
        .layer(callbacks.layer_at(PATH))
        .layer(RequestBodyLimitLayer::new(APP_BODY_LIMIT))
        .layer(TraceLayer::new_for_http());

    let listener = TcpListener::bind(settings.bind).await?;
    common::announce("axum_layer", listener.local_addr()?, &settings)?;
    // `ConnectInfo` gives the receiver the peer address (feature `axum`).
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
