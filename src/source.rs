//! Where the event a handler runs for came from: a callback, a callback confirmed
//! through the provider's task-details endpoint, or a poll of that endpoint.

use std::future::Future;

tokio::task_local! {
    static SOURCE: EventSource;
}

/// Where the event being handled came from. Handlers read it with
/// [`EventSource::current`]; it is set by the receiver, never read from the body.
///
/// ```
/// use suno_callback::EventSource;
///
/// // Outside a handler, or in a handler of a plain callback:
/// assert_eq!(EventSource::current(), EventSource::Callback);
/// assert_eq!(EventSource::Poll.as_str(), "poll");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventSource {
    /// A verified callback, dispatched as it came.
    Callback,
    /// A verified callback whose outcome the task-details endpoint confirmed; the event
    /// is built from the provider's answer (confirm mode, feature `provider-api`).
    Confirmed,
    /// A poll of the task-details endpoint (the reconciler, feature `provider-api`).
    Poll,
}

impl EventSource {
    /// The source of the event whose handler is running; `Callback` outside handlers.
    pub fn current() -> Self {
        SOURCE.try_with(|source| *source).unwrap_or(Self::Callback)
    }

    /// `callback`, `confirmed` or `poll`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Callback => "callback",
            Self::Confirmed => "confirmed",
            Self::Poll => "poll",
        }
    }
}

/// Runs `future` (a handler) with `source` as its [`EventSource::current`].
pub(crate) async fn scope<F: Future>(source: EventSource, future: F) -> F::Output {
    SOURCE.scope(source, future).await
}
