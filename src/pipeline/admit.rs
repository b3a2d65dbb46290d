//! The door of stage 4 for events that need no verification: the reconciler's polls
//! and the events confirm mode gets from the provider. The reconciler holds an
//! [`AdmitVerified`], not the pipeline, so the provider module does not depend on the
//! pipeline that depends on it. A leaf module: it names only the event, its source and
//! the answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::answer::Answer;
use crate::event::CallbackEvent;
use crate::source::EventSource;

/// A boxed future of an admission's answer.
pub(crate) type Admitting = Pin<Box<dyn Future<Output = Answer> + Send + 'static>>;

/// Admits a verified event: stored in the inbox (inbox mode), or claimed, run and
/// settled (inline), under the same dedup key a callback of the same task, family,
/// stage and outcome has. Handlers see `source` as
/// [`EventSource::current`](crate::EventSource::current).
pub(crate) trait AdmitVerified: Send + Sync + 'static {
    fn admit_verified(self: Arc<Self>, event: CallbackEvent, source: EventSource) -> Admitting;
}
