#!/usr/bin/env bash
# Schemathesis (pinned, PyPI) against both services' OpenAPI documents, on SQLite and PostgreSQL,
# with the admin, nurse and auditor tokens for `server` and anonymously for `mobile-api`.
# Every check and every phase (examples, coverage, fuzzing, stateful) runs with a bounded number of
# examples; any failure fails the run. The only exceptions are in {server,mobile-api}/schemathesis.toml,
# each with its reason. Needs the debug binaries (`cargo build -p server -p mobile-api`) and, for PostgreSQL,
# LENDING_TEST_PG_URL (a user that may CREATE DATABASE and CREATE ROLE).
#
#   bash scripts/schemathesis.sh [sqlite|postgres]...     (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
version=4.32.5
venv=${SCHEMATHESIS_VENV:-$root/target/schemathesis-venv}
examples=${SCHEMATHESIS_EXAMPLES:-10}
bin=${CARGO_TARGET_DIR:-$root/target}/debug

if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$version"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "schemathesis==$version"
fi
for b in server mobile-api; do
    [ -x "$bin/$b" ] || { echo "FATAL: $bin/$b is missing: cargo build -p server -p mobile-api" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
pg_db=""
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "$pg_db" ]; then
        psql -q "$LENDING_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" \
            -c "DROP ROLE IF EXISTS ${pg_db}_mobile" >/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # url
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null "$1" && return 0
        sleep 0.2
    done
    echo "FATAL: $1 did not answer" >&2
    exit 1
}

# One Schemathesis run; the report names the service, role and backend.
run() { # name spec url [header]
    local name=$1 service=$2 url=$3
    shift 3
    echo "-- schemathesis: $name"
    (cd "$root" && "$venv/bin/st" --config-file "$service/schemathesis.toml" run "$service/openapi.json" --url "$url" "$@" \
        --phases examples,coverage,fuzzing,stateful \
        --max-examples "$examples" --seed 1 --workers 1 --request-timeout 10 \
        --no-color --report junit --report-dir "$root/test-artifacts/schemathesis/$name") \
        || { echo "FAILED: schemathesis ($name); see above and test-artifacts/schemathesis/$name" >&2; failed+=("$name"); }
}
failed=()

backend() { # sqlite|postgres
    local be=$1 data=$work/$1
    mkdir -p "$data" "$root/test-artifacts/schemathesis"
    export LENDING_DATA_DIR=$data
    export LENDING_SERVER_LISTEN=127.0.0.1:18180 LENDING_MOBILE_LISTEN=127.0.0.1:18181
    export LENDING_PUBLIC_BASE_URL=http://127.0.0.1:18181 LENDING_STAFF_BASE_URL=http://127.0.0.1:18180
    unset LENDING_DATABASE_URL LENDING_MOBILE_DATABASE_URL LENDING_MOBILE_DB_ROLE LENDING_MOBILE_DB_PASSWORD
    if [ "$be" = postgres ]; then
        : "${LENDING_TEST_PG_URL:?LENDING_TEST_PG_URL is required for the PostgreSQL run}"
        pg_db=st_$$
        psql -q "$LENDING_TEST_PG_URL" -c "CREATE DATABASE $pg_db"
        local base=${LENDING_TEST_PG_URL%/*}
        export LENDING_DATABASE_URL=$base/$pg_db
        export LENDING_MOBILE_DB_ROLE=${pg_db}_mobile LENDING_MOBILE_DB_PASSWORD=st-$$
        local hostpart=${base#postgres://}
        hostpart=${hostpart#*@}
        export LENDING_MOBILE_DATABASE_URL=postgres://${pg_db}_mobile:st-$$@$hostpart/$pg_db
    fi
    "$bin/server" migrate >/dev/null
    "$bin/server" demo >/dev/null
    local admin nurse auditor
    admin=$("$bin/server" token create --login mori.admin --name schemathesis | tail -n 1)
    nurse=$("$bin/server" token create --login sato.nurse --name schemathesis | tail -n 1)
    auditor=$("$bin/server" token create --login inoue.audit --name schemathesis | tail -n 1)
    "$bin/server" serve >"$root/test-artifacts/schemathesis/$be-server.log" 2>&1 &
    pids+=($!)
    "$bin/mobile-api" >"$root/test-artifacts/schemathesis/$be-mobile-api.log" 2>&1 &
    pids+=($!)
    wait_for "http://$LENDING_SERVER_LISTEN/healthz"
    wait_for "http://$LENDING_MOBILE_LISTEN/healthz"

    run "mobile-api-$be" mobile-api "http://$LENDING_MOBILE_LISTEN"
    # A token may revoke itself (POST /api/v1/tokens/{id}/revoke, with the id from /me/tokens),
    # after which every request is rightly 401: that operation runs last, on its own.
    local role token
    for role in auditor nurse admin; do
        token=${!role}
        run "server-$role-$be" server "http://$LENDING_SERVER_LISTEN" \
            -H "Authorization: Bearer $token" --exclude-path-regex '^/api/v1/tokens/\{id\}/revoke$'
        run "server-$role-revoke-$be" server "http://$LENDING_SERVER_LISTEN" \
            -H "Authorization: Bearer $token" --include-path-regex '^/api/v1/tokens/\{id\}/revoke$'
    done

    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
    if [ -n "$pg_db" ]; then
        psql -q "$LENDING_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" -c "DROP ROLE IF EXISTS ${pg_db}_mobile" >/dev/null
        pg_db=""
    fi
}

backends=("$@")
[ "${#backends[@]}" -gt 0 ] || backends=(sqlite postgres)
for be in "${backends[@]}"; do backend "$be"; done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "FATAL: schemathesis found failures in: ${failed[*]}" >&2
    exit 1
fi
echo "schemathesis: no failures outside the allow-lists (${backends[*]})"
