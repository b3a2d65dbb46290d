//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
pub use suno_callback::testing::Signer;
use tower::{Service, ServiceExt};

pub mod redis;

pub const KEY: &str = "test-webhook-hmac-key";
pub const PATH: &str = "/callbacks/suno";

/// A fixture file from `tests/fixtures/`.
pub fn fixture(relative: &str) -> Bytes {
    let path = format!("{}/tests/fixtures/{relative}", env!("CARGO_MANIFEST_DIR"));
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}")))
}

/// Every fixture under `tests/fixtures/<dir>/`, as (file name, body), sorted.
pub fn fixtures_in(dir: &str) -> Vec<(String, Bytes)> {
    let path = format!("{}/tests/fixtures/{dir}", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("list {path}: {e}"))
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let body = fixture(&format!("{dir}/{name}"));
            (name, body)
        })
        .collect()
}

pub fn signer() -> Signer {
    Signer::new(KEY)
}

/// A signed request for `body`, timestamped within the last 25 minutes, each call a
/// second before the last: every call carries a signature of its own, as the sender's
/// stages, seconds apart, do. (Two stages of a task signed in the same second share a
/// signature, and the second is refused as a reused signature.)
pub fn signed(body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    signed_to(PATH, body)
}

/// A request to `path` signed like [`signed`]: each with its own timestamp, as the
/// sender signs each callback, so no two share a signature.
pub fn signed_to(path: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    signed_with(&signer(), path, body)
}

/// A request to `path` signed by `signer` with a timestamp of its own (see [`signed`]).
pub fn signed_with(
    signer: &suno_callback::testing::Signer,
    path: &str,
    body: impl Into<Bytes>,
) -> Request<Full<Bytes>> {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicI64, Ordering};
    static EARLIER: AtomicI64 = AtomicI64::new(0);
    // One base for the whole test binary: with `now` read at each call, a clock tick
    // between two calls gave both the same timestamp, so the same signature.
    static BASE: OnceLock<i64> = OnceLock::new();
    let base = *BASE.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs() as i64
    });
    // Up to 25 minutes back: inside the default 30-minute tolerance, and enough
    // distinct timestamps that a storm of a few hundred callbacks never repeats one.
    let earlier = EARLIER.fetch_add(1, Ordering::Relaxed) % 1500;
    signer.request_at(path, body, base - earlier)
}

/// A minimal music callback body: this `callbackType` and `code`, no tracks.
pub fn callback_body(task_id: &str, callback_type: &str, code: u16) -> String {
    suno_callback::testing::MusicCallback::new(task_id, callback_type)
        .with_code(code.into())
        .to_json_string()
}

/// What a response said: status, headers and the JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: serde_json::Value,
}

impl Answer {
    pub async fn from_response<B>(response: Response<B>) -> Self
    where
        B: Body,
        B::Error: std::fmt::Debug,
    {
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
        });
        Self {
            status: parts.status,
            headers: parts.headers,
            json,
        }
    }

    /// The body's `status` field.
    pub fn label(&self) -> &str {
        self.json["status"].as_str().unwrap_or("<none>")
    }

    /// Asserts the status code and the body's `status`.
    #[track_caller]
    pub fn expect(&self, status: u16, label: &str) {
        assert_eq!(
            (self.status.as_u16(), self.label()),
            (status, label),
            "answer: {:?}",
            self.json
        );
    }
}

/// Sends one request through a service with `oneshot`.
pub async fn send<S, B, ResBody>(service: S, request: Request<B>) -> Answer
where
    S: Service<Request<B>, Response = Response<ResBody>, Error = Infallible>,
    ResBody: Body,
    ResBody::Error: std::fmt::Debug,
{
    let response = service
        .oneshot(request)
        .await
        .unwrap_or_else(|e| match e {});
    Answer::from_response(response).await
}

