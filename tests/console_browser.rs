//! The console in a real browser: headless Chromium driven through chromedriver
//! (WebDriver). One walk through the pages as an operator does it, with a screenshot of
//! each page under `target/console-screenshots/`:
//!
//! log in, see the overview, the expected tasks with their last poll's answer (a
//! `<script>` in it stays text), filter the dead events, open one whose title is a
//! `<script>` (it stays text and runs nothing), replay it and see it done; a read-only
//! login sees no button and a forged POST gets 403; a form on another origin is
//! refused.
//!
//! Needs `chromedriver` and `chromium` on the `PATH` (Debian: `apt-get install chromium
//! chromium-driver`). Without them the test is reported as ignored, with a line saying
//! why, unless `SUNO_CALLBACK_REQUIRE_BROWSER=1` (as CI sets it), which makes their
//! absence a failure.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fantoccini::{Client, ClientBuilder, Locator};
use libtest_mimic::{Arguments, Failed, Trial};
use suno_callback::console::{Access, Console};
use suno_callback::inbox::sqlx::{self, Connection as _};
use suno_callback::inbox::{Inbox, RetryPolicy};
use suno_callback::{CallbackEvent, HandlerError, SunoCallbacks};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const REQUIRE: &str = "SUNO_CALLBACK_REQUIRE_BROWSER";
const TOKEN: &str = "browser-test-token-all";
const READ_ONLY: &str = "browser-test-token-read";

/// chromedriver, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

fn start_driver() -> Result<Driver, String> {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| format!("chromedriver could not be started: {error}"))?;
    let driver = Driver { child, port };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(driver);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err("chromedriver did not listen within 5 s".to_owned())
}

fn screenshots() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    // target/debug/deps/console_browser-… -> target/
    let target = exe
        .ancestors()
        .nth(3)
        .map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

async fn shoot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png).expect("write screenshot");
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms")
}

/// The app: the callback route, the console at `/console`, and workers whose handler
/// succeeds. Returns its address and the SQLite URL.
async fn serve(dir: &std::path::Path) -> (SocketAddr, String) {
    let url = format!("sqlite://{}", dir.join("inbox.db").display());
    let inbox = Inbox::builder()
        .poll_interval(Duration::from_millis(50))
        .retry(RetryPolicy::new(
            Duration::from_millis(5),
            Duration::from_millis(50),
        ))
        .connect(&url)
        .await
        .expect("inbox");
    let callbacks = SunoCallbacks::builder()
        .hmac_key("browser-test-hmac-key")
        .fallback(|_event: CallbackEvent| async { Ok::<(), HandlerError>(()) })
        .inbox(inbox.clone())
        .build()
        .expect("receiver");
    let workers = inbox.start_workers(&callbacks);
    std::mem::forget(workers); // they run until the test process ends
    let console = Console::builder(&inbox)
        .bearer_token(TOKEN, Access::All)
        .bearer_token(READ_ONLY, Access::ReadOnly)
        .build()
        .expect("console");
    let app = axum::Router::new()
        .route_service("/callbacks/suno", callbacks.service())
        .nest_service("/console", console.service());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, url)
}

