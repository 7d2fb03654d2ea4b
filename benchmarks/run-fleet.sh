#!/usr/bin/env bash
# Fleet distribution benchmark, in namespaces this script creates (scripts/fleet-lab.sh):
#   1. Time-to-enforce for 5, 10 and 20 sensors: BANS operator bans (POST /v1/decisions) one
#      after another; each sensor reports when it applied each revision, and the controller
#      keeps decision -> applied per sensor (the /metrics histogram; p50/p99 from /v1/fleet).
#   2. A 100,000-entry list reaching every sensor: the entries are written to the controller's
#      database in one transaction; the time runs until every sensor reports that revision
#      applied (a signed snapshot, verified, loaded into nftables in one transaction).
# Usage: sudo benchmarks/run-fleet.sh   (SIZES="5 10 20" BANS=40 ENTRIES=100000)
# Uses the release binaries (swift build -c release).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZES=${SIZES:-"5 10 20"} BANS=${BANS:-40} ENTRIES=${ENTRIES:-100000}
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
BIN=$ROOT/.build/release
for b in portsentry portsentry-controller; do [ -x "$BIN/$b" ] || { echo "no $BIN/$b (swift build -c release)" >&2; exit 1; }; done
source "$ROOT/scripts/fleet-lab.sh"
FLEET_TAG=psbench
trap fleet_down EXIT
fleet_down

api() { # method path [json]
  local token; token=$(cat "$FLEET_WORK/controller/operator.token")
  ip netns exec "$(fleet_ns ctl)" curl -sf --cacert "$FLEET_WORK/controller/tls.crt" -H "Authorization: Bearer $token" \
    -X "$1" ${3:+-d "$3"} "https://$FLEET_CTL_IP:8443$2"
}
all_applied() { # revision
  api GET /v1/fleet | python3 -c "
import json, sys
f = json.load(sys.stdin); r = int(sys.argv[1])
sys.exit(0 if f['sensors'] and all(s['blocklist']['applied_revision'] >= r for s in f['sensors']) else 1)" "$1"
}

echo "### Fleet distribution benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "Release binaries; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; controller and every sensor on this machine, each in its own namespace on one bridge."
echo
echo "| Sensors | Bans | Time-to-enforce p50 | p99 | max | samples (ban x sensor) | $ENTRIES-entry snapshot on every sensor |"
echo "|---|---|---|---|---|---|---|"
for n in $SIZES; do
  fleet_up "$n" "$BIN/portsentry-controller" "$BIN/portsentry" "$(mktemp -d /tmp/psbench.XXXXXX)"
  fleet_wait 30 "first polls" all_applied 0
  for b in $(seq 1 "$BANS"); do
    ip="192.0.$((b / 250)).$((b % 250 + 1))"
    rev=$(api POST /v1/decisions "{\"scope\":\"$ip\",\"duration\":3600,\"reason\":\"bench\"}" | python3 -c "import json,sys; print(json.load(sys.stdin)['revision'])")
    fleet_wait 10 "revision $rev on every sensor" all_applied "$rev"
  done
  stats=$(api GET /v1/fleet | python3 -c "
import json, sys
t = json.load(sys.stdin)['time_to_enforce_seconds']
print(f\"{t['p50']*1000:.1f} ms|{t['p99']*1000:.1f} ms|{t['count']}\")")
  max=$(api GET /v1/fleet >/dev/null; ip netns exec "$(fleet_ns ctl)" curl -sf --cacert "$FLEET_WORK/controller/tls.crt" "https://$FLEET_CTL_IP:8443/metrics" \
    | python3 -c "
import sys
b = [(l.split('le=\"')[1].split('\"')[0], int(l.split()[-1])) for l in sys.stdin if l.startswith('portsentry_controller_time_to_enforce_seconds_bucket')]
total = b[-1][1]
print(next((le for le, c in b if c == total), '+Inf') + ' s (bucket)')")
  # The big list: ENTRIES decisions and their changes in one transaction, as another replica would write them.
  before=$(date +%s.%N)
  rev=$(python3 - "$FLEET_WORK/controller/controller.db" "$ENTRIES" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=30)
n = int(sys.argv[2]); now = int(time.time()); ms = int(time.time() * 1000)
rows = [(f"100.{64 + i // 65536}.{(i // 256) % 256}.{i % 256}", now + 7200) for i in range(n)]
with db:
    db.executemany("INSERT INTO decisions (scope, origin, reason, createdMs, expires, revoked, offense, events) VALUES (?, 'manual', 'bench', ?, ?, 0, 1, '[]')",
                   [(s, ms, e) for s, e in rows])
    db.executemany("INSERT INTO list_changes (scope, expires, createdMs) VALUES (?, ?, ?)", [(s, e, ms) for s, e in rows])
print(db.execute("SELECT MAX(revision) FROM list_changes").fetchone()[0])
PY
)
  fleet_wait 120 "revision $rev on every sensor" all_applied "$rev"
  big=$(echo "$(date +%s.%N) - $before" | bc)
  count=$(ip netns exec "$(fleet_ns h1)" nft list set inet portsentry fleet4 | grep -o "100\.6[45]\.[0-9]*\.[0-9]*" | wc -l)
  IFS='|' read -r p50 p99 samples <<<"$stats"
  printf "| %s | %s | %s | %s | <= %s | %s | %.2f s (host 1 kernel set: %s entries) |\n" "$n" "$BANS" "$p50" "$p99" "$max" "$samples" "$big" "$count"
  fleet_down
done
