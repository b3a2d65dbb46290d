//! What every example shares, so that each example file shows only its mounting: the
//! settings read from the environment, a receiver that prints one line per event, and
//! the lines printed at startup.
//!
//! - `BIND_ADDR`: where to listen (default `127.0.0.1:3000`).
//! - `SUNO_WEBHOOK_HMAC_KEY`: the account's webhook HMAC key. When it is not set, a
//!   random key is generated and printed with a ready-to-paste `curl` command that
//!   sends a correctly signed callback.
//! - `SUNO_ALLOWED_IPS`: optional, comma-separated addresses or CIDR ranges; when set,
//!   callbacks from any other peer address are refused (`401`).
//! - `REDIS_URL`: with the `redis` feature, dedupe in this Redis (`RedisStore`) instead
//!   of in memory, so several copies behave as one receiver; `REDIS_KEY_PREFIX`
//!   changes the key prefix (default `suno-callback`).
//! - `RUST_LOG`: log filter (default `warn`), for example `suno_callback=info`.
#![allow(dead_code)] // each example uses its own subset

use std::error::Error;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use suno_callback::event::Payload;
use suno_callback::verify::{Clock, IpAllowlist, SystemClock, sign};
use suno_callback::{CallbackEvent, Family, HandlerError, Route, SunoCallbacks};
use tracing_subscriber::EnvFilter;

/// The path every example answers callbacks on.
pub const PATH: &str = "/callbacks/suno";

/// What the environment asks for.
pub struct Settings {
    pub bind: SocketAddr,
    pub key: String,
    /// The key was generated for this run (no `SUNO_WEBHOOK_HMAC_KEY`).
    pub generated: bool,
    pub allowed_ips: Option<String>,
    /// `REDIS_URL`, when set.
    pub redis_url: Option<String>,
    pub redis_key_prefix: Option<String>,
}

/// Starts logging to stderr (stdout carries one line per event) and reads the
/// settings.
pub fn settings() -> Result<Settings, Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let bind = std::env::var("BIND_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
        .parse()?;
    let (key, generated) = match std::env::var("SUNO_WEBHOOK_HMAC_KEY") {
        Ok(key) if !key.is_empty() => (key, false),
        _ => (random_hex::<32>()?, true),
    };
    let non_empty = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    Ok(Settings {
        bind,
        key,
        generated,
        allowed_ips: non_empty("SUNO_ALLOWED_IPS"),
        redis_url: non_empty("REDIS_URL"),
        redis_key_prefix: non_empty("REDIS_KEY_PREFIX"),
    })
}

/// The receiver every example mounts: the settings' key (and allowlist), and a handler
/// per event that prints one line.
pub fn receiver(settings: &Settings) -> Result<SunoCallbacks, Box<dyn Error>> {
    let mut builder = SunoCallbacks::builder().hmac_key(&settings.key);
    if let Some(ips) = &settings.allowed_ips {
        builder = builder.verifier(IpAllowlist::new(ips.split(',').map(str::trim))?);
    }
    #[cfg(feature = "redis")]
    if let Some(url) = &settings.redis_url {
        let mut store = suno_callback::store::RedisStore::builder(url.as_str());
        if let Some(prefix) = &settings.redis_key_prefix {
            store = store.key_prefix(prefix.as_str());
        }
        // Connects on first use: the receiver starts even while Redis is still coming
        // up, and answers 503 until it is reachable.
        builder = builder.store(store.build()?);
    }
    // One handler per family's successes, the music sugar for `complete`, one for
    // every failure, and the fallback for the rest (unknown stages, unknown shapes):
    // all print one line.
    for family in Family::ALL {
        builder = builder.on(Route::success(family), print_event);
    }
    builder
        .on_complete(print_event)
        .on_failure(print_event)
        .fallback(print_event)
        .build()
        .map_err(Into::into)
}

/// Prints one line for an event: family, stage (or `failure`), `task=<id>`, then what
/// the event carries.
async fn print_event(ev: CallbackEvent) -> Result<(), HandlerError> {
    println!("{}", event_line(&ev));
    Ok(())
}

