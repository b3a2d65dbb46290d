//! The sender simulator (`suno-callback-sim`), run as the built binary against
//! receivers on loopback: the library's quickstart example, and in-process
//! quickstart-style servers that count their handler runs.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use common::{KEY, PATH, RunningExample};
use suno_callback::{HandlerError, SunoCallbacks};

/// What a run of the simulator printed, and how it exited.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The numbers of the `summary:` line, by name ("given up" included).
    fn summary(&self) -> HashMap<String, u64> {
        let line = self
            .stdout
            .lines()
            .find_map(|line| line.strip_prefix("summary: "))
            .unwrap_or_else(|| panic!("no summary line in:\n{}", self.stdout));
        line.split(", ")
            .map(|part| {
                let (name, number) = part.rsplit_once(' ').expect("name and number");
                (name.to_owned(), number.parse().expect("number"))
            })
            .collect()
    }

    #[track_caller]
    fn expect_summary(&self, expected: &[(&str, u64)]) {
        let summary = self.summary();
        for (name, value) in expected {
            assert_eq!(
                summary.get(*name),
                Some(value),
                "{name} in the summary:\n{}",
                self.stdout
            );
        }
    }

    /// The per-attempt lines.
    fn attempts(&self) -> Vec<&str> {
        self.stdout.lines().filter(|l| l.contains(" -> ")).collect()
    }
}

