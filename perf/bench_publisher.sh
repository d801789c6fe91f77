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
#   is really stored; "interest" stores nothing while no consumer exists),
#   TLS=1 (also the HTTPS runs below; 0 skips them).
# HTTPS runs (1 KiB, binary mode, keep-alive): (a-tls) trivial_http over TLS, the
# publisher over TLS, and the publisher over TLS with INGRESS_AUTH=required and a
# bearer token; ratios publisher/ceiling over TLS (ceiling = 1/(1/a-tls + 1/b)) and
# the cost of token auth over TLS alone. wrk cannot present client certificates:
# the mTLS comparison runs perf/tls_load (libcurl multi, CONNS keep-alive
# connections, one request in flight on each, the same 1 KiB event) twice, once
# over TLS alone and once with a client certificate and INGRESS_AUTH=required,
# and reports the cost of mTLS over TLS alone from those two runs (throughput and
# the publisher's CPU per request), so that both sides have the same client.
# ROUNDS=3 repeats the HTTPS part and prints the median of each figure.
# Every publisher run has its /metrics scraped every SCRAPE_MS=1000 ms meanwhile
# (perf/scrape.sh; 0: not scraped), so its peak RSS includes rendering them; the
# notes say how many scrapes were answered.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/rel}
DUR=${DUR:-5}
CONNS=${CONNS:-64}
SIZES=${SIZES:-"256 1024 16384"}
THREADS=${THREADS:-2}
RETENTION=${RETENTION:-limits}
TLS=${TLS:-1}
# Room for every event of a run (16 KiB x 10k/s x DUR): a full stream would turn
# the run into a measurement of 507s.
export JS_STREAM_MAX_BYTES=${JS_STREAM_MAX_BYTES:-8Gi}
# A stale tool (say a trivial_http from before it served TLS) would measure nothing:
# bring the three up to date when this is a CMake build directory.
if [ -f "$build/CMakeCache.txt" ]; then
  cmake --build "$build" -j2 --target jetbridge trivial_http raw_nats_pub tls_load >/dev/null
fi
for exe in "$build/jetbridge" "$build/trivial_http" "$build/raw_nats_pub" "$build/tls_load"; do
  [ -x "$exe" ] || { echo "missing $exe: build $build first" >&2; exit 2; }
done
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
command -v nats-server >/dev/null || { echo "nats-server is not installed" >&2; exit 2; }

# shellcheck source=perf/scrape.sh
. "$root/perf/scrape.sh"

