//! Stage 5 of the pipeline: choose the handler registered for the callback's route
//! ([`Route`]: family, stage, outcome), and run it within a timeout, catching a panic.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;

use crate::error::HandlerError;
use crate::event::{CallbackEvent, Envelope, Family, Outcome};

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

/// Which callbacks a handler registered with
/// [`SunoCallbacksBuilder::on`](crate::SunoCallbacksBuilder::on) receives.
///
/// A callback goes to the first route that has a handler, most specific first:
///
/// - a success: [`Route::stage`] of its family and stage, then [`Route::success`] of
///   its family;
/// - a failure: [`Route::failure`] of its family, then [`Route::any_failure`];
///
/// and otherwise to the fallback (or is answered `200 ignored`). Registering the same
/// route twice keeps the last handler.
///
/// ```
/// use suno_callback::{Family, Route};
///
/// let routes = [
///     Route::stage(Family::Music, "complete"),
///     Route::stage(Family::Voice, "wait_validating"),
///     Route::success(Family::Wav),
///     Route::failure(Family::Wav),
///     Route::any_failure(),
/// ];
/// assert_eq!(routes[2].family(), Some(Family::Wav));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    family: Option<Family>,
    stage: Option<String>,
    outcome: Outcome,
}

impl Route {
    /// Successes of `family` at `stage` only: a music or lyrics `callbackType`, a voice
    /// status.
    pub fn stage(family: Family, stage: impl Into<String>) -> Self {
        Self {
            family: Some(family),
            stage: Some(stage.into()),
            outcome: Outcome::Success,
        }
    }

    /// Every success of `family` that no [`Route::stage`] handler takes.
    pub fn success(family: Family) -> Self {
        Self {
            family: Some(family),
            stage: None,
            outcome: Outcome::Success,
        }
    }

    /// Every failure of `family`.
    pub fn failure(family: Family) -> Self {
        Self {
            family: Some(family),
            stage: None,
            outcome: Outcome::Failure,
        }
    }

    /// Every failure that no [`Route::failure`] handler takes, of any family
    /// ([`Family::Unknown`] included).
    pub fn any_failure() -> Self {
        Self {
            family: None,
            stage: None,
            outcome: Outcome::Failure,
        }
    }

    /// The family this route is for; `None` for [`Route::any_failure`].
    pub fn family(&self) -> Option<Family> {
        self.family
    }

    /// The stage this route is for, if it is a [`Route::stage`].
    pub fn stage_name(&self) -> Option<&str> {
        self.stage.as_deref()
    }

    /// Success or failure.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }
}

/// The registered handlers, by route, and the fallback.
///
/// Stage routes are kept by family, then by stage name, so that choosing a handler
/// looks a callback's stage up as the `&str` it is, building no [`Route`] per request.
#[derive(Clone, Default)]
pub(crate) struct Handlers {
    /// [`Route::stage`] handlers.
    stages: HashMap<Family, HashMap<Box<str>, BoxHandler<CallbackEvent>>>,
    /// [`Route::success`], [`Route::failure`] and [`Route::any_failure`] handlers, by
    /// family (`None` for any) and outcome.
    outcomes: HashMap<(Option<Family>, Outcome), BoxHandler<CallbackEvent>>,
    fallback: Option<BoxHandler<CallbackEvent>>,
}

/// A handler bound to its event, not yet called.
pub(crate) struct Invocation(Box<dyn FnOnce() -> HandlerFuture + Send>);

/// The handler chosen for a callback, before its event is built.
#[derive(Clone)]
pub(crate) struct Chosen(BoxHandler<CallbackEvent>);

impl Chosen {
    /// Binds the (now built) event to the handler.
    pub(crate) fn bind(self, event: CallbackEvent) -> Invocation {
        let handler = self.0;
        Invocation(Box::new(move || handler(event)))
    }
}

impl fmt::Debug for Chosen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Chosen")
    }
}

impl Handlers {
    pub(crate) fn insert(&mut self, route: Route, handler: BoxHandler<CallbackEvent>) {
        match (route.family, route.stage) {
            (Some(family), Some(stage)) => {
                let stages = self.stages.entry(family).or_default();
                stages.insert(stage.into_boxed_str(), handler);
            }
            (family, _) => {
                self.outcomes.insert((family, route.outcome), handler);
            }
        }
    }

    pub(crate) fn set_fallback(&mut self, handler: BoxHandler<CallbackEvent>) {
        self.fallback = Some(handler);
    }

