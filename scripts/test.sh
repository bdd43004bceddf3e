#!/usr/bin/env bash
# The project's one test command (the README's): make sure the tools exist, then run every
# test (unit, integration against moto, doc tests) with one `cargo test`. Exits with cargo's status.
set -euo pipefail

cd "$(dirname "$0")/.."

bash scripts/setup.sh

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/deploy/target}"
echo "test: cargo test (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
status=0
cargo test --no-fail-fast "$@" || status=$?
exit "$status"
