#!/usr/bin/env bash
# Benchmark of the Kubernetes controller: N Subscription objects (one multi-document
# file) created at once, POSTed by 8 concurrent keep-alive clients (perf/kube_post.py,
# as a busy cluster's users or a GitOps tool would; BENCH_CREATE=kubectl uses
# `kubectl create -f`, which is serial and alone takes longer here than the target), then
#   - the time from the start of the create until every object shows READY true,
#   - the API server's own time for the same N creates with no controller running
#     (the baseline, measured first in the same run, in namespace "baseline", then
#     deleted), so that the result is also a ratio to what the API server alone takes,
#   - Kubernetes API requests the controller made per subscription (its
#     jetbridge_kube_requests_total, Lease traffic excluded), and status writes,
#   - the controller's peak RSS (VmHWM),
#   - where the CPU went: seconds used by etcd, kube-apiserver, nats-server, the posting
#     clients and the controller (by thread: kube-watch, kube-writer, kube-worker, ...),
#     and how busy the machine's cores were (other users included).
# Everything runs on loopback: etcd, a real kube-apiserver, nats-server, and the
# release build's `jetbridge controller` (which also creates the consumers).
#
# Usage: perf/bench_kube.sh [BUILD_DIR] [N]     (defaults: build/release 2000)
#   BENCH_ROUNDS=3     run 3 rounds (each with fresh servers) and print the medians
#   BENCH_PROGRESS=1   print where the pipeline stands every 2 s
#   BENCH_LATE=1       start the controller only after every object exists
#   BENCH_BASELINE=0   skip the baseline creates
#   BENCH_CREATE=kubectl
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
n=${2:-2000}
jb=$build/jetbridge
[ -x "$jb" ] || { echo "bench_kube: $jb missing (make build)"; exit 1; }

rounds=${BENCH_ROUNDS:-1}
if [ "$rounds" -gt 1 ]; then
  results=$(mktemp /tmp/jb-bench-kube-results-XXXXXX)
  trap 'rm -f "$results"' EXIT
  for r in $(seq "$rounds"); do
    echo "=== round $r of $rounds (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    BENCH_ROUNDS=1 BENCH_RESULTS=$results "$0" "$build" "$n" || echo "round $r failed"
  done
  python3 - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
if not rows:
    sys.exit("bench_kube: no round finished")
print(f"=== median of {len(rows)} rounds (each value's median on its own)")
for key, label, unit in [
        ("load", "load average (1 min) at start", ""),
        ("baseline_s", "API server alone, N creates", " s"),
        ("create_s", "creates with the controller", " s"),
        ("ready_s", "all READY after", " s"),
        ("ratio", "all READY / API server alone", ""),
        ("lag_s", "lag after the last create", " s"),
        ("reqs_per_sub", "API requests per sub", ""),
        ("writes_per_sub", "status writes per sub", ""),
        ("rss_mib", "controller peak RSS", " MiB"),
        ("ctl_cpu_s", "controller CPU", " s"),
        ("api_cpu_s", "kube-apiserver CPU", " s")]:
    vals = [r[key] for r in rows if r.get(key) is not None]
    if vals:
        print(f"{label + ':':34s}{statistics.median(vals):.2f}{unit}   "
              f"(rounds: {', '.join(f'{v:.2f}' for v in vals)})")
sys.exit(0 if all(r["ok"] for r in rows) else 1)
EOF
  exit $?
fi

