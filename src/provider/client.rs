//! The provider client: one `GET` per task-details question, authenticated with the
//! user's API key, rate limited, retried with exponential backoff and jitter on `429`
//! (honouring `Retry-After`, in seconds or as an HTTP date), `5xx`, timeouts and
//! connection errors; and the jobs route's `POST` that creates a task, retried only
//! where the provider cannot have created it (a `429`, a connection never made).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde_json::Value;

use super::answer::{TaskAnswer, integer, text};
use super::error::{AnswerError, ProviderError};
use super::family::{JOBS_CREATE_PATH, JOBS_RECORD_INFO_PATH, record_info_path};
use super::rate::{PER_TASK_INTERVAL, RateLimiter};
use super::submit::JobsTask;
use crate::event::{ApiRoute, Family};
use crate::store::random_u64;

/// Kie AI's API, the default base URL.
pub const KIE_BASE_URL: &str = "https://api.kie.ai";
/// sunoapi.org's API, which answers the same paths.
pub const SUNOAPI_BASE_URL: &str = "https://api.sunoapi.org";
/// How long one request may take by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times a request is retried by default (so at most 4 attempts).
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// The global rate by default, in requests per second.
pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 5.0;
/// The largest answer read, in bytes.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// The longest task id taken from a creation answer, in bytes.
const MAX_TASK_ID_BYTES: usize = 256;

/// Whether a failed request may be sent again: a task-details question always; a
/// creation only where the provider cannot have created the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
    Idempotent,
    CreatesTask,
}

/// A client for the task-details (`record-info`) endpoints of every family and the
/// jobs route, and for creating jobs-route tasks.
///
/// Clones share the connection pool and the rate limits.
///
/// ```
/// use std::time::Duration;
/// use suno_callback::provider::{ProviderClient, SUNOAPI_BASE_URL};
///
/// let client = ProviderClient::builder("api-key")
///     .base_url(SUNOAPI_BASE_URL)
///     .requests_per_second(2.0)
///     .timeout(Duration::from_secs(5))
///     .build()?;
/// assert!(!format!("{client:?}").contains("api-key"));
/// # Ok::<(), suno_callback::provider::ProviderError>(())
/// ```
#[derive(Clone)]
pub struct ProviderClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    authorization: HeaderValue,
    max_retries: u32,
    backoff: Duration,
    max_backoff: Duration,
    limiter: RateLimiter,
}

impl fmt::Debug for ProviderClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderClient")
            .field("base_url", &self.inner.base.as_str())
            .field("api_key", &"[redacted]")
            .field("max_retries", &self.inner.max_retries)
            .field("backoff", &self.inner.backoff)
            .field("limiter", &self.inner.limiter)
            .finish()
    }
}

impl ProviderClient {
    /// A builder with the account's API key.
    pub fn builder(api_key: impl Into<String>) -> ProviderClientBuilder {
        ProviderClientBuilder {
            api_key: api_key.into(),
            base_url: KIE_BASE_URL.to_owned(),
            timeout: DEFAULT_REQUEST_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            per_second: DEFAULT_REQUESTS_PER_SECOND,
            root_certificates: Vec::new(),
        }
    }

    /// Asks `family`'s task-details endpoint (classic route) about `task_id` and reads
    /// the answer.
    ///
    /// ```no_run
    /// # async fn run(client: suno_callback::provider::ProviderClient) -> Result<(), Box<dyn std::error::Error>> {
    /// use suno_callback::Family;
    ///
    /// let answer = client.task_details(Family::Music, "2fac7b1e").await?;
    /// println!("{:?}", answer.status());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Family::Unknown`] ([`is_unknown_family`](ProviderError::is_unknown_family)),
    /// or the request or its answer failed (see [`ProviderError`]).
    pub async fn task_details(
        &self,
        family: Family,
        task_id: &str,
    ) -> Result<TaskAnswer, ProviderError> {
        let path = record_info_path(family).ok_or_else(ProviderError::unknown_family)?;
        let body = self.fetch(path, task_id).await?;
        TaskAnswer::from_json(family, &body).map_err(ProviderError::answer)
    }

