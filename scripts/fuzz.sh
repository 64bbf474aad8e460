#!/usr/bin/env bash
# Fuzzes the targets of //tests/fuzz with libFuzzer (clang, AddressSanitizer;
# bazel --config=fuzz) for a bounded time each. Not part of scripts/test: the
# test suite only replays each corpus once (//tests/fuzz:*_corpus_test).
#
#   scripts/fuzz.sh [--time SECONDS] [--merge] [--out DIR] [TARGET...]
#
#   --time SECONDS  fuzzing time per target (default 60)
#   --merge         add the inputs that found new coverage to the target's
#                   corpus in the repository (tests/fuzz/corpus/TARGET),
#                   minimized with libFuzzer's -merge=1
#   --out DIR       where crash reproducers and logs go (default: a new
#                   directory under $TMPDIR)
#   TARGET          e.g. chat_fuzzer; default: every target
#
# A contract violation or sanitizer report aborts the target: its input is
# saved as DIR/TARGET/crash-*, and the script exits 1 after the others ran.
# Reproduce with: bazel-bin of --config=fuzz, or replay the file:
#   bazel run //tests/fuzz:TARGET -- DIR/TARGET/crash-...
set -euo pipefail

readonly PROG="fuzz"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
readonly ROOT
readonly ALL_TARGETS=(auth_fuzzer message_fuzzer chat_fuzzer history_fuzzer
                      presence_fuzzer validation_fuzzer)

die() {
  echo "$PROG: $*" >&2
  exit 1
}

SECONDS_PER_TARGET=60
MERGE=0
OUT=""
TARGETS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --time) SECONDS_PER_TARGET="${2:?--time needs a value}"; shift 2 ;;
    --merge) MERGE=1; shift ;;
    --out) OUT="${2:?--out needs a value}"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown flag: $1" ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
[[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || die "--time takes whole seconds"
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=("${ALL_TARGETS[@]}")
[[ -n "$OUT" ]] || OUT="$(mktemp -d "${TMPDIR:-/tmp}/im-fuzz.XXXXXX")"
mkdir -p "$OUT"

cd "$ROOT"
LABELS=()
for target in "${TARGETS[@]}"; do
  [[ -d "tests/fuzz/corpus/$target" ]] || die "no corpus for $target"
  LABELS+=("//tests/fuzz:$target")
done
echo "$PROG: building ${TARGETS[*]} with --config=fuzz"
bazel build --config=fuzz "${LABELS[@]}"
BIN_DIR="$(bazel info --config=fuzz bazel-bin 2> /dev/null)/tests/fuzz"

FAILED=()
for target in "${TARGETS[@]}"; do
  work="$OUT/$target"
  mkdir -p "$work/new"
  echo "$PROG: $target for ${SECONDS_PER_TARGET}s (log: $work/log)"
  rc=0
  # Leak checking is off: gRPC's threads free memory after an input ends,
  # which libFuzzer's per-input leak check would report.
  ASAN_OPTIONS="detect_leaks=0:abort_on_error=1" \
    "$BIN_DIR/$target" -max_total_time="$SECONDS_PER_TARGET" -timeout=30 \
      -rss_limit_mb=4096 -detect_leaks=0 -print_final_stats=1 \
      -artifact_prefix="$work/" "$work/new" "tests/fuzz/corpus/$target" \
      > "$work/log" 2>&1 || rc=$?
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ *DONE)' \
    "$work/log" | sed "s/^/  /" || true
  if (( rc != 0 )); then
    echo "$PROG: $target FAILED (status $rc); reproducer(s):" >&2
    ls "$work"/crash-* "$work"/timeout-* "$work"/oom-* 2> /dev/null >&2 || true
    grep -m3 -E 'CONTRACT VIOLATION|ERROR: AddressSanitizer|ERROR: libFuzzer' \
      "$work/log" >&2 || true
    FAILED+=("$target")
    continue
  fi
  if (( MERGE )); then
    before="$(find "tests/fuzz/corpus/$target" -type f | wc -l)"
    ASAN_OPTIONS="detect_leaks=0" "$BIN_DIR/$target" -merge=1 -detect_leaks=0 \
      "tests/fuzz/corpus/$target" "$work/new" >> "$work/log" 2>&1
    after="$(find "tests/fuzz/corpus/$target" -type f | wc -l)"
    echo "  corpus tests/fuzz/corpus/$target: $before -> $after inputs"
  fi
done

if [[ ${#FAILED[@]} -gt 0 ]]; then
  die "violations in: ${FAILED[*]} (logs and reproducers under $OUT)"
fi
echo "$PROG: no violation in ${TARGETS[*]} (logs under $OUT)"
