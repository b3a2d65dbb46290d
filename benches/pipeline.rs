//! The cost of one callback through the whole pipeline, next to its floor (parsing,
//! the HMAC check and one store claim, each measured alone) and next to the handler a
//! careful user writes by hand (`benches/common`). Prints the ratios at the end.
//!
//! ```text
//! cargo bench --bench pipeline
//! ```

mod common;

use std::fs;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use criterion::{BatchSize, Criterion};
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full};
use suno_callback::store::{Claim, DedupKey, DedupStore, MemoryStore};
use suno_callback::testing::Signer;
use suno_callback::verify::{Clock, HmacVerifier, SystemClock, VerifyRequest};
use suno_callback::{CallbackEvent, Family, Outcome, SunoCallbacks};
use tower::ServiceExt;

use common::{KEY, Naive, complete_body, receiver};

const PATH: &str = "/callbacks/suno";

fn next_task_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("bench-{:016x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn floor(c: &mut Criterion) {
    let body = complete_body("2fac7b1e4d5a4c3f8e9d0a1b2c3d9f72");
    c.bench_function("floor/parse_complete_2_tracks", |b| {
        b.iter(|| CallbackEvent::from_json(black_box(body.clone())))
    });

    let verifier = HmacVerifier::new([KEY]).expect("key");
    let mut headers = HeaderMap::new();
    let now = SystemClock.unix_seconds();
    for (name, value) in Signer::new(KEY).headers_at("2fac7b1e4d5a4c3f8e9d0a1b2c3d9f72", now) {
        headers.insert(name, value);
    }
    c.bench_function("floor/hmac_verify", |b| {
        b.iter(|| {
            let request =
                VerifyRequest::new(&headers, "2fac7b1e4d5a4c3f8e9d0a1b2c3d9f72", "complete");
            verifier.check(black_box(&request))
        })
    });

    let runtime = runtime();
    // Claims with a 1 ms lease: the bench makes millions of claims and never settles
    // them, and a store full of live claims refuses new ones.
    let store = MemoryStore::new();
    c.bench_function("floor/memory_store_claim", |b| {
        b.to_async(&runtime).iter_batched(
            || DedupKey::new(next_task_id(), Family::Music, "complete", Outcome::Success),
            |key| {
                let store = store.clone();
                async move {
                    let claimed = store.claim(&key, Duration::from_millis(1)).await;
                    assert!(matches!(claimed, Ok(Claim::Acquired(_))));
                }
            },
            BatchSize::SmallInput,
        )
    });
}

fn whole_pipeline(c: &mut Criterion) {
    let runtime = runtime();
    let callbacks = receiver();
    let signer = Signer::new(KEY);

    c.bench_function("pipeline/first_delivery", |b| {
        b.to_async(&runtime).iter_batched(
            || signer.request(PATH, complete_body(&next_task_id())),
            |request| deliver(&callbacks, request),
            BatchSize::SmallInput,
        )
    });

    let duplicate_body = complete_body("bench-duplicate");
    runtime.block_on(deliver(
        &callbacks,
        signer.request(PATH, duplicate_body.clone()),
    ));
    c.bench_function("pipeline/duplicate", |b| {
        b.to_async(&runtime).iter_batched(
            || signer.request(PATH, duplicate_body.clone()),
            |request| deliver(&callbacks, request),
            BatchSize::SmallInput,
        )
    });
}

/// One request through the service, answered 200.
async fn deliver(callbacks: &SunoCallbacks, request: Request<Full<Bytes>>) {
    let response = callbacks
        .service()
        .oneshot(request)
        .await
        .unwrap_or_else(|e| match e {});
    assert_eq!(response.status(), 200);
}

fn naive_handler(c: &mut Criterion) {
    let runtime = runtime();
    let naive = Naive::new(KEY);
    let signer = Signer::new(KEY);

    c.bench_function("naive/first_delivery", |b| {
        b.to_async(&runtime).iter_batched(
            || signer.request(PATH, complete_body(&next_task_id())),
            |request| deliver_naive(&naive, request),
            BatchSize::SmallInput,
        )
    });

    let duplicate_body = complete_body("bench-duplicate");
    runtime.block_on(deliver_naive(
        &naive,
        signer.request(PATH, duplicate_body.clone()),
    ));
    c.bench_function("naive/duplicate", |b| {
        b.to_async(&runtime).iter_batched(
            || signer.request(PATH, duplicate_body.clone()),
            |request| deliver_naive(&naive, request),
            BatchSize::SmallInput,
        )
    });
}

/// One request through the naive handler: the body read as a framework reads it, the
/// handler, its answer made a response.
async fn deliver_naive(naive: &Naive, request: Request<Full<Bytes>>) {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .unwrap_or_else(|e| match e {})
        .to_bytes();
    let (status, json) = naive.handle(&parts.headers, &body);
    let response = Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(json)))
        .expect("response");
    assert_eq!(black_box(response).status(), 200);
}

