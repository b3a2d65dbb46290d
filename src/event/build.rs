//! Building the typed event from a verified body whose envelope was read: only `msg`
//! and `data` are parsed, where the envelope found them, by the shape the envelope
//! chose.

use std::fmt;

use bytes::Bytes;

use super::envelope::{Envelope, decode_msg};
use super::family::{ApiRoute, Family, Outcome};
use super::jobs::JobsMeta;
use super::payload::Payload;
use super::shape::{self, Built};
use super::stage::Stage;
use crate::untrusted::Untrusted;

/// What every event carries, whatever its family.
#[derive(Clone)]
pub(super) struct Meta {
    pub(super) task_id: String,
    pub(super) family: Family,
    pub(super) stage: Stage,
    pub(super) outcome: Outcome,
    pub(super) route: ApiRoute,
    pub(super) code: i64,
    pub(super) msg: Option<String>,
    pub(super) raw: Bytes,
    /// The jobs route's metadata, for a callback of that route.
    pub(super) jobs: Option<Box<JobsMeta>>,
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Meta")
            .field("task_id", &self.task_id)
            .field("family", &self.family)
            .field("stage", &self.stage)
            .field("outcome", &self.outcome)
            .field("route", &self.route)
            .field("code", &self.code)
            .field("msg", &self.msg.as_deref().map(Untrusted))
            .field("raw_len", &self.raw.len())
            .field("jobs", &self.jobs)
            .finish()
    }
}

/// The metadata and payload of a verified body whose envelope has been read.
pub(super) fn build(envelope: Envelope, raw: Bytes) -> (Meta, Payload) {
    let parts = &envelope.parts;
    let data = if parts.repeated {
        tracing::debug!("callback payload unreadable (a repeated `msg`); delivered untyped");
        None
    } else {
        parts.data.clone().and_then(|range| raw.get(range))
    };
    let shape = shape::of(envelope.route, envelope.family);
    let Built { payload, jobs } = (shape.build)(envelope.family, data);
    let msg = if parts.repeated {
        None
    } else {
        decode_msg(&raw, parts.msg.as_ref())
    };
    let meta = Meta {
        stage: Stage::from_wire(&envelope.stage),
        task_id: envelope.task_id,
        family: envelope.family,
        outcome: envelope.outcome,
        route: envelope.route,
        code: envelope.code,
        msg,
        raw,
        jobs,
    };
    (meta, payload)
}
