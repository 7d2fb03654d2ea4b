#!/usr/bin/env bash
# Offline replay benchmarks for the portsentry sensor. See benchmarks/README.md.
#
#   benchmarks/run-replay.sh [path-to-portsentry]
#
# 1. Throughput: `portsentry replay --quiet` over a realistic 1M-packet mixed capture,
#    against a bare libpcap read loop (pcap_floor) over the same file. Target: the sensor
#    reaches at least half the floor's packets/s.
# 2. Spoofed flood: 1M one-packet sources at tripwire port 79 with one real scanner
#    (198.51.100.77) interleaved. Reports max RSS and checks the scanner is reported,
#    including its closed-port scan.
#
# Exits non-zero only on errors; missed targets are reported as MISSED.
# Environment: MIXED_PACKETS (1000000), SPOOF_SOURCES (1000000), RUNS (3),
#              REPLAY_ARGS (extra replay arguments, e.g. "-c my.conf --host 192.0.2.10").
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
WORK="$HERE/work"
MIXED_PACKETS=${MIXED_PACKETS:-1000000}
SPOOF_SOURCES=${SPOOF_SOURCES:-1000000}
RUNS=${RUNS:-3}
REPLAY_ARGS=${REPLAY_ARGS:-}
SCANNER=198.51.100.77
TARGET_RATIO=0.5

die() { echo "run-replay: $*" >&2; exit 1; }