/// The same two deliveries with a Prometheus recorder installed, so each one records
/// its metrics for real (the benchmarks above run with none: the `metrics` facade's
/// no-op). Runs last: a global recorder cannot be removed.
fn whole_pipeline_recorded(c: &mut Criterion) {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        return;
    }
    let runtime = runtime();
    let callbacks = receiver();
    let signer = Signer::new(KEY);
    c.bench_function("recorded/first_delivery", |b| {
        b.to_async(&runtime).iter_batched(
            || signer.request(PATH, complete_body(&next_task_id())),
            |request| deliver(&callbacks, request),
            BatchSize::SmallInput,
        )
    });
    let duplicate_body = complete_body("bench-recorded-duplicate");
    runtime.block_on(deliver(
        &callbacks,
        signer.request(PATH, duplicate_body.clone()),
    ));
    c.bench_function("recorded/duplicate", |b| {
        b.to_async(&runtime).iter_batched(
            || signer.request(PATH, duplicate_body.clone()),
            |request| deliver(&callbacks, request),
            BatchSize::SmallInput,
        )
    });
    assert!(handle.render().contains("suno_callback_requests_total"));
}

/// The envelope read by the crate's hand-written pass and by the serde-derived
/// definition of the same envelope (`suno_callback::testing::read_envelope`), on a
/// classic music callback and a jobs-route one: `cargo bench --bench pipeline --
/// envelope/`.
fn envelope(c: &mut Criterion) {
    use suno_callback::testing::{EnvelopeReader, read_envelope};
    let fixture = |path: &str| {
        fs::read(format!(
            "{}/tests/fixtures/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect(path)
    };
    let bodies = [
        (
            "classic_2_tracks",
            fixture("music/add_instrumental_complete.json"),
        ),
        (
            "jobs_2_tracks",
            fixture("market/music_generate_success.json"),
        ),
        ("classic_wav", fixture("wav/success.json")),
    ];
    for (name, body) in &bodies {
        for (label, reader) in [
            ("scan", EnvelopeReader::Scan),
            ("serde", EnvelopeReader::Serde),
        ] {
            c.bench_function(&format!("envelope/{label}/{name}"), |b| {
                b.iter(|| read_envelope(reader, black_box(body)))
            });
        }
    }
}

fn main() {
    let started = SystemTime::now();
    let mut c = Criterion::default().configure_from_args();
    envelope(&mut c);
    floor(&mut c);
    whole_pipeline(&mut c);
    naive_handler(&mut c);
    whole_pipeline_recorded(&mut c);
    c.final_summary();
    print_ratios(started);
}

/// Where criterion writes its results, found the way criterion finds it.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    target.join("criterion")
}

/// The median of a benchmark measured by this run, in nanoseconds.
fn median_ns(id: &str, since: SystemTime) -> Option<f64> {
    // Criterion names a benchmark's folder after its id, with `/` made `_`.
    let path = criterion_dir()
        .join(id.replace('/', "_"))
        .join("new")
        .join("estimates.json");
    let fresh = fs::metadata(&path)
        .and_then(|meta| meta.modified())
        .is_ok_and(|modified| modified >= since);
    if !fresh {
        return None;
    }
    let estimates: serde_json::Value = serde_json::from_slice(&fs::read(&path).ok()?).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

fn print_ratios(since: SystemTime) {
    let m = |id| median_ns(id, since);
    let floor = match (
        m("floor/parse_complete_2_tracks"),
        m("floor/hmac_verify"),
        m("floor/memory_store_claim"),
    ) {
        (Some(parse), Some(hmac), Some(claim)) => Some(parse + hmac + claim),
        _ => None,
    };
    let rows = [
        (
            "crate / naive handler (first delivery)",
            m("pipeline/first_delivery"),
            m("naive/first_delivery"),
            0.80,
        ),
        (
            "crate, duplicate / first delivery",
            m("pipeline/duplicate"),
            m("pipeline/first_delivery"),
            0.50,
        ),
        (
            "crate / floor (parse + HMAC + one claim)",
            m("pipeline/first_delivery"),
            floor,
            1.5,
        ),
        (
            "crate duplicate / naive duplicate",
            m("pipeline/duplicate"),
            m("naive/duplicate"),
            f64::NAN,
        ),
    ];
    println!();
    println!("in process, medians of this run:");
    for (id, label) in [
        ("pipeline/first_delivery", "crate, first delivery"),
        ("pipeline/duplicate", "crate, duplicate"),
        ("naive/first_delivery", "naive, first delivery"),
        ("naive/duplicate", "naive, duplicate"),
    ] {
        if let Some(ns) = m(id) {
            println!("  {label:<44} {:>8.2} µs", ns / 1000.0);
        }
    }
    if let Some(ns) = floor {
        println!(
            "  {:<44} {:>8.2} µs",
            "floor (parse + HMAC + one claim)",
            ns / 1000.0
        );
    }
    for (label, numerator, denominator, goal) in rows {
        if let (Some(n), Some(d)) = (numerator, denominator) {
            let goal = if goal.is_nan() {
                String::new()
            } else {
                format!("  (goal ≤ {goal:.2})")
            };
            println!("  {label:<44} {:>8.2}{goal}", n / d);
        }
    }
}