    /// Asks the jobs route's task-details endpoint (`/api/v1/jobs/recordInfo`) about
    /// `task_id`, whatever its model, and reads the answer.
    ///
    /// ```no_run
    /// # async fn run(client: suno_callback::provider::ProviderClient) -> Result<(), Box<dyn std::error::Error>> {
    /// let answer = client.jobs_task_details("2fac7b1e").await?;
    /// println!("{} {:?}", answer.family(), answer.status());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// The request or its answer failed (see [`ProviderError`]).
    pub async fn jobs_task_details(&self, task_id: &str) -> Result<TaskAnswer, ProviderError> {
        let body = self.fetch(JOBS_RECORD_INFO_PATH, task_id).await?;
        TaskAnswer::from_jobs_json(&body).map_err(ProviderError::answer)
    }

    /// The task details of a task of `route` and `family`.
    pub(crate) async fn details(
        &self,
        route: ApiRoute,
        family: Family,
        task_id: &str,
    ) -> Result<TaskAnswer, ProviderError> {
        match route {
            ApiRoute::Jobs => self.jobs_task_details(task_id).await,
            _ => self.task_details(family, task_id).await,
        }
    }

    /// Creates a task on the jobs route (`POST /api/v1/jobs/createTask` with
    /// `{"model", "callBackUrl", "input"}`) and returns its task id. It registers
    /// nothing: [`Reconciler::submit`](super::Reconciler::submit) creates the task and
    /// registers it for recovery in one call.
    ///
    /// The request is retried only where the provider cannot have created the task (a
    /// `429`, a connection that was never made): a timeout or a `5xx` is returned, as a
    /// second request could create a second task and cost its credits twice.
    ///
    /// ```no_run
    /// # async fn run(client: suno_callback::provider::ProviderClient) -> Result<(), Box<dyn std::error::Error>> {
    /// use suno_callback::provider::JobsTask;
    ///
    /// let task = JobsTask::new("ai-music-api/generate", serde_json::json!({"prompt": "a calm piano piece"}))
    ///     .callback_url("https://api.example.com/callbacks/suno");
    /// let task_id = client.create_jobs_task(&task).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// The task has no callback URL ([`is_config`](ProviderError::is_config)), the
    /// request failed, or the provider refused it (its `code`:
    /// [`AnswerError::refused_code`] of [`answer_error`](ProviderError::answer_error)).
    pub async fn create_jobs_task(&self, task: &JobsTask) -> Result<String, ProviderError> {
        let callback_url = task
            .callback_url_ref()
            .ok_or_else(|| ProviderError::config("the task has no callback URL"))?;
        let url = self.url(JOBS_CREATE_PATH)?;
        let body = serde_json::json!({
            "model": task.model(),
            "callBackUrl": callback_url,
            "input": task.input(),
        });
        // Serializing a `Value` cannot fail.
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let http = &self.inner.http;
        let post = || {
            http.post(url.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone())
        };
        let answer = self.send(Retry::CreatesTask, None, post).await?;
        created_task_id(&answer).map_err(ProviderError::answer)
    }

