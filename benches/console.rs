//! How fast the console's pages answer over an inbox of 1,000,000 events, on SQLite and
//! on PostgreSQL (a schema of its own, dropped afterwards).
//!
//! ```text
//! SUNO_CALLBACK_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo bench --bench console --features console,sqlite,postgres
//! SUNO_CONSOLE_BENCH_ROWS=100000 …   # a smaller table
//! ```
//!
//! The table is generated in SQL (97 % done, 2 % dead, 1 % pending; five families;
//! received over the last 14 days in id order; on PostgreSQL then `VACUUM ANALYZE`, as
//! autovacuum would), then each page is requested through the
//! console's service in process (no network) 20 times; the median and the slowest are
//! printed in milliseconds, database and HTML rendering together.

#[path = "../tests/inbox_db/mod.rs"]
mod inbox_db;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt as _, Full};
use inbox_db::{Db, Kind, postgres_answers, postgres_url};
use suno_callback::console::{Access, Console};
use suno_callback::inbox::Inbox;
use tower::ServiceExt as _;

const TOKEN: &str = "bench-token";
const RUNS: usize = 20;

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms")
}

/// The SQL that fills the table with `rows` events.
fn generate(kind: Kind, rows: u64, now: i64) -> String {
    let span: i64 = 14 * 86_400_000;
    let columns = "task_id, family, stage, outcome, body, state, attempts, received_at, \
                   run_after, finished_at, last_error";
    let values = |i: &str, body: &str| {
        format!(
            "'task-' || {i}, \
             CASE {i} % 5 WHEN 0 THEN 'music' WHEN 1 THEN 'wav' WHEN 2 THEN 'lyrics' \
               WHEN 3 THEN 'video' ELSE 'cover' END, \
             'complete', CASE WHEN {i} % 50 = 7 THEN 'failure' ELSE 'success' END, {body}, \
             CASE WHEN {i} % 100 < 97 THEN 'done' WHEN {i} % 100 < 99 THEN 'dead' \
               ELSE 'pending' END, \
             1, {now} - {span} + {i} * {span} / {rows}, {now} - {span} + {i} * {span} / {rows}, \
             CASE WHEN {i} % 100 < 99 THEN {now} - {span} + {i} * {span} / {rows} + 900 END, \
             CASE WHEN {i} % 100 BETWEEN 97 AND 98 THEN 'handler failed: 503 from storage' END"
        )
    };
    let json = r#"'{"code":200,"msg":"All generated successfully.","data":{"callbackType":"complete","task_id":"task-' || {i} || '","data":[{"id":"a","title":"Night drive","audio_url":"https://cdn.example/a.mp3","duration":182.4}]}}'"#;
    match kind {
        Kind::Postgres => {
            let body = format!("convert_to({}, 'UTF8')", json.replace("{i}", "i"));
            format!(
                "INSERT INTO suno_inbox_events ({columns}) SELECT {} \
                 FROM generate_series(1::bigint, {rows}::bigint) AS i",
                values("i", &body)
            )
        }
        Kind::Sqlite => {
            let body = format!("CAST({} AS BLOB)", json.replace("{i}", "i"));
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
                 INSERT INTO suno_inbox_events ({columns}) SELECT {} FROM n; ANALYZE;",
                values("i", &body)
            )
        }
    }
}

async fn time_page(console: &Console, path: &str) -> (Duration, Duration, usize) {
    let mut times = Vec::with_capacity(RUNS);
    let mut size = 0;
    for _ in 0..RUNS {
        let request = Request::get(path)
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Full::new(Bytes::new()))
            .expect("request");
        let started = Instant::now();
        let response = console
            .service()
            .oneshot(request)
            .await
            .expect("infallible");
        assert_eq!(response.status(), 200, "{path}");
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        times.push(started.elapsed());
        size = body.len();
    }
    times.sort();
    (times[RUNS / 2], times[RUNS - 1], size)
}

async fn bench(kind: Kind, rows: u64) {
    let db = Db::new(kind).await;
    let inbox = db.inbox(Inbox::builder()).await;
    let now = now_ms();
    let started = Instant::now();
    db.exec(&generate(kind, rows, now)).await;
    if kind == Kind::Postgres {
        // What autovacuum does to a table this size: statistics and the visibility map
        // (index-only scans).
        db.exec("VACUUM ANALYZE suno_inbox_events").await;
    }
    println!(
        "{kind:?}: {rows} events generated in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let console = Console::builder(&inbox)
        .bearer_token(TOKEN, Access::All)
        .build()
        .expect("console");
    let day_ago = suno_time(now - 86_400_000);
    let week_ago = suno_time(now - 7 * 86_400_000);
    let six_days_ago = suno_time(now - 6 * 86_400_000);
    let middle = rows / 2;
    let pages = [
        "/console".to_owned(),
        "/console/events".to_owned(),
        "/console/events?state=dead".to_owned(),
        "/console/events?state=pending".to_owned(),
        "/console/events?family=wav".to_owned(),
        "/console/events?state=dead&family=music&outcome=failure".to_owned(),
        format!("/console/events?task=task-{middle}"),
        format!("/console/events?from={day_ago}"),
        format!("/console/events?from={week_ago}&until={six_days_ago}"),
        format!("/console/events?state=done&before={middle}"),
        format!("/console/events/{middle}"),
        "/console/expected".to_owned(),
    ];
    println!(
        "{:<64} {:>9} {:>9} {:>8}",
        "page", "median", "slowest", "bytes"
    );
    for page in &pages {
        let (median, slowest, size) = time_page(&console, page).await;
        println!(
            "{page:<64} {:>6.1} ms {:>6.1} ms {size:>8}",
            median.as_secs_f64() * 1000.0,
            slowest.as_secs_f64() * 1000.0
        );
    }
    inbox.close().await;
    db.drop_all().await;
}

/// Unix milliseconds as the console's `datetime-local` filter value (UTC).
fn suno_time(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let rest = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}%3A{:02}",
        rest / 3600,
        rest % 3600 / 60
    )
}

fn main() {
    let rows: u64 = std::env::var("SUNO_CONSOLE_BENCH_ROWS")
        .ok()
        .and_then(|rows| rows.parse().ok())
        .unwrap_or(1_000_000);
    // `cargo bench` passes `--bench`; a `cargo test` run of the benches only checks
    // that it starts.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("console bench: run with `cargo bench --bench console`");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        bench(Kind::Sqlite, rows).await;
        if postgres_answers(&postgres_url()) {
            bench(Kind::Postgres, rows).await;
        } else {
            println!("PostgreSQL skipped: no server at {}", postgres_url());
        }
    });
}
