#!/usr/bin/env bash
# Runs each fuzz target in fuzz/ for $1 seconds (default 30), keeping the
# corpus in fuzz/corpus/ between runs. `make test` runs it for 30 s per
# target, `make fuzz` for longer. A crash leaves the input in
# fuzz/artifacts/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-30}
# cargo-fuzz passes nightly-only flags (-Zsanitizer=address); this
# variable lets the stable toolchain accept them.
export RUSTC_BOOTSTRAP=1

for target in job_batch stripe_signature; do
  echo "==> fuzzing $target for $seconds s"
  mkdir -p "corpus/$target"
  cargo fuzz run -O "$target" "corpus/$target" "seeds/$target" -- -max_total_time="$seconds"
done
