#!/usr/bin/env bash
# Fuzzes every decoder that takes outside input (Sources/Fuzz/Fuzz.swift): packets, both
# config files, the ignore file, block-list answers and state files, signed batches, operator
# requests and heartbeat reports. Builds the harness with libFuzzer and AddressSanitizer
# (only the project's own modules are instrumented), seeds each target from the fixtures and
# shipped files (scripts/fuzz-seeds.py), then runs each target for FUZZ_SECONDS (default 15).
# A crash, trap or sanitizer report fails the run and leaves the input in FUZZ_WORK.
#   scripts/fuzz.sh                          # the short run CI does
#   FUZZ_SECONDS=900 FUZZ_WORK=/var/tmp/fz scripts/fuzz.sh   # a long run (docs/fuzzing.md)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-15}
work=${FUZZ_WORK:-}
cleanup=0
if [ -z "$work" ]; then work=$(mktemp -d); cleanup=1; fi
targets=(packet sensor-config ignore-file controller-config blocklist batch operator)

# FUZZ_BIN: an already built harness (a long run in the background while the tree changes).
bin=${FUZZ_BIN:-.build/debug/portsentry-fuzz}
if [ -z "${FUZZ_BIN:-}" ]; then
  log=$(mktemp)
  if ! PORTSENTRY_FUZZ=1 swift build --product portsentry-fuzz >"$log" 2>&1; then
    cat "$log"; rm -f "$log"
    echo "scripts/fuzz.sh: the fuzz harness did not build" >&2
    exit 1
  fi
  rm -f "$log"
fi
python3 scripts/fuzz-seeds.py "$work/seeds"

status=0
for t in "${targets[@]}"; do
  mkdir -p "$work/corpus/$t"
  out="$work/$t.log"
  # Frames up to 64 KiB; text inputs past 8 KiB only slow the search down.
  case "$t" in packet) max_len=65536 ;; *) max_len=8192 ;; esac
  if FUZZ_TARGET="$t" "$bin" "$work/corpus/$t" "$work/seeds/$t" \
       -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len="$max_len" \
       -artifact_prefix="$work/crash-$t-" -print_final_stats=1 >"$out" 2>&1; then
    runs=$(grep -m1 "stat::number_of_executed_units" "$out" | awk '{print $2}')
    cov=$(grep -E "^#[0-9]+.*(DONE|pulse|NEW|REDUCE)" "$out" | tail -n 1 | grep -oE "cov: [0-9]+" || true)
    echo "fuzz $t: ${runs:-?} executions in ${seconds} s, ${cov:-cov: ?}, no crash"
  else
    status=1
    echo "fuzz $t: FAILED (input kept in $work/crash-$t-*)" >&2
    grep -E "ERROR|SUMMARY|Fatal|runtime failure|==[0-9]+==" "$out" | head -n 20 >&2 || tail -n 40 "$out" >&2
    cleanup=0
  fi
done
if [ "$cleanup" -eq 1 ]; then rm -rf "$work"; fi
exit $status
