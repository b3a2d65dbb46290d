//! Application state shared by a handler and the app's own routes: one
//! `Arc<AppState>` that the `complete` handler writes to and `GET /finished` reads, in
//! one axum app, which stops gracefully on ctrl-c or `SIGTERM`.
//!
//! ```text
//! cargo run --example shared_state
//! curl http://127.0.0.1:3000/finished     # the tasks completed so far, one per line
//! ```
//!
//! Settings as in the quickstart (`BIND_ADDR`, `SUNO_WEBHOOK_HMAC_KEY`,
//! `SUNO_ALLOWED_IPS`, `RUST_LOG`); it prints `finished task=<id> tracks=<n>` for each
//! `complete` callback, and `stopped` once the server has shut down.
//!
//! A handler is an `Fn` closure, called once per callback: it cannot move what it
//! captured into the `async move` block it returns (`E0507`). So the closure clones its
//! `Arc` first, and moves the clone.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use common::PATH;
use suno_callback::{CallbackEvent, HandlerError, SunoCallbacks};
use tokio::net::TcpListener;

/// What the handler and the routes share; in an application, a database pool or a
/// job queue's client.
#[derive(Default)]
struct AppState {
    finished: Mutex<Vec<String>>,
}

impl AppState {
    /// The handler's work: record the task (a real app would write to its database).
    async fn record(&self, event: &CallbackEvent) -> Result<(), HandlerError> {
        self.finished
            .lock()
            .map_err(|_| HandlerError::msg("state lock poisoned"))?
            .push(event.task_id().to_owned());
        println!(
            "finished task={} tracks={}",
            event.task_id(),
            event.tracks().len()
        );
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = common::settings()?;
    let state = Arc::new(AppState::default());

    let mut builder = SunoCallbacks::builder().hmac_key(&settings.key);
    if let Some(ips) = &settings.allowed_ips {
        builder = builder.verifier(suno_callback::verify::IpAllowlist::new(
            ips.split(',').map(str::trim),
        )?);
    }
    let callbacks = builder
        .on_complete({
            let state = Arc::clone(&state); // moved into the closure, once
            move |event| {
                let state = Arc::clone(&state); // one clone per call, moved into the future
                async move { state.record(&event).await }
            }
        })
        .build()?;

    let app = Router::new()
        .route("/finished", get(finished))
        .route("/health", get(|| async { "ok" }))
        .route_service(PATH, callbacks.service())
        .with_state(state);

    let listener = TcpListener::bind(settings.bind).await?;
    common::announce("shared_state", listener.local_addr()?, &settings)?;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    println!("stopped");
    Ok(())
}

/// The tasks completed so far, one per line.
async fn finished(State(state): State<Arc<AppState>>) -> String {
    state
        .finished
        .lock()
        .map(|finished| finished.join("\n"))
        .unwrap_or_default()
}

/// ctrl-c, or the `SIGTERM` a deployment (systemd, Docker, Kubernetes) stops with.
async fn shutdown_signal() {
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
