//! `MemoryStore` at scale: what one claim costs with 1 to 10 M keys remembered, and
//! the memory each remembered key takes.
//!
//! ```text
//! cargo bench --bench memory_store                # up to 10 M keys (about 1 min)
//! cargo bench --bench memory_store -- 1000000     # up to 1 M keys
//! ```
//!
//! The store is filled with completed keys (as after a day of callbacks), then, at each
//! size, measured: claims of keys it has never seen (first deliveries; each is released
//! afterwards, untimed, so the size stays) and claims of keys it holds done
//! (duplicates), in random order. Memory per key is the growth of the process's
//! resident memory while the store was filled, divided by the keys it holds.

use std::hint::black_box;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use suno_callback::store::{Claim, DedupKey, DedupStore, MemoryStore};
use suno_callback::{Family, Outcome};

/// The process's resident memory, in bytes (Linux; 0 elsewhere).
fn resident_bytes() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<usize>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

const LEASE: Duration = Duration::from_secs(30);
const TTL: Duration = Duration::from_secs(24 * 3600);
/// Claims timed at each size, of each kind.
const PROBES: usize = 200_000;

fn key(n: usize) -> DedupKey {
    DedupKey::new(
        format!("{n:032x}"),
        Family::Music,
        "complete",
        Outcome::Success,
    )
}

/// A key that is never filled in.
fn fresh_key(n: usize) -> DedupKey {
    DedupKey::new(
        format!("fresh-{n:026x}"),
        Family::Music,
        "complete",
        Outcome::Success,
    )
}

/// The store's futures are ready at once.
fn claim(store: &MemoryStore, key: &DedupKey) -> Claim {
    store
        .claim(key, LEASE)
        .now_or_never()
        .expect("ready")
        .expect("claim")
}

/// A cheap deterministic shuffle of `0..n` indices (xorshift), for random order.
fn random_indices(count: usize, below: usize, seed: u64) -> Vec<usize> {
    let mut state = seed | 1;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % below as u64).unwrap_or(0)
        })
        .collect()
}

fn main() {
    let max: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(10_000_000);
    let sizes: Vec<usize> = [1, 1_000, 100_000, 1_000_000, 10_000_000]
        .into_iter()
        .filter(|&size| size <= max)
        .collect();
    // Every probe key is made before the store grows, so that the memory it takes
    // is the store's alone.
    let probes: Vec<(Vec<DedupKey>, Vec<DedupKey>)> = sizes
        .iter()
        .enumerate()
        .map(|(round, &size)| {
            let fresh = (0..PROBES).map(|n| fresh_key(round * PROBES + n)).collect();
            let seed = 0x9e37_79b9_7f4a_7c15 ^ round as u64;
            let held = random_indices(PROBES, size, seed)
                .into_iter()
                .map(key)
                .collect();
            (fresh, held)
        })
        .collect();
    let store = MemoryStore::with_max_entries(max + PROBES);
    let resident_empty = resident_bytes();
    let mut filled = 0;
    println!(
        "{:>12} {:>18} {:>18} {:>16}",
        "keys held", "new key ns/claim", "duplicate ns/claim", "memory bytes/key"
    );
    for (&size, (fresh, held)) in sizes.iter().zip(&probes) {
        while filled < size {
            let key = key(filled);
            let Claim::Acquired(token) = claim(&store, &key) else {
                panic!("a fresh key is free")
            };
            store
                .complete(&key, token, TTL)
                .now_or_never()
                .expect("ready")
                .expect("complete");
            filled += 1;
        }
        let bytes_per_key = resident_bytes().saturating_sub(resident_empty) as f64 / size as f64;
        let started = Instant::now();
        let tokens: Vec<Claim> = fresh.iter().map(|key| claim(&store, key)).collect();
        let new_ns = started.elapsed().as_nanos() as f64 / PROBES as f64;
        for (key, claimed) in fresh.iter().zip(tokens) {
            let Claim::Acquired(token) = claimed else {
                panic!("a fresh key is free")
            };
            store
                .release(key, token)
                .now_or_never()
                .expect("ready")
                .expect("release");
        }
        let started = Instant::now();
        let forgotten = held
            .iter()
            .filter(|key| black_box(claim(&store, key)) != Claim::Done)
            .count();
        let duplicate_ns = started.elapsed().as_nanos() as f64 / PROBES as f64;
        if forgotten > 0 {
            println!(
                "  {forgotten} of {PROBES} held keys were forgotten (evicted before the bound)"
            );
        }
        println!(
            "{size:>12} {new_ns:>18.0} {duplicate_ns:>18.0} {:>16}",
            if size >= 100_000 {
                format!("{bytes_per_key:.1}")
            } else {
                "-".to_owned()
            }
        );
    }
    println!(
        "evicted: {} (the store's bound is {} keys)",
        store.evicted(),
        store.max_entries()
    );
}