    /// `path` under the base URL.
    fn url(&self, path: &str) -> Result<Url, ProviderError> {
        self.inner
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|_| ProviderError::config("base URL cannot take a path"))
    }

    /// The raw answer of a task-details endpoint, after retries.
    async fn fetch(&self, path: &str, task_id: &str) -> Result<Vec<u8>, ProviderError> {
        let mut url = self.url(path)?;
        url.query_pairs_mut().append_pair("taskId", task_id);
        let http = &self.inner.http;
        self.send(Retry::Idempotent, Some(task_id), || http.get(url.clone()))
            .await
    }

    /// Sends the request `build` makes, rate limited (per task when it is about one),
    /// retried as `retry` allows; the body of the `200` answer.
    async fn send(
        &self,
        retry: Retry,
        task_id: Option<&str>,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, ProviderError> {
        let inner = &*self.inner;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match task_id {
                Some(task_id) => inner.limiter.acquire(task_id).await,
                None => inner.limiter.acquire_global().await,
            }
            let sent = build()
                .header(AUTHORIZATION, inner.authorization.clone())
                .send()
                .await;
            let retry_after = match sent {
                Ok(response) if response.status() == StatusCode::OK => {
                    return read_limited(response).await;
                }
                Ok(response) => {
                    let status = response.status();
                    let retryable = status == StatusCode::TOO_MANY_REQUESTS
                        || (retry == Retry::Idempotent && status.is_server_error());
                    if !retryable || attempt > inner.max_retries {
                        return Err(ProviderError::status(status.as_u16(), attempt));
                    }
                    let asked = retry_after(
                        response.headers().get(RETRY_AFTER),
                        std::time::SystemTime::now(),
                    );
                    if asked.is_some_and(|wait| wait > inner.max_backoff) {
                        // Waiting that long here would hold the caller; it retries later.
                        return Err(ProviderError::status(status.as_u16(), attempt));
                    }
                    tracing::debug!(
                        status = status.as_u16(),
                        attempt,
                        "provider request will be retried"
                    );
                    asked
                }
                Err(error) => {
                    let retryable =
                        error.is_connect() || (retry == Retry::Idempotent && error.is_timeout());
                    if !retryable || attempt > inner.max_retries {
                        return Err(ProviderError::transport(error));
                    }
                    tracing::debug!(
                        timeout = error.is_timeout(),
                        attempt,
                        "provider request will be retried"
                    );
                    None
                }
            };
            let wait = retry_after.unwrap_or_else(|| self.backoff(attempt));
            tokio::time::sleep(wait).await;
        }
    }

    /// Exponential backoff with "equal jitter": half the doubled delay, plus a random
    /// part of the other half, capped at the maximum.
    fn backoff(&self, attempt: u32) -> Duration {
        let inner = &*self.inner;
        let doubled = inner
            .backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .min(inner.max_backoff);
        let half = doubled / 2;
        let millis = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        let jitter = if millis == 0 {
            0
        } else {
            random_u64() % millis
        };
        half + Duration::from_millis(jitter)
    }
}

