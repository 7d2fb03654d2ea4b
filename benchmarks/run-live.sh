#!/usr/bin/env bash
# Live benchmarks for the portsentry sensor, between two network namespaces. See
# benchmarks/README.md ("Live benchmark").
#
#   sudo benchmarks/run-live.sh [path-to-portsentry]
#
# Topology (created and removed by this script; nothing else is touched):
#   pstlive-s  sensor host  10.231.60.1/24 on veth plv-s
#   pstlive-a  attacker     10.231.60.2/24 on veth plv-a
# All traffic stays between these two namespaces: neither has a route anywhere else, and
# the veth pair is created directly inside them. No firewall rules are added.
#
# A. Spoofed flood + real scan (RUNS times): `hping3 --flood --rand-source -S -p 79` for
#    10 s against the sensor host and, 3 s into the flood, `nmap -sS -Pn -n -p 1-1024`
#    from the attacker's own address. Measures packet rates, sensor CPU, pcap drops, log
#    growth, whether the real scan was reported, and the sensor's max RSS.
# B. Benign load (B_RUNS times): iperf3 to a listening server on tripwire port 79 for 10 s.
#    Measures sensor CPU, events (should be 0) and throughput.
#
# Prints progress on stderr and a Markdown results block on stdout (also saved to
# benchmarks/work/live-results.md; per-run logs go to benchmarks/work/live/).
# Exits non-zero only on errors; missed targets are reported as MISSED.
# Environment: RUNS (3), B_RUNS (3).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
WORK="$HERE/work"
LOGS="$WORK/live"
RUNS=${RUNS:-3}
B_RUNS=${B_RUNS:-3}

NS_S=pstlive-s
NS_A=pstlive-a
IF_S=plv-s
IF_A=plv-a
IP_S=10.231.60.1
IP_A=10.231.60.2
FLOOD_SECS=10          # hping3 flood length (fixed by the benchmark definition)
SCAN_DELAY=3           # nmap starts this many seconds into the flood
SCAN_TIMEOUT=60        # nmap is stopped after this many seconds
IPERF_SECS=10
IDLE_SECS=5            # scenario B: idle CPU baseline before iperf3 starts
TCP_PORTS="1,7,9,11,79,111"
UDP_PORTS="7,9"
# Targets
CPU_TARGET_A=30        # % of one core during the flood
LOG_TARGET_BYTES=1000000   # stdout + history growth per run ("bounded": <= 1 MB)
CPU_TARGET_B=1         # % of one core; "~0"

die() { echo "run-live: ERROR: $*" >&2; exit 1; }
say() { echo "run-live: $*" >&2; }

