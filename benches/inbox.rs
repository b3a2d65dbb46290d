//! The inbox's intake over loopback HTTP, beside the same database's plain
//! `INSERT … ON CONFLICT DO NOTHING` of the same rows at the same concurrency, in one
//! run: accepted callbacks per second and answer latency (p50, p99).
//!
//! ```text
//! cargo bench --bench inbox --features sqlite,postgres
//! BENCH_REQUESTS=5000 BENCH_CONCURRENCY=32 cargo bench --bench inbox --features sqlite,postgres
//! ```
//!
//! SQLite runs on a file in a temporary folder (WAL, `synchronous=FULL`); PostgreSQL on
//! `SUNO_CALLBACK_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`), in
//! a schema of its own that is dropped afterwards (skipped when no server answers).
//! No workers run while the callbacks are sent: that measures what the sender waits
//! for. Then the workers (`BENCH_WORKERS`, default 32) run every stored event with a
//! no-op handler: events processed per second. `BENCH_PREFILL_DONE=1000000` stores that
//! many done events first, to compare the rates with a grown table.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use suno_callback::SunoCallbacks;
use suno_callback::inbox::Inbox;
use suno_callback::inbox::sqlx::{self, Connection as _};
use suno_callback::store::ClaimToken;
use suno_callback::testing::Signer;

const KEY: &str = "bench-webhook-hmac-key";
const PATH: &str = "/callbacks/suno";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn complete_body(task_id: &str) -> Bytes {
    let template = include_str!("../tests/fixtures/music/add_instrumental_complete.json");
    Bytes::from(template.replace("2fac7b1e4d5a4c3f8e9d0a1b2c3d9f72", task_id))
}

/// How many done events are in the table before the run (`BENCH_PREFILL_DONE`,
/// default 0): the intake and processing rates with a table that has grown.
fn prefill_done() -> u64 {
    env_usize("BENCH_PREFILL_DONE", 0) as u64
}

/// Fills the inbox's table with `rows` done events received over the last 14 days, in
/// one statement, then refreshes the planner's statistics (as autovacuum would).
async fn prefill<C>(connection: &mut C, postgres: bool, rows: u64)
where
    for<'c> &'c mut C: sqlx::Executor<'c>,
{
    if rows == 0 {
        return;
    }
    let started = Instant::now();
    let now = now_ms();
    let span: i64 = 14 * 86_400_000;
    let json = r#"'{"code":200,"msg":"All generated successfully.","data":{"callbackType":"complete","task_id":"prefill-' || i || '","data":[{"id":"a","title":"Night drive","audio_url":"https://cdn.example/a.mp3","duration":182.4}]}}'"#;
    let values = |body: String| {
        format!(
            "'prefill-' || i, 'music', 'complete', 'success', {body}, 'done', 1, \
             {now} - {span} + i * {span} / {rows}, {now} - {span} + i * {span} / {rows}, \
             {now} - {span} + i * {span} / {rows} + 900"
        )
    };
    let columns = "task_id, family, stage, outcome, body, state, attempts, received_at, \
                   run_after, finished_at";
    let sql = if postgres {
        format!(
            "INSERT INTO suno_inbox_events ({columns}) SELECT {} \
             FROM generate_series(1::bigint, {rows}::bigint) AS i",
            values(format!("convert_to({json}, 'UTF8')"))
        )
    } else {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
             INSERT INTO suno_inbox_events ({columns}) SELECT {} FROM n; ANALYZE;",
            values(format!("CAST({json} AS BLOB)"))
        )
    };
    sqlx::raw_sql(&sql)
        .execute(&mut *connection)
        .await
        .expect("prefill");
    if postgres {
        // Not in the insert's statement: VACUUM cannot run in a transaction.
        sqlx::raw_sql("VACUUM ANALYZE suno_inbox_events")
            .execute(&mut *connection)
            .await
            .expect("vacuum");
    }
    println!(
        "  {rows} done events stored first, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// How many events the workers run at once (`BENCH_WORKERS`, default 32).
fn workers() -> usize {
    env_usize("BENCH_WORKERS", 32).max(1)
}

/// Rate and latency percentiles of one run.
struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

fn figures(mut latencies: Vec<Duration>, elapsed: Duration) -> Figures {
    latencies.sort();
    let at = |q: f64| {
        let index = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(index).copied().unwrap_or_default()
    };
    Figures {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// Runs `count` jobs on `concurrency` tasks; each job's latency is measured.
async fn drive<F, Fut>(count: usize, concurrency: usize, job: F) -> Figures
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (job, next) = (Arc::clone(&job), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    return latencies;
                }
                let at = Instant::now();
                job(index).await;
                latencies.push(at.elapsed());
            }
        }));
    }
    let mut latencies = Vec::with_capacity(count);
    for task in tasks {
        latencies.extend(task.await.expect("bench task"));
    }
    figures(latencies, started.elapsed())
}

