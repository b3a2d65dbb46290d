//! The console over HTTP, without a browser: access, read-only, CSRF, cross-origin
//! refusal, security headers, escaping, and the actions, on a SQLite inbox.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use suno_callback::console::{Access, CONTENT_SECURITY_POLICY, Console, Grant};
use suno_callback::inbox::sqlx::{self, Connection as _};
use suno_callback::inbox::{EventState, Inbox};
use tower::ServiceExt as _;

const TOKEN: &str = "all-token-0123456789";
const READ_ONLY: &str = "read-only-token-0123";

struct Fixture {
    inbox: Inbox,
    console: Console,
    url: String,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn fixture() -> Fixture {
    let dir = std::env::temp_dir().join(format!(
        "suno_console_test_{}",
        suno_callback::store::ClaimToken::new_unique()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.join("inbox.db").display());
    let inbox = Inbox::builder().connect(&url).await.expect("inbox");
    let console = Console::builder(&inbox)
        .path("/console")
        .bearer_token(TOKEN, Access::All)
        .bearer_token(READ_ONLY, Access::ReadOnly)
        .build()
        .expect("console");
    Fixture {
        inbox,
        console,
        url,
        _dir: TempDir(dir),
    }
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

/// Writes one event; returns its id.
async fn event(fixture: &Fixture, task: &str, state: &str, title: &str) -> i64 {
    let mut connection = sqlx::SqliteConnection::connect(&fixture.url)
        .await
        .expect("connect");
    let body = serde_json::json!({
        "code": 200, "msg": "All generated successfully.",
        "data": {"callbackType": "complete", "task_id": task, "data": [
            {"id": "track-1", "title": title, "audio_url": "https://cdn.example/a.mp3", "duration": 120.5}
        ]}
    })
    .to_string();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO suno_inbox_events (task_id, family, stage, outcome, body, state, attempts, \
         received_at, run_after, finished_at, last_error) \
         VALUES (?1, 'music', 'complete', 'success', ?2, ?3, 3, ?4, ?4, ?4, ?5) RETURNING id",
    )
    .bind(task)
    .bind(body.into_bytes())
    .bind(state)
    .bind(now)
    .bind((state == "dead").then_some("handler failed: <b>boom</b>"))
    .fetch_one(&mut connection)
    .await
    .map(|row| sqlx::Row::get::<i64, _>(&row, 0))
    .expect("insert")
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

async fn read(response: Response<Full<Bytes>>) -> Answer {
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn get(fixture: &Fixture, path: &str, token: Option<&str>) -> Answer {
    let mut request = Request::get(path).header(header::HOST, "127.0.0.1:3000");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request.body(Full::new(Bytes::new())).expect("request");
    read(
        fixture
            .console
            .service()
            .oneshot(request)
            .await
            .expect("infallible"),
    )
    .await
}

async fn post(
    fixture: &Fixture,
    path: &str,
    token: Option<&str>,
    form: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Answer {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut request = Request::post(path)
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::from(body))).expect("request");
    read(
        fixture
            .console
            .service()
            .oneshot(request)
            .await
            .expect("infallible"),
    )
    .await
}

/// The CSRF token of the first form of a page.
fn csrf(page: &str) -> String {
    let start = page
        .find(r#"name="csrf" value=""#)
        .expect("a form with a CSRF field")
        + 19;
    page[start..start + 32].to_owned()
}

#[tokio::test]
async fn a_console_without_access_is_not_built_unless_loopback_only() {
    let fixture = fixture().await;
    let error = Console::builder(&fixture.inbox)
        .build()
        .expect_err("no access");
    assert!(error.to_string().contains("no access"), "{error}");
    let loopback = Console::builder(&fixture.inbox)
        .loopback_only()
        .build()
        .expect("loopback only");
    let request_with = |peer: &str, headers: &[(&str, &str)]| {
        let mut request = Request::get("/console/");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(Full::new(Bytes::new())).expect("request");
        request
            .extensions_mut()
            .insert(suno_callback::PeerAddr(peer.parse().expect("addr")));
        request
    };
    let request = |peer: &str| request_with(peer, &[]);
    let inside = loopback.service().oneshot(request("127.0.0.1:5000")).await;
    assert_eq!(inside.expect("infallible").status(), StatusCode::OK);
    let outside = loopback
        .service()
        .oneshot(request("203.0.113.9:5000"))
        .await;
    assert_eq!(outside.expect("infallible").status(), StatusCode::FORBIDDEN);
    // A loopback peer is trusted only under a loopback name: a page of another site
    // whose name was rebound to 127.0.0.1 says its own name in `Host`.
    for host in [
        "localhost:3000",
        "127.0.0.1:3000",
        "[::1]:3000",
        "localhost",
    ] {
        let answer = loopback
            .service()
            .oneshot(request_with("127.0.0.1:5000", &[("host", host)]))
            .await;
        assert_eq!(
            answer.expect("infallible").status(),
            StatusCode::OK,
            "{host}"
        );
    }
    for headers in [
        &[("host", "rebind.attacker.example:3000")][..],
        &[("host", "localhost.attacker.example")][..],
        // A proxy on the same host: every request arrives from loopback.
        &[
            ("host", "localhost:3000"),
            ("x-forwarded-for", "203.0.113.9"),
        ][..],
        &[("host", "localhost:3000"), ("forwarded", "for=203.0.113.9")][..],
        &[("host", "localhost:3000"), ("x-real-ip", "203.0.113.9")][..],
    ] {
        let answer = loopback
            .service()
            .oneshot(request_with("127.0.0.1:5000", headers))
            .await;
        assert_eq!(
            answer.expect("infallible").status(),
            StatusCode::FORBIDDEN,
            "{headers:?}"
        );
    }
}

#[tokio::test]
async fn every_page_needs_access_and_carries_the_security_headers() {
    let fixture = fixture().await;
    let id = event(&fixture, "task-a", "dead", "Song").await;
    let anonymous = get(&fixture, "/console/", None).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER, "to the login form");
    assert_eq!(anonymous.headers[header::LOCATION], "/console/login");
    let wrong = get(&fixture, "/console/events", Some("wrong-token")).await;
    assert_eq!(wrong.status, StatusCode::SEE_OTHER);
    for path in [
        "/console".to_owned(),
        "/console/events?state=dead".to_owned(),
        format!("/console/events/{id}"),
        "/console/expected".to_owned(),
    ] {
        let answer = get(&fixture, &path, Some(TOKEN)).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
        assert_eq!(
            answer.headers["content-security-policy"],
            CONTENT_SECURITY_POLICY
        );
        assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
        assert_eq!(answer.headers["x-content-type-options"], "nosniff");
        assert_eq!(answer.headers["cache-control"], "no-store");
        assert!(!answer.body.contains(TOKEN), "no secret is shown");
        assert!(!answer.body.contains("<script"), "{path}");
    }
    let css = get(&fixture, "/console/console.css", None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.headers[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/css")
    );
}

#[tokio::test]
async fn a_login_sets_a_session_cookie_that_opens_the_pages() {
    let fixture = fixture().await;
    let login = get(&fixture, "/console/login", None).await;
    assert!(login.body.contains(r#"name="token""#));
    let refused = post(&fixture, "/console/login", None, &[("token", "nope")], &[]).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let answer = post(&fixture, "/console/login", None, &[("token", TOKEN)], &[]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let cookie = answer.headers[header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(TOKEN),
        "the cookie is a signed session, not the token"
    );
    let session = cookie.split(';').next().expect("pair").to_owned();
    let request = Request::get("/console/")
        .header(header::COOKIE, session)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let page = read(
        fixture
            .console
            .service()
            .oneshot(request)
            .await
            .expect("infallible"),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Inbox overview"));
}

#[tokio::test]
async fn read_only_shows_no_action_and_refuses_every_post() {
    let fixture = fixture().await;
    let id = event(&fixture, "task-a", "dead", "Song").await;
    let page = get(&fixture, &format!("/console/events/{id}"), Some(READ_ONLY)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page
            .body
            .contains(r#"method="post" action="/console/events"#),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Replay this event"));
    // A CSRF token stolen from a full-access page does not help.
    let full = get(&fixture, &format!("/console/events/{id}"), Some(TOKEN)).await;
    let token = csrf(&full.body);
    let forged = post(
        &fixture,
        &format!("/console/events/{id}/replay"),
        Some(READ_ONLY),
        &[("csrf", &token)],
        &[],
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let event = fixture
        .inbox
        .event(id)
        .await
        .expect("event")
        .expect("there");
    assert_eq!(event.state, EventState::Dead, "nothing was replayed");
}

#[tokio::test]
async fn a_post_needs_its_csrf_token_and_the_same_origin() {
    let fixture = fixture().await;
    let id = event(&fixture, "task-a", "dead", "Song").await;
    let path = format!("/console/events/{id}/replay");
    let no_token = post(&fixture, &path, Some(TOKEN), &[], &[]).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let page = get(&fixture, &format!("/console/events/{id}"), Some(TOKEN)).await;
    let token = csrf(&page.body);
    let cross = post(
        &fixture,
        &path,
        Some(TOKEN),
        &[("csrf", &token)],
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert!(cross.body.contains("Cross-origin"));
    let site = post(
        &fixture,
        &path,
        Some(TOKEN),
        &[("csrf", &token)],
        &[("sec-fetch-site", "cross-site")],
    )
    .await;
    assert_eq!(site.status, StatusCode::FORBIDDEN);
    let event = fixture
        .inbox
        .event(id)
        .await
        .expect("event")
        .expect("there");
    assert_eq!(event.state, EventState::Dead);
    let same = post(
        &fixture,
        &path,
        Some(TOKEN),
        &[("csrf", &token)],
        &[("origin", "http://127.0.0.1:3000")],
    )
    .await;
    assert_eq!(same.status, StatusCode::SEE_OTHER, "{}", same.body);
    let event = fixture
        .inbox
        .event(id)
        .await
        .expect("event")
        .expect("there");
    assert_eq!(event.state, EventState::Pending, "replayed");
}

#[tokio::test]
async fn a_body_is_shown_escaped_with_its_typed_summary() {
    let fixture = fixture().await;
    let id = event(&fixture, "task-x", "dead", "<script>alert(1)</script>").await;
    let _ = event(&fixture, "task-x2", "done", "other").await;
    let page = get(&fixture, &format!("/console/events/{id}"), Some(TOKEN)).await;
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        page.body.contains("https://cdn.example/a.mp3"),
        "the summary's URL"
    );
    assert!(page.body.contains("120.5 s"), "the summary's duration");
    assert!(
        page.body.contains("&lt;b&gt;boom&lt;/b&gt;"),
        "the last error, escaped"
    );
    assert!(
        page.body
            .contains("&quot;callbackType&quot;: &quot;complete&quot;"),
        "pretty-printed"
    );
}

#[tokio::test]
async fn the_expected_tasks_show_their_last_poll_escaped() {
    let fixture = fixture().await;
    let mut connection = sqlx::SqliteConnection::connect(&fixture.url)
        .await
        .expect("connect");
    let now = now_ms();
    sqlx::query(
        "INSERT INTO suno_expected_tasks \
         (task_id, family, registered_at, due_at, last_poll, last_polled_at) VALUES \
         ('polled', 'music', ?1, ?1, 'request failed: <b>provider</b> answered 503', ?1), \
         ('fresh', 'wav', ?1, ?1, NULL, NULL)",
    )
    .bind(now)
    .execute(&mut connection)
    .await
    .expect("insert");
    let page = get(&fixture, "/console/expected", Some(TOKEN)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("last poll"), "{}", page.body);
    assert!(
        page.body
            .contains("request failed: &lt;b&gt;provider&lt;/b&gt; answered 503"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<b>provider"), "{}", page.body);
    assert!(page.body.contains("not polled yet"), "{}", page.body);
}

#[tokio::test]
async fn a_bulk_replay_previews_its_count_and_needs_a_confirmation() {
    let fixture = fixture().await;
    for i in 0..4 {
        event(&fixture, &format!("dead-{i}"), "dead", "Song").await;
    }
    event(&fixture, "done-0", "done", "Song").await;
    let list = get(&fixture, "/console/events?state=dead", Some(TOKEN)).await;
    assert!(list.body.contains("4 matching"), "{}", list.body);
    let token = csrf(&list.body);
    let preview = post(
        &fixture,
        "/console/replay",
        Some(TOKEN),
        &[("csrf", &token), ("state", "dead")],
        &[],
    )
    .await;
    assert_eq!(preview.status, StatusCode::OK);
    assert!(
        preview.body.contains("Yes, replay 4 events"),
        "{}",
        preview.body
    );
    let dead = fixture.inbox.stats().await.expect("stats").dead;
    assert_eq!(dead, 4, "a preview changes nothing");
    let done = post(
        &fixture,
        "/console/replay",
        Some(TOKEN),
        &[("csrf", &token), ("state", "dead"), ("confirm", "yes")],
        &[],
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let stats = fixture.inbox.stats().await.expect("stats");
    assert_eq!((stats.dead, stats.pending, stats.done), (0, 4, 1));
}

#[tokio::test]
async fn discard_and_prune_are_actions_too() {
    let fixture = fixture().await;
    let dead = event(&fixture, "dead-0", "dead", "Song").await;
    let page = get(&fixture, &format!("/console/events/{dead}"), Some(TOKEN)).await;
    let token = csrf(&page.body);
    let answer = post(
        &fixture,
        &format!("/console/events/{dead}/discard"),
        Some(TOKEN),
        &[("csrf", &token)],
        &[],
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert!(fixture.inbox.event(dead).await.expect("event").is_none());
    let prune = post(
        &fixture,
        "/console/prune",
        Some(TOKEN),
        &[("csrf", &token)],
        &[],
    )
    .await;
    assert_eq!(prune.status, StatusCode::SEE_OTHER);
    assert_eq!(prune.headers[header::LOCATION], "/console?note=pruned&n=0");
}

#[tokio::test]
async fn it_mounts_under_an_axum_prefix_both_ways() {
    let fixture = fixture().await;
    let hooked = Console::builder(&fixture.inbox)
        .path("/ops/inbox")
        .authorize(|_: &http::request::Parts| Grant::read_only("everyone"))
        .build()
        .expect("console");
    for app in [
        axum::Router::new().nest_service("/ops/inbox", hooked.service()),
        axum::Router::new().nest("/ops/inbox", hooked.router()),
    ] {
        for path in ["/ops/inbox", "/ops/inbox/events"] {
            let request = Request::get(path)
                .body(axum::body::Body::empty())
                .expect("request");
            let response = app.clone().oneshot(request).await.expect("infallible");
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            let body = String::from_utf8_lossy(&body);
            assert!(
                body.contains(r#"href="/ops/inbox/events""#),
                "links keep the prefix"
            );
            assert!(body.contains("everyone · read-only"));
        }
    }
}
