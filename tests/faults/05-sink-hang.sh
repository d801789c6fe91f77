#!/usr/bin/env bash
# Scenario 4: the sink never answers requests that arrive during HANG_SECONDS. The
# subscription sets a request timeout (spec.config.timeout PT2S): the dispatcher
# gives up on each hung request after 2 s, retries with backoff, and delivers
# everything once the sink answers again.
#
# Usage: tests/faults/05-sink-hang.sh [BUILD_DIR]
# Knobs: RATE (100/s), HANG_SECONDS (10), HANG_AFTER (3 s into the load),
# DURATION (HANG_SECONDS + 10 s), DRAIN (90 s).
# Variables named NATS_PORT_<node>, PUB_PORT_<name>, JB_PID_<name> are set by lib.sh.
# shellcheck disable=SC2154
# shellcheck source=tests/faults/lib.sh
. "$(dirname "$0")/lib.sh"
fx_init sink-hang "${1:-}"
RATE=${RATE:-100} HANG_SECONDS=${HANG_SECONDS:-10} HANG_AFTER=${HANG_AFTER:-3} DRAIN=${DRAIN:-90}
DURATION=${DURATION:-$((HANG_SECONDS + 10))}

fx_env_base
fx_nats n1 || exit 1
URL="nats://127.0.0.1:$NATS_PORT_n1"
SINK=$(fx_port)
fx_publisher pub "$URL" || exit 1
fx_sub_apply "$URL" "$SINK" "    timeout: PT2S
    backoffDelay: PT1S
    backoffMax: PT5S" || exit 1
fx_dispatcher disp "$URL" || exit 1

fx_load_bg lc --publish-url "http://127.0.0.1:$PUB_PORT_pub/publish" --sink-port "$SINK" \
    --rate "$RATE" --duration "$DURATION" --connections 8 --drain "$DRAIN" \
    --sink-hang-seconds "$HANG_SECONDS" --sink-fault-after "$HANG_AFTER"
fx_load_wait lc
rc=$?

fx_check_load lc "$rc" $((RATE * DURATION * 9 / 10))
fx_check "the sink did hang some requests" [ "$(fx_json lc sink_hung)" -gt 0 ]
fx_check "dispatcher still running" kill -0 "$JB_PID_disp"
FX_NOTES="sink hung ${HANG_SECONDS}s, timeout PT2S: $(fx_json lc sink_hung) requests never answered"
FX_KNOBS="RATE=$RATE DURATION=$DURATION HANG_SECONDS=$HANG_SECONDS"
fx_result lc "4. sink hangs ${HANG_SECONDS}s (timeout PT2S)"
