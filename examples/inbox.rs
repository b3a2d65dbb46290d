//! The inbox receiver: answers `200 accepted` as soon as a verified callback is stored
//! in SQLite or PostgreSQL, and runs the handler from there, with retries.
//!
//! ```text
//! cargo run --example inbox --features sqlite -- serve
//! SUNO_INBOX_DATABASE_URL=postgres://127.0.0.1:5432/test cargo run --example inbox --features postgres -- serve
//! DATABASE_URL=sqlite://suno-inbox.db cargo run -p suno-callback-cli -- replay --dead --yes
//! cargo run --example inbox --features sqlite -- --help
//! SUNO_CONSOLE_TOKEN=secret cargo run --example inbox --features sqlite,console -- serve
//! ```
//!
//! It does nothing without a command: `serve` runs a receiver and its workers, which
//! run every pending event of the database with this example's handler and mark it
//! done. Any other argument is refused before a database is opened; replaying, listing
//! and discarding events is the workspace's `suno-inbox` tool (`suno-callback-cli`). The database is
//! `SUNO_INBOX_DATABASE_URL`, never the `DATABASE_URL` an application's own database
//! may be set in: `sqlite://…` or `postgres://…` (default `sqlite://suno-inbox.db` in
//! the working folder, a file of the example's own). Several copies on one PostgreSQL
//! database behave as one receiver; a SQLite file belongs to one process.
//!
//! `serve` takes the quickstart's settings (`BIND_ADDR`, `SUNO_WEBHOOK_HMAC_KEY`,
//! `SUNO_ALLOWED_IPS`, `RUST_LOG`; path `/callbacks/suno`), and:
//! - `SUNO_INBOX_CONCURRENCY`: how many events run at once (default 4).
//! - `SUNO_INBOX_RETRY_SCALE`: multiplies every retry delay (default 1; `0.001` in
//!   tests).
//! - `SUNO_EXAMPLE_HANDLER_DELAY_MS`: each handler run sleeps this long first.
//! - `SUNO_EXAMPLE_FAIL_FIRST=N`: the first N runs of every event fail.
//! - `SUNO_CONSOLE_TOKEN`: serve the operator's console at `/console` (feature
//!   `console`), for this bearer token or its login form.
//!
//! Like the quickstart, it also serves `/callbacks/suno/<family>` (the family the path
//! names is stored with the event, and the worker types the body as that family) and
//! its metrics on `/metrics`, the inbox's among them. It stops on ctrl-c or `SIGTERM`:
//! running handlers finish (or their events are released), then it exits.
//!
//! Each successful run writes a row to the table `example_results` in the inbox's own
//! transaction, so the row and the event's `done` commit together: however often the
//! process is killed, each event has exactly one row. Once that is committed the
//! example prints `done <family> <stage> task=<id> attempt=<n>`, with the stage word of
//! the quickstart's lines (`complete` for a family without stages, `failure` for a
//! failure); a failed run prints a line starting with `failed`.

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod common;

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
fn main() {
    eprintln!("build the inbox example with --features sqlite, postgres or both");
    std::process::exit(2);
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    app::main().await
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod app {
    use std::error::Error;
    use std::net::SocketAddr;
    use std::time::Duration;

    use axum::Router;
    use axum::routing::get;
    use suno_callback::inbox::{EventContext, Inbox, RetryPolicy, RunReport, RunResult};
    use suno_callback::verify::IpAllowlist;
    use suno_callback::{CallbackEvent, HandlerError, SunoCallbacks};
    use tokio::net::TcpListener;

    use crate::common::{self, METRICS_PATH, PATH};

    const DEFAULT_DATABASE_URL: &str = "sqlite://suno-inbox.db";

    fn env_number<T: std::str::FromStr>(name: &str, default: T) -> Result<T, Box<dyn Error>> {
        match std::env::var(name) {
            Ok(value) if !value.trim().is_empty() => value
                .trim()
                .parse()
                .map_err(|_| format!("{name} is not a number: {value:?}").into()),
            _ => Ok(default),
        }
    }

    /// The variable naming the example's database. Not `DATABASE_URL`: that one often
    /// names an application's own database, whose events this example must not run.
    const DATABASE_URL_VAR: &str = "SUNO_INBOX_DATABASE_URL";

    const USAGE: &str = "\
usage: inbox serve
       inbox --help

Commands (nothing is opened without one):
  serve    Run a callback receiver on BIND_ADDR (default 127.0.0.1:3000) that stores
           each verified callback in the inbox, and workers that run every pending
           event of that inbox with this example's handler (it records the event in
           the table example_results) and mark it done. Point it only at a database
           made for this example.

To see, replay or discard the stored events, use the workspace's tool (a bulk
replay shows its count first; add --yes to run it):
  DATABASE_URL=<the same URL> cargo run -p suno-callback-cli -- replay --dead --yes

