//! The crate over loopback HTTP, next to a bare route and to the handler a careful user
//! writes by hand, in one run: an axum server with one worker thread pinned to CPU 0,
//! a load generator (16 kept-alive HTTP/1.1 connections) pinned to CPU 1, rounds of
//! interleaved phases, and the server's own CPU time per request (all its threads, from
//! `/proc/<pid>/task/*/schedstat`) beside the throughput.
//!
//! ```text
//! benches/loopback.sh                       # or: cargo bench --bench loopback
//! benches/loopback.sh --rounds 5 --seconds 1 --connections 16
//! ```
//!
//! Modes (the default one starts the other two, pinned with `taskset`):
//! - `serve`: the server; prints its address, stops when its stdin closes;
//! - `load ADDR PID [--only PHASE] [--warm-up S]`: the load and the report, against a
//!   running server;
//! - `profile PHASE N`: N requests of one phase through the routes in process, no
//!   network, for a profiler: `valgrind --tool=callgrind --collect-atstart=no
//!   --toggle-collect='*measured*' target/release/deps/loopback-* profile crate-first 20000`.

#[path = "../common/mod.rs"]
mod common;

use std::hint::black_box;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use suno_callback::verify::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};

use common::{KEY, Naive, complete_template, receiver};

/// What one phase sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// A fresh signed callback to the bare route.
    Bare,
    /// A fresh signed callback to the naive handler.
    NaiveFirst,
    /// A fresh signed callback to the crate.
    CrateFirst,
    /// The same signed callback again and again to the naive handler.
    NaiveDuplicate,
    /// The same signed callback again and again to the crate.
    CrateDuplicate,
}

impl Phase {
    const ALL: [Self; 5] = [
        Self::Bare,
        Self::NaiveFirst,
        Self::CrateFirst,
        Self::NaiveDuplicate,
        Self::CrateDuplicate,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Bare => "bare",
            Self::NaiveFirst => "naive-first",
            Self::CrateFirst => "crate-first",
            Self::NaiveDuplicate => "naive-duplicate",
            Self::CrateDuplicate => "crate-duplicate",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Bare => "/bare",
            Self::NaiveFirst | Self::NaiveDuplicate => "/naive",
            Self::CrateFirst | Self::CrateDuplicate => "/crate",
        }
    }
}

struct Options {
    rounds: usize,
    seconds: f64,
    connections: usize,
    warm_up: Option<f64>,
    only: Option<Phase>,
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(),
        Some("load") => {
            let addr: SocketAddr = args
                .get(1)
                .and_then(|a| a.parse().ok())
                .expect("load ADDR PID");
            let pid: u32 = args
                .get(2)
                .and_then(|p| p.parse().ok())
                .expect("load ADDR PID");
            load(addr, pid, &options(&args[3..]));
        }
        Some("profile") => {
            let phase = args
                .get(1)
                .and_then(|name| Phase::ALL.into_iter().find(|p| p.name() == name))
                .expect("profile PHASE N");
            let count = args
                .get(2)
                .and_then(|n| n.parse().ok())
                .expect("profile PHASE N");
            profile(phase, count);
        }
        _ => orchestrate(&args),
    }
}

fn options(args: &[String]) -> Options {
    let mut options = Options {
        rounds: 5,
        seconds: 1.0,
        connections: 16,
        warm_up: None,
        only: None,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().map(String::as_str).unwrap_or_default();
        match flag.as_str() {
            "--rounds" => options.rounds = value.parse().expect("--rounds N"),
            "--seconds" => options.seconds = value.parse().expect("--seconds S"),
            "--connections" => options.connections = value.parse().expect("--connections C"),
            "--warm-up" => options.warm_up = Some(value.parse().expect("--warm-up S")),
            "--only" => {
                options.only = Some(
                    Phase::ALL
                        .into_iter()
                        .find(|phase| phase.name() == value)
                        .expect(
                            "--only bare|naive-first|crate-first|naive-duplicate|crate-duplicate",
                        ),
                );
            }
            other => panic!("unknown option {other}"),
        }
    }
    options
}

/// Starts the server on CPU 0 and the load on CPU 1 (unpinned if `taskset` is missing).
fn orchestrate(args: &[String]) {
    let exe = std::env::current_exe().expect("own path");
    let pinned = Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let command = |cpu: &str| {
        if pinned {
            let mut command = Command::new("taskset");
            command.args(["-c", cpu]).arg(&exe);
            command
        } else {
            Command::new(&exe)
        }
    };
    if !pinned {
        eprintln!("taskset not found: server and load are not pinned");
    }
    let mut server = command("0")
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("server stdout"))
        .read_line(&mut line)
        .expect("server address");
    let addr = line.trim().to_owned();
    let status = command("1")
        .arg("load")
        .arg(&addr)
        .arg(server.id().to_string())
        .args(args)
        .status()
        .expect("start the load");
    // Closing its stdin stops the server.
    drop(server.stdin.take());
    let _ = server.wait();
    std::process::exit(status.code().unwrap_or(1));
}

