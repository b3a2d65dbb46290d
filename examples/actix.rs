//! The receiver in actix-web (feature `actix`): the same configured receiver, turned
//! into an actix handler and mounted on `/callbacks/suno` and one segment below it
//! (`/callbacks/suno/wav`, ...) for every method, beside the app's own routes. The peer address is actix's.
//!
//! ```text
//! cargo run --example actix --features actix
//! ```
//!
//! Settings as in the quickstart (`BIND_ADDR`, `SUNO_WEBHOOK_HMAC_KEY`,
//! `SUNO_ALLOWED_IPS`, `RUST_LOG`); one printed line per event. The app's own route:
//! `GET /health`.

mod common;

use std::error::Error;

use actix_web::{App, HttpServer, web};
use common::PATH;

fn main() -> Result<(), Box<dyn Error>> {
    actix_web::rt::System::new().block_on(run())
}

async fn run() -> Result<(), Box<dyn Error>> {
    let settings = common::settings()?;
    let callbacks = common::receiver(&settings)?;

    let handler = callbacks.actix_handler();
    // The shared path and one segment below it (`/callbacks/suno/wav`, ...), each also
    // with a trailing slash: the paths `layer_at` answers in tower.
    let paths = [
        PATH.to_owned(),
        format!("{PATH}/"),
        format!("{PATH}/{{segment}}"),
        format!("{PATH}/{{segment}}/"),
    ];
    let server = HttpServer::new(move || {
        App::new()
            .service(web::resource(paths.clone()).to(handler.clone()))
            .route("/health", web::get().to(|| async { "ok" }))
    })
    .bind(settings.bind)?;
    let local = server
        .addrs()
        .first()
        .copied()
        .ok_or("bound to no address")?;
    common::announce("actix", local, &settings)?;
    server.run().await?;
    Ok(())
}
