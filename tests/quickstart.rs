//! The quickstart example itself, started on a loopback port, with real signed HTTP.

mod common;

use common::{PATH, RunningExample, Signer, callback_body, fixture, http_send};
use suno_callback::testing::unsigned_request;

#[tokio::test]
async fn with_no_key_it_prints_a_curl_command_that_gets_processed() {
    let mut example = RunningExample::start("quickstart", &[], &["SUNO_WEBHOOK_HMAC_KEY"]).await;
    let mut key_line = None;
    let curl = loop {
        let line = example.next_line().await;
        if line.contains("generated a key") {
            key_line = Some(line);
        } else if line.starts_with("curl ") {
            break line;
        }
    };
    assert!(key_line.is_some(), "the generated key is printed");
    let output = tokio::process::Command::new("sh")
        .args(["-c", &curl])
        .output()
        .await
        .expect("run curl");
    let answer = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "curl failed: {output:?}");
    assert!(answer.contains(r#""status":"processed""#), "{answer}");
    let event = example.next_line().await;
    assert!(event.starts_with("complete  task="), "{event}");
    assert!(event.contains("Night City"), "{event}");
}

#[tokio::test]
async fn with_a_key_it_answers_signed_callbacks_and_prints_one_line_per_event() {
    let key = "quickstart-test-key";
    let mut example =
        RunningExample::start("quickstart", &[("SUNO_WEBHOOK_HMAC_KEY", key)], &[]).await;
    let signer = Signer::new(key);
    let addr = example.addr;

    let stages = [
        ("music/add_instrumental_text.json", "text      task="),
        ("music/add_instrumental_first.json", "first     task="),
        ("music/add_instrumental_complete.json", "complete  task="),
        ("music/error_code_413.json", "failure   task="),
    ];
    // Each stage signed a second apart, as the sender's stages are: two stages of one
    // task signed in the same second share a signature, and the second is refused.
    let now = suno_callback::verify::Clock::unix_seconds(&suno_callback::verify::SystemClock);
    for ((file, prefix), earlier) in stages.into_iter().zip([40, 30, 20, 10]) {
        http_send(addr, signer.request_at(PATH, fixture(file), now - earlier))
            .await
            .expect(200, "processed");
        let line = example.next_line().await;
        assert!(line.starts_with(prefix), "{file}: {line}");
    }
    let duplicate = signer.request(PATH, fixture("music/add_instrumental_complete.json"));
    http_send(addr, duplicate).await.expect(200, "duplicate");
    http_send(
        addr,
        Signer::new("not-the-key").request(PATH, callback_body("x", "complete", 200)),
    )
    .await
    .expect(401, "rejected");
    http_send(addr, unsigned_request(PATH, "nope"))
        .await
        .expect(400, "invalid");

    // The duplicate and the refusals printed nothing: the next line is the next event.
    http_send(
        addr,
        signer.request(PATH, callback_body("last", "remix", 200)),
    )
    .await
    .expect(200, "processed");
    let line = example.next_line().await;
    assert_eq!(line, r#"other     task=last callbackType="remix""#);
}
