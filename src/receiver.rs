//! The configured receiver, [`SunoCallbacks`], and its builder.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{BuildError, HandlerError};
use crate::event::{CallbackEvent, Family};
use crate::pipeline::Pipeline;
use crate::pipeline::dispatch::{Handlers, Route, boxed};
use crate::pipeline::intake::DEFAULT_BODY_LIMIT;
use crate::service::{CallbackService, SunoCallbackLayer};
use crate::store::{DedupStore, DynStore, MemoryStore};
use crate::timing::Timing;
use crate::verify::{
    BINDING_MARGIN, BindingStage, Clock, DEFAULT_TOLERANCE, DynVerifier, HmacVerifier,
    SignatureReuse, SystemClock, Verifier, VerifyStage,
};

/// How long a handler may run by default: below the sender's 15 s wait, so a slow
/// handler is answered `500` (and retried) before the sender gives up on the request.
pub const DEFAULT_HANDLER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claim holds a key by default. It must exceed the handler timeout plus the
/// store timeout; when a process dies mid-handler, the next delivery after the lease
/// runs the handler.
pub const DEFAULT_CLAIM_LEASE: Duration = Duration::from_secs(30);
/// How long a processed callback is remembered by default.
pub const DEFAULT_DONE_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a duplicate waits by default for the delivery that holds its key.
pub const DEFAULT_IN_FLIGHT_WAIT: Duration = Duration::from_secs(5);
/// How long one dedup store call may take by default before the store counts as down.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// A configured callback receiver: verification, dedup store and handlers.
///
/// Build one with [`SunoCallbacks::builder`], then mount it as a tower service
/// ([`service`](Self::service)), as a layer around an existing app
/// ([`layer_at`](Self::layer_at)), or in actix-web (`actix_handler`, feature
/// `actix`). Clones share everything, the dedup store included, so one receiver can
/// serve several mountings in one process.
///
/// ```
/// use suno_callback::SunoCallbacks;
///
/// let callbacks = SunoCallbacks::builder()
///     .hmac_key("webhook-hmac-key")
///     .on_complete(|event| async move {
///         for track in event.tracks() {
///             println!("{}: {:?}", event.task_id(), track.audio_url());
///         }
///         Ok(())
///     })
///     .build()?;
/// let app: axum::Router = axum::Router::new().route_service("/callbacks/suno", callbacks.service());
/// # Ok::<(), suno_callback::BuildError>(())
/// ```
#[derive(Clone)]
pub struct SunoCallbacks {
    pipeline: Arc<Pipeline>,
}

impl SunoCallbacks {
    /// A builder with the defaults: in-memory store, 1 MiB body limit, 10 s handler
    /// timeout, 30 s lease, 24 h TTL; no verification until a key or verifier is set.
    pub fn builder() -> SunoCallbacksBuilder {
        SunoCallbacksBuilder::default()
    }

    /// The receiver as a tower [`Service`](tower_service::Service) answering every
    /// request it is given; mount it on the callback path. When the last segment of a
    /// request's path is a family name (`.../wav`), the callback is typed as that
    /// family, so the service can also be mounted with a wildcard or nested:
    ///
    /// ```
    /// # use suno_callback::SunoCallbacks;
    /// # let callbacks = SunoCallbacks::builder().hmac_key("k").build()?;
    /// // answers /callbacks/suno and /callbacks/suno/{family}
    /// let app: axum::Router = axum::Router::new()
    ///     .nest_service("/callbacks/suno", callbacks.service());
    /// # Ok::<(), suno_callback::BuildError>(())
    /// ```
    pub fn service(&self) -> CallbackService {
        CallbackService::new(Arc::clone(&self.pipeline))
    }

    /// A layer that answers requests to `path` and to `path/<segment>` for any one
    /// segment, and passes every other request to the service it wraps, untouched. A
    /// segment naming a family in [`Family::ALL`] (`/callbacks/suno/wav`, ...) types
    /// every callback it receives as that family, failures without a shape included;
    /// any other segment is the shared path (typed by the body's shape), as it is for
    /// [`service`](Self::service) and the actix handler. One trailing slash is ignored.
    ///
    /// The path is compared with the request's path as it reaches the layer. Inside
    /// axum's `Router::nest`, a request reaches a nested router's layers only on a
    /// route of that router (the nested router's fallback is dropped): put the layer on
    /// the outer router with the full path, nest with `nest_service`, or merge the
    /// routes of `router_at` (feature `axum`) into the nested router. See the README's
    /// "Mounting".
    pub fn layer_at(&self, path: impl Into<String>) -> SunoCallbackLayer {
        SunoCallbackLayer::new(path.into(), self.service())
    }

