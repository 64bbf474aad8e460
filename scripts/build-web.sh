#!/usr/bin/env bash
# Builds the web chat page into web/dist, which the gateway serves with
# --web_root=web/dist: installs the npm packages from web/package-lock.json
# (npm ci, only when the lockfile changed), generates the TypeScript clients
# from protos/ with Debian's protoc and @protobuf-ts/plugin, and bundles with
# esbuild (also the Node tests, into web/build-test).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT/web"
for tool in node npm protoc; do
  command -v "$tool" > /dev/null ||
    { echo "build-web: $tool is missing; run scripts/deps.sh" >&2; exit 1; }
done
if [[ ! -f node_modules/.package-lock.json ||
      package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
echo "build-web: built $ROOT/web/dist"