/// The inbox behind axum on a loopback port, fed by `concurrency` keep-alive clients.
async fn inbox_over_http(
    inbox: &Inbox,
    tasks: &[String],
    concurrency: usize,
) -> (Figures, SunoCallbacks) {
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .fallback(|_| async { Ok(()) })
        .inbox(inbox.clone())
        .build()
        .expect("valid configuration");
    let app = axum::Router::new().route_service(PATH, callbacks.service());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let signer = Signer::new(KEY);
    let requests: Arc<Vec<Request<Full<Bytes>>>> = Arc::new(
        tasks
            .iter()
            .map(|task| {
                let (mut parts, body) = signer.request(PATH, complete_body(task)).into_parts();
                parts.uri = format!("http://{addr}{PATH}").parse().expect("uri");
                Request::from_parts(parts, body)
            })
            .collect(),
    );
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(concurrency)
        .build_http();
    let figures = drive(tasks.len(), concurrency, move |index| {
        let request = requests[index].clone();
        let client = client.clone();
        async move {
            let response = client.request(request).await.expect("HTTP request");
            let status = response.status();
            let body = response.into_body().collect().await.expect("body");
            assert_eq!(status, 200, "{:?}", body.to_bytes());
        }
    })
    .await;
    server.abort();
    (figures, callbacks)
}

/// Runs every stored event with a no-op handler: events per second until all are
/// done.
/// It watches the events not yet run through an index range (`state IN ('pending',
/// 'running')`), not `Inbox::stats`, which counts the whole table.
async fn processing(
    inbox: &Inbox,
    callbacks: &SunoCallbacks,
    count: usize,
    url: &str,
    postgres: bool,
) -> f64 {
    const LEFT: &str =
        "SELECT COUNT(*) FROM suno_inbox_events WHERE state IN ('pending', 'running')";
    let mut sqlite = None;
    let mut pg = None;
    if postgres {
        pg = Some(sqlx::PgConnection::connect(url).await.expect("connect"));
    } else {
        sqlite = Some(sqlx::SqliteConnection::connect(url).await.expect("connect"));
    }
    let started = Instant::now();
    let workers = inbox.start_workers(callbacks);
    loop {
        let left: i64 = match (&mut sqlite, &mut pg) {
            (Some(connection), _) => sqlx::query_scalar(LEFT).fetch_one(connection).await,
            (_, Some(connection)) => sqlx::query_scalar(LEFT).fetch_one(connection).await,
            _ => unreachable!("one connection is open"),
        }
        .expect("events left");
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    workers.shutdown().await;
    rate
}

const PLAIN_TABLE: &str = "CREATE TABLE plain_events (task_id TEXT NOT NULL, \
     family TEXT NOT NULL DEFAULT '', stage TEXT NOT NULL, outcome TEXT NOT NULL, \
     body BLOB NOT NULL, received_at BIGINT NOT NULL, \
     UNIQUE (task_id, family, stage, outcome))";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

fn print(
    name: &str,
    inbox: &Figures,
    plain: &Figures,
    processed: f64,
    count: usize,
    concurrency: usize,
) {
    println!("{name}: {count} callbacks, {concurrency} concurrent");
    for (label, f) in [("inbox over HTTP", inbox), ("plain INSERT", plain)] {
        println!(
            "  {label:<16} {:>8.0}/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
            f.per_second,
            f.p50.as_secs_f64() * 1e3,
            f.p99.as_secs_f64() * 1e3
        );
    }
    println!(
        "  inbox / plain    {:.2}",
        inbox.per_second / plain.per_second
    );
    println!(
        "  no-op processing {processed:>8.0}/s ({workers} workers)",
        workers = workers()
    );
}

async fn sqlite(count: usize, concurrency: usize) {
    let folder =
        std::env::temp_dir().join(format!("suno-inbox-bench-{}", ClaimToken::new_unique()));
    std::fs::create_dir_all(&folder).expect("temp folder");
    let url = format!("sqlite://{}", folder.join("inbox.db").display());
    let inbox = Inbox::builder()
        .concurrency(workers())
        .max_connections(u32::try_from(concurrency).unwrap_or(8))
        .connect(&url)
        .await
        .expect("connect");
    let mut connection = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    prefill(&mut connection, false, prefill_done()).await;
    connection.close().await.expect("close");
    let tasks: Vec<String> = (0..count).map(|n| format!("bench-{n:08}")).collect();
    let (inbox_figures, callbacks) = inbox_over_http(&inbox, &tasks, concurrency).await;
    let processed = processing(&inbox, &callbacks, count, &url, false).await;
    inbox.close().await;

    use std::str::FromStr as _;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
        .expect("options")
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5));
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(u32::try_from(concurrency).unwrap_or(8))
        .connect_with(options)
        .await
        .expect("pool");
    sqlx::raw_sql(PLAIN_TABLE)
        .execute(&pool)
        .await
        .expect("table");
    let bodies: Arc<Vec<(String, Bytes)>> = Arc::new(
        tasks
            .iter()
            .map(|t| (t.clone(), complete_body(t)))
            .collect(),
    );
    let plain_pool = pool.clone();
    let plain = drive(count, concurrency, move |index| {
        let (pool, bodies) = (plain_pool.clone(), Arc::clone(&bodies));
        async move {
            let (task, body) = &bodies[index];
            sqlx::query(
                "INSERT INTO plain_events (task_id, family, stage, outcome, body, received_at) \
                 VALUES (?1, '', 'complete', 'success', ?2, ?3) \
                 ON CONFLICT (task_id, family, stage, outcome) DO NOTHING",
            )
            .bind(task)
            .bind(body.as_ref())
            .bind(now_ms())
            .execute(&pool)
            .await
            .expect("plain insert");
        }
    })
    .await;
    pool.close().await;
    print(
        "SQLite",
        &inbox_figures,
        &plain,
        processed,
        count,
        concurrency,
    );
    let _ = std::fs::remove_dir_all(&folder);
}

