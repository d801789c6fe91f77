#!/usr/bin/env bash
# Publisher benchmark: in one run, on this machine, with the same load tool (wrk),
# payload and connection count, measures
#   (a) perf/trivial_http: a libevent server that reads the body and answers 204,
#   (b) perf/raw_nats_pub: nats.c publishing the identical message asynchronously
#       into the identical stream (in-flight window = connection count),
#   (c) `jetbridge publisher` in binary and structured mode,
# at each payload size, and prints events/s, p50/p99 latency, peak RSS and the
# ratios publisher/(a), publisher/(b), publisher/ceiling, ceiling = 1/(1/a + 1/b).
#
# Usage: perf/bench_publisher.sh [BUILD_DIR]     (default build/rel; build it with
#   cmake -S . -B build/rel -DCMAKE_BUILD_TYPE=Release && cmake --build build/rel)
# Knobs (environment): DUR=5 (seconds per run), CONNS=64, SIZES="256 1024 16384",
#   THREADS=2 (publisher and trivial server threads), RETENTION=limits (every event
#   is really stored; "interest" stores nothing while no consumer exists).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/rel}
DUR=${DUR:-5}
CONNS=${CONNS:-64}
SIZES=${SIZES:-"256 1024 16384"}
THREADS=${THREADS:-2}
RETENTION=${RETENTION:-limits}
# Room for every event of a run (16 KiB x 10k/s x DUR): a full stream would turn
# the run into a measurement of 507s.
export JS_STREAM_MAX_BYTES=${JS_STREAM_MAX_BYTES:-8Gi}
for exe in "$build/jetbridge" "$build/trivial_http" "$build/raw_nats_pub"; do
  [ -x "$exe" ] || { echo "missing $exe: build $build first" >&2; exit 2; }
done
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
command -v nats-server >/dev/null || { echo "nats-server is not installed" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# A fresh nats-server -js per measurement, so every run starts from an empty store.
start_nats() {
  NPORT=$(free_port)
  rm -rf "$work/js"
  nats-server -js -a 127.0.0.1 -p "$NPORT" -sd "$work/js" >"$work/nats.log" 2>&1 &
  NPID=$!; pids+=("$NPID")
  wait_port "$NPORT"
}

cat >"$work/binary.lua" <<'EOF'
local body, tag, n
function init(args) body = string.rep("x", tonumber(args[1])); tag = args[2]; n = 0 end
function request()
  n = n + 1
  return wrk.format("POST", "/publish", {["ce-specversion"] = "1.0", ["ce-id"] = n .. "-" .. tag,
    ["ce-source"] = "bench", ["ce-type"] = "order.created.v1", ["Content-Type"] = "text/plain"}, body)
end
EOF
cat >"$work/structured.lua" <<'EOF'
local data, tag, n
function init(args) data = string.rep("x", tonumber(args[1])); tag = args[2]; n = 0 end
function request()
  n = n + 1
  local b = '{"specversion":"1.0","id":"' .. n .. '-' .. tag .. '","source":"bench",' ..
    '"type":"order.created.v1","datacontenttype":"text/plain","data":"' .. data .. '"}'
  return wrk.format("POST", "/publish", {["Content-Type"] = "application/cloudevents+json"}, b)
end
EOF

# wrk output -> "rps p50_ms p99_ms non2xx"
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 }
  else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 } else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000 }
  else print v }'; }
run_wrk() { # port lua size
  local out; out=$(wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -s "$2" "http://127.0.0.1:$1/publish" -- "$3" "$RANDOM$RANDOM")
  echo "$out" >>"$work/wrk.log"
  local rps p50 p99 bad
  rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
  p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")
  p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
  bad=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  echo "$rps $p50 $p99 ${bad:-0}"
}

