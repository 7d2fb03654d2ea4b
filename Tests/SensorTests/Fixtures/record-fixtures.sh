#!/usr/bin/env bash
# record-fixtures.sh - record the pcap test fixtures in Fixtures/pcap/ with real
# scanning tools (nmap, hping3, masscan) between two private network namespaces.
#
# Usage (as root):  bash record-fixtures.sh
# Re-runnable: every pcap is overwritten.
#
# Network safety: all traffic stays between the namespaces this script creates
# (pstfx-victim, pstfx-attacker) over one veth pair. Nothing is sent to any other
# address, and no firewall rule is touched anywhere. Namespaces, background
# processes and temp files are removed on exit, including on failure.
#
# Topology:
#   pstfx-victim   veth pstfx-v  10.231.9.1/24  fd00:231:9::1/64  02:00:0a:e7:09:01
#   pstfx-attacker veth pstfx-a  10.231.9.2/24  fd00:231:9::2/64  02:00:0a:e7:09:02
#
# To keep the fixtures free of unrelated noise, neighbour entries are static (so
# the kernels never ARP / neighbour-solicit; nmap's raw-packet scans still do
# their own ARP or NDP lookup of the target, one request + reply at the start of
# those captures, as on a real LAN), IPv6 link-local addresses and router
# solicitations are disabled, TX checksum offload is off (correct checksums in
# the pcaps), and setup waits until the link is quiet (the MLD reports for the
# new addresses have gone out) before the first capture starts.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
    echo "record-fixtures.sh: must run as root (needs network namespaces and raw sockets)" >&2
    exit 1
fi

for tool in ip nmap hping3 masscan tcpdump python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "record-fixtures.sh: missing tool: $tool" >&2; exit 1; }
done

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT="$HERE/pcap"
mkdir -p "$OUT"

NS_V=pstfx-victim
NS_A=pstfx-attacker
IF_V=pstfx-v
IF_A=pstfx-a
MAC_V=02:00:0a:e7:09:01
MAC_A=02:00:0a:e7:09:02
V4_V=10.231.9.1
V4_A=10.231.9.2
V6_V=fd00:231:9::1
V6_A=fd00:231:9::2

TCP_TRIPWIRES=1,7,9,11,79,111
UDP_TRIPWIRES=7,9,111
NMAP_COMMON=(-Pn -n --max-retries 0)

# The real interpreter (not a version-manager shim), so a background server's $!
# is the python process itself.
PY=$(python3 -c 'import sys; print(sys.executable)')

TMP=$(mktemp -d /tmp/pstfx-rec.XXXXXX)
TCPDUMP_PID=""
SERVER_PID=""
CURRENT_OUT=""
MASSCAN_PID=""

log() { printf '[record-fixtures] %s\n' "$*" >&2; }

