#!/usr/bin/env bash
# Measures what users wait for and what AWS is asked: AWS API calls and wall time of
# `deploy plan` (empty account and applied stack) and of a no-op `deploy apply`, against a
# local moto behind the recording proxy. Prints figures; asserts nothing (machines are noisy).
#
#   bash scripts/bench.sh            # 10 timed plans
#   RUNS=30 bash scripts/bench.sh
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS="${RUNS:-10}"
STACK=stacks/monitoring.yaml
VENV="${DEPLOY_VENV:-$HOME/.cache/deploy/venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/deploy/target}"

bash scripts/setup.sh >/dev/null
cargo build --quiet
DEPLOY="$CARGO_TARGET_DIR/debug/deploy"
WORK=$(mktemp -d)
free_port() { "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

MOTO_PORT=$(free_port)
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
"$VENV/bin/python" tests/fixtures/proxy.py --upstream "http://127.0.0.1:$MOTO_PORT" --port 0 \
  --log "$WORK/calls.jsonl" >"$WORK/proxy.out" 2>&1 &
PROXY_PID=$!
trap 'kill $PROXY_PID $MOTO_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 300); do grep -q '^PORT ' "$WORK/proxy.out" 2>/dev/null && break; sleep 0.1; done
PROXY_PORT=$(awk '/^PORT /{print $2; exit}' "$WORK/proxy.out")
until curl -sf "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null; do sleep 0.1; done
AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
  "$VENV/bin/python" tests/fixtures/seed.py --endpoint "http://127.0.0.1:$MOTO_PORT" >/dev/null 2>&1

unset AWS_PROFILE AWS_REGION AWS_DEFAULT_REGION AWS_SESSION_TOKEN
export AWS_ENDPOINT_URL="http://127.0.0.1:$PROXY_PORT" AWS_ACCESS_KEY_ID=testing \
  AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true NO_COLOR=1

calls() { # total and mutating calls in the proxy log, then clear it
  local total mutating
  total=$(wc -l <"$WORK/calls.jsonl")
  # The proxy marks each call a write unless tests/fixtures/aws_actions.json lists it as a read.
  mutating=$(grep -c '"write":true' "$WORK/calls.jsonl" || true)
  : >"$WORK/calls.jsonl"
  echo "$total calls ($mutating mutating)"
}
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
timed_plans() { # RUNS plans; prints min / median / max milliseconds
  local times=() t
  for _ in $(seq "$RUNS"); do
    t=$(date +%s%N); "$DEPLOY" plan -f "$STACK" >/dev/null; times+=("$(ms "$t")")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "min %d ms, median %d ms, max %d ms over %d runs", a[1], a[int((NR+1)/2)], a[NR], NR}'
}

: >"$WORK/calls.jsonl"
"$DEPLOY" plan -f "$STACK" >/dev/null
echo "plan, empty account:        $(calls)"
timed_plans >"$WORK/t1"; : >"$WORK/calls.jsonl"
echo "  wall time:                $(cat "$WORK/t1")"
t=$(date +%s%N); "$DEPLOY" apply -f "$STACK" --auto-approve >/dev/null 2>&1
echo "apply, first:               $(calls), $(ms "$t") ms"
"$DEPLOY" plan -f "$STACK" >/dev/null
echo "plan, applied stack:        $(calls)"
timed_plans >"$WORK/t2"; : >"$WORK/calls.jsonl"
echo "  wall time:                $(cat "$WORK/t2")"
t=$(date +%s%N); "$DEPLOY" apply -f "$STACK" --auto-approve >/dev/null 2>&1
echo "apply, no changes:          $(calls), $(ms "$t") ms"
echo "peak memory of one plan:    $( { /usr/bin/time -f '%M' "$DEPLOY" plan -f "$STACK" >/dev/null; } 2>&1 | tail -1 ) KiB"
