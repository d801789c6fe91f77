#!/usr/bin/env bash
# Dispatcher benchmark, in one run:
#  (a) raw nats.c pull-fetch-ack of N pre-stored events (the NATS ceiling),
#  (b) raw libcurl multi posting N requests to the same trivial sink (the HTTP ceiling),
#  (c) `jetbridge dispatcher` delivering N pre-stored events to that sink, at the
#      default (DISPATCH_PREFETCH=0, its own HTTP/1.1 client), (c curl) with
#      SINK_HTTP_CLIENT=curl, and, (c+), with DISPATCH_PREFETCH=PREFETCH,
#  (e) the dispatcher alone at fixed rates (LAT_RATES): events stored straight into
#      the stream by `disp_e2e` (JetStream publishes with acks), latency from the
#      publish to arrival at disp_e2e's own sink,
#  (d) end to end: `jetbridge publisher` + `jetbridge dispatcher`, events POSTed at
#      fixed rates (E2E_RATES) for E2E_SECONDS, latency from POST to arrival at the sink,
#  (g) with SLOW_MS set: the dispatcher delivering N pre-stored events to a sink that
#      answers each POST SLOW_MS ms after it arrived: at most C / SLOW_MS events/s
#      can be delivered (C in flight), so dispatcher/ideal shows the time the
#      window's slots wait for messages (the pull cycle), not CPU,
#  (e0), (d0) the floor under (e) and (d) (FLOOR=0 skips them): `hop_chain`, records
#      sent at the same rate and for as long through as many relay processes as the
#      measured path has (2 for (e): nats-server, dispatcher; 3 for (d): publisher,
#      nats-server, dispatcher), each relay forwarding at once and answering with an
#      ack, doing nothing else: what the machine's scheduler alone adds to the
#      hops, and (e)/(d) p99 over it; after each (e) and (d) run, the CPU that
#      nats-server, the publisher, the dispatcher and the generator spent per event
#      meanwhile and how many cores they kept busy together,
#  (f) with LOOPS set: for each loop count L in LOOPS, the dispatcher with
#      DISPATCH_LOOPS=L delivering N pre-stored events spread over TYPES consumers
#      (one subscription with TYPES types, maxInFlightMessages C each).
# Prints events/s of each, dispatcher/ceiling with ceiling = 1/(1/a + 1/b) (both
# settings), the dispatcher's CPU time per event and its peak RSS, and p50/p90/p99
# latency of (e) and (d). Beside (a), (b) and (c): the CPU per event nats-server
# ("watched" of (a)) and the sink ("watched" of (b)) spent meanwhile, and for (c)
# both of theirs and how many of the cores the three processes kept busy. (c) waits
# for the sink's N-th delivery with one request (GET /wait?n=N), not by polling.
#
# Usage: perf/bench_dispatcher.sh [N] [C]      (defaults N=20000, C=64 in flight)
# Env:   BUILD=build/perf (built RelWithDebInfo if missing), ROUNDS=3, PREFETCH=64
#        (0 skips (c+)), CURL_AB=1 (0 skips (c curl)), LAT_RATES="1000 10000", LAT_SECONDS=5 (0 skips (e)),
#        E2E_RATES="1000 10000" (RATE=R: just R), E2E_SECONDS=10 (0 skips (d)),
#        FLOOR=1 (0 skips (e0) and (d0)), LAT_RUNS=3 (each (e) and (d) rate runs that
#        many times after its floor, and their p99s and median are printed),
#        SCRAPE_MS=1000 (during (e) and (d) the processes' /metrics are scraped this
#        often, perf/scrape.sh, and their peak RSS over the runs printed; 0: no scraping),
#        LOOPS="1 2" runs (f) for those loop counts (unset: no (f)), TYPES=8,
#        SLOW_MS=20 runs (g) with that sink delay (unset: no (g)),
#        NATS_GOGC, NATS_GOMEMLIMIT (nats-server's GOGC and GOMEMLIMIT; unset: Go's
#        defaults), KEEP=1 keeps the temp dir, E2E_WARM_MS=1000 (the later p99 that (e) and (d)
#        also print leaves out the events sent in the first E2E_WARM_MS: the start
#        from idle), E2E_WINDOW_MS=100 makes (e) and (d) print a line
#        per 100 ms of each run to stderr (latency by send time; deliveries and new
#        sink connections by arrival: how a run ramps up). (f) alone:
#        ROUNDS=0 LAT_SECONDS=0 E2E_SECONDS=0 LOOPS="1 2" perf/bench_dispatcher.sh
set -euo pipefail

