//! A future that finishes even when the request awaiting it is dropped: the handler and
//! the settling of its claim must not stop halfway because the sender hung up.
//!
//! A task spawned per request gives that guarantee at the cost of a task allocation,
//! a second task to schedule and a wake-up of the request's task. [`Detachable`]
//! gives it for less: it polls the work in place, inside the request's own task, and
//! only if it is dropped unfinished does it hand what is left to the runtime as a task
//! of its own. A leaf module: it imports nothing from the crate.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

type BoxedWork<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Runs `work` to its end: in place while awaited, as a spawned task once dropped.
///
/// Resolves to the work's output, or to [`Panicked`] if polling it panicked (the panic
/// is caught, as a spawned task's would be).
pub(crate) struct Detachable<T: Send + 'static> {
    /// `None` once the work has finished (or panicked).
    work: Option<BoxedWork<T>>,
}

impl<T: Send + 'static> Detachable<T> {
    pub(crate) fn new(work: impl Future<Output = T> + Send + 'static) -> Self {
        Self {
            work: Some(Box::pin(work)),
        }
    }
}

impl<T: Send + 'static> Future for Detachable<T> {
    type Output = Result<T, Panicked>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(work) = self.work.as_mut() else {
            return Poll::Ready(Err(Panicked::polled_after_end()));
        };
        let polled = catch_unwind(AssertUnwindSafe(|| work.as_mut().poll(cx)));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => {
                self.work = None;
                Poll::Ready(Ok(output))
            }
            Err(payload) => {
                self.work = None;
                Poll::Ready(Err(Panicked::from_payload(payload.as_ref())))
            }
        }
    }
}

impl<T: Send + 'static> Drop for Detachable<T> {
    fn drop(&mut self) {
        let Some(work) = self.work.take() else {
            return;
        };
        // Dropped unfinished: whoever awaited it is gone, the work goes on alone. The
        // new task polls it at once, so its wakers now point at that task.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    work.await;
                });
            }
            Err(_) => tracing::error!(
                "a handler was dropped unfinished outside a tokio runtime; it could not \
                 be finished and its claim expires with its lease"
            ),
        }
    }
}

impl<T: Send + 'static> fmt::Debug for Detachable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detachable")
            .field("finished", &self.work.is_none())
            .finish()
    }
}

/// Polling the work panicked (or it was polled again after it ended).
#[derive(Debug)]
pub(crate) struct Panicked(String);

impl Panicked {
    fn from_payload(payload: &(dyn Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        Self(message)
    }

    fn polled_after_end() -> Self {
        Self("polled after it ended".to_owned())
    }
}

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "panicked: {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::sync::oneshot;

    use super::*;

    fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(std::task::Waker::noop()))
    }

    #[tokio::test]
    async fn awaited_work_runs_in_place_and_gives_its_output() {
        let before = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        let work = Detachable::new(async { 7 });
        assert_eq!(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
            before,
            "no task spawned"
        );
        assert_eq!(work.await.expect("no panic"), 7);
    }

    #[tokio::test]
    async fn dropped_work_still_finishes() {
        let (release, released) = oneshot::channel::<()>();
        let (finished_tx, finished) = oneshot::channel::<()>();
        let mut work = Box::pin(Detachable::new(async move {
            let _ = released.await;
            let _ = finished_tx.send(());
        }));
        // Polled once, so it is under way, then dropped as a hung-up request is.
        assert!(poll_once(work.as_mut()).is_pending());
        drop(work);
        let _ = release.send(());
        tokio::time::timeout(std::time::Duration::from_secs(5), finished)
            .await
            .expect("the dropped work finished")
            .expect("sent");
    }

    #[tokio::test]
    async fn a_panic_is_caught_and_reported() {
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let work = Detachable::new(async move {
            flag.store(true, Ordering::SeqCst);
            panic!("store exploded");
        });
        let error = work.await.expect_err("panicked");
        assert!(ran.load(Ordering::SeqCst));
        assert_eq!(error.to_string(), "panicked: store exploded");
    }

    #[tokio::test]
    async fn finished_work_is_not_spawned_on_drop() {
        let work = Detachable::new(async { 1 });
        let mut work = Box::pin(work);
        assert!(poll_once(work.as_mut()).is_ready());
        let before = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        drop(work);
        assert_eq!(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
            before
        );
    }
}
