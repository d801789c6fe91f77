#!/usr/bin/env bash
# HTTP-level fuzz of a running publisher: starts nats-server and `jetbridge
# publisher` (from BUILD_DIR, the sanitizer build by default), runs httpfuzz.py
# against it, then checks what a user would care about:
#  - the publisher is alive and answers /healthz (also during the slowloris phase);
#  - its peak RSS (VmHWM) stays under RSS_LIMIT_MB (512: ASan's shadow memory counts);
#  - after SIGTERM it exits 0 and its log has no AddressSanitizer, LeakSanitizer or
#    UndefinedBehaviorSanitizer report.
#
# Usage: tests/fuzz/http/run.sh [BUILD_DIR]   (default build/asan)
# Knobs: FUZZ_HTTP_SECONDS (60), FUZZ_HTTP_SEED (time), SLOWLORIS (200 connections),
#        RSS_LIMIT_MB (512).
# Variables named NATS_PORT_<node>, PUB_PORT_<name>, JB_PID_<name> are set by lib.sh.
# shellcheck disable=SC2154
# shellcheck source=tests/faults/lib.sh
. "$(dirname "$0")/../../faults/lib.sh"
fx_init fuzz-http "${1:-build/asan}"
SECS=${FUZZ_HTTP_SECONDS:-60} SEED=${FUZZ_HTTP_SEED:-$(date +%s)} SLOWLORIS=${SLOWLORIS:-200}
RSS_LIMIT_MB=${RSS_LIMIT_MB:-512}

fx_env_base
fx_nats n1 || exit 1
# LeakSanitizer runs at exit; a report must not abort before the log is written.
fx_publisher pub "nats://127.0.0.1:$NATS_PORT_n1" HTTP_READ_TIMEOUT=5s HTTP_IDLE_TIMEOUT=10s \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 || exit 1
RSS_START=$(fx_vmhwm "$JB_PID_pub")

python3 "$(dirname "$0")/httpfuzz.py" --port "$PUB_PORT_pub" --seconds "$SECS" --seed "$SEED" \
    --slowloris "$SLOWLORIS"
fuzz_rc=$?
RSS_PEAK=$(fx_vmhwm "$JB_PID_pub")

fx_check "httpfuzz: publisher healthy throughout (seed $SEED)" [ "$fuzz_rc" = 0 ]
fx_check "publisher alive after the fuzz" kill -0 "$JB_PID_pub"
fx_check "publisher peak RSS ${RSS_PEAK} kB (start ${RSS_START} kB) < ${RSS_LIMIT_MB} MB" \
    [ "${RSS_PEAK:-0}" -lt $((RSS_LIMIT_MB * 1024)) ]
kill -TERM "$JB_PID_pub" 2>/dev/null
wait "$JB_PID_pub"
exit_rc=$?
fx_check "publisher exits 0 on SIGTERM" [ "$exit_rc" = 0 ]
if grep -nE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer' \
    "$FX_WORK/pub.log" >&2; then
    fx_check "no sanitizer report in the publisher log" false
    grep -A30 -m1 -E 'ERROR: |runtime error:' "$FX_WORK/pub.log" >&2
else
    fx_check "no sanitizer report in the publisher log" true
fi
if [ "$FX_FAIL" = 0 ]; then
    fx_say "pass: seed $SEED, ${SECS}s, peak RSS ${RSS_PEAK} kB"
else
    fx_say "FAIL (rerun with FUZZ_HTTP_SEED=$SEED)"
fi
[ "$FX_FAIL" = 0 ]
