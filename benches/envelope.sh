#!/bin/sh
# Instructions per envelope read, counted by valgrind's callgrind, for the crate's
# hand-written pass and the serde-derived definition of the same envelope
# (`suno_callback::testing::read_envelope`), on the fixtures of the `envelope/` group of
# benches/pipeline.rs. Steady where timings on a shared machine are not.
# Needs valgrind. Usage: benches/envelope.sh
set -eu
cd "$(dirname "$0")/.."
cargo bench --bench pipeline --no-run 2>/dev/null
bin=$(ls -t target/release/deps/pipeline-* | grep -v '\.d$' | head -n 1)
out=$(mktemp -d)
printf '%-18s %10s %10s\n' body scan serde
for body in classic_2_tracks jobs_2_tracks classic_wav; do
    line=$(printf '%-18s' "$body")
    for reader in scan serde; do
        file="$out/$reader.$body"
        valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*read_envelope*' \
            --callgrind-out-file="$file" "$bin" --bench "envelope/$reader/$body\$" \
            --profile-time 1 > /dev/null 2> "$out/valgrind.log"
        # Instructions collected (only inside read_envelope) over its calls.
        per=$(awk '
            # First pass: the id callgrind gives read_envelope.
            NR == FNR { if ($0 ~ /^c?fn=\([0-9]+\) .*read_envelope/) { match($0, /\([0-9]+\)/); id = substr($0, RSTART, RLENGTH) }; next }
            /^cfn=/ { called = (substr($1, 5) == id); next }
            called && /^calls=/ { split($1, c, "="); calls += c[2] }
            { called = 0 }
            /^summary:/ { total = $2 }
            END { if (calls > 0) printf "%.0f", total / calls; else print "?" }' "$file" "$file")
        line="$line $(printf '%10s' "$per")"
    done
    echo "$line"
done
echo "callgrind files: $out"
