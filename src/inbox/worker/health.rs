//! Whether the workers' database takes their writes, as they see it. A leaf module.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::metrics;

/// Whether the workers' database takes their writes. Many workers see one outage:
/// the log line and the gauge change once per change of state.
#[derive(Debug, Default)]
pub(crate) struct StoreHealth {
    down: AtomicBool,
}

impl StoreHealth {
    pub(crate) fn failed(&self, operation: &'static str, error: &dyn fmt::Display) {
        metrics::inbox_store_error(operation);
        if self.down.swap(true, Ordering::SeqCst) {
            tracing::debug!(%error, operation, "inbox database call failed");
        } else {
            metrics::inbox_store_available(false);
            tracing::error!(
                %error,
                operation,
                "inbox workers stopped: the database does not take their writes; \
                 they try again every second"
            );
        }
    }

    pub(crate) fn succeeded(&self) {
        if self.down.swap(false, Ordering::SeqCst) {
            metrics::inbox_store_available(true);
            tracing::info!("inbox workers resumed: the database takes their writes again");
        }
    }
}
