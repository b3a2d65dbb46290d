//! The operator's console (feature `console`, with `sqlite` or `postgres`): the inbox's
//! events in the browser, and the actions on them, as a tower [`Service`] (and an axum
//! [`Router`](axum::Router)) that the application mounts under a path of its choosing,
//! apart from the callback route.
//!
//! Server-rendered HTML (maud), one embedded style sheet, no script: it works with
//! scripting off and on a phone. Pages:
//!
//! - **Overview** (`/`): events by state and by family, the oldest pending age, accepted
//!   and done per minute over the last hour (an SVG chart drawn on the server), the
//!   expected tasks due and overdue, and "prune now".
//! - **Events** (`/events`): filters by state, family, outcome, task id and time
//!   received; newest first, keyset pagination (`?before=ID`); the bulk replay of what
//!   the filter takes (a preview with the count first, at most
//!   [`replay_cap`](ConsoleBuilder::replay_cap) events, an explicit confirmation).
//! - **Event** (`/events/ID`): its key, state, attempts, times and last error, the typed
//!   summary (tracks, URLs), the body pretty-printed, the task's other events; replay,
//!   replay the task, discard a dead event.
//! - **Expected tasks** (`/expected`): the reconciler's registry (feature
//!   `provider-api` fills it), due and overdue, "poll now".
//!
//! **Access is never open by default.** [`ConsoleBuilder::build`] fails unless the
//! console has bearer tokens, HTTP basic credentials or an [`Authorize`] hook — or is
//! explicitly [`loopback_only`](ConsoleBuilder::loopback_only). A request gets
//! [`Access::All`], [`Access::ReadOnly`] (no action shown, every `POST` answered `403`) or
//! [`Access::Forbidden`]. Bearer tokens also get a small login form that sets a signed
//! session cookie (`HttpOnly`, `SameSite=Strict`) for browsers.
//!
//! Every action is a `POST` form carrying a CSRF token in a hidden field (so a plain
//! HTTP client that reads the form can submit it); a cross-origin `POST` (by `Origin`
//! or `Sec-Fetch-Site`) is refused. Every answer carries a strict
//! Content-Security-Policy (`default-src 'none'`, `frame-ancestors 'none'`),
//! `X-Content-Type-Options: nosniff` and `Cache-Control: no-store`. Every text from a
//! body is escaped. The console never sees the HMAC key or the provider's API key.
//! Each action is logged (who, what, how many) and counted:
//! [`ACTIONS_TOTAL`] by `action`, [`ACTION_EVENTS_TOTAL`] (events changed) by `action`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use suno_callback::console::{Access, Console};
//! use suno_callback::inbox::Inbox;
//!
//! let inbox = Inbox::builder().connect("sqlite://suno-inbox.db").await?;
//! let console = Console::builder(&inbox)
//!     .path("/console")
//!     .bearer_token(std::env::var("SUNO_CONSOLE_TOKEN")?, Access::All)
//!     .build()?;
//! let app = axum::Router::new().nest_service("/console", console.service());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

mod access;
mod chart;
mod format;
mod pages;

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use maud::Markup;
use tower_service::Service;

pub use self::access::{Access, Authorize, Grant};
use self::access::{Basic, COOKIE, Gate, SESSION_SECONDS, Secret, Token, same_origin};
use self::format::FilterForm;
use self::pages::Frame;
use crate::error::BoxError;
use crate::inbox::{COUNT_CAP, DEFAULT_REPLAY_CAP, Inbox, InboxAdmin, InboxError};
use crate::untrusted::Untrusted;

/// Console actions taken, by `action` (`replay_event`, `replay_task`, `replay_matching`,
/// `discard`, `prune`, `poll_now`).
pub const ACTIONS_TOTAL: &str = "suno_callback_console_actions_total";
/// Events the console's actions changed, by `action`.
pub const ACTION_EVENTS_TOTAL: &str = "suno_callback_console_action_events_total";

/// The Content-Security-Policy of every answer: nothing but this origin's style sheet,
/// its forms, and no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE_SHEET: &str = include_str!("console.css");

/// The largest form body read.
const MAX_FORM: usize = 16 * 1024;

