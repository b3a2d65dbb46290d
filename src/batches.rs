//! Deleting in small batches: one short statement at a time, a pause between two so
//! the writers waiting for a row or for SQLite's write lock go first, and a bound on
//! the statements of one run (the next run takes the rest). The SQL dedup stores'
//! expiry and the inbox's pruning both delete this way. A leaf module.

use std::future::Future;
use std::time::Duration;

/// The pause between two batches.
const PAUSE: Duration = Duration::from_millis(10);

/// Runs `batch` until it reports that it was not full, at most `max_batches` times,
/// pausing between two; returns how many rows the batches deleted. `batch` answers
/// `(deleted, full)`: `full` when it deleted as many rows as it may, so more may be
/// left.
pub(crate) async fn delete_in_batches<E, F, Fut>(max_batches: u32, mut batch: F) -> Result<u64, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(u64, bool), E>>,
{
    let mut total = 0;
    for _ in 0..max_batches {
        let (deleted, full) = batch().await?;
        total += deleted;
        if !full {
            break;
        }
        tokio::time::sleep(PAUSE).await;
    }
    Ok(total)
}
