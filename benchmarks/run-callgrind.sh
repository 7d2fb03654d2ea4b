#!/usr/bin/env bash
# Instructions per packet, counted with valgrind's callgrind: a stable figure on shared
# machines where wall-clock ratios swing by ±50%. See docs/benchmarks.md.
#
#   benchmarks/run-callgrind.sh [path-to-portsentry]      (default .build/release/portsentry)
#
# Counts `portsentry replay --quiet` and a bare libpcap read loop (pcap_floor) over the same
# generated mixed capture (PACKETS, default 200000), and over a 1,000-packet one; the
# difference divided by the packet difference is the marginal cost per packet, without
# process start-up (dynamic linking, the Swift runtime, config parsing).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-$HERE/../.build/release/portsentry}
PACKETS=${PACKETS:-200000}
command -v valgrind >/dev/null || { echo "run-callgrind: valgrind is required" >&2; exit 1; }
[ -x "$BIN" ] || { echo "run-callgrind: no portsentry at $BIN (swift build -c release --product portsentry)" >&2; exit 1; }
TMP=$(mktemp -d /tmp/portsentry-callgrind.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
cp "$BIN" "$TMP/portsentry"
cc -O2 -o "$TMP/pcap_floor" "$HERE/pcap_floor.c" -lpcap
python3 "$HERE/gen_pcap.py" mixed --packets "$PACKETS" --out "$TMP/big.pcap" >/dev/null
python3 "$HERE/gen_pcap.py" mixed --packets 1000 --out "$TMP/small.pcap" >/dev/null
printf 'TCP_PORTS="1,7,9,11,79,111"\nUDP_PORTS="7,9,111"\n' > "$TMP/bench.conf"
count() { valgrind --tool=callgrind --callgrind-out-file="$TMP/out" "$@" 2>&1 >/dev/null | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
floor_big=$(count "$TMP/pcap_floor" "$TMP/big.pcap")
floor_small=$(count "$TMP/pcap_floor" "$TMP/small.pcap")
replay_big=$(count "$TMP/portsentry" replay "$TMP/big.pcap" --quiet -c "$TMP/bench.conf")
replay_small=$(count "$TMP/portsentry" replay "$TMP/small.pcap" --quiet -c "$TMP/bench.conf")
awk -v fb="$floor_big" -v fs="$floor_small" -v rb="$replay_big" -v rs="$replay_small" -v n="$PACKETS" 'BEGIN {
    f = (fb - fs) / (n - 1000); r = (rb - rs) / (n - 1000)
    printf "instructions per packet: pcap_floor %.0f, portsentry replay %.0f; replay/floor %.2fx (floor/replay ratio %.2f; goal >= 0.8)\n", f, r, r / f, f / r
}'