DEFAULT_BIN=/work/main/.build/release/portsentry
SRC_BIN=${1:-$DEFAULT_BIN}
[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, raw sockets)"
[ -x "$SRC_BIN" ] || die "no portsentry binary at $SRC_BIN"
case "$SRC_BIN" in
    */release/*) BUILD=release ;;
    */debug/*) BUILD="DEBUG build" ;;
    *) BUILD="build type unknown" ;;
esac
for c in ip ss hping3 nmap iperf3 timeout getconf awk sed grep; do
    command -v "$c" >/dev/null || die "$c is required"
done
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------------------------------
# Cleanup: every background process we start is recorded in PIDS; the trap stops them by
# PID, then stops whatever still runs inside our namespaces, deletes the namespaces (which
# deletes the veth pair) and the temp directory. Runs on success, failure and signals.
# Alive and not a zombie (sed/awk: the comm field of our processes has no spaces).
proc_running() { [ -e "/proc/$1" ] && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
# A PID leaves PIDS as soon as it has been reaped (`reap`), so it can never be reused by
# an unrelated process and then signalled.
PIDS=()
TMP=""
forget() { local keep=() p; for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done; PIDS=("${keep[@]}"); }
reap() { local rc=0; wait "$1" || rc=$?; forget "$1"; return "$rc"; }
teardown() {
    local pid ns p i
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for i in 1 2 3 4 5 6 7 8 9 10; do
        local alive=0
        for pid in "${PIDS[@]}"; do proc_running "$pid" && alive=1; done
        [ "$alive" -eq 0 ] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for ns in "$NS_S" "$NS_A"; do
        if ip netns list 2>/dev/null | awk '{ print $1 }' | grep -qx "$ns"; then
            for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
    # Reap our children so none is left as a zombie.
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
on_exit() {
    local rc=$?
    set +e
    teardown
    [ -n "$TMP" ] && rm -rf "$TMP"
    [ "$rc" -eq 0 ] || echo "run-live: exiting with status $rc after cleanup" >&2
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Leftovers from an interrupted earlier run (our prefix only).
for ns in $(ip netns list | awk '{ print $1 }' | grep '^pstlive-' || true); do
    say "removing leftover namespace $ns"
    for p in $(ip netns pids "$ns"); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$ns"
done

mkdir -p "$LOGS"
TMP=$(mktemp -d /tmp/pstlive.XXXXXX)
BIN="$TMP/portsentry"
cp "$SRC_BIN" "$BIN"     # the binary may be rebuilt while we run: measure a private copy

# ---------------------------------------------------------------------------------------
# helpers
now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
group() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }  # 1234567 -> 1,234,567
fsize() { if [ -e "$1" ]; then stat -c %s "$1"; else echo 0; fi; }
human() { awk -v b="$1" 'BEGIN { if (b >= 1e6) printf "%.1f MB", b / 1e6; else if (b >= 1e3) printf "%.1f kB", b / 1e3; else printf "%d B", b }'; }
cpu_pct() { awk -v t="$1" -v s="$2" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", (s > 0 ? t / hz / s * 100 : 0) }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }
# utime + stime (clock ticks) of a process, all threads; field numbers after "(comm) ".
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
user_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 }'; }
vm_hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
# link_stat NS DEV RX|TX FIELD: one counter from `ip -s link show`.
link_stat() {
    ip -n "$1" -s link show dev "$2" | awk -v dir="$3:" -v f="$4" '
        $1 == dir { for (i = 2; i <= NF; i++) h[i - 1] = $i; getline
                    for (i = 1; i <= NF; i++) if (h[i] == f) { print $i; exit } }'
}
# wait_until SECONDS WHAT CMD...: poll CMD every 0.1 s until it succeeds or the deadline.
wait_until() {
    local limit=$1 what=$2; shift 2
    local deadline=$(( $(date +%s%N) + limit * 1000000000 ))
    until "$@"; do
        [ "$(date +%s%N)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}
proc_gone() { ! proc_running "$1"; }

setup_topology() {
    ip netns add "$NS_S"
    ip netns add "$NS_A"
    # Create the pair inside the namespaces: it never exists in the host namespace.
    ip link add "$IF_S" netns "$NS_S" type veth peer name "$IF_A" netns "$NS_A"
    ip -n "$NS_S" addr add "$IP_S/24" dev "$IF_S"
    ip -n "$NS_A" addr add "$IP_A/24" dev "$IF_A"
    for ns in "$NS_S" "$NS_A"; do ip -n "$ns" link set lo up; done
    ip -n "$NS_S" link set "$IF_S" up
    ip -n "$NS_A" link set "$IF_A" up
    links_up() {
        ip -n "$NS_S" link show dev "$IF_S" | grep -q 'state UP' &&
            ip -n "$NS_A" link show dev "$IF_A" | grep -q 'state UP'
    }
    wait_until 5 "veth up" links_up || die "veth pair $IF_S/$IF_A not up after 5 s"
}
teardown_topology() { teardown; }

write_config() {  # FILE HISTORY
    cat >"$1" <<EOF
# run-live.sh benchmark config (log only)
TCP_PORTS="$TCP_PORTS"
UDP_PORTS="$UDP_PORTS"
HISTORY_FILE="$2"
BLOCK_TCP="0"
BLOCK_UDP="0"
# The run's own state and control socket, never /var/lib/portsentry or /run/portsentry on
# the machine itself (the namespaces share its file system).
STATE_DIR="$(dirname "$1")/state"
CONTROL_SOCKET="$(dirname "$1")/run/control.sock"
EOF
}

SENSOR_PID=""
start_sensor() {  # DIR
    local dir=$1
    write_config "$dir/portsentry.conf" "$dir/history"
    ip netns exec "$NS_S" "$BIN" -c "$dir/portsentry.conf" -i "$IF_S" -v \
        </dev/null >"$dir/stdout" 2>"$dir/stderr" &
    SENSOR_PID=$!
    PIDS+=("$SENSOR_PID")
    sensor_ready() {
        proc_running "$SENSOR_PID" || return 0
        grep -qF 'Portsentry is now active and listening.' "$dir/stdout" "$dir/stderr"
    }
    wait_until 20 "sensor ready" sensor_ready || { tail -n 20 "$dir/stderr" >&2; die "sensor not ready after 20 s"; }
    proc_running "$SENSOR_PID" || { tail -n 20 "$dir/stdout" "$dir/stderr" >&2; die "sensor exited during start-up"; }
    [ "$(cat "/proc/$SENSOR_PID/comm")" = portsentry ] || die "PID $SENSOR_PID is not the sensor"
}
stop_sensor() {  # DIR; sets SENSOR_RC
    local dir=$1
    proc_running "$SENSOR_PID" || { tail -n 20 "$dir/stdout" "$dir/stderr" >&2; die "sensor died during the run"; }
    kill -TERM "$SENSOR_PID"
    if ! wait_until 15 "sensor exit" proc_gone "$SENSOR_PID"; then
        kill -KILL "$SENSOR_PID" 2>/dev/null || true
        die "sensor did not exit within 15 s of SIGTERM"
    fi
    SENSOR_RC=0
    reap "$SENSOR_PID" || SENSOR_RC=$?
    [ "$SENSOR_RC" -eq 0 ] || { tail -n 20 "$dir/stderr" >&2; die "sensor exited with status $SENSOR_RC after SIGTERM"; }
}
# "pcap plv-s: N packets received, D dropped by the kernel buffer, I dropped by the interface"
pcap_stats() {  # DIR -> "N D I"
    cat "$1/stdout" "$1/stderr" | grep "pcap $IF_S: " | tail -n1 |
        sed -n 's/.*pcap [^:]*: \([0-9]*\) packets received, \([0-9]*\) dropped by the kernel buffer, \([0-9]*\) dropped by the interface.*/\1 \2 \3/p'
}
keep_logs() {  # DIR NAME: copy a run's files to benchmarks/work/live/NAME (bounded)
    local dst="$LOGS/$2" f
    rm -rf "$dst"; mkdir -p "$dst"
    for f in "$1"/*; do
        [ -f "$f" ] || continue  # the run's state and socket directories are not logs
        if [ "$(fsize "$f")" -gt 20000000 ]; then
            { head -c 10000000 "$f"; printf '\n[... %s bytes cut by run-live.sh ...]\n' "$(fsize "$f")"; tail -c 10000000 "$f"; } >"$dst/$(basename "$f")"
        else
            cp "$f" "$dst/"
        fi
    done
}

# ---------------------------------------------------------------------------------------
# Scenario A: spoofed flood + real scan
declare -a A_ROWS=() A_CPU=() A_DROPS=() A_LOG=() A_CAUGHT=()
run_a() {
    local n=$1; local dir="$TMP/A$n"
    mkdir -p "$dir"
    say "== scenario A, run $n/$RUNS: topology"
    setup_topology
    start_sensor "$dir"
    local ready_stdout; ready_stdout=$(fsize "$dir/stdout")
    local ready_stderr; ready_stderr=$(fsize "$dir/stderr")
    say "   sensor PID $SENSOR_PID ready; flooding $IP_S:79 for ${FLOOD_SECS}s, nmap at +${SCAN_DELAY}s"

    local rx0 rxd0 tx0 txd0 c0 t0 c1 t1 rx1 rxd1 tx1 txd1
    rx0=$(link_stat "$NS_S" "$IF_S" RX packets); rxd0=$(link_stat "$NS_S" "$IF_S" RX dropped)
    tx0=$(link_stat "$NS_A" "$IF_A" TX packets); txd0=$(link_stat "$NS_A" "$IF_A" TX dropped)
    local u0 u1
    c0=$(cpu_ticks "$SENSOR_PID"); u0=$(user_ticks "$SENSOR_PID"); t0=$(now_s)
    ip netns exec "$NS_A" timeout "$FLOOD_SECS" hping3 --flood --rand-source -S -p 79 "$IP_S" \
        </dev/null >"$dir/hping3.txt" 2>&1 &
    local hping_pid=$!; PIDS+=("$hping_pid")
    sleep "$SCAN_DELAY"
    local ts0; ts0=$(now_s)
    ip netns exec "$NS_A" timeout "$SCAN_TIMEOUT" nmap -sS -Pn -n -p 1-1024 "$IP_S" \
        </dev/null >"$dir/nmap.txt" 2>&1 &
    local nmap_pid=$!; PIDS+=("$nmap_pid")

    local hping_rc=0; reap "$hping_pid" || hping_rc=$?
    c1=$(cpu_ticks "$SENSOR_PID"); u1=$(user_ticks "$SENSOR_PID"); t1=$(now_s)
    rx1=$(link_stat "$NS_S" "$IF_S" RX packets); rxd1=$(link_stat "$NS_S" "$IF_S" RX dropped)
    tx1=$(link_stat "$NS_A" "$IF_A" TX packets); txd1=$(link_stat "$NS_A" "$IF_A" TX dropped)
    say "   flood over after $(elapsed "$t0" "$t1") s (timeout/hping3 status $hping_rc); waiting for nmap"
    local nmap_rc=0; reap "$nmap_pid" || nmap_rc=$?
    local ts1; ts1=$(now_s)
    sleep 1   # let the sensor drain what is still queued
    local c2 t2 hwm
    c2=$(cpu_ticks "$SENSOR_PID"); t2=$(now_s)
    hwm=$(vm_hwm "$SENSOR_PID")
    stop_sensor "$dir"
    teardown_topology
    keep_logs "$dir" "A$n"

    # --- numbers
    local flood_s cpu_flood cpu_after sent sent_rate rx rx_rate
    flood_s=$(elapsed "$t0" "$t1")
    cpu_flood=$(cpu_pct $((c1 - c0)) "$flood_s")
    local cpu_user cpu_sys
    cpu_user=$(cpu_pct $((u1 - u0)) "$flood_s")
    cpu_sys=$(cpu_pct $((c1 - c0 - (u1 - u0))) "$flood_s")
    cpu_after=$(cpu_pct $((c2 - c1)) "$(elapsed "$t1" "$t2")")
    sent=$(sed -n 's/^\([0-9][0-9]*\) packets tra[a-z]*mitted.*/\1/p' "$dir/hping3.txt" | tail -n1)
    sent_rate=$([ -n "$sent" ] && rate "$sent" "$flood_s" || echo "")
    rx=$((rx1 - rx0)); rx_rate=$(rate "$rx" "$flood_s")
    local stats recv kdrop idrop
    stats=$(pcap_stats "$dir"); [ -n "$stats" ] || die "A$n: no 'pcap $IF_S: ...' line from the sensor at exit"
    read -r recv kdrop idrop <<<"$stats"
    local out_growth hist_size log_total
    out_growth=$(( $(fsize "$dir/stdout") - ready_stdout ))
    hist_size=$(fsize "$dir/history")
    log_total=$((out_growth + hist_size))
    local err_growth=$(( $(fsize "$dir/stderr") - ready_stderr ))
    local lines hist_lines limit_line
    lines=$(grep -c 'Scan from: ' "$dir/stdout" || true)
    hist_lines=$(wc -l <"$dir/history" 2>/dev/null || echo 0)
    limit_line=$(cat "$dir/stdout" "$dir/stderr" | grep 'Output limit:' | tail -n1 | sed -n 's/.*totals since start: \(.*\)$/\1/p')
    # --- the real scan
    local real real_hist ports closed caught
    real=$(grep -cF "Scan from: [$IP_A]" "$dir/stdout" || true)
    real_hist=$(grep -cF "$IP_A" "$dir/history" 2>/dev/null || true)
    ports=$(grep -F "Scan from: [$IP_A]" "$dir/stdout" | grep -vF 'Closed-port scan' |
        sed -n 's/.* port: \[\([0-9]*\)\].*/\1/p' | sort -n | uniq | paste -sd, -)
    closed=$(grep -F "Scan from: [$IP_A]" "$dir/stdout" | grep -F 'Closed-port scan' | head -n1 |
        sed -n 's/.*type: \[\(Closed-port scan: [0-9]* ports\)\].*/\1/p')
    caught=$([ "${real:-0}" -gt 0 ] && echo yes || echo no)
    # When the first line about the scanner was written, from the history file's timestamp
    # (2.x format: "2026-01-01T00:00:00.000+0000 Scan from: ..."), relative to flood start.
    local first_ts first_epoch first_at=""
    first_ts=$(grep -F "[$IP_A]" "$dir/history" 2>/dev/null | head -n1 | awk '{ print $1 }')
    if [ -n "$first_ts" ] && first_epoch=$(date -d "$first_ts" +%s.%N 2>/dev/null); then
        first_at=$(awk -v a="$t0" -v b="$first_epoch" 'BEGIN { printf "%+.1f", b - a }')
    fi
    local nmap_s nmap_state open_ports
    nmap_s=$(elapsed "$ts0" "$ts1")
    local nmap_scan
    nmap_scan=$(sed -n 's/.*scanned in \([0-9.]*\) seconds.*/\1/p' "$dir/nmap.txt" | tail -n1)
    if [ "$nmap_rc" -eq 124 ]; then nmap_state="timed out at ${SCAN_TIMEOUT}s"
    elif [ "$nmap_rc" -eq 0 ]; then nmap_state="exited after ${nmap_s}s (scan took ${nmap_scan:-?}s)"
    else nmap_state="exit $nmap_rc after ${nmap_s}s"; fi
    open_ports=$(grep -c '^[0-9]*/tcp *open' "$dir/nmap.txt" || true)

    say "   hping3: ${sent:-?} sent (${sent_rate:-?}/s); $IF_S RX +$rx (+$((rxd1 - rxd0)) dropped); $IF_A TX +$((tx1 - tx0)) (+$((txd1 - txd0)) dropped)"
    say "   sensor: CPU ${cpu_flood}% during flood (user ${cpu_user}%, sys ${cpu_sys}%), ${cpu_after}% after; pcap $recv received, $kdrop/$idrop dropped; VmHWM $hwm KiB"
    say "   log: stdout +$out_growth B ($lines lines), history $hist_size B ($hist_lines lines), stderr +$err_growth B; limiter: ${limit_line:-no suppression}"
    say "   real scan: $real lines from $IP_A (tripwire ports: ${ports:-none}; ${closed:-no closed-port line}), first at ${first_at:-?}s after flood start (flood ended at +$flood_s s); nmap started at +$(elapsed "$t0" "$ts0")s, $nmap_state, $open_ports open"

    local caught_txt="$caught: $real lines"
    [ -n "$ports" ] && caught_txt+=", tripwire port(s) $ports"
    [ -n "$closed" ] && caught_txt+=", $closed"
    caught_txt+="; $real_hist history lines"
    [ -n "$first_at" ] && caught_txt+="; first at ${first_at} s"
    A_ROWS+=("| $n | $(group "${sent:-0}") (${sent_rate:+$(group "$sent_rate")/s}) | $(group "$rx") ($(group "$rx_rate")/s), $((rxd1 - rxd0)) RX drops; $IF_A TX drops $((txd1 - txd0)) | ${cpu_flood}% (user ${cpu_user}, sys ${cpu_sys}; after flood ${cpu_after}%) | $(group "$recv") / $kdrop / $idrop | $(group "$out_growth") B ($lines lines) + $(group "$hist_size") B ($hist_lines lines)${limit_line:+; limiter: $limit_line} | $caught_txt | $nmap_state, $open_ports open | $(group "$hwm") KiB |")
    A_CPU+=("$cpu_flood"); A_DROPS+=("$((kdrop + idrop))"); A_LOG+=("$log_total"); A_CAUGHT+=("$caught")
}

