#!/usr/bin/env bash
# Measures what users wait for and what AWS is asked, against a local moto behind the
# recording proxy, for the reference stack (stacks/monitoring.yaml) and a generated stack of
# SCALE services (tests/fixtures/scale_stack.py: a log group, security group, task definition
# and ECS service each, the reference stack's roles):
#   - AWS API calls of a plan (empty account, applied stack: total, mutating, per action), of
#     the first apply and of a no-op apply;
#   - wall time of a plan of the applied stack at 0 ms and at LATENCY_MS per AWS call (a second
#     proxy adds it), medians of RUNS runs, and the serial round trips they imply:
#     (T(LATENCY_MS) - T(0 ms)) / LATENCY_MS, i.e. how many calls the plan waits for one after
#     another (and, steadier on a busy machine, the same from 3 × LATENCY_MS and LATENCY_MS);
#   - peak RSS of one plan of the applied stack.
# Prints figures; asserts nothing (machines are noisy; tests/budget.rs holds the call counts).
#
#   bash scripts/bench.sh                       # 5 timed plans per latency, 20 services
#   RUNS=9 LATENCY_MS=50 SCALE=20 bash scripts/bench.sh
#   DEPLOY_BIN=/path/to/deploy bash scripts/bench.sh    # measure another build
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS="${RUNS:-5}"
LATENCY_MS="${LATENCY_MS:-50}"
SCALE="${SCALE:-20}"
VENV="${DEPLOY_VENV:-$HOME/.cache/deploy/venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/deploy/target}"

bash scripts/setup.sh >/dev/null
if [ -n "${DEPLOY_BIN:-}" ]; then  # another build, e.g. of an earlier commit, to compare
  DEPLOY="$DEPLOY_BIN"
else
  cargo build --quiet
  DEPLOY="$CARGO_TARGET_DIR/debug/deploy"
