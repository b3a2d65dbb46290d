//! The cost of one callback through the whole pipeline, next to its floor: parsing,
//! the HMAC check and one store claim, each measured alone.
//!
//! ```text
//! cargo bench --bench pipeline
//! ```

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{HeaderMap, Request};
use http_body_util::Full;
use suno_callback::store::{Claim, DedupKey, DedupStore, MemoryStore};
use suno_callback::testing::Signer;
use suno_callback::verify::{Clock, HmacVerifier, SystemClock, VerifyRequest};
use suno_callback::{CallbackEvent, Family, Outcome, SunoCallbacks};
use tower::ServiceExt;

const KEY: &str = "bench-webhook-hmac-key";
const PATH: &str = "/callbacks/suno";

fn complete_body(task_id: &str) -> Bytes {
    let template = include_str!("../tests/fixtures/music/add_instrumental_complete.json");
    Bytes::from(template.replace("2fac7b1e4d5a4c3f8e9d0a1b2c3d9f72", task_id))
}

fn next_task_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("bench-{:016x}", NEXT.fetch_add(1, Ordering::Relaxed))
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

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .on_complete(|event| async move {
            black_box(event.tracks().len());
            Ok(())
        })
        .build()
        .expect("configuration");
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

/// The same two deliveries with a Prometheus recorder installed, so each one records
/// its metrics for real (the benchmarks above run with none: the `metrics` facade's
/// no-op). Runs last: a global recorder cannot be removed.
fn whole_pipeline_recorded(c: &mut Criterion) {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .on_complete(|event| async move {
            black_box(event.tracks().len());
            Ok(())
        })
        .build()
        .expect("configuration");
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

criterion_group!(benches, floor, whole_pipeline, whole_pipeline_recorded);
criterion_main!(benches);