/// How long `Retry-After` asks to wait: a number of seconds, or an HTTP date (RFC 9110
/// §10.2.3), counted from `now` (a date already past asks for no wait). Anything else
/// is ignored, and the backoff applies.
fn retry_after(value: Option<&HeaderValue>, now: std::time::SystemTime) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The task id of a creation answer, `{"code": 200, "data": {"taskId": …}}`.
fn created_task_id(body: &[u8]) -> Result<String, AnswerError> {
    let root: Value = serde_json::from_slice(body).map_err(|e| AnswerError::json(&e))?;
    let code = root.get("code").and_then(integer);
    if code != Some(200) {
        let msg = root.get("msg").and_then(text).unwrap_or_default();
        return Err(AnswerError::refused(code.unwrap_or(0), &msg));
    }
    root.get("data")
        .and_then(|data| data.get("taskId").or_else(|| data.get("task_id")))
        .and_then(text)
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty() && id.len() <= MAX_TASK_ID_BYTES)
        .ok_or(AnswerError::missing("taskId"))
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, ProviderError> {
    if response
        .content_length()
        .is_some_and(|len| len > MAX_ANSWER_BYTES as u64)
    {
        return Err(ProviderError::too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ProviderError::transport)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(ProviderError::too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Configures a [`ProviderClient`].
pub struct ProviderClientBuilder {
    api_key: String,
    base_url: String,
    timeout: Duration,
    max_retries: u32,
    backoff: Duration,
    max_backoff: Duration,
    per_second: f64,
    /// Extra roots as given (PEM or DER), read at build.
    root_certificates: Vec<Vec<u8>>,
}

impl fmt::Debug for ProviderClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderClientBuilder")
            .field("api_key", &"[redacted]")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .field("max_backoff", &self.max_backoff)
            .field("per_second", &self.per_second)
            .field("root_certificates", &self.root_certificates.len())
            .finish()
    }
}

impl ProviderClientBuilder {
    /// The API's base URL (default [`KIE_BASE_URL`]).
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }
    /// How long one request may take, connection included (default 10 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// How many times a request is retried after a `429`, a `5xx`, a timeout or a
    /// connection error (default 3).
    #[must_use]
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }
    /// The first backoff delay, doubled on each retry (default 500 ms), and the largest
    /// (default 30 s). A `Retry-After` longer than the largest is not waited for: the
    /// request fails and the caller tries again later.
    #[must_use]
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = first;
        self.max_backoff = max;
        self
    }
    /// The most requests per second this client sends, all tasks together (default
    /// 5). Each task also gets at most 3 per second.
    #[must_use]
    pub fn requests_per_second(mut self, per_second: f64) -> Self {
        self.per_second = per_second;
        self
    }
    /// Trusts `certificate` as a root, besides the platform's certificate store: for
    /// an API reached through a proxy with its own certificate authority, or a test
    /// server with a self-signed certificate. PEM (one certificate or several) or DER;
    /// [`build`](Self::build) refuses one it cannot read.
    ///
    /// ```no_run
    /// use suno_callback::provider::ProviderClient;
    ///
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = ProviderClient::builder("api-key")
    ///     .base_url("https://suno-proxy.internal")
    ///     .add_root_certificate(std::fs::read("/etc/app/internal-ca.pem")?)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn add_root_certificate(mut self, certificate: impl AsRef<[u8]>) -> Self {
        self.root_certificates.push(certificate.as_ref().to_vec());
        self
    }

    /// Checks the settings and builds the client.
    ///
    /// # Errors
    ///
    /// [`is_config`](ProviderError::is_config) when the API key is empty or not a valid
    /// header value, the base URL is not an `http` or `https` URL, the rate or the
    /// timeout is not positive, a root certificate cannot be read, or the HTTP client
    /// cannot be built. Nothing is sent.
    pub fn build(self) -> Result<ProviderClient, ProviderError> {
        if self.api_key.trim().is_empty() {
            return Err(ProviderError::config("API key is empty"));
        }
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {}", self.api_key.trim()))
                .map_err(|_| ProviderError::config("API key is not a valid header value"))?;
        authorization.set_sensitive(true);
        let mut base = Url::parse(&self.base_url)
            .map_err(|_| ProviderError::config("base URL is not a URL"))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ProviderError::config("base URL must be http or https"));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        if !(self.per_second.is_finite() && self.per_second > 0.0) {
            return Err(ProviderError::config(
                "requests per second must be positive",
            ));
        }
        if self.timeout.is_zero() {
            return Err(ProviderError::config("timeout must be positive"));
        }
        let roots = root_certificates(&self.root_certificates)?;
        let added_roots = !roots.is_empty();
        let mut http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none());
        if added_roots {
            http = http.tls_certs_merge(roots);
        }
        let http = http.build().map_err(|_| {
            ProviderError::config(if added_roots {
                "HTTP client could not be built (TLS roots: is each root certificate valid?)"
            } else {
                "HTTP client could not be built (TLS roots)"
            })
        })?;
        Ok(ProviderClient {
            inner: Arc::new(Inner {
                http,
                base,
                authorization,
                max_retries: self.max_retries,
                backoff: self.backoff,
                max_backoff: self.max_backoff.max(self.backoff),
                limiter: RateLimiter::new(self.per_second, PER_TASK_INTERVAL),
            }),
        })
    }
}

/// The roots given to [`ProviderClientBuilder::add_root_certificate`]: PEM text (every
/// certificate in it) or one DER certificate, checked when the client is built.
fn root_certificates(given: &[Vec<u8>]) -> Result<Vec<reqwest::Certificate>, ProviderError> {
    let mut roots = Vec::new();
    for bytes in given {
        if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
            let certificates = reqwest::Certificate::from_pem_bundle(bytes)
                .ok()
                .filter(|certificates| !certificates.is_empty())
                .ok_or_else(|| {
                    ProviderError::config("root certificate: no certificate in the PEM text")
                })?;
            roots.extend(certificates);
        } else {
            let certificate = reqwest::Certificate::from_der(bytes)
                .map_err(|_| ProviderError::config("root certificate is neither PEM nor DER"))?;
            roots.push(certificate);
        }
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use http::HeaderValue;

    use super::retry_after;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        // Sun, 06 Nov 1994 08:49:37 GMT, the RFC's example.
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777);
        let read = |text: &'static str| retry_after(Some(&HeaderValue::from_static(text)), now);
        assert_eq!(read("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            read("Sun, 06 Nov 1994 08:50:07 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            read("Sun, 06 Nov 1994 08:00:00 GMT"),
            Some(Duration::ZERO),
            "a date already past: no wait"
        );
        assert_eq!(read("soon"), None);
        assert_eq!(read("-5"), None);
        assert_eq!(retry_after(None, SystemTime::now()), None);
    }
}