/// Why a console could not be built.
///
/// ```
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// # let inbox = suno_callback::inbox::Inbox::builder().connect("sqlite::memory:").await?;
/// use suno_callback::console::Console;
///
/// let error = Console::builder(&inbox).build().unwrap_err();
/// assert!(error.to_string().contains("no access"));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ConsoleError {
    message: &'static str,
}

impl fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl std::error::Error for ConsoleError {}

/// The operator's console over an [`Inbox`]. Clones share everything; mount
/// [`service`](Self::service) or [`router`](Self::router).
#[derive(Clone, Debug)]
pub struct Console {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    admin: InboxAdmin,
    gate: Gate,
    prefix: String,
    replay_cap: u64,
    page_size: usize,
    overdue_after: Duration,
}

impl Console {
    /// A builder over `inbox`'s database.
    pub fn builder(inbox: &Inbox) -> ConsoleBuilder {
        ConsoleBuilder {
            admin: inbox.admin(),
            tokens: Vec::new(),
            basic: Vec::new(),
            hook: None,
            loopback_only: false,
            prefix: "/console".to_owned(),
            replay_cap: DEFAULT_REPLAY_CAP,
            page_size: 50,
            overdue_after: Duration::from_secs(14 * 24 * 60 * 60),
        }
    }

    /// The console as a tower service. It answers every path under its
    /// [`path`](ConsoleBuilder::path), whether the mounting strips that path (axum's
    /// `nest_service`) or not.
    pub fn service(&self) -> ConsoleService {
        ConsoleService {
            inner: Arc::clone(&self.inner),
        }
    }

    /// The console as an axum router, for `Router::nest(path, console.router())`.
    pub fn router<S>(&self) -> axum::Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        axum::Router::new().fallback_service(self.service())
    }

    /// The path it is mounted under (`/console` by default).
    pub fn path(&self) -> &str {
        &self.inner.prefix
    }
}

/// Configures a [`Console`].
pub struct ConsoleBuilder {
    admin: InboxAdmin,
    tokens: Vec<Token>,
    basic: Vec<Basic>,
    hook: Option<Arc<dyn Authorize>>,
    loopback_only: bool,
    prefix: String,
    replay_cap: u64,
    page_size: usize,
    overdue_after: Duration,
}

impl fmt::Debug for ConsoleBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsoleBuilder")
            .field("tokens", &self.tokens)
            .field("basic", &self.basic)
            .field("hook", &self.hook.is_some())
            .field("loopback_only", &self.loopback_only)
            .field("prefix", &self.prefix)
            .field("replay_cap", &self.replay_cap)
            .finish_non_exhaustive()
    }
}

