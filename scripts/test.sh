#!/usr/bin/env bash
# `make test`: every test. Unit tests, integration tests against SQLite and
# a throwaway PostgreSQL cluster (billing tests start their own localstripe
# each, and the PostgreSQL restart test a cluster of its own on a port from
# 56000 to 56099), then browser tests against the release build seeded
# with the demo data and billing against a localstripe of its own. Last,
# the tests tagged @spa run against the static single-page app on another
# origin, which calls a second server with a fresh database and stand-in.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh test

run_dir=$(mktemp -d /tmp/casola-test.XXXXXX)
server_pid=""
spa_server_pid=""
spa_static_pid=""
cleanup() {
  for pid in "$server_pid" "$spa_server_pid" "$spa_static_pid"; do
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  done
  scripts/pg-cluster.sh stop || true
  rm -rf "$run_dir"
}
trap cleanup EXIT

echo "==> unit tests"
cargo test --locked -p app --features ssr
cargo test --locked -p parsers

echo "==> fuzzing the ingestion and Stripe-Signature parsers"
scripts/fuzz.sh "${CASOLA_FUZZ_SECONDS:-30}"

echo "==> starting PostgreSQL on 127.0.0.1"
CASOLA_TEST_POSTGRES_URL=$(scripts/pg-cluster.sh start)
export CASOLA_TEST_POSTGRES_URL

echo "==> integration tests (SQLite and PostgreSQL)"
cargo test --locked -p server

echo "==> building the release app"
cargo leptos build --release

# Waits up to 10 s for the URL $1 to respond.
wait_for() {
  for _ in $(seq 1 100); do
    curl -fsS "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "error: $1 did not respond within 10 s" >&2
  return 1
}

# Starts the release server on 127.0.0.1:$1 with a fresh database seeded
# with the demo data and a localstripe of its own on port $2. Its database,
# stand-in state and log are named $3 in $run_dir. Sets started_pid.
start_demo_server() {
  local port=$1 stripe_port=$2 name=$3
  export LEPTOS_SITE_ADDR=127.0.0.1:$port
  export DATABASE_URL="sqlite://$run_dir/$name.db?mode=rwc"
  target/release/casola seed-demo
  CASOLA_STRIPE_PORT=$stripe_port
  source scripts/stand-in.sh "$run_dir/localstripe-$name"
  target/release/casola seed-billing-demo
  target/release/casola >"$run_dir/$name.log" 2>&1 &
  started_pid=$!
  wait_for "http://127.0.0.1:$port/healthz"
}

# Runs Playwright with the arguments after $1, and on failure shows the end
# of the server log $1.
run_playwright() {
  local log=$1
  shift
  (cd end2end && npx playwright test "$@") || {
    echo "--- server log ---"
    tail -n 50 "$log"
    exit 1
  }
}

echo "==> browser tests"
port=${CASOLA_E2E_PORT:-3100}
export CASOLA_ENV=development LEPTOS_ENV=PROD LEPTOS_OUTPUT_NAME=casola LEPTOS_SITE_ROOT=target/site
start_demo_server "$port" "${CASOLA_E2E_STRIPE_PORT:-8421}" e2e
server_pid=$started_pid
mkdir -p end2end/screenshots
CASOLA_E2E_URL="http://127.0.0.1:$port" run_playwright "$run_dir/e2e.log" --project=hydrated --project=no-js

echo "==> building the static single-page app"
scripts/spa.sh

echo "==> browser tests against the static app"
# The static app on one port of 127.0.0.1 calls a second server on another:
# another origin but the same site, so the SameSite=Lax session cookie is
# sent. The second server has a fresh database and stand-in, because the
# billing tests change the demo organization's billing.
spa_port=${CASOLA_E2E_SPA_PORT:-3102}
spa_api_port=${CASOLA_E2E_SPA_API_PORT:-3101}
cp -r frontend/dist "$run_dir/spa"
sed -i "s|<meta name=\"casola-server-url\" content=\"\">|<meta name=\"casola-server-url\" content=\"http://127.0.0.1:$spa_api_port\">|" \
  "$run_dir/spa/index.html"
grep -q "content=\"http://127.0.0.1:$spa_api_port\"" "$run_dir/spa/index.html" || {
  echo "error: could not set the server URL in $run_dir/spa/index.html" >&2
  exit 1
}
export CASOLA_SPA_ORIGIN="http://127.0.0.1:$spa_port"
start_demo_server "$spa_api_port" "${CASOLA_E2E_SPA_STRIPE_PORT:-8422}" e2e-spa
spa_server_pid=$started_pid
.venv/bin/python scripts/spa_static_server.py --port "$spa_port" --root "$run_dir/spa" \
  >"$run_dir/spa-static.log" 2>&1 &
spa_static_pid=$!
wait_for "http://127.0.0.1:$spa_port/"
CASOLA_E2E_URL="http://127.0.0.1:$spa_port" CASOLA_E2E_API_URL="http://127.0.0.1:$spa_api_port" \
  CASOLA_E2E_SCREENSHOTS=screenshots/spa run_playwright "$run_dir/e2e-spa.log" --project=spa
