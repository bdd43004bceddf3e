#!/usr/bin/env bash
# A long run of the property-based fuzz tests (tests/fuzz.rs): mutated stack files through
# `validate`, mutated saved plans through `show` and `apply` against moto. The test suite runs
# a short seeded round of each; this runs fresh seeds until the time is up and prints the
# counts (cases, accepted, refused, and that nothing panicked or wrote to AWS).
#
#   bash scripts/fuzz.sh              # 10 minutes: 5 on stack files, 5 on saved plans
#   MINUTES=30 bash scripts/fuzz.sh
#   SEED=1000 bash scripts/fuzz.sh    # another first seed (default 15, as the suite's)
set -euo pipefail

cd "$(dirname "$0")/.."
MINUTES="${MINUTES:-10}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/deploy/target}"
export DEPLOY_FUZZ_SEED="${SEED:-15}"
# Each of the two fuzz tests gets half the time (they run one after the other).
export DEPLOY_FUZZ_SECONDS=$(( MINUTES * 60 / 2 ))

bash scripts/setup.sh >/dev/null
echo "fuzz: ${MINUTES} min, first seed ${DEPLOY_FUZZ_SEED} (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
started=$(date +%s)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --quiet --test fuzz -- --test-threads=1 --nocapture mutated_ >"$log" 2>&1 || status=$?
# (With --nocapture a test's first line follows cargo's "test NAME ... " on the same line.)
grep -E 'FUZZ|^  [a-z]+: |^ +[0-9]+  |test result|panicked|seed [0-9]+:' "$log" || true
if [ "$status" -ne 0 ]; then
  echo "fuzz: FAILED; the last lines of the run:"
  tail -n 60 "$log"
fi
echo "fuzz: done in $(( $(date +%s) - started )) s"
exit "$status"
