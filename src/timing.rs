//! The durations the stages work with, shared by the pipeline and the stages it calls
//! (claim, settle), so no stage imports the pipeline.

use std::time::Duration;

/// The durations the pipeline works with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    pub(crate) handler_timeout: Duration,
    pub(crate) lease: Duration,
    pub(crate) done_ttl: Duration,
    pub(crate) in_flight_wait: Duration,
    pub(crate) store_timeout: Duration,
}