work=$(mktemp -d)
pids=()
cleanup() {
  scrape_abort
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# A fresh nats-server -js per measurement, so every run starts from an empty store.
start_nats() {
  NPORT=$(free_port)
  rm -rf "$work/js"
  nats-server -js -a 127.0.0.1 -p "$NPORT" -sd "$work/js" >"$work/nats.log" 2>&1 &
  NPID=$!; pids+=("$NPID")
  wait_port "$NPORT"
}

cp "$root/perf/publish_binary.lua" "$work/binary.lua"
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
run_wrk() { # port lua size [scheme]
  local out; out=$(wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -s "$2" "${4:-http}://127.0.0.1:$1/publish" -- "$3" "$RANDOM$RANDOM")
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
    scrape_start "$admin"
    read -r c c50 c99 cbad < <(run_wrk "$port" "$work/$mode.lua" "$size")
    scrape_stop
    rssm=$(peak_rss_mib "$pp"); stop_pid "$pp"; stop_pid "$NPID"
    ra=$(awk -v c="$c" -v a="$a" 'BEGIN{printf "%.2f", c/a}')
    rb=$(awk -v c="$c" -v b="$b" 'BEGIN{printf "%.2f", c/b}')
    rc=$(awk -v c="$c" -v a="$a" -v b="$b" 'BEGIN{printf "%.2f", c*(1/a+1/b)}')
    printf '%-6s %-11s %10.0f %8.2f %8.2f %8s %7s %7s %9s %s\n' "$size" "$mode" "$c" "$c50" "$c99" "$rssm" \
      "$ra" "$rb" "$rc" "non2xx=$cbad scrapes=$SCRAPES"
    results+=("$size $mode $rc $rssm $cbad")
  done
  [ "$size" = 1024 ] && b1k=$b
done

# ---- HTTPS: 1 KiB binary events, keep-alive.
ROUNDS=${ROUNDS:-1}
tick_us=$(awk -v t="$(getconf CLK_TCK)" 'BEGIN{print 1e6 / t}')
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# The median of the arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print ((NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }

# Starts the publisher over TLS in mode tls | token | mtls on a fresh nats-server
# (sets pp and port and, for token, BENCH_AUTH).
start_tls_pub() {
  start_nats
  port=$(free_port); admin=$(free_port)
  local env_extra=()
  export BENCH_AUTH=""
  if [ "$1" != tls ]; then
    printf 'apiVersion: applicationconnector.kyma-project.io/v1alpha1\nkind: Application\nmetadata:\n  name: bench\n' >"$work/app.yaml"
    NATS_URL="nats://127.0.0.1:$NPORT" "$build/jetbridge" app apply -f "$work/app.yaml" >/dev/null
    env_extra=(INGRESS_AUTH=required)
  fi
  if [ "$1" = token ]; then
    BENCH_AUTH="Bearer $(NATS_URL="nats://127.0.0.1:$NPORT" "$build/jetbridge" app token create bench | tail -1)"
  elif [ "$1" = mtls ]; then
    env_extra+=(INGRESS_TLS_CLIENT_CA="$work/ca.pem")
  fi
  env NATS_URL="nats://127.0.0.1:$NPORT" INGRESS_PORT="$port" METRICS_ADDR="127.0.0.1:$admin" \
    JS_STREAM_RETENTION_POLICY="$RETENTION" PUBLISHER_THREADS="$THREADS" APP_LOG_LEVEL=warn \
    INGRESS_TLS_CERT="$work/cert.pem" INGRESS_TLS_KEY="$work/key.pem" "${env_extra[@]}" \
    "$build/jetbridge" publisher >"$work/pub.log" 2>&1 & pp=$!; pids+=("$pp")
  wait_port "$port"
  for _ in $(seq 1 50); do curl -sfk "https://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  sleep 1 # the registry loads from the control thread
}
stop_tls_pub() { stop_pid "$pp"; stop_pid "$NPID"; }
# perf/tls_load against the publisher, extra arguments (client certificate and
# key) passed on: "events/s p50 p99 non2xx+errors cpu_us_per_request".
run_tls_load() {
  local t0 t1 out rps n
  t0=$(cpu_ticks "$pp")
  out=$("$build/tls_load" "https://127.0.0.1:$port/publish" "$DUR" "$CONNS" 1024 "$work/cert.pem" "$@" 2>>"$work/tls_load.log") || true
  t1=$(cpu_ticks "$pp")
  echo "$out" >>"$work/tls_load.log"
  [ -n "$out" ] || { echo "0 0 0 0+1 0"; return; }
  rps=$(echo "$out" | sed -E 's/.*events_per_s=([0-9.]+).*/\1/')
  n=$(echo "$out" | sed -E 's/.*requests=([0-9]+).*/\1/')
  echo "$rps $(echo "$out" | sed -E 's/.*p50_ms=([0-9.]+) p99_ms=([0-9.]+) non2xx=([0-9]+) errors=([0-9]+).*/\1 \2 \3+\4/')" \
    "$(awk -v a="$t0" -v b="$t1" -v n="$n" -v u="$tick_us" 'BEGIN{printf "%.1f", (n > 0 ? (b - a) * u / n : 0)}')"
}
tls_line() { # label events/s p50 p99 rss /(a) /(b) /ceiling notes
  printf '%-6s %-11s %10.0f %8.2f %8.2f %8s %7s %7s %9s %s\n' 1024 "$@"
}

declare -A med
if [ "$TLS" = 1 ] && [ -n "${b1k:-}" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1
  # A client CA and a client certificate whose CN is the application's name.
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/ca-key.pem" -out "$work/ca.pem" -days 1 \
    -subj /CN=bench-ca >/dev/null 2>&1
  openssl req -new -newkey rsa:2048 -nodes -keyout "$work/client-key.pem" -out "$work/client.csr" \
    -subj /CN=bench >/dev/null 2>&1
  printf 'extendedKeyUsage=clientAuth\n' >"$work/client.ext"
  openssl x509 -req -in "$work/client.csr" -CA "$work/ca.pem" -CAkey "$work/ca-key.pem" \
    -CAcreateserial -days 1 -extfile "$work/client.ext" -out "$work/client.pem" >/dev/null 2>&1
  cat >"$work/auth.lua" <<'EOF'
local body, tag, n, auth
function init(args) body = string.rep("x", tonumber(args[1])); tag = args[2]; n = 0
  auth = os.getenv("BENCH_AUTH") or "" end
function request()
  n = n + 1
  local h = {["ce-specversion"] = "1.0", ["ce-id"] = n .. "-" .. tag, ["ce-source"] = "bench",
    ["ce-type"] = "order.created.v1", ["Content-Type"] = "text/plain"}
  if auth ~= "" then h["Authorization"] = auth end
  return wrk.format("POST", "/publish", h, body)
end
EOF
  for round in $(seq 1 "$ROUNDS"); do
    [ "$ROUNDS" = 1 ] || echo "-- HTTPS round $round of $ROUNDS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    port=$(free_port)
    "$build/trivial_http" "$port" "$THREADS" "$work/cert.pem" "$work/key.pem" & tp=$!; pids+=("$tp")
    wait_port "$port"
    read -r at at50 at99 atbad < <(run_wrk "$port" "$work/binary.lua" 1024 https)
    stop_pid "$tp"
    tls_line "trivial-tls" "$at" "$at50" "$at99" - - - - "non2xx=$atbad"
    med[at]+=" $at"
    # wrk: TLS alone, then with a bearer token.
    for mode in tls token; do
      start_tls_pub "$mode"
      t0=$(cpu_ticks "$pp")
      scrape_start "$admin"
      read -r c c50 c99 cbad < <(run_wrk "$port" "$work/auth.lua" 1024 https)
      scrape_stop
      cpu=$(awk -v a="$t0" -v b="$(cpu_ticks "$pp")" -v c="$c" -v d="$DUR" -v u="$tick_us" \
        'BEGIN{printf "%.1f", (c > 0 ? (b - a) * u / (c * d) : 0)}')
      cmib=$(peak_rss_mib "$pp"); stop_tls_pub
      rc=$(awk -v c="$c" -v a="$at" -v b="$b1k" 'BEGIN{printf "%.2f", c*(1/a+1/b)}')
      label=$([ "$mode" = tls ] && echo tls || echo tls+token)
      tls_line "$label" "$c" "$c50" "$c99" "$cmib" \
        "$(awk -v c="$c" -v a="$at" 'BEGIN{printf "%.2f", c/a}')" \
        "$(awk -v c="$c" -v b="$b1k" 'BEGIN{printf "%.2f", c/b}')" "$rc" "non2xx=$cbad cpu_us/req=$cpu scrapes=$SCRAPES"
      med[$mode]+=" $c"; med[${mode}_rc]+=" $rc"; med[${mode}_cpu]+=" $cpu"
      [ "${cbad:-0}" = 0 ] || echo "note: $label had $cbad non-2xx answers"
    done
    # perf/tls_load: TLS alone, then mTLS (client certificate, INGRESS_AUTH=required).
    for mode in tls mtls; do
      start_tls_pub "$mode"
      scrape_start "$admin"
      if [ "$mode" = mtls ]; then
        read -r l l50 l99 lbad lcpu < <(run_tls_load "$work/client.pem" "$work/client-key.pem")
      else
        read -r l l50 l99 lbad lcpu < <(run_tls_load)
      fi
      scrape_stop
      lmib=$(peak_rss_mib "$pp"); stop_tls_pub
      tls_line "$mode(load)" "$l" "$l50" "$l99" "$lmib" - - - \
        "non2xx+errors=$lbad cpu_us/req=$lcpu scrapes=$SCRAPES"
      med[load_$mode]+=" $l"; med[load_${mode}_cpu]+=" $lcpu"
      [ "$lbad" = "0+0" ] || echo "note: $mode(load) had $lbad non-2xx answers or errors"
    done
  done
  unset BENCH_AUTH
fi
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
[ $status = 0 ] && echo "peak RSS under 32 MiB in every publisher run (its /metrics scraped every ${SCRAPE_MS:-1000} ms): PASS"
if [ -n "${med[at]:-}" ]; then
  m_at=$(median ${med[at]}); m_rc=$(median ${med[tls_rc]})
  m_tls=$(median ${med[tls]}); m_tok=$(median ${med[token]})
  m_tcpu=$(median ${med[tls_cpu]}); m_kcpu=$(median ${med[token_cpu]})
  m_lt=$(median ${med[load_tls]}); m_lm=$(median ${med[load_mtls]})
  m_ltc=$(median ${med[load_tls_cpu]}); m_lmc=$(median ${med[load_mtls_cpu]})
  echo "HTTPS, median of $ROUNDS round(s): trivial-tls $m_at/s; publisher tls $m_tls/s ($m_tcpu us CPU/req)," \
    "+token $m_tok/s ($m_kcpu us CPU/req); tls_load: tls $m_lt/s ($m_ltc us CPU/req), mtls $m_lm/s ($m_lmc us CPU/req)"
  # A ceiling that measured nothing makes the ratio "inf": that is a failed run.
  awk -v r="$m_rc" -v a="$m_at" 'BEGIN{exit !(a > 0 && r >= 0.8)}' && v=PASS || { v=FAIL; status=1; }
  echo "target publisher/ceiling >= 0.8 over TLS at 1 KiB binary: $v ($m_rc)"
  cost=$(awk -v t="$m_tls" -v c="$m_tok" 'BEGIN{printf "%.1f", (1 - c/t) * 100}')
  ccost=$(awk -v t="$m_tcpu" -v c="$m_kcpu" 'BEGIN{printf "%.1f", (t > 0 ? (c/t - 1) * 100 : 0)}')
  awk -v x="$cost" 'BEGIN{exit !(x <= 5)}' && v=PASS || { v=FAIL; status=1; }
  echo "target token auth costs <= 5% over TLS alone: $v (${cost}% fewer events/s; CPU per request ${ccost}%)"
  cost=$(awk -v t="$m_lt" -v c="$m_lm" 'BEGIN{printf "%.1f", (t > 0 ? (1 - c/t) * 100 : 100)}')
  ccost=$(awk -v t="$m_ltc" -v c="$m_lmc" 'BEGIN{printf "%.1f", (t > 0 ? (c/t - 1) * 100 : 0)}')
  awk -v x="$cost" -v t="$m_lt" 'BEGIN{exit !(t > 0 && x <= 5)}' && v=PASS || { v=FAIL; status=1; }
  echo "target mTLS auth costs <= 5% over TLS alone (perf/tls_load): $v (${cost}% fewer events/s; CPU per request ${ccost}%)"
fi
exit $status
