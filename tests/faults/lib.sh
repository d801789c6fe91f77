# shellcheck shell=bash
# Shared helpers of the fault scenarios (sourced, not run). Everything runs on
# 127.0.0.1 with free ports and a temporary directory; every process a scenario
# starts is stopped by the EXIT trap, by its pid.
#
# A scenario calls fx_init "$@" first, then fx_nats / fx_publisher / fx_dispatcher /
# fx_sub_apply / fx_load ..., and ends with fx_result.

set -uo pipefail

FX_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FX_NATS_BIN=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
FX_PIDS=()          # every process we started, for the trap
FX_FAIL=0           # set by fx_check
FX_NOTES=""         # free text for the result row
FX_WRAP=()          # command put in front of the jetbridge binary (valgrind)
FX_JB_PIDS=()       # the jetbridge processes among FX_PIDS
FX_START_WAIT=${FX_START_WAIT:-30} # seconds a process may take to listen / be ready

fx_say() { printf '[%s %s] %s\n' "$(date +%H:%M:%S)" "${FX_NAME:-faults}" "$*" >&2; }

# shellcheck disable=SC2317  # called from the trap
fx_stop_pid() { # pid: SIGTERM, wait up to 10 s, then SIGKILL
    local pid=$1 _
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

# shellcheck disable=SC2317
fx_cleanup() {
    local rc=$? i
    [ "$rc" = 0 ] || FX_FAIL=1
    for ((i = ${#FX_PIDS[@]} - 1; i >= 0; i--)); do fx_stop_pid "${FX_PIDS[$i]}"; done
    if [ "${FX_KEEP:-0}" = 1 ] || [ "$FX_FAIL" != 0 ]; then
        fx_say "logs kept in $FX_WORK"
    else
        rm -rf "$FX_WORK"
    fi
}

# fx_init NAME [BUILD_DIR]: checks the binaries, makes the work dir, sets the trap.
fx_init() {
    FX_NAME=$1
    FX_BUILD=${2:-${BUILD_DIR:-build/release}}
    case "$FX_BUILD" in /*) ;; *) FX_BUILD="$FX_ROOT/$FX_BUILD" ;; esac
    FX_BIN="$FX_BUILD/jetbridge"
    FX_LOADCHECK="$FX_BUILD/loadcheck"
    for f in "$FX_BIN" "$FX_LOADCHECK" "$FX_NATS_BIN"; do
        [ -x "$f" ] || { fx_say "missing $f (build first: make build)"; exit 2; }
    done
    for f in jq curl; do
        command -v "$f" >/dev/null || { fx_say "missing $f (apt-get install $f)"; exit 2; }
    done
    FX_WORK=$(mktemp -d "${TMPDIR:-/tmp}/jb-fault-$FX_NAME-XXXXXX")
    trap fx_cleanup EXIT
    trap 'exit 130' INT TERM
}

fx_port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A free loopback port not handed out before in this run. Taken below the kernel's
# ephemeral range (ip_local_port_range, 32768-60999 here): a port there can be in use
# as the local end of some outgoing connection, which a connect probe cannot see but
# which makes bind fail. The ports handed out are kept in a file, not a variable:
# callers run fx_port in a subshell ($(fx_port)), where a variable would not last,
# and two nodes given the same port would fail to bind.
fx_port() {
    local p lo used="$FX_WORK/.ports"
    lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    while :; do
        p=$((10000 + RANDOM % (lo - 10000)))
        grep -qx "$p" "$used" 2>/dev/null && continue
        fx_port_busy "$p" && continue
        echo "$p" >>"$used"
        echo "$p"
        return
    done
}

fx_wait_port() { # port seconds
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        fx_port_busy "$1" && return 0
        sleep 0.1
    done
    return 1
}

# fx_wait_http URL SECONDS: until URL answers 200.
fx_wait_http() {
    local i
    for ((i = 0; i < $2 * 5; i++)); do
        [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$1")" = 200 ] && return 0
        sleep 0.2
    done
    return 1
}

# VmHWM (peak RSS) of a process in kB.
fx_vmhwm() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# ------------------------------------------------------------------ nats-server

# fx_nats NAME [CONF_TEXT]: starts nats-server -js on a free port with store
# $FX_WORK/NAME/store. Sets NATS_PORT_<NAME>, NATS_PID_<NAME>. The same call again
# (after a kill) restarts it on the same port and store. A first start whose port
# was taken between fx_port's probe and nats-server's bind (another process can
# take it in that window) tries again on a fresh port, up to three times.
fx_nats() {
    local name=$1 port_var="NATS_PORT_$1" try
    if [ -n "${!port_var:-}" ] || [ -n "${2:-}" ]; then
        fx_nats_start "$@"
        return
    fi
    for try in 1 2 3; do
        printf -v "$port_var" '%s' "$(fx_port)"
        fx_nats_start "$@" && return 0
        fx_nats_bind_failed "$name" || return 1
        fx_say "nats-server $name: port ${!port_var} was taken, trying another"
    done
    return 1
}

# fx_nats_bind_failed NAME: true when NAME's last start failed on a taken port; its
# log is set aside, so that the next attempt's log is read fresh.
fx_nats_bind_failed() {
    local log="$FX_WORK/$1/nats.log"
    grep -q 'address already in use' "$log" 2>/dev/null || return 1
    mv "$log" "$log.bind-failed.$(date +%s%N)"
}

fx_nats_start() {
    local name=$1 conf=${2:-} port_var="NATS_PORT_$1" pid_var="NATS_PID_$1" port
    port=${!port_var:-}
    [ -n "$port" ] || port=$(fx_port)
    mkdir -p "$FX_WORK/$name/store"
    local args=(-js -a 127.0.0.1 -p "$port" -sd "$FX_WORK/$name/store")
    if [ -n "$conf" ]; then
        printf '%s\n' "$conf" >"$FX_WORK/$name/nats.conf"
        args=(-c "$FX_WORK/$name/nats.conf")
    fi
    local log="$FX_WORK/$name/nats.log" ready i
    ready=$(grep -c 'Server is ready' "$log" 2>/dev/null) || ready=0
    "$FX_NATS_BIN" "${args[@]}" >>"$log" 2>&1 &
    local pid=$!
    FX_PIDS+=("$pid")
    printf -v "$port_var" '%s' "$port"
    printf -v "$pid_var" '%s' "$pid"
    # Ready when this start logged "Server is ready" (every listener bound) while the
    # process lives: an open port alone may be some other process's listener.
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        [ "$(grep -c 'Server is ready' "$log" 2>/dev/null)" -gt "$ready" ] && {
            fx_say "nats-server $name on :$port (pid $pid)"
            return 0
        }
        sleep 0.1
    done
    fx_say "nats-server $name did not start"
    tail -20 "$log" >&2
    fx_stop_pid "$pid"
    return 1
}

# ------------------------------------------------------------------ jetbridge

# Environment shared by every jetbridge process of a scenario. Scenarios add to it.
fx_env_base() {
    FX_ENV=(APP_LOG_FORMAT=text APP_LOG_LEVEL=info RECONNECT_WAIT=250ms)
}

# fx_jb NAME PORT_TO_WAIT SUBCOMMAND [K=V ...]: starts the jetbridge binary with
# FX_ENV plus the given variables; log in $FX_WORK/NAME.log. Sets JB_PID_<NAME>.
fx_jb() {
    local name=$1 wait_port=$2 cmd=$3
    shift 3
    # FX_WRAP (an array, e.g. valgrind and its options) runs in front of the binary.
    env "${FX_ENV[@]}" "$@" "${FX_WRAP[@]}" "$FX_BIN" "$cmd" >>"$FX_WORK/$name.log" 2>&1 &
    local pid=$!
    FX_PIDS+=("$pid")
    FX_JB_PIDS+=("$pid")
    printf -v "JB_PID_$name" '%s' "$pid"
    if [ "$wait_port" != 0 ] && ! fx_wait_port "$wait_port" "$FX_START_WAIT"; then
        fx_say "$name ($cmd) did not listen on :$wait_port"
        tail -20 "$FX_WORK/$name.log" >&2
        return 1
    fi
    fx_say "$name: jetbridge $cmd (pid $pid)"
}

# fx_publisher NAME NATS_URL: a publisher on a free INGRESS_PORT (PUB_PORT_<NAME>),
# admin on a free port (ADMIN_PORT_<NAME>). Waits for /readyz on the admin port.
# Extra K=V arguments are passed on. Called again with the same NAME, it reuses the
# ports (a restart).
fx_publisher() {
    local name=$1 url=$2 pv="PUB_PORT_$1" av="ADMIN_PORT_$1"
    shift 2
    [ -n "${!pv:-}" ] || printf -v "$pv" '%s' "$(fx_port)"
    [ -n "${!av:-}" ] || printf -v "$av" '%s' "$(fx_port)"
    fx_jb "$name" "${!pv}" publisher NATS_URL="$url" INGRESS_PORT="${!pv}" \
        METRICS_ADDR="127.0.0.1:${!av}" "$@" || return 1
    fx_wait_http "http://127.0.0.1:${!av}/readyz" "$FX_START_WAIT" ||
        { fx_say "$name not ready"; tail -20 "$FX_WORK/$name.log" >&2; return 1; }
}

# fx_dispatcher NAME NATS_URL [K=V ...]: a dispatcher with its admin port.
fx_dispatcher() {
    local name=$1 url=$2 av="ADMIN_PORT_$1"
    shift 2
    [ -n "${!av:-}" ] || printf -v "$av" '%s' "$(fx_port)"
    fx_jb "$name" "${!av}" dispatcher NATS_URL="$url" METRICS_ADDR="127.0.0.1:${!av}" "$@"
}

# fx_sub_apply NATS_URL SINK_PORT [CONFIG_YAML_LINES] [K=V ...]: the loadcheck
# subscription (source loadcheck, type loadcheck.event.v1) to the sink.
fx_sub_apply() {
    local url=$1 sink_port=$2 config=${3:-}
    shift 3 2>/dev/null || shift $#
    local f="$FX_WORK/subscription.yaml"
    cat >"$f" <<EOF
apiVersion: eventing.kyma-project.io/v1alpha2
kind: Subscription
metadata:
  name: loadcheck
  namespace: default
spec:
  sink: http://127.0.0.1:$sink_port/
  source: loadcheck
  types:
    - loadcheck.event.v1
  config:
    maxInFlightMessages: "100"
$config
EOF
    if ! env "${FX_ENV[@]}" "$@" NATS_URL="$url" "$FX_BIN" sub apply -f "$f" >>"$FX_WORK/sub.log" 2>&1; then
        fx_say "sub apply failed"
        cat "$FX_WORK/sub.log" >&2
        return 1
    fi
}

# ------------------------------------------------------------------ loadcheck

# fx_load_bg NAME ARGS...: runs loadcheck in the background; JSON in
# $FX_WORK/NAME.json, progress and table in $FX_WORK/NAME.err. Sets LC_PID_<NAME>
# and remembers the command line for the result table.
fx_load_bg() {
    local name=$1
    shift
    FX_LC_CMD="loadcheck $*"
    "$FX_LOADCHECK" --json "$FX_WORK/$name.json" "$@" >/dev/null 2>"$FX_WORK/$name.err" &
    local pid=$!
    FX_PIDS+=("$pid")
    printf -v "LC_PID_$name" '%s' "$pid"
}

# fx_load_wait NAME: waits for the background loadcheck; returns its exit code and
# prints its table.
fx_load_wait() {
    local pv="LC_PID_$1" rc
    wait "${!pv}"
    rc=$?
    sed -n '/^loadcheck run/,$p' "$FX_WORK/$1.err" >&2
    return "$rc"
}

# fx_json NAME KEY: a value of the loadcheck summary (jq path without the dot).
fx_json() { jq -r ".$2" "$FX_WORK/$1.json" 2>/dev/null; }

# fx_check DESCRIPTION CONDITION...: evaluates a test expression; records a failure.
fx_check() {
    local what=$1
    shift
    if "$@"; then
        fx_say "ok: $what"
    else
        fx_say "FAIL: $what"
        FX_FAIL=1
    fi
}

# Stops every jetbridge process of the scenario with SIGTERM (so a sanitizer build
# runs its leak check) and fails the scenario when a log has a sanitizer report.
# With a build without sanitizers this only stops the processes.
fx_sanitizer_check() {
    local pid log
    for pid in "${FX_JB_PIDS[@]}"; do fx_stop_pid "$pid"; done
    for log in "$FX_WORK"/*.log; do
        [ -f "$log" ] || continue
        if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log"; then
            fx_say "FAIL: sanitizer report in $(basename "$log"):"
            grep -m1 -A25 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log" >&2
            FX_FAIL=1
        fi
    done
}

# fx_result NAME [SCENARIO_TITLE]: prints the result and appends a row to
# $JB_FAULTS_RESULTS (tab-separated) when set. Exit status: 0 pass, 1 fail.
fx_result() {
    local n=$1 title=${2:-$FX_NAME}
    local sent acked delivered lost dup rej errs verdict
    fx_sanitizer_check
    sent=$(fx_json "$n" sent)
    acked=$(fx_json "$n" acked)
    delivered=$(fx_json "$n" delivered)
    lost=$(fx_json "$n" lost)
    dup=$(fx_json "$n" duplicated)
    rej=$(jq -c '.rejected' "$FX_WORK/$n.json" 2>/dev/null)
    errs=$(fx_json "$n" transport_errors)
    verdict=pass
    [ "$FX_FAIL" = 0 ] || verdict=FAIL
    fx_say "loadcheck command: $FX_LC_CMD"
    fx_say "$verdict: sent=$sent acked=$acked delivered=$delivered lost=$lost duplicated=$dup rejected=$rej transport_errors=$errs $FX_NOTES"
    if [ -n "${JB_FAULTS_RESULTS:-}" ]; then
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$title" \
            "${FX_KNOBS:+$FX_KNOBS }tests/faults/$(basename "$0")" "$sent" "$acked" \
            "$delivered" "$lost" "$dup" "$verdict" "rejected $rej, transport errors $errs" \
            "$FX_NOTES" >>"$JB_FAULTS_RESULTS"
    fi
    [ "$FX_FAIL" = 0 ]
}

# The standard checks after a load: loadcheck passed (nothing acked lost), and at
# least MIN events were acknowledged (a run that stored nothing proves nothing).
fx_check_load() { # name loadcheck_rc min_acked
    local n=$1 rc=$2 min=$3
    fx_check "loadcheck exit 0 (no acknowledged event lost)" [ "$rc" = 0 ]
    fx_check "lost == 0" [ "$(fx_json "$n" lost)" = 0 ]
    fx_check "acked >= $min" [ "$(fx_json "$n" acked)" -ge "$min" ]
}

# fx_load_started NAME [SECONDS] [WHAT]: waits until loadcheck passed its probe and
# started the load (the probe proves the subscription's consumer exists); WHAT
# "finished" waits for the end of the load instead.
fx_load_started() {
    local i
    for ((i = 0; i < ${2:-60} * 10; i++)); do
        grep -q "^loadcheck: load ${3:-started}" "$FX_WORK/$1.err" 2>/dev/null && return 0
        local pv="LC_PID_$1"
        kill -0 "${!pv}" 2>/dev/null || break
        sleep 0.1
    done
    fx_say "loadcheck $1 did not start its load"
    cat "$FX_WORK/$1.err" >&2
    return 1
}

# fx_kill9 PID: SIGKILL (a crash) and reap quietly.
fx_kill9() {
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}
