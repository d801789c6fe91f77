#!/usr/bin/env bash
# Deterministic per-event counts of the dispatcher (no wall clock: for a shared machine).
# Starts its own nats-server and disp_sink, one subscription (maxInFlightMessages C),
# warms the dispatcher up with W events, then counts only while N more are delivered:
#   callgrind: instructions per event (all threads), and calls per event of
#              malloc/calloc/realloc/free and poll (valgrind --instr-atstart=no,
#              switched on and off with callgrind_control around the N events);
#   strace:    system calls per event (strace -c -f attached after the warm-up).
#   threads:   per thread of the dispatcher, while the N are delivered: CPU (µs per
#              event, from /proc/PID/task/TID/stat) and wake-ups (voluntary context
#              switches per event, /proc/PID/task/TID/status), each thread named by
#              the function at the bottom of its stack (gdb, after the count).
# Usage: perf/disp_counts.sh callgrind|strace|threads [N=2000] [C=64] [W=500]
# Env:   BUILD=build/release, KEEP=1 keeps the temp dir (callgrind.out for callgrind_annotate).
set -euo pipefail
MODE=${1:?callgrind or strace}
N=${2:-2000}
C=${3:-64}
W=${4:-500}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build/release}
TMP=$(mktemp -d /tmp/jb-disp-counts.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ ${KEEP:-0} == 1 ]] && echo "kept $TMP" || rm -rf "$TMP"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
sink_count() { curl -s "http://127.0.0.1:$SINK_PORT/stats" | awk '{print $1}'; }
wait_count() {
  for _ in $(seq 1 6000); do [[ $(sink_count) -ge $1 ]] && return 0; sleep 0.1; done
  echo "only $(sink_count) of $1 delivered" >&2; return 1
}
NATS_PORT=$(free_port); SINK_PORT=$(free_port); ADMIN_PORT=$(free_port)
export NATS_URL=nats://127.0.0.1:$NATS_PORT METRICS_ADDR=127.0.0.1:$ADMIN_PORT APP_LOG_LEVEL=warn
nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$TMP/nats" >"$TMP/nats.log" 2>&1 &
PIDS+=($!)
"$BUILD/disp_sink" "$SINK_PORT" &
PIDS+=($!)
wait_port "$NATS_PORT"; wait_port "$SINK_PORT"
"$BUILD/disp_load" apply "$NATS_URL" "http://127.0.0.1:$SINK_PORT/" "$C"
case $MODE in
callgrind)
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$TMP/callgrind.out" \
    "$BUILD/jetbridge" dispatcher >"$TMP/disp.log" 2>&1 &
  ;;
strace | threads) "$BUILD/jetbridge" dispatcher >"$TMP/disp.log" 2>&1 & ;;
*) echo "mode: callgrind, strace or threads" >&2; exit 2 ;;
esac
D=$!
PIDS+=($D)
"$BUILD/disp_load" wait "$NATS_URL"
"$BUILD/disp_load" publish "$NATS_URL" "$W" "warm-$$"
wait_count "$W"
curl -s "http://127.0.0.1:$SINK_PORT/reset" >/dev/null
# tid utime+stime(ticks) voluntary nonvoluntary, one line per thread of $D
thread_stats() {
  local t
  for t in /proc/"$D"/task/*; do
    echo "${t##*/} $(awk '{sub(/^.*\) /, ""); print $12 + $13}' "$t/stat") $(awk '/^voluntary_ctxt/ {v=$2} /^nonvoluntary_ctxt/ {n=$2} END {print v, n}' "$t/status")"
  done
}
if [[ $MODE == callgrind ]]; then
  callgrind_control -i on "$D" >/dev/null
elif [[ $MODE == threads ]]; then
  thread_stats >"$TMP/threads0"
else
  strace -c -f -p "$D" -o "$TMP/strace.txt" 2>/dev/null &
  S=$!
  sleep 1
