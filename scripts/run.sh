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

stand_in_note="Billing talks to Stripe at ${STRIPE_API_BASE:-https://api.stripe.com/}."
if [ -z "${STRIPE_SECRET_KEY:-}" ]; then
  source scripts/stand-in.sh .run/localstripe
  target/release/casola seed-billing-demo
  stand_in_note="Billing runs against localstripe, an offline Stripe stand-in on
$STRIPE_API_BASE: no real Stripe account, no real charges. Set
STRIPE_SECRET_KEY (see .env.example) to use Stripe itself."
fi

cat <<TEXT

Casola Billing & Usage is starting on http://$LEPTOS_SITE_ADDR
Demo sign-ins (password: casola-demo):
  owner@example.com   owner of Demo GPU Lab and of Empty Research Lab
  admin@example.com   admin of Demo GPU Lab
  member@example.com  member of Demo GPU Lab
$stand_in_note
Press Ctrl-C to stop.

TEXT
exec target/release/casola
