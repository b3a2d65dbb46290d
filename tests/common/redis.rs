//! The Redis side of the tests: where the server is, whether it answers, and key
//! prefixes no other test or run uses.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use suno_callback::store::ClaimToken;

/// Set to `1` (as CI does), a missing Redis server fails the run instead of skipping.
pub const REQUIRE_REDIS: &str = "SUNO_CALLBACK_REQUIRE_REDIS";

/// The server the tests use: `REDIS_URL`, default `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Whether a missing Redis server is a failure (`SUNO_CALLBACK_REQUIRE_REDIS=1`).
pub fn redis_required() -> bool {
    std::env::var(REQUIRE_REDIS).is_ok_and(|value| value == "1")
}

/// A key prefix no other test or run uses, under `suno-callback-test:{scope}:`.
pub fn unique_prefix(scope: &str) -> String {
    format!("suno-callback-test:{scope}:{}", ClaimToken::new_unique())
}

/// `host:port` of a `redis://` URL, without credentials or database.
pub fn authority(url: &str) -> Option<&str> {
    url.split("://")
        .nth(1)
        .map(|rest| rest.rsplit('@').next().unwrap_or(rest))
        .and_then(|rest| rest.split('/').next())
}

/// Whether a Redis server answers `PING` at `url` (host and port only).
pub fn answers_ping(url: &str) -> bool {
    let Some(authority) = authority(url) else {
        return false;
    };
    let Ok(mut stream) = TcpStream::connect(authority) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut reply = String::new();
    stream.write_all(b"PING\r\n").is_ok()
        && BufReader::new(stream).read_line(&mut reply).is_ok()
        && (reply.starts_with("+PONG") || reply.starts_with("-NOAUTH"))
}
