#!/usr/bin/env bash
# Starts the whole system on the embedded default: SQLite under ./data, mail to data/outbox,
# and the demo clinic (seeded once, only into an empty database).
#   staff service  http://127.0.0.1:8080   (LENDING_SERVER_LISTEN)
#   public service http://127.0.0.1:8081   (LENDING_MOBILE_LISTEN)
# Ctrl-C (or SIGTERM) stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --bin server --bin mobile-api
export LENDING_DATA_DIR="${LENDING_DATA_DIR:-./data}"
./target/debug/server migrate
./target/debug/server demo
./target/debug/mobile-api &
mobile=$!
./target/debug/server serve &
staff=$!
stop() { kill "$mobile" "$staff" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop INT TERM EXIT
# Runs until Ctrl-C (or until either service stops).
wait -n
