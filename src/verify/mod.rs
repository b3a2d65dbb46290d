//! Stage 3 of the pipeline: is this request really from the sender?
//!
//! A [`Verifier`] looks at the request (headers, peer address, task id, body) and
//! accepts or refuses it; a refusal is answered `401`. The built-in verifiers are
//! [`HmacVerifier`] (the sender's documented signature) and [`IpAllowlist`]; combine
//! them with [`VerifierExt::and`] / [`VerifierExt::or`], or write your own.

mod binding;
mod clock;
mod hmac;
mod ip;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use http::{HeaderMap, HeaderName};

pub use self::binding::{BINDING_MARGIN, SignatureReuse};
pub(crate) use self::binding::{BindingStage, Unbound};
pub use self::clock::{Clock, ManualClock, SystemClock};
pub use self::hmac::{DEFAULT_TOLERANCE, HmacVerifier, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
pub use self::ip::{InvalidIpRange, IpAllowlist};

/// What a verifier sees of a callback request. Its `Debug` lists the header names
/// only, so logging it never shows a signature.
#[derive(Clone, Copy)]
pub struct VerifyRequest<'a> {
    headers: &'a HeaderMap,
    peer: Option<SocketAddr>,
    task_id: &'a str,
    callback_type: &'a str,
    body: &'a [u8],
    /// Set by an `HmacVerifier` that accepted the signature: the pipeline then binds it.
    signed: Option<&'a std::sync::atomic::AtomicBool>,
}

impl<'a> VerifyRequest<'a> {
    pub(crate) fn with_signed_flag(mut self, flag: &'a std::sync::atomic::AtomicBool) -> Self {
        self.signed = Some(flag);
        self
    }

    pub(crate) fn mark_signed(&self) {
        if let Some(flag) = self.signed {
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// A request with these headers, for this task id and `callbackType`.
    pub fn new(headers: &'a HeaderMap, task_id: &'a str, callback_type: &'a str) -> Self {
        Self {
            headers,
            peer: None,
            task_id,
            callback_type,
            body: &[],
            signed: None,
        }
    }

    /// The connection's peer address.
    #[must_use]
    pub fn with_peer(mut self, peer: SocketAddr) -> Self {
        self.peer = Some(peer);
        self
    }

    /// The raw body.
    #[must_use]
    pub fn with_body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }

    /// The request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The connection's peer address, when the mounting provides it.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The task id from the body.
    pub fn task_id(&self) -> &'a str {
        self.task_id
    }

    /// The `callbackType` from the body (`""` when absent).
    pub fn callback_type(&self) -> &'a str {
        self.callback_type
    }

    /// The raw body. The sender does not sign it.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

impl fmt::Debug for VerifyRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyRequest")
            .field("header_names", &self.headers.keys().collect::<Vec<_>>())
            .field("peer", &self.peer)
            .field("task_id", &self.task_id)
            .field("callback_type", &self.callback_type)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Decides whether a callback request comes from the sender.
///
/// Returning a future lets a check look something up; checks that need nothing
/// return `std::future::ready(..)`.
///
/// ```
/// use std::future::{ready, Future};
/// use suno_callback::verify::{Verifier, VerifyError, VerifyRequest};
///
/// /// Accepts only task ids this service submitted (here: a fixed prefix).
/// struct OurTasks;
///
/// impl Verifier for OurTasks {
///     fn verify(&self, request: &VerifyRequest<'_>)
///         -> impl Future<Output = Result<(), VerifyError>> + Send {
///         ready(if request.task_id().starts_with("ours-") {
///             Ok(())
///         } else {
///             Err(VerifyError::custom("unknown task"))
///         })
///     }
/// }
/// ```
pub trait Verifier: Send + Sync + 'static {
    /// Accepts (`Ok`) or refuses (`Err`, answered `401`) the request.
    ///
    /// # Errors
    ///
    /// A [`VerifyError`] saying why the request is refused. Its text may reach the log
    /// and the answer's `reason`: keep secrets out of it.
    fn verify(
        &self,
        request: &VerifyRequest<'_>,
    ) -> impl Future<Output = Result<(), VerifyError>> + Send;
}

impl<V: Verifier> Verifier for Arc<V> {
    fn verify(
        &self,
        request: &VerifyRequest<'_>,
    ) -> impl Future<Output = Result<(), VerifyError>> + Send {
        (**self).verify(request)
    }
}

/// Combinators for verifiers.
pub trait VerifierExt: Verifier + Sized {
    /// Both must accept; `self` is asked first.
    ///
    /// ```
    /// use suno_callback::verify::{HmacVerifier, IpAllowlist, VerifierExt};
    ///
    /// let both = HmacVerifier::new(["key"])?.and(IpAllowlist::new(["203.0.113.0/24"])?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn and<Other: Verifier>(self, other: Other) -> AllOf<Self, Other> {
        AllOf {
            first: self,
            second: other,
        }
    }

    /// Either may accept; `self` is asked first, and `other`'s refusal is reported.
    fn or<Other: Verifier>(self, other: Other) -> AnyOf<Self, Other> {
        AnyOf {
            first: self,
            second: other,
        }
    }
}

impl<V: Verifier> VerifierExt for V {}

/// Accepts when both verifiers accept. Made by [`VerifierExt::and`].
#[derive(Clone, Debug)]
pub struct AllOf<A, B> {
    first: A,
    second: B,
}

impl<A: Verifier, B: Verifier> Verifier for AllOf<A, B> {
    async fn verify(&self, request: &VerifyRequest<'_>) -> Result<(), VerifyError> {
        self.first.verify(request).await?;
        self.second.verify(request).await
    }
}

