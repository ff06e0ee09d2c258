#!/usr/bin/env bash
# Every SPEC §7 benchmark, release build, on SQLite and then PostgreSQL; each prints its figure
# next to a baseline measured in the same run. Figures and the machine: docs/PERFORMANCE.md.
#   scripts/bench.sh                  # both backends (PostgreSQL at BENCH_POSTGRES_URL)
#   scripts/bench.sh --sqlite-only
# Takes about 20 minutes on 2 cores (seeding 5M chained audit events twice is most of it).
set -euo pipefail
cd "$(dirname "$0")/.."
pg="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
backends=("")
[[ "${1:-}" == "--sqlite-only" ]] || backends+=("--postgres $pg")
cargo build --release -p bench -p server -p mobile-api
b=./target/release/bench
echo "## help page"; $b help-page --requests 10000 --connections 16 --rounds 5
echo "## labels"; $b labels --count 1000
for db in "${backends[@]}"; do
    echo "## ${db:-sqlite}"
    # shellcheck disable=SC2086 # $db is empty or two words on purpose
    {
        $b checkout --count 2000 --clients 64 $db
        $b dashboard --devices 100000 --loans 1000000 --events 5000000 $db
        $b audit --events 5000000 $db
        $b memory --requests 20000 $db
    }
done