N=${1:-20000}
C=${2:-64}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build/perf}

if [[ ! -x $BUILD/jetbridge || ! -x $BUILD/raw_fetch || ! -x $BUILD/disp_e2e ]]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJB_TESTS=OFF >/dev/null
  cmake --build "$BUILD" -j2 --target jetbridge raw_fetch raw_curl disp_sink disp_load disp_e2e hop_chain >/dev/null
fi
[[ -x $BUILD/hop_chain ]] || cmake --build "$BUILD" --target hop_chain >/dev/null

# The floor under a latency run: hop_chain RATE SECONDS HOPS, printed as (TAG), its p99
# into FLOOR_P99 (empty with FLOOR=0).
FLOOR_P99=
floor_run() {
  FLOOR_P99=
  [[ ${FLOOR:-1} == 0 ]] && return 0
  local line s0
  steal_ticks
  s0=$STEAL
  line=$("$BUILD/hop_chain" "$2" "$3" "$4" || true)
  read -r _ _ _ FR FP50 FP90 FP99 FMAX _ FWP99 _ <<<"$line"
  echo "($1) floor, $4 relay processes at $2 ev/s for ${3}s: received $FR; latency p50 ${FP50} ms, p90 ${FP90} ms, p99 ${FP99} ms, max ${FMAX} ms; after the first ${E2E_WARM_MS:-1000} ms: p99 ${FWP99} ms$(steal_since "$s0")"
  FLOOR_P99=$FP99
}
# The machine's steal time so far (/proc/stat, all CPUs, in ticks) into STEAL: time the
# host gave to others while this VM's vCPUs wanted to run. A latency run during which
# the host took ~100 ms has a p99 of that order whatever ran in it.
steal_ticks() {
  local _cpu _u _n _s _i _w _q _sq st _rest
  read -r _cpu _u _n _s _i _w _q _sq st _rest </proc/stat
  STEAL=${st:-0}
}
# "; the host took X ms (steal)" since the steal ticks $1, when it took any.
steal_since() {
  steal_ticks
  local ms=$(((STEAL - $1) * 1000 / $(getconf CLK_TCK)))
  [[ $ms -gt 0 ]] && echo "; the host took $ms ms of the vCPUs meanwhile (steal)"
  return 0
}
# Before a latency run: the CPU ticks of the processes $@ (into CPU_PIDS, CPU_T0) and
# the wall clock.
cpu_start() {
  CPU_PIDS=("$@")
  CPU_T0=()
  for p in "${CPU_PIDS[@]}"; do
    ticks_now "$p"
    CPU_T0+=("$TICKS")
  done
  CPU_W0=$EPOCHREALTIME
  steal_ticks
  CPU_S0=$STEAL
}
# After it: "(TAG) CPU meanwhile: NAME X us/event, ..., the generator Y us/event; all
# together Z of the N cores" for TAG $1, EVENTS $2, the generator's own CPU seconds $3
# and names $4.. of CPU_PIDS, then the host's steal time meanwhile when there was any.
# Each process's own figures (/proc/PID/stat, getrusage):
# on this VM /proc/stat's machine-wide busy time misses most of the short wake-ups.
cpu_report() {
  local tag=$1 events=$2 gen=$3 i args=()
  shift 3
  for ((i = 0; i < ${#CPU_PIDS[@]}; i++)); do
    ticks_now "${CPU_PIDS[$i]}"
    args+=("$1" "$((TICKS - CPU_T0[i]))")
    shift
  done
  python3 - "$tag" "$events" "${gen:-0}" "$(getconf CLK_TCK)" "$CPU_W0" "$EPOCHREALTIME" "$(nproc)" "${args[@]}" <<'PY'
import sys
tag, events, gen, hz, w0, w1, cores = sys.argv[1:8]
events, gen, hz = int(events), float(gen), int(hz)
rest = sys.argv[8:]
parts, total = [], gen
for name, ticks in zip(rest[0::2], rest[1::2]):
    sec = int(ticks) / hz
    total += sec
    parts.append(f"{name} {sec * 1e6 / events:.0f} us/event")
wall = float(w1) - float(w0)
print(f"({tag}) CPU meanwhile: {', '.join(parts)}, the generator (sender and sink) "
      f"{gen * 1e6 / events:.0f} us/event; all together {total / wall:.2f} of the {cores} cores", end="")
PY
  steal_since "$CPU_S0"
  echo
}
# " in X s" after a latency run's sent count: how long its generator took to send $1
# events (seconds $2, disp_e2e's last field) at rate $3, and the rate it reached when it
# fell behind (then each event is timed from when it left, later than it was due, and
# the run measured a lower rate than its label).
sent_in() {
  awk -v n="$1" -v s="${2:-0}" -v want="$3" 'BEGIN {
    if (s <= 0) exit
    printf " in %.2f s", s
    if (n / s < want * 0.98) printf " (%.0f ev/s: the generator fell behind the rate)", n / s
  }'
}
# "(e) peak RSS ..." after the runs of (e) or (d) ($1), for each pid and name that
# follow: the processes' VmHWM over all those runs, during which their /metrics
# were scraped (SCRAPES, SCRAPE_BYTES from scrape_stop).
peak_rss_line() {
  local k=$1 out=""
  shift
  while [[ $# -ge 2 ]]; do
    out+="${out:+, }$2 $(peak_rss_mib "$1") MiB"
    shift 2
  done
  echo "($k) peak RSS over its runs: $out; /metrics scraped $SCRAPES times meanwhile (largest answer $SCRAPE_BYTES bytes)"
}
# ", run I of N" in a latency line when LAT_RUNS > 1.
run_of() {
  [[ $2 -gt 1 ]] && echo ", run $1 of $2"
  return 0
}
# The p99 of every run of (e) or (d) at one rate ($1 e|d, $2 the rate, then the
# p99s, as disp_e2e printed them) and their median (median(), below, as for the
# rounds), when there was more than one.
runs_median() {
  local k=$1 r=$2 each
  shift 2
  [[ $# -gt 1 ]] || return 0
  each=$(printf ' / %s' "$@")
  echo "($k) at $r ev/s, p99 per run: ${each:3} ms; median: $(median "$@") ms"
}
# The LAT_RUNS runs of (e) or (d) ($1) at rate $2 for $3 s each: disp_e2e sends to $4
# (the stream's NATS URL for (e), the publisher's /publish for (d)) and is the sink on
# port $5; the processes measured beside nats-server follow as PID NAME pairs. For
# each run its latency line (with the store's own answer times: no event reaches the
# sink before it is stored) and its CPU line; then the median of the runs' p99s.
latency_runs() {
  local k=$1 r=$2 secs=$3 url=$4 port=$5 line what sent_as errs_as
  shift 5
  local pids=() names=()
  while [[ $# -ge 2 ]]; do
    pids+=("$1")
    names+=("$2")
    shift 2
  done
  if [[ $k == e ]]; then
    what="dispatcher alone" sent_as=stored errs_as="store errors"
  else
    what="end to end" sent_as=sent errs_as="publish errors"
  fi
  local p99s=() run
  for run in $(seq 1 "$LAT_RUNS"); do
    cpu_start "$NATS_PID" "${pids[@]}"
    line=$("$BUILD/disp_e2e" "$url" "$port" "$r" "$secs" || true)
    read -r _ LR SENT RECV P50 P90 P99 MAX ERRS WP99 WN GCPU SENDS SP50 SP99 <<<"$line"
    local cpu_line
    cpu_line=$(cpu_report "$k" "$((r * secs))" "$GCPU" nats-server "${names[@]}")
    echo "($k) $what at $LR ev/s for ${secs}s$(run_of "$run" "$LAT_RUNS"): $sent_as $SENT$(sent_in "$SENT" "$SENDS" "$r"), received $RECV, $errs_as $ERRS; latency p50 ${P50} ms, p90 ${P90} ms, p99 ${P99} ms, max ${MAX} ms; after the first ${E2E_WARM_MS:-1000} ms: p99 ${WP99} ms (${WN} events)$(over_floor "$P99"); each event's store (its publish to the answer): p50 ${SP50} ms, p99 ${SP99} ms"
    echo "$cpu_line"
    p99s+=("$P99")
  done
  runs_median "$k" "$r" "${p99s[@]}"
}
# "; p99 X x the floor" after a latency line, when the floor ran.
over_floor() {
  [[ -n $FLOOR_P99 ]] || return 0
  python3 -c "import sys; f=float(sys.argv[2]); print(f'; p99 {float(sys.argv[1])/f:.2f} x the floor' if f > 0 else '')" "$1" "$FLOOR_P99"
}

# shellcheck source=perf/scrape.sh
. "$ROOT/perf/scrape.sh"

TMP=$(mktemp -d /tmp/jb-bench-disp.XXXXXX)
PIDS=()
cleanup() {
  scrape_abort
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ ${KEEP:-0} == 1 ]] || rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
# The CPU ticks (user + system) of process $1, into TICKS, with shell builtins only:
# read while (c) runs, where a new process would take CPU from what is measured.
ticks_now() {
  local line
  read -r line <"/proc/$1/stat"
  # shellcheck disable=SC2086  # the fields after "pid (comm) " are wanted split
  set -- ${line##*) }
  TICKS=$((${12} + ${13}))
}
# GET PATH from the sink with bash's /dev/tcp, into SINK_BODY ("count first last";
# empty when the sink did not answer within 120 s, as curl --max-time 120 below).
sink_get() {
  local line
  exec 3<>"/dev/tcp/127.0.0.1/$SINK_PORT"
  printf 'GET %s HTTP/1.0\r\n\r\n' "$1" >&3
  SINK_BODY=
  while IFS= read -r -t 120 line <&3; do SINK_BODY=$line; done
  exec 3<&-
}
# Stores N events (ids PREFIX-i, over TYPES types; "" for the one bench type), starts
# the dispatcher with the environment assignments that follow LOG, waits until the
# sink has all N, and stops it. Sets COUNT FIRST LAST (the sink's clock), and the
# dispatcher's CPU_TICKS, HWM_KB and THREADS, and the ticks nats-server (NATS_TICKS)
# and the sink (SINK_TICKS) spent from the dispatcher's start to the last delivery.
deliver_stored() {
  local prefix=$1 types=$2 log=$3 d _
  shift 3
  "$BUILD/disp_load" publish "$NATS_URL" "$N" "$prefix" ${types:+"$types"}
  curl -s "http://127.0.0.1:$SINK_PORT/reset" >/dev/null
  local n0 s0
  ticks_now "$NATS_PID"
  n0=$TICKS
  ticks_now "$SINK_PID"
  s0=$TICKS
  env "$@" "$BUILD/jetbridge" dispatcher >"$log" 2>&1 &
  d=$!
  # The dispatcher's CPU from its first delivery on, without its start-up: its ticks
  # once the sink has one event, and the sink's count read after them (so that the
  # events counted are never more than the CPU read covers).
  sink_get "/wait?n=1"
  ticks_now "$d"
  local t1=$TICKS
  sink_get /stats
  read -r C1 _ <<<"$SINK_BODY"
  C1=${C1:-0}
  # One request that the sink answers at the N-th delivery: polling with a curl
  # process every 50 ms took about half a core from the dispatcher's 2 (each curl
  # start costs ~20 ms of CPU), which (a) and (b) never paid.
  curl -s --max-time 120 "http://127.0.0.1:$SINK_PORT/wait?n=$N" >/dev/null || true
  read -r COUNT FIRST LAST < <(curl -s "http://127.0.0.1:$SINK_PORT/stats")
  ticks_now "$d"
  CPU_TICKS=$TICKS
  RUN_TICKS=$((CPU_TICKS - t1))
  ticks_now "$NATS_PID"
  NATS_TICKS=$((TICKS - n0))
  ticks_now "$SINK_PID"
  SINK_TICKS=$((TICKS - s0))
  HWM_KB=$(peak_rss_kib "$d")
  THREADS=$(awk '/^Threads:/ {print $2}' "/proc/$d/status")
  kill -TERM "$d"; wait "$d" || true
}

NATS_PORT=$(free_port)
SINK_PORT=$(free_port)
ADMIN_PORT=$(free_port)
NATS_URL=nats://127.0.0.1:$NATS_PORT
SINK_URL=http://127.0.0.1:$SINK_PORT/

# NATS_GOGC and NATS_GOMEMLIMIT, when set, become nats-server's GOGC and GOMEMLIMIT (its
# Go collector's settings; unset: Go's defaults, as a nats-server started without them).
nats_env=()
[[ -n ${NATS_GOGC:-} ]] && nats_env+=("GOGC=$NATS_GOGC")
[[ -n ${NATS_GOMEMLIMIT:-} ]] && nats_env+=("GOMEMLIMIT=$NATS_GOMEMLIMIT")
env "${nats_env[@]}" nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$TMP/nats" >"$TMP/nats.log" 2>&1 &
NATS_PID=$!
PIDS+=($NATS_PID)
"$BUILD/disp_sink" "$SINK_PORT" &
SINK_PID=$!
PIDS+=($SINK_PID)
wait_port "$NATS_PORT"
wait_port "$SINK_PORT"

echo "N=$N in-flight=$C  (nats-server $(nats-server --version | awk '{print $2}')${nats_env:+ with ${nats_env[*]}}, $(nproc) cores)"

ROUNDS=${ROUNDS:-3}
export NATS_URL METRICS_ADDR=127.0.0.1:$ADMIN_PORT APP_LOG_LEVEL=warn
# The dispatcher's consumer is created once: start, wait for it, stop.
"$BUILD/disp_load" apply "$NATS_URL" "$SINK_URL" "$C"
"$BUILD/jetbridge" dispatcher >"$TMP/disp0.log" 2>&1 &
D=$!
"$BUILD/disp_load" wait "$NATS_URL"
kill -TERM "$D"; wait "$D" || true

RATIOS=()
PF_RATIOS=()
CURL_RATIOS=()
CURL_RUNCPUS=()
RUNCPUS=()
CPURATIOS=()
for ROUND in $(seq 1 "$ROUNDS"); do
echo "-- round $ROUND"
# (a) NATS ceiling
A_LINE=$(BENCH_WATCH_PID=$NATS_PID "$BUILD/raw_fetch" "$NATS_URL" "$N" "$C")
echo "(a) $A_LINE"
A=$(awk '{print $4}' <<<"$A_LINE")
A_CPU=$(awk '{print $5}' <<<"$A_LINE")

# (b) HTTP ceiling
B_LINE=$(BENCH_WATCH_PID=$SINK_PID "$BUILD/raw_curl" "$SINK_URL" "$N" "$C")
echo "(b) $B_LINE"
B=$(awk '{print $4}' <<<"$B_LINE")
B_CPU=$(awk '{print $5}' <<<"$B_LINE")

# (c) the dispatcher on N pre-stored events; (c curl) the same with
# SINK_HTTP_CLIENT=curl; (c+) with DISPATCH_PREFETCH
VARIANTS="0"
[[ ${CURL_AB:-1} == 1 ]] && VARIANTS="$VARIANTS curl"
[[ ${PREFETCH:-64} != 0 ]] && VARIANTS="$VARIANTS ${PREFETCH:-64}"
for V in $VARIANTS; do
PF=$V
CLIENT=builtin
if [[ $V == curl ]]; then PF=0; CLIENT=curl; echo "(c curl) SINK_HTTP_CLIENT=curl"; fi
if [[ $PF != 0 ]]; then echo "(c+) DISPATCH_PREFETCH=$PF"; fi
deliver_stored "r$ROUND-p$V-$$" "" "$TMP/disp$ROUND-$V.log" DISPATCH_PREFETCH="$PF" SINK_HTTP_CLIENT="$CLIENT"

python3 - "$A" "$B" "$N" "$COUNT" "$FIRST" "$LAST" "$CPU_TICKS" "$(getconf CLK_TCK)" "$HWM_KB" "$NATS_TICKS" "$SINK_TICKS" "$RUN_TICKS" "$C1" "$A_CPU" "$B_CPU" 2>"$TMP/ratio.raw" <<'PY'
import sys
a, b, n, count, first, last, ticks, hz, hwm, nticks, sticks, rticks, c1, acpu, bcpu = sys.argv[1:]
a, b, n, count = float(a), float(b), int(n), int(count)
secs = (int(last) - int(first)) / 1e9 if count > 1 else float("nan")
c = (count - 1) / secs if count > 1 else 0.0
ceiling = 1.0 / (1.0 / a + 1.0 / b)
cpu_us = int(ticks) / int(hz) * 1e6 / max(count, 1)
print(f"(c) dispatcher {count} {secs:.3f} {c:.0f}  (sink clock: first to last delivery)")
print(f"ceiling = 1/(1/a+1/b) = {ceiling:.0f} events/s")
print(f"dispatcher/ceiling = {c / ceiling:.2f}")
print(f"RATIO {c / ceiling:.2f}", file=sys.stderr)
print(f"dispatcher CPU = {cpu_us:.1f} us/event (whole process, start-up included)")
if count > int(c1):
    run_us = int(rticks) / int(hz) * 1e6 / (count - int(c1))
    print(f"dispatcher CPU while delivering = {run_us:.1f} us/event "
          f"(whole process, {count - int(c1)} events from the first delivery on)")
    print(f"RUNCPU {run_us:.1f}", file=sys.stderr)
    # The same round's raw clients, one NATS operation and one HTTP request per
    # event each: what the machine charged for the work the dispatcher composes.
    raw = float(acpu) + float(bcpu)
    if raw > 0:
        print(f"dispatcher CPU while delivering / (raw fetch + raw curl CPU, "
              f"{float(acpu):.1f} + {float(bcpu):.1f} us) = {run_us / raw:.2f}")
        print(f"CPURATIO {run_us / raw:.2f}", file=sys.stderr)
per = 1e6 / int(hz) / max(count, 1)
print(f"meanwhile nats-server {int(nticks) * per:.1f} us/event, sink {int(sticks) * per:.1f} us/event; "
      f"the three together {(int(ticks) + int(nticks) + int(sticks)) / int(hz) / secs:.2f} cores busy (start-up included)")
print(f"dispatcher peak RSS = {int(hwm) / 1024:.1f} MiB")
if count < n:
    print(f"WARNING: only {count} of {n} delivered")
    sys.exit(1)
PY
sed -n 's/^RATIO //p' "$TMP/ratio.raw" >"$TMP/ratio"
RUNCPU=$(sed -n 's/^RUNCPU //p' "$TMP/ratio.raw")
CPURATIO=$(sed -n 's/^CPURATIO //p' "$TMP/ratio.raw")
if [[ $V == curl ]]; then
  CURL_RATIOS+=("$(tail -1 "$TMP/ratio")")
  if [[ -n $RUNCPU ]]; then CURL_RUNCPUS+=("$RUNCPU"); fi
elif [[ $PF == 0 ]]; then
  RATIOS+=("$(tail -1 "$TMP/ratio")")
  if [[ -n $RUNCPU ]]; then RUNCPUS+=("$RUNCPU"); fi
  if [[ -n $CPURATIO ]]; then CPURATIOS+=("$CPURATIO"); fi
else
  PF_RATIOS+=("$(tail -1 "$TMP/ratio")")
fi
done
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
if [[ ${#RATIOS[@]} -gt 0 ]]; then
  echo "dispatcher/ceiling per round: ${RATIOS[*]}; median: $(median "${RATIOS[@]}")"
fi
if [[ ${#CURL_RATIOS[@]} -gt 0 ]]; then
  echo "dispatcher/ceiling with SINK_HTTP_CLIENT=curl per round: ${CURL_RATIOS[*]}; median: $(median "${CURL_RATIOS[@]}")"
fi
if [[ ${#CURL_RUNCPUS[@]} -gt 0 ]]; then
  echo "dispatcher CPU while delivering with SINK_HTTP_CLIENT=curl per round: ${CURL_RUNCPUS[*]} us/event; median: $(median "${CURL_RUNCPUS[@]}")"
fi
if [[ ${#PF_RATIOS[@]} -gt 0 ]]; then
  echo "dispatcher/ceiling with DISPATCH_PREFETCH=${PREFETCH:-64} per round: ${PF_RATIOS[*]}; median: $(median "${PF_RATIOS[@]}")"
fi
if [[ ${#RUNCPUS[@]} -gt 0 ]]; then
  echo "dispatcher CPU while delivering per round: ${RUNCPUS[*]} us/event; median: $(median "${RUNCPUS[@]}")"
fi
if [[ ${#CPURATIOS[@]} -gt 0 ]]; then
  echo "dispatcher CPU / raw clients' CPU per round: ${CPURATIOS[*]}; median: $(median "${CPURATIOS[@]}")"
fi

# (f) the loop count: N events over TYPES consumers, DISPATCH_LOOPS=L for each L.
if [[ -n ${LOOPS:-} ]]; then
  TYPES=${TYPES:-8}
  "$BUILD/disp_load" apply "$NATS_URL" "$SINK_URL" "$C" "$TYPES"
  "$BUILD/jetbridge" dispatcher >"$TMP/disp_loops0.log" 2>&1 &
  D=$!
  "$BUILD/disp_load" wait "$NATS_URL" "$TYPES"
  kill -TERM "$D"; wait "$D" || true
  for L in $LOOPS; do
    deliver_stored "loops$L-$$" "$TYPES" "$TMP/disp_loops$L.log" DISPATCH_LOOPS="$L"
    python3 - "$L" "$TYPES" "$N" "$COUNT" "$FIRST" "$LAST" "$CPU_TICKS" "$(getconf CLK_TCK)" "$THREADS" <<'PY'
import sys
l, k, n, count, first, last, ticks, hz, threads = sys.argv[1:]
n, count = int(n), int(count)
secs = (int(last) - int(first)) / 1e9 if count > 1 else float("nan")
rate = (count - 1) / secs if count > 1 else 0.0
cpu_us = int(ticks) / int(hz) * 1e6 / max(count, 1)
print(f"(f) DISPATCH_LOOPS={l}: {count} events over {k} consumers in {secs:.3f} s = {rate:.0f} events/s; "
      f"CPU {cpu_us:.1f} us/event (whole process); {threads} threads")
if count < n:
    print(f"WARNING: only {count} of {n} delivered")
PY
  done
fi

# (g) a slow sink: the same N, each POST answered SLOW_MS ms after it arrived.
if [[ ${SLOW_MS:-0} != 0 ]]; then
  SLOW_PORT=$(free_port)
  "$BUILD/disp_sink" "$SLOW_PORT" "$SLOW_MS" &
  SLOW_PID=$!
  PIDS+=($SLOW_PID)
  wait_port "$SLOW_PORT"
  "$BUILD/disp_load" apply "$NATS_URL" "http://127.0.0.1:$SLOW_PORT/" "$C"
  FAST_PORT=$SINK_PORT FAST_PID=$SINK_PID
  SINK_PORT=$SLOW_PORT SINK_PID=$SLOW_PID
  for PF in 0 ${PREFETCH:-64}; do
    deliver_stored "slow-p$PF-$$" "" "$TMP/disp_slow$PF.log" DISPATCH_PREFETCH="$PF"
    python3 - "$SLOW_MS" "$C" "$PF" "$N" "$COUNT" "$FIRST" "$LAST" <<'PY'
import sys
ms, c, pf, n, count, first, last = (int(v) for v in sys.argv[1:])
secs = (last - first) / 1e9 if count > 1 else float("nan")
rate = (count - 1) / secs if count > 1 else 0.0
ideal = c * 1000.0 / ms
print(f"(g) slow sink ({ms} ms a POST), DISPATCH_PREFETCH={pf}: {count} in {secs:.3f} s = {rate:.0f} events/s; "
      f"ideal {c} in flight / {ms} ms = {ideal:.0f}; dispatcher/ideal = {rate / ideal:.2f}")
if count < n:
    print(f"WARNING: only {count} of {n} delivered")
PY
    [[ ${PREFETCH:-64} == 0 ]] && break
  done
  SINK_PORT=$FAST_PORT SINK_PID=$FAST_PID
  kill "$SLOW_PID" 2>/dev/null || true
fi

# (e) the dispatcher alone at fixed rates: disp_e2e stores the events straight into
# the stream, the dispatcher delivers them to disp_e2e's own sink.
LAT_SECONDS=${LAT_SECONDS:-5}
LAT_RUNS=${LAT_RUNS:-3}
if [[ $LAT_SECONDS -gt 0 ]]; then
  LAT_PORT=$(free_port)
  "$BUILD/disp_load" apply "$NATS_URL" "http://127.0.0.1:$LAT_PORT/" "$C"
  "$BUILD/jetbridge" dispatcher >"$TMP/disp_lat.log" 2>&1 &
  LD=$!
  PIDS+=($LD)
  sleep 1 # the dispatcher's reconciler applies the new sink
  scrape_start "$ADMIN_PORT"
  for R in ${LAT_RATES:-1000 10000}; do
    floor_run e0 "$R" "$LAT_SECONDS" 2
    latency_runs e "$R" "$LAT_SECONDS" "$NATS_URL" "$LAT_PORT" "$LD" dispatcher
  done
  scrape_stop
  peak_rss_line e "$LD" dispatcher
  kill -TERM "$LD"; wait "$LD" || true
fi

# (d) end to end at a fixed rate: publisher and dispatcher as two processes.
E2E_SECONDS=${E2E_SECONDS:-10}
E2E_RATES=${E2E_RATES:-${RATE:-1000 10000}}
if [[ $E2E_SECONDS -gt 0 ]]; then
  E2E_PORT=$(free_port)
  INGRESS=$(free_port)
  "$BUILD/disp_load" apply "$NATS_URL" "http://127.0.0.1:$E2E_PORT/" "$C"
  PUB_ADMIN=$(free_port)
  METRICS_ADDR=127.0.0.1:$PUB_ADMIN INGRESS_PORT=$INGRESS "$BUILD/jetbridge" publisher >"$TMP/pub.log" 2>&1 &
  E2E_PUB=$!
  PIDS+=($E2E_PUB)
  "$BUILD/jetbridge" dispatcher >"$TMP/disp_e2e.log" 2>&1 &
  E2E_DISP=$!
  PIDS+=($E2E_DISP)
  wait_port "$INGRESS"
  sleep 1 # the dispatcher's reconciler applies the new sink
  scrape_start "$PUB_ADMIN" "$ADMIN_PORT"
  for R in $E2E_RATES; do
    floor_run d0 "$R" "$E2E_SECONDS" 3
    latency_runs d "$R" "$E2E_SECONDS" "http://127.0.0.1:$INGRESS/publish" "$E2E_PORT" \
      "$E2E_PUB" publisher "$E2E_DISP" dispatcher
  done
  scrape_stop
  peak_rss_line d "$E2E_PUB" publisher "$E2E_DISP" dispatcher
fi
echo "nats-server peak RSS over the whole run: $(peak_rss_mib "$NATS_PID") MiB"
