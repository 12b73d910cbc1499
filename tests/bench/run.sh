#!/usr/bin/env bash
# tests/bench/run.sh: benchmarks Myna against Prosody and ejabberd.
#
# Builds Myna (build-bench, release) with the xmppload load generator,
# installs prosody and ejabberd from Debian if missing (without letting
# their services start), then for each server: fresh data, accounts created
# in-band, and for each scenario a freshly started server pinned to CPU 0
# (taskset -c 0) with xmppload on CPU 1.  Prints the RESULT lines as they
# come and one table at the end.  Only 127.0.0.0/8 is used.
#
# Environment (defaults: about 20 minutes for the three servers, most of it
# the churn scenario):
#   BENCH_N=2000            idle sessions (and accounts)
#   BENCH_DURATION=10       seconds per measured scenario
#   BENCH_PAIRS=50          pairs for throughput/latency
#   BENCH_WINDOW=10         messages in flight per pair (throughput)
#   BENCH_RATE=2000         aggregate msgs/s (latency; it runs again at half of
#                           the server's own throughput from the same run)
#   BENCH_LOGIN_C=50        logins in flight
#   BENCH_SERVERS="myna prosody ejabberd"
#   BENCH_PORT=15225        c2s port (replaces 15225 in tests/bench/myna.conf)
#   BENCH_CHURN_TOTAL=100000  churn: sessions logged in and out in all (Myna)
#   BENCH_CHURN_WAVE=8500     churn: sessions per wave (Myna; below the
#                             open-file limit of both processes)
#   BENCH_CHURN_PEER_TOTAL=10000, BENCH_CHURN_PEER_WAVE=2000: the same for
#                           Prosody and ejabberd, smaller by default because
#                           they log in at 50-110/s (100,000 would take 15 and
#                           35 minutes); set them to 100000/8500 for like for like
#   BENCH_CHURN_C=100       churn: logins in flight
#   BENCH_KEEP=1            keep the scratch directory
#   BENCH_SCENARIOS="idle logins throughput latency churn"  the scenarios
#                           run (accounts are always registered first); add
#                           "mobile" for issue 12's: throughput with each
#                           server's mobile modules loaded (stream
#                           management, carbons, CSI) without and with its
#                           message archive (MAM, archiving every message, as
#                           each ships it), then with the clients enabling
#                           stream management (acking every BENCH_SM_ACK=5);
#                           add "muc" for issue 13's: each server's MUC
#                           service (conference.localhost): BENCH_MUC_N=1000
#                           occupants join one room (RSS before/after: KiB per
#                           occupant), BENCH_MUC_SENDERS=10 of them send
#                           groupchat messages with BENCH_MUC_WINDOW=5 in
#                           flight each (deliveries/s to all occupants), then
#                           BENCH_MUC_RATE=20 msg/s (p99 latency to the last
#                           occupant of each message); then
#                           BENCH_MUC_ROOM_SESSIONS=100 sessions make
#                           BENCH_MUC_ROOMS=10000 persistent rooms (RSS per
#                           idle room, and again after a restart loads them);
#                           add "pep" for issue 15's: personal eventing with
#                           each server's PEP and caps as it ships (Myna:
#                           caps;pep; Prosody: mod_pep; ejabberd: mod_caps,
#                           mod_pubsub with the flat and pep plugins): user1
#                           publishes, BENCH_PEP_N=1000 contacts (user2..)
#                           have a mutual presence subscription with it (made
#                           in-band once per server, xmppload -s pepsub), send
#                           presence with XEP-0115 caps whose features hold
#                           NODE+notify and answer the server's disco#info;
#                           after a warm-up item reached all of them, user1
#                           publishes to BENCH_PEP_NODE=
#                           http://jabber.org/protocol/tune (items padded with
#                           BENCH_PEP_PAD=64 bytes) with BENCH_PEP_WINDOW=10
#                           IQs in flight for BENCH_DURATION s (deliveries/s
#                           to the contacts, publishes/s; each contact must
#                           get each item exactly once: losses and duplicates
#                           reported), then on a fresh server
#                           BENCH_PEP_RATE=20 items/s (p99 latency from the
#                           publish to the last contact's delivery); RSS
#                           before and after the contacts' presence.
#                           BENCH_PERF=1 also records `perf record -g` of
#                           mynad during Myna's pep traffic (pep.perf.data in
#                           the scratch directory: add BENCH_KEEP=1)
# Full size: BENCH_N=10000 tests/bench/run.sh, then for Myna alone
# BENCH_N=100000 BENCH_SERVERS=myna tests/bench/run.sh (needs an open-file
# hard limit above N for both processes: see docs/PERFORMANCE.md).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
N=${BENCH_N:-2000}
DUR=${BENCH_DURATION:-10}
PAIRS=${BENCH_PAIRS:-50}
WINDOW=${BENCH_WINDOW:-10}
RATE=${BENCH_RATE:-2000}
LOGIN_C=${BENCH_LOGIN_C:-50}
SERVERS=${BENCH_SERVERS:-"myna prosody ejabberd"}
PORT=${BENCH_PORT:-15225}
CHURN_TOTAL=${BENCH_CHURN_TOTAL:-100000}
CHURN_WAVE=${BENCH_CHURN_WAVE:-8500}
CHURN_PEER_TOTAL=${BENCH_CHURN_PEER_TOTAL:-10000}
CHURN_PEER_WAVE=${BENCH_CHURN_PEER_WAVE:-2000}
CHURN_C=${BENCH_CHURN_C:-100}
SCENARIOS=" ${BENCH_SCENARIOS:-idle logins throughput latency churn} "
SM_ACK=${BENCH_SM_ACK:-5}
MUC_N=${BENCH_MUC_N:-1000}
MUC_SENDERS=${BENCH_MUC_SENDERS:-10}
MUC_WINDOW=${BENCH_MUC_WINDOW:-5}
MUC_RATE=${BENCH_MUC_RATE:-20}
MUC_ROOMS=${BENCH_MUC_ROOMS:-10000}
MUC_ROOM_SESSIONS=${BENCH_MUC_ROOM_SESSIONS:-100}
PEP_N=${BENCH_PEP_N:-1000}
PEP_WINDOW=${BENCH_PEP_WINDOW:-10}
PEP_RATE=${BENCH_PEP_RATE:-20}
PEP_PAD=${BENCH_PEP_PAD:-64}
PEP_NODE=${BENCH_PEP_NODE:-http://jabber.org/protocol/tune}
want () { [[ $SCENARIOS == *" $1 "* ]]; }
BUILD="$ROOT/build-bench"
XL="$BUILD/tests/bench/xmppload"
ACCOUNTS=$(( N > 2 * PAIRS ? N : 2 * PAIRS ))
ACCOUNTS=$(( ACCOUNTS > LOGIN_C ? ACCOUNTS : LOGIN_C ))
if want muc; then
  ACCOUNTS=$(( ACCOUNTS > MUC_N ? ACCOUNTS : MUC_N ))
  ACCOUNTS=$(( ACCOUNTS > MUC_ROOM_SESSIONS ? ACCOUNTS : MUC_ROOM_SESSIONS ))
fi
if want pep; then
  ACCOUNTS=$(( ACCOUNTS > PEP_N + 1 ? ACCOUNTS : PEP_N + 1 ))
fi
max () { echo $(( $1 > $2 ? $1 : $2 )); }
# churn: total and wave size for server $1 (a wave needs as many accounts)
churn_total () { if [ "$1" = myna ]; then echo "$CHURN_TOTAL"; else echo "$CHURN_PEER_TOTAL"; fi; }
churn_wave () { if [ "$1" = myna ]; then echo "$CHURN_WAVE"; else echo "$CHURN_PEER_WAVE"; fi; }

log () { printf '== %s\n' "$*" >&2; }

# ---- build and install ------------------------------------------------------
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$ROOT" -Dbuildtype=release -Dbench=true >/dev/null
ninja -C "$BUILD" >/dev/null

need_pkgs=()
[[ " $SERVERS " == *" prosody "* ]] && ! command -v prosody >/dev/null && need_pkgs+=(prosody)
[[ " $SERVERS " == *" ejabberd "* ]] && ! command -v ejabberdctl >/dev/null && need_pkgs+=(ejabberd)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_pkgs[@]}" >/dev/null
  [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  # Should a service have started anyway, stop it: it would hold 5222.
  for s in prosody ejabberd; do service "$s" stop >/dev/null 2>&1 || true; done
fi

# Open files: as many as the hard limit allows (servers inherit it).
ulimit -n "$(ulimit -Hn)" || true
NOFILE=$(ulimit -n)
if [ "$NOFILE" -le $(( N + 100 )) ]; then
  echo "BENCH_N=$N needs an open-file limit above $((N + 100)); this shell has $NOFILE" >&2
  exit 1
fi
for w in "$CHURN_WAVE" "$CHURN_PEER_WAVE"; do
  if [ "$NOFILE" -le $(( w + 100 )) ]; then
    echo "a churn wave of $w needs an open-file limit above $((w + 100)); this shell has $NOFILE" >&2
    exit 1
  fi
done

# Source addresses: one per 20,000 sessions, past the ephemeral port range.
nsrc=$(( N / 20000 + 1 ))
SRC=$(seq -s, -f '127.0.0.%g' 2 $(( nsrc + 1 )))
# churn: our side closes first, so each session leaves a TIME_WAIT for 60 s
nsrc=$(( $(max "$CHURN_TOTAL" "$CHURN_PEER_TOTAL") / 20000 + 1 ))
CSRC=$(seq -s, -f '127.0.0.%g' 2 $(( nsrc + 1 )))

WORK=$(mktemp -d /tmp/myna-bench.XXXXXX)
chmod 755 "$WORK"
EPMD_BEFORE=$(pgrep -x epmd || true)
cleanup () {
  stop_server || true
  # ejabberd's VM starts epmd; stop it if it was not running before.
  if [ -z "$EPMD_BEFORE" ] && [ -n "$(pgrep -x epmd || true)" ]; then
    epmd -kill >/dev/null 2>&1 || true
  fi
  [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

# ---- servers ----------------------------------------------------------------
SERVER=""          # name of the running server
SERVER_PID=""      # the process run.sh started
EJ=(setpriv --reuid=ejabberd --regid=ejabberd --init-groups env HOME=/var/lib/ejabberd)

listening_pid () {
  ss -Hltnp "sport = :$PORT" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1
}

wait_listening () {
  for _ in $(seq 1 600); do
    [ -n "$(listening_pid)" ] && return 0
    if [ -n "$SERVER_PID" ] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
      return 1
    fi
    sleep 0.1
  done
  return 1
}

start_server () {
  local name=$1 dir="$WORK/$1"
  mkdir -p "$dir"
  if [ -n "$(listening_pid)" ]; then
    echo "port $PORT is already in use" >&2
    return 1
  fi
  case $name in
    myna)
      # MYNA_SPIN=N: the same configuration with poll_spin_us = N
      # PROFILE=mobile / mobile_nomam: the mobile modules as shipped
      # (conf/myna.conf), with and without mam
      local extra=""
      case ${PROFILE:-} in
        mobile) extra=";sm;csi;carbons;mam" ;;
        mobile_nomam) extra=";sm;csi;carbons" ;;
        pep) extra=";caps;pep" ;;   # as conf/myna.conf ships them
      esac
      sed -e "s|^port = 15225\$|port = $PORT|" \
          -e "${MYNA_SPIN:+s|^poll_spin_us = .*|poll_spin_us = $MYNA_SPIN|}" \
          -e "s|^modules = \(.*\)\$|modules = \1$extra|" \
          "$ROOT/tests/bench/myna.conf" > "$dir/myna.conf"
      # PROFILE=muc: the MUC service as conf/myna.conf ships it
      [ "${PROFILE:-}" = muc ] && printf '\n[component:conference.localhost]\nmodule = muc\n' >> "$dir/myna.conf"
      (cd "$dir" && exec taskset -c 0 "$BUILD/core/mynad" -c "$dir/myna.conf") \
        >>"$dir/server.log" 2>&1 &
      SERVER_PID=$!
      ;;
    prosody)
      mkdir -p "$dir/data"
      # the mobile profiles: mod_smacks, mod_carbons, mod_csi_simple (and
      # mod_mam, on the default storage as Debian ships it) enabled
      local pmods=""
      case ${PROFILE:-} in
        mobile) pmods='"smacks"; "carbons"; "csi_simple"; "mam";' ;;
        mobile_nomam) pmods='"smacks"; "carbons"; "csi_simple";' ;;
        pep) pmods='"pep";' ;;   # in Prosody's shipped modules_enabled
      esac
      sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$PORT|g" \
          -e "s|\"presence\";\$|\"presence\"; $pmods|" \
          -e "/^modules_disabled/s|\"mam\"; \"carbons\"; \"smacks\"; \"csi_simple\"; ||" \
          "$ROOT/tests/bench/peers/prosody.cfg.lua" > "$dir/prosody.cfg.lua"
      # PROFILE=muc: mod_muc on conference.localhost, as Prosody ships it
      [ "${PROFILE:-}" = muc ] && printf '\nComponent "conference.localhost" "muc"\n' >> "$dir/prosody.cfg.lua"
      taskset -c 0 prosody --config "$dir/prosody.cfg.lua" -F >>"$dir/server.log" 2>&1 &
      SERVER_PID=$!
      ;;
    ejabberd)
      mkdir -p "$dir/etc" "$dir/spool" "$dir/logs"
      sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$PORT|g" "$ROOT/tests/bench/peers/ejabberd.yml" > "$dir/etc/ejabberd.yml"
      # the mobile profiles: mod_stream_mgmt, mod_carboncopy,
      # mod_client_state (and mod_mam as ejabberd's own example config
      # has it: every message archived)
      case ${PROFILE:-} in
        mobile|mobile_nomam)
          printf '  mod_stream_mgmt: {}\n  mod_carboncopy: {}\n  mod_client_state: {}\n' >> "$dir/etc/ejabberd.yml" ;;
      esac
      [ "${PROFILE:-}" = mobile ] && printf '  mod_mam:\n    assume_mam_usage: true\n    default: always\n' >> "$dir/etc/ejabberd.yml"
      # PROFILE=pep: mod_caps and mod_pubsub with the flat and pep plugins,
      # as ejabberd's example configuration has them
      [ "${PROFILE:-}" = pep ] && printf '  mod_caps: {}\n  mod_pubsub:\n    plugins:\n      - flat\n      - pep\n' >> "$dir/etc/ejabberd.yml"
      # PROFILE=muc: mod_muc on conference.localhost, its limits of 200
      # occupants a room (max_users) raised to the benchmark's room, and
      # presence broadcast not thinned below 10,000 (max_users_presence)
      [ "${PROFILE:-}" = muc ] && printf '  mod_muc:\n    host: conference.localhost\n    max_users: 10000\n    max_users_presence: 10000\n    max_user_conferences: 10000\n    default_room_options:\n      max_users: 10000\n' >> "$dir/etc/ejabberd.yml"
      cat > "$dir/etc/ejabberdctl.cfg" <<EOF
