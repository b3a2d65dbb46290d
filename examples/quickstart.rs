//! The quickstart receiver: an axum server answering Suno callbacks on
//! `/callbacks/suno`, printing one line per dispatched event.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! - `BIND_ADDR`: where to listen (default `127.0.0.1:3000`).
//! - `SUNO_WEBHOOK_HMAC_KEY`: the account's webhook HMAC key. When it is not set, a
//!   random key is generated and printed with a ready-to-paste `curl` command that
//!   sends a correctly signed callback.
//! - `RUST_LOG`: log filter (default `warn`), for example `suno_callback=info`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Router;
use suno_callback::SunoCallbacks;
use suno_callback::verify::{Clock, SystemClock, sign};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

const PATH: &str = "/callbacks/suno";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();

    let bind: SocketAddr = std::env::var("BIND_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
        .parse()?;
    let (key, generated) = match std::env::var("SUNO_WEBHOOK_HMAC_KEY") {
        Ok(key) if !key.is_empty() => (key, false),
        _ => (random_key()?, true),
    };

    let callbacks = SunoCallbacks::builder()
        .hmac_key(&key)
        .on_text(|ev| async move {
            println!("text      task={}", ev.task_id());
            Ok(())
        })
        .on_first(|ev| async move {
            let audio = ev.tracks().first().and_then(|t| t.stream_audio_url());
            println!(
                "first     task={} stream={}",
                ev.task_id(),
                audio.unwrap_or("-")
            );
            Ok(())
        })
        .on_complete(|ev| async move {
            let titles: Vec<&str> = ev.tracks().iter().filter_map(|t| t.title()).collect();
            let audio = ev.tracks().first().and_then(|t| t.audio_url());
            println!(
                "complete  task={} tracks={} titles={:?} audio={}",
                ev.task_id(),
                ev.tracks().len(),
                titles,
                audio.unwrap_or("-")
            );
            Ok(())
        })
        .on_failure(|ev| async move {
            println!(
                "failure   task={} code={} reason=\"{}\" msg={:?}",
                ev.task_id(),
                ev.code(),
                ev.reason(),
                ev.msg().unwrap_or("")
            );
            Ok(())
        })
        .fallback(|ev| async move {
            println!(
                "other     task={} callbackType={:?}",
                ev.task_id(),
                ev.stage().as_str()
            );
            Ok(())
        })
        .build()?;

    let app = Router::new().route_service(PATH, callbacks.service());
    let listener = TcpListener::bind(bind).await?;
    let local = listener.local_addr()?;
    println!("suno-callback quickstart listening on http://{local}{PATH}");
    if generated {
        println!("SUNO_WEBHOOK_HMAC_KEY is not set; generated a key for this run: {key}");
        println!("Send a signed `complete` callback (valid for 5 minutes):");
        println!("{}", curl_command(local, &key, &random_hex::<16>()?));
    }
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

/// 32 random bytes, hex encoded.
fn random_key() -> Result<String, getrandom::Error> {
    random_hex::<32>()
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
