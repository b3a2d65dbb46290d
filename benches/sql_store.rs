//! The shared dedup stores side by side, in one run: `PostgresStore` (a schema of its
//! own in the database at `SUNO_CALLBACK_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`), `SqliteStore` (a file in a temporary
//! folder) and `RedisStore` (`REDIS_URL`, default `redis://127.0.0.1:6379`).
//!
//! For each store: a claim and its completion with fresh keys (one at a time, and 64
//! pairs at once), what a signed first delivery costs (binding and claim, then
//! completion) and what a signed duplicate costs (binding and claim of a done key).
//!
//! ```text
//! cargo bench --features sqlite,postgres,redis --bench sql_store -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! A store whose server cannot be reached is skipped with a message.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use suno_callback::inbox::sqlx::{self, Connection as _};
use suno_callback::store::{
    Claim, ClaimToken, DedupKey, DedupStore, PostgresStore, RedisStore, SignatureUse, SqliteStore,
};

const LEASE: Duration = Duration::from_secs(30);
const TTL: Duration = Duration::from_secs(600);
const CONCURRENT: u64 = 64;

fn next_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("bench-{:016x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn key_of(task: &str) -> DedupKey {
    DedupKey::new(
        task,
        suno_callback::Family::Music,
        "complete",
        suno_callback::Outcome::Success,
    )
}

fn signature_of(task: &str) -> SignatureUse {
    SignatureUse::new(task, "1769670760", "complete", false)
}

async fn claim_and_complete<S: DedupStore>(store: &S) {
    let key = key_of(&next_id());
    let Ok(Claim::Acquired(token)) = store.claim(&key, LEASE).await else {
        panic!("a fresh key must be acquired")
    };
    store
        .complete(&key, token, TTL)
        .await
        .expect("the holder completes");
}

/// A signed first delivery: binding and claim (one call), completion.
async fn first_delivery<S: DedupStore>(store: &S, task: &str) {
    let key = key_of(task);
    let (_, claim) = store
        .bind_and_claim(&signature_of(task), TTL, &key, LEASE)
        .await
        .expect("bind and claim");
    let Some(Claim::Acquired(token)) = claim else {
        panic!("a fresh key must be acquired, got {claim:?}")
    };
    store
        .complete(&key, token, TTL)
        .await
        .expect("the holder completes");
}

/// `CONCURRENT` claim+complete pairs at once, `iterations` times; the time in all.
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
    let mut group = c.benchmark_group(format!("sql_store/{name}"));
    group.throughput(Throughput::Elements(1));
    group.bench_function("claim_complete", |b| {
        b.to_async(runtime).iter(|| {
            let store = Arc::clone(&store);
            async move { claim_and_complete(&*store).await }
        })
    });
    group.bench_function("signed_first_delivery", |b| {
        b.to_async(runtime).iter(|| {
            let store = Arc::clone(&store);
            async move { first_delivery(&*store, &next_id()).await }
        })
    });
    let done = next_id();
    runtime.block_on(first_delivery(&*store, &done));
    group.bench_function("signed_duplicate", |b| {
        b.to_async(runtime).iter(|| {
            let (store, done) = (Arc::clone(&store), done.clone());
            async move {
                let (_, claim) = store
                    .bind_and_claim(&signature_of(&done), TTL, &key_of(&done), LEASE)
                    .await
                    .expect("bind and claim");
                assert_eq!(claim, Some(Claim::Done));
            }
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
    let run = ClaimToken::new_unique();

    let postgres_url = std::env::var("SUNO_CALLBACK_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("suno_store_bench_{run}");
    let created = runtime.block_on(async {
        let mut connection = sqlx::PgConnection::connect(&postgres_url).await?;
        sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut connection)
            .await
    });
    match created {
        Ok(_) => {
            let url = format!("{postgres_url}?options=-c%20search_path%3D{schema}");
            let store = runtime
                .block_on(PostgresStore::builder().max_connections(16).connect(&url))
                .expect("connect the PostgreSQL store");
            bench_store(c, "postgres", &runtime, store);
            let dropped = runtime.block_on(async {
                let mut connection = sqlx::PgConnection::connect(&postgres_url).await?;
                sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
                    .execute(&mut connection)
                    .await
            });
            if let Err(error) = dropped {
                eprintln!("could not drop the benchmark's schema {schema}: {error}");
            }
        }
        Err(error) => eprintln!("PostgreSQL benchmarks skipped: {postgres_url}: {error}"),
    }

    let folder = std::env::temp_dir().join(format!("suno-store-bench-{run}"));
    std::fs::create_dir_all(&folder).expect("temporary folder");
    let url = format!("sqlite://{}", folder.join("store.db").display());
    let store = runtime
        .block_on(SqliteStore::connect(&url))
        .expect("open the SQLite store");
    bench_store(c, "sqlite", &runtime, store);
    let _ = std::fs::remove_dir_all(&folder);

    let redis_url =
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let connected = runtime.block_on(
        RedisStore::builder(redis_url.as_str())
            .key_prefix(format!("suno-callback-bench:{run}"))
            .connect(),
    );
    match connected {
        Ok(store) => bench_store(c, "redis", &runtime, store),
        Err(error) => eprintln!("Redis benchmarks skipped: no Redis at {redis_url}: {error}"),
    }
}

criterion_group!(benches, stores);
criterion_main!(benches);
