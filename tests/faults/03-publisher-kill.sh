#!/usr/bin/env bash
# Scenario 2b: the publisher is killed with SIGKILL mid-load and restarted on the
# same port. Clients see errors (connection reset/refused) only for events that were
# not acknowledged; every acknowledged event is delivered. An event stored just
# before the kill whose 204 never left the process may still be delivered: loadcheck
# reports it as "delivered not acked" (the client would retry it; the
# Nats-Msg-Id duplicate window makes that retry safe).
#
# Usage: tests/faults/03-publisher-kill.sh [BUILD_DIR]
# Knobs: RATE (200/s), DURATION (20 s), KILL_AT (6 s), DOWN (2 s), DRAIN (90 s).
# Variables named NATS_PORT_<node>, PUB_PORT_<name>, JB_PID_<name> are set by lib.sh.
# shellcheck disable=SC2154
# shellcheck source=tests/faults/lib.sh
. "$(dirname "$0")/lib.sh"
fx_init publisher-kill "${1:-}"
RATE=${RATE:-200} DURATION=${DURATION:-20} KILL_AT=${KILL_AT:-6} DOWN=${DOWN:-2} DRAIN=${DRAIN:-90}

fx_env_base
fx_nats n1 || exit 1
URL="nats://127.0.0.1:$NATS_PORT_n1"
SINK=$(fx_port)
fx_publisher pub "$URL" || exit 1
fx_sub_apply "$URL" "$SINK" || exit 1
fx_dispatcher disp "$URL" || exit 1

fx_load_bg lc --publish-url "http://127.0.0.1:$PUB_PORT_pub/publish" --sink-port "$SINK" \
    --rate "$RATE" --duration "$DURATION" --connections 8 --drain "$DRAIN" --timeout 5
fx_load_started lc || exit 1
sleep "$KILL_AT"
fx_say "kill -9 publisher (pid $JB_PID_pub)"
fx_kill9 "$JB_PID_pub"
sleep "$DOWN"
fx_publisher pub "$URL" || exit 1
fx_load_wait lc
rc=$?

fx_check_load lc "$rc" $((RATE * KILL_AT / 2))
fx_check "clients saw errors while the publisher was down" [ "$(fx_json lc transport_errors)" -gt 0 ]
FX_NOTES="publisher down ${DOWN}s at t=${KILL_AT}s; delivered but not acked: $(fx_json lc delivered_unacked)"
FX_KNOBS="RATE=$RATE DURATION=$DURATION KILL_AT=$KILL_AT DOWN=$DOWN"
fx_result lc "2b. publisher kill -9 + restart"
