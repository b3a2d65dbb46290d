//! A body sent in many small frames costs its own length, not a buffer per frame,
//! before its signature is checked.

mod common;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use common::*;
use http::Request;
use http_body::{Body, Frame, SizeHint};
use suno_callback::SunoCallbacks;

/// A server's read buffer: 4 KiB, counted while any frame sliced from it is alive.
struct ReadBuffer {
    bytes: Vec<u8>,
    counts: Arc<BufferCounts>,
}

#[derive(Default)]
struct BufferCounts {
    live: AtomicUsize,
    most_live: AtomicUsize,
}

impl AsRef<[u8]> for ReadBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for ReadBuffer {
    fn drop(&mut self) {
        self.counts.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A body whose frames are one byte each, every one a slice of its own read buffer.
struct OneBytePerFrame {
    frames: VecDeque<u8>,
    counts: Arc<BufferCounts>,
}

impl Body for OneBytePerFrame {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let Some(byte) = self.frames.pop_front() else {
            return Poll::Ready(None);
        };
        let mut bytes = vec![0u8; 4096];
        bytes[0] = byte;
        let live = self.counts.live.fetch_add(1, Ordering::SeqCst) + 1;
        self.counts.most_live.fetch_max(live, Ordering::SeqCst);
        let buffer = ReadBuffer {
            bytes,
            counts: Arc::clone(&self.counts),
        };
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_owner(buffer).slice(0..1)))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.frames.len() as u64)
    }
}

#[tokio::test]
async fn a_body_in_one_byte_frames_keeps_no_read_buffer_per_frame() {
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .build()
        .expect("receiver");
    // 16 KiB: a music callback padded with spaces; unsigned, so refused 401.
    let mut text = callback_body("frames-task", "complete", 200).into_bytes();
    text.resize(16 * 1024, b' ');
    let counts = Arc::new(BufferCounts::default());
    let body = OneBytePerFrame {
        frames: text.into_iter().collect(),
        counts: Arc::clone(&counts),
    };
    let request = Request::post(PATH)
        .header("content-type", "application/json")
        .body(body)
        .expect("request");

    send(callbacks.service(), request)
        .await
        .expect(401, "rejected");

    // Keeping every frame until the end would keep 16,384 read buffers (64 MiB).
    let most_live = counts.most_live.load(Ordering::SeqCst);
    assert!(
        most_live <= 2,
        "{most_live} read buffers of 4 KiB were alive at once for a 16 KiB body"
    );
    assert_eq!(counts.live.load(Ordering::SeqCst), 0, "all released");
}

#[tokio::test]
async fn a_signed_body_in_one_byte_frames_is_read_whole() {
    let counted = Counter::default();
    let runs = counted.clone();
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .on_complete(move |_| {
            runs.bump();
            async { Ok(()) }
        })
        .build()
        .expect("receiver");
    let text = callback_body("frames-signed", "complete", 200);
    let (parts, _) = signed(text.clone()).into_parts();
    let body = OneBytePerFrame {
        frames: text.into_bytes().into_iter().collect(),
        counts: Arc::default(),
    };
    let request = Request::from_parts(parts, body);

    send(callbacks.service(), request)
        .await
        .expect(200, "processed");
    assert_eq!(counted.get(), 1);
}
