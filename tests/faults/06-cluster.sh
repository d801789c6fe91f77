#!/usr/bin/env bash
# Scenario 5: a 3-node NATS cluster on loopback ports (routes, JetStream with a
# store per node), the stream and the subscription store replicated on all three
# (JS_STREAM_REPLICAS=3), two publishers and two dispatchers. Mid-load the node
# leading the stream is killed with SIGKILL and restarted after DOWN seconds. The
# publishers and dispatchers fail over to the other nodes (each is given one seed
# node and learns the others from it); every acknowledged event must be delivered.
#
# Usage: tests/faults/06-cluster.sh [BUILD_DIR]
# Knobs: RATE (200/s), DURATION (25 s), KILL_AT (8 s), DOWN (5 s), DRAIN (90 s).
# Variables named NATS_PORT_<node>, PUB_PORT_<name>, JB_PID_<name> are set by lib.sh.
# shellcheck disable=SC2154
# shellcheck source=tests/faults/lib.sh
. "$(dirname "$0")/lib.sh"
fx_init cluster "${1:-}"
RATE=${RATE:-200} DURATION=${DURATION:-25} KILL_AT=${KILL_AT:-8} DOWN=${DOWN:-5} DRAIN=${DRAIN:-90}

declare -A CPORT MPORT
pick_ports() {
    local n
    for n in n1 n2 n3; do
        printf -v "NATS_PORT_$n" '%s' "$(fx_port)"
        CPORT[$n]=$(fx_port)
        MPORT[$n]=$(fx_port)
    done
    ROUTES="nats-route://127.0.0.1:${CPORT[n1]}, nats-route://127.0.0.1:${CPORT[n2]}, nats-route://127.0.0.1:${CPORT[n3]}"
}
node_conf() { # name
    local pv="NATS_PORT_$1"
    cat <<CONF
server_name: $1
listen: 127.0.0.1:${!pv}
http: 127.0.0.1:${MPORT[$1]}
jetstream { store_dir: "$FX_WORK/$1/store" }
cluster {
  name: jetbridge-faults
  listen: 127.0.0.1:${CPORT[$1]}
  routes: [ $ROUTES ]
}
CONF
}
start_node() { fx_nats "$1" "$(node_conf "$1")"; }

# The JetStream meta leader as node NAME sees it ("" while there is none).
meta_leader() { curl -s -m 2 "http://127.0.0.1:${MPORT[$1]}/jsz" | jq -r '.meta_cluster.leader // ""' 2>/dev/null; }
wait_meta() { # seconds
    local i n ok
    for ((i = 0; i < $1 * 4; i++)); do
        ok=1
        for n in n1 n2 n3; do [ -n "$(meta_leader "$n")" ] || ok=0; done
        [ "$ok" = 1 ] && return 0
        sleep 0.25
    done
    return 1
}
# The node leading stream "sap" (asks each node; empty when unknown).
stream_leader() {
    local n l
    for n in n1 n2 n3; do
        l=$(curl -s -m 2 "http://127.0.0.1:${MPORT[$n]}/jsz?streams=true" |
            jq -r '[.account_details[]?.stream_detail[]? | select(.name=="sap") | .cluster.leader][0] // ""' 2>/dev/null)
        [ -n "$l" ] && [ "$l" != null ] && { echo "$l"; return; }
    done
}

# Each node has three ports, and every node's configuration names the others' route
# ports; a port taken by another process between fx_port's probe and a node's bind
# therefore restarts the whole cluster on fresh ports (up to three times).
start_cluster() {
    local try n up
    for try in 1 2 3; do
        pick_ports
        up=1
        for n in n1 n2 n3; do start_node "$n" || { up=0; break; }; done
        [ "$up" = 1 ] && return 0
        fx_nats_bind_failed "$n" || return 1
        fx_say "nats-server $n: a port was taken, starting the cluster again on fresh ports"
        for n in n1 n2 n3; do
            local pv="NATS_PID_$n"
            fx_stop_pid "${!pv:-}"
            rm -rf "${FX_WORK:?}/$n/store"
        done
    done
    return 1
}
start_cluster || exit 1
wait_meta 30 || { fx_say "no JetStream meta leader"; FX_FAIL=1; exit 1; }
fx_say "JetStream cluster up, meta leader $(meta_leader n1)"

# NATS_URL for a process: its seed node. nats.c learns the other members from the
# seed's INFO (connect_urls) and fails over to them. URL_LIST=1 passes all three,
# comma-separated, first the seed (needs NATS_URL list support in common/nats.c:
# natsOptions_SetURL takes a single URL).
url_from() {
    local first=$1 n pv="NATS_PORT_$1" u
    u="nats://127.0.0.1:${!pv}"
    if [ "${URL_LIST:-0}" = 1 ]; then
        for n in n1 n2 n3; do
            pv="NATS_PORT_$n"
            [ "$n" = "$first" ] || u="$u,nats://127.0.0.1:${!pv}"
        done
    fi
    echo "$u"
}

fx_env_base
FX_ENV+=(JS_STREAM_REPLICAS=3)
SINK=$(fx_port)
fx_publisher pub1 "$(url_from n1)" || exit 1
fx_publisher pub2 "$(url_from n2)" || exit 1
fx_sub_apply "$(url_from n3)" "$SINK" || exit 1
fx_dispatcher disp1 "$(url_from n2)" || exit 1
fx_dispatcher disp2 "$(url_from n3)" || exit 1

fx_load_bg lc --publish-url "http://127.0.0.1:$PUB_PORT_pub1/publish" \
    --publish-url "http://127.0.0.1:$PUB_PORT_pub2/publish" --sink-port "$SINK" \
    --rate "$RATE" --duration "$DURATION" --connections 8 --drain "$DRAIN" --timeout 10
fx_load_started lc || exit 1
sleep "$KILL_AT"
victim=$(stream_leader)
case "$victim" in n1 | n2 | n3) ;; *) victim=n1 ;; esac
vpid="NATS_PID_$victim"
fx_say "kill -9 $victim (stream leader; pid ${!vpid})"
fx_kill9 "${!vpid}"
sleep "$DOWN"
start_node "$victim" || exit 1
fx_load_wait lc
rc=$?

fx_check_load lc "$rc" $((RATE * DURATION / 2))
for p in pub1 pub2 disp1 disp2; do
    pv="JB_PID_$p"
    fx_check "$p still running" kill -0 "${!pv}"
done
fx_check "new stream leader after the restart" [ -n "$(stream_leader)" ]
FX_NOTES="R3, killed $victim (stream leader) for ${DOWN}s at t=${KILL_AT}s; 2 publishers, 2 dispatchers"
FX_KNOBS="RATE=$RATE DURATION=$DURATION KILL_AT=$KILL_AT DOWN=$DOWN"
fx_result lc "5. 3-node cluster, R3, leader kill -9 + restart"
