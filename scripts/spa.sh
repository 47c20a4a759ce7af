#!/usr/bin/env bash
# `make spa`: builds the static single-page app (release, with wasm-opt)
# into frontend/dist/. With CASOLA_SERVER_URL set (such as
# https://api.example.com), the app calls the server functions there;
# unset, it calls them on its own origin.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh spa

# Trunk finds wasm-opt from npm's binaryen here, and wasm-bindgen in
# ~/.cargo/bin; Trunk.toml forbids downloading either.
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
echo "==> building the static app into frontend/dist (release)"
trunk build --release

server_url=${CASOLA_SERVER_URL:-}
if [ -n "$server_url" ]; then
  if ! [[ "$server_url" =~ ^https?://[A-Za-z0-9.:\[\]-]+$ ]]; then
    echo "error: CASOLA_SERVER_URL \"$server_url\" is invalid: give a scheme and host with an optional port and no path, such as https://api.example.com" >&2
    exit 1
  fi
  sed -i "s|<meta name=\"casola-server-url\" content=\"\">|<meta name=\"casola-server-url\" content=\"$server_url\">|" frontend/dist/index.html
  grep -q "content=\"$server_url\"" frontend/dist/index.html || {
    echo "error: could not write CASOLA_SERVER_URL into frontend/dist/index.html" >&2
    exit 1
  }
  echo "==> the app calls the server at $server_url"
fi
