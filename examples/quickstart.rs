//! The quickstart receiver, in one file: an axum server answering the Suno callbacks of
//! every family on `/callbacks/suno` and on `/callbacks/suno/<family>` (`music`,
//! `lyrics`, `wav`, `separation`, `midi`, `video`, `cover`, `voice`), printing one line
//! per event: family, stage or `failure`, `task=<id>`, then what it carries, for
//! example `wav complete task=… url=…` or `music failure task=… code=531 …`.
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
//! - `DATABASE_URL`: built with `--features postgres`, naming a PostgreSQL database
//!   (`postgres://…`) and without `REDIS_URL`: dedupe in that database
//!   (`PostgresStore`, its tables created on start), so copies sharing it behave as one
//!   receiver.
//! - `RUST_LOG`: log filter (default `warn`), for example `suno_callback=info`.
//!
//! `GET /metrics` on the same address serves the receiver's metrics in Prometheus'
//! text format (`metrics-exporter-prometheus`). It stops on ctrl-c or `SIGTERM`,
//! once the requests in flight are answered.
//!
//! In your own `Cargo.toml`: `suno-callback` with its `axum` feature (`router_at`, and
//! the peer address for `SUNO_ALLOWED_IPS`), `axum`, `tokio` (`macros`,
//! `rt-multi-thread`, `net`, `signal`), `metrics-exporter-prometheus`, `getrandom` and
//! `tracing-subscriber`. The other examples mount the same receiver in other ways, and
//! share its code in `examples/common/`.

use std::error::Error;
use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use suno_callback::event::Payload;
use suno_callback::verify::{Clock, DEFAULT_TOLERANCE, IpAllowlist, SystemClock, sign};
use suno_callback::{CallbackEvent, Family, HandlerError, Route, SunoCallbacks};
use tokio::net::TcpListener;

const PATH: &str = "/callbacks/suno";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // Logs go to stderr; stdout carries one line per event.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let bind: SocketAddr = env("BIND_ADDR")
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned())
        .parse()?;
    let given_key = env("SUNO_WEBHOOK_HMAC_KEY");
    let key = match &given_key {
        Some(key) => key.clone(),
        None => random_hex::<32>()?,
    };

    let callbacks = receiver(&key).await?;
    let metrics = prometheus()?;

    // The shared path, and one per family (`/callbacks/suno/wav`, ...): give each API
    // call the callBackUrl of its family, and every failure is typed, even one whose
    // body carries nothing but its task id.
    let app = Router::new().merge(callbacks.router_at(PATH)).route(
        "/metrics",
        get(move || std::future::ready(metrics.render())),
    );

    let listener = TcpListener::bind(bind).await?;
    let local = listener.local_addr()?;
    println!("suno-callback quickstart: metrics on http://{local}/metrics");
    println!("suno-callback quickstart: {}", store_description());
    println!("suno-callback quickstart listening on http://{local}{PATH}");
    if given_key.is_none() {
        print_try_it(local, &key)?;
    }
    // `ConnectInfo` hands the peer address to the allowlist (feature `axum`).
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    Ok(())
}

/// The receiver: the key (and allowlist), the dedup store, and a handler that prints
/// one line for every event of every family.
async fn receiver(key: &str) -> Result<SunoCallbacks, Box<dyn Error>> {
    let mut builder = SunoCallbacks::builder().hmac_key(key);
    if let Some(ips) = env("SUNO_ALLOWED_IPS") {
        builder = builder.verifier(IpAllowlist::new(ips.split(',').map(str::trim))?);
    }
    #[cfg(feature = "redis")]
    if let Some(url) = env("REDIS_URL") {
        let mut store = suno_callback::store::RedisStore::builder(url.as_str());
        if let Some(prefix) = env("REDIS_KEY_PREFIX") {
            store = store.key_prefix(prefix.as_str());
        }
        // Connects on first use: the receiver starts even while Redis is still coming
        // up, and answers 503 until it is reachable.
        builder = builder.store(store.build()?);
    }
    #[cfg(feature = "postgres")]
    if let Some(url) = postgres_url() {
        // Connects now, and creates the store's tables (the crate's migrations).
        builder = builder.store(suno_callback::store::PostgresStore::connect(&url).await?);
    }
    // Each family's successes, every failure, and the fallback for the rest (unknown
    // stages, unknown shapes).
    for family in Family::ALL {
        builder = builder.on(Route::success(family), print_event);
    }
    Ok(builder
        .on_failure(print_event)
        .fallback(print_event)
        .build()?)
}

/// The handler: one line per event.
async fn print_event(ev: CallbackEvent) -> Result<(), HandlerError> {
    println!("{}", event_line(&ev));
    Ok(())
}

