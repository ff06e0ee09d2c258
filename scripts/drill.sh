#!/usr/bin/env bash
# The long form of the reliability drills (docs/operations.md, "Drills"), against the real
# `server` binary on 127.0.0.1. CI runs the short form as part of `cargo test --workspace`.
#
#   scripts/drill.sh crash [--rounds N] [--postgres] [--seed S]   kill -9 during check-outs and returns (default 20 rounds)
#   scripts/drill.sh double-booking [--checkouts N] [--postgres]  N simultaneous check-outs of one device (default 500)
#
# SQLite by default; --postgres uses PostgreSQL at LENDING_TEST_PG_URL
# (default postgres://postgres@127.0.0.1:5432/test; each run creates and drops its own database).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 1 ] || usage
drill=$1
shift
backend=sqlite
rounds=20
checkouts=500
seed=
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=${2:?--rounds needs a number}; shift 2 ;;
        --checkouts) checkouts=${2:?--checkouts needs a number}; shift 2 ;;
        --seed) seed=${2:?--seed needs a number}; shift 2 ;;
        --postgres) backend=postgres; shift ;;
        --sqlite) backend=sqlite; shift ;;
        -h|--help) usage ;;
        *) echo "unknown option: $1" >&2; usage ;;
    esac
done

case "$drill" in
    crash) test=drills::crash_drill_kill_9_during_check_outs_and_returns ;;
    double-booking) test=drills::double_booking_drill_simultaneous_check_outs_of_one_device ;;
    *) echo "unknown drill: $drill (crash | double-booking)" >&2; usage ;;
esac

export DRILL_ROUNDS="$rounds" DRILL_CHECKOUTS="$checkouts"
[ -z "$seed" ] || export DRILL_SEED="$seed"
started=$(date +%s)
cargo test -p server --test it "$test::$backend" -- --exact --nocapture
echo "drill $drill ($backend) passed in $(( $(date +%s) - started )) s (including the build)"
