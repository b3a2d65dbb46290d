//! The task registry conformance suite (feature `provider-api`): what every
//! [`TaskRegistry`] must do, as async checks that panic on a violation.
//! `MemoryRegistry`, `RedisRegistry` and the inbox's `InboxRegistry` pass it.
//!
//! Every check uses task ids of its own and removes them when it passes, so the checks
//! may run again against a registry that kept the last run's tasks. Give the suite a
//! registry of its own (a key prefix, a schema, a file): taking due tasks leases
//! whatever else is due in it too.
//!
//! ```
//! use std::sync::Arc;
//! use suno_callback::provider::MemoryRegistry;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! suno_callback::testing::registry_conformance::run_all(Arc::new(MemoryRegistry::new())).await;
//! # });
//! ```

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use crate::event::{ApiRoute, Family};
use crate::provider::{ExpectedTask, TaskRegistry};
use crate::store::ClaimToken;

/// A time far after every due time the checks set.
const LATER: u64 = u64::MAX / 4;

fn unique_task(check: &str, family: Family, registered_at_ms: u64) -> ExpectedTask {
    let id = format!("conformance-{check}-{}", ClaimToken::new_unique());
    ExpectedTask::new(id, family, registered_at_ms)
}

/// Of what `take_due` returned, the tasks among `mine`.
fn only<'a>(taken: Vec<ExpectedTask>, mine: &'a [&'a ExpectedTask]) -> Vec<ExpectedTask> {
    taken
        .into_iter()
        .filter(|task| mine.iter().any(|own| own.task_id() == task.task_id()))
        .collect()
}

/// A task is due at its due time, not before; taking it leases it; `reschedule`,
/// `done` and `family_of` do what they say (a done task's family stays known);
/// registering again replaces, a done task too.
///
/// Due times here are small numbers (a registry shared with live tasks would also
/// hand those out; they are filtered away), except for the final sweep.
pub async fn due_tasks_are_taken_and_leased<R: TaskRegistry>(registry: &R) {
    let task = unique_task("lease", Family::Separation, 5);
    let id = task.task_id().to_owned();
    let mine = [&task];
    registry.expect(task.clone(), 100).await.expect("expect");
    assert_eq!(
        registry.family_of(&id).await.expect("family_of"),
        Some(Family::Separation)
    );
    assert_eq!(
        registry
            .family_of("conformance-never-registered")
            .await
            .expect("family_of"),
        None
    );
    let taken = |now: u64| async move {
        only(
            registry.take_due(now, 1000, 1000).await.expect("take_due"),
            &mine,
        )
    };
    assert!(taken(99).await.is_empty(), "not due before its due time");
    assert_eq!(
        taken(100).await,
        std::slice::from_ref(&task),
        "due at its due time"
    );
    assert!(taken(1099).await.is_empty(), "leased until 1 100");
    assert_eq!(
        taken(1100).await,
        std::slice::from_ref(&task),
        "due again when the lease ends"
    );
    registry.reschedule(&id, 50).await.expect("reschedule");
    assert_eq!(
        taken(60).await,
        std::slice::from_ref(&task),
        "rescheduled earlier"
    );
    let again = ExpectedTask::new(id.clone(), Family::Wav, 7);
    registry
        .expect(again.clone(), 3000)
        .await
        .expect("expect again");
    assert_eq!(
        registry.family_of(&id).await.expect("family_of"),
        Some(Family::Wav)
    );
    assert!(
        taken(2999).await.is_empty(),
        "registering again replaces the due time"
    );
    assert_eq!(taken(3000).await, [again], "and the task");
    registry.done(&id).await.expect("done");
    assert_eq!(
        registry.family_of(&id).await.expect("family_of"),
        Some(Family::Wav),
        "done: its family stays known, for a late callback that names none"
    );
    assert!(taken(LATER).await.is_empty(), "done: never due again");
    registry
        .reschedule(&id, 0)
        .await
        .expect("reschedule a done task");
    assert!(
        taken(LATER).await.is_empty(),
        "rescheduling does not bring it back"
    );
    let third = ExpectedTask::new(id.clone(), Family::Midi, 9);
    registry
        .expect(third.clone(), 4000)
        .await
        .expect("register a done task again");
    assert_eq!(
        registry.family_of(&id).await.expect("family_of"),
        Some(Family::Midi),
        "registering a done task again replaces its family"
    );
    assert_eq!(taken(4000).await, [third], "and makes it due again");
    registry.done(&id).await.expect("done");
}