impl ConsoleBuilder {
    /// The path the console is mounted under (default `/console`), for its links and
    /// its cookie. `""` mounts it at the root.
    #[must_use]
    pub fn path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        let path = path.trim_end_matches('/');
        self.prefix = if path.is_empty() || path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        self
    }

    /// A bearer token (`Authorization: Bearer …`) and the access it gives; also enables
    /// the login form, where a browser enters the token once for a 12-hour session
    /// cookie. May be called several times (for example one token with
    /// [`Access::All`], one with [`Access::ReadOnly`]).
    #[must_use]
    pub fn bearer_token(mut self, token: impl Into<String>, access: Access) -> Self {
        let token = token.into();
        if !token.is_empty() {
            self.tokens.push(Token {
                secret: Secret(token),
                access,
            });
        }
        self
    }

    /// HTTP basic credentials and the access they give (a browser asks for them).
    #[must_use]
    pub fn basic_auth(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
        access: Access,
    ) -> Self {
        self.basic.push(Basic {
            user: user.into(),
            password: Secret(password.into()),
            access,
        });
        self
    }

    /// The authorization hook, asked when no token or credentials of the builder
    /// match: for the application's own authentication.
    #[must_use]
    pub fn authorize(mut self, hook: impl Authorize) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Lets in, with [`Access::All`], requests from a loopback peer address (as axum's
    /// `ConnectInfo` or [`PeerAddr`](crate::PeerAddr) gives it), when nothing else
    /// granted access. Without a peer address a request is refused, and so is one whose
    /// `Host` names anything but a loopback host (a page whose name was rebound to
    /// 127.0.0.1) or that a proxy forwarded (`Forwarded`, `X-Forwarded-For`,
    /// `X-Real-IP`: behind a proxy on the same machine every peer is loopback). For a
    /// console reached only through an SSH tunnel or on a developer's machine.
    #[must_use]
    pub fn loopback_only(mut self) -> Self {
        self.loopback_only = true;
        self
    }

    /// How many events one bulk replay changes at most (default 1,000).
    #[must_use]
    pub fn replay_cap(mut self, cap: u64) -> Self {
        self.replay_cap = cap.max(1);
        self
    }

    /// How many events one page lists (default 50, at most 500).
    #[must_use]
    pub fn page_size(mut self, size: usize) -> Self {
        self.page_size = size.clamp(1, crate::inbox::MAX_PAGE);
        self
    }

    /// How long after its registration an expected task is shown overdue (default 14
    /// days, the reconciler's default `max_age`).
    #[must_use]
    pub fn overdue_after(mut self, age: Duration) -> Self {
        self.overdue_after = age;
        self
    }

    /// The console; an error if nothing grants access and it is not
    /// [`loopback_only`](Self::loopback_only).
    ///
    /// # Errors
    ///
    /// A [`ConsoleError`] when no bearer token, basic credentials or authorization hook
    /// was given and the console is not [`loopback_only`](Self::loopback_only).
    pub fn build(self) -> Result<Console, ConsoleError> {
        if self.tokens.is_empty()
            && self.basic.is_empty()
            && self.hook.is_none()
            && !self.loopback_only
        {
            return Err(ConsoleError {
                message: "the console has no access configured: give it a bearer token, \
                          basic credentials or an authorization hook, or bind it to \
                          loopback only",
            });
        }
        Ok(Console {
            inner: Arc::new(Inner {
                admin: self.admin,
                gate: Gate::new(self.tokens, self.basic, self.hook, self.loopback_only),
                prefix: self.prefix,
                replay_cap: self.replay_cap,
                page_size: self.page_size,
                overdue_after: self.overdue_after,
            }),
        })
    }
}

/// The console as a tower [`Service`]; from [`Console::service`].
#[derive(Clone, Debug)]
pub struct ConsoleService {
    inner: Arc<Inner>,
}

impl<B> Service<Request<B>> for ConsoleService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let mut response = inner.handle(request).await;
            secure(&mut response);
            Ok(response)
        })
    }
}

/// The security headers of every answer.
fn secure(response: &mut Response<Full<Bytes>>) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn page(status: StatusCode, markup: Markup) -> Response<Full<Bytes>> {
    respond(status, "text/html; charset=utf-8", markup.into_string())
}

