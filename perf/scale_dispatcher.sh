#!/usr/bin/env bash
# The dispatcher with many subscriptions: applies N subscriptions with 3 types each
# (3N consumers), starts `jetbridge dispatcher`, and reports the time until every
# consumer is active, the dispatcher's threads and resident memory (per subscription,
# against the same process with none), and the idle CPU of the dispatcher and of
# nats-server. Loopback only; its own nats-server and store.
#
# Usage: perf/scale_dispatcher.sh [N=2000] [BUILD_DIR=build/release]
set -euo pipefail
N=${1:-2000}
BUILD=${2:-build/release}
B=$BUILD/jetbridge
work=$(mktemp -d "${TMPDIR:-/tmp}/jb-scale-XXXXXX")
NP=$((20000 + RANDOM % 10000)); MP=$((NP + 1))
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

nats-server -js -a 127.0.0.1 -p "$NP" -sd "$work/store" >"$work/nats.log" 2>&1 &
NPID=$!; pids+=("$NPID")
export NATS_URL=nats://127.0.0.1:$NP METRICS_ADDR=127.0.0.1:$MP APP_LOG_LEVEL=warn
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$NP") 2>/dev/null && break; sleep 0.1; done

"$B" dispatcher >"$work/d0.log" 2>&1 &
D0=$!; pids+=("$D0")
sleep 2
rss0=$(awk '/VmRSS/{print $2}' /proc/$D0/status)
kill "$D0"; wait "$D0" 2>/dev/null || true

python3 - "$N" >"$work/subs.yaml" <<'PY'
import sys
n = int(sys.argv[1])
for i in range(n):
    print("---" if i else "", end="")
    print(f"""
apiVersion: eventing.kyma-project.io/v1alpha2
kind: Subscription
metadata: {{name: sub-{i}, namespace: scale}}
spec:
  sink: http://127.0.0.1:9/
  source: app{i % 50}
  types: [order.created.v{i}, order.updated.v{i}, order.deleted.v{i}]""")
PY
"$B" sub apply -f "$work/subs.yaml" >/dev/null

start=$(date +%s.%N)
"$B" dispatcher >"$work/d1.log" 2>&1 &
D1=$!; pids+=("$D1")
want=$((3 * N)); n=0
for _ in $(seq 600); do
    n=$(curl -s "http://127.0.0.1:$MP/metrics" | grep -c '^eventing_ec_subscription_status{' || true)
    [ "$n" -ge "$want" ] && break
    sleep 0.2
done
ready=$(echo "$(date +%s.%N) - $start" | bc)
sleep 15
t0=$(awk '{print $14+$15}' /proc/$D1/stat); n0=$(awk '{print $14+$15}' /proc/$NPID/stat)
sleep 10
t1=$(awk '{print $14+$15}' /proc/$D1/stat); n1=$(awk '{print $14+$15}' /proc/$NPID/stat)
rss=$(awk '/VmRSS/{print $2}' /proc/$D1/status)
thr=$(awk '/Threads/{print $2}' /proc/$D1/status)
echo "subscriptions: $N ($want consumers), active: $n after ${ready}s"
echo "dispatcher threads: $thr"
echo "dispatcher RSS: ${rss} KiB with them, ${rss0} KiB with none: $(( (rss - rss0) / N )) KiB per subscription"
echo "idle CPU (10 s): dispatcher $(( t1 - t0 ))%/10, nats-server $(( n1 - n0 ))%/10 of one core"
[ "$n" -ge "$want" ]