/// The three routes, as the server mounts them.
fn app() -> Router {
    let naive = Arc::new(Naive::new(KEY));
    Router::new()
        .route(
            "/bare",
            post(|body: Bytes| async move {
                black_box(body.len());
                StatusCode::OK
            }),
        )
        .route(
            "/naive",
            post(move |headers: HeaderMap, body: Bytes| {
                let naive = Arc::clone(&naive);
                async move {
                    let (status, json) = naive.handle(&headers, &body);
                    (status, [(CONTENT_TYPE, "application/json")], json)
                }
            }),
        )
        .route_service("/crate", receiver().service())
}

/// `count` requests of one phase through the routes, in process, one at a time. The
/// requests are made before the runtime starts, so that a profiler collecting inside
/// `measured` sees only the routes (and the runtime running their tasks).
fn profile(phase: Phase, count: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let app = app();
    let requests = Requests::new(phase);
    let batch: Vec<_> = (0..count).map(|_| requests.next()).collect();
    if matches!(phase, Phase::NaiveDuplicate | Phase::CrateDuplicate) {
        runtime.block_on(run_all(&app, vec![requests.next()]));
    }
    measured(&runtime, &app, batch);
}

/// The part a profiler collects (`--toggle-collect='*measured*'`).
#[inline(never)]
fn measured(runtime: &tokio::runtime::Runtime, app: &Router, batch: Vec<Request<Full<Bytes>>>) {
    runtime.block_on(run_all(app, batch));
}

#[inline(never)]
async fn run_all(app: &Router, requests: Vec<Request<Full<Bytes>>>) {
    use tower::ServiceExt as _;
    for request in requests {
        let response = app
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|e| match e {});
        assert_eq!(response.status(), StatusCode::OK);
        black_box(response.into_body().collect().await.ok());
    }
}

/// The three routes in one axum server with one worker thread.
fn serve() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    runtime.block_on(async {
        let app = app();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("{}", listener.local_addr().expect("address"));
        axum::serve(listener, app).await.expect("serve");
    });
}

/// The server's CPU time so far, all threads, in nanoseconds.
fn server_cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

struct Measured {
    requests: u64,
    errors: u64,
    per_second: f64,
    cpu_us_per_request: f64,
}

fn load(addr: SocketAddr, pid: u32, options: &Options) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut senders = Vec::with_capacity(options.connections);
        for _ in 0..options.connections {
            senders.push(connect(addr).await);
        }
        let phases: Vec<Phase> = match options.only {
            Some(phase) => vec![phase],
            None => Phase::ALL.to_vec(),
        };
        // Primes the duplicates, then warms up every phase once.
        for &phase in phases
            .iter()
            .filter(|p| matches!(p, Phase::NaiveDuplicate | Phase::CrateDuplicate))
        {
            let request = Requests::new(phase).next();
            let status = senders[0]
                .send_request(request)
                .await
                .expect("prime")
                .status();
            assert_eq!(status, StatusCode::OK, "priming {}", phase.name());
        }
        let warm_up = options.warm_up.unwrap_or(options.seconds / 4.0);
        if warm_up > 0.0 {
            for &phase in &phases {
                run_phase(&mut senders, phase, warm_up, pid).await;
            }
        }
        let mut results: Vec<Vec<Measured>> = phases.iter().map(|_| Vec::new()).collect();
        println!(
            "{:<16} {:>5} {:>9} {:>7} {:>12} {:>14}",
            "phase", "round", "requests", "errors", "requests/s", "server µs/req"
        );
        for round in 1..=options.rounds {
            for (index, &phase) in phases.iter().enumerate() {
                let measured = run_phase(&mut senders, phase, options.seconds, pid).await;
                println!(
                    "{:<16} {:>5} {:>9} {:>7} {:>12.0} {:>14.2}",
                    phase.name(),
                    round,
                    measured.requests,
                    measured.errors,
                    measured.per_second,
                    measured.cpu_us_per_request
                );
                results[index].push(measured);
            }
        }
        report(&phases, &results);
    });
}

async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    sender
}

/// The requests of one phase: fresh signed callbacks, or one callback repeated.
struct Requests {
    phase: Phase,
    timestamp: String,
    template: (&'static str, &'static str),
}