    /// The handler for a callback of this envelope (see [`Route`] for the order), or
    /// the fallback; `None` when neither exists.
    pub(crate) fn route(&self, envelope: &Envelope) -> Option<Chosen> {
        self.choose(envelope.family, &envelope.stage, envelope.outcome)
    }

    /// [`route`](Self::route) for an event already built (the inbox's workers build it
    /// from the stored body and family).
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "provider-api"))]
    pub(crate) fn route_event(&self, event: &CallbackEvent) -> Option<Chosen> {
        self.choose(event.family(), event.stage().as_str(), event.outcome())
    }

    fn choose(&self, family: Family, stage: &str, outcome: Outcome) -> Option<Chosen> {
        let for_stage = || match outcome {
            Outcome::Success => self.stages.get(&family)?.get(stage),
            Outcome::Failure => None,
        };
        let for_outcome = || {
            let any_family = match outcome {
                Outcome::Success => None,
                Outcome::Failure => self.outcomes.get(&(None, outcome)),
            };
            self.outcomes.get(&(Some(family), outcome)).or(any_family)
        };
        for_stage()
            .or_else(for_outcome)
            .or(self.fallback.as_ref())
            .map(|handler| Chosen(Arc::clone(handler)))
    }

    /// The routes that have a handler, for `Debug`.
    fn registered(&self) -> Vec<String> {
        let stages = self.stages.iter().flat_map(|(family, stages)| {
            stages
                .keys()
                .map(move |stage| format!("{} {stage}", family.as_str()))
        });
        let outcomes = self
            .outcomes
            .keys()
            .map(|(family, outcome)| format!("{} {outcome}", family.map_or("any", Family::as_str)));
        let mut names: Vec<String> = stages.chain(outcomes).collect();
        names.sort();
        if self.fallback.is_some() {
            names.push("fallback".to_owned());
        }
        names
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Handlers registered under `routes` and a fallback, and which of them `choose`
    /// picks: the route's index, or `fallback`.
    fn chosen(routes: &[Route], family: Family, stage: &str, outcome: Outcome) -> String {
        let handler = || boxed(|_event: CallbackEvent| async { Ok(()) });
        let mut handlers = Handlers::default();
        let mut registered = Vec::new();
        for route in routes {
            let handler = handler();
            registered.push(Arc::clone(&handler));
            handlers.insert(route.clone(), handler);
        }
        let fallback = handler();
        handlers.set_fallback(Arc::clone(&fallback));
        let Chosen(chosen) = handlers.choose(family, stage, outcome).expect("a fallback");
        if Arc::ptr_eq(&chosen, &fallback) {
            return "fallback".into();
        }
        let index = registered
            .iter()
            .position(|handler| Arc::ptr_eq(handler, &chosen));
        index.expect("a registered handler").to_string()
    }

    #[test]
    fn the_most_specific_route_is_chosen() {
        use Outcome::{Failure, Success};
        let all = [
            Route::stage(Family::Music, "complete"),
            Route::success(Family::Music),
            Route::failure(Family::Music),
            Route::any_failure(),
        ];
        assert_eq!(chosen(&all, Family::Music, "complete", Success), "0");
        assert_eq!(chosen(&all, Family::Music, "first", Success), "1");
        assert_eq!(chosen(&all, Family::Music, "complete", Failure), "2");
        assert_eq!(chosen(&all, Family::Wav, "complete", Failure), "3");
        assert_eq!(chosen(&all, Family::Wav, "complete", Success), "fallback");
        // A stage route takes that stage of its own family only.
        assert_eq!(
            chosen(&all[..1], Family::Lyrics, "complete", Success),
            "fallback"
        );
        assert_eq!(chosen(&all[2..3], Family::Unknown, "", Failure), "fallback");
        assert_eq!(chosen(&all[3..], Family::Unknown, "", Failure), "0");
    }

    #[test]
    fn debug_lists_the_registered_routes() {
        let mut handlers = Handlers::default();
        for route in [
            Route::stage(Family::Voice, "wait_validating"),
            Route::stage(Family::Music, "complete"),
            Route::success(Family::Wav),
            Route::failure(Family::Wav),
            Route::any_failure(),
        ] {
            handlers.insert(route, boxed(|_event: CallbackEvent| async { Ok(()) }));
        }
        handlers.set_fallback(boxed(|_event: CallbackEvent| async { Ok(()) }));
        assert_eq!(
            format!("{handlers:?}"),
            r#"["any failure", "music complete", "voice wait_validating", "wav failure", "wav success", "fallback"]"#
        );
    }
}
