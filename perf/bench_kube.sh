#!/usr/bin/env bash
# Benchmark of the Kubernetes controller: N Subscription objects (one multi-document
# file) created at once, POSTed by 8 concurrent keep-alive clients (perf/kube_post.py,
# as a busy cluster's users or a GitOps tool would; BENCH_CREATE=kubectl uses
# `kubectl create -f`, which is serial and alone takes longer here than the target), then
#   - the time from the start of the create until every object shows READY true,
#   - Kubernetes API requests the controller made per subscription (its
#     jetbridge_kube_requests_total, Lease traffic excluded), and status writes,
#   - the controller's peak RSS (VmHWM).
# Everything runs on loopback: etcd, a real kube-apiserver, nats-server, and the
# release build's `jetbridge controller` (which also creates the consumers).
# Usage: perf/bench_kube.sh [BUILD_DIR] [N]     (defaults: build/release 2000)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
n=${2:-2000}
jb=$build/jetbridge
[ -x "$jb" ] || { echo "bench_kube: $jb missing (make build)"; exit 1; }

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

port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
ep=$(port); pp=$(port); kp=$(port); np=$(port); mp=$(port); nm=$(port)
token=$(head -c 24 /dev/urandom | base64 | tr -dc 'a-zA-Z0-9')
echo "$token,admin,admin,system:masters" >"$work/tokens.csv"
openssl genrsa -out "$work/sa.key" 2048 2>/dev/null
etcd --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$ep" \
  --advertise-client-urls "http://127.0.0.1:$ep" --listen-peer-urls "http://127.0.0.1:$pp" \
  >"$work/etcd.log" 2>&1 &
pids+=($!)
"$apiserver" --etcd-servers="http://127.0.0.1:$ep" --bind-address=127.0.0.1 --secure-port="$kp" \
  --cert-dir="$work/certs" --service-account-key-file="$work/sa.key" \
  --service-account-signing-key-file="$work/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc --token-auth-file="$work/tokens.csv" \
  --authorization-mode=RBAC --service-cluster-ip-range=10.0.0.0/24 \
  --advertise-address=127.0.0.1 --enable-priority-and-fairness=false \
  --max-requests-inflight=2000 --max-mutating-requests-inflight=1000 >"$work/apiserver.log" 2>&1 &
pids+=($!)
cat >"$work/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: bench
clusters: [{name: bench, cluster: {server: "https://127.0.0.1:$kp", insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: "$token"}}]
contexts: [{name: bench, context: {cluster: bench, user: admin}}]
EOF
export KUBECONFIG=$work/kubeconfig
for _ in $(seq 120); do
  curl -sk -H "Authorization: Bearer $token" "https://127.0.0.1:$kp/readyz" 2>/dev/null | grep -q ok && break
  sleep 0.5
done
crd=$root/deploy/kubernetes/crds/subscriptions.eventing.kyma-project.io.yaml
[ -f "$crd" ] || { echo "bench_kube: $crd missing"; exit 1; }
kubectl apply -f "$crd" >/dev/null
kubectl wait --for condition=established --timeout=60s crd/subscriptions.eventing.kyma-project.io >/dev/null
kubectl create namespace bench >/dev/null

nats-server -js -a 127.0.0.1 -p "$np" -m "$nm" -sd "$work/nats" >"$work/nats.log" 2>&1 &
pids+=($!)
sleep 1
start_controller() {
  NATS_URL=nats://127.0.0.1:$np METRICS_ADDR=127.0.0.1:$mp POD_NAMESPACE=default \
    "$jb" controller >"$work/controller.log" 2>&1 &
  ctl=$!
  pids+=($ctl)
  for _ in $(seq 120); do curl -sf "127.0.0.1:$mp/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
}
# BENCH_LATE=1: the controller starts only after every object exists (a restart or a
# fresh install catching up), and the time counts from its start.
[ "${BENCH_LATE:-0}" = 1 ] || start_controller

# N objects in one multi-document file.
python3 - "$n" >"$work/subs.yaml" <<'EOF'
import sys
for i in range(int(sys.argv[1])):
    print(f"""---
apiVersion: eventing.kyma-project.io/v1alpha2
kind: Subscription
metadata: {{name: sub-{i}, namespace: bench}}
spec:
  sink: http://127.0.0.1:9/events
  source: bench
  types: [order.created{i}.v1]""")
EOF

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
print("progress +%5.1fs mirrored=%d consumers=%d status_kv=%d status_writes=%s" % (
    time.time() - float(sys.argv[1]), st.get("KV_jetbridge-subscriptions", 0),
    j.get("consumers", 0), st.get("KV_jetbridge-status", 0), sys.argv[2]), flush=True)
' "$t0" "$(metric_sum jetbridge_kube_status_writes_total '.')" || true
  done
}
t0=$(date +%s.%N)
if [ "${BENCH_PROGRESS:-0}" = 1 ]; then progress & pids+=($!); fi
if [ "${BENCH_CREATE:-post}" = kubectl ]; then
  kubectl create -f "$work/subs.yaml" >/dev/null
else
  python3 "$root/perf/kube_post.py" "$work/subs.yaml" "$kp" "$token" 8
fi
t_created=$(date +%s.%N)
tc0=$t0
if [ "${BENCH_LATE:-0}" = 1 ]; then
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
sleep 5 # a quiet period: nothing more may be written
reqs=$(metric_sum jetbridge_kube_requests_total 'resource="subscriptions')
writes=$(metric_sum jetbridge_kube_status_writes_total '.')
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$ctl/status")
python3 - "$n" "$ready" "$t0" "$t_created" "$t1" "$reqs" "$writes" "$rss_kb" "$tc0" <<'EOF'
import sys
n, ready = int(sys.argv[1]), int(sys.argv[2])
t0, tc, t1 = map(float, sys.argv[3:6])
reqs, writes, rss = float(sys.argv[6]), float(sys.argv[7]), int(sys.argv[8])
print(f"subscriptions:            {n} (ready: {ready})")
late = float(sys.argv[9]) != t0
print(f"creating them took:       {tc - float(sys.argv[9]):.1f} s")
print(f"all READY after:          {t1 - t0:.1f} s from the start of the "
      + ("controller (started after the creates)" if late else "create"))
print(f"API requests per sub:     {reqs / n:.2f} (subscription list/watch/patch; Lease excluded)")
print(f"status writes per sub:    {writes / n:.2f}")
print(f"controller peak RSS:      {rss / 1024:.1f} MiB")
sys.exit(0 if ready >= n else 1)
EOF
