#!/bin/sh
# The loopback load run of benches/loopback: builds it in release (the bench profile),
# then runs the server pinned to CPU 0 and the load pinned to CPU 1 with `taskset`.
# Options: --rounds N (5), --seconds S per phase (1), --connections C (16),
# --warm-up S (a quarter of a phase),
# --only bare|naive-first|crate-first|naive-duplicate|crate-duplicate.
set -eu
cd "$(dirname "$0")/.."
exec cargo bench --bench loopback -- "$@"