async fn postgres(count: usize, concurrency: usize) {
    let base = std::env::var("SUNO_CALLBACK_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let Ok(mut admin) = sqlx::PgConnection::connect(&base).await else {
        println!("PostgreSQL: skipped, no server answers at {base}");
        return;
    };
    let schema = format!("suno_inbox_bench_{}", ClaimToken::new_unique());
    sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .expect("schema");
    let url = format!("{base}?options=-c%20search_path%3D{schema}");
    let inbox = Inbox::builder()
        .concurrency(workers())
        .max_connections(u32::try_from(concurrency).unwrap_or(8))
        .connect(&url)
        .await
        .expect("connect");
    let mut connection = sqlx::PgConnection::connect(&url).await.expect("connect");
    prefill(&mut connection, true, prefill_done()).await;
    connection.close().await.expect("close");
    let tasks: Vec<String> = (0..count).map(|n| format!("bench-{n:08}")).collect();
    let (inbox_figures, callbacks) = inbox_over_http(&inbox, &tasks, concurrency).await;
    let processed = processing(&inbox, &callbacks, count, &url, true).await;
    inbox.close().await;

    use std::str::FromStr as _;
    let options = sqlx::postgres::PgConnectOptions::from_str(&url).expect("options");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(u32::try_from(concurrency).unwrap_or(8))
        .connect_with(options)
        .await
        .expect("pool");
    sqlx::raw_sql(&PLAIN_TABLE.replace("BLOB", "BYTEA"))
        .execute(&pool)
        .await
        .expect("table");
    let bodies: Arc<Vec<(String, Bytes)>> = Arc::new(
        tasks
            .iter()
            .map(|t| (t.clone(), complete_body(t)))
            .collect(),
    );
    let plain_pool = pool.clone();
    let plain = drive(count, concurrency, move |index| {
        let (pool, bodies) = (plain_pool.clone(), Arc::clone(&bodies));
        async move {
            let (task, body) = &bodies[index];
            sqlx::query(
                "INSERT INTO plain_events (task_id, family, stage, outcome, body, received_at) \
                 VALUES ($1, '', 'complete', 'success', $2, $3) \
                 ON CONFLICT (task_id, family, stage, outcome) DO NOTHING",
            )
            .bind(task)
            .bind(body.as_ref())
            .bind(now_ms())
            .execute(&pool)
            .await
            .expect("plain insert");
        }
    })
    .await;
    pool.close().await;
    print(
        "PostgreSQL",
        &inbox_figures,
        &plain,
        processed,
        count,
        concurrency,
    );
    let _ = sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut admin)
        .await;
}

fn main() {
    // `cargo test --benches` runs benches with `--bench`-less arguments; only a real
    // bench run measures.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("inbox bench: run with `cargo bench --bench inbox --features sqlite,postgres`");
        return;
    }
    let count = env_usize("BENCH_REQUESTS", 3000);
    let concurrency = env_usize("BENCH_CONCURRENCY", 16).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        sqlite(count, concurrency).await;
        postgres(count, concurrency).await;
    });
}