work=$(mktemp -d /tmp/jb-bench-kube-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The API server binary, etcd and kubectl: scripts/kube-tools makes them available.
apiserver=$root/build/tools/kube-apiserver
"$root/scripts/kube-tools" >/dev/null
[ -x "$apiserver" ] || { echo "bench_kube: no kube-apiserver (run scripts/kube-tools)"; exit 1; }

# K distinct free loopback ports, all held open while they are chosen (so never the same
# one twice). Another process may still take one before our server binds it: every
# server below is started again on new ports when it dies before answering.
free_ports() {
  python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}
ATTEMPTS=3
# wait_up PID SECONDS CMD...: true once CMD succeeds while PID still runs (checked
# after the probe: if our child died, whoever answered is someone else's).
wait_up() {
  local pid=$1 secs=$2
  shift 2
  for _ in $(seq $((secs * 4))); do
    if "$@" >/dev/null 2>&1; then
      kill -0 "$pid" 2>/dev/null && return 0
      return 1
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.25
  done
  return 1
}
give_up() { # what, log
  echo "bench_kube: $1 did not start after $ATTEMPTS attempts; its log:"
  tail -20 "$2"
  exit 1
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# start_server WHAT LOG NPORTS LAUNCH PROBE SECONDS: picks NPORTS free ports into $p1 $p2,
# runs LAUNCH ATTEMPT (starts the server in the background with them, sets $spid), waits
# for PROBE; when the server dies first (its port taken meanwhile), tries new ports.
start_server() {
  local a
  for a in $(seq $ATTEMPTS); do
    read -r p1 p2 < <(free_ports "$3")
    "$4" "$a"
    if wait_up "$spid" "$6" "$5"; then
      pids+=("$spid")
      return 0
    fi
    stop_pid "$spid"
  done
  give_up "$1" "$2"
}

token=$(head -c 24 /dev/urandom | base64 | tr -dc 'a-zA-Z0-9')
echo "$token,admin,admin,system:masters" >"$work/tokens.csv"
openssl genrsa -out "$work/sa.key" 2048 2>/dev/null

etcd_healthy() { curl -sf "http://127.0.0.1:$ep/health" | grep -q '"true"'; }
launch_etcd() {
  ep=$p1 pp=$p2
  etcd --data-dir "$work/etcd-$1" --listen-client-urls "http://127.0.0.1:$ep" \
    --advertise-client-urls "http://127.0.0.1:$ep" --listen-peer-urls "http://127.0.0.1:$pp" \
    --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
    --initial-cluster "default=http://127.0.0.1:$pp" >"$work/etcd.log" 2>&1 &
  spid=$!
}
start_server etcd "$work/etcd.log" 2 launch_etcd etcd_healthy 60
etcd_pid=$spid

api_ready() { curl -sk -H "Authorization: Bearer $token" "https://127.0.0.1:$kp/readyz" | grep -q '^ok'; }
launch_apiserver() {
  kp=$p1
  "$apiserver" --etcd-servers="http://127.0.0.1:$ep" --bind-address=127.0.0.1 --secure-port="$kp" \
    --cert-dir="$work/certs" --service-account-key-file="$work/sa.key" \
    --service-account-signing-key-file="$work/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc --token-auth-file="$work/tokens.csv" \
    --authorization-mode=RBAC --service-cluster-ip-range=10.0.0.0/24 \
    --advertise-address=127.0.0.1 --enable-priority-and-fairness=false --profiling="$([ -n "${BENCH_PROFILE:-}" ] && echo true || echo false)" \
    --delete-collection-workers=4 \
    --max-requests-inflight=2000 --max-mutating-requests-inflight=1000 >"$work/apiserver.log" 2>&1 &
  spid=$!
}
start_server kube-apiserver "$work/apiserver.log" 1 launch_apiserver api_ready 120
api_pid=$spid
cat >"$work/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: bench
clusters: [{name: bench, cluster: {server: "https://127.0.0.1:$kp", insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: "$token"}}]
contexts: [{name: bench, context: {cluster: bench, user: admin}}]
EOF
export KUBECONFIG=$work/kubeconfig
crd=$root/deploy/kubernetes/crds/subscriptions.eventing.kyma-project.io.yaml
[ -f "$crd" ] || { echo "bench_kube: $crd missing"; exit 1; }
kubectl apply -f "$crd" >/dev/null
kubectl wait --for condition=established --timeout=60s crd/subscriptions.eventing.kyma-project.io >/dev/null
kubectl create namespace bench >/dev/null
kubectl create namespace baseline >/dev/null

nats_up() { curl -sf "http://127.0.0.1:$nm/healthz" | grep -q ok; }
launch_nats() {
  np=$p1 nm=$p2
  nats-server -js -a 127.0.0.1 -p "$np" -m "$nm" -sd "$work/nats-$1" >"$work/nats.log" 2>&1 &
  spid=$!
}
start_server nats-server "$work/nats.log" 2 launch_nats nats_up 60
nats_pid=$spid

ctl=
ctl_up() { curl -sf "127.0.0.1:$mp/readyz"; }
launch_controller() {
  mp=$p1
  NATS_URL=nats://127.0.0.1:$np METRICS_ADDR=127.0.0.1:$mp POD_NAMESPACE=default \
    "$jb" controller >"$work/controller.log" 2>&1 &
  spid=$!
}
start_controller() {
  start_server "jetbridge controller" "$work/controller.log" 1 launch_controller ctl_up 60
  ctl=$spid
}

# N objects in one multi-document file, per namespace.
gen() { # namespace
  python3 - "$n" "$1" <<'EOF'
import sys
for i in range(int(sys.argv[1])):
    print(f"""---
apiVersion: eventing.kyma-project.io/v1alpha2
kind: Subscription
metadata: {{name: sub-{i}, namespace: {sys.argv[2]}}}
spec:
  sink: http://127.0.0.1:9/events
  source: bench
  types: [order.created{i}.v1]""")
EOF
}
gen bench >"$work/subs.yaml"
gen baseline >"$work/baseline.yaml"
create() { # file
  if [ "${BENCH_CREATE:-post}" = kubectl ]; then
    kubectl create -f "$1" >/dev/null
  else
    python3 "$root/perf/kube_post.py" "$1" "$kp" "$token" 8
  fi
}

# CPU seconds (user + system) of a process, of the controller's threads by name, and
# of the whole machine (busy jiffies of all cores, other users included).
tick=$(getconf CLK_TCK)
cpu_of() { awk -v t="$tick" '{print ($14 + $15) / t}' "/proc/$1/stat" 2>/dev/null || echo 0; }
machine_busy() { awk -v t="$tick" '/^cpu / {print ($2 + $3 + $4 + $7 + $8) / t}' /proc/stat; }
threads_of() { # pid -> "name seconds" per thread
  for d in /proc/"$1"/task/*; do
    printf '%s %s\n' "$(cat "$d/comm" 2>/dev/null)" \
      "$(awk -v t="$tick" '{print ($14 + $15) / t}' "$d/stat" 2>/dev/null || echo 0)"
  done
}

# The baseline: the API server alone (no controller, no watcher but its own) takes the
# same N creates from the same clients; then they are deleted again.
base_s=
if [ "${BENCH_BASELINE:-1}" = 1 ]; then
  api0=$(cpu_of "$api_pid")
  b0=$(date +%s.%N)
  create "$work/baseline.yaml"
  b1=$(date +%s.%N)
  base_s=$(python3 -c "print(f'{$b1 - $b0:.2f}')")
  base_api_cpu=$(python3 -c "print(f'{$(cpu_of "$api_pid") - $api0:.2f}')")
  echo "baseline: the API server alone took $base_s s for $n creates (its CPU: $base_api_cpu s)"
  curl -sk -X DELETE -H "Authorization: Bearer $token" -o /dev/null --max-time 300 \
    "https://127.0.0.1:$kp/apis/eventing.kyma-project.io/v1alpha2/namespaces/baseline/subscriptions"
  for _ in $(seq 600); do
    curl -sk -H "Authorization: Bearer $token" \
      "https://127.0.0.1:$kp/apis/eventing.kyma-project.io/v1alpha2/namespaces/baseline/subscriptions?limit=1" |
      grep -q '"items":\[\]' && break
    sleep 0.5
  done
fi

# BENCH_LATE=1: the controller starts only after every object exists (a restart or a
# fresh install catching up), and the time counts from its start.
[ "${BENCH_LATE:-0}" = 1 ] || start_controller

metric_sum() { # family, grep filter
  curl -s "127.0.0.1:$mp/metrics" | grep "^$1" | grep -E "$2" | awk '{s+=$NF} END {print s+0}'
}
count_ready() {
  kubectl get subscriptions -n bench -o jsonpath='{range .items[*]}{.status.ready}{"\n"}{end}' | grep -c '^true$' || true
}
# Progress (BENCH_PROGRESS=1): every 2 s, where the pipeline stands: entries in the
# KV mirror, JetStream consumers, statuses in KV, status writes to the API server.
progress() {
  while sleep 2; do
    curl -s "127.0.0.1:$nm/jsz?streams=1" | python3 -c '
import json, sys, time
j = json.load(sys.stdin)
st = {d["name"]: d["state"]["messages"]
      for a in j.get("account_details") or [] for d in a.get("stream_detail") or []}
print("progress +%5.1fs mirrored=%d consumers=%d status_kv=%d status_writes=%s "
      "api_conns=%s api_time_wait=%s" % (
    time.time() - float(sys.argv[1]), st.get("KV_jetbridge-subscriptions", 0),
    j.get("consumers", 0), st.get("KV_jetbridge-status", 0), sys.argv[2], sys.argv[3],
    sys.argv[4]), flush=True)
' "$t0" "$(metric_sum jetbridge_kube_status_writes_total '.')" \
      "$(ss -Htn state established "( dport = :$kp )" | wc -l)" \
      "$(ss -Htn state time-wait "( dport = :$kp or sport = :$kp )" | wc -l)" || true
  done
}
load=$(cut -d' ' -f1 /proc/loadavg)
api0=$(cpu_of "$api_pid") etcd0=$(cpu_of "$etcd_pid") nats0=$(cpu_of "$nats_pid")
m0=$(machine_busy)
[ -z "$ctl" ] || threads_of "$ctl" >"$work/threads0"
# BENCH_PROFILE=DIR: a CPU profile of kube-apiserver (its own pprof endpoint, the first
# BENCH_PROFILE_S seconds of the measured part: go tool pprof -top DIR/api.pprof) and
# perf samples of the controller (perf report -i DIR/ctl.data).
profs=()
if [ -n "${BENCH_PROFILE:-}" ]; then
  mkdir -p "$BENCH_PROFILE"
  curl -sk -H "Authorization: Bearer $token" -o "$BENCH_PROFILE/api.pprof" \
    "https://127.0.0.1:$kp/debug/pprof/profile?seconds=${BENCH_PROFILE_S:-30}" &
  if [ -n "$ctl" ]; then
    perf record -F 199 -g -o "$BENCH_PROFILE/ctl.data" -p "$ctl" >/dev/null 2>&1 &
    profs+=($!)
  fi
fi
t0=$(date +%s.%N)
if [ "${BENCH_PROGRESS:-0}" = 1 ]; then
  progress &
  pids+=($!)
fi
create "$work/subs.yaml"
t_created=$(date +%s.%N)
tc0=$t0
if [ "${BENCH_LATE:-0}" = 1 ]; then
  # Counted from the controller's start: the CPU too (all of the new process's).
  api0=$(cpu_of "$api_pid") etcd0=$(cpu_of "$etcd_pid") nats0=$(cpu_of "$nats_pid")
  m0=$(machine_busy)
  : >"$work/threads0"
  t0=$(date +%s.%N)
  start_controller
fi
# Wait on the controller's own count of status writes (cheap for the API server: a
# kubectl get of N objects every half second would load it more than the
# controller does), then check what kubectl shows.
ready=0
for _ in $(seq 2400); do
  if [ "$(metric_sum jetbridge_kube_status_writes_total '.')" -ge "$n" ]; then
    ready=$(count_ready)
    [ "$ready" -ge "$n" ] && break
  fi
  sleep 0.25
done
t1=$(date +%s.%N)
api1=$(cpu_of "$api_pid") etcd1=$(cpu_of "$etcd_pid") nats1=$(cpu_of "$nats_pid")
m1=$(machine_busy)
threads_of "$ctl" >"$work/threads1"
for p in "${profs[@]}"; do kill -INT "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
sleep 5 # a quiet period: nothing more may be written
reqs=$(metric_sum jetbridge_kube_requests_total 'resource="subscriptions')
writes=$(metric_sum jetbridge_kube_status_writes_total '.')
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$ctl/status")
python3 - "$work" "$n" "$ready" "$t0" "$t_created" "$t1" "$reqs" "$writes" "$rss_kb" "$tc0" \
  "${base_s:-}" "$load" "$api0" "$api1" "$etcd0" "$etcd1" "$nats0" "$nats1" "$m0" "$m1" \
  "${BENCH_RESULTS:-}" <<'EOF'
import collections, json, sys
a = sys.argv
work, n, ready = a[1], int(a[2]), int(a[3])
t0, tc, t1 = map(float, a[4:7])
reqs, writes, rss = float(a[7]), float(a[8]), int(a[9])
tstart, base, load = float(a[10]), (float(a[11]) if a[11] else None), float(a[12])
api, etcd, nats, machine = (float(a[14]) - float(a[13]), float(a[16]) - float(a[15]),
                            float(a[18]) - float(a[17]), float(a[20]) - float(a[19]))
late = tstart != t0
def threads(f):
    d = collections.Counter()
    for line in open(f):
        name, _, sec = line.rstrip("\n").rpartition(" ")
        d[name] += float(sec)
    return d
th = threads(f"{work}/threads1")
th.subtract(threads(f"{work}/threads0"))
ctl_cpu = sum(th.values())
print(f"load average (1 min):     {load}")
print(f"subscriptions:            {n} (ready: {ready})")
if base is not None:
    print(f"API server alone:         {base:.1f} s for the {n} creates (baseline, no controller)")
print(f"creating them took:       {tc - tstart:.1f} s" +
      (f" ({(tc - tstart) / base:.2f} x the baseline)" if base else ""))
print(f"all READY after:          {t1 - t0:.1f} s from the start of the " +
      ("controller (started after the creates)" if late else "create") +
      (f" ({(t1 - t0) / base:.2f} x the baseline)" if base and not late else ""))
print(f"lag after the last create: {t1 - tc:.1f} s")
print(f"API requests per sub:     {reqs / n:.2f} (subscription list/watch/patch; Lease excluded)")
print(f"status writes per sub:    {writes / n:.2f}")
print(f"controller peak RSS:      {rss / 1024:.1f} MiB")
span = t1 - t0
print(f"CPU over those {span:.1f} s (2 cores = {2 * span:.0f} CPU-s; the machine used "
      f"{machine:.1f}, other users included):")
print(f"  kube-apiserver {api:.1f} s, etcd {etcd:.1f} s, nats-server {nats:.1f} s, "
      f"controller {ctl_cpu:.1f} s")
print("  controller threads: " + ", ".join(
    f"{k} {v:.2f}" for k, v in sorted(th.items(), key=lambda kv: -kv[1]) if v >= 0.01))
ok = ready >= n
if a[21]:
    with open(a[21], "a") as f:
        f.write(json.dumps({
            "ok": ok, "load": load, "baseline_s": base, "create_s": tc - tstart,
            "ready_s": t1 - t0, "ratio": (t1 - t0) / base if base and not late else None,
            "lag_s": t1 - tc, "reqs_per_sub": reqs / n, "writes_per_sub": writes / n,
            "rss_mib": rss / 1024, "ctl_cpu_s": ctl_cpu, "api_cpu_s": api}) + "\n")
sys.exit(0 if ok else 1)
EOF
