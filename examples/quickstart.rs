//! The quickstart receiver: an axum server answering Suno callbacks of every family on
//! `/callbacks/suno` and on `/callbacks/suno/<family>` (`music`, `lyrics`, `wav`,
//! `separation`, `midi`, `video`, `cover`, `voice`), printing one line per dispatched
//! event: family, stage or `failure`, `task=<id>`, then what it carries, for example
//! `wav complete task=… url=…` or `music failure task=… code=531 …`.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! - `BIND_ADDR`: where to listen (default `127.0.0.1:3000`).
//! - `SUNO_WEBHOOK_HMAC_KEY`: the account's webhook HMAC key. When it is not set, a
//!   random key is generated and printed with a ready-to-paste `curl` command that
//!   sends a correctly signed callback.
//! - `SUNO_ALLOWED_IPS`: optional, comma-separated addresses or CIDR ranges allowed to
//!   send callbacks.
//! - `REDIS_URL`: built with `--features redis`, dedupe in this Redis (`RedisStore`), so
//!   two copies on two `BIND_ADDR`s behave as one receiver; `REDIS_KEY_PREFIX` sets the
//!   key prefix.
//! - `DATABASE_URL`: built with `--features postgres` and naming a PostgreSQL database
//!   (`postgres://…`), and no `REDIS_URL`: dedupe in that database (`PostgresStore`,
//!   its tables created on start), so copies sharing it behave as one receiver.
//! - `RUST_LOG`: log filter (default `warn`), for example `suno_callback=info`.
//!
//! `GET /metrics` on the same address serves the receiver's metrics in Prometheus'
//! text format (`metrics-exporter-prometheus`).
//!
//! The receiver and its handlers (one printed line per event) are in
//! `examples/common/mod.rs`, shared with the other examples, which mount the same
//! receiver in other ways.

mod common;

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use common::{METRICS_PATH, PATH};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = common::settings()?;
    let (callbacks, postgres) = match postgres_store(&settings).await? {
        Some((store, at)) => (common::receiver_with_store(&settings, store)?, Some(at)),
        None => (common::receiver(&settings)?, None),
    };
    let metrics = common::prometheus()?;

    // The shared path, and one per family (`/callbacks/suno/wav`, ...): give each API
    // call the callBackUrl of its family, and every failure is typed, even one whose
    // body carries nothing but its task id.
    let app = Router::new()
        .route_service(PATH, callbacks.service())
        .route_service(&format!("{PATH}/{{family}}"), callbacks.service())
        .route(
            METRICS_PATH,
            get(move || std::future::ready(metrics.render())),
        );
    let listener = TcpListener::bind(settings.bind).await?;
    println!(
        "suno-callback quickstart: metrics on http://{}{METRICS_PATH}",
        listener.local_addr()?
    );
    match postgres {
        Some(at) => {
            let store = format!("dedup store PostgresStore at {at}, shared by every copy using it");
            common::announce_store("quickstart", listener.local_addr()?, &settings, &store)?;
        }
        None => common::announce("quickstart", listener.local_addr()?, &settings)?,
    }
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

/// `PostgresStore` on `DATABASE_URL` when it names a PostgreSQL database (and Redis is
/// not asked for), with where it is (no password).
#[cfg(feature = "postgres")]
async fn postgres_store(
    settings: &common::Settings,
) -> Result<Option<(suno_callback::store::PostgresStore, String)>, Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").unwrap_or_default();
    if settings.redis_url.is_some() || !url.starts_with("postgres") {
        return Ok(None);
    }
    let store = suno_callback::store::PostgresStore::connect(&url).await?;
    let at = url.rsplit('@').next().unwrap_or(&url);
    let at = at.split("://").last().unwrap_or(at);
    Ok(Some((store, at.split('?').next().unwrap_or(at).to_owned())))
}

#[cfg(not(feature = "postgres"))]
async fn postgres_store(
    _: &common::Settings,
) -> Result<Option<(suno_callback::store::MemoryStore, String)>, Box<dyn std::error::Error>> {
    Ok(None)
}
