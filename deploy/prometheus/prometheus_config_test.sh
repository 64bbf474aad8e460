#!/usr/bin/env bash
# Validates deploy/prometheus with Debian's promtool (package prometheus):
# the scrape config, the rule files, and the rules' unit tests.
set -euo pipefail

PROMTOOL="${PROMTOOL:-/usr/bin/promtool}"
[[ -x "$PROMTOOL" ]] || { echo "FAIL: $PROMTOOL missing (apt-get install prometheus)" >&2; exit 1; }

cd "${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-.}/deploy/prometheus" 2>/dev/null ||
  cd "$(dirname "$0")"

"$PROMTOOL" check config prometheus.yml
"$PROMTOOL" check rules rules/recording.yml rules/alerts.yml
"$PROMTOOL" test rules tests/rules_test.yml