    /// The receiver's routes as an axum `Router` (feature `axum`): `path` and
    /// `path/{segment}` (each also with one trailing slash), answered as
    /// [`layer_at`](Self::layer_at) answers them. Being routes, they survive
    /// `Router::nest` and `Router::merge`, with any state type:
    ///
    /// ```
    /// use axum::{Router, routing::get};
    /// # use suno_callback::SunoCallbacks;
    /// # let callbacks = SunoCallbacks::builder().hmac_key("k").build()?;
    /// let api: Router = Router::new()
    ///     .route("/health", get(|| async { "ok" }))
    ///     .merge(callbacks.router_at("/callbacks/suno"));
    /// // answers /api/callbacks/suno and /api/callbacks/suno/wav
    /// let app: Router = Router::new().nest("/api", api);
    /// # Ok::<(), suno_callback::BuildError>(())
    /// ```
    ///
    /// # Panics
    ///
    /// As axum's `Router::route_service` does: when `path` does not start with `/`, or
    /// when a route of the returned router is merged with a route of the same path.
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn router_at<S>(&self, path: &str) -> axum::Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let base = path.trim_end_matches('/');
        let service = self.service();
        let mut router = axum::Router::new();
        let mut paths = vec![
            format!("{base}/{{segment}}"),
            format!("{base}/{{segment}}/"),
            format!("{base}/"),
        ];
        if !base.is_empty() {
            paths.push(base.to_owned());
        }
        for path in paths {
            router = router.route_service(&path, service.clone());
        }
        router
    }

    /// The receiver as an actix-web handler (feature `actix`), to mount on the callback
    /// path with `web::to`. It shares this receiver's store and handlers with every
    /// other mounting made from it.
    ///
    /// ```
    /// # use suno_callback::SunoCallbacks;
    /// # let callbacks = SunoCallbacks::builder().hmac_key("k").build()?;
    /// let app = actix_web::App::new()
    ///     .route("/callbacks/suno", actix_web::web::to(callbacks.actix_handler()));
    /// # Ok::<(), suno_callback::BuildError>(())
    /// ```
    #[cfg(feature = "actix")]
    #[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
    pub fn actix_handler(&self) -> crate::actix::CallbackHandler {
        crate::actix::CallbackHandler::new(Arc::clone(&self.pipeline))
    }

    /// How many verified requests presented a signature already bound to another
    /// `callbackType` or outcome (refused `401`, or `503` with
    /// [`SignatureReuse::Confirm`]) since the receiver was built. Each one is also
    /// logged at `warn`. Anything above zero means someone holds a captured signed
    /// request, or the sender signed two stages in the same second.
    ///
    /// ```
    /// # use suno_callback::SunoCallbacks;
    /// let callbacks = SunoCallbacks::builder().hmac_key("k").build()?;
    /// assert_eq!(callbacks.reused_signatures(), 0);
    /// # Ok::<(), suno_callback::BuildError>(())
    /// ```
    pub fn reused_signatures(&self) -> u64 {
        self.pipeline
            .binding
            .as_ref()
            .map_or(0, BindingStage::reused)
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "provider-api"))]
impl SunoCallbacks {
    /// The handlers, for the inbox's workers.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn handlers(&self) -> Arc<crate::pipeline::dispatch::Handlers> {
        Arc::clone(&self.pipeline.handlers)
    }

    /// Stage 4's door for verified events, for the reconciler.
    #[cfg(feature = "provider-api")]
    pub(crate) fn admission(&self) -> Arc<dyn crate::pipeline::admit::AdmitVerified> {
        Arc::clone(&self.pipeline) as Arc<dyn crate::pipeline::admit::AdmitVerified>
    }

    /// The task registry, for the reconciler.
    #[cfg(feature = "provider-api")]
    pub(crate) fn task_registry_handle(&self) -> Arc<dyn crate::provider::DynRegistry> {
        Arc::clone(&self.pipeline.provider.registry)
    }
}

impl fmt::Debug for SunoCallbacks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SunoCallbacks")
            .field("pipeline", &self.pipeline)
            .finish()
    }
}

