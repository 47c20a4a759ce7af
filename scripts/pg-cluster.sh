#!/usr/bin/env bash
# Manages a throwaway PostgreSQL cluster on 127.0.0.1 for the tests.
#   scripts/pg-cluster.sh start   prints the admin URL of the new cluster
#   scripts/pg-cluster.sh stop    stops it and deletes its files
#   scripts/pg-cluster.sh pause   stops it and keeps its files (fast
#                                 shutdown: open connections are cut)
#   scripts/pg-cluster.sh resume  starts a paused cluster again
# PostgreSQL refuses to run as root, so as root the cluster runs as the
# `postgres` user that Debian's package creates.
set -euo pipefail

action=${1:?usage: pg-cluster.sh start|stop|pause|resume}
dir=${CASOLA_PG_DIR:-/tmp/casola-test-pg}
port=${CASOLA_PG_PORT:-55432}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ]; then
  echo "PostgreSQL is not installed: run scripts/setup.sh test" >&2
  exit 1
fi

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start_server() {
  # fsync off: the cluster is thrown away after the run, so speed wins.
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=300" start >/dev/null
}

case "$action" in
  start)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    as_owner "$bin/initdb" -D "$dir/data" -U casola --auth=trust -E UTF8 >"$dir/initdb.log"
    start_server
    echo "postgres://casola@127.0.0.1:$port/postgres"
    ;;
  pause)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  resume)
    start_server
    ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "unknown action \"$action\": use start, stop, pause or resume" >&2
    exit 2
    ;;
esac
