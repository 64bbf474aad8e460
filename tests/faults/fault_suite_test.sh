#!/usr/bin/env bash
# The short fault suite run by scripts/test: fault_harness once per fixed
# seed (all fault kinds, $FAULT_DURATION each) against the test MariaDB,
# which it stops, kills and restarts through IM_TEST_MYSQL_*_CMD (hence the
# tags "local" and "exclusive"). Each seed gets a fresh database, dropped
# afterwards. Fails when any run reports a loss, a duplicate or any other
# broken check except sender order, which is reported only (README.md:
# "Known gap"); the service logs of a failed
# run are copied to the test's undeclared outputs.
set -euo pipefail

readonly SEEDS=(1 2 3)
readonly FAULT_DURATION="${FAULT_DURATION:-20s}"

for var in IM_TEST_MYSQL_HOST IM_TEST_MYSQL_PORT IM_TEST_MYSQL_USER \
           IM_TEST_MYSQL_PASSWORD IM_TEST_MYSQL_START_CMD \
           IM_TEST_MYSQL_STOP_CMD IM_TEST_MYSQL_KILL_CMD; do
  if [[ -z "${!var:-}" ]]; then
    echo "fault_suite_test: $var is not set: run with scripts/test, or bazel test --test_env=$var=..." >&2
    exit 1
  fi
done

BIN_ROOT="$PWD"
WORK="$(mktemp -d "${TEST_TMPDIR:-/tmp}/faults.XXXXXX")"
MYSQL_URL="mysql://$IM_TEST_MYSQL_USER:$IM_TEST_MYSQL_PASSWORD@$IM_TEST_MYSQL_HOST:$IM_TEST_MYSQL_PORT"
DATABASES=()

drop_databases() {
  # MariaDB may be down if a run failed mid-fault.
  sh -c "$IM_TEST_MYSQL_START_CMD" > /dev/null 2>&1 || true
  local db
  for db in "${DATABASES[@]}"; do
    mariadb --no-defaults -h"$IM_TEST_MYSQL_HOST" -P"$IM_TEST_MYSQL_PORT" \
      -u"$IM_TEST_MYSQL_USER" -p"$IM_TEST_MYSQL_PASSWORD" \
      -e "DROP DATABASE IF EXISTS \`$db\`" 2> /dev/null || true
  done
}
trap drop_databases EXIT

FAILED=()
for seed in "${SEEDS[@]}"; do
  db="faults_${seed}_$(date +%s)_$$"
  DATABASES+=("$db")
  "$BIN_ROOT/storage/migrate_main" --mysql_dsn="$MYSQL_URL/$db" \
    --create_database > "$WORK/migrate-$seed.log" 2>&1 ||
    { cat "$WORK/migrate-$seed.log" >&2; exit 1; }
  rc=0
  "$BIN_ROOT/tests/faults/fault_harness" --seed="$seed" \
    --duration="$FAULT_DURATION" --bin_dir="$BIN_ROOT/services" \
    --mysql_dsn="$MYSQL_URL/$db" \
    --mysql_start_cmd="$IM_TEST_MYSQL_START_CMD > /dev/null" \
    --mysql_stop_cmd="$IM_TEST_MYSQL_STOP_CMD > /dev/null" \
    --mysql_kill_cmd="$IM_TEST_MYSQL_KILL_CMD > /dev/null" \
    --work_dir="$WORK/seed-$seed" || rc=$?
  if (( rc != 0 )); then
    FAILED+=("$seed")
    if [[ -n "${TEST_UNDECLARED_OUTPUTS_DIR:-}" ]]; then
      cp -r "$WORK/seed-$seed" "$TEST_UNDECLARED_OUTPUTS_DIR/" || true
    fi
  fi
done

if (( ${#FAILED[@]} > 0 )); then
  echo "fault_suite_test: FAILED for seed(s) ${FAILED[*]}" >&2
  exit 1
fi
echo "fault_suite_test: seeds ${SEEDS[*]} passed"
