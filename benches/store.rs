//! Dedup store cost: one claim and its completion (what a first delivery costs the
//! store), for `MemoryStore` and for `RedisStore` against the Redis at `REDIS_URL`
//! (default `redis://127.0.0.1:6379`), one at a time and 64 at once.
//!
//! ```text
//! cargo bench --features redis --bench store
//! ```
//!
//! Without a reachable Redis the Redis benchmarks are skipped with a message.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use suno_callback::store::{Claim, ClaimToken, DedupKey, DedupStore, MemoryStore, RedisStore};

const LEASE: Duration = Duration::from_secs(30);
const TTL: Duration = Duration::from_secs(600);
const CONCURRENT: u64 = 64;

fn next_key() -> DedupKey {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    DedupKey::new(
        format!("bench-{:016x}", NEXT.fetch_add(1, Ordering::Relaxed)),
        suno_callback::Family::Music,
        "complete",
        suno_callback::Outcome::Success,
    )
}

async fn claim_and_complete<S: DedupStore>(store: &S) {
    let key = next_key();
    let Ok(Claim::Acquired(token)) = store.claim(&key, LEASE).await else {
        panic!("a fresh key must be acquired")
    };
    store
        .complete(&key, token, TTL)
        .await
        .expect("the holder completes");
}

/// `CONCURRENT` claim+complete pairs at once, `iterations` times; the time per pair.
async fn concurrent_pairs<S: DedupStore>(store: &Arc<S>, iterations: u64) -> Duration {
    let started = Instant::now();
    for _ in 0..iterations {
        let pairs: Vec<_> = (0..CONCURRENT)
            .map(|_| {
                let store = Arc::clone(store);
                tokio::spawn(async move { claim_and_complete(&*store).await })
            })
            .collect();
        for pair in pairs {
            pair.await.expect("pair task");
        }
    }
    started.elapsed()
}

fn bench_store<S: DedupStore>(
    c: &mut Criterion,
    name: &str,
    runtime: &tokio::runtime::Runtime,
    store: S,
) {
    let store = Arc::new(store);
    let mut group = c.benchmark_group(format!("store/{name}"));
    group.throughput(Throughput::Elements(1));
    group.bench_function("claim_complete", |b| {
        b.to_async(runtime).iter(|| {
            let store = Arc::clone(&store);
            async move { claim_and_complete(&*store).await }
        })
    });
    group.throughput(Throughput::Elements(CONCURRENT));
    group.bench_function("claim_complete_64_concurrent", |b| {
        b.to_async(runtime)
            .iter_custom(|iterations| concurrent_pairs(&store, iterations))
    });
    group.finish();
}

fn stores(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    bench_store(c, "memory", &runtime, MemoryStore::new());

    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("suno-callback-bench:{}", ClaimToken::new_unique());
    let connected = runtime.block_on(
        RedisStore::builder(url.as_str())
            .key_prefix(prefix)
            .connect(),
    );
    match connected {
        Ok(store) => bench_store(c, "redis", &runtime, store),
        Err(error) => eprintln!("Redis benchmarks skipped: no Redis at {url}: {error}"),
    }
}

criterion_group!(benches, stores);
criterion_main!(benches);
