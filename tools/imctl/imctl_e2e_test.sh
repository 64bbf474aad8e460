#!/usr/bin/env bash
# imctl end to end against the real service binaries on MariaDB: register
# two users, send, `tail` receives it, history shows it, group create/add,
# presence shows online, read markers, service accounts and publish, error
# codes and exit statuses.
set -euo pipefail
# shellcheck source=tests/support/real_stack.sh
source tests/support/real_stack.sh

IMCTL="$PWD/tools/imctl/imctl"
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
# imctl as user $1 (own state dir), rest are the arguments.
as() {
  local user="$1"
  shift
  IMCTL_STATE_DIR="$STACK_DIR/state-$user" IMCTL_PASSWORD="pw-$user-12345" \
    "$IMCTL" "$@"
}
expect_contains() {  # text pattern what
  grep -qF -- "$2" <<< "$1" || fail "$3: expected \"$2\" in: $1"
}

stack_start --admin_usernames=admin

for user in alice bob carol admin; do
  out="$(as "$user" register "$user")"
  expect_contains "$out" "registered $user" "register"
done
out="$(as alice register alice 2>&1)" && fail "second register succeeded"
expect_contains "$out" "ALREADY_EXISTS" "duplicate register"
for user in alice bob carol admin; do
  as "$user" login "$user" > /dev/null
done
mode="$(stat -c %a "$STACK_DIR/state-alice/session")"
[[ "$mode" == 600 ]] || fail "session file mode $mode, want 600"
expect_contains "$(as alice whoami)" "alice (user" "whoami"
expect_contains "$(as admin whoami)" ", admin, session" "admin whoami"

# bob tails; alice sends; bob's tail prints the new direct conversation's
# first entry (its creation) and the message, then exits after two entries.
as bob tail --count 2 --for 30s > "$STACK_DIR/bob.tail" 2> "$STACK_DIR/bob.tail.err" &
tail_pid=$!
for _ in $(seq 100); do
  grep -q "live" "$STACK_DIR/bob.tail.err" 2>/dev/null && break
  sleep 0.1
done
grep -q "live" "$STACK_DIR/bob.tail.err" || fail "tail did not go live: $(cat "$STACK_DIR/bob.tail.err")"
out="$(as alice send @bob hello bob)"
expect_contains "$out" "sent to conversation" "send"
direct="$(sed -E 's/.*conversation ([0-9]+) as seq ([0-9]+).*/\1/' <<< "$out")"
seq="$(sed -E 's/.*as seq ([0-9]+).*/\1/' <<< "$out")"
wait "$tail_pid" || fail "tail exited with $?: $(cat "$STACK_DIR/bob.tail.err")"
expect_contains "$(cat "$STACK_DIR/bob.tail")" "[$direct:1]" "tail creation line"
expect_contains "$(cat "$STACK_DIR/bob.tail")" "created" "tail creation text"
expect_contains "$(cat "$STACK_DIR/bob.tail")" "[$direct:$seq]" "tail line"
expect_contains "$(cat "$STACK_DIR/bob.tail")" "alice: hello bob" "tail text"

# JSON tail resumes from the saved cursor: only the new message.
as alice send "$direct" second message > /dev/null
out="$(as bob tail --json --count 1 --for 20s 2>/dev/null)"
expect_contains "$out" '"text":"second message"' "tail --json"
[[ "$(wc -l <<< "$out")" == 1 ]] || fail "tail --json printed more: $out"

out="$(as bob history "$direct")"
expect_contains "$out" "alice: hello bob" "history"
expect_contains "$out" "alice: second message" "history"
out="$(as bob history @alice --limit 1 --json)"
expect_contains "$out" '"text":"second message"' "history --json"
out="$(as alice history "$direct" --before "$seq" --limit 5)"
if grep -q "hello bob" <<< "$out"; then fail "--before $seq showed seq $seq"; fi

out="$(as bob conversations)"
expect_contains "$out" "direct with @alice" "conversations"
# Unread counts every entry bob did not make: alice's creation of the
# conversation (seq 1) and her two messages.
expect_contains "$out" "unread 3" "conversations unread"
out="$(as bob read "$direct" "$((seq + 1))")"
expect_contains "$out" "read up to $((seq + 1))" "read"
expect_contains "$(as bob conversations)" "unread 0" "unread after read"