DEFAULT_BIN=/work/main/.build/release/portsentry
if [ $# -ge 1 ]; then
    SRC_BIN=$1
else
    SRC_BIN=$DEFAULT_BIN
    if [ ! -x "$SRC_BIN" ] && [ -x /work/main/.build/debug/portsentry ]; then
        echo "run-replay: $DEFAULT_BIN not found; using the DEBUG build (numbers are debug-build numbers)" >&2
        SRC_BIN=/work/main/.build/debug/portsentry
    fi
fi
[ -x "$SRC_BIN" ] || die "no portsentry binary at $SRC_BIN"
case "$SRC_BIN" in
    */release/*) BUILD=release ;;
    */debug/*) BUILD="DEBUG build" ;;
    *) BUILD="build type unknown" ;;
esac
command -v python3 >/dev/null || die "python3 is required"
command -v cc >/dev/null || die "a C compiler (cc) is required"

mkdir -p "$WORK"
# The binary may be rebuilt while we run: measure a private copy.
TMP=$(mktemp -d /tmp/portsentry-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
BIN="$TMP/portsentry"
cp "$SRC_BIN" "$BIN"

# --- build the floor loop -------------------------------------------------------------
FLOOR="$WORK/pcap_floor"
cc -O2 -o "$FLOOR" "$HERE/pcap_floor.c" -lpcap || die "building pcap_floor failed (is libpcap-dev installed?)"

# --- captures (generated once, reused) --------------------------------------------------
MIXED="$WORK/mixed-$MIXED_PACKETS.pcap"
SPOOFED="$WORK/spoofed-$SPOOF_SOURCES.pcap"
if [ ! -s "$MIXED" ]; then
    python3 "$HERE/gen_pcap.py" mixed --packets "$MIXED_PACKETS" --out "$MIXED.tmp"
    mv "$MIXED.tmp" "$MIXED"
fi
if [ ! -s "$SPOOFED" ]; then
    python3 "$HERE/gen_pcap.py" spoofed --sources "$SPOOF_SOURCES" --out "$SPOOFED.tmp"
    mv "$SPOOFED.tmp" "$SPOOFED"
fi

pps_of() { sed -n 's/.*(\([0-9][0-9]*\) packets\/s).*/\1/p' | head -n1; }
packets_of() { sed -n 's/^[a-z]*: \([0-9][0-9]*\) packets in.*/\1/p' | head -n1; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%d\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
group() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }  # 1234567 -> 1,234,567
size_mb() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.0f MB", b / 1e6 }'; }

# Warm the page cache so neither side pays for disk reads.
cat "$MIXED" "$SPOOFED" >/dev/null
"$FLOOR" "$MIXED" >/dev/null

# --- throughput: floor vs sensor, alternating ------------------------------------------
echo "== mixed capture: $MIXED ($(size_mb "$MIXED")), $RUNS runs each, alternating" >&2
floor_runs=() sensor_runs=()
floor_packets="" sensor_packets="" sensor_line=""
for i in $(seq 1 "$RUNS"); do
    line=$("$FLOOR" "$MIXED") || die "pcap_floor failed"
    echo "  [$i] $line" >&2
    floor_runs+=("$(echo "$line" | pps_of)")
    floor_packets=$(echo "$line" | packets_of)

    # shellcheck disable=SC2086
    line=$("$BIN" replay "$MIXED" --quiet $REPLAY_ARGS 2>&1 >/dev/null | grep '^replay:') \
        || die "portsentry replay --quiet printed no summary line"
    echo "  [$i] $line" >&2
    sensor_runs+=("$(echo "$line" | pps_of)")
    sensor_packets=$(echo "$line" | packets_of)
    sensor_line=$line
done
[ -n "${floor_runs[0]}" ] && [ -n "${sensor_runs[0]}" ] || die "could not parse packets/s"
floor_med=$(printf '%s\n' "${floor_runs[@]}" | median)
sensor_med=$(printf '%s\n' "${sensor_runs[@]}" | median)
ratio=$(awk -v s="$sensor_med" -v f="$floor_med" 'BEGIN { printf "%.2f", (f > 0 ? s / f : 0) }')
ratio_status=$(awk -v r="$ratio" -v t="$TARGET_RATIO" 'BEGIN { print (r >= t) ? "MET" : "MISSED" }')
count_note=""
[ "$floor_packets" = "$sensor_packets" ] || count_note=" (packet counts differ: floor $floor_packets, sensor $sensor_packets)"
mixed_events=$(echo "$sensor_line" | sed -n 's/.*packets\/s), \([0-9][0-9]*\) events.*/\1/p')

# --- spoofed flood: memory and detection ------------------------------------------------
echo "== spoofed capture: $SPOOFED ($(size_mb "$SPOOFED"))" >&2
EVENTS="$WORK/spoofed-events.txt"
STDERR="$WORK/spoofed-stderr.txt"
TIMEV="$WORK/spoofed-time-v.txt"
rm -f "$TIMEV"
set +e
if [ -x /usr/bin/time ]; then
    # shellcheck disable=SC2086
    /usr/bin/time -v -o "$TIMEV" "$BIN" replay "$SPOOFED" $REPLAY_ARGS >"$EVENTS" 2>"$STDERR"
else
    # shellcheck disable=SC2086
    "$BIN" replay "$SPOOFED" $REPLAY_ARGS >"$EVENTS" 2>"$STDERR"
fi
rc=$?
set -e
[ "$rc" -eq 0 ] || { cat "$STDERR" >&2; die "portsentry replay of the spoofed capture exited with $rc"; }
spoof_line=$(grep '^replay:' "$STDERR" | head -n1) || die "portsentry replay printed no summary line"
echo "  $spoof_line" >&2
limit_line=$(grep '^Output limit' "$STDERR" | tail -n1 || true)
[ -z "$limit_line" ] || echo "  $limit_line" >&2
rss_summary=$(echo "$spoof_line" | sed -n 's/.*max RSS \([0-9][0-9]*\) KiB.*/\1/p')
spoof_pps=$(echo "$spoof_line" | pps_of)
spoof_events=$(echo "$spoof_line" | sed -n 's/.*packets\/s), \([0-9][0-9]*\) events.*/\1/p')
spoof_table=$(echo "$spoof_line" | sed -n 's/.*table \([0-9]*\/[0-9]*\), evictions \([0-9]*\).*/\1, evictions \2/p')
rss_time="skipped (/usr/bin/time not found)"
if [ -s "$TIMEV" ]; then
    kb=$(sed -n 's/.*Maximum resident set size (kbytes): *\([0-9][0-9]*\).*/\1/p' "$TIMEV")
    rss_time=${kb:+$kb KiB}
    rss_time=${rss_time:-"(not reported)"}
fi
lines_written=$(grep -c 'Scan from: ' "$EVENTS" || true)
scanner_lines=$(grep -cF "Scan from: [$SCANNER]" "$EVENTS" || true)
first_port=$(grep -F "Scan from: [$SCANNER]" "$EVENTS" | head -n1 | sed -n 's/.* port: \[\([0-9]*\)\].*/\1/p')
closed_line=$(grep -F "Scan from: [$SCANNER]" "$EVENTS" | grep -F 'Closed-port scan' | head -n1 || true)
closed_type=$(echo "$closed_line" | sed -n 's/.*type: \[\(Closed-port scan: [0-9]* ports\)\].*/\1/p')
closed_time=$(echo "$closed_line" | awk '{ print $1 }')
scan_status=$([ "${scanner_lines:-0}" -gt 0 ] && echo MET || echo MISSED)
closed_status=$([ -n "$closed_line" ] && echo MET || echo MISSED)

# --- results block -----------------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n1)
RESULTS="$WORK/results.md"
tee "$RESULTS" <<EOF

### Replay benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')

Binary: \`$SRC_BIN\` ($BUILD)${REPLAY_ARGS:+, replay args \`$REPLAY_ARGS\`}; ${cpu:-unknown CPU}, $(nproc) cores, Linux $(uname -r).
Captures (\`benchmarks/gen_pcap.py\`): mixed $(group "$floor_packets") packets ($(size_mb "$MIXED")); spoofed $(group "$SPOOF_SOURCES") sources + scanner $SCANNER ($(size_mb "$SPOOFED")).

| Measurement | Result | Target | Status |
|---|---|---|---|
| libpcap read floor, mixed (median of $RUNS) | $(group "$floor_med") packets/s | | |
| \`replay --quiet\`, mixed (median of $RUNS) | $(group "$sensor_med") packets/s, $mixed_events events | | |
| sensor / floor | ${ratio}x$count_note | >= ${TARGET_RATIO}x | $ratio_status |
| spoofed: max RSS (replay summary) | $rss_summary KiB | | |
| spoofed: max RSS (/usr/bin/time -v) | $rss_time | | |
| spoofed: replay rate, events, state table | $(group "${spoof_pps:-0}") packets/s, $spoof_events events ($lines_written lines written), table $spoof_table | | |
| spoofed: events from $SCANNER | $scanner_lines lines${first_port:+ (first: port $first_port)} | >= 1 | $scan_status |
| spoofed: closed-port scan from $SCANNER | ${closed_type:-none}${closed_time:+ at $closed_time} | reported | $closed_status |

Runs (packets/s): floor ${floor_runs[*]}; sensor ${sensor_runs[*]}.
EOF
echo "run-replay: results block saved to $RESULTS; spoofed-run event lines in $EVENTS" >&2
