#!/usr/bin/env bash
# Installs whatever is missing for `make run` (run), `make spa` (spa),
# `make test` (test) or `make bench` (bench), and does nothing for what is
# already there. Versions are pinned:
#   cargo-leptos 0.3.10 (0.3.11 needs rustc 1.96), trunk 0.21.14 for spa
#   and test (0.22 needs rustc 1.96), wasm-bindgen-cli 0.2.130
#   (must equal the wasm-bindgen crate in Cargo.lock), npm packages from the
#   lock files, Debian's postgresql and chromium, and localstripe 1.15.10
#   (the offline Stripe stand-in) from PyPI in the project's .venv.
set -euo pipefail

purpose=${1:-run}
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(cargo-leptos --version 2>/dev/null || true)" != "cargo-leptos 0.3.10" ]; then
  log "installing cargo-leptos 0.3.10 (about 12 to 20 minutes on 2 cores)"
  cargo install cargo-leptos --version 0.3.10 --locked
fi

# Without --locked: the CLI's own lock file names a crate version the
# registry no longer serves. cargo-leptos would try to download a prebuilt
# wasm-bindgen when it is missing from PATH, which fails offline.
if [ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen 0.2.130" ]; then
  log "installing wasm-bindgen-cli 0.2.130"
  cargo install wasm-bindgen-cli --version 0.2.130
fi

if [ "$purpose" = spa ] || [ "$purpose" = test ]; then
  if [ "$(trunk --version 2>/dev/null || true)" != "trunk 0.21.14" ]; then
    log "installing trunk 0.21.14 (about 7 minutes on 2 cores)"
    cargo install trunk --version 0.21.14 --locked
  fi
fi

# Runs `npm ci` in folder $1 unless its node_modules already matches its
# package-lock.json (a copy of the lock file is kept as a stamp).
npm_ci() {
  local folder=$1 stamp=$1/node_modules/.casola-lock
  if ! cmp -s "$folder/package-lock.json" "$stamp"; then
    (cd "$folder" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
    cp "$folder/package-lock.json" "$stamp"
  fi
}

# wasm-opt from npm's binaryen: Debian's binaryen 108 breaks hydration.
log "checking npm packages (wasm-opt from npm binaryen)"
npm_ci .

apt_install() {
  local missing=()
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# The Stripe stand-in, used whenever STRIPE_SECRET_KEY is unset.
if [ "$(.venv/bin/pip show localstripe 2>/dev/null | sed -n 's/^Version: //p')" != "1.15.10" ]; then
  apt_install python3-venv
  log "installing localstripe 1.15.10 into .venv"
  python3 -m venv .venv
  .venv/bin/pip install --quiet localstripe==1.15.10
fi

if [ "$purpose" = bench ]; then
  apt_install postgresql wrk curl
fi

if [ "$purpose" = test ]; then
  apt_install postgresql chromium curl
  if [ "$(cargo-fuzz --version 2>/dev/null || true)" != "cargo-fuzz 0.13.2" ]; then
    log "installing cargo-fuzz 0.13.2 (about 10 minutes on 2 cores)"
    cargo install cargo-fuzz --version 0.13.2 --locked
  fi
  # Playwright without its browser download: tests use Debian's chromium.
  npm_ci end2end
fi
