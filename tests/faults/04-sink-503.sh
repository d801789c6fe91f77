#!/usr/bin/env bash
# Scenario 3: the sink answers 503 to half of the requests for FAIL_SECONDS, then
# is healthy. The dispatcher retries with backoff (the subscription sets
# backoffDelay PT1S, backoffMax PT5S) and every acknowledged event arrives. The
# issue asks for a minute; the default here is 20 s to keep CI short: run
# FAIL_SECONDS=60 tests/faults/04-sink-503.sh for the full minute.
#
# Usage: tests/faults/04-sink-503.sh [BUILD_DIR]
# Knobs: RATE (200/s), DURATION (30 s), FAIL_SECONDS (20), FAIL_AFTER (3 s into the
# load), DRAIN (90 s).
# Variables named NATS_PORT_<node>, PUB_PORT_<name>, JB_PID_<name> are set by lib.sh.
# shellcheck disable=SC2154
# shellcheck source=tests/faults/lib.sh
. "$(dirname "$0")/lib.sh"
fx_init sink-503 "${1:-}"
RATE=${RATE:-200} FAIL_SECONDS=${FAIL_SECONDS:-20} FAIL_AFTER=${FAIL_AFTER:-3} DRAIN=${DRAIN:-90}
DURATION=${DURATION:-$((FAIL_SECONDS + 10))}

fx_env_base
fx_nats n1 || exit 1
URL="nats://127.0.0.1:$NATS_PORT_n1"
SINK=$(fx_port)
fx_publisher pub "$URL" || exit 1
fx_sub_apply "$URL" "$SINK" "    backoffDelay: PT1S
    backoffMax: PT5S" || exit 1
fx_dispatcher disp "$URL" || exit 1

fx_load_bg lc --publish-url "http://127.0.0.1:$PUB_PORT_pub/publish" --sink-port "$SINK" \
    --rate "$RATE" --duration "$DURATION" --connections 8 --drain "$DRAIN" \
    --sink-fail-ratio 0.5 --sink-fail-seconds "$FAIL_SECONDS" --sink-fault-after "$FAIL_AFTER"
fx_load_wait lc
rc=$?

fx_check_load lc "$rc" $((RATE * DURATION * 9 / 10))
fx_check "the sink did answer 503" [ "$(fx_json lc sink_failed)" -gt 0 ]
FX_NOTES="sink 50% 503 for ${FAIL_SECONDS}s: $(fx_json lc sink_failed) answers 503"
FX_KNOBS="RATE=$RATE DURATION=$DURATION FAIL_SECONDS=$FAIL_SECONDS"
fx_result lc "3. sink 50% 503 for ${FAIL_SECONDS}s, then healthy"