/// `take_due` returns at most `limit` tasks, those due earliest (in any order), and
/// every family and route comes back as registered (a jobs-route task of
/// [`Family::Unknown`] too).
pub async fn take_due_honours_the_limit_and_the_order<R: TaskRegistry>(registry: &R) {
    let families = Family::ALL.into_iter().chain([Family::Unknown]);
    let tasks: Vec<ExpectedTask> = families
        .enumerate()
        .map(|(n, family)| {
            let task = unique_task("order", family, n as u64);
            // Every other task, and the unknown family's, on the jobs route.
            if n % 2 == 1 || family == Family::Unknown {
                task.with_route(ApiRoute::Jobs)
            } else {
                task
            }
        })
        .collect();
    // Due at 10, 11, 12…: the earliest are taken first.
    for (n, task) in tasks.iter().enumerate() {
        registry
            .expect(task.clone(), 10 + n as u64)
            .await
            .expect("expect");
    }
    let mine: Vec<&ExpectedTask> = tasks.iter().collect();
    let mut batches = Vec::new();
    loop {
        let batch = registry
            .take_due(10 + tasks.len() as u64, 3, 1_000_000)
            .await
            .expect("take_due");
        assert!(batch.len() <= 3, "at most the limit: {}", batch.len());
        if batch.is_empty() {
            break;
        }
        let mut batch = only(batch, &mine);
        batch.sort_by_key(ExpectedTask::registered_at_ms);
        batches.push(batch);
    }
    assert_eq!(
        batches.first().map(Vec::as_slice),
        Some(&tasks[..3]),
        "the earliest due first"
    );
    assert_eq!(
        batches.concat(),
        tasks,
        "each task once, with its family and route"
    );
    for task in &tasks {
        registry.done(task.task_id()).await.expect("done");
    }
}

/// Of concurrent `take_due` calls (replicas polling at once), each due task goes to
/// exactly one.
pub async fn concurrent_takers_never_share_a_task<R: TaskRegistry>(registry: Arc<R>) {
    replicas_never_share_a_task(&[registry]).await;
}

/// [`concurrent_takers_never_share_a_task`] across replicas: registries on one shared
/// store (one key prefix, one database) with a connection each. The tasks are
/// registered through the first; six takers, spread over the replicas, poll at once.
///
/// ```
/// use std::sync::Arc;
/// use suno_callback::provider::MemoryRegistry;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let shared = Arc::new(MemoryRegistry::new());
/// suno_callback::testing::registry_conformance::replicas_never_share_a_task(&[
///     Arc::clone(&shared),
///     shared,
/// ])
/// .await;
/// # });
/// ```
pub async fn replicas_never_share_a_task<R: TaskRegistry>(replicas: &[Arc<R>]) {
    const TASKS: usize = 60;
    const TAKERS: usize = 6;
    let first = replicas.first().expect("at least one replica");
    let tasks: Vec<ExpectedTask> = (0..TASKS)
        .map(|_| unique_task("race", Family::Music, 1))
        .collect();
    for task in &tasks {
        first.expect(task.clone(), 20).await.expect("expect");
    }
    let ours: HashSet<String> = tasks.iter().map(|t| t.task_id().to_owned()).collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(TAKERS));
    let mut takers = Vec::with_capacity(TAKERS);
    for (registry, _) in replicas.iter().cycle().zip(0..TAKERS) {
        let (registry, barrier) = (Arc::clone(registry), Arc::clone(&barrier));
        takers.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut taken = Vec::new();
            loop {
                let batch = registry.take_due(20, 4, 1_000_000).await.expect("take_due");
                if batch.is_empty() {
                    return taken;
                }
                taken.extend(batch.into_iter().map(|task| task.task_id().to_owned()));
            }
        }));
    }
    let mut counted = std::collections::HashMap::<String, usize>::new();
    for taker in takers {
        for id in taker.await.expect("taker task") {
            *counted.entry(id).or_default() += 1;
        }
    }
    for id in &ours {
        assert_eq!(counted.get(id), Some(&1), "task {id} taken once");
    }
    for task in &tasks {
        first.done(task.task_id()).await.expect("done");
    }
}

/// A registered task outlives its registry: `reopen` drops or closes `first` and opens
/// the store again (a restarted process), where the task is due, with its family, route
/// and registration time.
///
/// ```
/// use std::sync::Arc;
/// use suno_callback::provider::MemoryRegistry;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// // A memory registry lives as long as its `Arc`: "reopening" keeps it.
/// let registry = Arc::new(MemoryRegistry::new());
/// suno_callback::testing::registry_conformance::a_task_outlives_its_registry(
///     registry,
///     |first| async move { first },
/// )
/// .await;
/// # });
/// ```
pub async fn a_task_outlives_its_registry<R, F, Fut>(first: R, reopen: F)
where
    R: TaskRegistry,
    F: FnOnce(R) -> Fut,
    Fut: Future<Output = R>,
{
    let task = unique_task("restart", Family::Video, 7).with_route(ApiRoute::Jobs);
    first.expect(task.clone(), 1).await.expect("expect");
    let second = reopen(first).await;
    // Due at 1, taken at 2, among up to 1000 due tasks, leased for a second.
    let taken = second.take_due(2, 1_000, 1_000).await.expect("take_due");
    assert_eq!(
        only(taken, &[&task]),
        std::slice::from_ref(&task),
        "due after the restart"
    );
    assert_eq!(
        second.family_of(task.task_id()).await.expect("family_of"),
        Some(Family::Video)
    );
    second.done(task.task_id()).await.expect("done");
}

/// Runs every check, one after another, against one registry.
pub async fn run_all<R: TaskRegistry>(registry: Arc<R>) {
    due_tasks_are_taken_and_leased(&*registry).await;
    take_due_honours_the_limit_and_the_order(&*registry).await;
    concurrent_takers_never_share_a_task(registry).await;
}
