#!/usr/bin/env bash
# Quickstart on a fresh machine, no AWS account needed: install the tools, build `deploy`, start
# a local AWS (moto server) that has only the pre-existing network (showcase VPC, subnets,
# backend ALB: a clean account otherwise), then plan, apply, re-plan (must be `No changes.`)
# and render the reference stack.
#
#   bash scripts/quickstart.sh            # moto is stopped at the end
#   KEEP_MOTO=1 bash scripts/quickstart.sh  # leave moto running to keep experimenting
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
STACK=stacks/monitoring.yaml
REGION=us-west-2
VENV="${DEPLOY_VENV:-$HOME/.cache/deploy/venv}"
WORK="$ROOT/out/quickstart"

step() { printf '\n==> %s\n' "$*"; }

step "setup (tools, moto)"
bash scripts/setup.sh

step "build deploy"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/deploy/target}"
cargo build
DEPLOY="$CARGO_TARGET_DIR/debug/deploy"
[ -x "$DEPLOY" ] || { echo "quickstart: no binary at $DEPLOY" >&2; exit 1; }

step "start moto server (the local AWS)"
mkdir -p "$WORK"
PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ENDPOINT="http://127.0.0.1:$PORT"
# moto runs no task: MOTO_ECS_SERVICE_RUNNING is the running count it reports, so the
# services reach their desired count (1) and apply's rollout wait completes.
MOTO_ECS_SERVICE_RUNNING=1 MOTO_IAM_LOAD_MANAGED_POLICIES=true "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" \
  >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
cleanup() {
  if [ "${KEEP_MOTO:-0}" = 1 ]; then
    echo "quickstart: moto keeps running (pid $MOTO_PID) at $ENDPOINT; stop it with: kill $MOTO_PID"
  else
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
"$VENV/bin/python" - "$ENDPOINT" <<'PY'
import sys, time, urllib.request
url = sys.argv[1] + "/moto-api/"
deadline = time.time() + 30
while True:
    try:
        urllib.request.urlopen(url, timeout=2).read()
        break
    except OSError:
        if time.time() > deadline:
            sys.exit(f"quickstart: moto did not answer {url} within 30 s (see out/quickstart/moto.log)")
        time.sleep(0.1)
PY
echo "moto listening at $ENDPOINT (pid $MOTO_PID, log $WORK/moto.log)"

step "seed the pre-existing network (VPC showcase, subnets, backend ALB)"
"$VENV/bin/python" tests/fixtures/seed.py --endpoint "$ENDPOINT" --region "$REGION" >"$WORK/seed.json"
cat "$WORK/seed.json"

# deploy talks to moto with fake credentials; nothing from a real AWS profile may leak in.
unset AWS_PROFILE AWS_REGION AWS_DEFAULT_REGION AWS_SESSION_TOKEN AWS_CONFIG_FILE \
  AWS_SHARED_CREDENTIALS_FILE
export AWS_ENDPOINT_URL="$ENDPOINT"
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_EC2_METADATA_DISABLED=true

run() {
  printf '\n$ deploy %s\n' "$*"
  "$DEPLOY" "$@"
}

step "plan (everything is new)"
run plan -f "$STACK"

step "apply"
run apply -f "$STACK" --auto-approve

step "plan again (must be: No changes.)"
printf '\n$ deploy plan -f %s\n' "$STACK"
"$DEPLOY" plan -f "$STACK" | tee "$WORK/replan.txt"
if ! grep -q "No changes\." "$WORK/replan.txt"; then
  echo "quickstart: the second plan is not 'No changes.': apply did not converge" >&2
  exit 1
fi

step "a threshold change is a reload, not a restart (plan of vars.alerts.error_ratio 0.05 -> 0.02)"
# Rules, configs and dashboards travel through the stack's config bucket: the plan shows each
# changed file as `~ file … (reload, no restart)` and no new task definition revision. (No
# task runs a sidecar in moto, so this stops at the plan; tests/config_reload.rs applies it
# with the sidecar script and a real Prometheus.)
sed 's/error_ratio: 0.05/error_ratio: 0.02/' "$STACK" > "$WORK/threshold.yaml"
printf '\n$ deploy plan -f %s   # error_ratio 0.02\n' "$WORK/threshold.yaml"
"$DEPLOY" plan -f "$WORK/threshold.yaml" | tee "$WORK/threshold-plan.txt"
if ! grep -q "(reload, no restart)" "$WORK/threshold-plan.txt" ||
  grep -q "task_definition\." "$WORK/threshold-plan.txt"; then
  echo "quickstart: a threshold change should plan a reload and no new revision" >&2
  exit 1
fi

step "validate (the task definitions' sizes: dashboards and rules no longer travel in them)"
run validate -f "$STACK"

step "render"
rm -rf out/rendered
run render -f "$STACK" --out out/rendered
ls -R out/rendered
found=$(find out/rendered -type f -name prometheus.yml)
if [ -n "$found" ]; then
  echo
  echo "rendered prometheus.yml:"
  printf '  %s\n' $found
else
  echo "quickstart: no prometheus.yml under out/rendered" >&2
  exit 1
fi

step "done"
echo "The stack is applied to the local AWS at $ENDPOINT."
if [ "${KEEP_MOTO:-0}" = 1 ]; then
  echo "To keep going against it:"
  echo "  export AWS_ENDPOINT_URL=$ENDPOINT AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing"
  echo "  $DEPLOY plan -f $STACK"
fi
