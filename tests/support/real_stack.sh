# shellcheck shell=bash
# The four service binaries on free loopback ports over a fresh database
# on the test MariaDB (IM_TEST_MYSQL_{HOST,PORT,USER,PASSWORD}), for
# end-to-end tests of imctl and imbench. Source it from a Bazel sh_test
# whose data holds the binaries (see //tests/support:real_stack), then:
#
#   stack_start [extra auth flags...]   exports IM_AUTH_ADDR, IM_MESSAGE_ADDR,
#                                       IM_HISTORY_ADDR, IM_PRESENCE_ADDR,
#                                       STACK_DIR, STACK_MESSAGE_PID
#   stack_stop                          (also runs on EXIT)
#
# Service logs go to $STACK_DIR/<service>.log and are printed when a
# service does not come up.

_stack_die() {
  echo "real_stack: $*" >&2
  exit 1
}

for _var in IM_TEST_MYSQL_HOST IM_TEST_MYSQL_PORT IM_TEST_MYSQL_USER \
            IM_TEST_MYSQL_PASSWORD; do
  [[ -n "${!_var:-}" ]] || _stack_die "$_var is not set: run with scripts/test, or bazel test --test_env=$_var=..."
done

STACK_BIN_ROOT="${STACK_BIN_ROOT:-$PWD}"
STACK_DIR="$(mktemp -d "${TEST_TMPDIR:-/tmp}/stack.XXXXXX")"
STACK_DB="e2e_$(date +%s)_$$_${RANDOM}"
STACK_DSN="mysql://$IM_TEST_MYSQL_USER:$IM_TEST_MYSQL_PASSWORD@$IM_TEST_MYSQL_HOST:$IM_TEST_MYSQL_PORT/$STACK_DB"
declare -a _STACK_PIDS=()
export STACK_DIR

_stack_port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A free port at or above $1.
_stack_free_port() {
  local port="$1"
  while _stack_port_in_use "$port"; do port=$((port + 1)); done
  echo "$port"
}

_stack_bin() { echo "$STACK_BIN_ROOT/$1"; }

stack_start() {
  "$(_stack_bin storage/migrate_main)" --mysql_dsn="$STACK_DSN" \
    --create_database > "$STACK_DIR/migrate.log" 2>&1 ||
    { cat "$STACK_DIR/migrate.log" >&2; _stack_die "migrations failed"; }
  (umask 077 && echo "1 $(head -c 32 /dev/urandom | base64)" > "$STACK_DIR/token_keys")

  local base=$((20000 + RANDOM % 20000))
  local auth message history presence
  auth="$(_stack_free_port "$base")"
  presence="$(_stack_free_port $((auth + 1)))"
  message="$(_stack_free_port $((presence + 1)))"
  history="$(_stack_free_port $((message + 1)))"
  export IM_AUTH_ADDR="127.0.0.1:$auth" IM_PRESENCE_ADDR="127.0.0.1:$presence"
  export IM_MESSAGE_ADDR="127.0.0.1:$message" IM_HISTORY_ADDR="127.0.0.1:$history"
  local common=(--metrics_listen= "--mysql_dsn=$STACK_DSN"
                "--token_key_file=$STACK_DIR/token_keys" --log_level=warn)
  _stack_run auth --listen="$IM_AUTH_ADDR" "${common[@]}" "$@"
  _stack_run presence --listen="$IM_PRESENCE_ADDR" "${common[@]}" \
    --auth_addr="$IM_AUTH_ADDR"
  # shellcheck disable=SC2086  # STACK_MESSAGE_FLAGS is a list of flags.
  _stack_run message --listen="$IM_MESSAGE_ADDR" "${common[@]}" \
    --auth_addr="$IM_AUTH_ADDR" --presence_addr="$IM_PRESENCE_ADDR" \
    ${STACK_MESSAGE_FLAGS:-}
  STACK_MESSAGE_PID="${_STACK_PIDS[-1]}"
  export STACK_MESSAGE_PID
  _stack_run history --listen="$IM_HISTORY_ADDR" "${common[@]}" \
    --auth_addr="$IM_AUTH_ADDR" --message_addr="$IM_MESSAGE_ADDR"
  _stack_ready auth "$IM_AUTH_ADDR" im.auth.v1.AuthService
  _stack_ready presence "$IM_PRESENCE_ADDR" im.presence.v1.PresenceService
  _stack_ready message "$IM_MESSAGE_ADDR" im.message.v1.MessageService
  _stack_ready history "$IM_HISTORY_ADDR" im.history.v1.HistoryService
}

_stack_run() {
  local name="$1"
  shift
  "$(_stack_bin "services/$name/${name}_main")" "$@" \
    > "$STACK_DIR/$name.log" 2>&1 &
  _STACK_PIDS+=($!)
}

_stack_ready() {
  local name="$1" addr="$2" service="$3"
  if ! "$(_stack_bin tools/healthcheck/healthcheck)" --addr="$addr" \
       --service="$service" --wait=60s > /dev/null 2>&1; then
    echo "--- $name.log" >&2
    tail -n 30 "$STACK_DIR/$name.log" >&2 || true
    _stack_die "$name did not become SERVING on $addr"
  fi
}

stack_stop() {
  local pid
  for pid in "${_STACK_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${_STACK_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  _STACK_PIDS=()
  mariadb --no-defaults -h"$IM_TEST_MYSQL_HOST" -P"$IM_TEST_MYSQL_PORT" \
    -u"$IM_TEST_MYSQL_USER" -p"$IM_TEST_MYSQL_PASSWORD" \
    -e "DROP DATABASE IF EXISTS \`$STACK_DB\`" 2>/dev/null || true
}

trap stack_stop EXIT
