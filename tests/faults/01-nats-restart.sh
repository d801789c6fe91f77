#!/usr/bin/env bash
# Scenario 1: nats-server killed with SIGKILL mid-load and restarted on the same
# port and file store. Publisher and dispatcher must reconnect; every event the
# publisher acknowledged (204) must reach the sink. Events published while NATS is
# down are rejected (502/503/504), never acknowledged.
#
# Usage: tests/faults/01-nats-restart.sh [BUILD_DIR]
# Knobs (environment): RATE (200/s), DURATION (20 s), KILL_AT (6 s into the load),
# DOWN (3 s), DRAIN (90 s at most).
# Variables named NATS_PORT_<node>, PUB_PORT_<name>, JB_PID_<name> are set by lib.sh.
# shellcheck disable=SC2154
# shellcheck source=tests/faults/lib.sh
. "$(dirname "$0")/lib.sh"
fx_init nats-restart "${1:-}"
RATE=${RATE:-200} DURATION=${DURATION:-20} KILL_AT=${KILL_AT:-6} DOWN=${DOWN:-3} DRAIN=${DRAIN:-90}

fx_env_base
fx_nats n1 || exit 1
URL="nats://127.0.0.1:$NATS_PORT_n1"
SINK=$(fx_port)
fx_publisher pub "$URL" || exit 1
fx_sub_apply "$URL" "$SINK" || exit 1
fx_dispatcher disp "$URL" || exit 1

fx_load_bg lc --publish-url "http://127.0.0.1:$PUB_PORT_pub/publish" --sink-port "$SINK" \
    --rate "$RATE" --duration "$DURATION" --connections 8 --drain "$DRAIN"
fx_load_started lc || exit 1
sleep "$KILL_AT"
fx_say "kill -9 nats-server (pid $NATS_PID_n1)"
fx_kill9 "$NATS_PID_n1"
sleep "$DOWN"
fx_nats n1 || exit 1
fx_load_wait lc
rc=$?

fx_check_load lc "$rc" $((RATE * KILL_AT / 2))
fx_check "publisher still running" kill -0 "$JB_PID_pub"
fx_check "dispatcher still running" kill -0 "$JB_PID_disp"
FX_NOTES="nats down ${DOWN}s at t=${KILL_AT}s"
FX_KNOBS="RATE=$RATE DURATION=$DURATION KILL_AT=$KILL_AT DOWN=$DOWN"
fx_result lc "1. nats-server kill -9 + restart (file store)"