/// A task id never sent before in this run.
fn fresh_task_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("load-{:016x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

impl Requests {
    fn new(phase: Phase) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        Self {
            phase,
            timestamp: now.to_string(),
            template: complete_template(),
        }
    }

    fn next(&self) -> Request<Full<Bytes>> {
        let task_id = match self.phase {
            Phase::NaiveDuplicate => "load-duplicate-naive".to_owned(),
            Phase::CrateDuplicate => "load-duplicate-crate".to_owned(),
            _ => fresh_task_id(),
        };
        let (before, after) = self.template;
        let body = [before, &task_id, after].concat();
        Request::post(self.phase.path())
            .header(HOST, "127.0.0.1")
            .header(CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, &self.timestamp)
            .header(
                SIGNATURE_HEADER,
                sign(KEY.as_bytes(), &task_id, &self.timestamp),
            )
            .body(Full::new(Bytes::from(body)))
            .expect("request")
    }
}

/// Runs one phase for `seconds` on every connection; the server's CPU time is read
/// before the first request and after the last answer.
async fn run_phase(
    senders: &mut Vec<SendRequest<Full<Bytes>>>,
    phase: Phase,
    seconds: f64,
    pid: u32,
) -> Measured {
    let requests = Arc::new(Requests::new(phase));
    let cpu_before = server_cpu_ns(pid);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::with_capacity(senders.len());
    for mut sender in senders.drain(..) {
        let requests = Arc::clone(&requests);
        tasks.push(tokio::spawn(async move {
            let (mut done, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                if sender.ready().await.is_err() {
                    break;
                }
                match sender.send_request(requests.next()).await {
                    Ok(response) => {
                        let ok = response.status() == StatusCode::OK;
                        let read = response.into_body().collect().await.is_ok();
                        done += 1;
                        errors += u64::from(!(ok && read));
                    }
                    Err(_) => errors += 1,
                }
            }
            (sender, done, errors)
        }));
    }
    let (mut done, mut errors) = (0, 0);
    for task in tasks {
        let (sender, d, e) = task.await.expect("connection task");
        senders.push(sender);
        done += d;
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = server_cpu_ns(pid).saturating_sub(cpu_before);
    Measured {
        requests: done,
        errors,
        per_second: done as f64 / elapsed,
        cpu_us_per_request: cpu as f64 / 1000.0 / done.max(1) as f64,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

fn report(phases: &[Phase], results: &[Vec<Measured>]) {
    let cpu = |phase: Phase| {
        phases
            .iter()
            .position(|&p| p == phase)
            .map(|i| median(results[i].iter().map(|m| m.cpu_us_per_request).collect()))
    };
    println!();
    println!("medians of {} rounds:", results.first().map_or(0, Vec::len));
    println!(
        "{:<16} {:>12} {:>14}",
        "phase", "requests/s", "server µs/req"
    );
    for (index, phase) in phases.iter().enumerate() {
        let rate = median(results[index].iter().map(|m| m.per_second).collect());
        let errors: u64 = results[index].iter().map(|m| m.errors).sum();
        let cpu = median(
            results[index]
                .iter()
                .map(|m| m.cpu_us_per_request)
                .collect(),
        );
        let note = if errors > 0 {
            format!("  ({errors} answers not 200)")
        } else {
            String::new()
        };
        println!("{:<16} {:>12.0} {:>14.2}{note}", phase.name(), rate, cpu);
    }
    let (bare, naive, first, duplicate) = (
        cpu(Phase::Bare),
        cpu(Phase::NaiveFirst),
        cpu(Phase::CrateFirst),
        cpu(Phase::CrateDuplicate),
    );
    println!();
    if let (Some(bare), Some(naive), Some(first)) = (bare, naive, first) {
        println!(
            "server CPU per first delivery, bare / naive / crate: {bare:.1} / {naive:.1} / {first:.1} µs (goal: crate ≤ {:.1} µs)",
            bare * 1.25
        );
        println!(
            "crate / bare route (CPU per request):     {:.2} (goal ≤ 1.25)",
            first / bare
        );
        println!(
            "crate / naive handler (CPU per request):  {:.2} (goal ≤ 0.67)",
            first / naive
        );
    }
    if let (Some(first), Some(duplicate)) = (first, duplicate) {
        println!(
            "crate, duplicate / first delivery (CPU):  {:.2} (goal ≤ 0.60)",
            duplicate / first
        );
    }
    if let (Some(naive), Some(naive_duplicate)) = (naive, cpu(Phase::NaiveDuplicate)) {
        println!(
            "naive, duplicate / first delivery (CPU):  {:.2}",
            naive_duplicate / naive
        );
    }
}
