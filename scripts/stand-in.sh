#!/usr/bin/env bash
# Sourced by run.sh and test.sh when STRIPE_SECRET_KEY is unset: starts
# localstripe, the offline Stripe stand-in, on 127.0.0.1:$CASOLA_STRIPE_PORT
# (default 8420) with its state in $1, exports the STRIPE_* settings that
# point the server at it, and registers its webhooks to the server at
# $LEPTOS_SITE_ADDR. The stand-in exits when the shell that sourced this
# file (or the program it execs) exits.

stand_in_dir=$1
stand_in_port=${CASOLA_STRIPE_PORT:-8420}
mkdir -p "$stand_in_dir"
.venv/bin/python scripts/localstripe_launcher.py --port "$stand_in_port" \
  --state-dir "$stand_in_dir" --exit-with-parent >"$stand_in_dir/launcher.log" 2>&1 &
for _ in $(seq 1 100); do
  grep -q '^listening on' "$stand_in_dir/launcher.log" && break
  sleep 0.1
done
if ! grep -q '^listening on' "$stand_in_dir/launcher.log"; then
  echo "error: localstripe did not start on 127.0.0.1:$stand_in_port (is the port taken?):" >&2
  cat "$stand_in_dir/launcher.log" >&2
  exit 1
fi

# Test-mode values: the stand-in accepts any sk_/pk_ key.
export STRIPE_SECRET_KEY=sk_test_casola_stand_in
export STRIPE_PUBLISHABLE_KEY=pk_test_casola_stand_in
export STRIPE_WEBHOOK_SECRET=whsec_casola_stand_in
export STRIPE_PRICE_ID=casola_pro
export STRIPE_API_BASE="http://127.0.0.1:$stand_in_port/"
export STRIPE_JS_URL="http://127.0.0.1:$stand_in_port/js.stripe.com/v3/"
curl -fsS -X POST "http://127.0.0.1:$stand_in_port/_config/webhooks/casola" \
  -d "url=http://$LEPTOS_SITE_ADDR/webhooks/stripe" -d "secret=$STRIPE_WEBHOOK_SECRET" >/dev/null