/// Accepts when either verifier accepts. Made by [`VerifierExt::or`].
#[derive(Clone, Debug)]
pub struct AnyOf<A, B> {
    first: A,
    second: B,
}

impl<A: Verifier, B: Verifier> Verifier for AnyOf<A, B> {
    async fn verify(&self, request: &VerifyRequest<'_>) -> Result<(), VerifyError> {
        match self.first.verify(request).await {
            Ok(()) => Ok(()),
            Err(_) => self.second.verify(request).await,
        }
    }
}

/// Why a request was refused (answered `401`). Its text goes into the answer's
/// `reason`, so it never contains a key or a signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyError {
    kind: VerifyErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum VerifyErrorKind {
    MissingHeader(HeaderName),
    MalformedHeader(HeaderName),
    StaleTimestamp,
    BadSignature,
    AddressNotAllowed,
    UnknownPeer,
    ReusedSignature,
    Custom(Cow<'static, str>),
}

impl VerifyError {
    fn new(kind: VerifyErrorKind) -> Self {
        Self { kind }
    }

    /// A refusal with your own reason.
    pub fn custom(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(VerifyErrorKind::Custom(reason.into()))
    }

    pub(crate) fn missing_header(name: &HeaderName) -> Self {
        Self::new(VerifyErrorKind::MissingHeader(name.clone()))
    }

    pub(crate) fn malformed_header(name: &HeaderName) -> Self {
        Self::new(VerifyErrorKind::MalformedHeader(name.clone()))
    }

    pub(crate) fn stale_timestamp() -> Self {
        Self::new(VerifyErrorKind::StaleTimestamp)
    }

    pub(crate) fn bad_signature() -> Self {
        Self::new(VerifyErrorKind::BadSignature)
    }

    pub(crate) fn address_not_allowed() -> Self {
        Self::new(VerifyErrorKind::AddressNotAllowed)
    }

    pub(crate) fn unknown_peer() -> Self {
        Self::new(VerifyErrorKind::UnknownPeer)
    }

    pub(crate) fn reused_signature() -> Self {
        Self::new(VerifyErrorKind::ReusedSignature)
    }

    /// A required header was absent.
    pub fn is_missing_header(&self) -> bool {
        matches!(self.kind, VerifyErrorKind::MissingHeader(_))
    }

    /// A header was present but unreadable.
    pub fn is_malformed_header(&self) -> bool {
        matches!(self.kind, VerifyErrorKind::MalformedHeader(_))
    }

    /// The timestamp was outside the tolerance (too old or too far ahead).
    pub fn is_stale_timestamp(&self) -> bool {
        matches!(self.kind, VerifyErrorKind::StaleTimestamp)
    }

    /// The signature matched none of the keys.
    pub fn is_bad_signature(&self) -> bool {
        matches!(self.kind, VerifyErrorKind::BadSignature)
    }

    /// The source address is not in the allowlist.
    pub fn is_address_not_allowed(&self) -> bool {
        matches!(self.kind, VerifyErrorKind::AddressNotAllowed)
    }

    /// The mounting did not provide the peer address.
    pub fn is_unknown_peer(&self) -> bool {
        matches!(self.kind, VerifyErrorKind::UnknownPeer)
    }

    /// The signature is valid but was first accepted with another `callbackType` or
    /// outcome: the body is not the one it was sent with.
    pub fn is_reused_signature(&self) -> bool {
        matches!(self.kind, VerifyErrorKind::ReusedSignature)
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            VerifyErrorKind::MissingHeader(name) => write!(f, "missing {name} header"),
            VerifyErrorKind::MalformedHeader(name) => write!(f, "malformed {name} header"),
            VerifyErrorKind::StaleTimestamp => f.write_str("timestamp outside the tolerance"),
            VerifyErrorKind::BadSignature => f.write_str("signature does not match"),
            VerifyErrorKind::AddressNotAllowed => f.write_str("source address not allowed"),
            VerifyErrorKind::UnknownPeer => f.write_str("source address unknown"),
            VerifyErrorKind::ReusedSignature => {
                f.write_str("signature already used by another callback")
            }
            VerifyErrorKind::Custom(reason) => {
                write!(f, "{}", crate::untrusted::Untrusted(reason))
            }
        }
    }
}

impl std::error::Error for VerifyError {}

/// A boxed future, for storing verifiers behind one type.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe form of [`Verifier`] the pipeline stores.
pub(crate) trait DynVerifier: Send + Sync + 'static {
    fn verify_boxed<'a>(
        &'a self,
        request: &'a VerifyRequest<'a>,
    ) -> BoxFuture<'a, Result<(), VerifyError>>;
}

impl<V: Verifier> DynVerifier for V {
    fn verify_boxed<'a>(
        &'a self,
        request: &'a VerifyRequest<'a>,
    ) -> BoxFuture<'a, Result<(), VerifyError>> {
        Box::pin(self.verify(request))
    }
}

/// The verification stage as the pipeline runs it: every configured verifier must
/// accept, in the order they were added.
#[derive(Clone)]
pub(crate) struct VerifyStage {
    verifiers: Arc<[Arc<dyn DynVerifier>]>,
}

impl VerifyStage {
    pub(crate) fn new(verifiers: Vec<Arc<dyn DynVerifier>>) -> Self {
        Self {
            verifiers: verifiers.into(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.verifiers.is_empty()
    }

    pub(crate) async fn run(&self, request: &VerifyRequest<'_>) -> Result<(), VerifyError> {
        for verifier in self.verifiers.iter() {
            verifier.verify_boxed(request).await?;
        }
        Ok(())
    }
}

impl fmt::Debug for VerifyStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyStage")
            .field("verifiers", &self.verifiers.len())
            .finish()
    }
}