/// Writes events of every state; returns the id of the dead one whose title is a script.
async fn seed(url: &str) -> i64 {
    let mut connection = sqlx::SqliteConnection::connect(url).await.expect("connect");
    let now = now_ms();
    let mut hostile = 0;
    let rows: Vec<(String, &str, &str, i64, Option<&str>)> = (0..40)
        .map(|i| {
            let (state, error) = match i % 8 {
                0 | 1 => (
                    "dead",
                    Some("handler failed: the storage service answered 503"),
                ),
                2 => ("pending", None),
                _ => ("done", None),
            };
            let family = ["music", "wav", "lyrics", "music", "video"][i % 5];
            (
                format!("task-{i:04}-7c1e"),
                state,
                family,
                now - (40 - i as i64) * 70_000,
                error,
            )
        })
        .collect();
    for (task, state, family, at, error) in &rows {
        let body = serde_json::json!({"code": 200, "msg": "All generated successfully.",
            "data": {"callbackType": "complete", "task_id": task, "data": [
                {"id": "9f4a", "title": "Night drive", "audio_url": "https://cdn.example/a.mp3", "duration": 182.4}]}});
        insert(
            &mut connection,
            task,
            family,
            state,
            *at,
            *error,
            &body.to_string(),
        )
        .await;
    }
    let body = serde_json::json!({"code": 200, "msg": "All generated successfully.",
        "data": {"callbackType": "complete", "task_id": "task-hostile", "data": [
            {"id": "b7c2", "title": "<script>window.__xss = 1</script><img src=x onerror=\"window.__xss = 2\">",
             "audio_url": "https://cdn.example/b.mp3", "image_url": "https://cdn.example/b.jpeg", "duration": 95.0}]}});
    let id = insert(
        &mut connection,
        "task-hostile",
        "music",
        "dead",
        now - 5_000,
        Some("handler failed: timed out after 600 s"),
        &body.to_string(),
    )
    .await;
    hostile += id;
    // The reconciler's expected tasks: one polled (its answer hostile text), one due.
    sqlx::query(
        "INSERT INTO suno_expected_tasks \
         (task_id, family, registered_at, due_at, last_poll, last_polled_at) VALUES \
         ('task-0041-7c1e', 'music', ?1, ?2, \
          'request failed: <script>window.__xss = 3</script> 503', ?3), \
         ('task-0042-7c1e', 'wav', ?1, ?1, NULL, NULL)",
    )
    .bind(now - 1_800_000)
    .bind(now + 60_000)
    .bind(now - 30_000)
    .execute(&mut connection)
    .await
    .expect("expected tasks");
    hostile
}

async fn insert(
    connection: &mut sqlx::SqliteConnection,
    task: &str,
    family: &str,
    state: &str,
    at: i64,
    error: Option<&str>,
    body: &str,
) -> i64 {
    let finished = matches!(state, "done" | "dead").then_some(at + 900);
    let attempts = if state == "dead" { 20 } else { 1 };
    let run_after = if state == "pending" {
        at + 3_600_000
    } else {
        at
    };
    let row: (i64,) = sqlx::query_as(
        "INSERT INTO suno_inbox_events (task_id, family, stage, outcome, body, state, attempts, \
         received_at, run_after, finished_at, last_error) \
         VALUES (?1, ?2, 'complete', 'success', ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
    )
    .bind(task)
    .bind(family)
    .bind(body.as_bytes().to_vec())
    .bind(state)
    .bind(attempts)
    .bind(at)
    .bind(run_after)
    .bind(finished)
    .bind(error)
    .fetch_one(connection)
    .await
    .expect("insert");
    row.0
}

/// One plain HTTP/1.1 request; the status and body.
async fn http(addr: SocketAddr, text: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(text.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, text)
}

async fn login(browser: &Client, base: &str, token: &str) {
    browser
        .goto(&format!("{base}/console"))
        .await
        .expect("goto");
    let form = browser
        .form(Locator::Css("main.login form"))
        .await
        .expect("the login form (an anonymous visitor is sent to it)");
    form.set_by_name("token", token).await.expect("token");
    form.submit_with(Locator::Css("button[type=submit]"))
        .await
        .expect("log in");
    wait_for_url(browser, "the page after the login", |url| {
        !url.contains("/login")
    })
    .await;
}

