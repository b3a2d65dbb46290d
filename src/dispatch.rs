//! Stage 5 of the pipeline: run the handler registered for the event's kind, within a
//! timeout, catching a panic.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;

use crate::error::HandlerError;
use crate::event::{CallbackEvent, FailureEvent, StageEvent};

type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send>>;

/// A user's handler for events of type `E`, stored behind one type.
pub(crate) type BoxHandler<E> = Arc<dyn Fn(E) -> HandlerFuture + Send + Sync>;

/// Erases a handler closure.
pub(crate) fn boxed<E, F, Fut>(handler: F) -> BoxHandler<E>
where
    F: Fn(E) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    Arc::new(move |event| Box::pin(handler(event)) as HandlerFuture)
}

/// The registered handlers, one per kind of event, and the fallback.
#[derive(Clone, Default)]
pub(crate) struct Handlers {
    pub(crate) text: Option<BoxHandler<StageEvent>>,
    pub(crate) first: Option<BoxHandler<StageEvent>>,
    pub(crate) complete: Option<BoxHandler<StageEvent>>,
    pub(crate) failure: Option<BoxHandler<FailureEvent>>,
    pub(crate) fallback: Option<BoxHandler<CallbackEvent>>,
}

/// A handler bound to its event, not yet called.
pub(crate) struct Invocation(Box<dyn FnOnce() -> HandlerFuture + Send>);

fn bind<E: Send + 'static>(handler: &BoxHandler<E>, event: E) -> Invocation {
    let handler = Arc::clone(handler);
    Invocation(Box::new(move || handler(event)))
}

impl Handlers {
    /// Binds the event to the handler for its kind, or to the fallback; `None` when
    /// neither exists.
    pub(crate) fn route(&self, event: CallbackEvent) -> Option<Invocation> {
        match event {
            CallbackEvent::Text(e) => self.stage(self.text.as_ref(), e, CallbackEvent::Text),
            CallbackEvent::First(e) => self.stage(self.first.as_ref(), e, CallbackEvent::First),
            CallbackEvent::Complete(e) => {
                self.stage(self.complete.as_ref(), e, CallbackEvent::Complete)
            }
            CallbackEvent::Failure(e) => match &self.failure {
                Some(handler) => Some(bind(handler, e)),
                None => self.fallback(CallbackEvent::Failure(e)),
            },
            other => self.fallback(other),
        }
    }

    fn stage(
        &self,
        handler: Option<&BoxHandler<StageEvent>>,
        event: StageEvent,
        as_callback: fn(StageEvent) -> CallbackEvent,
    ) -> Option<Invocation> {
        match handler {
            Some(handler) => Some(bind(handler, event)),
            None => self.fallback(as_callback(event)),
        }
    }

    fn fallback(&self, event: CallbackEvent) -> Option<Invocation> {
        self.fallback.as_ref().map(|fallback| bind(fallback, event))
    }

    /// The kinds that have a handler, for `Debug`.
    fn registered(&self) -> Vec<&'static str> {
        [
            ("text", self.text.is_some()),
            ("first", self.first.is_some()),
            ("complete", self.complete.is_some()),
            ("failure", self.failure.is_some()),
            ("fallback", self.fallback.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect()
    }
}

impl fmt::Debug for Handlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.registered()).finish()
    }
}

/// How a handler run ended.
#[derive(Debug)]
pub(crate) enum HandlerOutcome {
    Succeeded,
    Failed(HandlerError),
    Panicked(String),
    TimedOut,
}

/// Calls the handler and awaits it for at most `limit`. A panic, in the call or in the
/// future, becomes [`HandlerOutcome::Panicked`]; on timeout the future is dropped.
pub(crate) async fn run(invocation: Invocation, limit: Duration) -> HandlerOutcome {
    let future = match catch_unwind(AssertUnwindSafe(invocation.0)) {
        Ok(future) => future,
        Err(payload) => return HandlerOutcome::Panicked(panic_message(payload.as_ref())),
    };
    match crate::deadline::timeout(limit, AssertUnwindSafe(future).catch_unwind()).await {
        Ok(Ok(Ok(()))) => HandlerOutcome::Succeeded,
        Ok(Ok(Err(error))) => HandlerOutcome::Failed(error),
        Ok(Err(payload)) => HandlerOutcome::Panicked(panic_message(payload.as_ref())),
        Err(_elapsed) => HandlerOutcome::TimedOut,
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}
