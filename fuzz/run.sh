#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), one after another (one core),
# starting from a seed corpus made of tests/fixtures, and prints the executions per
# target. Crashes land in fuzz/artifacts/<target>/; logs in fuzz/logs/<target>.log.
#
#   fuzz/run.sh 600            # ten minutes per target
#   TARGETS="service" fuzz/run.sh 60
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
targets="${TARGETS:-envelope envelope_differential family_payload signature_headers service}"
fixtures=../tests/fixtures

seed() {
    local target="$1" dir="corpus/$1"
    mkdir -p "$dir"
    local n=0
    while IFS= read -r -d '' file; do
        n=$((n + 1))
        case "$target" in
            envelope | envelope_differential) cp "$file" "$dir/fixture-$n" ;;
            # The first byte picks the family: its index in `Family::ALL`.
            family_payload)
                local index
                case "$file" in
                    */music/*) index=0 ;; */lyrics/*) index=1 ;; */wav/*) index=2 ;;
                    */separation/*) index=3 ;; */midi/*) index=4 ;; */video/*) index=5 ;;
                    */cover_images/*) index=6 ;; */voice/*) index=7 ;; *) continue ;;
                esac
                { printf "\\x$(printf %02x "$index")"; cat "$file"; } >"$dir/fixture-$n" ;;
            # flags 0x27: POST, JSON, signed, Content-Length; skew 0.
            service) { printf '\x27\x00'; cat "$file"; } >"$dir/fixture-$n" ;;
            signature_headers) ;;
        esac
    done < <(find "$fixtures" -name '*.json' -print0 | sort -z)
    if [ "$target" = signature_headers ]; then
        # The first vector of signature_vectors.json, as task id, timestamp, signature.
        local task=ee9c2715375b7837f8bb51d641ff5863 ts=1769670760
        local sig=xG6/yOyrMyJtUdc1yjmHpKLHSHF3MpzOPa6uxSj3qb4=
        { printf "\\x$(printf %02x ${#task})\\x$(printf %02x ${#ts})"; printf '%s%s%s' "$task" "$ts" "$sig"; } >"$dir/vector-1"
    fi
}

mkdir -p logs
# Safe Rust (the crate forbids `unsafe`): no sanitizer, for speed.
cargo +nightly fuzz build --release --sanitizer none >/dev/null
printf '%-20s %15s %10s %s\n' target executions exec/s result
total=0
for target in $targets; do
    seed "$target"
    mkdir -p "artifacts/$target"
    status=ok
    cargo +nightly fuzz run --release --sanitizer none "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 -max_len=70000 \
        -rss_limit_mb=2048 >"logs/$target.log" 2>&1 || status="CRASH (see logs/$target.log)"
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$target.log" | grep -o '[0-9]*$' | tail -1)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "logs/$target.log" | grep -o '[0-9]*$' | tail -1)
    runs=${runs:-0}
    total=$((total + runs))
    printf '%-20s %15s %10s %s\n' "$target" "$runs" "${rate:-?}" "$status"
done
printf '%-20s %15s\n' total "$total"
