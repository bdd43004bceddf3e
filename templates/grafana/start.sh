[#
  start.sh: how the Grafana container starts (the task definition runs it with /bin/sh after
  writing the provisioning files). Grafana reads GF_SECURITY_ADMIN_PASSWORD only when it
  creates its database; on every later start the password would stay what it was. So once a
  database exists on the EFS volume, this script first sets the admin password to the
  secret's current value (`grafana cli admin reset-admin-password`, password on stdin, never
  in a process's arguments), then runs the image's own /run.sh. Rotating
  secrets.grafana_admin therefore changes the password: the plan restarts the service, and
  the new task sets it.

  If the reset fails, Grafana is not started (the task stops and ECS reports it): a password
  that silently stays the old one would be worse than a visible failure.

  Tested in tests/grafana_start.rs: first start (no database) does not reset; a start with a
  database resets with the secret's value on stdin; a failing reset stops before /run.sh.
#]
# Rendered by deploy for stack "[[ stack ]]", environment "[[ environment ]]". Do not edit in
# the container: change templates/grafana/start.sh and apply.
set -eu
data="${GF_PATHS_DATA:-/var/lib/grafana}"
if [ -s "$data/grafana.db" ]; then
  if ! printf '%s\n' "$GF_SECURITY_ADMIN_PASSWORD" | grafana cli \
    --homepath "${GF_PATHS_HOME:-/usr/share/grafana}" \
    --config "${GF_PATHS_CONFIG:-/etc/grafana/grafana.ini}" \
    admin reset-admin-password --password-from-stdin >/dev/null; then
    echo "deploy: could not set the admin password from the secret; Grafana not started" >&2
    exit 1
  fi
  echo "deploy: admin password set from the secret"
fi
exec /run.sh "$@"
