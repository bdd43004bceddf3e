#!/usr/bin/env bash
# Rewrites the README's IAM policy blocks (CI, operator, reaper) with `deploy policy`'s output
# for the reference stack. They are never edited by hand: tests/policy.rs fails when they
# differ from the command's output.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/deploy/target}"
cargo build --quiet
DEPLOY="$CARGO_TARGET_DIR/debug/deploy"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for role in ci operator reaper; do
  "$DEPLOY" policy --role "$role" >"$tmp/$role.json" 2>/dev/null
done
python3 - "$tmp" <<'PY'
import sys
tmp = sys.argv[1]
text = open("README.md").read()
for role, heading in [("ci", "### Read-only policy for CI"),
                      ("operator", "### Policy for an operator"),
                      ("reaper", "### Policy for reaping")]:
    head, sep, rest = text.partition(heading)
    if not sep:
        sys.exit(f"README.md has no `{heading}` section")
    before, fence, after = rest.partition("```json\n")
    _, close, tail = after.partition("```")
    text = head + sep + before + fence + open(f"{tmp}/{role}.json").read() + close + tail
open("README.md", "w").write(text)
PY
echo "README.md: policies regenerated"
