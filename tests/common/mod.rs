//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use suno_callback::testing::Signer;
use tower::{Service, ServiceExt};

pub const KEY: &str = "test-webhook-hmac-key";
pub const PATH: &str = "/callbacks/suno";

/// A fixture file from `tests/fixtures/`.
pub fn fixture(relative: &str) -> Bytes {
    let path = format!("{}/tests/fixtures/{relative}", env!("CARGO_MANIFEST_DIR"));
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}")))
}

/// Every fixture under `tests/fixtures/<dir>/`, as (file name, body), sorted.
pub fn fixtures_in(dir: &str) -> Vec<(String, Bytes)> {
    let path = format!("{}/tests/fixtures/{dir}", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("list {path}: {e}"))
        .map(|entry| entry.expect("dir entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let body = fixture(&format!("{dir}/{name}"));
            (name, body)
        })
        .collect()
}

pub fn signer() -> Signer {
    Signer::new(KEY)
}

/// A signed request for `body`, timestamped now.
pub fn signed(body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    signer().request(PATH, body)
}

/// A minimal music callback body.
pub fn callback_body(task_id: &str, callback_type: &str, code: u16) -> String {
    format!(
        r#"{{"code":{code},"msg":"m","data":{{"callbackType":"{callback_type}","task_id":"{task_id}","data":[]}}}}"#
    )
}

/// What a response said: status, headers and the JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: serde_json::Value,
}

impl Answer {
    pub async fn from_response<B>(response: Response<B>) -> Self
    where
        B: Body,
        B::Error: std::fmt::Debug,
    {
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
        });
        Self {
            status: parts.status,
            headers: parts.headers,
            json,
        }
    }

    /// The body's `status` field.
    pub fn label(&self) -> &str {
        self.json["status"].as_str().unwrap_or("<none>")
    }

    /// Asserts the status code and the body's `status`.
    #[track_caller]
    pub fn expect(&self, status: u16, label: &str) {
        assert_eq!(
            (self.status.as_u16(), self.label()),
            (status, label),
            "answer: {:?}",
            self.json
        );
    }
}

/// Sends one request through a service with `oneshot`.
pub async fn send<S, B, ResBody>(service: S, request: Request<B>) -> Answer
where
    S: Service<Request<B>, Response = Response<ResBody>, Error = Infallible>,
    ResBody: Body,
    ResBody::Error: std::fmt::Debug,
{
    let response = service.oneshot(request).await.unwrap_or_else(|e| match e {});
    Answer::from_response(response).await
}

/// Counts handler runs.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    pub fn bump(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}
