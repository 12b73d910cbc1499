#!/usr/bin/env bash
# tests/bench/mam-bench.sh: the message archive's benchmarks (issue 12).
#
#  1. A MAM page query's p50/p99 on an archive of BENCH_MAM_N (1,000,000)
#     messages: mambench fills one account's archive through the storage
#     API (mynad stopped), then mynad (tests/bench/myna.conf + mam) answers
#     BENCH_MAM_ROUNDS rounds of each query over XMPP: first page, a middle
#     page by after-id and by before-id, the last page, a with= filter.
#  2. Messages/s with mam on against off: xmppload's throughput scenario
#     (BENCH_PAIRS pairs, BENCH_WINDOW in flight, BENCH_DURATION s) on
#     tests/bench/myna.conf as it is, then with mam added to its modules.
#     mynad on CPU 0, the load on CPU 1, as run.sh does.  Each mode also
#     prints mynad's CPU time per delivered message (cpu_us_per_msg, up to
#     its exit, so the storage writer's backlog flushed at shutdown counts)
#     and the storage writer thread's share (writer_us_per_msg): on a
#     shared machine these vary less than messages/s.
#     It also prints mynad's peak RSS (peak_rss_kb, VmHWM up to its exit)
#     and, from `mynactl stats` just before the stop, how often storage
#     backpressure paused reading (storage_backpressure_pauses).
#  3. The writer alone: `mambench append DB HOST OWNERS N BATCH` (not run
#     here) times appends round-robin over OWNERS archives.
#
# Environment: BENCH_BUILD (default build), BENCH_MAM_N=1000000,
# BENCH_MAM_ROUNDS=200, BENCH_PAIRS=50, BENCH_WINDOW=10, BENCH_DURATION=10,
# BENCH_PORT=15226, BENCH_ONLY=pages|throughput (default both),
# BENCH_GLOBAL: extra [global] lines for mynad (e.g. 'storage_backlog_high = 0'
# to turn backpressure off).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BENCH_BUILD:-$ROOT/build}
N=${BENCH_MAM_N:-1000000}
ROUNDS=${BENCH_MAM_ROUNDS:-200}
PAIRS=${BENCH_PAIRS:-50}
WINDOW=${BENCH_WINDOW:-10}
DUR=${BENCH_DURATION:-10}
PORT=${BENCH_PORT:-15226}
ONLY=${BENCH_ONLY:-}
MYNAD="$BUILD/core/mynad"
MYNACTL="$BUILD/core/mynactl"
XL="$BUILD/tests/bench/xmppload"
MB="$BUILD/tests/bench/mambench"
ninja -C "$BUILD" core/mynad core/mynactl tests/bench/xmppload tests/bench/mambench \
  modules/mam/mod_mam.so >/dev/null

