//! The quickstart example itself, started on a loopback port, with real signed HTTP.

mod common;

use common::{PATH, RunningExample, Signer, callback_body, fixture, http_send, signed_with};
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
    assert!(event.starts_with("music complete task="), "{event}");
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
        ("music/add_instrumental_text.json", "music text task="),
        ("music/add_instrumental_first.json", "music first task="),
        (
            "music/add_instrumental_complete.json",
            "music complete task=",
        ),
        ("music/error_code_413.json", "music failure task="),
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
    assert_eq!(line, "music remix task=last tracks=0 titles=[] audio=-");
}

#[tokio::test]
async fn every_family_is_served_on_the_shared_and_its_own_path_one_line_each() {
    let key = "quickstart-families-key";
    let mut example =
        RunningExample::start("quickstart", &[("SUNO_WEBHOOK_HMAC_KEY", key)], &[]).await;
    let signer = Signer::new(key);
    let addr = example.addr;
    let sends = [
        (
            PATH.to_owned(),
            "wav/success.json",
            "wav complete task=988e1f2a3b4c5d6e7f8091a2b3c4c8d3 url=https://cdn.example.net/s/04e6e727.wav",
        ),
        (
            PATH.to_owned(),
            "music/error_code_531.json",
            "music failure task=",
        ),
        (
            PATH.to_owned(),
            "voice/validate_wait_validating.json",
            "voice wait_validating task=c0ffee00d1e2f3a4b5c6d7e8f9a0b1c2 validate=",
        ),
        (
            PATH.to_owned(),
            "lyrics/complete.json",
            "lyrics complete task=",
        ),
        (
            PATH.to_owned(),
            "separation/split_stem_success.json",
            "separation complete task=",
        ),
        (
            PATH.to_owned(),
            "midi/success_top_level_task_id.json",
            "midi complete task=7d1e0f3a5b6c4d2e8f9a0b1c2d3e4f51 instruments=1 notes=1",
        ),
        (
            PATH.to_owned(),
            "cover_images/success.json",
            "cover complete task=",
        ),
        (
            PATH.to_owned(),
            "video/success.json",
            "video complete task=",
        ),
        // Shapeless failures: typed on their family's path, and on the shared one by
        // the family the receiver knows their task by (here: from its success).
        (
            format!("{PATH}/midi"),
            "midi/failure.json",
            "midi failure task=5c79a0b1c2d3e4f5a6b7c8d9e0f1be8e code=500",
        ),
        (
            PATH.to_owned(),
            "lyrics/failure_400.json",
            "lyrics failure task=3b66882fde0a5d398bd269cab6d9542b code=400",
        ),
        (
            format!("{PATH}/wav"),
            "wav/failure.json",
            "wav failure task=",
        ),
    ];
    for (path, file, prefix) in sends {
        http_send(addr, signed_with(&signer, &path, fixture(file)))
            .await
            .expect(200, "processed");
        let line = example.next_line().await;
        assert!(line.starts_with(prefix), "{path} {file}: {line}");
    }
    // The same failure on its family's path is the same callback: one key.
    http_send(
        addr,
        signed_with(
            &signer,
            &format!("{PATH}/lyrics"),
            fixture("lyrics/failure_400.json"),
        ),
    )
    .await
    .expect(200, "duplicate");
    // A path that names no family is not served.
    let answer = http_send(
        addr,
        signer.request(&format!("{PATH}/nope/x"), fixture("wav/success.json")),
    )
    .await;
    assert_eq!(answer.status, 404);
}

/// Peak resident memory of a process, and its current one, in KiB (Linux).
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches(" kB").trim().parse().ok())
            .expect(name)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[tokio::test]
async fn unsigned_bodies_of_any_shape_cost_little_memory_before_they_are_refused() {
    let mut example = RunningExample::start(
        "quickstart",
        &[("SUNO_WEBHOOK_HMAC_KEY", "memory-key")],
        &[],
    )
    .await;
    let pid = example.child.id().expect("pid");
    // Warm up: one refused request, so buffers that live for the process exist.
    http_send(
        example.addr,
        unsigned_request(PATH, fixture("wav/success.json")),
    )
    .await
    .expect(401, "rejected");
    let (_, idle_kib) = memory_kib(pid);
    const MIB: usize = 1024 * 1024;
    let pad = |prefix: &str, item: &str, suffix: &str| {
        let count = (MIB - 200 - prefix.len() - suffix.len()) / (item.len() + 1);
        let items = vec![item; count].join(",");
        format!("{prefix}{items}{suffix}")
    };
    let shapes = [
        // ~349,000 empty tracks.
        pad(
            r#"{"code":200,"data":{"callbackType":"complete","task_id":"t","data":["#,
            "{}",
            "]}}",
        ),
        // As many lyric variations, MIDI notes, cover images and stems.
        pad(
            r#"{"code":200,"data":{"callbackType":"complete","task_id":"t","data":[{"text":"x"},"#,
            "{}",
            "]}}",
        ),
        pad(
            r#"{"code":200,"task_id":"t","data":{"instruments":[{"notes":["#,
            r#"{"pitch":1}"#,
            "]}]}}",
        ),
        pad(
            r#"{"code":200,"data":{"taskId":"t","images":["#,
            r#""u""#,
            "]}}",
        ),
        pad(
            r#"{"code":200,"data":{"task_id":"t","vocal_removal_info":{"#,
            r#""a":"u""#,
            "}}}",
        ),
        // Deep but allowed nesting, repeated.
        pad(
            r#"{"code":200,"data":{"task_id":"t"},"x":["#,
            &format!("{}{}", "[".repeat(100), "]".repeat(100)),
            "]}",
        ),
    ];
    for shape in &shapes {
        assert!(shape.len() <= MIB, "{}", shape.len());
        let mut requests = Vec::new();
        for _ in 0..16 {
            let request = unsigned_request(PATH, shape.clone());
            requests.push(tokio::spawn(http_send(example.addr, request)));
        }
        for request in requests {
            request.await.expect("request task").expect(401, "rejected");
        }
    }
    let (peak_kib, _) = memory_kib(pid);
    let above_idle_mib = peak_kib.saturating_sub(idle_kib) / 1024;
    eprintln!(
        "16 concurrent unsigned 1 MiB bodies per shape: peak {above_idle_mib} MiB above idle"
    );
    assert!(above_idle_mib < 64, "peak {above_idle_mib} MiB above idle");
    let _ = example.child.kill().await;
}