# ---------------------------------------------------------------------------------------
# Scenario B: benign iperf3 load on a tripwire port that has a listener
declare -a B_ROWS=() B_CPU=() B_EVENTS=()
run_b() {
    local n=$1; local dir="$TMP/B$n"
    mkdir -p "$dir"
    say "== scenario B, run $n/$B_RUNS: topology"
    setup_topology
    ip netns exec "$NS_S" iperf3 -s -p 79 </dev/null >"$dir/iperf3-server.txt" 2>&1 &
    PIDS+=("$!")
    iperf_listening() { ip netns exec "$NS_S" ss -ltnH 'sport = :79' | grep -q .; }
    wait_until 10 "iperf3 listening" iperf_listening || die "iperf3 -s -p 79 is not listening after 10 s"
    start_sensor "$dir"
    say "   sensor PID $SENSOR_PID ready; ${IDLE_SECS}s idle baseline, then iperf3 for ${IPERF_SECS}s"
    local i0 ti0 idle
    i0=$(cpu_ticks "$SENSOR_PID"); ti0=$(now_s)
    sleep "$IDLE_SECS"   # a measurement window, not a readiness wait
    local c0 t0 c1 t1
    c0=$(cpu_ticks "$SENSOR_PID"); t0=$(now_s)
    idle=$(cpu_pct $((c0 - i0)) "$(elapsed "$ti0" "$t0")")
    local iperf_rc=0
    ip netns exec "$NS_A" timeout $((IPERF_SECS + 20)) iperf3 -c "$IP_S" -p 79 -t "$IPERF_SECS" \
        </dev/null >"$dir/iperf3-client.txt" 2>&1 || iperf_rc=$?
    c1=$(cpu_ticks "$SENSOR_PID"); t1=$(now_s)
    [ "$iperf_rc" -eq 0 ] || { cat "$dir/iperf3-client.txt" >&2; die "iperf3 client failed (status $iperf_rc)"; }
    stop_sensor "$dir"
    teardown_topology
    keep_logs "$dir" "B$n"

    local secs cpu events recv kdrop idrop stats tput
    secs=$(elapsed "$t0" "$t1")
    cpu=$(cpu_pct $((c1 - c0)) "$secs")
    events=$(grep -c 'Scan from: ' "$dir/stdout" || true)
    stats=$(pcap_stats "$dir"); [ -n "$stats" ] || die "B$n: no 'pcap $IF_S: ...' line from the sensor at exit"
    read -r recv kdrop idrop <<<"$stats"
    tput=$(grep -E ' receiver$' "$dir/iperf3-client.txt" | tail -n1 | grep -oE '[0-9.]+ [KMG]?bits/sec' || true)
    say "   iperf3 ${tput:-?} (receiver); sensor CPU ${cpu}% over ${secs}s (idle baseline ${idle}%); $events events; pcap $recv received, $kdrop/$idrop dropped"
    B_ROWS+=("| $n | ${tput:-?} | ${cpu}% | ${idle}% | $events | $(group "$recv") / $kdrop / $idrop |")
    B_CPU+=("$cpu"); B_EVENTS+=("$events")
}