/// Counts handler runs.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    pub fn bump(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Real HTTP: posts `request` to `addr` over a new loopback connection.
pub async fn http_send(addr: std::net::SocketAddr, request: Request<Full<Bytes>>) -> Answer {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let (mut parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    parts.uri = format!("http://{addr}{path}").parse().expect("uri");
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client
        .request(Request::from_parts(parts, body))
        .await
        .expect("HTTP request");
    Answer::from_response(response).await
}

/// Real HTTP over a raw TCP connection, so header names go on the wire exactly as
/// written. Returns the status code and the body.
pub async fn raw_http(addr: std::net::SocketAddr, request_text: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(request_text.as_bytes())
        .await
        .expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The path of a built example. `cargo test` builds examples before running tests;
/// when this binary was built alone (as some runners do), the example is built here.
pub fn example_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>");
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--all-features", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building example {name} failed");
    }
    path
}

/// A running example: its address and the lines it prints.
pub struct RunningExample {
    pub child: tokio::process::Child,
    pub lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    pub addr: std::net::SocketAddr,
    /// The lines printed before "listening on".
    pub startup: Vec<String>,
}

impl RunningExample {
    /// Starts an example on an ephemeral loopback port with the given environment and
    /// waits for its "listening on http://ADDR/..." line. The example dedupes in
    /// memory unless `env` gives it a `REDIS_URL` or `DATABASE_URL`: one inherited
    /// from the test's environment would share state between test runs.
    pub async fn start(name: &str, env: &[(&str, &str)], remove: &[&str]) -> Self {
        Self::start_with_args(name, &[], env, remove).await
    }

    /// [`start`](Self::start) with command-line arguments (`serve` for the inbox).
    pub async fn start_with_args(
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
        remove: &[&str],
    ) -> Self {
        use tokio::io::AsyncBufReadExt;
        let mut command = tokio::process::Command::new(example_binary(name));
        command
            .args(args)
            .env("BIND_ADDR", "127.0.0.1:0")
            .env_remove("REDIS_URL")
            .env_remove("REDIS_KEY_PREFIX")
            .env_remove("DATABASE_URL")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        for key in remove {
            command.env_remove(key);
        }
        let mut child = command.spawn().expect("start example");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let mut startup = Vec::new();
        let addr = loop {
            let line = next_line(&mut lines).await;
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let authority = rest.split('/').next().expect("authority");
                break authority.parse().expect("socket address");
            }
            startup.push(line);
        };
        Self {
            child,
            lines,
            addr,
            startup,
        }
    }

    /// The next line the example prints (fails after 30 s).
    pub async fn next_line(&mut self) -> String {
        next_line(&mut self.lines).await
    }
}

async fn next_line(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("the example printed a line in time")
        .expect("read stdout")
        .expect("the example is still running")
}

/// A test of a `libtest-mimic` runner, on a multi-threaded tokio runtime of its own.
pub fn trial<F, Fut>(name: &str, test: F) -> libtest_mimic::Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    libtest_mimic::Trial::test(name, move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|error| libtest_mimic::Failed::from(error.to_string()))?;
        runtime.block_on(test());
        Ok(())
    })
}

/// Two copies of the quickstart started with `env` say they use `store` and behave as
/// one receiver: a callback processed by one is a duplicate on the other, both ways.
pub async fn two_quickstarts_are_one_receiver(env: &[(&str, &str)], store: &str) {
    let mut a = RunningExample::start("quickstart", env, &[]).await;
    let mut b = RunningExample::start("quickstart", env, &[]).await;
    let said = format!("dedup store {store}");
    for copy in [&a, &b] {
        assert!(
            copy.startup.iter().any(|line| line.contains(&said)),
            "the quickstart says it uses {store}: {:?}",
            copy.startup
        );
    }
    let complete = suno_callback::testing::MusicCallback::complete("two-copies").body();
    http_send(a.addr, signed(complete.clone()))
        .await
        .expect(200, "processed");
    assert!(
        a.next_line()
            .await
            .starts_with("music complete task=two-copies")
    );
    http_send(b.addr, signed(complete))
        .await
        .expect(200, "duplicate");
    let text = suno_callback::testing::MusicCallback::text("two-copies").body();
    http_send(b.addr, signed(text.clone()))
        .await
        .expect(200, "processed");
    assert!(
        b.next_line()
            .await
            .starts_with("music text task=two-copies")
    );
    http_send(a.addr, signed(text))
        .await
        .expect(200, "duplicate");
}