/// Configures a [`SunoCallbacks`]. Every setting has a default but verification: set
/// an HMAC key, a verifier, or explicitly
/// [accept unverified callbacks](Self::dangerously_accept_unverified_callbacks).
pub struct SunoCallbacksBuilder {
    hmac_keys: Vec<Vec<u8>>,
    tolerance: Duration,
    signature_reuse: SignatureReuse,
    clock: Arc<dyn Clock>,
    verifiers: Vec<Arc<dyn DynVerifier>>,
    accept_unverified: bool,
    store: Option<Arc<dyn DynStore>>,
    body_limit: usize,
    timing: Timing,
    handlers: Handlers,
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    inbox: Option<crate::inbox::Inbox>,
    #[cfg(feature = "provider-api")]
    task_registry: Option<Arc<dyn crate::provider::DynRegistry>>,
    #[cfg(feature = "provider-api")]
    confirm: Option<(
        crate::provider::ProviderClient,
        crate::provider::ConfirmMode,
    )>,
}

impl Default for SunoCallbacksBuilder {
    fn default() -> Self {
        Self {
            hmac_keys: Vec::new(),
            tolerance: DEFAULT_TOLERANCE,
            signature_reuse: SignatureReuse::Refuse,
            clock: Arc::new(SystemClock),
            verifiers: Vec::new(),
            accept_unverified: false,
            store: None,
            body_limit: DEFAULT_BODY_LIMIT,
            timing: Timing {
                handler_timeout: DEFAULT_HANDLER_TIMEOUT,
                lease: DEFAULT_CLAIM_LEASE,
                done_ttl: DEFAULT_DONE_TTL,
                in_flight_wait: DEFAULT_IN_FLIGHT_WAIT,
                store_timeout: DEFAULT_STORE_TIMEOUT,
            },
            handlers: Handlers::default(),
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            inbox: None,
            #[cfg(feature = "provider-api")]
            task_registry: None,
            #[cfg(feature = "provider-api")]
            confirm: None,
        }
    }
}

