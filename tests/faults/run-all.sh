#!/usr/bin/env bash
# Runs every fault scenario (tests/faults/[0-9]*.sh) one after the other and prints
# a Markdown table of the results (the one in docs/reliability.md).
#
# Usage: tests/faults/run-all.sh [BUILD_DIR] [SCENARIO_FILTER]
#   BUILD_DIR defaults to build/release; SCENARIO_FILTER is a substring of the
#   script names to run only some (e.g. "sink"). Each scenario's knobs (RATE,
#   DURATION, FAIL_SECONDS, ...) are read from the environment; see each script.
# Exit status: 0 when every scenario passed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build/release}
filter=${2:-}
results=$(mktemp "${TMPDIR:-/tmp}/jb-faults-results-XXXXXX")
trap 'rm -f "$results"' EXIT
export JB_FAULTS_RESULTS=$results

pass=0 fail=0 failed=()
start=$(date +%s)
for script in "$here"/[0-9]*.sh; do
    name=$(basename "$script" .sh)
    [ -n "$filter" ] && [[ "$name" != *"$filter"* ]] && continue
    echo "=== $name" >&2
    before=$(wc -l <"$results")
    if "$script" "$build"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        failed+=("$name")
    fi
    # A scenario that stopped before its summary still gets a row.
    if [ "$(wc -l <"$results")" = "$before" ]; then
        printf '%s\t-\t-\t-\t-\t-\t-\tFAIL (stopped early, see its log)\t-\t-\n' "$name" >>"$results"
    fi
done
elapsed=$(($(date +%s) - start))

echo
echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $(uname -sr), nats-server $(nats-server --version 2>/dev/null | awk '{print $2}'), build $build, ${elapsed}s in all."
echo
echo "| scenario | command | sent | acked | delivered | lost | duplicated | result | publish failures | notes |"
echo "|---|---|---:|---:|---:|---:|---:|---|---|---|"
# shellcheck disable=SC2016  # the backquotes are Markdown
while IFS=$'\t' read -r title cmd sent acked delivered lost dup verdict failures notes; do
    printf '| %s | `%s` | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$title" "$cmd" "$sent" \
        "$acked" "$delivered" "$lost" "$dup" "$verdict" "$failures" "$notes"
done <"$results"
echo
echo "scenarios: $pass passed, $fail failed${failed[*]:+ (${failed[*]})}"
[ "$fail" = 0 ]