/// `wav complete task=… url=…`, `music failure task=… code=531 …`,
/// `voice wait_validating task=… validate=…`.
pub fn event_line(ev: &CallbackEvent) -> String {
    let stage = stage_word(ev.stage().as_str(), ev.is_failure());
    let head = format!("{} {stage} task={}", ev.family(), ev.task_id());
    if ev.is_failure() {
        let reason = ev.reason().map(|r| r.to_string()).unwrap_or_default();
        return format!(
            "{head} code={} reason={reason:?} msg={:?}",
            ev.code(),
            ev.msg().unwrap_or("")
        );
    }
    let detail = match ev.payload() {
        Payload::Music(music) => {
            let titles: Vec<&str> = music.tracks().iter().filter_map(|t| t.title()).collect();
            let first = music.tracks().first();
            let audio = first.and_then(|t| t.audio_url().or(t.stream_audio_url()));
            format!(
                "tracks={} titles={titles:?} audio={}",
                music.tracks().len(),
                audio.unwrap_or("-")
            )
        }
        Payload::Lyrics(lyrics) => {
            let titles: Vec<&str> = lyrics.completed().filter_map(|v| v.title()).collect();
            format!(
                "variations={} completed={} titles={titles:?}",
                lyrics.variations().len(),
                lyrics.completed().count()
            )
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

/// The word the examples print for a stage: `failure` for any failure, `complete` for
/// the success of a family without stages, else the stage itself.
pub fn stage_word(stage: &str, failure: bool) -> &str {
    match stage {
        _ if failure => "failure",
        "" => "complete",
        stage => stage,
    }
}

/// Where the quickstart serves its metrics.
pub const METRICS_PATH: &str = "/metrics";

/// Installs a Prometheus recorder for the receiver's metrics (`suno_callback::metrics`)
/// and returns what renders them for `GET /metrics`. Histograms get buckets from 1 ms
/// to 10 s; a background task keeps the recorder's memory bounded.
pub fn prometheus() -> Result<PrometheusHandle, Box<dyn Error>> {
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

/// Prints which dedup store is used, the "listening on" line and, for a generated key,
/// the key and a `curl` command that sends a signed `complete` callback.
pub fn announce(
    name: &str,
    local: SocketAddr,
    settings: &Settings,
) -> Result<(), getrandom::Error> {
    announce_store(name, local, settings, &store_description(settings))
}

/// [`announce`] with the given description of where callbacks are stored.
pub fn announce_store(
    name: &str,
    local: SocketAddr,
    settings: &Settings,
    store: &str,
) -> Result<(), getrandom::Error> {
    println!("suno-callback {name}: {store}");
    println!(
        "suno-callback {name}: each family also on {PATH}/<family>: {}",
        Family::ALL.map(Family::as_str).join(", ")
    );
    println!("suno-callback {name} listening on http://{local}{PATH}");
    if settings.generated {
        println!(
            "SUNO_WEBHOOK_HMAC_KEY is not set; generated a key for this run: {}",
            settings.key
        );
        println!(
            "Send a signed `complete` callback (valid for {} minutes, the default timestamp tolerance):",
            suno_callback::verify::DEFAULT_TOLERANCE.as_secs() / 60
        );
        println!(
            "{}",
            curl_command(local, &settings.key, &random_hex::<16>()?)
        );
    }
    Ok(())
}

/// Which dedup store [`receiver`] chose, in words.
fn store_description(settings: &Settings) -> String {
    match &settings.redis_url {
        Some(url) if cfg!(feature = "redis") => {
            let prefix = settings
                .redis_key_prefix
                .as_deref()
                .unwrap_or("suno-callback");
            let host = url.rsplit('@').next().unwrap_or(url);
            let host = host.split("://").last().unwrap_or(host);
            format!(
                "dedup store RedisStore at {host} (key prefix {prefix}), shared by every copy using it"
            )
        }
        Some(_) => "REDIS_URL is set but this build has no `redis` feature; dedup store \
                    MemoryStore (this process only)"
            .to_owned(),
        None => "dedup store MemoryStore (this process only)".to_owned(),
    }
}

fn random_hex<const N: usize>() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A one-line `curl` command posting a signed `complete` callback to this server.
fn curl_command(local: SocketAddr, key: &str, task_id: &str) -> String {
    let host = if local.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), local.port())
    } else {
        local
    };
    let timestamp = SystemClock.unix_seconds().to_string();
    let signature = sign(key.as_bytes(), task_id, &timestamp);
    let body = format!(
        r#"{{"code":200,"msg":"All generated successfully.","data":{{"callbackType":"complete","task_id":"{task_id}","data":[{{"id":"track-1","audio_url":"https://cdn.example.net/audio/1.mp3","stream_audio_url":"https://cdn.example.net/stream/1","image_url":"https://cdn.example.net/cover/1.jpeg","prompt":"[Verse] Night city lights","model_name":"chirp-v4-5","title":"Night City","tags":"synthwave","createTime":"2025-01-01 00:00:00","duration":198.44}}]}}}}"#
    );
    format!(
        "curl -sS -X POST http://{host}{PATH} -H 'Content-Type: application/json' \
         -H 'X-Webhook-Timestamp: {timestamp}' -H 'X-Webhook-Signature: {signature}' -d '{body}'"
    )
}