WORK=$(mktemp -d /tmp/myna-mam-bench.XXXXXX)
PID=""
cleanup () {
  [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
log () { printf '== %s\n' "$*" >&2; }

# conf DIR MODULES: the benchmark configuration with @MODULES and PORT.
conf () {
  mkdir -p "$1"
  sed -e "s/^modules = .*/modules = $2/" -e "s/15225/$PORT/" \
      "$ROOT/tests/bench/myna.conf" > "$1/myna.conf"
  printf '\n[module:mam]\narchive_expires_after = never\n' >> "$1/myna.conf"
  if [ -n "${BENCH_GLOBAL:-}" ]; then
    printf '%b\n' "$BENCH_GLOBAL" > "$1/global.extra"
    sed -i "/^\[global\]/r $1/global.extra" "$1/myna.conf"
  fi
}

start () {
  (cd "$1" && exec taskset -c 0 "$MYNAD" -c myna.conf) >"$1/mynad.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 300); do
    ss -Hltn "sport = :$PORT" | grep -q . && return 0
    kill -0 "$PID" 2>/dev/null || { cat "$1/mynad.log" >&2; return 1; }
    sleep 0.1
  done
  return 1
}

stop () {
  kill -TERM "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=""
}

# stop_counting DELIVERED: stop, following mynad's CPU ticks (all threads,
# and the storage writer's) until it exits; prints them per message.
stop_counting () {
  local all=0 writer=0 hwm=0 t v tck
  # Once before: a mynad with nothing to flush may be gone at the first poll.
  all=$(awk '{print $14 + $15}' "/proc/$PID/stat" 2>/dev/null || echo 0)
  hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$PID/status" 2>/dev/null || echo 0)
  for t in /proc/"$PID"/task/*; do
    [ "$(cat "$t/comm" 2>/dev/null)" = myna-storage ] \
      && v=$(awk '{print $14 + $15}' "$t/stat" 2>/dev/null) && [ -n "$v" ] && writer=$v
  done
  kill -TERM "$PID" 2>/dev/null || true
  while [ -e "/proc/$PID/stat" ]; do
    v=$(awk '{print $14 + $15}' "/proc/$PID/stat" 2>/dev/null) && [ -n "$v" ] && all=$v
    v=$(awk '/^VmHWM:/ {print $2}' "/proc/$PID/status" 2>/dev/null) && [ -n "$v" ] && hwm=$v
    for t in /proc/"$PID"/task/*; do
      [ "$(cat "$t/comm" 2>/dev/null)" = myna-storage ] \
        && v=$(awk '{print $14 + $15}' "$t/stat" 2>/dev/null) && [ -n "$v" ] && writer=$v
    done
    sleep 0.02
  done
  wait "$PID" 2>/dev/null || true
  PID=""
  tck=$(getconf CLK_TCK)
  [ "${1:-0}" -gt 0 ] && awk -v a="$all" -v w="$writer" -v t="$tck" -v n="$1" \
    -v h="$hwm" \
    'BEGIN { printf "cpu_us_per_msg=%.2f writer_us_per_msg=%.2f peak_rss_kb=%d\n", a * 1e6 / t / n, w * 1e6 / t / n, h }'
}

BASE_MODULES=$(sed -n 's/^modules = //p' "$ROOT/tests/bench/myna.conf")

if [ "$ONLY" != throughput ]; then
  d="$WORK/pages"
  conf "$d" "$BASE_MODULES;mam"
  log "pages: creating big@localhost"
  start "$d"
  (cd "$d" && printf 'big-pw\n' | "$MYNACTL" -c myna.conf user add big@localhost >/dev/null)
  stop
  log "pages: filling its archive with $N messages through the storage API"
  base=$("$MB" fill "$d/var/myna.db" localhost big "$N" | sed -n 's/^BASE=//p')
  log "pages: $ROUNDS rounds of each query"
  start "$d"
  taskset -c 1 "$MB" query "$PORT" localhost big big-pw "$N" "$ROUNDS" "$base"
  stop
fi

if [ "$ONLY" != pages ]; then
  for mode in off on; do
    d="$WORK/tp-$mode"
    if [ $mode = on ]; then conf "$d" "$BASE_MODULES;mam"; else conf "$d" "$BASE_MODULES"; fi
    start "$d"
    taskset -c 1 "$XL" -s register -P "$PORT" -n $((2 * PAIRS)) -c 50 -T 600 >/dev/null
    stop
    start "$d"
    log "throughput with mam $mode ($PAIRS pairs, window $WINDOW, ${DUR}s)"
    result=$(taskset -c 1 "$XL" -s throughput -P "$PORT" -L "myna-mam-$mode" -p "$PAIRS" \
               -w "$WINDOW" -d "$DUR" | grep '^RESULT' || true)
    delivered=$(printf '%s\n' "$result" | sed -n 's/.* delivered=\([0-9]*\).*/\1/p')
    bp=$( (cd "$d" && "$MYNACTL" -c myna.conf stats 2>/dev/null) \
          | awk '/^storage_backpressure_pauses|^storage_backlog / {printf "%s=%s ", $1, $2}' || true)
    [ -n "$bp" ] && log "at the stop: $bp"

    printf '%s %s\n' "$result" "$(stop_counting "${delivered:-0}")"
    if [ $mode = on ]; then
      rows=$(sqlite3 "$d/var/myna.db" "SELECT count(*) FROM archive JOIN archive_owner USING (owner) WHERE archive = 'mam/localhost'" \
             2>/dev/null || echo '?')
      echo "RESULT scenario=mam-archived rows=$rows"
    fi
  done
fi
