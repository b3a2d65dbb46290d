//! Verify and parse in one call, for code that does not mount the receiver (a job
//! runner, a serverless function, another framework): headers and body in, a verified
//! typed [`CallbackEvent`] or a [`VerifyEventError`] out. The same stages as the
//! receiver's, in the same order: the envelope (stage 2), the signature (stage 3), the
//! typed event (stage 5).

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use super::{HmacVerifier, VerifyError, VerifyRequest};
use crate::event::{CallbackEvent, Envelope, Family, ParseError};

impl HmacVerifier {
    /// Verifies a callback's signature and parses it: the one call, as svix's
    /// `Webhook::verify` and Stripe's `construct_event` are, for a receiver of your own.
    /// The family comes from the body's shape; a failure carrying only its task id is
    /// [`Family::Unknown`] (see [`verify_event_as`](Self::verify_event_as)).
    ///
    /// The signature covers only the task id and the timestamp, never the body, and this
    /// call keeps no state: it does not dedupe, and does not bind a signature to the
    /// first body it came with, as the mounted receiver does. Dedupe by
    /// [`DedupKey::of_event`](crate::store::DedupKey::of_event), and treat what only the
    /// body says (URLs, outcome) as unconfirmed, or confirm it with the provider's task
    /// details (feature `provider-api`). Read the body with a size limit of your own
    /// (the receiver's is [`DEFAULT_BODY_LIMIT`](crate::DEFAULT_BODY_LIMIT)).
    ///
    /// ```
    /// use suno_callback::testing::Signer;
    /// use suno_callback::verify::HmacVerifier;
    /// use suno_callback::Stage;
    ///
    /// let verifier = HmacVerifier::new(["webhook-hmac-key"])?;
    /// // What a serverless function or a job runner was handed:
    /// let body = r#"{"code":200,"msg":"ok","data":{"callbackType":"first","task_id":"t1","data":[]}}"#;
    /// let request = Signer::new("webhook-hmac-key").request("/callbacks/suno", body);
    /// let (parts, _) = request.into_parts();
    ///
    /// let event = verifier.verify_event(&parts.headers, body)?;
    /// assert_eq!((event.task_id(), event.stage()), ("t1", &Stage::First));
    ///
    /// let forged = verifier.verify_event(&http::HeaderMap::new(), body).unwrap_err();
    /// assert!(forged.is_rejected());
    /// assert_eq!(forged.status_code(), http::StatusCode::UNAUTHORIZED);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`VerifyEventError`]: [`is_invalid`](VerifyEventError::is_invalid) when the
    /// body is not a callback (checked first),
    /// [`is_rejected`](VerifyEventError::is_rejected) when a signature header is
    /// missing or malformed, the timestamp is stale, or the signature matches no key.
    pub fn verify_event(
        &self,
        headers: &HeaderMap,
        body: impl Into<Bytes>,
    ) -> Result<CallbackEvent, VerifyEventError> {
        self.verify_envelope(headers, body.into(), None)
    }

    /// [`verify_event`](Self::verify_event) for a callback of a known `family` (the one
    /// its path names, or the one you registered its task with): a failure carrying
    /// only its task id is typed as that family too.
    ///
    /// ```
    /// use suno_callback::testing::Signer;
    /// use suno_callback::verify::HmacVerifier;
    /// use suno_callback::Family;
    ///
    /// let verifier = HmacVerifier::new(["webhook-hmac-key"])?;
    /// let body = r#"{"code":500,"msg":"MIDI generation failed","data":{"taskId":"m1"}}"#;
    /// let (parts, _) = Signer::new("webhook-hmac-key").request("/", body).into_parts();
    /// let event = verifier.verify_event_as(Family::Midi, &parts.headers, body)?;
    /// assert_eq!(event.family(), Family::Midi);
    /// assert!(event.is_failure());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`VerifyEventError`], as for [`verify_event`](Self::verify_event).
    pub fn verify_event_as(
        &self,
        family: Family,
        headers: &HeaderMap,
        body: impl Into<Bytes>,
    ) -> Result<CallbackEvent, VerifyEventError> {
        self.verify_envelope(headers, body.into(), Some(family))
    }

    fn verify_envelope(
        &self,
        headers: &HeaderMap,
        body: Bytes,
        family: Option<Family>,
    ) -> Result<CallbackEvent, VerifyEventError> {
        let envelope = Envelope::parse(&body, family).map_err(VerifyEventError::invalid)?;
        let request = VerifyRequest::new(headers, &envelope.task_id, &envelope.callback_type)
            .with_body(&body);
        self.check(&request).map_err(VerifyEventError::rejected)?;
        Ok(CallbackEvent::build(envelope, body))
    }
}

/// Why [`HmacVerifier::verify_event`] returned no event: the body is not a callback
/// (the receiver answers that `400`), or its signature does not hold (`401`).
///
/// ```
/// use suno_callback::verify::HmacVerifier;
///
/// let verifier = HmacVerifier::new(["k"])?;
/// let error = verifier.verify_event(&http::HeaderMap::new(), "not json").unwrap_err();
/// assert!(error.is_invalid());
/// assert_eq!(error.status_code(), http::StatusCode::BAD_REQUEST);
/// assert!(error.to_string().starts_with("not a callback: "));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct VerifyEventError {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Invalid(ParseError),
    Rejected(VerifyError),
}

impl VerifyEventError {
    fn invalid(error: ParseError) -> Self {
        Self {
            kind: Kind::Invalid(error),
        }
    }

    fn rejected(error: VerifyError) -> Self {
        Self {
            kind: Kind::Rejected(error),
        }
    }

    /// The body is not a callback ([`parse_error`](Self::parse_error) says why).
    pub fn is_invalid(&self) -> bool {
        matches!(self.kind, Kind::Invalid(_))
    }

    /// The signature is missing, malformed, stale or wrong
    /// ([`verify_error`](Self::verify_error) says which).
    pub fn is_rejected(&self) -> bool {
        matches!(self.kind, Kind::Rejected(_))
    }

    /// Why the body is not a callback.
    pub fn parse_error(&self) -> Option<&ParseError> {
        match &self.kind {
            Kind::Invalid(error) => Some(error),
            Kind::Rejected(_) => None,
        }
    }

    /// Why the signature does not hold.
    pub fn verify_error(&self) -> Option<&VerifyError> {
        match &self.kind {
            Kind::Rejected(error) => Some(error),
            Kind::Invalid(_) => None,
        }
    }

    /// What the mounted receiver answers in this case: `400` or `401`.
    pub fn status_code(&self) -> StatusCode {
        match self.kind {
            Kind::Invalid(_) => StatusCode::BAD_REQUEST,
            Kind::Rejected(_) => StatusCode::UNAUTHORIZED,
        }
    }
}

impl fmt::Display for VerifyEventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Invalid(error) => write!(f, "not a callback: {error}"),
            Kind::Rejected(error) => write!(f, "callback rejected: {error}"),
        }
    }
}

impl std::error::Error for VerifyEventError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Invalid(error) => Some(error),
            Kind::Rejected(error) => Some(error),
        }
    }
}
