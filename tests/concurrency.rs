//! Concurrent deliveries of one callback run its handler exactly once; a failed run is
//! retried.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Counter, KEY, callback_body, send, signed};
use suno_callback::testing::MusicCallback;
use suno_callback::{HandlerError, SunoCallbacks};

/// The task of the callbacks these tests send.
const TASK: &str = "2fac7b1e4d5a4c3f8e9d0a1b2c3d9f72";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_deliveries_of_one_callback_run_the_handler_once() {
    const DELIVERIES: usize = 200;
    let runs = Counter::default();
    let counted = runs.clone();
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .on_complete(move |_| {
            counted.bump();
            async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(())
            }
        })
        .build()
        .expect("valid configuration");
    let body = MusicCallback::complete(TASK).body();
    let barrier = Arc::new(tokio::sync::Barrier::new(DELIVERIES));
    let deliveries: Vec<_> = (0..DELIVERIES)
        .map(|_| {
            let (service, request, barrier) = (
                callbacks.service(),
                signed(body.clone()),
                Arc::clone(&barrier),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                send(service, request).await
            })
        })
        .collect();
    let mut labels: HashMap<String, usize> = HashMap::new();
    for delivery in deliveries {
        let answer = delivery.await.expect("delivery task");
        assert_eq!(answer.status.as_u16(), 200, "{:?}", answer.json);
        *labels.entry(answer.label().to_owned()).or_default() += 1;
    }
    assert_eq!(runs.get(), 1, "exactly one handler run");
    assert_eq!(labels.get("processed"), Some(&1), "{labels:?}");
    assert_eq!(
        labels.get("duplicate"),
        Some(&(DELIVERIES - 1)),
        "{labels:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_over_many_tasks_and_stages_runs_each_once() {
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let record = |seen: &Arc<Mutex<HashMap<String, usize>>>| {
        let seen = Arc::clone(seen);
        move |event: suno_callback::CallbackEvent| {
            let key = format!("{}/{}", event.task_id(), event.stage());
            *seen.lock().expect("lock").entry(key).or_default() += 1;
            async { Ok(()) }
        }
    };
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .on_text(record(&seen))
        .on_first(record(&seen))
        .on_complete(record(&seen))
        .build()
        .expect("valid configuration");
    let mut requests = Vec::new();
    for task in 0..50 {
        for stage in ["text", "first", "complete"] {
            for _copy in 0..4 {
                requests.push(callback_body(&format!("storm-{task}"), stage, 200));
            }
        }
    }
    // Interleave copies of different callbacks.
    requests.sort_by_key(|body| body.len() as u64 * 31 % 97);
    let handles: Vec<_> = requests
        .into_iter()
        .map(|body| tokio::spawn(send(callbacks.service(), signed(body))))
        .collect();
    for handle in handles {
        let answer = handle.await.expect("delivery");
        assert_eq!(answer.status.as_u16(), 200, "{:?}", answer.json);
    }
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 150, "every (task, stage) ran");
    assert!(
        seen.values().all(|&n| n == 1),
        "each exactly once: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_the_first_run_fails_a_waiting_duplicate_runs_it_again() {
    let runs = Counter::default();
    let counted = runs.clone();
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .on_complete(move |_| {
            let attempt = counted.bump();
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if attempt == 1 {
                    Err(HandlerError::msg("first attempt fails"))
                } else {
                    Ok(())
                }
            }
        })
        .build()
        .expect("valid configuration");
    let body = MusicCallback::complete(TASK).body();
    let deliveries: Vec<_> = (0..11)
        .map(|_| tokio::spawn(send(callbacks.service(), signed(body.clone()))))
        .collect();
    let mut labels = Vec::new();
    for delivery in deliveries {
        labels.push(delivery.await.expect("delivery").label().to_owned());
    }
    let count = |label: &str| labels.iter().filter(|l| *l == label).count();
    assert_eq!(runs.get(), 2, "one failed run, one successful rerun");
    assert_eq!(count("failed"), 1, "{labels:?}");
    assert_eq!(count("processed"), 1, "{labels:?}");
    assert_eq!(count("duplicate"), 9, "{labels:?}");
}
