# Sourced by perf/bench_publisher.sh and perf/bench_dispatcher.sh: scrapes a
# process's /metrics (admin port) in the background while a measurement runs, so
# that the peak RSS the benchmark prints includes what rendering the metrics takes.
# Shell builtins only (bash's /dev/tcp), so the scraper costs the measured machine
# next to nothing: one GET every SCRAPE_MS ms (default 1000; 0 turns scraping off).
#
#   scrape_start PORT...   start one scraper for these admin ports
#   scrape_stop            stop it; sets SCRAPES (answers read) and SCRAPE_BYTES
#                          (the largest answer, bytes); a failed GET counts nothing
#   scrape_abort           stop it without figures: a benchmark's EXIT trap calls it
#                          before it waits for its children (the scraper runs as long
#                          as the benchmark's shell, so that wait would never end)
#   peak_rss_kib PID       the process's peak RSS so far (VmHWM, KiB; 0: gone)
#   peak_rss_mib PID       the same in MiB, one decimal (as the benchmarks print it)

peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
peak_rss_mib() { awk -v k="$(peak_rss_kib "$1")" 'BEGIN{printf "%.1f", k / 1024}'; }

# One GET /metrics on 127.0.0.1:$1; prints the answer's size in bytes (0: failed).
# A line that takes more than 5 s ends the read, so a process that stops answering
# cannot hold the scraper (and scrape_stop's wait) forever.
scrape_once() {
  local n=0 line
  { exec 7<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || { echo 0; return; }
  printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&7
  while IFS= read -r -t 5 -u 7 line; do n=$((n + ${#line} + 1)); done
  exec 7<&-
  echo "$n"
}

SCRAPER_PID=
scrape_start() {
  SCRAPE_FILE=$(mktemp "${TMPDIR:-/tmp}/jb-scrape.XXXXXX")
  [[ ${SCRAPE_MS:-1000} -gt 0 ]] || return 0
  local every
  every=$(awk -v ms="${SCRAPE_MS:-1000}" 'BEGIN{printf "%.3f", ms / 1000}')
  local parent=$$ # in the subshell, $$ is still the benchmark's shell
  (
    trap 'exit 0' TERM
    # A benchmark that exits without scrape_stop (an error under set -e, a signal)
    # leaves no scraper behind: it ends within one period of its parent.
    while kill -0 "$parent" 2>/dev/null; do
      for p in "$@"; do echo "$p $(scrape_once "$p")" >>"$SCRAPE_FILE"; done
      sleep "$every"
    done
    rm -f "$SCRAPE_FILE"
  ) &
  SCRAPER_PID=$!
}

scrape_abort() {
  if [[ -n ${SCRAPER_PID:-} ]]; then
    kill -TERM "$SCRAPER_PID" 2>/dev/null || true
  fi
  SCRAPER_PID=
  if [[ -n ${SCRAPE_FILE:-} ]]; then
    rm -f "$SCRAPE_FILE"
  fi
  return 0
}

scrape_stop() {
  if [[ -n $SCRAPER_PID ]]; then
    kill -TERM "$SCRAPER_PID" 2>/dev/null || true
    wait "$SCRAPER_PID" 2>/dev/null || true
  fi
  SCRAPER_PID=
  SCRAPES=$(awk '$2 > 0 {n++} END {print n + 0}' "$SCRAPE_FILE")
  SCRAPE_BYTES=$(awk '$2 > m {m = $2} END {print m + 0}' "$SCRAPE_FILE")
  rm -f "$SCRAPE_FILE"
}