fn redirect(location: &str) -> Response<Full<Bytes>> {
    let mut response = respond(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// The fixed text of a `?note=` code after an action (nothing from the query is shown).
fn note_text(query: &[u8]) -> Option<String> {
    let mut note = None;
    let mut n = 0u64;
    for (key, value) in form_urlencoded::parse(query) {
        match &*key {
            "note" => note = Some(value.into_owned()),
            "n" => n = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    let text = match note.as_deref()? {
        "replayed" => format!("{n} event(s) replayed: they are pending again."),
        "discarded" => "The dead event was discarded.".to_owned(),
        "kept" => "Nothing changed: the event is not in a state this action takes.".to_owned(),
        "pruned" => format!("{n} finished event(s) pruned."),
        "polled" => "The task is due now: the reconciler polls it on its next round.".to_owned(),
        _ => return None,
    };
    Some(text)
}

/// One action's result, logged and counted.
fn record(action: &'static str, who: &str, events: u64) {
    ::metrics::counter!(ACTIONS_TOTAL, "action" => action).increment(1);
    ::metrics::counter!(ACTION_EVENTS_TOTAL, "action" => action).increment(events);
    tracing::info!(
        console_action = action,
        who = ?Untrusted(who),
        events,
        "console action"
    );
}

/// The absolute path of a console path: the overview (`/`) is the prefix itself, since
/// axum's `nest_service` does not route the prefix with a slash added.
fn link(prefix: &str, path: &str) -> String {
    match path.strip_prefix('/') {
        Some(rest) if !prefix.is_empty() && (rest.is_empty() || rest.starts_with('?')) => {
            format!("{prefix}{rest}")
        }
        _ => format!("{prefix}{path}"),
    }
}

impl Inner {
    fn link(&self, path: &str) -> String {
        link(&self.prefix, path)
    }

    fn frame<'a>(&'a self, grant: &'a Grant, csrf: &'a str) -> Frame<'a> {
        Frame {
            prefix: &self.prefix,
            who: grant.who(),
            csrf: (grant.access() == Access::All).then_some(csrf),
            login: self.gate.has_login(),
        }
    }

    fn error(&self, status: StatusCode, title: &str, text: &str) -> Response<Full<Bytes>> {
        page(status, pages::error(&self.prefix, title, text))
    }

    fn unavailable(&self, error: &InboxError) -> Response<Full<Bytes>> {
        tracing::warn!(%error, "console: the inbox's database failed");
        self.error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Inbox unavailable",
            "The inbox's database did not answer; try again.",
        )
    }

    async fn handle<B>(&self, request: Request<B>) -> Response<Full<Bytes>>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = request.into_parts();
        let full_path = parts.uri.path();
        let path = full_path
            .strip_prefix(self.prefix.as_str())
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
            .unwrap_or(full_path)
            .to_owned();
        let path = if path.is_empty() {
            "/".to_owned()
        } else {
            path
        };
        let query = parts.uri.query().unwrap_or("").as_bytes().to_vec();
        let method = parts.method.clone();

        if path == "/console.css" && method == Method::GET {
            return respond(StatusCode::OK, "text/css; charset=utf-8", STYLE_SHEET);
        }
        if method == Method::POST && !same_origin(&parts.headers) {
            tracing::warn!("console: a cross-origin POST was refused");
            return self.error(
                StatusCode::FORBIDDEN,
                "Cross-origin request refused",
                "Actions are only taken from the console's own pages.",
            );
        }
        if path == "/login" && self.gate.has_login() {
            return match method {
                Method::GET => page(StatusCode::OK, pages::login(&self.prefix, false)),
                Method::POST => self.login(&parts, body).await,
                _ => self.error(StatusCode::METHOD_NOT_ALLOWED, "Not allowed", ""),
            };
        }
        if path == "/logout" && method == Method::POST {
            let mut response =
                redirect(&self.link(if self.gate.has_login() { "/login" } else { "/" }));
            let cookie = format!(
                "{COOKIE}=; Path={}; Max-Age=0; HttpOnly; SameSite=Strict",
                self.cookie_path()
            );
            if let Ok(cookie) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            return response;
        }

        let grant = self.gate.authorize(&parts);
        if grant.access() == Access::Forbidden {
            if self.gate.has_login() && method == Method::GET {
                return redirect(&self.link("/login"));
            }
            if self.gate.has_basic() {
                let mut response = self.error(
                    StatusCode::UNAUTHORIZED,
                    "Credentials needed",
                    "This console needs credentials.",
                );
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"inbox console\", charset=\"UTF-8\""),
                );
                return response;
            }
            return self.error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "No access to this console.",
            );
        }
        let csrf = self.gate.csrf(grant.who());
        match method {
            Method::GET | Method::HEAD => self.get(&path, &query, &grant, &csrf).await,
            Method::POST => {
                if grant.access() != Access::All {
                    return self.error(
                        StatusCode::FORBIDDEN,
                        "Read-only access",
                        "This access may look but not act.",
                    );
                }
                let Some(form) = read_form(body).await else {
                    return self.error(
                        StatusCode::BAD_REQUEST,
                        "Bad form",
                        "The form could not be read.",
                    );
                };
                let token = field(&form, "csrf").unwrap_or_default();
                if !self.gate.csrf_ok(grant.who(), &token) {
                    return self.error(
                        StatusCode::FORBIDDEN,
                        "Form expired",
                        "The form's CSRF token is missing or wrong: reload the page and try again.",
                    );
                }
                self.post(&path, &form, &grant, &csrf).await
            }
            _ => self.error(StatusCode::METHOD_NOT_ALLOWED, "Not allowed", ""),
        }
    }

    fn cookie_path(&self) -> &str {
        if self.prefix.is_empty() {
            "/"
        } else {
            &self.prefix
        }
    }

    async fn login<B>(&self, parts: &http::request::Parts, body: B) -> Response<Full<Bytes>>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let token = match read_form(body).await {
            Some(form) => field(&form, "token").unwrap_or_default(),
            None => String::new(),
        };
        let Some(session) = self.gate.login(token.trim()) else {
            tracing::warn!("console: a login with a wrong token");
            return page(StatusCode::UNAUTHORIZED, pages::login(&self.prefix, true));
        };
        let https = parts.uri.scheme_str() == Some("https")
            || parts
                .headers
                .get("x-forwarded-proto")
                .is_some_and(|proto| proto == "https");
        let cookie = format!(
            "{COOKIE}={session}; Path={}; Max-Age={SESSION_SECONDS}; HttpOnly; SameSite=Strict{}",
            self.cookie_path(),
            if https { "; Secure" } else { "" }
        );
        let mut response = redirect(&self.link("/"));
        if let Ok(cookie) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
        tracing::info!(console_action = "login", "console login");
        response
    }

    async fn get(
        &self,
        path: &str,
        query: &[u8],
        grant: &Grant,
        csrf: &str,
    ) -> Response<Full<Bytes>> {
        let frame = self.frame(grant, csrf);
        let note = note_text(query);
        let note = note.as_deref();
        if path == "/" {
            return match self.admin.overview(self.overdue_after).await {
                Ok(overview) => page(StatusCode::OK, pages::overview(&frame, &overview, note)),
                Err(error) => self.unavailable(&error),
            };
        }
        if path == "/events" {
            let form = FilterForm::parse(query);
            let listed = self
                .admin
                .list(&form.filter, form.before, self.page_size)
                .await;
            let counted = self.admin.count(&form.filter, COUNT_CAP).await;
            return match (listed, counted) {
                (Ok(list), Ok(count)) => page(
                    StatusCode::OK,
                    pages::events(&frame, &form, &list, count, note),
                ),
                (Err(error), _) | (_, Err(error)) => self.unavailable(&error),
            };
        }
        if let Some(id) = path.strip_prefix("/events/") {
            let Ok(id) = id.parse::<i64>() else {
                return self.error(StatusCode::NOT_FOUND, "Not found", "No such event.");
            };
            return match self.admin.event(id).await {
                Ok(Some(detail)) => page(StatusCode::OK, pages::event(&frame, &detail, note)),
                Ok(None) => self.error(
                    StatusCode::NOT_FOUND,
                    "Not found",
                    "No such event (pruned or discarded?).",
                ),
                Err(error) => self.unavailable(&error),
            };
        }
        if path == "/expected" {
            let mut after_due = None;
            let mut after_task = None;
            for (key, value) in form_urlencoded::parse(query) {
                match &*key {
                    "after_due" => after_due = value.parse::<i64>().ok(),
                    "after_task" if value.len() <= 200 => after_task = Some(value.into_owned()),
                    _ => {}
                }
            }
            let after = after_due.zip(after_task.as_deref());
            return match self.admin.expected(after, self.page_size).await {
                Ok(rows) => {
                    let next = (rows.len() == self.page_size)
                        .then(|| rows.last())
                        .flatten()
                        .map(|last| {
                            form_urlencoded::Serializer::new(String::new())
                                .append_pair("after_due", &last.due_at_ms.to_string())
                                .append_pair("after_task", &last.task_id)
                                .finish()
                        });
                    page(
                        StatusCode::OK,
                        pages::expected(&frame, &rows, now_ms(), self.overdue_after, next, note),
                    )
                }
                Err(error) => self.unavailable(&error),
            };
        }
        self.error(StatusCode::NOT_FOUND, "Not found", "No such page.")
    }

    async fn post(
        &self,
        path: &str,
        form: &[(String, String)],
        grant: &Grant,
        csrf: &str,
    ) -> Response<Full<Bytes>> {
        let who = grant.who();
        if let Some(rest) = path.strip_prefix("/events/") {
            let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
            let Ok(id) = id.parse::<i64>() else {
                return self.error(StatusCode::NOT_FOUND, "Not found", "No such event.");
            };
            let back = self.link(&format!("/events/{id}"));
            return match action {
                "replay" => match self.admin.replay_event(id).await {
                    Ok(n) => {
                        record("replay_event", who, n);
                        let note = if n == 0 {
                            "note=kept".to_owned()
                        } else {
                            format!("note=replayed&n={n}")
                        };
                        redirect(&format!("{back}?{note}"))
                    }
                    Err(error) => self.unavailable(&error),
                },
                "discard" => match self.admin.discard(id).await {
                    Ok(true) => {
                        record("discard", who, 1);
                        redirect(&self.link("/events?state=dead&note=discarded"))
                    }
                    Ok(false) => {
                        record("discard", who, 0);
                        redirect(&format!("{back}?note=kept"))
                    }
                    Err(error) => self.unavailable(&error),
                },
                _ => self.error(StatusCode::NOT_FOUND, "Not found", "No such action."),
            };
        }
        match path {
            "/tasks/replay" => {
                let Some(task) = field(form, "task").filter(|task| !task.is_empty()) else {
                    return self.error(StatusCode::BAD_REQUEST, "Bad form", "No task id.");
                };
                match self.admin.replay_task(&task).await {
                    Ok(n) => {
                        record("replay_task", who, n);
                        let query = form_urlencoded::Serializer::new(String::new())
                            .append_pair("task", &task)
                            .append_pair("note", "replayed")
                            .append_pair("n", &n.to_string())
                            .finish();
                        redirect(&self.link(&format!("/events?{query}")))
                    }
                    Err(error) => self.unavailable(&error),
                }
            }
            "/replay" => {
                let encoded = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form.iter())
                    .finish();
                let filter = FilterForm::parse(encoded.as_bytes());
                let confirmed = field(form, "confirm").as_deref() == Some("yes");
                if !confirmed {
                    let finished = self.finished_count(&filter).await;
                    return match finished {
                        Ok(count) => {
                            let frame = self.frame(grant, csrf);
                            page(
                                StatusCode::OK,
                                pages::replay_preview(&frame, &filter, count, self.replay_cap),
                            )
                        }
                        Err(error) => self.unavailable(&error),
                    };
                }
                match self
                    .admin
                    .replay_matching(&filter.filter, self.replay_cap)
                    .await
                {
                    Ok(n) => {
                        record("replay_matching", who, n);
                        redirect(&self.link(&format!(
                            "/events?{}&note=replayed&n={n}",
                            filter.query(None)
                        )))
                    }
                    Err(error) => self.unavailable(&error),
                }
            }
            "/prune" => match self.admin.prune().await {
                Ok(n) => {
                    record("prune", who, n);
                    redirect(&self.link(&format!("/?note=pruned&n={n}")))
                }
                Err(error) => self.unavailable(&error),
            },
            "/expected/poll" => {
                let task = field(form, "task").unwrap_or_default();
                match self.admin.poll_now(&task).await {
                    Ok(found) => {
                        record("poll_now", who, u64::from(found));
                        redirect(&self.link(if found {
                            "/expected?note=polled"
                        } else {
                            "/expected?note=kept"
                        }))
                    }
                    Err(error) => self.unavailable(&error),
                }
            }
            _ => self.error(StatusCode::NOT_FOUND, "Not found", "No such action."),
        }
    }

    /// How many finished events the filter takes (what a bulk replay would change).
    async fn finished_count(&self, form: &FilterForm) -> Result<crate::inbox::Count, InboxError> {
        use crate::inbox::{Count, EventState};
        let mut total = 0;
        let mut exact = true;
        let states = match form.filter.state {
            Some(state @ (EventState::Done | EventState::Dead)) => vec![state],
            Some(_) => Vec::new(),
            None => vec![EventState::Dead, EventState::Done],
        };
        for state in states {
            let mut filter = form.filter.clone();
            filter.state = Some(state);
            let count = self.admin.count(&filter, COUNT_CAP).await?;
            exact &= count.is_exact();
            total += count.value();
        }
        Ok(if exact {
            Count::Exact(total)
        } else {
            Count::AtLeast(total)
        })
    }
}

/// The fields of a form body (at most [`MAX_FORM`] bytes), or `None`.
async fn read_form<B>(body: B) -> Option<Vec<(String, String)>>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let bytes = Limited::new(body, MAX_FORM)
        .collect()
        .await
        .ok()?
        .to_bytes();
    Some(
        form_urlencoded::parse(&bytes)
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect(),
    )
}

/// The first value of the form field `name`.
fn field(form: &[(String, String)], name: &str) -> Option<String> {
    form.iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.clone())
}
