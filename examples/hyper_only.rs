//! The receiver served by hyper alone, through hyper-util's tower adapter: an accept
//! loop, one connection task per client, the connection's peer address handed to the
//! receiver with `SetPeerAddrLayer`. Requests to other paths go to a small tower
//! service of the app's own (`GET /health`, else `404`).
//!
//! ```text
//! cargo run --example hyper_only
//! ```
//!
//! Settings as in the quickstart (`BIND_ADDR`, `SUNO_WEBHOOK_HMAC_KEY`,
//! `SUNO_ALLOWED_IPS`, `RUST_LOG`); one printed line per event.

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use common::PATH;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use suno_callback::service::SetPeerAddrLayer;
use tokio::net::TcpListener;
use tower::{Layer, service_fn};

/// The app's own routes.
async fn routes(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/health") => (StatusCode::OK, "ok"),
        _ => (StatusCode::NOT_FOUND, "not found"),
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = common::settings()?;
    let callbacks = common::receiver(&settings)?;

    let app = callbacks.layer_at(PATH).layer(service_fn(routes));

    let listener = TcpListener::bind(settings.bind).await?;
    common::announce("hyper_only", listener.local_addr()?, &settings)?;
    loop {
        let (stream, peer) = listener.accept().await?;
        let service = TowerToHyperService::new(SetPeerAddrLayer::new(peer).layer(app.clone()));
        tokio::spawn(async move {
            let connection = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = connection {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
}
