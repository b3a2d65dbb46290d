//! The quickstart example's `GET /metrics`: after known traffic, the Prometheus text
//! holds the receiver's counts, with labels from closed sets only.

mod common;

use std::collections::BTreeMap;

use common::{
    PATH, RunningExample, Signer, callback_body, fixture, http_send, raw_http, signed_with,
};
use suno_callback::testing::unsigned_request;

/// One sample of the Prometheus text: its name, its labels, its value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("series and value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').expect("label pair");
                    (key.to_owned(), value.trim_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().expect("number"),
            }
        })
        .collect()
}

/// The value of the series `name` with exactly these labels (0 when absent).
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let wanted: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples
        .iter()
        .filter(|s| s.name == name && s.labels == wanted)
        .map(|s| s.value)
        .sum()
}

async fn scrape(addr: std::net::SocketAddr) -> (Vec<Sample>, String) {
    let (status, body) = raw_http(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (parse(&body), body)
}

#[tokio::test]
async fn known_traffic_shows_in_the_scraped_counts() {
    let key = "metrics-test-key";
    let mut example =
        RunningExample::start("quickstart", &[("SUNO_WEBHOOK_HMAC_KEY", key)], &[]).await;
    assert!(
        example.startup.iter().any(|l| l.contains("/metrics")),
        "the quickstart says where its metrics are: {:?}",
        example.startup
    );
    let addr = example.addr;
    let signer = Signer::new(key);

    for file in [
        "music/add_instrumental_text.json",
        "music/add_instrumental_complete.json",
    ] {
        http_send(addr, signed_with(&signer, PATH, fixture(file)))
            .await
            .expect(200, "processed");
        example.next_line().await;
    }
    for _ in 0..2 {
        http_send(
            addr,
            signed_with(
                &signer,
                PATH,
                fixture("music/add_instrumental_complete.json"),
            ),
        )
        .await
        .expect(200, "duplicate");
    }
    // A `callbackType` of hostile text: processed by the fallback, labelled `other`.
    http_send(
        addr,
        signed_with(
            &signer,
            PATH,
            callback_body("odd", "<script>evil</script>", 200),
        ),
    )
    .await
    .expect(200, "processed");
    example.next_line().await;
    http_send(
        addr,
        Signer::new("not-the-key").request(PATH, callback_body("x", "complete", 200)),
    )
    .await
    .expect(401, "rejected");
    http_send(addr, unsigned_request(PATH, "not json"))
        .await
        .expect(400, "invalid");
    let (status, _) = raw_http(
        addr,
        &format!("GET {PATH} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 405);

    let (samples, text) = scrape(addr).await;
    let requests = |outcome, family, stage| {
        value(
            &samples,
            "suno_callback_requests_total",
            &[("outcome", outcome), ("family", family), ("stage", stage)],
        )
    };
    assert_eq!(requests("processed", "music", "text"), 1.0, "{text}");
    assert_eq!(requests("processed", "music", "complete"), 1.0, "{text}");
    assert_eq!(requests("duplicate", "music", "complete"), 2.0, "{text}");
    assert_eq!(requests("processed", "music", "other"), 1.0, "{text}");
    assert_eq!(requests("rejected", "music", "complete"), 1.0, "{text}");
    assert_eq!(requests("invalid", "unknown", "unknown"), 2.0, "{text}");
    let total: f64 = samples
        .iter()
        .filter(|s| s.name == "suno_callback_requests_total")
        .map(|s| s.value)
        .sum();
    assert_eq!(total, 8.0, "every request counted once: {text}");
    assert!(!text.contains("evil"), "no body text in a label: {text}");

    let handler_runs = |stage| {
        value(
            &samples,
            "suno_callback_handler_duration_seconds_count",
            &[
                ("family", "music"),
                ("stage", stage),
                ("result", "succeeded"),
            ],
        )
    };
    assert_eq!(handler_runs("text"), 1.0, "{text}");
    assert_eq!(handler_runs("complete"), 1.0, "{text}");
    assert_eq!(handler_runs("other"), 1.0, "{text}");

    let store_calls = |operation| {
        value(
            &samples,
            "suno_callback_store_call_duration_seconds_count",
            &[("operation", operation), ("result", "ok")],
        )
    };
    // Three first deliveries and two duplicates claim; the three handlers complete.
    assert_eq!(store_calls("claim"), 5.0, "{text}");
    assert_eq!(store_calls("complete"), 3.0, "{text}");
    assert_eq!(store_calls("release"), 0.0, "{text}");
    assert!(
        !text.contains("suno_callback_store_errors_total{"),
        "no store errors: {text}"
    );
}