# ---------------------------------------------------------------------------------------
say "binary $SRC_BIN ($BUILD), copied to $BIN; CLK_TCK=$CLK_TCK"
write_config "$TMP/check.conf" "$TMP/check-history"
"$BIN" check-config -c "$TMP/check.conf" >"$TMP/check.txt" 2>&1 || { cat "$TMP/check.txt" >&2; die "check-config rejected the benchmark config"; }
rm -f "$TMP/check-history"

for i in $(seq 1 "$RUNS"); do run_a "$i"; done
for i in $(seq 1 "$B_RUNS"); do run_b "$i"; done

# ---------------------------------------------------------------------------------------
# Verify cleanup before reporting.
teardown_topology
left_ns=$(ip netns list | awk '{ print $1 }' | grep '^pstlive-' || true)
[ -z "$left_ns" ] || die "namespaces left behind: $left_ns"
left_pids=$(pgrep -f "$BIN" || true)
[ -z "$left_pids" ] || die "sensor copy still running: $left_pids"
others=$(for c in hping3 nmap iperf3 tcpdump; do pgrep -a -x "$c"; done || true)
[ -z "$others" ] || say "note: processes with these names exist but are not ours (ours were all stopped by PID): $others"
say "cleanup verified: no pstlive- namespaces, no process started by this script is left"