stop_pid() {   # stop_pid PID SIGNAL: signal one process we started and reap it
    local pid=$1 sig=$2 i
    [[ -n "$pid" ]] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -s "$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do           # up to 5 s to exit on its own
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -s KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    set +e
    if [[ $rc -ne 0 && -n "$CURRENT_OUT" && -f "$CURRENT_OUT" ]]; then
        log "output of the failed step:"; cat "$CURRENT_OUT" >&2
    fi
    stop_pid "$TCPDUMP_PID" INT
    stop_pid "$SERVER_PID" TERM
    stop_pid "$MASSCAN_PID" KILL
    TCPDUMP_PID=""; SERVER_PID=""; MASSCAN_PID=""
    ip netns del "$NS_A" 2>/dev/null
    ip netns del "$NS_V" 2>/dev/null
    rm -rf "$TMP"
    if [[ $rc -ne 0 ]]; then log "FAILED (exit $rc); cleaned up"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_until TIMEOUT_S DESCRIPTION CMD...: poll CMD every 50 ms until it succeeds
wait_until() {
    local timeout=$1 what=$2; shift 2
    local deadline=$(( $(date +%s%N) + timeout * 1000000000 ))
    until "$@" >/dev/null 2>&1; do
        if (( $(date +%s%N) > deadline )); then
            log "timed out after ${timeout}s waiting for: $what"
            return 1
        fi
        sleep 0.05
    done
}

vx() { ip netns exec "$NS_V" "$@"; }   # run in victim
ax() { ip netns exec "$NS_A" "$@"; }   # run in attacker

# ---------------------------------------------------------------- topology
# Python: turn TX checksum offload off on interface argv[1] (ETHTOOL_STXCSUM)
# and check it with ETHTOOL_GTXCSUM.
TXCSUM_OFF='
import array, fcntl, socket, struct, sys
SIOCETHTOOL, ETHTOOL_GTXCSUM, ETHTOOL_STXCSUM = 0x8946, 0x16, 0x17
def ethtool_value(cmd, value=0):
    buf = array.array("B", struct.pack("II", cmd, value))
    ifr = struct.pack("16sP", sys.argv[1].encode(), buf.buffer_info()[0]).ljust(40, b"\0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifr)
    return struct.unpack("II", buf.tobytes())[1]
ethtool_value(ETHTOOL_STXCSUM, 0)
if ethtool_value(ETHTOOL_GTXCSUM) != 0:
    sys.exit("tx checksum offload still on for " + sys.argv[1])
'

setup() {
    ip netns del "$NS_A" 2>/dev/null || true
    ip netns del "$NS_V" 2>/dev/null || true
    ip netns add "$NS_V"
    ip netns add "$NS_A"
    # Create the veth pair directly inside the namespaces (never in the root ns).
    ip -n "$NS_V" link add "$IF_V" address "$MAC_V" type veth \
        peer name "$IF_A" address "$MAC_A" netns "$NS_A"

    local ns ifc
    for ns in "$NS_V" "$NS_A"; do
        [[ $ns == "$NS_V" ]] && ifc=$IF_V || ifc=$IF_A
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_ra=0 \
            net.ipv6.conf.default.accept_ra=0 \
            net.ipv6.conf.all.router_solicitations=0 \
            net.ipv6.conf.default.router_solicitations=0
        ip netns exec "$ns" sysctl -qw \
            "net.ipv6.conf.$ifc.accept_ra=0" \
            "net.ipv6.conf.$ifc.router_solicitations=0" \
            "net.ipv6.conf.$ifc.addr_gen_mode=1"           # no link-local address
        ip -n "$ns" link set lo up
    done

    ip -n "$NS_V" addr add "$V4_V/24" dev "$IF_V"
    ip -n "$NS_V" addr add "$V6_V/64" dev "$IF_V" nodad
    ip -n "$NS_A" addr add "$V4_A/24" dev "$IF_A"
    ip -n "$NS_A" addr add "$V6_A/64" dev "$IF_A" nodad

    # Static neighbours: the kernels never ARP / neighbour-solicit.
    ip -n "$NS_V" neigh replace "$V4_A" lladdr "$MAC_A" dev "$IF_V" nud permanent
    ip -n "$NS_V" neigh replace "$V6_A" lladdr "$MAC_A" dev "$IF_V" nud permanent
    ip -n "$NS_A" neigh replace "$V4_V" lladdr "$MAC_V" dev "$IF_A" nud permanent
    ip -n "$NS_A" neigh replace "$V6_V" lladdr "$MAC_V" dev "$IF_A" nud permanent

    # No TX checksum offload (no ethtool here, so via the SIOCETHTOOL ioctl):
    # with it, veth hands on packets with only a partial checksum and the
    # capture would show "incorrect" TCP/UDP checksums, unlike frames off a wire.
    vx "$PY" -c "$TXCSUM_OFF" "$IF_V"
    ax "$PY" -c "$TXCSUM_OFF" "$IF_A"

    ip -n "$NS_V" link set "$IF_V" up
    ip -n "$NS_A" link set "$IF_A" up

    wait_until 10 "veth up" bash -c \
        "ip -n $NS_V link show $IF_V | grep -q 'state UP' && ip -n $NS_A link show $IF_A | grep -q 'state UP'"
    wait_until 10 "IPv4 reachable" reachable "$V4_V"
    wait_until 10 "IPv6 reachable" reachable "$V6_V"
    quiesce
}

# reachable ADDR: a TCP connect from the attacker to the victim's (closed) port 9
# is refused, i.e. the victim kernel answered with a RST.
reachable() {
    ax "$PY" -c '
import socket, sys
try:
    socket.create_connection((sys.argv[1], 9), timeout=1).close()
except ConnectionRefusedError:
    sys.exit(0)
sys.exit(1)' "$1"
}

# quiesce: wait (deadline 10 s) until the link has been silent for one full second,
# so late MLD reports from interface setup do not land in the first fixture.
quiesce() {
    local deadline=$(( SECONDS + 10 )) n
    while (( SECONDS < deadline )); do
        # (tcpdump prints a bare newline when stopped, so count non-empty lines)
        n=$(vx timeout 1 tcpdump -i "$IF_V" -nn -q -c 1 2>/dev/null | grep -c . || true)
        [[ $n -eq 0 ]] && return 0
    done
    log "warning: link did not go quiet within 10 s"
}

# ---------------------------------------------------------------- capture
CAPTURE_NAME=""
capture_start() {   # capture_start NAME: start tcpdump in the victim for pcap/NAME
    # Written to the temp dir and moved into pcap/ only once complete, so an
    # interrupted run never leaves a truncated fixture behind.
    local file="$TMP/$1" err="$TMP/tcpdump-$1.err"
    CAPTURE_NAME=$1
    rm -f "$file"
    : >"$err"
    # --immediate-mode: hand every packet to tcpdump at once. Without it libpcap's
    # TPACKET_V3 ring holds packets until a block fills or times out, and the
    # SIGINT after a short scan would lose them.
    # -Z root: keep root so tcpdump can write into the root-only temp dir
    # (Debian's tcpdump otherwise drops to the tcpdump user before opening it).
    # Not via the vx function: `ip netns exec` execs tcpdump, so $! is tcpdump
    # itself and the SIGINT below reaches it (a function would run in a subshell).
    ip netns exec "$NS_V" tcpdump -i "$IF_V" -s 384 -U --immediate-mode -Z root -w "$file" 2>"$err" &
    TCPDUMP_PID=$!
    # Capturing once the file exists (pcap header written with -U) and tcpdump has
    # printed its "listening on" line, which it does right before entering its loop.
    wait_until 10 "tcpdump listening for $1" bash -c \
        "[[ -s '$file' ]] && grep -q 'listening on' '$err'" || {
        cat "$err" >&2; return 1; }
    kill -0 "$TCPDUMP_PID"
}

capture_stop() {    # capture_stop: let the last replies arrive, then SIGINT tcpdump
    sleep 0.5
    kill -s INT "$TCPDUMP_PID"
    wait "$TCPDUMP_PID" || true
    TCPDUMP_PID=""
    mv -f "$TMP/$CAPTURE_NAME" "$OUT/$CAPTURE_NAME"
    chmod 644 "$OUT/$CAPTURE_NAME"
}

record() {          # record NAME CMD...: capture CMD's traffic into pcap/NAME
    local name=$1; shift
    log "$name: $*"
    capture_start "$name"
    # Run as a plain command so `set -e` stays in force inside the fixture
    # functions; on failure the EXIT trap prints this output.
    CURRENT_OUT="$TMP/$name.out"
    "$@" >"$CURRENT_OUT" 2>&1
    CURRENT_OUT=""
    capture_stop
    log "$name: $(tcpdump -nn -r "$OUT/$name" 2>/dev/null | wc -l) packets"
}

nmap_a() { ax timeout 120 nmap "$@"; }

# ---------------------------------------------------------------- fixtures
hping3_odd_flags() {
    # One packet each, fixed source ports, -k keeps the source port fixed.
    ax timeout 10 hping3 -c 1 -S -F -p 79 -s 40001 -k "$V4_V"
    ax timeout 10 hping3 -c 1 -U -p 79 -s 40002 -k "$V4_V"
    ax timeout 10 hping3 -c 1 -P -p 79 -s 40003 -k "$V4_V"
}

# masscan 1.3.2 finishes sending and its --wait, but its receive thread then
# stays blocked in libpcap on an idle interface, so the process never exits
# (masscan issues #144 / #813: "waiting -N-secs" forever). So: run it in the
# background, stop the capture once it reports the wait is over, then wake its
# receive thread with one UDP datagram from the victim to the attacker (sent after
# the capture has stopped, so it is not in the fixture) until masscan exits.
masscan_fixture() {
    local name=masscan-v4.pcap router_mac out="$TMP/masscan.out" i
    router_mac=$(ip -n "$NS_V" link show "$IF_V" | awk '/link\/ether/ {print $2}')
    [[ -n "$router_mac" ]]
    log "$name: masscan $V4_V -p $TCP_TRIPWIRES --rate 100 --adapter $IF_A" \
        "--adapter-ip $V4_A --router-mac $router_mac --wait 1"
    capture_start "$name"
    CURRENT_OUT="$out"
    # cwd = temp dir: masscan writes paused.conf into its cwd if interrupted.
    (cd "$TMP" && exec ip netns exec "$NS_A" masscan "$V4_V" -p "$TCP_TRIPWIRES" \
        --rate 100 --adapter "$IF_A" --adapter-ip "$V4_A" \
        --router-mac "$router_mac" --wait 1) >"$out" 2>&1 &
    MASSCAN_PID=$!
    wait_until 30 "masscan to finish sending and waiting" masscan_waited
    capture_stop
    for ((i = 0; i < 40; i++)); do          # up to ~10 s of wake-up pokes
        kill -0 "$MASSCAN_PID" 2>/dev/null || break
        vx "$PY" -c "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'wake', ('$V4_A', 9))"
        sleep 0.25
    done
    if kill -0 "$MASSCAN_PID" 2>/dev/null; then
        log "masscan did not exit after wake-up packets; stopping it"
        stop_pid "$MASSCAN_PID" KILL
    else
        wait "$MASSCAN_PID" || log "masscan exited with status $?"
    fi
    MASSCAN_PID=""
    CURRENT_OUT=""
    log "$name: $(tcpdump -nn -r "$OUT/$name" 2>/dev/null | wc -l) packets"
}

masscan_waited() {   # masscan exited, or its status line shows the wait is over
    ! kill -0 "$MASSCAN_PID" 2>/dev/null ||
        grep -Eq '100\.00% done, waiting (0|-[0-9]+)-secs' "$TMP/masscan.out"
}

http_client() {
    # 5 complete HTTP/1.0 requests, one TCP connection each.
    ax timeout 30 "$PY" - "$V4_V" <<'EOF'
import http.client, sys
host = sys.argv[1]
for i in range(5):
    c = http.client.HTTPConnection(host, 79, timeout=5)
    c.request("GET", "/", headers={"Connection": "close"})
    r = c.getresponse()
    body = r.read()
    c.close()
    assert r.status == 200, r.status
    print(i, r.status, len(body))
EOF
}

server_accepts() {
    vx "$PY" -c "import socket,sys; socket.create_connection(('$V4_V', 79), timeout=0.5).close()"
}

benign() {
    mkdir -p "$TMP/www"
    printf 'pstfx benign fixture\n' >"$TMP/www/index.html"
    ip netns exec "$NS_V" "$PY" -m http.server 79 --bind "$V4_V" --directory "$TMP/www" \
        >"$TMP/http.log" 2>&1 &
    SERVER_PID=$!
    # The readiness probe runs inside the victim, so it goes over the victim's
    # loopback route and never shows up on the captured veth.
    wait_until 10 "http.server accepting on $V4_V:79" server_accepts || {
        cat "$TMP/http.log" >&2; return 1; }
    record benign-v4.pcap http_client
    stop_pid "$SERVER_PID" TERM
    SERVER_PID=""
}

main() {
    setup

    record nmap-sS-v4.pcap nmap_a -sS "${NMAP_COMMON[@]}" -p "$TCP_TRIPWIRES" "$V4_V"
    record nmap-sT-v4.pcap nmap_a -sT "${NMAP_COMMON[@]}" -p "$TCP_TRIPWIRES" "$V4_V"
    local t
    for t in F X N A M W; do
        record "nmap-s$t-v4.pcap" nmap_a "-s$t" "${NMAP_COMMON[@]}" -p "$TCP_TRIPWIRES" "$V4_V"
    done
    record nmap-sU-v4.pcap nmap_a -sU "${NMAP_COMMON[@]}" -p "$UDP_TRIPWIRES" "$V4_V"

    record nmap-sS-v6.pcap nmap_a -6 -sS "${NMAP_COMMON[@]}" -p "$TCP_TRIPWIRES" "$V6_V"
    record nmap-sU-v6.pcap nmap_a -6 -sU "${NMAP_COMMON[@]}" -p "$UDP_TRIPWIRES" "$V6_V"
    record nmap-sF-v6.pcap nmap_a -6 -sF "${NMAP_COMMON[@]}" -p "$TCP_TRIPWIRES" "$V6_V"

    record nmap-fragmented-v4.pcap nmap_a -sS -f "${NMAP_COMMON[@]}" -p 1,7,9 "$V4_V"

    record nmap-closed-ports-v4.pcap nmap_a -sS "${NMAP_COMMON[@]}" -p 1000-3000 "$V4_V"
    record nmap-closed-ports-v6.pcap nmap_a -6 -sS "${NMAP_COMMON[@]}" -p 1000-1500 "$V6_V"

    record hping3-odd-flags-v4.pcap hping3_odd_flags
    masscan_fixture

    benign

    log "done; pcaps in $OUT"
}

main "$@"
