//! A receiver that does not rely on callbacks alone: the quickstart's receiver, plus a
//! reconciler that polls the task-details endpoint about the tasks it expects, and
//! optionally confirm mode. One line per event, with where it came from.
//!
//! ```text
//! SUNO_API_KEY=... SUNO_EXPECT=music:2fac7b1e,wav:988e1f2a \
//!   cargo run --example reconcile --features provider-api
//! ```
//!
//! - `BIND_ADDR`, `SUNO_WEBHOOK_HMAC_KEY`, `SUNO_ALLOWED_IPS`, `RUST_LOG`: as in the
//!   quickstart (path `/callbacks/suno`).
//! - `SUNO_API_KEY`: the account's API key, for the task-details endpoint (required).
//! - `SUNO_API_BASE`: the API's base URL (default `https://api.kie.ai`; sunoapi.org's
//!   `https://api.sunoapi.org` works the same).
//! - `SUNO_EXPECT`: comma-separated `family:task_id` pairs registered at start
//!   (families: music, lyrics, wav, separation, midi, video, cover, voice), or
//!   `jobs:task_id` for a task created on the jobs route (`/api/v1/jobs/createTask`,
//!   any model), polled at `/api/v1/jobs/recordInfo`.
//! - `SUNO_RECONCILE_AFTER_MS`: how long after registration polling starts (default
//!   25 minutes, after the sender's last retry).
//! - `SUNO_RECONCILE_INTERVAL_MS`: how often a task is polled (default 30 000).
//! - `SUNO_CONFIRM=1`: confirm every callback with the task-details endpoint first.
//!
//! Each event prints the quickstart's line followed by `source=callback` or
//! `source=poll`, for example
//! `music complete task=2fac7b1e tracks=2 titles=[…] audio=https://…/0.mp3 source=poll`.

mod common;

use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use common::PATH;
use suno_callback::Family;
use suno_callback::provider::{ConfirmMode, ProviderClient, Reconciler};
use suno_callback::verify::IpAllowlist;
use suno_callback::{CallbackEvent, EventSource, SunoCallbacks};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let settings = common::settings()?;
    let api_key = std::env::var("SUNO_API_KEY").map_err(|_| "SUNO_API_KEY is not set")?;
    let mut client = ProviderClient::builder(api_key);
    if let Ok(base) = std::env::var("SUNO_API_BASE") {
        client = client.base_url(base);
    }
    let client = client.build()?;
    let expected = expected_tasks()?;

    let mut builder = SunoCallbacks::builder()
        .hmac_key(&settings.key)
        .fallback(move |event| {
            println!("{}", line(&event));
            async { Ok(()) }
        });
    if let Some(ips) = &settings.allowed_ips {
        builder = builder.verifier(IpAllowlist::new(ips.split(',').map(str::trim))?);
    }
    if std::env::var("SUNO_CONFIRM").is_ok_and(|v| v == "1") {
        builder = builder.confirm(client.clone(), ConfirmMode::all());
    }
    let callbacks = builder.build()?;

    let reconciler = Reconciler::builder(&callbacks, client)
        .after(millis("SUNO_RECONCILE_AFTER_MS")?.unwrap_or(Duration::from_secs(25 * 60)))
        .interval(millis("SUNO_RECONCILE_INTERVAL_MS")?.unwrap_or(Duration::from_secs(30)))
        .on_overdue(|task| println!("{} overdue task={}", task.family(), task.task_id()))
        .build();
    for (task_id, expected) in expected {
        match expected {
            Expected::Classic(family) => reconciler.expect(task_id, family).await?,
            // The answer's model tells the family.
            Expected::Jobs => reconciler.expect_jobs(task_id, Family::Unknown).await?,
        }
    }
    tokio::spawn(reconciler.run());

    let app = Router::new().route_service(PATH, callbacks.service());
    let listener = TcpListener::bind(settings.bind).await?;
    common::announce("reconcile", listener.local_addr()?, &settings)?;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

/// How a task of `SUNO_EXPECT` was created.
enum Expected {
    /// On its family's own endpoint.
    Classic(Family),
    /// On the jobs route.
    Jobs,
}

/// `SUNO_EXPECT`: `family:task_id` or `jobs:task_id` pairs.
fn expected_tasks() -> Result<Vec<(String, Expected)>, Box<dyn Error>> {
    let Ok(list) = std::env::var("SUNO_EXPECT") else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (family, task_id) = pair
                .split_once(':')
                .ok_or_else(|| format!("SUNO_EXPECT: {pair:?} is not family:task_id"))?;
            let expected = match family.trim() {
                "jobs" => Expected::Jobs,
                family => Expected::Classic(family.parse::<Family>()?),
            };
            Ok((task_id.trim().to_owned(), expected))
        })
        .collect()
}

fn millis(name: &str) -> Result<Option<Duration>, Box<dyn Error>> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(Duration::from_millis(
            value
                .trim()
                .parse()
                .map_err(|_| format!("{name} is not milliseconds"))?,
        ))),
        Err(_) => Ok(None),
    }
}

/// The quickstart's line (`music complete task=ID tracks=2 …`), then
/// `source=callback` or `source=poll`.
fn line(event: &CallbackEvent) -> String {
    let source = match EventSource::current() {
        EventSource::Poll => "poll",
        _ => "callback",
    };
    format!("{} source={source}", common::event_line(event))
}
