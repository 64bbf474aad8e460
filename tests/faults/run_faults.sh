#!/usr/bin/env bash
# Runs the fault harness (tests/faults/README.md) once per seed against a
# MariaDB of its own (scripts/mariadb.sh under `supervise`, its own dir and
# free port; one fresh database per seed), then stops everything it started.
#
#   tests/faults/run_faults.sh [--seeds 1,2,3] [--duration 30s] [--keep]
#                              [-- more fault_harness flags]
#
#   --seeds LIST     comma-separated seeds, one run each (default 1,2,3)
#   --duration D     length of each run's fault phase (default 60s)
#   --keep           keep the work dir (logs, database) even when all pass
#
# Binaries come from $IM_BAZEL_BIN when set (scripts/test built them);
# otherwise this script builds them. Exits 1 when any run fails; the work
# dir with every service log is then kept and named.
set -euo pipefail

readonly PROG="run_faults"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
readonly ROOT
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

SEEDS="1,2,3"
DURATION="60s"
KEEP=0
HARNESS_FLAGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seeds) SEEDS="${2:?--seeds needs a value}"; shift 2 ;;
    --duration) DURATION="${2:?--duration needs a value}"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --) shift; HARNESS_FLAGS=("$@"); break ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done

cd "$ROOT"
BIN="${IM_BAZEL_BIN:-}"
if [[ -z "$BIN" || ! -x "$BIN/tests/faults/fault_harness" ]]; then
  echo "$PROG: building the harness and the services"
  bazel build //tests/faults:fault_harness //services/auth:auth_main \
    //services/presence:presence_main //services/message:message_main \
    //services/history:history_main //storage:migrate_main
  BIN="$(bazel info bazel-bin 2> /dev/null)"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/im-faults.XXXXXX")"
DB_DIR="$WORK/db"
PORT="$(free_port 23500)"
# Server binaries live in /usr/sbin, which a test's PATH may lack.
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
MARIADB="$ROOT/scripts/mariadb.sh"
SUPERVISOR=""
FAILED=0

finish() {
  local rc=$?
  trap - EXIT INT TERM
  "$MARIADB" stop --dir "$DB_DIR" > /dev/null 2>&1 || true
  if [[ -n "$SUPERVISOR" ]]; then
    kill -TERM "$SUPERVISOR" 2> /dev/null || true
    wait "$SUPERVISOR" 2> /dev/null || true
  fi
  if (( FAILED || rc != 0 || KEEP )); then
    echo "$PROG: logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  (( FAILED == 0 && rc == 0 )) || exit 1
}
trap finish EXIT
trap 'echo "$PROG: interrupted"; FAILED=1; exit 1' INT TERM

# Supervised, so a server killed with -9 is started again on `start`.
"$MARIADB" supervise --dir "$DB_DIR" --port "$PORT" > "$WORK/mariadb-supervisor.log" 2>&1 &
SUPERVISOR=$!
"$MARIADB" start --dir "$DB_DIR" --port "$PORT" > /dev/null

START_CMD="$(printf '%q start --dir %q --port %q' "$MARIADB" "$DB_DIR" "$PORT")"
STOP_CMD="$(printf '%q stop --dir %q' "$MARIADB" "$DB_DIR")"
KILL_CMD="$(printf '%q kill --dir %q' "$MARIADB" "$DB_DIR")"

RESULTS=()
IFS=',' read -r -a SEED_LIST <<< "$SEEDS"
for seed in "${SEED_LIST[@]}"; do
  dsn="mysql://im:im@127.0.0.1:$PORT/faults_$seed"
  "$BIN/storage/migrate_main" --mysql_dsn="$dsn" --create_database > "$WORK/migrate-$seed.log" 2>&1 ||
    { cat "$WORK/migrate-$seed.log" >&2; die "cannot create database faults_$seed"; }
  start_ms="$(now_ms)"
  rc=0
  "$BIN/tests/faults/fault_harness" --seed="$seed" --duration="$DURATION" \
    --bin_dir="$BIN/services" --mysql_dsn="$dsn" \
    --mysql_start_cmd="$START_CMD > /dev/null" \
    --mysql_stop_cmd="$STOP_CMD > /dev/null" \
    --mysql_kill_cmd="$KILL_CMD > /dev/null" \
    --work_dir="$WORK/seed-$seed" "${HARNESS_FLAGS[@]}" || rc=$?
  if (( rc == 0 )); then
    RESULTS+=("$(printf 'PASS  seed %-6s %s' "$seed" "$(elapsed_since "$start_ms")")")
  else
    RESULTS+=("$(printf 'FAIL  seed %-6s %s (status %d; logs %s)' "$seed" \
      "$(elapsed_since "$start_ms")" "$rc" "$WORK/seed-$seed")")
    FAILED=1
  fi
  # A run that failed mid-fault may leave MariaDB down.
  "$MARIADB" start --dir "$DB_DIR" --port "$PORT" > /dev/null
done

echo "=== fault runs"
printf '  %s\n' "${RESULTS[@]}"
