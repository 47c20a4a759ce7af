#!/usr/bin/env bash
# `make bench`: builds the release app (for the client sizes), starts a
# throwaway PostgreSQL cluster, and runs the scale benchmark on SQLite and
# PostgreSQL, which writes BENCHMARKS.md. Took 18 minutes from a fresh
# clone on 2 cores, 11 of them building. It needs about 10 GB of free disk
# for the two databases.
#   CASOLA_BENCH_JOBS=1000000 make bench    a smaller, quicker run
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh bench

work=$(mktemp -d /tmp/casola-bench.XXXXXX)
# PostgreSQL runs as its own user when this runs as root.
chmod 755 "$work"
export CASOLA_PG_DIR=$work/pg CASOLA_PG_PORT=${CASOLA_BENCH_PG_PORT:-55480}
cleanup() {
  scripts/pg-cluster.sh stop || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "==> building the release app"
cargo leptos build --release

echo "==> starting PostgreSQL on 127.0.0.1:$CASOLA_PG_PORT"
CASOLA_BENCH_POSTGRES_URL=$(scripts/pg-cluster.sh start)
export CASOLA_BENCH_POSTGRES_URL CASOLA_BENCH_DIR=$work

echo "==> benchmark"
cargo bench --locked -p server --bench scale
