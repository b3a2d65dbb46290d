//! The receiver in poem, through poem's tower support: the tower service becomes a
//! poem endpoint with `compat()`, mounted on `/callbacks/suno` and one segment below it
//! (`/callbacks/suno/wav`, ...) beside the app's own routes; a small `around` middleware hands poem's remote address to the receiver.
//!
//! ```text
//! cargo run --example poem
//! ```
//!
//! Settings as in the quickstart (`BIND_ADDR`, `SUNO_WEBHOOK_HMAC_KEY`,
//! `SUNO_ALLOWED_IPS`, `RUST_LOG`); one printed line per event. The app's own route:
//! `GET /health`.

mod common;

use common::PATH;
use poem::endpoint::TowerCompatExt;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Endpoint, EndpointExt, Route, Server, get, handler};
use suno_callback::PeerAddr;

#[handler]
fn health() -> &'static str {
    "ok"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = common::settings()?;
    let callbacks = common::receiver(&settings)?;

    // The shared path and one segment below it (`/callbacks/suno/wav`, ...), each also
    // with a trailing slash: the paths `layer_at` answers in tower.
    let mut app = Route::new().at("/health", get(health));
    for path in [
        PATH.to_owned(),
        format!("{PATH}/"),
        format!("{PATH}/:segment"),
        format!("{PATH}/:segment/"),
    ] {
        app = app.at(path, callbacks.service().compat());
    }
    let app = app.around(|endpoint, mut request| async move {
        // poem keeps the remote address outside the request's extensions, where
        // the receiver looks for it.
        if let Some(peer) = request.remote_addr().as_socket_addr().copied() {
            request.extensions_mut().insert(PeerAddr(peer));
        }
        endpoint.call(request).await
    });

    let acceptor = TcpListener::bind(settings.bind).into_acceptor().await?;
    let local = acceptor
        .local_addr()
        .first()
        .and_then(|addr| addr.as_socket_addr().copied())
        .ok_or("bound to no address")?;
    common::announce("poem", local, &settings)?;
    Server::new_with_acceptor(acceptor).run(app).await?;
    Ok(())
}
