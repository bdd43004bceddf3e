#!/usr/bin/env bash
# Rewrites the README's generated blocks: the IAM policy blocks (CI, operator, reaper) with
# `deploy policy`'s output for the reference stack, and the lint rule table with `deploy lint
# --list-rules`. They are never edited by hand: tests/policy.rs and the lint unit tests fail
# when they differ from the commands' output.
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
"$DEPLOY" lint --list-rules >"$tmp/lint-rules.md"
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
begin, end = "<!-- lint-rules:begin -->\n", "<!-- lint-rules:end -->"
head, sep, rest = text.partition(begin)
_, close, tail = rest.partition(end)
if not sep or not close:
    sys.exit("README.md has no lint-rules markers")
text = head + sep + open(f"{tmp}/lint-rules.md").read() + close + tail
open("README.md", "w").write(text)
PY
echo "README.md: policies and lint rules regenerated"
