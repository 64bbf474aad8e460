#!/usr/bin/env bash
# scripts/run brings every service to SERVING, restarts a service killed
# with SIGKILL, and stops everything it started on SIGTERM. Runs on its own
# run dir and free ports, beside any developer's scripts/run.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$IM_ROOT/scripts/lib.sh"
PROG="run-smoke"

IM_RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/im-run-smoke.XXXXXX")"
export IM_RUN_DIR
# Consecutive free ports, one per listener.
port=24000
for var in IM_MYSQL_PORT IM_AUTH_PORT IM_PRESENCE_PORT IM_MESSAGE_PORT \
           IM_HISTORY_PORT IM_GATEWAY_PORT IM_AUTH_METRICS_PORT \
           IM_PRESENCE_METRICS_PORT IM_MESSAGE_METRICS_PORT \
           IM_HISTORY_METRICS_PORT IM_GATEWAY_METRICS_PORT; do
  port="$(free_port "$port")"
  export "$var=$port"
  port=$((port + 1))
done
OUT="$IM_RUN_DIR/run.out"

run_pid=""
stop_run() {
  [[ -n "$run_pid" ]] || return 0
  kill -TERM "$run_pid" 2>/dev/null || true
  wait "$run_pid" || true
}
trap 'stop_run; echo "$PROG: output and logs in $IM_RUN_DIR" >&2' EXIT

"$IM_ROOT/scripts/run" > "$OUT" 2>&1 &
run_pid=$!
deadline=$((SECONDS + 600))
until grep -q "all services SERVING" "$OUT"; do
  kill -0 "$run_pid" 2>/dev/null || { cat "$OUT" >&2; die "scripts/run exited early"; }
  (( SECONDS < deadline )) || { cat "$OUT" >&2; die "not SERVING within 600s"; }
  sleep 0.5
done

healthy() {
  "$IM_RUN_DIR/bin/healthcheck" --addr="127.0.0.1:$1" --service="$2" --wait=30s
}
healthy "$IM_AUTH_PORT" im.auth.v1.AuthService
healthy "$IM_PRESENCE_PORT" im.presence.v1.PresenceService
healthy "$IM_MESSAGE_PORT" im.message.v1.MessageService
healthy "$IM_HISTORY_PORT" im.history.v1.HistoryService

# Supervision: a service killed with SIGKILL comes back under a new pid.
old_pid="$(cat "$IM_RUN_DIR/pids/message.pid")"
kill -KILL "$old_pid"
deadline=$((SECONDS + 30))
while [[ "$(cat "$IM_RUN_DIR/pids/message.pid")" == "$old_pid" ]]; do
  (( SECONDS < deadline )) || die "message was not restarted after SIGKILL"
  sleep 0.2
done
healthy "$IM_MESSAGE_PORT" im.message.v1.MessageService

# Clean stop: scripts/run exits 0 and leaves nothing running.
mapfile -t service_pids < <(cat "$IM_RUN_DIR"/pids/*.pid)
kill -TERM "$run_pid"
status=0
wait "$run_pid" || status=$?
run_pid=""
(( status == 0 )) || die "scripts/run exited with status $status on SIGTERM"
for pid in "${service_pids[@]}"; do
  ! kill -0 "$pid" 2>/dev/null || die "process $pid still running after stop"
done
if "$IM_ROOT/scripts/mariadb.sh" status --dir "$IM_RUN_DIR/db" > /dev/null; then
  die "MariaDB still running after stop"
fi
grep -q "MariaDB stopped" "$OUT" || die "scripts/run did not report stopping MariaDB"
trap - EXIT
rm -rf "$IM_RUN_DIR"
echo "$PROG: services SERVING, restart after SIGKILL, clean stop: ok"
