#!/usr/bin/env bash
# Installs the Debian 12 packages this project needs that are missing; a
# quick no-op when all are present. Installing needs root; nothing else is
# downloaded. Package postinst scripts may not start system services
# (mariadb, redis): our servers run as private instances on their own ports.
#
#   scripts/deps.sh          install what is missing
#   scripts/deps.sh --check  list what is missing; exit 1 if anything is
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
readonly ROOT

PACKAGES=(
  # Build: Bazel 4.2.3 (needs a JDK), compilers, protoc + gRPC plugin.
  bazel-bootstrap default-jdk-headless clang libclang-rt-14-dev pkg-config
  protobuf-compiler protobuf-compiler-grpc
  # Libraries (wrapped in //third_party/system).
  libgrpc++-dev libgrpc-dev libprotobuf-dev libabsl-dev libmysqlcppconn-dev
  prometheus-cpp-dev libsodium-dev libgtest-dev libgmock-dev libbenchmark-dev
  libboost-dev libboost-system-dev libhiredis-dev libspdlog-dev libfmt-dev
  libssl-dev zlib1g-dev
  # Servers, run as private instances by scripts/mariadb.sh, scripts/redis.sh.
  mariadb-server mariadb-client redis-server prometheus
  # Tools the scripts use.
  openssl git curl ca-certificates
)
# The web client (web/) builds with node and npm and is tested in a
# headless browser. A command already on PATH counts as present (e.g. a
# nodejs build that bundles npm, which conflicts with Debian's npm package).
if [[ -f "$ROOT/web/package.json" ]]; then
  for package_command in chromium:chromium nodejs:node npm:npm; do
    command -v "${package_command#*:}" > /dev/null ||
      PACKAGES+=("${package_command%%:*}")
  done
fi

missing_packages() {
  # dpkg-query prints only packages it knows (and fails if any is unknown);
  # unknown ones count as missing.
  local installed
  installed="$( (dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' \
                   "${PACKAGES[@]}" 2>/dev/null || true) |
               awk '$2 == "ii" {print $1}')"
  local p
  for p in "${PACKAGES[@]}"; do
    grep -qxF -- "$p" <<< "$installed" || echo "$p"
  done
}

mapfile -t MISSING < <(missing_packages)
if [[ ${#MISSING[@]} -eq 0 ]]; then
  exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
  printf 'missing: %s\n' "${MISSING[*]}"
  exit 1
fi
if [[ "$(id -u)" != 0 ]]; then
  echo "deps.sh: missing Debian packages: ${MISSING[*]}" >&2
  echo "deps.sh: run as root to install them: sudo $0" >&2
  exit 1
fi

echo "deps.sh: installing ${MISSING[*]}"
# Keep postinst scripts from starting system services (a system mariadbd on
# 3306 or redis on 6379 would only be in the way). Docker images ship such a
# policy already; otherwise one is put in place for this install only.
readonly POLICY=/usr/sbin/policy-rc.d
if [[ ! -e "$POLICY" ]]; then
  printf '#!/bin/sh\nexit 101\n' > "$POLICY"
  chmod 755 "$POLICY"
  trap 'rm -f "$POLICY"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q "${MISSING[@]}"

mapfile -t STILL_MISSING < <(missing_packages)
if [[ ${#STILL_MISSING[@]} -gt 0 ]]; then
  echo "deps.sh: still missing after install: ${STILL_MISSING[*]}" >&2
  exit 1
fi
echo "deps.sh: all packages present"
