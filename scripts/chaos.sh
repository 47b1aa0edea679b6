#!/usr/bin/env bash
# The chaos suite: fault and bad-input scenarios on real processes, and their table.
#
#   scripts/chaos.sh [short|full]
#
# Runs the SpotqChaosTests target (Tests/SpotqChaosTests: suites named *ChaosTests) with
# SPOTQ_CHAOS=<mode>: `short` (inside `make test`: 30 images a scenario, an 8 s outage) or
# `full` (`make chaos`: 150 images, a 60 s outage, the README's figures). Each scenario
# appends its count to .spotq/chaos-report.jsonl; the table goes to stdout and to
# .spotq/chaos-table.md. Expects PostgreSQL and RabbitMQ up and .spotq/env written
# (`make services`); `make chaos` and `make test` see to that.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-short}
[[ $mode == short || $mode == full ]] || { echo "usage: $0 [short|full]" >&2; exit 2; }
report=$PWD/.spotq/chaos-report.jsonl
table=$PWD/.spotq/chaos-table.md
mkdir -p .spotq
rm -f "$report" "$table"
# shellcheck disable=SC1091
. .spotq/env
status=0
SPOTQ_CHAOS=$mode SPOTQ_CHAOS_REPORT=$report ${SWIFT:-swift} test --filter 'ChaosTests' || status=$?
if [[ -s $report ]]; then
    echo
    echo "chaos ($mode): every scenario's count"
    python3 scripts/chaos-table.py "$report" | tee "$table" || status=1
else
    echo "chaos: no scenario reported a count" >&2
    status=1
fi
exit "$status"
