#!/usr/bin/env bash
# Blocking benchmarks, inside a network namespace this script creates (never the host's own
# firewall):
#   1. Bulk load: N blocks (default 100,000: 90% IPv4 hosts, 10% IPv6 hosts) in the sensor's
#      state file; the sensor restores them into its nftables sets in one transaction at
#      start-up and reports how long that took. Checked against the kernel's own count.
#   2. Latency of one block: real nmap probes a tripwire; the sensor reports the time from the
#      probe's capture time stamp to the committed nftables transaction.
# Usage: sudo benchmarks/run-blocking.sh [path-to-portsentry] ; ENTRIES=N RUNS=N to change.
set -euo pipefail
BIN=${1:-$(cd "$(dirname "$0")/.." && pwd)/.build/release/portsentry}
ENTRIES=${ENTRIES:-100000}
RUNS=${RUNS:-5}
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
[ -x "$BIN" ] || { echo "no sensor binary at $BIN (swift build -c release)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/pstblk.XXXXXX)
NS_S=pstblk-s NS_A=pstblk-a
cleanup() {
  pkill -f "$WORK/portsentry" 2>/dev/null || true
  ip netns del $NS_S 2>/dev/null || true
  ip netns del $NS_A 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
cp "$BIN" "$WORK/portsentry"
ip netns add $NS_S; ip netns add $NS_A
ip link add pbk-s type veth peer name pbk-a
ip link set pbk-s netns $NS_S; ip link set pbk-a netns $NS_A
ip -n $NS_S addr add 10.231.70.1/24 dev pbk-s; ip -n $NS_A addr add 10.231.70.2/24 dev pbk-a
for ns in $NS_S $NS_A; do ip -n $ns link set lo up; done
ip -n $NS_S link set pbk-s up; ip -n $NS_A link set pbk-a up

wait_for() { # seconds, file, text
  local deadline=$((SECONDS + $1))
  until grep -q "$3" "$2" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "timed out waiting for '$3' in $2" >&2; cat "$2" >&2; exit 1; }
    sleep 0.05
  done
}

# 1. Bulk load.
mkdir -p "$WORK/state"
python3 - "$WORK/state/blocks.json" "$ENTRIES" <<'PY'
import json, sys, time
path, n = sys.argv[1], int(sys.argv[2])
now = int(time.time())
blocks = []
for i in range(n):
    if i % 10 == 9:
        target = "2001:db8:%x:%x::%x" % (i >> 16, (i >> 8) & 0xff, i & 0xff)
    else:
        target = "100.%d.%d.%d" % ((i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff)
    blocks.append({"target": target, "created": now, "expires": now + 3600 + (i % 600), "origin": "manual",
                   "reason": "benchmark", "offense": 1})
json.dump({"version": 1, "blocks": blocks, "offenders": []}, open(path, "w"))
PY
cat > "$WORK/bulk.conf" <<CONF
TCP_PORTS="1,79"
BLOCK_TCP="1"
STATE_DIR="$WORK/state"
CONTROL_SOCKET="$WORK/run/control.sock"
CONF
bulk_ms=()
for run in $(seq 1 "$RUNS"); do
  ip netns exec $NS_S nft delete table inet portsentry 2>/dev/null || true
  ip netns exec $NS_S "$WORK/portsentry" -c "$WORK/bulk.conf" -i pbk-s > "$WORK/bulk$run.out" 2>&1 &
  pid=$!
  wait_for 120 "$WORK/bulk$run.out" "now active and listening"
  ms=$(sed -n 's/.*Restored [0-9]* blocks .* in \([0-9]*\) ms/\1/p' "$WORK/bulk$run.out")
  bulk_ms+=("$ms")
  kill -TERM $pid; wait $pid || true
done
count4=$(ip netns exec $NS_S nft -j list set inet portsentry blocked4 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len([e for x in d["nftables"] if "set" in x for e in x["set"].get("elem", [])]))')
count6=$(ip netns exec $NS_S nft -j list set inet portsentry blocked6 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len([e for x in d["nftables"] if "set" in x for e in x["set"].get("elem", [])]))')

# 2. Latency of single blocks.
cat > "$WORK/lat.conf" <<CONF
TCP_PORTS="1,7,9,11,79,111"
BLOCK_TCP="1"
STATE_DIR="$WORK/state-lat"
CONTROL_SOCKET="$WORK/run/control.sock"
CONF
lat=()
first=()
ip -n $NS_A addr add 10.231.70.3/24 dev pbk-a
for run in $(seq 1 "$RUNS"); do
  ip netns exec $NS_S nft delete table inet portsentry 2>/dev/null || true
  rm -rf "$WORK/state-lat"
  ip netns exec $NS_S "$WORK/portsentry" -c "$WORK/lat.conf" -i pbk-s -v > "$WORK/lat$run.out" 2>&1 &
  pid=$!
  wait_for 30 "$WORK/lat$run.out" "now active and listening"
  # First block in the process (includes one-time warm-up), then a second scanner's.
  ip netns exec $NS_A nmap -sS -Pn -n --max-retries 0 -p 79 10.231.70.1 >/dev/null
  wait_for 10 "$WORK/lat$run.out" "in the kernel"
  ip netns exec $NS_A nmap -sS -Pn -n --max-retries 0 -S 10.231.70.3 -e pbk-a -p 79 10.231.70.1 >/dev/null 2>&1
  wait_for 10 "$WORK/lat$run.out" "Block of 10.231.70.3"
  first+=("$(sed -n 's/.*Block of 10.231.70.2 in the kernel \([0-9]*\) µs after.*/\1/p' "$WORK/lat$run.out" | head -1)")
  lat+=("$(sed -n 's/.*Block of 10.231.70.3 in the kernel \([0-9]*\) µs after.*/\1/p' "$WORK/lat$run.out" | head -1)")
  kill -TERM $pid; wait $pid || true
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cat <<OUT
### Blocking benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')

Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r); nftables $(nft --version | awk '{print $2}').

| Measurement | Result | Target | Status |
|---|---|---|---|
| Restore $ENTRIES blocks into nftables (one transaction), median of $RUNS | $(median "${bulk_ms[@]}") ms (runs: ${bulk_ms[*]}) | < 2000 ms | $([ "$(median "${bulk_ms[@]}")" -lt 2000 ] && echo MET || echo MISSED) |
| Elements in the kernel afterwards (blocked4 + blocked6) | $count4 + $count6 = $((count4 + count6)) | $ENTRIES | $([ $((count4 + count6)) -eq "$ENTRIES" ] && echo MET || echo MISSED) |
| Probe captured → block committed in the kernel, median of $RUNS | $(median "${lat[@]}") µs (runs: ${lat[*]}) | milliseconds | $([ "$(median "${lat[@]}")" -lt 10000 ] && echo MET || echo MISSED) |
| The same for the first block after start-up (one-time warm-up included) | $(median "${first[@]}") µs (runs: ${first[*]}) | | |

Peers for comparison (from their own issue trackers): CrowdSec's firewall bouncer ~36.5k decisions in ~9 s; fail2ban 20k bans in hours on iptables.
OUT