fi
WORK=$(mktemp -d)
free_port() { "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

MOTO_PORT=$(free_port)
# moto runs no task: it reports MOTO_ECS_SERVICE_RUNNING tasks running, so apply's rollout wait
# completes (the reference stack's services want 1).
MOTO_ECS_SERVICE_RUNNING=1 MOTO_IAM_LOAD_MANAGED_POLICIES=true "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
start_proxy() { # NAME LATENCY: a recording proxy in front of moto; its port in $WORK/NAME.port
  "$VENV/bin/python" tests/fixtures/proxy.py --upstream "http://127.0.0.1:$MOTO_PORT" --port 0 \
    --latency-ms "$2" --log "$WORK/$1.jsonl" >"$WORK/$1.out" 2>&1 &
  echo $! >"$WORK/$1.pid"
  for _ in $(seq 300); do grep -q '^PORT ' "$WORK/$1.out" 2>/dev/null && break; sleep 0.1; done
  awk '/^PORT /{print $2; exit}' "$WORK/$1.out" >"$WORK/$1.port"
}
start_proxy fast 0
start_proxy slow "$LATENCY_MS"
start_proxy slower $((LATENCY_MS * 3))
trap 'kill $(cat "$WORK/fast.pid") $(cat "$WORK/slow.pid") $(cat "$WORK/slower.pid") $MOTO_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
FAST="http://127.0.0.1:$(cat "$WORK/fast.port")"
SLOW="http://127.0.0.1:$(cat "$WORK/slow.port")"
SLOWER="http://127.0.0.1:$(cat "$WORK/slower.port")"
until curl -sf "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null; do sleep 0.1; done
AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
  "$VENV/bin/python" tests/fixtures/seed.py --endpoint "http://127.0.0.1:$MOTO_PORT" >/dev/null 2>&1
"$VENV/bin/python" tests/fixtures/scale_stack.py "$SCALE" >"$WORK/scale.yaml"

unset AWS_PROFILE AWS_REGION AWS_DEFAULT_REGION AWS_SESSION_TOKEN AWS_ENDPOINT_URL
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true NO_COLOR=1
LOG="$WORK/fast.jsonl"

fast() { AWS_ENDPOINT_URL="$FAST" "$DEPLOY" "$@"; }
slow() { AWS_ENDPOINT_URL="$SLOW" "$DEPLOY" "$@"; }
slower() { AWS_ENDPOINT_URL="$SLOWER" "$DEPLOY" "$@"; }
calls() { # total and mutating calls in the fast proxy's log
  local total mutating
  total=$(wc -l <"$LOG")
  # The proxy marks each call a write unless tests/fixtures/aws_actions.json lists it as a read.
  mutating=$(grep -c '"write":true' "$LOG" || true)
  echo "$total calls ($mutating mutating)"
}
per_action() { # the log's calls per service:action, most first, then clear it
  "$VENV/bin/python" - "$LOG" <<'EOF'
import collections, json, sys
c = collections.Counter()
for line in open(sys.argv[1]):
    e = json.loads(line)
    c[f"{e['service']}:{e['action']}"] += 1
print("    " + ", ".join(f"{k} {n}" for k, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))))
EOF
}
clear_log() { : >"$LOG"; : >"$WORK/slow.jsonl"; : >"$WORK/slower.jsonl"; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {printf "%d ms (%d-%d ms)", a[int((NR+1)/2)], a[1], a[NR]}'; }
timed_plans() { # FILE: RUNS plans at 0 ms and at LATENCY_MS, alternating so that the load of a
  # busy machine falls on both alike; times in $WORK/t0 and $WORK/t1
  local t
  : >"$WORK/t0"; : >"$WORK/t1"; : >"$WORK/t3"
  for _ in $(seq "$RUNS"); do
    t=$(date +%s%N); fast plan -f "$1" >/dev/null; ms "$t" >>"$WORK/t0"
    t=$(date +%s%N); slow plan -f "$1" >/dev/null; ms "$t" >>"$WORK/t1"
    t=$(date +%s%N); slower plan -f "$1" >/dev/null; ms "$t" >>"$WORK/t3"
  done
}
med() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

measure() { # LABEL FILE RESOURCES
  local label=$1 file=$2 t t0 t1
  echo "== $label ($file, $3 resources)"
  clear_log; fast plan -f "$file" >/dev/null
  echo "plan, empty account:        $(calls)"
  clear_log; t=$(date +%s%N); fast apply -f "$file" --auto-approve >/dev/null 2>&1
  echo "apply, first:               $(calls), $(ms "$t") ms"
  clear_log; fast plan -f "$file" >/dev/null
  echo "plan, applied stack:        $(calls), $(awk -v n="$(wc -l <"$LOG")" -v r="$3" 'BEGIN {printf "%.2f", n / r}') per resource"
  per_action
  clear_log
  timed_plans "$file"
  t0=$(med "$WORK/t0"); t1=$(med "$WORK/t1"); t3=$(med "$WORK/t3")
  echo "  wall time at 0 ms:        median $(median <"$WORK/t0") over $RUNS runs"
  echo "  wall time at $LATENCY_MS ms:       median $(median <"$WORK/t1") over $RUNS runs"
  echo "  wall time at $((LATENCY_MS * 3)) ms:      median $(median <"$WORK/t3") over $RUNS runs"
  echo "  serial round trips:       $(awk -v a="$t0" -v b="$t1" -v l="$LATENCY_MS" 'BEGIN {printf "%.1f", (b - a) / l}') (T($LATENCY_MS ms) - T(0 ms)) / $LATENCY_MS ms"
  # At 0 ms every read of a burst reaches the emulator at once and queues there, which a
  # latency spreads out: on a busy machine T(0) is inflated. Between two latencies that
  # effect is alike, so this second estimate is steadier.
  echo "                            $(awk -v a="$t1" -v b="$t3" -v l="$((LATENCY_MS * 2))" 'BEGIN {printf "%.1f", (b - a) / l}') (T($((LATENCY_MS * 3)) ms) - T($LATENCY_MS ms)) / $((LATENCY_MS * 2)) ms"
  clear_log; t=$(date +%s%N); fast apply -f "$file" --auto-approve >/dev/null 2>&1
  echo "apply, no changes:          $(calls), $(ms "$t") ms"
  clear_log
  echo "peak memory of one plan:    $( { AWS_ENDPOINT_URL="$FAST" /usr/bin/time -f '%M' "$DEPLOY" plan -f "$file" >/dev/null; } 2>&1 | tail -1 ) KiB (max RSS)"
}

measure "reference stack" stacks/monitoring.yaml 25
# SCALE × (log group, security group, task definition, service) + 3 roles + 1 cluster
measure "$SCALE services" "$WORK/scale.yaml" $((SCALE * 4 + 4))
