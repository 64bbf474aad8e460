#!/usr/bin/env bash
# The web client end to end: builds web/ (npm ci from the lockfile, protoc +
# @protobuf-ts, esbuild), starts auth, presence, message, history and the
# gateway (serving web/dist) on free ports against the MariaDB that
# scripts/test provides (a database of its own), then runs the Node tests:
# grpc-web calls through the gateway (web/test/grpcweb.test.ts) and the chat
# page in Debian's Chromium via playwright-core (web/test/browser.test.ts).
# Screenshots of failures go to $IM_WEB_TEST_OUTPUT (default
# web/test-output).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$IM_ROOT/scripts/lib.sh"
PROG="web"

for var in IM_TEST_MYSQL_HOST IM_TEST_MYSQL_PORT IM_TEST_MYSQL_USER \
           IM_TEST_MYSQL_PASSWORD IM_BAZEL_BIN; do
  [[ -n "${!var:-}" ]] || die "$var is not set (run through scripts/test)"
done
[[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium is missing; run scripts/deps.sh"

WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/im-web-test.XXXXXX")"
PIDS=()
DATABASE="im_web_$$"
cleanup() {
  local rc=$? pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait_until_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
  done
  MYSQL_PWD="$IM_TEST_MYSQL_PASSWORD" mariadb --protocol=tcp \
    -h "$IM_TEST_MYSQL_HOST" -P "$IM_TEST_MYSQL_PORT" -u "$IM_TEST_MYSQL_USER" \
    -e "DROP DATABASE IF EXISTS $DATABASE" 2>/dev/null || true
  if (( rc != 0 )); then
    echo "web: logs kept in $WORK_DIR"
    tail -n 20 "$WORK_DIR"/*.log 2>/dev/null || true
  else
    rm -rf "$WORK_DIR"
  fi
}
trap cleanup EXIT

"$IM_ROOT/scripts/build-web.sh"

cd "$IM_ROOT"
bazel build //services/auth:auth_main //services/presence:presence_main \
  //services/message:message_main //services/history:history_main \
  //services/gateway:gateway_main //storage:migrate_main

DSN="mysql://$IM_TEST_MYSQL_USER:$IM_TEST_MYSQL_PASSWORD@$IM_TEST_MYSQL_HOST:$IM_TEST_MYSQL_PORT/$DATABASE"
"$IM_BAZEL_BIN/storage/migrate_main" --mysql_dsn="$DSN" --create_database

KEY_FILE="$WORK_DIR/token_keys"
(umask 077 && echo "1 $(openssl rand -base64 32)" > "$KEY_FILE")

port=25000
declare -A PORT
for name in auth presence message history gateway; do
  port="$(free_port "$port")"
  PORT[$name]="$port"
  port=$((port + 1))
done
addr() { echo "127.0.0.1:${PORT[$1]}"; }

# Starts service $1 with the shared flags plus the rest of the arguments.
start() {
  local name="$1"
  shift
  "$IM_BAZEL_BIN/services/$name/${name}_main" --listen="$(addr "$name")" \
    --mysql_dsn="$DSN" --token_key_file="$KEY_FILE" "$@" \
    < /dev/null > "$WORK_DIR/$name.log" 2>&1 &
  PIDS+=($!)
}

# Waits until the service started last ($1) accepts connections.
await_port() {
  local name="$1" pid="${PIDS[-1]}" deadline=$((SECONDS + 60))
  until port_in_use "${PORT[$name]}"; do
    kill -0 "$pid" 2>/dev/null || die "$name exited (see $WORK_DIR/$name.log)"
    (( SECONDS < deadline )) || die "$name did not start (see $WORK_DIR/$name.log)"
    sleep 0.2
  done
}

start auth --trusted_proxies=127.0.0.1
await_port auth
start presence --auth_addr="$(addr auth)"
await_port presence
start message --auth_addr="$(addr auth)" --presence_addr="$(addr presence)"
await_port message
start history --auth_addr="$(addr auth)" --message_addr="$(addr message)"
await_port history

ALLOWED_ORIGIN="http://allowed.example.test"
start gateway --auth_addr="$(addr auth)" --presence_addr="$(addr presence)" \
  --message_addr="$(addr message)" --history_addr="$(addr history)" \
  --web_root="$IM_ROOT/web/dist" --cors_allowed_origins="$ALLOWED_ORIGIN"
await_port gateway
curl -fsS "http://$(addr gateway)/healthz" > /dev/null ||
  die "gateway /healthz failed"

IM_WEB_GATEWAY_URL="http://$(addr gateway)"
export IM_WEB_GATEWAY_URL
export IM_WEB_ALLOWED_ORIGIN="$ALLOWED_ORIGIN"
export IM_WEB_TEST_OUTPUT="${IM_WEB_TEST_OUTPUT:-$IM_ROOT/web/test-output}"
cd "$IM_ROOT/web"
npm run --silent typecheck
node --test --test-timeout=180000 build-test/
