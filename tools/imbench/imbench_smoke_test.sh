#!/usr/bin/env bash
# A short imbench run of each message scenario against the real binaries:
# passes when every acked message was delivered exactly once to each
# stream (imbench exits 0 and reports "passed"). Never asserts a speed.
set -euo pipefail
# shellcheck source=tests/support/real_stack.sh
source tests/support/real_stack.sh

IMBENCH="$PWD/tools/imbench/imbench"
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# shellcheck disable=SC2119  # no extra auth flags
stack_start

run() {
  local name="$1"
  shift
  local out status=0
  out="$("$IMBENCH" "$@" --json --progress=false --user_prefix="smoke-$name" \
          2> "$STACK_DIR/imbench-$name.err")" || status=$?
  if [[ $status != 0 ]] || ! grep -q '"passed":true' <<< "$out"; then
    cat "$STACK_DIR/imbench-$name.err" >&2
    fail "imbench $name exited $status: $out"
  fi
  grep -q '"errors":{}' <<< "$out" || echo "note: imbench $name errors: $out" >&2
  echo "imbench $name: $out"
}

run direct direct --users 10 --rate 100 --duration 3s --drain_timeout 30s
run group group --members 12 --senders 3 --rate 30 --duration 3s --drain_timeout 30s
run connect connect --streams 40 --streams_per_user 8 --duration 1s
echo "imbench smoke: ok"
