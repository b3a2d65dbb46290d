//! Group commit for the inbox's intake. Concurrent accepts wait in one line; a writer
//! takes everything waiting (at most [`MAX_BATCH`] events, [`MAX_BATCH_BYTES`] of
//! bodies) and stores it with one multi-row `INSERT … ON CONFLICT DO NOTHING
//! RETURNING`, one transaction, then answers each request. Nothing waits on a timer:
//! an idle line commits a lone event at once, and a busy one gathers what arrives
//! while the previous batch commits. A database error fails the whole batch (each of
//! its requests is answered `503`) and stores nothing of it; a key that appears twice
//! in one batch is one row, the first of its requests `accepted` and the others
//! `duplicate`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::backend::Backend;
use super::error::InboxError;
use super::rows::NewEvent;

/// The most events one batch stores.
pub(crate) const MAX_BATCH: usize = 128;
/// Once a batch's bodies reach this size, it takes no more.
pub(crate) const MAX_BATCH_BYTES: usize = 4 << 20;

/// An event waiting in line, with where to send its answer.
struct Waiting {
    task_id: String,
    family: String,
    stage: String,
    outcome: String,
    body: Bytes,
    /// `true` if stored, `false` if its key was already there.
    answer: oneshot::Sender<Result<bool, InboxError>>,
}

/// The line of an inbox's intake. Its writer task starts on first use, on the
/// runtime of the request that uses it (again if that runtime has gone), and ends
/// when the inbox's last clone is dropped.
#[derive(Debug)]
pub(crate) struct Intake {
    backend: Backend,
    /// How many batches commit at once (one on SQLite, which has one writer).
    in_flight: usize,
    line: Mutex<Option<mpsc::UnboundedSender<Waiting>>>,
}

impl Intake {
    pub(crate) fn new(backend: Backend, in_flight: usize) -> Self {
        Self {
            backend,
            in_flight: in_flight.max(1),
            line: Mutex::new(None),
        }
    }

    /// The line, with a writer behind it.
    fn line(&self) -> mpsc::UnboundedSender<Waiting> {
        let mut line = self
            .line
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match &*line {
            Some(sender) if !sender.is_closed() => sender.clone(),
            _ => {
                let (sender, waiting) = mpsc::unbounded_channel();
                tokio::spawn(write(self.backend.clone(), waiting, self.in_flight));
                *line = Some(sender.clone());
                sender
            }
        }
    }

    /// Stores `event` (whose body is `body`) with whatever else is waiting: `true` if
    /// it was stored, `false` if its key was already there. Answers only once its
    /// batch is committed.
    pub(crate) async fn store(
        &self,
        event: &NewEvent<'_>,
        body: &Bytes,
    ) -> Result<bool, InboxError> {
        let (answer, answered) = oneshot::channel();
        let waiting = Waiting {
            task_id: event.task_id.to_owned(),
            family: event.family.to_owned(),
            stage: event.stage.to_owned(),
            outcome: event.outcome.to_owned(),
            body: body.clone(),
            answer,
        };
        self.line()
            .send(waiting)
            .map_err(|_| InboxError::unavailable("the inbox's writer has stopped"))?;
        answered
            .await
            .map_err(|_| InboxError::unavailable("the inbox's writer has stopped"))?
    }
}

/// The writer: takes a permit, then everything waiting, and commits it as one batch.
async fn write(backend: Backend, mut waiting: mpsc::UnboundedReceiver<Waiting>, in_flight: usize) {
    let permits = Arc::new(Semaphore::new(in_flight));
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let Some(first) = waiting.recv().await else {
            return;
        };
        let mut bytes = first.body.len();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            let Ok(next) = waiting.try_recv() else { break };
            bytes += next.body.len();
            batch.push(next);
        }
        let backend = backend.clone();
        tokio::spawn(async move {
            commit(&backend, batch).await;
            drop(permit);
        });
    }
}

/// Stores one batch and answers each of its requests.
async fn commit(backend: &Backend, batch: Vec<Waiting>) {
    // The first request of each key is the one that may be `accepted`.
    let mut first_of: HashSet<(&str, &str, &str, &str)> = HashSet::new();
    let mut firsts = Vec::with_capacity(batch.len());
    for (index, waiting) in batch.iter().enumerate() {
        let key = (
            waiting.task_id.as_str(),
            waiting.family.as_str(),
            waiting.stage.as_str(),
            waiting.outcome.as_str(),
        );
        if first_of.insert(key) {
            firsts.push(index);
        }
    }
    let rows: Vec<NewEvent<'_>> = firsts
        .iter()
        .map(|&index| {
            let waiting = &batch[index];
            NewEvent {
                task_id: &waiting.task_id,
                family: &waiting.family,
                stage: &waiting.stage,
                outcome: &waiting.outcome,
                body: &waiting.body,
            }
        })
        .collect();
    let stored = backend.insert_many(&rows).await;
    let answers: Vec<Result<bool, InboxError>> = match &stored {
        // `inserted` follows `firsts`, which is in the batch's order.
        Ok(inserted) => (0..batch.len())
            .map(|index| {
                Ok(firsts
                    .binary_search(&index)
                    .is_ok_and(|row| inserted.get(row).copied().unwrap_or(false)))
            })
            .collect(),
        Err(error) => batch
            .iter()
            .map(|_| Err(InboxError::unavailable(error.to_string())))
            .collect(),
    };
    drop(rows);
    for (waiting, answer) in batch.into_iter().zip(answers) {
        let _ = waiting.answer.send(answer);
    }
}
