#!/bin/sh
# Where the server's CPU goes natively, for one phase of benches/loopback: the server
# alone under `perf record` (CPU 0), the load of that phase (CPU 1), then a flat
# profile grouped into parts (kernel, framework, JSON, allocation, ...) as shares of
# the samples. Multiply a share by the phase's server µs/request from
# benches/loopback.sh to get µs per request.
# Needs Linux perf (perf_event_paranoid <= 2 lets it profile its own processes).
# Usage: benches/perf.sh [PHASE (crate-first)] [SECONDS (4)]
set -eu
cd "$(dirname "$0")/.."
phase="${1:-crate-first}"
seconds="${2:-4}"
cargo bench --bench loopback --no-run 2>/dev/null
bin=$(ls -t target/release/deps/loopback-* | grep -v '\.d$' | head -n 1)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkfifo "$out/stdin"
taskset -c 0 perf record -q -F 2999 -o "$out/perf.data" "$bin" serve \
    < "$out/stdin" > "$out/addr" 2> "$out/perf.log" &
recorder=$!
exec 3> "$out/stdin"
while [ ! -s "$out/addr" ]; do
    if ! kill -0 "$recorder" 2> /dev/null; then
        echo "the server under perf did not start:" >&2
        cat "$out/perf.log" >&2
        exit 1
    fi
    sleep 0.2
done
addr=$(head -n 1 "$out/addr")
# The load's server-CPU column needs the server's pid; perf stands between them, so
# a placeholder pid is given and that column is not used.
taskset -c 1 "$bin" load "$addr" 1 --only "$phase" --rounds 1 --seconds "$seconds" > /dev/null
exec 3>&-
wait "$recorder" || true
echo "$phase, share of the server's samples:"
perf report -i "$out/perf.data" --no-children --sort dso,symbol --stdio 2> /dev/null |
    awk '
    /%/ && $1 ~ /%$/ {
        share = $1 + 0
        line = $0
        part = "the rest (handler code, pipeline, answer)"
        if (line ~ /\[kernel/) part = "kernel"
        else if (line ~ /vdso|Timespec|Instant/) part = "clock reads"
        else if (line ~ /malloc|_int_free|cfree|__libc_free|tcache|unlink_chunk|consolidate|realloc|__rdl_|__rust_alloc|__rust_dealloc/) part = "allocation and freeing"
        else if (line ~ /memmove|memcpy|memset/) part = "memcpy"
        else if (line ~ /event::scan|Track::scan|MusicPayload::scan|data_member|key_index|AppendText/) part = "JSON: the crate'"'"'s scan"
        else if (line ~ /serde_json|serde_core|serde::|btree/) part = "JSON: serde_json (and its maps)"
        else if (line ~ /sip::Hasher|hash_one|store::memory|hashbrown/) part = "dedup store and hash maps"
        else if (line ~ /sha2|hmac|digest|Hmac/) part = "HMAC (SHA-256)"
        else if (line ~ /hyper|http::|httparse|axum|tokio|tower|atomic_waker|mio|bytes::/) part = "hyper, axum, tokio, bytes"
        total[part] += share
    }
    END {
        for (part in total) printf "  %-44s %5.1f %%\n", part, total[part]
    }' | sort -k1,1
