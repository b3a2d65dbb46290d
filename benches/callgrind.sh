#!/bin/sh
# Instructions per request, counted by valgrind's callgrind: steady where timings on a
# shared machine are not. For each phase of benches/loopback: the server alone under
# callgrind (CPU 0), a warm-up load, counters zeroed, a measured load (CPU 1), counters
# dumped; prints the server's instructions per request (hyper, axum and the route), then
# the same for the route alone, in process (`loopback profile`, no network).
# Needs valgrind. Usage: benches/callgrind.sh [REQUESTS_IN_PROCESS (5000)]
set -eu
cd "$(dirname "$0")/.."
count="${1:-5000}"
cargo bench --bench loopback --no-run 2>/dev/null
bin=$(ls -t target/release/deps/loopback-* | grep -v '\.d$' | head -n 1)
out=$(mktemp -d)
phases="bare naive-first crate-first naive-duplicate crate-duplicate"

echo "server, over loopback HTTP (instructions per request):"
for phase in $phases; do
    mkfifo "$out/stdin"
    taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out/server.$phase" \
        "$bin" serve < "$out/stdin" > "$out/addr" 2> "$out/valgrind.log" &
    server=$!
    exec 3> "$out/stdin"
    while [ ! -s "$out/addr" ]; do sleep 0.2; done
    addr=$(head -n 1 "$out/addr")
    taskset -c 1 "$bin" load "$addr" "$server" --only "$phase" --rounds 0 --warm-up 1 > /dev/null
    callgrind_control -z "$server" > /dev/null 2>&1
    requests=$(taskset -c 1 "$bin" load "$addr" "$server" --only "$phase" --rounds 1 \
        --seconds 3 --warm-up 0 | awk -v p="$phase" '$1 == p && $2 == 1 { print $3 }')
    callgrind_control -d "$server" > /dev/null 2>&1
    exec 3>&-
    wait "$server" || true
    total=$(cat "$out"/server.$phase.* 2> /dev/null | awk '/^summary:/ { s += $2 } END { print s }')
    awk -v p="$phase" -v t="$total" -v r="$requests" \
        'BEGIN { printf "  %-16s %9.0f  (%d requests)\n", p, t / r, r }'
    rm -f "$out/stdin" "$out/addr"
done

echo "route alone, in process (instructions per request, $count requests):"
for phase in $phases; do
    valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measured*' \
        --callgrind-out-file="$out/process.$phase" "$bin" profile "$phase" "$count" \
        2> "$out/valgrind.log"
    total=$(awk '/^summary:/ { print $2 }' "$out/process.$phase")
    awk -v p="$phase" -v t="$total" -v r="$count" 'BEGIN { printf "  %-16s %9.0f\n", p, t / r }'
done
echo "callgrind files: $out"
