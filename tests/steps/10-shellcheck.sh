#!/usr/bin/env bash
# Lints every shell script in the repository (tracked files starting with a
# sh/bash shebang, plus the sourced scripts/lib.sh).
set -euo pipefail
cd "$IM_ROOT"
mapfile -t scripts < <(
  git ls-files | while read -r f; do
    [[ -f "$f" ]] && head -c 64 "$f" | grep -q '^#!.*\(ba\)\?sh' && echo "$f"
  done)
shellcheck -x "${scripts[@]}" scripts/lib.sh
echo "shellcheck: ${#scripts[@]} scripts clean"
