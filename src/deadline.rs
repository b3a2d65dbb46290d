//! A time limit on a future that costs nothing when the future is ready at once.
//!
//! `tokio::time::timeout` reads the clock and builds a timer entry when it is called,
//! and drops it afterwards, even when the future it guards is ready on its first poll,
//! as an in-memory store's call always is. [`timeout`] polls the future first and
//! starts the timer only when the future has to wait, so the limit runs from that
//! first wait (for the pipeline's calls, the same instant). A leaf module.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;

/// `future`, given at most `limit` from the first time it has to wait.
pub(crate) fn timeout<F: Future>(limit: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        limit,
        sleep: None,
    }
}

pin_project! {
    /// The future of [`timeout`].
    #[derive(Debug)]
    pub(crate) struct Timeout<F> {
        #[pin]
        future: F,
        limit: Duration,
        #[pin]
        sleep: Option<Sleep>,
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        if this.sleep.is_none() {
            this.sleep.set(Some(tokio::time::sleep(*this.limit)));
        }
        if let Some(sleep) = this.sleep.as_pin_mut() {
            ready!(sleep.poll(cx));
        }
        Poll::Ready(Err(Elapsed))
    }
}

/// The limit passed before the future was ready.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

#[cfg(test)]
mod tests {
    use std::future::{pending, ready};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_ready_future_passes_through_without_a_timer() {
        let guarded = timeout(Duration::from_secs(1), ready(5));
        tokio::pin!(guarded);
        let polled = guarded
            .as_mut()
            .poll(&mut Context::from_waker(std::task::Waker::noop()));
        assert_eq!(polled, Poll::Ready(Ok(5)));
        assert!(guarded.sleep.is_none(), "no timer was started");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_future_is_cut_at_the_limit() {
        let started = tokio::time::Instant::now();
        let result = timeout(Duration::from_secs(2), pending::<()>()).await;
        assert_eq!(result, Err(Elapsed));
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_future_ready_before_the_limit_wins() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            "done"
        };
        assert_eq!(timeout(Duration::from_secs(2), slow).await, Ok("done"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unrepresentable_limit_never_fires() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "done"
        };
        assert_eq!(timeout(Duration::MAX, slow).await, Ok("done"));
    }
}