fi
"$BUILD/disp_load" publish "$NATS_URL" "$N" "count-$$"
wait_count "$N"
if [[ $MODE == threads ]]; then
  thread_stats >"$TMP/threads1"
  # Which thread is which: the outermost function of jetbridge or nats.c on each
  # stack (start_thread, clone and nats.c's trampoline are below it); nats.c's own
  # threads run static functions, named here by their return address in libnats (the garbage collector of
  # nats.c 3.4.1 is the thread waiting at libnats+0x371c4).
  gdb -p "$D" -batch -ex 'thread apply all bt' >"$TMP/bt" 2>/dev/null || true
  cp "/proc/$D/maps" "$TMP/maps"
  kill -TERM "$D"; wait "$D" || true
  python3 - "$TMP" "$N" "$(getconf CLK_TCK)" <<'PY'
import re, sys
tmp, n, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
base = None
for line in open(f"{tmp}/maps"):
    if "libnats" in line and base is None:
        base = int(line.split("-")[0], 16)
names, tid, frames = {}, None, []
def close():
    if tid is None:
        return
    keep = [f for f in frames if not re.search(r"start_thread|clone|__libc_start|_start ", f)]
    if len(keep) > 1 and keep[-1].startswith("libnats+"):
        keep.pop()  # nats.c's thread trampoline: the function it runs is above it
    names[tid] = keep[-1] if keep else "?"
for line in open(f"{tmp}/bt"):
    m = re.match(r"Thread \d+ .*\(LWP (\d+)\)", line)
    if m:
        close()
        tid, frames = m.group(1), []
        continue
    m = re.match(r"#\d+ +(?:0x([0-9a-f]+) in )?(\S+)", line)
    if m and tid is not None:
        f = m.group(2)
        if f == "??" and m.group(1) and "libnats" in line and base is not None:
            f = f"libnats+{int(m.group(1), 16) - base:#x}"
        frames.append(f)
close()
def stats(path):
    return {l.split()[0]: [int(x) for x in l.split()[1:]] for l in open(path)}
t0, t1 = stats(f"{tmp}/threads0"), stats(f"{tmp}/threads1")
tot = [0, 0]
for t, (c, v, i) in sorted(t1.items()):
    c0, v0, i0 = t0.get(t, [0, 0, 0])
    name = names.get(t, "?")
    if name == "libnats+0x371c4":
        name = "nats.c GC (libnats+0x371c4)"
    tot[0] += c - c0; tot[1] += v - v0
    print(f"{t:<8} {name:<30} cpu {(c - c0) / hz * 1e6 / n:6.2f} us/event  "
          f"wake-ups {(v - v0) / n:7.4f}/event  preempted {(i - i0) / n:7.4f}/event")
print(f"{'all':<8} {'':<30} cpu {tot[0] / hz * 1e6 / n:6.2f} us/event  wake-ups {tot[1] / n:7.4f}/event")
PY
elif [[ $MODE == callgrind ]]; then
  callgrind_control -i off "$D" >/dev/null
  kill -TERM "$D"; wait "$D" || true
  python3 - "$TMP/callgrind.out" "$N" <<'PY'
import re, sys
path, n = sys.argv[1], int(sys.argv[2])
names, calls, total = {}, {}, 0
cur_cfn = None
want = ("malloc", "calloc", "realloc", "free", "poll", "__poll")
summary = None
with open(path) as f:
    for line in f:
        m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line)
        if m:
            if m.group(2):
                names[m.group(1)] = m.group(2).strip()
            if line.startswith("cfn="):
                cur_cfn = names.get(m.group(1))
            continue
        if line.startswith("calls="):
            if cur_cfn in want:
                calls[cur_cfn] = calls.get(cur_cfn, 0) + int(line.split()[0][6:])
            continue
        if line.startswith("summary:") or line.startswith("totals:"):
            summary = int(line.split()[1])
print(f"events {n}")
print(f"instructions/event {summary / n:.0f}")
for k in want:
    if k in calls:
        print(f"{k}/event {calls[k] / n:.2f}")
allocs = sum(calls.get(k, 0) for k in ("malloc", "calloc", "realloc"))
print(f"allocations/event {allocs / n:.2f}")
PY
else
  kill -INT "$S"; wait "$S" || true
  kill -TERM "$D"; wait "$D" || true
  awk -v n="$N" '$1 ~ /^[0-9.]+$/ && NF >= 5 {name = $NF == "total" ? "all" : $NF; printf "%-16s %6.2f/event\n", name, $4 / n}' "$TMP/strace.txt"
fi