/// Runs the simulator with these arguments (and no key or URL from the environment).
async fn simulate(args: &[&str]) -> Run {
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_suno-callback-sim"))
            .args(args)
            .env_remove("SUNO_WEBHOOK_HMAC_KEY")
            .env_remove("SUNO_CALLBACK_URL")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the simulator finished in time")
    .expect("run the simulator");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Handler runs of an in-process receiver: (task id, stage or failure code, when).
type Runs = Arc<Mutex<Vec<(String, String, Instant)>>>;

/// A quickstart-style receiver on a loopback port: every stage and failures are
/// handled and recorded; each handler sleeps `work` (so storms overlap); the
/// `complete` handler fails its first `failing_completes` runs.
async fn serve(work: Duration, failing_completes: usize) -> (String, Runs) {
    let runs: Runs = Arc::default();
    let record = |runs: &Runs| {
        let runs = Arc::clone(runs);
        move |task: &str, what: String| {
            let mut runs = runs.lock().expect("lock");
            runs.push((task.to_owned(), what.clone(), Instant::now()));
            runs.iter().filter(|(_, w, _)| *w == what).count()
        }
    };
    let (on_text, on_first, on_complete, on_failure) =
        (record(&runs), record(&runs), record(&runs), record(&runs));
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .on_text(move |ev| {
            on_text(ev.task_id(), "text".into());
            async move {
                tokio::time::sleep(work).await;
                Ok(())
            }
        })
        .on_first(move |ev| {
            on_first(ev.task_id(), "first".into());
            async move {
                tokio::time::sleep(work).await;
                Ok(())
            }
        })
        .on_complete(move |ev| {
            let run = on_complete(ev.task_id(), "complete".into());
            async move {
                tokio::time::sleep(work).await;
                if run <= failing_completes {
                    return Err(HandlerError::msg("injected failure"));
                }
                Ok(())
            }
        })
        .on_failure(move |ev| {
            on_failure(ev.task_id(), format!("failure {}", ev.code()));
            async { Ok(()) }
        })
        .build()
        .expect("valid configuration");
    let app = Router::new().route_service(PATH, callbacks.service());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (format!("http://{addr}{PATH}"), runs)
}

fn count(runs: &Runs, what: &str) -> usize {
    let runs = runs.lock().expect("lock");
    runs.iter().filter(|(_, w, _)| w == what).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lifecycle_against_the_quickstart_example_is_processed_in_order() {
    let key = "simulator-test-key";
    let mut example =
        RunningExample::start("quickstart", &[("SUNO_WEBHOOK_HMAC_KEY", key)], &[]).await;
    let url = format!("http://{}{PATH}", example.addr);
    let run = simulate(&["--url", &url, "--key", key, "--task-id", "sim-lifecycle"]).await;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    run.expect_summary(&[
        ("sent", 3),
        ("accepted", 3),
        ("duplicates", 0),
        ("rejected", 0),
        ("retried", 0),
        ("given up", 0),
    ]);
    let attempts = run.attempts();
    assert_eq!(attempts.len(), 3, "{}", run.stdout);
    for (line, stage) in attempts.iter().zip(["text", "first", "complete"]) {
        assert!(line.starts_with(stage), "{line}");
        assert!(line.contains("task=sim-lifecycle"), "{line}");
        assert!(line.contains("-> 200 processed"), "{line}");
    }
    for prefix in [
        "music text task=sim-lifecycle",
        "music first task=sim-lifecycle",
    ] {
        let line = example.next_line().await;
        assert!(line.starts_with(prefix), "{line}");
    }
    let complete = example.next_line().await;
    assert!(
        complete.starts_with("music complete task=sim-lifecycle tracks=2"),
        "{complete}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_handler_is_retried_after_the_scaled_interval_and_processed() {
    let (url, runs) = serve(Duration::ZERO, 1).await;
    // 0.002 scales the first retry interval (60 s) to 120 ms.
    let run = simulate(&[
        "--url",
        &url,
        "--key",
        KEY,
        "--retry-scale",
        "0.002",
        "--task-id",
        "sim-retry",
    ])
    .await;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    run.expect_summary(&[
        ("sent", 4),
        ("accepted", 3),
        ("rejected", 1),
        ("retried", 1),
        ("given up", 0),
    ]);
    let complete: Vec<&str> = run
        .attempts()
        .into_iter()
        .filter(|l| l.starts_with("complete"))
        .collect();
    assert_eq!(complete.len(), 2, "{}", run.stdout);
    assert!(
        complete[0].contains("attempt=1/4") && complete[0].contains("-> 500 failed"),
        "{}",
        complete[0]
    );
    assert!(complete[0].ends_with("retry in 120 ms"), "{}", complete[0]);
    assert!(
        complete[1].contains("attempt=2/4") && complete[1].contains("-> 200 processed"),
        "{}",
        complete[1]
    );
    let runs = runs.lock().expect("lock");
    let completes: Vec<Instant> = runs
        .iter()
        .filter(|(_, what, _)| what == "complete")
        .map(|(_, _, at)| *at)
        .collect();
    assert_eq!(completes.len(), 2, "one failed run, one retried run");
    assert!(
        completes[1] - completes[0] >= Duration::from_millis(120),
        "the retry waited the scaled interval: {:?}",
        completes[1] - completes[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_one_callback_runs_its_handler_once() {
    let (url, runs) = serve(Duration::from_millis(100), 0).await;
    let run = simulate(&[
        "--url",
        &url,
        "--key",
        KEY,
        "--storm",
        "40",
        "--skip-text",
        "--skip-first",
        "--retry-scale",
        "0.001",
    ])
    .await;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert_eq!(count(&runs, "complete"), 1, "exactly one handler run");
    run.expect_summary(&[("accepted", 1), ("duplicates", 39), ("given up", 0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_answered_duplicate_and_run_nothing() {
    let (url, runs) = serve(Duration::ZERO, 0).await;
    let run = simulate(&["--url", &url, "--key", KEY, "--duplicates", "2"]).await;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    run.expect_summary(&[
        ("sent", 9),
        ("accepted", 3),
        ("duplicates", 6),
        ("rejected", 0),
    ]);
    for stage in ["text", "first", "complete"] {
        assert_eq!(count(&runs, stage), 1, "{stage}");
    }
    assert!(
        run.stdout
            .contains("answers: 200 duplicate 6, 200 processed 3")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_lifecycle_delivers_the_chosen_code() {
    let (url, runs) = serve(Duration::ZERO, 0).await;
    let run = simulate(&["--url", &url, "--key", KEY, "--fail-code", "413"]).await;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    run.expect_summary(&[("sent", 2), ("accepted", 2)]);
    assert_eq!(count(&runs, "text"), 1);
    assert_eq!(count(&runs, "failure 413"), 1);
    assert_eq!(count(&runs, "complete"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_keys_and_stale_signatures_are_rejected_until_given_up() {
    let (url, runs) = serve(Duration::ZERO, 0).await;
    for flag in ["--wrong-key", "--stale-signature"] {
        let run = simulate(&[
            "--url",
            &url,
            "--key",
            KEY,
            flag,
            "--skip-text",
            "--skip-first",
            "--retry-scale",
            "0.0001",
        ])
        .await;
        assert_eq!(run.code, Some(1), "{flag}: {}{}", run.stdout, run.stderr);
        run.expect_summary(&[
            ("sent", 4),
            ("accepted", 0),
            ("rejected", 4),
            ("retried", 3),
            ("given up", 1),
        ]);
        assert!(
            run.stdout.contains("401 rejected"),
            "{flag}: {}",
            run.stdout
        );
        assert!(run.stdout.contains("given up after 4 attempts"), "{flag}");
    }
    assert!(runs.lock().expect("lock").is_empty(), "no handler ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_at_a_rate_are_each_processed_once() {
    let (url, runs) = serve(Duration::ZERO, 0).await;
    let started = Instant::now();
    let run = simulate(&[
        "--url", &url, "--key", KEY, "--tasks", "20", "--rate", "200", "--quiet",
    ])
    .await;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(
        started.elapsed() >= Duration::from_millis(95),
        "20 tasks at 200/s take at least 95 ms"
    );
    run.expect_summary(&[("sent", 60), ("accepted", 60), ("given up", 0)]);
    assert!(run.attempts().is_empty(), "--quiet prints only the summary");
    let runs = runs.lock().expect("lock");
    let mut distinct: Vec<(&str, &str)> = runs
        .iter()
        .map(|(task, what, _)| (task.as_str(), what.as_str()))
        .collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(runs.len(), 60);
    assert_eq!(distinct.len(), 60, "20 distinct tasks, 3 stages each");
}

#[tokio::test]
async fn an_unreachable_url_is_given_up_and_a_bad_one_is_a_usage_error() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let url = format!("http://{closed}{PATH}");
    let run = simulate(&[
        "--url",
        &url,
        "--key",
        KEY,
        "--skip-text",
        "--skip-first",
        "--retries",
        "1",
        "--retry-scale",
        "0",
    ])
    .await;
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    run.expect_summary(&[("sent", 2), ("rejected", 2), ("given up", 1)]);
    assert!(run.stdout.contains("-> error: "), "{}", run.stdout);

    let https = simulate(&["--url", "https://127.0.0.1:1/cb", "--key", KEY]).await;
    assert_eq!(https.code, Some(2));
    assert!(https.stderr.contains("plain HTTP"), "{}", https.stderr);
    let no_key = simulate(&["--url", "http://127.0.0.1:1/cb"]).await;
    assert_eq!(no_key.code, Some(2));
    assert!(no_key.stderr.contains("--key"), "{}", no_key.stderr);
}

/// A receiver on the shared path and the per-family paths whose fallback records
/// `family stage-or-outcome` of every event.
async fn serve_families() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = Arc::clone(&seen);
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .fallback(move |ev| {
            let what = if ev.is_failure() {
                format!("{} failure", ev.family())
            } else {
                format!("{} {}", ev.family(), ev.stage())
            };
            record
                .lock()
                .expect("lock")
                .push(what.trim_end().to_owned());
            async { Ok(()) }
        })
        .build()
        .expect("valid configuration");
    let app = Router::new().nest_service(PATH, callbacks.service());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (format!("http://{addr}{PATH}"), seen)
}

#[tokio::test]
async fn every_family_is_played_on_the_shared_or_its_own_path() {
    let (url, seen) = serve_families().await;
    let cases: [(&[&str], &[&str]); 5] = [
        (&["--family", "wav"], &["wav"]),
        (
            &["--family", "voice"],
            &["voice wait_validating", "voice success"],
        ),
        (
            &["--family", "separation", "--family-path"],
            &["separation"],
        ),
        (
            &["--family", "midi", "--fail-code", "500", "--family-path"],
            &["midi failure"],
        ),
        (
            &["--family", "midi", "--fail-code", "500"],
            &["unknown failure"],
        ),
    ];
    for (args, expected) in cases {
        seen.lock().expect("lock").clear();
        let mut argv = vec!["--url", url.as_str(), "--key", KEY, "--quiet"];
        argv.extend_from_slice(args);
        let run = simulate(&argv).await;
        assert_eq!(run.code, Some(0), "{args:?}: {}{}", run.stdout, run.stderr);
        assert_eq!(*seen.lock().expect("lock"), expected, "{args:?}");
    }
}

#[tokio::test]
async fn the_jobs_route_is_played_typed_by_its_model() {
    let (url, seen) = serve_families().await;
    let cases: [(&[&str], &[&str]); 4] = [
        (
            &["--route", "jobs", "--model", "ai-music-api/generate"],
            &["music complete"],
        ),
        (
            &[
                "--route",
                "jobs",
                "--model",
                "ai-music-api/convert-to-wav-format",
                "--fail-code",
                "501",
                "--family-path",
            ],
            &["wav failure"],
        ),
        (&["--route", "jobs", "--family", "cover"], &["cover"]),
        (
            &["--route", "jobs", "--model", "sora-2-text-to-video"],
            &["unknown"],
        ),
    ];
    for (args, expected) in cases {
        seen.lock().expect("lock").clear();
        let mut argv = vec!["--url", url.as_str(), "--key", KEY, "--quiet"];
        argv.extend_from_slice(args);
        let run = simulate(&argv).await;
        assert_eq!(run.code, Some(0), "{args:?}: {}{}", run.stdout, run.stderr);
        assert_eq!(*seen.lock().expect("lock"), expected, "{args:?}");
    }
}