/// Waits (10 s at most) until the browser's address satisfies `arrived`: a click that
/// submits a form may return before the next page has replaced the current one.
async fn wait_for_url(browser: &Client, what: &str, arrived: impl Fn(&str) -> bool) {
    for _ in 0..100 {
        let url = browser.current_url().await.expect("current url");
        if arrived(url.as_str()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the browser never reached {what}");
}

async fn text(browser: &Client) -> String {
    browser
        .find(Locator::Css("main"))
        .await
        .expect("main")
        .text()
        .await
        .expect("text")
}

async fn walk(driver: &Driver) {
    let dir = std::env::temp_dir().join(format!(
        "suno_console_browser_{}",
        suno_callback::store::ClaimToken::new_unique()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (addr, url) = serve(&dir).await;
    let hostile = seed(&url).await;
    let base = format!("http://{addr}");

    let capabilities = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {"args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1280,1000", "--hide-scrollbars"
        ]}
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session");

    // The login form, then the overview.
    browser
        .goto(&format!("{base}/console"))
        .await
        .expect("goto");
    shoot(&browser, "login").await;
    login(&browser, &base, TOKEN).await;
    let overview = text(&browser).await;
    assert!(overview.contains("Inbox overview"), "{overview}");
    assert!(overview.contains("DEAD"), "{overview}");
    assert!(
        browser.find(Locator::Css("svg.chart")).await.is_ok(),
        "the chart"
    );
    shoot(&browser, "overview").await;

    // The expected tasks, with what each one's last poll got, as text.
    browser
        .goto(&format!("{base}/console/expected"))
        .await
        .expect("goto");
    let expected = text(&browser).await;
    assert!(
        expected.contains("request failed: <script>window.__xss = 3</script> 503"),
        "{expected}"
    );
    assert!(expected.contains("not polled yet"), "{expected}");
    let ran = browser
        .execute("return window.__xss === undefined", vec![])
        .await
        .expect("execute");
    assert_eq!(
        ran,
        serde_json::json!(true),
        "the poll answer's script did not run"
    );
    shoot(&browser, "expected").await;

    // Filter the dead events.
    browser
        .goto(&format!("{base}/console/events"))
        .await
        .expect("goto");
    let filter = browser
        .form(Locator::Css("form.filters"))
        .await
        .expect("filters");
    browser
        .find(Locator::Css("select[name=state]"))
        .await
        .expect("state")
        .select_by_value("dead")
        .await
        .expect("select dead");
    filter
        .submit_with(Locator::Css("button[type=submit]"))
        .await
        .expect("filter");
    wait_for_url(&browser, "the filtered events", |url| {
        url.contains("state=dead")
    })
    .await;
    let rows = browser
        .find_all(Locator::Css("table.events tbody tr"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 11, "10 dead events and the hostile one");
    for row in &rows {
        assert!(row.text().await.expect("row").contains("dead"));
    }
    shoot(&browser, "events-dead").await;

    // Open the hostile one: its title is text, and nothing ran.
    browser
        .find(Locator::LinkText(&hostile.to_string()))
        .await
        .expect("the event's link")
        .click()
        .await
        .expect("open");
    let event_path = format!("/console/events/{hostile}");
    wait_for_url(&browser, "the hostile event", |url| {
        url.contains(&event_path)
    })
    .await;
    let page = text(&browser).await;
    assert!(page.contains("<script>window.__xss = 1</script>"), "{page}");
    let ran = browser
        .execute("return window.__xss === undefined", vec![])
        .await
        .expect("execute");
    assert_eq!(
        ran,
        serde_json::Value::Bool(true),
        "no script of the body ran"
    );
    shoot(&browser, "event").await;

    // Replay it and see it done.
    browser
        .find(Locator::Css("button.primary"))
        .await
        .expect("the replay button")
        .click()
        .await
        .expect("replay");
    // The click returns while the answer's redirect may still be loading: a page
    // without the badge yet is read again.
    let mut done = false;
    for _ in 0..100 {
        if let Ok(badge) = browser.find(Locator::Css("dl.facts .badge")).await
            && badge.text().await.is_ok_and(|state| state == "done")
        {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = browser.refresh().await;
    }
    assert!(done, "the replayed event ran and is done");
    shoot(&browser, "event-done").await;

    // A form on another origin (another port) posting to the console is refused, even
    // with the right CSRF token and the session cookie.
    let csrf = browser
        .find(Locator::Css("input[name=csrf]"))
        .await
        .expect("csrf field")
        .attr("value")
        .await
        .expect("attr")
        .expect("value");
    let victim = seed_one_dead(&url).await;
    let evil = evil_site(addr, victim, &csrf).await;
    browser
        .goto(&format!("http://{evil}/"))
        .await
        .expect("goto");
    browser
        .find(Locator::Css("button"))
        .await
        .expect("the other site's button")
        .click()
        .await
        .expect("click");
    wait_for_url(
        &browser,
        "the console's answer to the other site's form",
        |url| url.contains("/discard"),
    )
    .await;
    let refused = browser.source().await.expect("source");
    assert!(
        refused.contains("Cross-origin request refused"),
        "{refused}"
    );
    shoot(&browser, "cross-origin").await;
    assert_eq!(
        state_of(&url, victim).await,
        "dead",
        "nothing was discarded"
    );

    // Log out; a read-only login sees no button, and a forged POST gets 403.
    browser
        .goto(&format!("{base}/console"))
        .await
        .expect("goto");
    browser
        .find(Locator::Css("form.inline button"))
        .await
        .expect("log out")
        .click()
        .await
        .expect("log out");
    login(&browser, &base, READ_ONLY).await;
    browser
        .goto(&format!("{base}/console/events/{victim}"))
        .await
        .expect("goto");
    assert!(
        browser
            .find_all(Locator::Css("main button"))
            .await
            .expect("buttons")
            .is_empty(),
        "a read-only viewer sees no action"
    );
    assert!(text(&browser).await.contains("dead"));
    shoot(&browser, "read-only").await;
    let body = format!("csrf={csrf}");
    let (status, _) = http(
        addr,
        &format!(
            "POST /console/events/{victim}/discard HTTP/1.1\r\nHost: {addr}\r\n\
             Authorization: Bearer {READ_ONLY}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert_eq!(status, 403, "a read-only POST is refused");
    assert_eq!(state_of(&url, victim).await, "dead");

    browser.close().await.expect("close the browser");
    let _ = std::fs::remove_dir_all(&dir);
}

async fn seed_one_dead(url: &str) -> i64 {
    let mut connection = sqlx::SqliteConnection::connect(url).await.expect("connect");
    insert(
        &mut connection,
        "task-victim",
        "music",
        "dead",
        now_ms(),
        Some("handler failed"),
        r#"{"code":200,"msg":"ok","data":{"callbackType":"complete","task_id":"task-victim","data":[]}}"#,
    )
    .await
}

async fn state_of(url: &str, id: i64) -> String {
    let mut connection = sqlx::SqliteConnection::connect(url).await.expect("connect");
    let row: (String,) = sqlx::query_as("SELECT state FROM suno_inbox_events WHERE id = ?1")
        .bind(id)
        .fetch_one(&mut connection)
        .await
        .expect("state");
    row.0
}

/// A page on another origin with a form that posts to the console.
async fn evil_site(console: SocketAddr, victim: i64, csrf: &str) -> SocketAddr {
    let page = format!(
        "<!doctype html><title>other site</title><form method=post \
         action=\"http://{console}/console/events/{victim}/discard\">\
         <input type=hidden name=csrf value=\"{csrf}\"><button>win a prize</button></form>"
    );
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn main() -> ExitCode {
    let arguments = Arguments::from_args();
    let required = std::env::var(REQUIRE).is_ok_and(|value| value == "1");
    let available = Command::new("chromedriver")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !available {
        if required {
            eprintln!("{REQUIRE}=1 but chromedriver cannot be run: the browser tests cannot run");
            return ExitCode::FAILURE;
        }
        println!(
            "browser tests skipped: no chromedriver on the PATH (apt-get install chromium \
             chromium-driver; {REQUIRE}=1 makes this a failure)"
        );
    }
    let trial = Trial::test("an_operator_walks_through_the_console", || {
        let driver = start_driver().map_err(Failed::from)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|error| Failed::from(error.to_string()))?;
        runtime.block_on(walk(&driver));
        Ok(())
    })
    .with_ignored_flag(!available);
    libtest_mimic::run(&arguments, vec![trial]).exit_code()
}