ERL_MAX_PORTS=$(( NOFILE > 65536 ? NOFILE : 65536 ))
ERL_OPTIONS="+S 1:1 +SDcpu 1:1"
ERL_EPMD_ADDRESS=127.0.0.1
INET_DIST_INTERFACE=127.0.0.1
EOF
      chown -R ejabberd:ejabberd "$dir"
      (cd "$dir" && exec taskset -c 0 "${EJ[@]}" ejabberdctl --node bench@localhost \
         --config-dir "$dir/etc" --spool "$dir/spool" --logs "$dir/logs" foreground) \
        >>"$dir/server.log" 2>&1 &
      SERVER_PID=$!
      ;;
  esac
  SERVER=$name
  if ! wait_listening; then
    echo "$name did not start; log tail:" >&2
    tail -20 "$dir/server.log" >&2 || true
    return 1
  fi
  sleep 1
}

stop_server () {
  [ -n "$SERVER" ] || return 0
  local lp
  lp=$(listening_pid)
  if [ "$SERVER" = ejabberd ]; then
    "${EJ[@]}" ejabberdctl --node bench@localhost --config-dir "$WORK/ejabberd/etc" \
      --spool "$WORK/ejabberd/spool" --logs "$WORK/ejabberd/logs" stop >/dev/null 2>&1 || true
  else
    kill -TERM "$SERVER_PID" 2>/dev/null || true
  fi
  for _ in $(seq 1 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "$SERVER did not stop: killing it" >&2
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    [ -n "$lp" ] && kill -KILL "$lp" 2>/dev/null || true
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER=""
  SERVER_PID=""
  # the listening socket must be gone before the next start
  for _ in $(seq 1 100); do [ -z "$(listening_pid)" ] && break; sleep 0.1; done
}

rss_kib () { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# utime + stime of a process, all its threads, in clock ticks
cpu_ticks () { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)


declare -A R  # R[server:metric] = value

# Runs xmppload on CPU 1; stores the last RESULT line's fields as
# R[server:tag.key] (the tag is the scenario unless given with -k TAG).
load () {
  local server=$1 scen=$2 tag=$2; shift 2
  if [ "${1:-}" = -k ]; then tag=$2; shift 2; fi
  local out="$WORK/$server/$tag.out"
  if taskset -c 1 "$XL" -s "$scen" -P "$PORT" -D localhost -L "$server" "$@" >"$out" 2>"$WORK/$server/$tag.err"; then :; else
    echo "xmppload $scen against $server failed:" >&2
    tail -3 "$WORK/$server/$tag.err" >&2
  fi
  cat "$out"
  local line
  line=$(grep '^RESULT ' "$out" | tail -1) || return 0
  for kv in $line; do
    [[ $kv == *=* ]] && R[$server:$tag.${kv%%=*}]=${kv#*=}
  done
}

# A latency scenario, tagged $2, with the server's CPU use over the run
# (setup included) in % of one core as R[server:tag.server_cpu_pct].
latency_run () {
  local server=$1 tag=$2; shift 2
  local lp c0 t0 t1
  lp=$(listening_pid)
  c0=$(cpu_ticks "$lp")
  t0=$(date +%s.%N)
  load "$server" latency -k "$tag" -R "$lp" "$@"
  t1=$(date +%s.%N)
  R[$server:$tag.server_cpu_pct]=$(awk -v a="$c0" -v b="$(cpu_ticks "$lp")" -v hz="$HZ" \
    -v t0="$t0" -v t1="$t1" 'BEGIN{printf "%.0f", (b - a) / hz / (t1 - t0) * 100}')
}

# ---- the PBKDF2 bound ------------------------------------------------------
log "timing PBKDF2 alone (4096 iterations) on CPU 0"
read -r PB_SHA1 PB_SHA256 < <(taskset -c 0 python3 - <<'EOF'
import hashlib, os, time
salt = os.urandom(16)
res = []
for h in ("sha1", "sha256"):
    hashlib.pbkdf2_hmac(h, b"pw", salt, 4096)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 2.0 and n < 100000:
        hashlib.pbkdf2_hmac(h, b"pw", salt, 4096)
        n += 1
    res.append((time.perf_counter() - t0) / n * 1000)
print("%.4f %.4f" % tuple(res))
EOF
)
echo "RESULT scenario=pbkdf2 impl=python-hashlib iterations=4096 sha1_ms=$PB_SHA1 sha256_ms=$PB_SHA256"
# Myna's own PBKDF2 (core/sasl.c: nettle's SHA block functions, what a PLAIN
# login runs) and GnuTLS's gnutls_pbkdf2, timed by tests/bench/hashbench.c.
MY_SHA1=n/a MY_SHA256=n/a GT_SHA1=n/a GT_SHA256=n/a
while read -r line; do
  echo "$line"
  case "$line" in
    *impl=myna*)   MY_SHA1=$(sed -n 's/.*sha1_ms=\([0-9.]*\).*/\1/p' <<<"$line")
                   MY_SHA256=$(sed -n 's/.*sha256_ms=\([0-9.]*\).*/\1/p' <<<"$line") ;;
    *impl=gnutls*) GT_SHA1=$(sed -n 's/.*sha1_ms=\([0-9.]*\).*/\1/p' <<<"$line")
                   GT_SHA256=$(sed -n 's/.*sha256_ms=\([0-9.]*\).*/\1/p' <<<"$line") ;;
  esac
done < <(taskset -c 0 "$BUILD/tests/bench/hashbench" 4096)

# ---- the floor under a login --------------------------------------------------
# floorsrv answers the same login exchange with canned replies and no XMPP
# work: its CPU time per login is what TCP and an event loop cost on this
# machine before any server logic.
log "the floor under a login: floorsrv (canned replies) on CPU 0"
FLOOR_US=n/a FLOOR_RATE=n/a
taskset -c 0 "$BUILD/tests/bench/floorsrv" "$PORT" >"$WORK/floor.out" 2>&1 &
fp=$!
for _ in $(seq 1 100); do [ -n "$(listening_pid)" ] && break; sleep 0.1; done
if taskset -c 1 "$XL" -s logins -P "$PORT" -D localhost -L floor -n "$ACCOUNTS" -c "$LOGIN_C" \
     -d "$DUR" -b "$SRC" >"$WORK/floor-logins.out" 2>/dev/null; then :; fi
kill -TERM "$fp" 2>/dev/null || true
wait "$fp" 2>/dev/null || true
for _ in $(seq 1 100); do [ -z "$(listening_pid)" ] && break; sleep 0.1; done
grep '^RESULT ' "$WORK/floor-logins.out" || true
cat "$WORK/floor.out"
fl=$(sed -n 's/^FLOOR logins=\([0-9]*\) cpu_us=\([0-9]*\).*/\1 \2/p' "$WORK/floor.out")
if [ -n "$fl" ] && [ "${fl%% *}" -gt 0 ]; then
  FLOOR_US=$(awk -v l="${fl%% *}" -v c="${fl##* }" 'BEGIN{printf "%.1f", c / l}')
  FLOOR_RATE=$(sed -n 's/.*logins_per_s=\([0-9.]*\).*/\1/p' "$WORK/floor-logins.out" | tail -1)
fi

# ---- the runs ---------------------------------------------------------------
for s in $SERVERS; do
  accounts=$ACCOUNTS
  want churn && accounts=$(max "$ACCOUNTS" "$(churn_wave "$s")")
  log "$s: creating $accounts accounts in-band"
  start_server "$s" || { R[$s:error]="did not start"; continue; }
  load "$s" register -n "$accounts" -c 50 -T 1800
  stop_server

  if want idle; then
  log "$s: idle ($N sessions)"
  start_server "$s" || continue
  pid=$(listening_pid)
  rss0=$(rss_kib "$pid")
  taskset -c 1 "$XL" -s idle -P "$PORT" -L "$s" -n "$N" -c 200 -b "$SRC" -d 600 -T 600 \
    >"$WORK/$s/idle.out" 2>"$WORK/$s/idle.err" &
  xl=$!
  for _ in $(seq 1 6000); do
    grep -q '^READY' "$WORK/$s/idle.out" 2>/dev/null && break
    kill -0 "$xl" 2>/dev/null || break
    sleep 0.1
  done
  sleep 3
  rssn=$(rss_kib "$pid")
  kill -INT "$xl" 2>/dev/null || true
  wait "$xl" || true
  cat "$WORK/$s/idle.out"
  line=$(grep '^RESULT ' "$WORK/$s/idle.out" | tail -1 || true)
  for kv in $line; do [[ $kv == *=* ]] && R[$s:idle.${kv%%=*}]=${kv#*=}; done
  held=${R[$s:idle.sessions]:-0}
  R[$s:rss0]=$rss0
  R[$s:rssn]=$rssn
  if [ "$held" -gt 0 ]; then
    R[$s:kib_per_session]=$(awk -v a="$rss0" -v b="$rssn" -v n="$held" 'BEGIN{printf "%.1f", (b-a)/n}')
  fi
  echo "RESULT scenario=rss server=$s sessions=$held rss0_kib=$rss0 rssn_kib=$rssn kib_per_session=${R[$s:kib_per_session]:-n/a}"
  stop_server
  fi

  if want logins; then
  log "$s: logins ($LOGIN_C in flight, ${DUR}s)"
  start_server "$s" || continue
  load "$s" logins -n "$ACCOUNTS" -c "$LOGIN_C" -d "$DUR" -b "$SRC"
  stop_server
  fi

  if want throughput; then
  log "$s: throughput ($PAIRS pairs, window $WINDOW, ${DUR}s)"
  start_server "$s" || continue
  load "$s" throughput -p "$PAIRS" -w "$WINDOW" -d "$DUR"
  stop_server
  fi

  if want mobile; then
  for profile in mobile_nomam mobile; do
    log "$s: throughput with the $profile modules ($PAIRS pairs, window $WINDOW, ${DUR}s)"
    PROFILE=$profile start_server "$s" || continue 2
    load "$s" throughput -k "throughput_$profile" -p "$PAIRS" -w "$WINDOW" -d "$DUR"
    stop_server
  done
  log "$s: throughput with the mobile modules, clients enabling stream management (ack every $SM_ACK)"
  PROFILE=mobile start_server "$s" || continue
  load "$s" throughput -k throughput_mobile_sm -p "$PAIRS" -w "$WINDOW" -d "$DUR" -M "$SM_ACK"
  stop_server
  fi

  if want latency; then
  log "$s: latency ($PAIRS pairs, $RATE msg/s, ${DUR}s)"
  start_server "$s" || continue
  latency_run "$s" latency -p "$PAIRS" -r "$RATE" -d "$DUR"
  stop_server
  if [ "$s" = myna ]; then
    # tests/bench/myna.conf busy-polls (poll_spin_us); the shipped default does not
    log "myna: latency again with poll_spin_us = 0, the shipped default"
    MYNA_SPIN=0 start_server "$s" || continue
    latency_run "$s" latency_nospin -p "$PAIRS" -r "$RATE" -d "$DUR"
    stop_server
  fi

  # "Half of the server's own peak": its throughput above, halved.
  peak=${R[$s:throughput.delivered_per_s]:-0}
  if [ "$peak" -gt 1 ]; then
    half=$(( peak / 2 ))
    R[$s:half_rate]=$half
    log "$s: latency at half its peak ($PAIRS pairs, $half msg/s, ${DUR}s)"
    start_server "$s" || continue
    latency_run "$s" latency_half -p "$PAIRS" -r "$half" -d "$DUR"
    stop_server
  fi
  fi

  if want muc; then
  log "$s: muc ($MUC_N occupants in one room, $MUC_SENDERS senders with $MUC_WINDOW in flight, ${DUR}s)"
  PROFILE=muc start_server "$s" || continue
  load "$s" muc -R "$(listening_pid)" -n "$MUC_N" -c 50 -j "bench@conference.localhost" \
    -p "$MUC_SENDERS" -w "$MUC_WINDOW" -d "$DUR" -S 2 -T 1800
  stop_server
  log "$s: muc latency ($MUC_N occupants, $MUC_RATE msg/s, ${DUR}s)"
  PROFILE=muc start_server "$s" || continue
  load "$s" muclat -R "$(listening_pid)" -n "$MUC_N" -c 50 -j "bench@conference.localhost" \
    -p "$MUC_SENDERS" -r "$MUC_RATE" -d "$DUR" -S 2 -T 1800
  stop_server
  log "$s: $MUC_ROOMS persistent rooms made by $MUC_ROOM_SESSIONS sessions, then a restart"
  PROFILE=muc start_server "$s" || continue
  sleep 2
  R[$s:mucrooms.rss_fresh]=$(rss_kib "$(listening_pid)")
  load "$s" mucrooms -R "$(listening_pid)" -n "$MUC_ROOM_SESSIONS" -c 50 -j conference.localhost \
    -m "$MUC_ROOMS" -S 2 -T 3600
  stop_server
  PROFILE=muc start_server "$s" || continue
  sleep 5
  R[$s:mucrooms.rss_loaded]=$(rss_kib "$(listening_pid)")
  R[$s:mucrooms.kib_per_room_loaded]=$(awk -v a="${R[$s:mucrooms.rss_fresh]}" -v b="${R[$s:mucrooms.rss_loaded]}" \
    -v n="${R[$s:mucrooms.rooms]:-0}" 'BEGIN{if (n > 0) printf "%.2f", (b-a)/n; else print "n/a"}')
  echo "RESULT scenario=mucrooms_restart server=$s rooms=${R[$s:mucrooms.rooms]:-0} rss_fresh_kib=${R[$s:mucrooms.rss_fresh]} rss_loaded_kib=${R[$s:mucrooms.rss_loaded]} kib_per_room=${R[$s:mucrooms.kib_per_room_loaded]}"
  stop_server
  fi

  if want pep; then
  log "$s: pep: mutual presence subscriptions of user1 and $PEP_N contacts, in-band"
  PROFILE=pep start_server "$s" || continue
  load "$s" pepsub -n "$PEP_N" -c 50 -S 1 -T 1800
  stop_server
  log "$s: pep ($PEP_N contacts, window $PEP_WINDOW, ${DUR}s)"
  PROFILE=pep start_server "$s" || continue
  pid=$(listening_pid) perf_pid=""
  if [ "$s" = myna ] && [ "${BENCH_PERF:-0}" = 1 ] && command -v perf >/dev/null; then
    # perf over the traffic: xmppload prints READY when it starts publishing
    ( for _ in $(seq 1 18000); do
        grep -q '^READY' "$WORK/$s/pep.out" 2>/dev/null && break
        sleep 0.1
      done
      perf record -g -p "$pid" -o "$WORK/$s/pep.perf.data" -- sleep "$DUR" >/dev/null 2>&1 ) &
    perf_pid=$!
  fi
  c0=$(cpu_ticks "$pid")
  load "$s" pep -R "$pid" -n "$PEP_N" -c 50 -j "$PEP_NODE" -w "$PEP_WINDOW" -z "$PEP_PAD" \
    -d "$DUR" -S 2 -T 1800
  R[$s:pep.cpu_s]=$(awk -v a="$c0" -v b="$(cpu_ticks "$pid")" -v hz="$HZ" 'BEGIN{printf "%.1f", (b - a) / hz}')
  [ -n "$perf_pid" ] && { wait "$perf_pid" 2>/dev/null || true; }
  stop_server
  log "$s: pep latency ($PEP_N contacts, $PEP_RATE items/s, ${DUR}s)"
  PROFILE=pep start_server "$s" || continue
  load "$s" peplat -R "$(listening_pid)" -n "$PEP_N" -c 50 -j "$PEP_NODE" -r "$PEP_RATE" -z "$PEP_PAD" \
    -d "$DUR" -S 2 -T 1800
  stop_server
  fi

  if want churn; then
  ctotal=$(churn_total "$s") cwave=$(churn_wave "$s")
  log "$s: churn ($ctotal sessions in waves of $cwave, $CHURN_C logins in flight)"
  start_server "$s" || continue
  load "$s" churn -R "$(listening_pid)" -n "$ctotal" -W "$cwave" -c "$CHURN_C" -b "$CSRC" -T 1800
  R[$s:churn.size]="$ctotal/$cwave"
  stop_server
  fi
  if [ "$s" = myna ] && grep -q CRITICAL "$WORK/myna/server.log"; then
    echo "NOTE: mynad logged $(grep -c CRITICAL "$WORK/myna/server.log") CRITICAL line(s):" >&2
    grep CRITICAL "$WORK/myna/server.log" | sort | uniq -c | sort -rn | head -5 >&2
  fi
done

# ---- the table --------------------------------------------------------------
v () { echo "${R[$1]:-n/a}"; }
row () {
  local label=$1 key=$2
  printf '| %-40s |' "$label"
  for s in myna prosody ejabberd; do printf ' %12s |' "$(v "$s:$key")"; done
  printf '\n'
}
echo
echo "PBKDF2-HMAC alone, 4096 iterations (python hashlib, CPU 0): SHA-1 $PB_SHA1 ms, SHA-256 $PB_SHA256 ms" \
     "=> bound for one hash per login: $(awk -v t="$PB_SHA256" 'BEGIN{printf "%.0f", 1000/t}') logins/s (SHA-256)," \
     "$(awk -v t="$PB_SHA1" 'BEGIN{printf "%.0f", 1000/t}') logins/s (SHA-1)"
echo "PBKDF2-HMAC alone, 4096 iterations (gnutls_pbkdf2, CPU 0): SHA-1 $GT_SHA1 ms, SHA-256 $GT_SHA256 ms" \
     "=> bound: $(awk -v t="$GT_SHA256" 'BEGIN{printf "%.0f", 1000/t}') logins/s"
echo "PBKDF2-HMAC alone, 4096 iterations (Myna's, core/sasl.c, what a PLAIN login runs, CPU 0): SHA-1 $MY_SHA1 ms, SHA-256 $MY_SHA256 ms" \
     "=> bound: $(awk -v t="$MY_SHA256" 'BEGIN{printf "%.0f", 1000/t}') logins/s (PLAIN checks the SHA-256 key)"
if [ -n "${R[myna:logins.logins_per_s]:-}" ]; then
  echo "Myna logins/s ${R[myna:logins.logins_per_s]} =" \
       "$(awk -v l="${R[myna:logins.logins_per_s]}" -v t="$MY_SHA256" 'BEGIN{printf "%.0f", l*t/10}') % of the bound of its own hash," \
       "$(awk -v l="${R[myna:logins.logins_per_s]}" -v t="$GT_SHA256" 'BEGIN{printf "%.0f", l*t/10}') % of gnutls_pbkdf2's"
fi
if [ "$FLOOR_US" != n/a ] && [ "$MY_SHA256" != n/a ]; then
  echo "The floor under a login (tests/bench/floorsrv: the same TCP exchange with canned replies, no XMPP work, CPU 0):" \
       "$FLOOR_RATE logins/s at $FLOOR_US us of CPU per login => a server doing no more than that would reach" \
       "$(awk -v f="$FLOOR_US" -v t="$MY_SHA256" 'BEGIN{printf "%.0f", t*1000/(t*1000+f)*100}') % of the bound of Myna's hash here" \
       "(90 % leaves $(awk -v t="$MY_SHA256" 'BEGIN{printf "%.0f", t*1000/9}') us beside the hash)"
fi
echo "N=$N idle sessions; ${DUR}s per scenario; $PAIRS pairs; window $WINDOW; latency at $RATE msg/s" \
     "and at half of each server's throughput; $LOGIN_C logins in flight;" \
     "churn: Myna $CHURN_TOTAL in waves of $CHURN_WAVE, peers $CHURN_PEER_TOTAL in waves of $CHURN_PEER_WAVE"
printf '| %-40s | %12s | %12s | %12s |\n' metric Myna Prosody ejabberd
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' $(seq 42))" "$(printf -- '-%.0s' $(seq 14))" "$(printf -- '-%.0s' $(seq 14))" "$(printf -- '-%.0s' $(seq 14))"
row "accounts registered in-band per s"       register.per_s
row "idle sessions held"                      idle.sessions
row "RSS before idle sessions (KiB)"          rss0
row "RSS with idle sessions (KiB)"            rssn
row "KiB per idle session"                    kib_per_session
row "logins/s"                                logins.logins_per_s
row "login latency mean (ms)"                 logins.mean_ms
row "login latency p50 (ms)"                  logins.p50_ms
row "login latency p99 (ms)"                  logins.p99_ms
row "login failures"                          logins.failures
row "messages delivered/s (throughput)"       throughput.delivered_per_s
row "message errors (throughput)"             throughput.errors
row "msgs/s, mobile modules, no archive"      throughput_mobile_nomam.delivered_per_s
row "msgs/s, mobile modules + archive (MAM)"  throughput_mobile.delivered_per_s
row "  the same, clients using SM (ack/5)"    throughput_mobile_sm.delivered_per_s
row "  errors with SM"                        throughput_mobile_sm.errors
row "latency p50 (ms) at fixed rate"          latency.p50_ms
row "latency p99 (ms) at fixed rate"          latency.p99_ms
row "latency max (ms) at fixed rate"          latency.max_ms
row "delivered/s at fixed rate"               latency.delivered_per_s
row "  generator: send lateness p99 (us)"    latency.late_p99_us
row "  generator: receive delay p99 (us)"    latency.rxdelay_p99_us
row "  generator: busy (%)"                  latency.gen_busy_pct
row "  generator: waiting for its CPU (%)"   latency.gen_runq_pct
row "  server: waiting for its CPU (%)"      latency.server_runq_pct
row "  server: CPU use (% of a core)"       latency.server_cpu_pct
row "latency p50 (ms), poll_spin_us = 0"      latency_nospin.p50_ms
row "latency p99 (ms), poll_spin_us = 0"      latency_nospin.p99_ms
row "latency max (ms), poll_spin_us = 0"      latency_nospin.max_ms
row "  server: CPU use (% of a core)"       latency_nospin.server_cpu_pct
row "half-peak rate (msg/s)"                  half_rate
row "latency p50 (ms) at half peak"           latency_half.p50_ms
row "latency p99 (ms) at half peak"           latency_half.p99_ms
row "latency max (ms) at half peak"           latency_half.max_ms
row "delivered/s at half peak"                latency_half.delivered_per_s
row "  generator: sent/s at half peak"       latency_half.sent_per_s
row "  generator: send lateness p99 (us)"    latency_half.late_p99_us
row "  generator: receive delay p99 (us)"    latency_half.rxdelay_p99_us
row "  generator: busy (%)"                  latency_half.gen_busy_pct
row "  generator: waiting for its CPU (%)"   latency_half.gen_runq_pct
row "  server: waiting for its CPU (%)"      latency_half.server_runq_pct
row "  server: CPU use (% of a core)"       latency_half.server_cpu_pct
row "MUC: occupants in the room"              muc.occupants
row "MUC: join time, all occupants (s)"       muc.setup_s
row "MUC: KiB per occupant"                   muc.kib_per_occupant
row "MUC: deliveries/s to all occupants"      muc.delivered_per_s
row "MUC: groupchat messages/s (all got it)"  muc.messages_per_s
row "MUC: errors"                             muc.errors
row "MUC: latency to last occupant p50 (ms)"  muclat.last_p50_ms
row "MUC: latency to last occupant p99 (ms)"  muclat.last_p99_ms
row "MUC: latency to last occupant max (ms)"  muclat.last_max_ms
row "MUC: latency, every delivery p99 (ms)"   muclat.all_p99_ms
row "MUC: persistent rooms made"              mucrooms.rooms
row "MUC: rooms made per s"                   mucrooms.rooms_per_s
row "MUC: KiB per idle persistent room"       mucrooms.kib_per_room
row "MUC: KiB per room, loaded at restart"    mucrooms.kib_per_room_loaded
row "PEP: contacts subscribed in-band"         pepsub.subscribed
row "PEP: subscriptions made per s"           pepsub.per_s
row "PEP: contacts (caps with +notify)"       pep.contacts
row "PEP: disco#info queries answered"        pep.disco_answered
row "PEP: presence to warm-up complete (s)"   pep.warm_s
row "PEP: KiB per online contact"             pep.kib_per_contact
row "PEP: RSS after the traffic (KiB)"        pep.rss_after_kib
row "PEP: deliveries/s to the contacts"       pep.delivered_per_s
row "  of which first receipts (unique)/s"    pep.unique_per_s
row "PEP: publishes/s (IQ results)"           pep.publishes_per_s
row "PEP: items/s (unique deliveries / N)"    pep.items_per_s
row "PEP: publish errors"                     pep.publish_errors
row "PEP: deliveries lost"                    pep.lost
row "PEP: duplicate deliveries"               pep.duplicates
row "PEP: drain after the traffic (s)"        pep.drain_s
row "PEP: server CPU time in the run (s)"     pep.cpu_s
row "PEP: latency run, items/s asked"         peplat.rate
row "PEP: latency run, unique deliveries/s"   peplat.unique_per_s
row "PEP: latency to last contact p50 (ms)"   peplat.last_p50_ms
row "PEP: latency to last contact p99 (ms)"   peplat.last_p99_ms
row "PEP: latency to last contact max (ms)"   peplat.last_max_ms
row "PEP: latency, every delivery p99 (ms)"   peplat.all_p99_ms
row "PEP: deliveries lost (latency run)"      peplat.lost
row "churn sessions (total/wave)"             churn.size
row "churn sessions failed"                   churn.failed
row "churn RSS, highest wave peak (KiB)"      churn.rss_max_peak_kib
row "churn RSS after the first wave (KiB)"    churn.rss_first_kib
row "churn RSS after the last wave (KiB)"     churn.rss_last_kib
row "churn RSS max after waves 2..n (KiB)"    churn.rss_max_after_kib
row "churn RSS growth (%)"                    churn.growth_pct
# The generator is one thread on one core: say so where it was the limit.
for s in myna prosody ejabberd; do
  for k in latency latency_nospin latency_half; do
    b=${R[$s:$k.gen_busy_pct]:-}
    [ -n "$b" ] || continue
    if awk -v b="$b" 'BEGIN{exit !(b >= 90)}'; then
      echo "NOTE: $s $k: the generator was busy $b % of the time: these latencies include its own queueing" \
           "(generator receive delay p99 ${R[$s:$k.rxdelay_p99_us]} us, sent ${R[$s:$k.sent_per_s]}/s of ${R[$s:$k.rate]}/s)"
    fi
  done
done