out="$(as alice group create team @bob)"
expect_contains "$out" "created group" "group create"
group="$(sed -E 's/created group ([0-9]+).*/\1/' <<< "$out")"
expect_contains "$(as alice group add "$group" @carol)" "added 1 to conversation $group" "group add"
out="$(as carol group members "$group")"
expect_contains "$out" "alice" "members"
expect_contains "$out" "carol" "members"
expect_contains "$(as bob history "$group")" "created \"team\"" "group history"
# Members see the log from the entry that added them on.
out="$(as carol history "$group")"
expect_contains "$out" "[$group:2]" "added member's history"
expect_contains "$out" "alice added carol" "added member's history"
if grep -q "created" <<< "$out"; then fail "carol saw the entry before she joined: $out"; fi

# Presence: bob online while a tail runs, offline after.
as bob tail --for 30s > /dev/null 2> "$STACK_DIR/bob2.err" &
tail_pid=$!
online=""
for _ in $(seq 100); do
  out="$(as alice presence @bob carol)"
  if grep -q "^bob  online" <<< "$out"; then online=1; break; fi
  sleep 0.1
done
[[ -n "$online" ]] || fail "bob never shown online: $out"
expect_contains "$out" "cli imctl@" "presence device"
expect_contains "$out" "carol  offline" "presence offline"
kill -INT "$tail_pid"
wait "$tail_pid" || fail "tail did not exit cleanly on SIGINT"

# Failures name the gRPC code and exit 1; bad usage exits 2.
status=0
out="$(as alice send 999999 nobody 2>&1)" || status=$?
[[ $status == 1 ]] || fail "send to a foreign conversation exited $status"
expect_contains "$out" "NOT_FOUND" "foreign conversation"
status=0
as alice send > /dev/null 2>&1 || status=$?
[[ $status == 2 ]] || fail "send without arguments exited $status"
status=0
out="$(as alice group add 2>&1)" || status=$?
[[ $status == 2 ]] || fail "group add without arguments exited $status"
for command in register login logout whoami send tail history conversations \
               "group create" "group add" "group remove" "group leave" read \
               presence "service-account create" "service-account list" \
               "service-account revoke" publish; do
  # shellcheck disable=SC2086  # two-word commands split on purpose.
  out="$("$IMCTL" $command --help)" || fail "$command --help failed"
  expect_contains "$out" "usage: imctl $command" "$command --help"
done
status=0
out="$(as bob service-account create bot 2>&1)" || status=$?
[[ $status == 1 ]] || fail "non-admin service-account create exited $status"
expect_contains "$out" "PERMISSION_DENIED" "non-admin"

out="$(as admin service-account create notifier --description "build bot")"
key="$(sed -nE 's/^api key \(shown only now\): (.*)$/\1/p' <<< "$out")"
[[ -n "$key" ]] || fail "no api key in: $out"
bot_id="$(sed -nE 's/.*\(user ([0-9]+)\).*/\1/p' <<< "$out" | head -1)"
expect_contains "$(as admin service-account list)" "notifier" "service-account list"
out="$(IM_API_KEY="$key" "$IMCTL" publish --to @bob build passed)"
expect_contains "$out" "published to conversation" "publish"
bot_conv="$(sed -E 's/.*conversation ([0-9]+) as seq.*/\1/' <<< "$out")"
expect_contains "$(as bob history "$bot_conv")" "notifier: build passed" "published history"
echo "$key" > "$STACK_DIR/key"
out="$("$IMCTL" publish --api-key-file "$STACK_DIR/key" --to "$(as bob whoami --json | sed -E 's/.*"user_id":"([0-9]+)".*/\1/')" --client-msg-id fixed-1 again)"
out2="$("$IMCTL" publish --api-key-file "$STACK_DIR/key" --to @bob --client-msg-id fixed-1 again)"
expect_contains "$out2" "(again)" "publish retry with the same id"
expect_contains "$(as admin service-account revoke "$bot_id")" "revoked service account notifier" "revoke"
status=0
out="$(IM_API_KEY="$key" "$IMCTL" publish --to @bob nope 2>&1)" || status=$?
[[ $status == 1 ]] || fail "publish after revoke exited $status"
expect_contains "$out" "UNAUTHENTICATED" "revoked key"

expect_contains "$(as alice logout)" "logged out" "logout"
status=0
out="$(as alice whoami 2>&1)" || status=$?
[[ $status == 1 ]] || fail "whoami after logout exited $status"
expect_contains "$out" "not logged in" "after logout"
echo "imctl e2e: ok"