impl SunoCallbacksBuilder {
    /// Adds an active "webhook HMAC key" (raw UTF-8 bytes). Call it again to accept
    /// several keys while rotating: a signature made with any of them is accepted.
    #[must_use]
    pub fn hmac_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.hmac_keys.push(key.as_ref().to_vec());
        self
    }

    /// Adds several active HMAC keys at once.
    #[must_use]
    pub fn hmac_keys<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]>,
    {
        self.hmac_keys
            .extend(keys.into_iter().map(|key| key.as_ref().to_vec()));
        self
    }

    /// How far `X-Webhook-Timestamp` may be from now, either way (default 30
    /// minutes, [`DEFAULT_TOLERANCE`](crate::verify::DEFAULT_TOLERANCE)): wide enough
    /// for the sender's retries after 1, 5 and 15 minutes even if they reuse the first
    /// attempt's headers. Narrow it only if the sender signs each retry anew.
    #[must_use]
    pub fn timestamp_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// What to do with a valid signature presented with another family, stage or
    /// outcome than the one it was first accepted with (default
    /// [`SignatureReuse::Refuse`]: `401`). Each signature an `HmacVerifier` accepts
    /// (from [`hmac_key`](Self::hmac_key), or added with [`verifier`](Self::verifier),
    /// alone or combined) is bound to its first use in the dedup store, for as long as
    /// the builder's timestamp tolerance, so the binding holds across replicas sharing a
    /// store. A request let in by an IP allowlist alone has no signature to bind.
    ///
    /// ```
    /// use suno_callback::SunoCallbacks;
    /// use suno_callback::verify::SignatureReuse;
    ///
    /// let callbacks = SunoCallbacks::builder()
    ///     .hmac_key("webhook-hmac-key")
    ///     .signature_reuse(SignatureReuse::Confirm)
    ///     .build()?;
    /// # Ok::<(), suno_callback::BuildError>(())
    /// ```
    #[must_use]
    pub fn signature_reuse(mut self, policy: SignatureReuse) -> Self {
        self.signature_reuse = policy;
        self
    }

    /// The clock the HMAC timestamp is checked against (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Adds a verifier. All verifiers must accept, the HMAC check (if a key is set)
    /// first, then these in the order they were added.
    #[must_use]
    pub fn verifier(mut self, verifier: impl Verifier) -> Self {
        self.verifiers.push(Arc::new(verifier));
        self
    }

    /// Accepts callbacks without any verification. Anyone who can reach the endpoint
    /// can then make your handlers run with made-up tasks. For local experiments only.
    #[must_use]
    pub fn dangerously_accept_unverified_callbacks(mut self) -> Self {
        self.accept_unverified = true;
        self
    }

    /// The dedup store (default: a new [`MemoryStore`]).
    #[must_use]
    pub fn store(mut self, store: impl DedupStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The largest body accepted, in bytes (default 1 MiB); larger ones get `413`.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// How long a handler may run (default 10 s) before it is dropped, its claim
    /// released and `500` answered.
    #[must_use]
    pub fn handler_timeout(mut self, timeout: Duration) -> Self {
        self.timing.handler_timeout = timeout;
        self
    }

    /// How long a claim holds its key (default 30 s); must exceed the handler timeout
    /// plus the store timeout, so a claim cannot expire before it is settled.
    #[must_use]
    pub fn claim_lease(mut self, lease: Duration) -> Self {
        self.timing.lease = lease;
        self
    }

    /// How long a processed callback is remembered as done (default 24 h). It must be
    /// at least twice the [timestamp tolerance](Self::timestamp_tolerance) plus
    /// [`BINDING_MARGIN`](crate::verify::BINDING_MARGIN), the longest a signature can
    /// be replayed; [`build`](Self::build) refuses a shorter one.
    #[must_use]
    pub fn done_ttl(mut self, ttl: Duration) -> Self {
        self.timing.done_ttl = ttl;
        self
    }

    /// How long a delivery that finds its callback in flight waits for the outcome
    /// before answering `409` (default 5 s).
    #[must_use]
    pub fn in_flight_wait(mut self, wait: Duration) -> Self {
        self.timing.in_flight_wait = wait;
        self
    }

    /// How long one dedup store call may take before the store counts as unavailable
    /// (default 2 s).
    #[must_use]
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.timing.store_timeout = timeout;
        self
    }

    /// Inbox mode (features `sqlite`, `postgres`): a verified callback is stored in
    /// `inbox` and answered `200 accepted` at once; the handlers run later, in the
    /// inbox's workers ([`Inbox::start_workers`](crate::inbox::Inbox::start_workers)),
    /// with retries. The inbox dedupes; the dedup store ([`store`](Self::store)) still
    /// holds the signature binding of verification, so replicas sharing a PostgreSQL
    /// inbox should share a store too (`RedisStore`).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use suno_callback::{SunoCallbacks, inbox::Inbox};
    ///
    /// let inbox = Inbox::builder().connect("sqlite://inbox.db").await?;
    /// let callbacks = SunoCallbacks::builder()
    ///     .hmac_key("webhook-hmac-key")
    ///     .on_complete(|event| async move { println!("{}", event.task_id()); Ok(()) })
    ///     .inbox(inbox.clone())
    ///     .build()?;
    /// let workers = inbox.start_workers(&callbacks);
    /// // ... serve `callbacks.service()`, then:
    /// workers.shutdown().await;
    /// # Ok(()) }
    /// ```
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
    #[must_use]
    pub fn inbox(mut self, inbox: crate::inbox::Inbox) -> Self {
        self.inbox = Some(inbox);
        self
    }

    /// Handles the callbacks of `route`: one family's successes at one stage, all its
    /// successes, all its failures, or every failure. Every family is registered this
    /// way, with the same timeout, panic and answer rules; [`Route`] says which
    /// handler a callback goes to when several could take it.
    ///
    /// ```
    /// use suno_callback::{Family, Route, SunoCallbacks};
    /// use suno_callback::event::Payload;
    ///
    /// let callbacks = SunoCallbacks::builder()
    ///     .hmac_key("webhook-hmac-key")
    ///     .on(Route::success(Family::Wav), |event| async move {
    ///         if let Payload::Wav(wav) = event.payload() {
    ///             println!("{}: {:?}", event.task_id(), wav.audio_wav_url());
    ///         }
    ///         Ok(())
    ///     })
    ///     .on(Route::stage(Family::Voice, "wait_validating"), |event| async move {
    ///         println!("{} waits for validation", event.task_id());
    ///         Ok(())
    ///     })
    ///     .on(Route::any_failure(), |event| async move {
    ///         eprintln!("{} {} failed: {:?}", event.family(), event.task_id(), event.msg());
    ///         Ok(())
    ///     })
    ///     .build()?;
    /// # Ok::<(), suno_callback::BuildError>(())
    /// ```
    #[must_use]
    pub fn on<F, Fut>(mut self, route: Route, handler: F) -> Self
    where
        F: Fn(CallbackEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.handlers.insert(route, boxed(handler));
        self
    }

    /// Handles music `text` callbacks (lyrics or text done): the same as
    /// `.on(Route::stage(Family::Music, "text"), handler)`.
    #[must_use]
    pub fn on_text<F, Fut>(self, handler: F) -> Self
    where
        F: Fn(CallbackEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.on(Route::stage(Family::Music, "text"), handler)
    }

    /// Handles music `first` callbacks (first track done): the same as
    /// `.on(Route::stage(Family::Music, "first"), handler)`.
    #[must_use]
    pub fn on_first<F, Fut>(self, handler: F) -> Self
    where
        F: Fn(CallbackEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.on(Route::stage(Family::Music, "first"), handler)
    }

    /// Handles music `complete` callbacks (all tracks done): the same as
    /// `.on(Route::stage(Family::Music, "complete"), handler)`.
    #[must_use]
    pub fn on_complete<F, Fut>(self, handler: F) -> Self
    where
        F: Fn(CallbackEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.on(Route::stage(Family::Music, "complete"), handler)
    }

    /// Handles failures of every family that has no [`Route::failure`] handler of its
    /// own: the same as `.on(Route::any_failure(), handler)`.
    #[must_use]
    pub fn on_failure<F, Fut>(self, handler: F) -> Self
    where
        F: Fn(CallbackEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.on(Route::any_failure(), handler)
    }

    /// Handles every callback that no route takes: unknown stages, families without a
    /// handler, successes of no known family. Without it such callbacks are answered
    /// `200 ignored`.
    #[must_use]
    pub fn fallback<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(CallbackEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.handlers.set_fallback(boxed(handler));
        self
    }

    /// Where expected tasks are kept (feature `provider-api`; default a
    /// [`MemoryRegistry`](crate::provider::MemoryRegistry)). A final callback removes
    /// its task from it; the [`Reconciler`](crate::provider::Reconciler) polls the rest.
    ///
    /// ```
    /// use suno_callback::SunoCallbacks;
    /// use suno_callback::provider::MemoryRegistry;
    ///
    /// let callbacks = SunoCallbacks::builder()
    ///     .hmac_key("webhook-hmac-key")
    ///     .task_registry(MemoryRegistry::new())
    ///     .build()?;
    /// # Ok::<(), suno_callback::BuildError>(())
    /// ```
    #[cfg(feature = "provider-api")]
    #[cfg_attr(docsrs, doc(cfg(feature = "provider-api")))]
    #[must_use]
    pub fn task_registry(mut self, registry: impl crate::provider::TaskRegistry) -> Self {
        self.task_registry = Some(Arc::new(registry));
        self
    }

    /// Confirm mode (feature `provider-api`): before dispatching a verified callback of
    /// the families in `mode`, ask `client` the task's details, and dispatch what the
    /// provider says, never what only the unsigned body says. While the provider does
    /// not know the outcome, the callback is answered `503` with `Retry-After`.
    ///
    /// ```
    /// use suno_callback::SunoCallbacks;
    /// use suno_callback::provider::{ConfirmMode, ProviderClient};
    ///
    /// let client = ProviderClient::builder("api-key").build()?;
    /// let callbacks = SunoCallbacks::builder()
    ///     .hmac_key("webhook-hmac-key")
    ///     .confirm(client, ConfirmMode::all())
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "provider-api")]
    #[cfg_attr(docsrs, doc(cfg(feature = "provider-api")))]
    #[must_use]
    pub fn confirm(
        mut self,
        client: crate::provider::ProviderClient,
        mode: crate::provider::ConfirmMode,
    ) -> Self {
        self.confirm = Some((client, mode));
        self
    }

    /// Checks the configuration and builds the receiver.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] when:
    ///
    /// - nothing verifies callbacks (no key, no verifier) and
    ///   [`dangerously_accept_unverified_callbacks`](Self::dangerously_accept_unverified_callbacks)
    ///   was not called ([`BuildError::is_no_verification`]);
    /// - a key is empty ([`BuildError::is_empty_key`]);
    /// - a setting is out of range ([`BuildError::is_invalid_setting`]): a zero handler timeout, store timeout, done TTL
    ///   or body limit; a claim lease not longer than the handler timeout plus the
    ///   store timeout; a done TTL shorter than a signature can be replayed (twice the
    ///   timestamp tolerance plus [`BINDING_MARGIN`](crate::verify::BINDING_MARGIN)).
    pub fn build(self) -> Result<SunoCallbacks, BuildError> {
        let timing = self.timing;
        if timing.handler_timeout.is_zero() {
            return Err(BuildError::invalid_setting(
                "handler timeout must be positive",
            ));
        }
        // The lease runs from the claim to the settling call after the handler: it must
        // cover the handler's whole time and the store call that settles it.
        if timing.lease <= timing.handler_timeout + timing.store_timeout {
            return Err(BuildError::invalid_setting(
                "claim lease must be longer than the handler timeout plus the store timeout",
            ));
        }
        if timing.done_ttl.is_zero() || timing.store_timeout.is_zero() || self.body_limit == 0 {
            return Err(BuildError::invalid_setting(
                "done TTL, store timeout and body limit must be positive",
            ));
        }
        // A signature stays valid until its timestamp leaves the tolerance, which may be
        // up to twice the tolerance after it was first accepted (a timestamp ahead of the
        // clock). A replay within that time must still find its callback done.
        let replayable_for = self
            .tolerance
            .saturating_mul(2)
            .saturating_add(BINDING_MARGIN);
        if timing.done_ttl < replayable_for {
            return Err(BuildError::invalid_setting(format!(
                "done TTL ({:?}) must be at least twice the timestamp tolerance plus {:?} \
                 ({:?}), or a replayed callback could run again",
                timing.done_ttl, BINDING_MARGIN, replayable_for
            )));
        }
        let mut verifiers = Vec::with_capacity(self.verifiers.len() + 1);
        if !self.hmac_keys.is_empty() {
            let hmac = HmacVerifier::new(&self.hmac_keys)?
                .tolerance(self.tolerance)
                .shared_clock(Arc::clone(&self.clock));
            verifiers.push(Arc::new(hmac) as Arc<dyn DynVerifier>);
        }
        // Every signature an `HmacVerifier` accepts is bound, whether its key came from
        // `hmac_key` or the verifier was added with `verifier` (alone or combined).
        let binding = Some(BindingStage::new(
            self.tolerance,
            Arc::clone(&self.clock),
            self.signature_reuse,
        ));
        verifiers.extend(self.verifiers);
        let verify = VerifyStage::new(verifiers);
        if verify.is_empty() {
            if !self.accept_unverified {
                return Err(BuildError::no_verification());
            }
            tracing::warn!(
                "suno-callback accepts UNVERIFIED callbacks: anyone who can reach the \
                 endpoint can trigger the handlers"
            );
        }
        let store = self
            .store
            .unwrap_or_else(|| Arc::new(MemoryStore::new()) as Arc<dyn DynStore>);
        Ok(SunoCallbacks {
            pipeline: Arc::new(Pipeline {
                body_limit: self.body_limit,
                verify,
                binding,
                store,
                waiters: crate::pipeline::claim::Waiters::default(),
                completing: Arc::default(),
                handlers: Arc::new(self.handlers),
                timing,
                #[cfg(any(feature = "sqlite", feature = "postgres"))]
                inbox: self.inbox,
                #[cfg(feature = "provider-api")]
                provider: crate::provider::ProviderHooks::new(self.task_registry, self.confirm),
            }),
        })
    }
}

impl SunoCallbacksBuilder {
    /// The inbox, for `Debug`.
    fn inbox_mode(&self) -> Option<&dyn fmt::Debug> {
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        if let Some(inbox) = &self.inbox {
            return Some(inbox);
        }
        None
    }
}

impl fmt::Debug for SunoCallbacksBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SunoCallbacksBuilder")
            .field(
                "hmac_keys",
                &format_args!("[redacted; {}]", self.hmac_keys.len()),
            )
            .field("tolerance", &self.tolerance)
            .field("signature_reuse", &self.signature_reuse)
            .field("verifiers", &self.verifiers.len())
            .field("accept_unverified", &self.accept_unverified)
            .field("store", &self.store)
            .field("body_limit", &self.body_limit)
            .field("timing", &self.timing)
            .field("handlers", &self.handlers)
            .field("inbox", &self.inbox_mode())
            .finish_non_exhaustive()
    }
}