/// `wav complete task=… url=…`, `music failure task=… code=531 …`,
/// `voice wait_validating task=… validate=…`.
fn event_line(ev: &CallbackEvent) -> String {
    let stage = match ev.stage().as_str() {
        _ if ev.is_failure() => "failure",
        "" => "complete", // a family without stages
        stage => stage,
    };
    let head = format!("{} {stage} task={}", ev.family(), ev.task_id());
    if ev.is_failure() {
        let reason = ev.reason().map(|r| r.to_string()).unwrap_or_default();
        let msg = ev.msg().unwrap_or("");
        return format!("{head} code={} reason={reason:?} msg={msg:?}", ev.code());
    }
    let detail = match ev.payload() {
        Payload::Music(music) => {
            let titles: Vec<&str> = music.tracks().iter().filter_map(|t| t.title()).collect();
            let first = music.tracks().first();
            let audio = first.and_then(|t| t.audio_url().or(t.stream_audio_url()));
            let tracks = music.tracks().len();
            format!(
                "tracks={tracks} titles={titles:?} audio={}",
                audio.unwrap_or("-")
            )
        }
        Payload::Lyrics(lyrics) => {
            let titles: Vec<&str> = lyrics.completed().filter_map(|v| v.title()).collect();
            let (variations, completed) = (lyrics.variations().len(), lyrics.completed().count());
            format!("variations={variations} completed={completed} titles={titles:?}")
        }
        Payload::Wav(wav) => format!("url={}", wav.audio_wav_url().unwrap_or("-")),
        Payload::Separation(separation) => {
            let names: Vec<&str> = separation.stems().iter().map(|s| s.name.as_str()).collect();
            format!("stems={}", names.join(","))
        }
        Payload::Midi(midi) => {
            let notes: usize = midi.instruments().iter().map(|i| i.notes().len()).sum();
            format!("instruments={} notes={notes}", midi.instruments().len())
        }
        Payload::Video(video) => format!("url={}", video.video_url().unwrap_or("-")),
        Payload::Cover(cover) => format!("images={}", cover.images().join(",")),
        Payload::Voice(voice) => match (voice.voice_id(), voice.validate_info()) {
            (Some(id), _) => format!("voice_id={id}"),
            (None, Some(text)) => format!("validate={text:?}"),
            (None, None) => String::new(),
        },
        _ => format!("callbackType={:?}", ev.stage().as_str()),
    };
    format!("{head} {detail}")
}

/// A Prometheus recorder for the receiver's metrics, rendered by `GET /metrics`.
/// Histograms get buckets from 1 ms to 10 s; a background task keeps the recorder's
/// memory bounded.
fn prometheus() -> Result<PrometheusHandle, Box<dyn Error>> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])?
        .install_recorder()?;
    suno_callback::metrics::describe();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// Where callbacks are deduped, in words.
fn store_description() -> String {
    match env("REDIS_URL") {
        Some(url) if cfg!(feature = "redis") => {
            let prefix = env("REDIS_KEY_PREFIX").unwrap_or_else(|| "suno-callback".to_owned());
            let host = url.rsplit('@').next().unwrap_or(&url);
            let host = host.split("://").last().unwrap_or(host);
            format!(
                "dedup store RedisStore at {host} (key prefix {prefix}), shared by every copy using it"
            )
        }
        Some(_) => "REDIS_URL is set but this build has no `redis` feature; dedup store \
                    MemoryStore (this process only)"
            .to_owned(),
        None => match postgres_url() {
            Some(url) if cfg!(feature = "postgres") => {
                let at = url.rsplit('@').next().unwrap_or(&url);
                let at = at.split("://").last().unwrap_or(at);
                let at = at.split('?').next().unwrap_or(at);
                format!("dedup store PostgresStore at {at}, shared by every copy using it")
            }
            _ => "dedup store MemoryStore (this process only)".to_owned(),
        },
    }
}

/// `DATABASE_URL` when it names a PostgreSQL database and Redis is not asked for.
fn postgres_url() -> Option<String> {
    env("DATABASE_URL").filter(|url| url.starts_with("postgres") && env("REDIS_URL").is_none())
}

/// For a generated key: the key, and a `curl` command posting a signed `complete`
/// callback to this server.
fn print_try_it(local: SocketAddr, key: &str) -> Result<(), getrandom::Error> {
    println!("SUNO_WEBHOOK_HMAC_KEY is not set; generated a key for this run: {key}");
    println!(
        "Send a signed `complete` callback (valid for {} minutes, the default timestamp tolerance):",
        DEFAULT_TOLERANCE.as_secs() / 60
    );
    let task_id = random_hex::<16>()?;
    let timestamp = SystemClock.unix_seconds().to_string();
    let signature = sign(key.as_bytes(), &task_id, &timestamp);
    let host = if local.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], local.port()))
    } else {
        local
    };
    let body = format!(
        r#"{{"code":200,"msg":"All generated successfully.","data":{{"callbackType":"complete","task_id":"{task_id}","data":[{{"id":"track-1","audio_url":"https://cdn.example.net/audio/1.mp3","stream_audio_url":"https://cdn.example.net/stream/1","image_url":"https://cdn.example.net/cover/1.jpeg","prompt":"[Verse] Night city lights","model_name":"chirp-v4-5","title":"Night City","tags":"synthwave","createTime":"2025-01-01 00:00:00","duration":198.44}}]}}}}"#
    );
    println!(
        "curl -sS -X POST http://{host}{PATH} -H 'Content-Type: application/json' \
         -H 'X-Webhook-Timestamp: {timestamp}' -H 'X-Webhook-Signature: {signature}' -d '{body}'"
    );
    Ok(())
}

/// A variable of the environment, unless unset or blank.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn random_hex<const N: usize>() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
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
