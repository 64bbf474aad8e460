# shellcheck shell=bash
# Shell helpers shared by scripts/run, scripts/test, scripts/redis.sh and
# scripts/mariadb.sh.
# Source it; it defines functions only.

# Prints "<prog>: <message>" to stderr and exits 1. Set PROG first.
die() {
  echo "${PROG:-$(basename "$0")}: $*" >&2
  exit 1
}

# Dies unless unix socket path $1 fits a sockaddr_un (108 bytes with the
# terminating NUL).
check_socket_path() {
  (( ${#1} <= 107 )) ||
    die "socket path $1 is ${#1} bytes (limit 107); use a shorter --dir"
}

# Waits until process $1 is gone; false after $2 seconds.
wait_until_gone() {
  local pid="$1" seconds="$2"
  local deadline=$((SECONDS + seconds))
  while kill -0 "$pid" 2>/dev/null; do
    (( SECONDS < deadline )) || return 1
    sleep 0.1
  done
}

# The pid in pid file $1 if that process is alive and its command line
# contains $2 (a stale pid file may name a recycled pid); else nothing.
live_pid() {
  local pid_file="$1" pattern="$2" pid
  [[ -f "$pid_file" ]] || return 0
  pid="$(tr -dc '0-9' < "$pid_file")"
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 0
  if tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$pattern"; then
    echo "$pid"
  fi
}

# True when something listens on 127.0.0.1:$1.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The first port from $1 upwards that nothing listens on.
free_port() {
  local port="$1"
  while port_in_use "$port"; do
    port=$((port + 1))
  done
  echo "$port"
}

# "12.3s" since $1 (a $SECONDS value is too coarse; use ms from date).
now_ms() {
  date +%s%3N
}
elapsed_since() {
  local start_ms="$1" ms
  ms=$(( $(now_ms) - start_ms ))
  printf '%d.%ds' $((ms / 1000)) $(((ms % 1000) / 100))
}
