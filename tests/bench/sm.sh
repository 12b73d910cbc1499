#!/usr/bin/env bash
# tests/bench/sm.sh: messages/s with stream management (XEP-0198) off
# against on — the cost of counting, keeping and acknowledging stanzas.
#
# One mynad (tests/bench/myna.conf with `sm` added to its modules) pinned
# to CPU 0, xmppload on CPU 1, as run.sh does; accounts registered
# in-band; then the throughput scenario alternately without and with -M
# (the clients enable stream management after bind, answer every <r/>,
# and send <a/> unasked every BENCH_SM_ACK stanzas), BENCH_SM_ROUNDS times
# each, so that drift on a shared machine hits both alike.  Prints the
# RESULT lines and the median of each.
#
# Environment: BENCH_BUILD (build-bench: a release build with -Dbench=true,
# set up if missing), BENCH_PORT (15226), BENCH_PAIRS (50), BENCH_WINDOW
# (10), BENCH_DURATION (10), BENCH_SM_ACK (5), BENCH_SM_ROUNDS (3).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BENCH_BUILD:-$ROOT/build-bench}
PORT=${BENCH_PORT:-15226}
PAIRS=${BENCH_PAIRS:-50}
WINDOW=${BENCH_WINDOW:-10}
DUR=${BENCH_DURATION:-10}
ACK=${BENCH_SM_ACK:-5}
ROUNDS=${BENCH_SM_ROUNDS:-3}
XL="$BUILD/tests/bench/xmppload"

[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$ROOT" -Dbuildtype=release -Dbench=true >/dev/null
ninja -C "$BUILD" >/dev/null

WORK=$(mktemp -d /tmp/myna-bench-sm-XXXXXX)
SERVER_PID=""
cleanup () {
  [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

sed -e "s|^port = 15225\$|port = $PORT|" \
    -e "s|^modules = \(.*\)\$|modules = \1;sm|" \
    "$ROOT/tests/bench/myna.conf" > "$WORK/myna.conf"
(cd "$WORK" && exec taskset -c 0 "$BUILD/core/mynad" -c "$WORK/myna.conf") >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  ss -ltn "sport = :$PORT" | grep -q LISTEN && break
  sleep 0.1
done

xl () { taskset -c 1 "$XL" -P "$PORT" -D localhost -L myna "$@"; }
xl -s register -n $(( 2 * PAIRS )) -c 20 >/dev/null

declare -a OFF ON
for r in $(seq 1 "$ROUNDS"); do
  for mode in off on; do
    args=(-s throughput -n $(( 2 * PAIRS )) -p "$PAIRS" -w "$WINDOW" -d "$DUR")
    [ $mode = on ] && args+=(-M "$ACK")
    line=$(xl "${args[@]}" 2>/dev/null | grep '^RESULT') || { echo "xmppload failed ($mode)" >&2; exit 1; }
    echo "$line"
    v=$(sed -n 's/.*delivered_per_s=\([0-9]*\).*/\1/p' <<<"$line")
    if [ $mode = on ]; then ON+=("$v"); else OFF+=("$v"); fi
  done
done
median () { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
off=$(median "${OFF[@]}")
on=$(median "${ON[@]}")
echo "SUMMARY sm_off_msgs_per_s=$off sm_on_msgs_per_s=$on ack_every=$ACK cost_pct=$(awk -v a="$off" -v b="$on" 'BEGIN {printf "%.1f", (a - b) * 100 / a}')"
