//! `MemoryStore` passes the dedup store conformance suite.

use suno_callback::store::MemoryStore;

async fn make_store() -> MemoryStore {
    MemoryStore::new()
}

suno_callback::dedup_store_conformance!(make_store);

#[tokio::test]
async fn a_small_store_passes_every_check_in_sequence() {
    suno_callback::testing::conformance::run_all(std::sync::Arc::new(
        MemoryStore::with_max_entries(100),
    ))
    .await;
}
