#!/usr/bin/env bash
# Scenario 2a: the dispatcher is killed with SIGKILL mid-load and restarted. Events
# it had fetched but not acknowledged are redelivered after the consumer's AckWait
# (JS_CONSUMER_ACK_WAIT, 30 s by default), so nothing acknowledged to a publisher is
# lost; a few may arrive twice (at-least-once), which loadcheck counts.
# So that the kill surely finds deliveries in flight, the sink holds every request
# (never answers) from 1 s before the kill for HOLD seconds (3): the killed
# dispatcher has up to maxInFlightMessages (100) events fetched and unacknowledged,
# which only AckWait brings back (the latency max shows it).
#
# Usage: tests/faults/02-dispatcher-kill.sh [BUILD_DIR]
# Knobs: RATE (200/s), DURATION (20 s), KILL_AT (6 s), DOWN (3 s), HOLD (3 s; 0: no
# held requests), DRAIN (90 s).
# Variables named NATS_PORT_<node>, PUB_PORT_<name>, JB_PID_<name> are set by lib.sh.
# shellcheck disable=SC2154
# shellcheck source=tests/faults/lib.sh
. "$(dirname "$0")/lib.sh"
fx_init dispatcher-kill "${1:-}"
RATE=${RATE:-200} DURATION=${DURATION:-20} KILL_AT=${KILL_AT:-6} DOWN=${DOWN:-3} DRAIN=${DRAIN:-90}
HOLD=${HOLD:-3}

fx_env_base
fx_nats n1 || exit 1
URL="nats://127.0.0.1:$NATS_PORT_n1"
SINK=$(fx_port)
fx_publisher pub "$URL" || exit 1
fx_sub_apply "$URL" "$SINK" || exit 1
fx_dispatcher disp "$URL" || exit 1

fx_load_bg lc --publish-url "http://127.0.0.1:$PUB_PORT_pub/publish" --sink-port "$SINK" \
    --rate "$RATE" --duration "$DURATION" --connections 8 --drain "$DRAIN" \
    --sink-hang-seconds "$HOLD" --sink-fault-after $((KILL_AT - 1))
fx_load_started lc || exit 1
sleep "$KILL_AT"
fx_say "kill -9 dispatcher (pid $JB_PID_disp)"
fx_kill9 "$JB_PID_disp"
sleep "$DOWN"
fx_dispatcher disp "$URL" || exit 1
fx_load_wait lc
rc=$?

fx_check_load lc "$rc" $((RATE * DURATION * 9 / 10))
fx_check "no publish failed (the publisher is not involved)" \
    [ "$(fx_json lc rejected_total)" = 0 -a "$(fx_json lc transport_errors)" = 0 ]
FX_NOTES="dispatcher down ${DOWN}s at t=${KILL_AT}s; sink held $(fx_json lc sink_hung) requests around the kill; latency max $(fx_json lc latency_ms.max) ms (AckWait redelivery)"
FX_KNOBS="RATE=$RATE DURATION=$DURATION KILL_AT=$KILL_AT DOWN=$DOWN HOLD=$HOLD"
fx_result lc "2a. dispatcher kill -9 + restart"
