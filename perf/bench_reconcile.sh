#!/usr/bin/env bash
# Builds and runs the reconciler benchmark (perf/bench_reconcile.c) against its own
# nats-server. Usage: perf/bench_reconcile.sh [N]   (default 2000 subscriptions x 3 types)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build/rel"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJB_TESTS=OFF >/dev/null
cmake --build "$build" -j2 --target bench_reconcile >/dev/null
exec "$build/bench_reconcile" "${1:-2000}"