printf '%-6s %-11s %10s %8s %8s %8s %7s %7s %9s %s\n' size run events/s p50_ms p99_ms rss_MiB "/(a)" "/(b)" /ceiling notes
results=()
for size in $SIZES; do
  # (a) trivial libevent server
  port=$(free_port)
  "$build/trivial_http" "$port" "$THREADS" & tp=$!; pids+=("$tp")
  wait_port "$port"
  read -r a a50 a99 abad < <(run_wrk "$port" "$work/binary.lua" "$size")
  arss=$(peak_rss_kib "$tp"); stop_pid "$tp"
  printf '%-6s %-11s %10.0f %8.2f %8.2f %8.1f %7s %7s %9s %s\n' "$size" "trivial(a)" "$a" "$a50" "$a99" \
    "$(awk -v k="$arss" 'BEGIN{print k/1024}')" - - - "non2xx=$abad"

  # (b) raw nats.c async publishing
  start_nats
  read -r bline < <(NATS_URL="nats://127.0.0.1:$NPORT" JS_STREAM_RETENTION_POLICY="$RETENTION" \
    "$build/raw_nats_pub" "$size" "$DUR" "$CONNS")
  stop_pid "$NPID"
  b=$(echo "$bline" | sed -E 's/.*events_per_s=([0-9.]+).*/\1/')
  b50=$(echo "$bline" | sed -E 's/.*p50_ms=([0-9.]+).*/\1/')
  b99=$(echo "$bline" | sed -E 's/.*p99_ms=([0-9.]+).*/\1/')
  brss=$(echo "$bline" | sed -E 's/.*rss_kib=([0-9]+).*/\1/')
  berr=$(echo "$bline" | sed -E 's/.*errors=([0-9]+).*/\1/')
  printf '%-6s %-11s %10.0f %8.2f %8.2f %8.1f %7s %7s %9s %s\n' "$size" "raw-nats(b)" "$b" "$b50" "$b99" \
    "$(awk -v k="$brss" 'BEGIN{print k/1024}')" - - - "errors=$berr"

  # (c) the publisher, binary then structured
  for mode in binary structured; do
    start_nats
    port=$(free_port); admin=$(free_port)
    NATS_URL="nats://127.0.0.1:$NPORT" INGRESS_PORT="$port" METRICS_ADDR="127.0.0.1:$admin" \
      JS_STREAM_RETENTION_POLICY="$RETENTION" PUBLISHER_THREADS="$THREADS" APP_LOG_LEVEL=warn \
      "$build/jetbridge" publisher >"$work/pub.log" 2>&1 & pp=$!; pids+=("$pp")
    wait_port "$port"
    for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
    read -r c c50 c99 cbad < <(run_wrk "$port" "$work/$mode.lua" "$size")
    crss=$(peak_rss_kib "$pp"); stop_pid "$pp"; stop_pid "$NPID"
    ra=$(awk -v c="$c" -v a="$a" 'BEGIN{printf "%.2f", c/a}')
    rb=$(awk -v c="$c" -v b="$b" 'BEGIN{printf "%.2f", c/b}')
    rc=$(awk -v c="$c" -v a="$a" -v b="$b" 'BEGIN{printf "%.2f", c*(1/a+1/b)}')
    rssm=$(awk -v k="$crss" 'BEGIN{printf "%.1f", k/1024}')
    printf '%-6s %-11s %10.0f %8.2f %8.2f %8s %7s %7s %9s %s\n' "$size" "$mode" "$c" "$c50" "$c99" "$rssm" \
      "$ra" "$rb" "$rc" "non2xx=$cbad"
    results+=("$size $mode $rc $rssm $cbad")
  done
done

echo
echo "machine: $(nproc) cores, $(uname -r); wrk -t1 -c$CONNS -d${DUR}s; publisher threads $THREADS; stream retention $RETENTION, file storage"
status=0
for r in "${results[@]}"; do
  read -r size mode rc rssm bad <<<"$r"
  if [ "$size" = 1024 ] && [ "$mode" = binary ]; then
    awk -v r="$rc" 'BEGIN{exit !(r >= 0.6)}' && v=PASS || { v=FAIL; status=1; }
    echo "target publisher/ceiling >= 0.6 at 1 KiB binary: $v ($rc)"
  fi
  awk -v m="$rssm" 'BEGIN{exit !(m < 32)}' || { echo "peak RSS over 32 MiB: $size $mode $rssm MiB"; status=1; }
  [ "${bad:-0}" = 0 ] || echo "note: $size $mode had $bad non-2xx answers"
done
[ $status = 0 ] && echo "peak RSS under 32 MiB in every publisher run: PASS"
exit $status