# ---------------------------------------------------------------------------------------
all_le() { local t=$1; shift; for v in "$@"; do awk -v v="$v" -v t="$t" 'BEGIN { exit !(v <= t) }' || return 1; done; }
all_eq() { local t=$1; shift; for v in "$@"; do [ "$v" = "$t" ] || return 1; done; }
status() { if "$@"; then echo MET; else echo MISSED; fi; }
caught_n=0; for c in "${A_CAUGHT[@]}"; do [ "$c" = yes ] && caught_n=$((caught_n + 1)); done
log_h=(); for b in "${A_LOG[@]}"; do log_h+=("$(human "$b")"); done
join() { local IFS=/; echo "$*"; }
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n1)
RESULTS="$WORK/live-results.md"
{
cat <<EOF

### Live benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')

Binary: \`$SRC_BIN\` ($BUILD); ${cpu:-unknown CPU}, $(nproc) cores, Linux $(uname -r).
Two network namespaces joined by a veth pair: sensor \`$NS_S\` ($IP_S, \`$IF_S\`), attacker \`$NS_A\` ($IP_A).
Sensor: \`portsentry -c CONF -i $IF_S -v\`, TCP_PORTS="$TCP_PORTS", UDP_PORTS="$UDP_PORTS", HISTORY_FILE set, log only, output limiter at defaults.

**A. Spoofed flood + real scan** (runs: $RUNS): \`timeout $FLOOD_SECS hping3 --flood --rand-source -S -p 79 $IP_S\`; ${SCAN_DELAY} s in, \`nmap -sS -Pn -n -p 1-1024 $IP_S\` from $IP_A (${SCAN_TIMEOUT} s limit).
CPU is utime+stime of the sensor over the flood window (hping3 start to exit) as % of one core, split into user and system time; "after flood" is from flood end until the sensor is stopped (nmap end + 1 s).
"first at" is the history-file timestamp of the first line about $IP_A, in seconds after the flood started (the flood lasts $FLOOD_SECS s); nmap's own "scanned in" time is shown next to its process lifetime.
pcap counts are from the sensor's exit line (received / dropped by the kernel buffer / dropped by the interface).

| Run | hping3 sent (rate) | $IF_S RX during flood | Sensor CPU | pcap recv / kernel drop / iface drop | stdout + history growth | Real scan from $IP_A reported | nmap | Max RSS (VmHWM) |
|---|---|---|---|---|---|---|---|---|
EOF
printf '%s\n' "${A_ROWS[@]}"
cat <<EOF

**B. Benign load** (runs: $B_RUNS): \`iperf3 -s -p 79\` in $NS_S (tripwire port with a listener), \`iperf3 -c $IP_S -p 79 -t $IPERF_SECS\` from $NS_A. CPU over the iperf3 client run.

| Run | iperf3 throughput (receiver) | Sensor CPU during iperf3 | Sensor CPU idle (${IDLE_SECS} s before) | Events | pcap recv / kernel drop / iface drop |
|---|---|---|---|---|---|
EOF
printf '%s\n' "${B_ROWS[@]}"
cat <<EOF

| Target | Portsentry 2.0.7 reference | Result (per run) | Status |
|---|---|---|---|
| A: no pcap drops | ~60% of packets dropped silently | $(join "${A_DROPS[@]}") dropped | $(status all_eq 0 "${A_DROPS[@]}") |
| A: CPU <= ${CPU_TARGET_A}% of a core during the flood | 53-93% | $(join "${A_CPU[@]}")% | $(status all_le "$CPU_TARGET_A" "${A_CPU[@]}") |
| A: bounded log (stdout + history <= $(human "$LOG_TARGET_BYTES") per run) | ~150 MB in 10 s | $(join "${log_h[@]}") | $(status all_le "$LOG_TARGET_BYTES" "${A_LOG[@]}") |
| A: real scan reported in every run | missed in most runs | $caught_n of $RUNS runs | $(status [ "$caught_n" -eq "$RUNS" ]) |
| B: CPU ~0 (<= ${CPU_TARGET_B}% of a core) | ~20% | $(join "${B_CPU[@]}")% | $(status all_le "$CPU_TARGET_B" "${B_CPU[@]}") |
| B: no events | | $(join "${B_EVENTS[@]}") events | $(status all_eq 0 "${B_EVENTS[@]}") |

Per-run logs (sensor stdout/stderr, history, hping3, nmap, iperf3): \`benchmarks/work/live/\`.
EOF
} | tee "$RESULTS"
say "results block saved to $RESULTS"
