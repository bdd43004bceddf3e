[#
  reloader.sh: the config sidecar of a task (POSIX sh: busybox in the tests, the AWS CLI
  image's sh in ECS). It keeps the files of the stack's config bucket on the task's shared
  volume and makes the servers reload them, so a rule, config or dashboard change needs no new
  task definition revision and no restart.

  The bucket holds each file as files/FAMILY/PATH (versioned) and one manifest object whose lines are
  `SHA256 VERSION_ID PATH`: a consistent set, fetched by the version ids it names. Every poll
  costs one HeadObject of the manifest; only a new manifest version costs more.

  Environment (set in the task definition by deploy; the secrets by ECS from Secrets Manager):
    CONFIG_BUCKET        the stack's config bucket
    CONFIG_MANIFEST      key of the manifest object (manifest/FAMILY)
    CONFIG_PREFIX        key prefix of the files (files/FAMILY/): PATH is CONFIG_PREFIXPATH
    CONFIG_DIR           the shared volume(s): file PATH is written to CONFIG_DIR/PATH
    POLL_SECONDS         seconds between polls (default 30)
    RELOAD_TARGETS       space-separated NAME=URL: each server reloaded by POST URL/-/reload
                         after a change; its NAME_config_last_reload_successful metric is read
                         back (prometheus, alertmanager). Empty: nothing to call (Grafana reads
                         its dashboards itself, every updateIntervalSeconds).
    RELOAD_USER, RELOAD_PASSWORD, RELOAD_CA_CERT   basic auth and the CA (PEM) for those calls
    CONFIG_OWNERS        space-separated CONTAINER=UID[:GID]: after the first fetch each
                         container's directory is handed to its server's user (Fargate
                         creates the volumes owned by root; the servers write their own
                         files with secrets beside the fetched ones)
    TASK_ID              optional: else read from the ECS task metadata endpoint
  Status: after each attempt, status/MANIFEST-NAME/TASK_ID.json in the bucket says which manifest
  version the task runs and whether the reload worked (deploy apply and deploy status read it).
  A server that refuses the new files keeps running on the old ones; the previous files are
  put back on the volume, so a later restart comes up on the last good set too.
#]
# Rendered by deploy for stack "[[ stack ]]", environment "[[ environment ]]".
set -u

POLL_SECONDS=${POLL_SECONDS:-30}
RELOAD_TARGETS=${RELOAD_TARGETS:-}
WORK=${TMPDIR:-/tmp}/deploy-reloader
STAGE="$CONFIG_DIR/.deploy-stage"
PREVIOUS="$CONFIG_DIR/.deploy-previous"
mkdir -p "$WORK"

log() { printf 'reloader: %s\n' "$*" >&2; }

task_id() {
  if [ -n "${TASK_ID:-}" ]; then
    printf '%s' "$TASK_ID"
  elif [ -n "${ECS_CONTAINER_METADATA_URI_V4:-}" ]; then
    curl -fsS "$ECS_CONTAINER_METADATA_URI_V4/task" |
      sed -n 's/.*"TaskARN": *"[^"]*\/\([^"\/]*\)".*/\1/p'
  else
    hostname
  fi
}
TASK=$(task_id)

# Credentials for the reload calls, kept off the command line and readable by this user only.
umask 077
if [ -n "$RELOAD_TARGETS" ]; then
  printf '%s\n' "${RELOAD_CA_CERT:-}" > "$WORK/ca.crt"
  # curl's config quotes: a generated password may hold `"` or `\`.
  printf 'user = "%s"\n' "$(printf '%s:%s' "${RELOAD_USER:-}" "${RELOAD_PASSWORD:-}" |
    sed 's/[\\"]/\\&/g')" > "$WORK/curl-auth"
fi
umask 022

# JSON string content: no quotes, backslashes or control characters survive.
json_text() { printf '%s' "$1" | tr -d '"\\' | tr '\n\r\t' '   '; }

# The manifest's current version id (one HeadObject), or nothing when it cannot be read.
manifest_version() {
  aws s3api head-object --bucket "$CONFIG_BUCKET" --key "$CONFIG_MANIFEST" \
    --query VersionId --output text 2>"$WORK/err"
}

# (Shell variables are global: the loops below use names of their own.)
# Fetch manifest version $1 and every file it names into $STAGE (a file whose hash is already
# on the volume is copied from there, not downloaded). Fails on any error or wrong hash.
stage() {
  rm -rf "$STAGE" && mkdir -p "$STAGE" || return 1
  aws s3api get-object --bucket "$CONFIG_BUCKET" --key "$CONFIG_MANIFEST" \
    --version-id "$1" "$WORK/manifest" >/dev/null 2>"$WORK/err" || return 1
  while read -r file_sum file_version path; do
    [ -n "$path" ] || continue
    mkdir -p "$STAGE/$(dirname "$path")" || return 1
    if [ -f "$CONFIG_DIR/$path" ] &&
      [ "$(sha256sum < "$CONFIG_DIR/$path" | cut -d' ' -f1)" = "$file_sum" ]; then
      cp "$CONFIG_DIR/$path" "$STAGE/$path" || return 1
    else
      aws s3api get-object --bucket "$CONFIG_BUCKET" --key "$CONFIG_PREFIX$path" \
        --version-id "$file_version" "$STAGE/$path" >/dev/null 2>"$WORK/err" || return 1
    fi
    if [ "$(sha256sum < "$STAGE/$path" | cut -d' ' -f1)" != "$file_sum" ]; then
      printf '%s%s: content does not match the manifest hash' "$CONFIG_PREFIX" "$path" > "$WORK/err"
      return 1
    fi
  done < "$WORK/manifest"
}

# The files of the last manifest loaded (kept as $WORK/loaded) saved to $PREVIOUS, then the
# staged set moved into place; files the new manifest no longer names are removed.
swap_in() {
  rm -rf "$PREVIOUS" && mkdir -p "$PREVIOUS"
  : > "$WORK/previous-list"
  if [ -f "$WORK/loaded" ]; then
    while read -r _sum _version path; do
      [ -n "$path" ] && [ -f "$CONFIG_DIR/$path" ] || continue
      mkdir -p "$PREVIOUS/$(dirname "$path")"
      cp "$CONFIG_DIR/$path" "$PREVIOUS/$path"
      printf '%s\n' "$path" >> "$WORK/previous-list"
    done < "$WORK/loaded"
  fi
  while read -r _sum _version path; do
    [ -n "$path" ] || continue
    mkdir -p "$CONFIG_DIR/$(dirname "$path")"
    mv -f "$STAGE/$path" "$CONFIG_DIR/$path.deploy-new" &&
      mv -f "$CONFIG_DIR/$path.deploy-new" "$CONFIG_DIR/$path"
  done < "$WORK/manifest"
  cut -d' ' -f3- "$WORK/manifest" > "$WORK/manifest-paths"
  while read -r path; do
    grep -qxF "$path" "$WORK/manifest-paths" || rm -f "$CONFIG_DIR/$path"
  done < "$WORK/previous-list"
}

# Puts the saved previous files back and removes files only the refused set had.
restore_previous() {
  while read -r path; do
    mkdir -p "$CONFIG_DIR/$(dirname "$path")"
    cp "$PREVIOUS/$path" "$CONFIG_DIR/$path"
  done < "$WORK/previous-list"
  while read -r path; do
    grep -qxF "$path" "$WORK/previous-list" || rm -f "$CONFIG_DIR/$path"
  done < "$WORK/manifest-paths"
}

# POST /-/reload to each target; then its reload metric. Sets FAILED (names) and METRICS (JSON).
reload_all() {
  FAILED=""
  METRICS=""
  for target in $RELOAD_TARGETS; do
    name=${target%%=*}
    url=${target#*=}
    code=$(curl -sS -o "$WORK/reload-body" -w '%{http_code}' --max-time 60 \
      --cacert "$WORK/ca.crt" -K "$WORK/curl-auth" -X POST "$url/-/reload" 2>"$WORK/err")
    if [ "$code" != "200" ]; then
      FAILED="$FAILED $name: $(head -c 400 "$WORK/reload-body" 2>/dev/null)$(head -c 200 "$WORK/err")"
    fi
    value=$(curl -sS --max-time 20 --cacert "$WORK/ca.crt" -K "$WORK/curl-auth" "$url/metrics" \
      2>/dev/null | sed -n "s/^${name}_config_last_reload_successful \\([0-9.e+-]*\\)\$/\\1/p")
    METRICS="$METRICS${METRICS:+,}\"$name\":${value:-null}"
  done
}

# Writes this task's status object: $1 manifest version, $2 result, $3 error text.
report() {
  printf '{"task":"%s","manifest_version":"%s","result":"%s","error":"%s","reload_successful":{%s},"at":"%s"}\n' \
    "$(json_text "$TASK")" "$1" "$2" "$(json_text "$3")" "${METRICS:-}" \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$WORK/status.json"
  aws s3 cp --quiet "$WORK/status.json" \
    "s3://$CONFIG_BUCKET/status/$CONFIG_MANIFEST/$TASK.json" 2>"$WORK/err" ||
    log "could not write the status object: $(cat "$WORK/err")"
}

ATTEMPTED=""
while :; do
  version=$(manifest_version)
  if [ -z "$version" ] || [ "$version" = "None" ]; then
    log "cannot read s3://$CONFIG_BUCKET/$CONFIG_MANIFEST: $(head -c 300 "$WORK/err")"
  elif [ "$version" != "$ATTEMPTED" ]; then
    if ! stage "$version"; then
      log "fetching manifest version $version failed: $(head -c 300 "$WORK/err")"
    else
      ATTEMPTED=$version
      swap_in
      if [ ! -f "$CONFIG_DIR/.deploy-ready" ]; then
        # First fetch: the servers have not started yet (they wait for this container to be
        # healthy), so there is nothing to reload.
        cp "$WORK/manifest" "$WORK/loaded"
        for owner in ${CONFIG_OWNERS:-}; do
          mkdir -p "$CONFIG_DIR/${owner%%=*}" &&
            chown "${owner#*=}" "$CONFIG_DIR/${owner%%=*}" ||
            log "could not hand $CONFIG_DIR/${owner%%=*} to ${owner#*=}"
        done
        touch "$CONFIG_DIR/.deploy-ready"
        METRICS=""
        report "$version" completed ""
        log "first fetch of manifest version $version done"
      else
        reload_all
        if [ -z "$FAILED" ]; then
          cp "$WORK/manifest" "$WORK/loaded"
          report "$version" completed ""
          log "manifest version $version loaded"
        else
          restore_previous
          report "$version" failed "reload refused:$FAILED"
          log "manifest version $version refused, previous files restored:$FAILED"
        fi
      fi
    fi
  fi
  [ "${RELOADER_ONCE:-}" = 1 ] && exit 0
  sleep "$POLL_SECONDS"
done
