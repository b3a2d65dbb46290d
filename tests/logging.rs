//! The tracing output names the task, stage and outcome, and never a key or a
//! signature.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{KEY, PATH, send, signed};
use suno_callback::SunoCallbacks;
use suno_callback::testing::{MusicCallback, Signer};
use tracing_subscriber::fmt::MakeWriter;

/// The task of the callbacks these tests send.
const TASK: &str = "2fac7b1e4d5a4c3f8e9d0a1b2c3d9f72";

/// Collects everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Captures every log line of this thread (at every level) until the guard drops.
fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

impl Captured {
    /// Everything written so far.
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf-8")
    }
}

#[tokio::test]
async fn logs_name_task_stage_and_outcome_but_never_secrets() {
    let (captured, _guard) = capture_logs();

    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .on_complete(|_| async { Err(suno_callback::HandlerError::msg("db down")) })
        .on_first(|_| async { Ok(()) })
        .build()
        .expect("valid configuration");
    let first = signed(MusicCallback::first(TASK).body());
    let signature = first.headers()["x-webhook-signature"]
        .to_str()
        .expect("ascii")
        .to_owned();
    send(callbacks.service(), first)
        .await
        .expect(200, "processed");
    send(
        callbacks.service(),
        signed(MusicCallback::complete(TASK).body()),
    )
    .await
    .expect(500, "failed");
    let forged = Signer::new("forged-key-value").request(PATH, MusicCallback::text(TASK).body());
    send(callbacks.service(), forged)
        .await
        .expect(401, "rejected");

    let logs = captured.text();
    for expected in [
        TASK,
        "family=\"music\"",
        "stage=\"first\"",
        "outcome=\"processed\"",
        "outcome=\"failed\"",
        "outcome=\"rejected\"",
        "db down",
    ] {
        assert!(logs.contains(expected), "missing {expected:?} in:\n{logs}");
    }
    for secret in [KEY, "forged-key-value", signature.as_str()] {
        assert!(!logs.contains(secret), "{secret:?} leaked into:\n{logs}");
    }
}

/// Finding 4: a handler error or panic quoting a body URL with a `\n` forged a log line
/// of its own, and a 1,000,000-character `callbackType` made a 1 MB log line.
#[tokio::test]
async fn attacker_text_in_logs_is_escaped_and_cut_short() {
    let (captured, _guard) = capture_logs();
    let forged_line = "\n2026-01-01T00:00:00Z  INFO forged: all good";
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .on_complete(|ev| async move {
            let url = ev.tracks()[0].audio_url().unwrap_or_default().to_owned();
            Err(suno_callback::HandlerError::msg(format!(
                "cannot fetch {url}"
            )))
        })
        .on_first(|ev| async move {
            let url = ev.tracks()[0].audio_url().unwrap_or_default().to_owned();
            panic!("cannot fetch {url}");
        })
        .fallback(|_| async { Ok(()) })
        .build()
        .expect("valid configuration");
    for callback in [MusicCallback::complete(TASK), MusicCallback::first(TASK)] {
        let body = callback
            .map_tracks(|t| t.with_field("audio_url", format!("https://x.example/a{forged_line}")))
            .body();
        send(callbacks.service(), signed(body)).await;
    }
    let huge = MusicCallback::new(TASK, "z".repeat(1_000_000)).body();
    send(callbacks.service(), signed(huge)).await;

    let text = captured.text();
    assert!(text.contains("handler failed"), "{text}");
    assert!(text.contains("handler panicked"), "{text}");
    for line in text.lines() {
        assert!(
            !line.starts_with("2026-01-01T00:00:00Z"),
            "a forged line: {line}"
        );
        assert!(line.len() < 2048, "a line of {} bytes", line.len());
    }
    assert!(text.contains("\\n2026-01-01"), "escaped: {text}");
}

/// A handler error quoting body text cannot fake a `key=value` field of its log line:
/// it is logged quoted, with its quotes and backslashes escaped.
#[tokio::test]
async fn a_handler_error_cannot_fake_a_field_of_its_log_line() {
    let (captured, _guard) = capture_logs();
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .on_complete(|ev| async move {
            let title = ev.tracks()[0].title().unwrap_or_default().to_owned();
            Err(suno_callback::HandlerError::msg(format!(
                "cannot store {title}"
            )))
        })
        .build()
        .expect("valid configuration");
    let body = MusicCallback::complete(TASK)
        .map_tracks(|t| t.with_field("title", r#"x" task_id="forged-task" outcome="processed"#))
        .body();
    send(callbacks.service(), signed(body))
        .await
        .expect(500, "failed");

    let text = captured.text();
    let line = text
        .lines()
        .find(|line| line.contains("handler failed"))
        .unwrap_or_else(|| panic!("no handler failure logged: {text}"));
    assert!(
        !line.contains(r#" task_id="forged-task""#),
        "a forged field: {line}"
    );
    assert!(
        line.contains(r#"\" task_id=\"forged-task\""#),
        "quoted and escaped: {line}"
    );
}
