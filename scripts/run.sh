#!/usr/bin/env bash
# `make run`: builds the release app, migrates and seeds an empty database,
# and serves on http://127.0.0.1:3000.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh run
echo "==> building (release)"
cargo leptos build --release

export CASOLA_ENV=development
export LEPTOS_ENV=PROD
export LEPTOS_OUTPUT_NAME=casola
export LEPTOS_SITE_ROOT=target/site
export LEPTOS_SITE_ADDR=${LEPTOS_SITE_ADDR:-127.0.0.1:3000}

target/release/casola seed-demo

cat <<TEXT

Casola Billing & Usage is starting on http://$LEPTOS_SITE_ADDR
Demo sign-ins (password: casola-demo):
  owner@example.com   owner of Demo GPU Lab and of Empty Research Lab
  admin@example.com   admin of Demo GPU Lab
  member@example.com  member of Demo GPU Lab
Press Ctrl-C to stop.

TEXT
exec target/release/casola
