#!/usr/bin/env bash
# `make test`: every test. Unit tests, integration tests against SQLite and
# a throwaway PostgreSQL cluster (billing tests start their own localstripe
# each, and the PostgreSQL restart test a cluster of its own on a port from
# 56000 to 56099), then browser tests against the release build seeded
# with the demo data and billing against a localstripe of its own.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh test

run_dir=$(mktemp -d /tmp/casola-test.XXXXXX)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
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

echo "==> browser tests"
port=${CASOLA_E2E_PORT:-3100}
export CASOLA_ENV=development LEPTOS_ENV=PROD LEPTOS_OUTPUT_NAME=casola LEPTOS_SITE_ROOT=target/site
export LEPTOS_SITE_ADDR=127.0.0.1:$port
export DATABASE_URL="sqlite://$run_dir/e2e.db?mode=rwc"
target/release/casola seed-demo
CASOLA_STRIPE_PORT=${CASOLA_E2E_STRIPE_PORT:-8421}
source scripts/stand-in.sh "$run_dir/localstripe"
target/release/casola seed-billing-demo
target/release/casola >"$run_dir/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
mkdir -p end2end/screenshots
(cd end2end && CASOLA_E2E_URL="http://127.0.0.1:$port" npx playwright test) || {
  echo "--- server log ---"
  tail -n 50 "$run_dir/server.log"
  exit 1
}