The database is SUNO_INBOX_DATABASE_URL (sqlite://... or postgres://...; default
sqlite://suno-inbox.db in the working folder). DATABASE_URL is not read.
Other settings of `serve`: SUNO_WEBHOOK_HMAC_KEY (generated when unset),
SUNO_ALLOWED_IPS, SUNO_INBOX_CONCURRENCY, SUNO_INBOX_RETRY_SCALE,
SUNO_EXAMPLE_HANDLER_DELAY_MS, SUNO_EXAMPLE_FAIL_FIRST, RUST_LOG.";

    /// What the command line asks for; read whole before anything is opened.
    enum Command {
        Help,
        Serve,
    }

    fn command(arguments: &[String]) -> Result<Command, String> {
        let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
        match arguments.as_slice() {
            ["--help" | "-h" | "help", ..] => Ok(Command::Help),
            ["serve"] => Ok(Command::Serve),
            [] => Err("no command given".to_owned()),
            ["serve", rest @ ..] => Err(format!("unexpected arguments: {}", rest.join(" "))),
            [other, ..] => Err(format!("unknown command {other:?}")),
        }
    }

    fn database_url() -> String {
        std::env::var(DATABASE_URL_VAR)
            .ok()
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned())
    }

    pub(crate) async fn main() -> Result<(), Box<dyn Error>> {
        let arguments: Vec<String> = std::env::args().skip(1).collect();
        match command(&arguments) {
            Ok(Command::Help) => {
                println!("{USAGE}");
                Ok(())
            }
            Ok(Command::Serve) => serve().await,
            Err(problem) => {
                eprintln!("inbox: {problem}\n\n{USAGE}");
                std::process::exit(2);
            }
        }
    }

    async fn serve() -> Result<(), Box<dyn Error>> {
        let settings = common::settings()?;
        // The receiver's and the inbox's metrics (attempts, retries, dead letters, queue
        // depth, oldest pending age) on `GET /metrics`.
        let metrics = common::prometheus()?;
        let url = database_url();
        let concurrency: usize = env_number("SUNO_INBOX_CONCURRENCY", 4)?;
        let scale: f64 = env_number("SUNO_INBOX_RETRY_SCALE", 1.0)?;
        let delay = Duration::from_millis(env_number("SUNO_EXAMPLE_HANDLER_DELAY_MS", 0)?);
        let fail_first: u32 = env_number("SUNO_EXAMPLE_FAIL_FIRST", 0)?;

        let inbox = Inbox::builder()
            .concurrency(concurrency)
            .retry(RetryPolicy::default().scale(scale))
            .on_outcome(print_outcome)
            .connect(&url)
            .await?;
        create_results_table(&url).await?;

        let mut builder = SunoCallbacks::builder().hmac_key(&settings.key);
        if let Some(ips) = &settings.allowed_ips {
            builder = builder.verifier(IpAllowlist::new(ips.split(',').map(str::trim))?);
        }
        let callbacks = builder
            .fallback(move |event| handle(event, delay, fail_first))
            .inbox(inbox.clone())
            .build()?;
        let workers = inbox.start_workers(&callbacks);

        let app = Router::new()
            .route_service(PATH, callbacks.service())
            .route_service(&format!("{PATH}/{{family}}"), callbacks.service())
            .route(
                METRICS_PATH,
                get(move || std::future::ready(metrics.render())),
            );
        let (app, console) = mount_console(app, &inbox)?;
        let listener = TcpListener::bind(settings.bind).await?;
        let store = format!("inbox at {} with {concurrency} workers", redact(&url));
        common::announce_store("inbox", listener.local_addr()?, &settings, &store)?;
        if let Some(path) = console {
            println!(
                "suno-callback inbox console on http://{}{path}",
                listener.local_addr()?
            );
        }
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await?;
        // Finishes the handlers that are running (or releases their events).
        workers.shutdown().await;
        inbox.close().await;
        Ok(())
    }

    /// One handler for every event: wait, maybe fail on purpose, then record the run in
    /// The operator's console at `/console` when `SUNO_CONSOLE_TOKEN` is set (feature
    /// `console`): the token as `Authorization: Bearer …`, or entered once in its login
    /// form for a session cookie.
    fn mount_console(
        app: Router,
        inbox: &Inbox,
    ) -> Result<(Router, Option<String>), Box<dyn Error>> {
        let token = std::env::var("SUNO_CONSOLE_TOKEN").unwrap_or_default();
        if token.trim().is_empty() {
            return Ok((app, None));
        }
        #[cfg(feature = "console")]
        {
            use suno_callback::console::{Access, Console};
            let console = Console::builder(inbox)
                .path("/console")
                .bearer_token(token.trim(), Access::All)
                .build()?;
            let path = console.path().to_owned();
            Ok((app.nest_service(&path, console.service()), Some(path)))
        }
        #[cfg(not(feature = "console"))]
        {
            let _ = inbox;
            Err("SUNO_CONSOLE_TOKEN is set: build the example with --features console".into())
        }
    }

    /// `example_results` inside the inbox's transaction.
    async fn handle(
        event: CallbackEvent,
        delay: Duration,
        fail_first: u32,
    ) -> Result<(), HandlerError> {
        let context = EventContext::current()
            .ok_or_else(|| HandlerError::msg("not run by an inbox worker"))?;
        tokio::time::sleep(delay).await;
        if context.attempt() <= fail_first {
            return Err(HandlerError::msg(format!(
                "failing on purpose (SUNO_EXAMPLE_FAIL_FIRST={fail_first})"
            )));
        }
        record(&context, &event).await
    }

    async fn record(context: &EventContext, event: &CallbackEvent) -> Result<(), HandlerError> {
        const INSERT_SQLITE: &str = "INSERT INTO example_results \
             (task_id, family, stage, outcome, attempt) VALUES (?1, ?2, ?3, ?4, ?5)";
        const INSERT_POSTGRES: &str = "INSERT INTO example_results \
             (task_id, family, stage, outcome, attempt) VALUES ($1, $2, $3, $4, $5)";
        let attempt = i64::from(context.attempt());
        let (task_id, family) = (event.task_id(), event.family().as_str());
        let (stage, outcome) = (event.stage().as_str(), event.outcome().as_str());
        #[cfg(feature = "sqlite")]
        if let Ok(mut tx) = context.sqlite_transaction().await {
            suno_callback::inbox::sqlx::query(INSERT_SQLITE)
                .bind(task_id)
                .bind(family)
                .bind(stage)
                .bind(outcome)
                .bind(attempt)
                .execute(&mut *tx)
                .await?;
            return Ok(());
        }
        #[cfg(feature = "postgres")]
        {
            let mut tx = context
                .postgres_transaction()
                .await
                .map_err(HandlerError::new)?;
            suno_callback::inbox::sqlx::query(INSERT_POSTGRES)
                .bind(task_id)
                .bind(family)
                .bind(stage)
                .bind(outcome)
                .bind(attempt)
                .execute(&mut *tx)
                .await?;
            return Ok(());
        }
        #[allow(unreachable_code)]
        {
            let _ = (INSERT_SQLITE, INSERT_POSTGRES, attempt);
            let _ = (task_id, family, stage, outcome);
            Err(HandlerError::msg("no inbox transaction"))
        }
    }

    /// Printed once the run's outcome is committed.
    fn print_outcome(report: &RunReport) {
        let stage = common::stage_word(&report.stage, report.outcome == "failure");
        let head = format!(
            "{} {stage} task={} attempt={}",
            report.family, report.task_id, report.attempt
        );
        let error = report.error.as_deref().unwrap_or("");
        match &report.result {
            RunResult::Done => println!("done {head}"),
            RunResult::Retry { after } => {
                println!(
                    "failed {head} retry_in_ms={} error={error:?}",
                    after.as_millis()
                );
            }
            RunResult::Dead => println!("failed {head} dead error={error:?}"),
            RunResult::Released => println!("released {head}"),
            RunResult::LeaseLost => println!("lease-lost {head}"),
            other => println!("{other:?} {head}"),
        }
    }

    async fn create_results_table(url: &str) -> Result<(), Box<dyn Error>> {
        const CREATE: &str = "CREATE TABLE IF NOT EXISTS example_results \
             (task_id TEXT NOT NULL, family TEXT NOT NULL, stage TEXT NOT NULL, \
             outcome TEXT NOT NULL, attempt BIGINT NOT NULL)";
        #[cfg(feature = "sqlite")]
        if url.starts_with("sqlite:") {
            use suno_callback::inbox::sqlx::Connection as _;
            let mut connection = suno_callback::inbox::sqlx::SqliteConnection::connect(url).await?;
            suno_callback::inbox::sqlx::raw_sql(CREATE)
                .execute(&mut connection)
                .await?;
            return Ok(());
        }
        #[cfg(feature = "postgres")]
        if url.starts_with("postgres") {
            use suno_callback::inbox::sqlx::Connection as _;
            let mut connection = suno_callback::inbox::sqlx::PgConnection::connect(url).await?;
            // Two copies starting together may race to create the table.
            let _ = suno_callback::inbox::sqlx::raw_sql(CREATE)
                .execute(&mut connection)
                .await;
            return Ok(());
        }
        let _ = CREATE;
        Err(format!("unsupported DATABASE_URL {}", redact(url)).into())
    }

    /// The URL without its password.
    fn redact(url: &str) -> String {
        match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}://…@{}", &url[..scheme], &url[at + 1..])
            }
            _ => url.to_owned(),
        }
    }

    async fn shutdown_signal() {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            if let Ok(mut terminate) = signal(SignalKind::terminate()) {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
                return;
            }
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
