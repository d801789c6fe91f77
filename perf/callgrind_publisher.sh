#!/usr/bin/env bash
# Instructions and allocation calls per request of the publisher, counted by
# callgrind (deterministic: unlike events/s, it does not move with the load of a
# shared machine). One HTTP thread, a fresh nats-server -js, wrk -t1 -c8 with 1 KiB
# binary events (each with a fresh ce-id); counting runs from the 3rd to the 11th
# second of one wrk run, so connections and TLS handshakes are made before it
# starts. Requests = calls of pub_on_request in the counted window.
#
# Usage: perf/callgrind_publisher.sh [BUILD_DIR] [tls]   (SIZE=1024 by default)
# Prints Ir/req and malloc/calloc/realloc/free calls per request; the callgrind
# output stays in the printed directory for callgrind_annotate.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build/release}
tls=${2:-}
size=${SIZE:-1024}
for t in valgrind callgrind_control callgrind_annotate wrk nats-server python3; do
  command -v "$t" >/dev/null || { echo "$t is not installed" >&2; exit 2; }
done
w=$(mktemp -d "${TMPDIR:-/tmp}/jb-callgrind-XXXXXX")
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
np=$(free_port); port=$(free_port); admin=$(free_port)
nats-server -js -a 127.0.0.1 -p "$np" -sd "$w/js" >"$w/nats.log" 2>&1 & pids+=($!)
scheme=http; extra=()
if [ "$tls" = tls ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$w/key.pem" -out "$w/cert.pem" -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
  scheme=https; extra=(INGRESS_TLS_CERT="$w/cert.pem" INGRESS_TLS_KEY="$w/key.pem")
fi
cp "$here/publish_binary.lua" "$w/b.lua"
env NATS_URL="nats://127.0.0.1:$np" INGRESS_PORT="$port" METRICS_ADDR="127.0.0.1:$admin" \
  PUBLISHER_THREADS=1 APP_LOG_LEVEL=warn JS_STREAM_RETENTION_POLICY=limits "${extra[@]}" \
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$w/cg.out" \
  "$build/jetbridge" publisher >"$w/pub.log" 2>&1 & vp=$!; pids+=("$vp")
for _ in $(seq 1 300); do curl -skf "$scheme://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
wrk -t1 -c8 -d2s -s "$w/b.lua" "$scheme://127.0.0.1:$port/publish" -- "$size" "warm$RANDOM" >/dev/null
wrk -t1 -c8 -d13s -s "$w/b.lua" "$scheme://127.0.0.1:$port/publish" -- "$size" "m$RANDOM$RANDOM" >"$w/wrk.txt" & wp=$!
sleep 3; callgrind_control -i on "$vp" >/dev/null
sleep 8; callgrind_control -i off "$vp" >/dev/null
wait "$wp"
kill "$vp"; wait "$vp" || true
callgrind_annotate --tree=caller --inclusive=yes --threshold=100 "$w/cg.out" >"$w/tree.txt" 2>/dev/null
python3 - "$w" <<'EOF'
import re, sys
w = sys.argv[1]
tree = open(w + "/tree.txt").read().split("\n")
total = 0
for l in open(w + "/cg.out"):
    if l.startswith("totals:"):
        total = int(l.split()[1])
def callers_of(pat):
    n = 0
    for i, l in enumerate(tree):
        if re.search(r"\*\s+\S*" + pat + r"(\s*\[|\s*$)", l):
            j = i - 1
            while j >= 0 and tree[j].strip():
                m = re.search(r"<\s+\S+ \(([\d,]+)x\)", tree[j])
                if m:
                    n += int(m.group(1).replace(",", ""))
                j -= 1
    return n
reqs = callers_of(r":pub_on_request")
if reqs == 0:
    sys.exit("no requests counted")
out = ["requests=%d" % reqs, "Ir/req=%.0f" % (total / reqs)]
for f in ("malloc", "calloc", "realloc", "free"):
    out.append("%s/req=%.1f" % (f, callers_of(r"malloc\.c:%s" % f) / reqs))
print(" ".join(out))
print("callgrind output: " + w + "/cg.out")
EOF
trap - EXIT
kill "${pids[0]}" 2>/dev/null || true
