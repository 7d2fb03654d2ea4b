#!/usr/bin/env bash
# Controller ingest benchmark: sustained signed events per second from many concurrent
# simulated sensors (benchmarks/ingest_bench.py: real enrollment, real Ed25519 signatures,
# keep-alive HTTPS), against the release controller on loopback, with the embedded SQLite
# store and with PostgreSQL (a throwaway role and database on the local cluster).
# Usage: sudo benchmarks/run-ingest.sh [path-to-portsentry-controller]
#   SENSORS=20 WORKERS=8 BATCH=500 SECONDS_PER_RUN=15 RUNS=3 BACKENDS="sqlite postgres"
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/.build/release/portsentry-controller}
SENSORS=${SENSORS:-20} WORKERS=${WORKERS:-8} BATCH=${BATCH:-500} SECONDS_PER_RUN=${SECONDS_PER_RUN:-15} RUNS=${RUNS:-3}
BACKENDS=${BACKENDS:-"sqlite postgres"}
PORT=18443
[ -x "$BIN" ] || { echo "no controller binary at $BIN (swift build -c release --product portsentry-controller)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/pstingest.XXXXXX)
pg_started=0
pg_version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1 || true)
cleanup() {
  pkill -f "$WORK/portsentry-controller" 2>/dev/null || true
  if [ -n "$pg_version" ]; then
    su postgres -c "dropdb --if-exists portsentry_bench" >/dev/null 2>&1 || true
    su postgres -c "psql -q -c 'DROP ROLE IF EXISTS portsentry_bench'" >/dev/null 2>&1 || true
    if [ "$pg_started" -eq 1 ]; then pg_ctlcluster "$pg_version" main stop || true; fi
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
cp "$BIN" "$WORK/portsentry-controller"
CTL="$WORK/portsentry-controller"

run_one() { # backend run -> JSON line on stdout
  local backend=$1 data="$WORK/data-$1-$2" db_args=()
  "$CTL" init --data "$data" --name 127.0.0.1 >/dev/null
  if [ "$backend" = postgres ]; then
    su postgres -c "dropdb --if-exists portsentry_bench" >/dev/null
    su postgres -c "createdb -O portsentry_bench portsentry_bench"
    echo portsentry_bench > "$WORK/pgpass"
    db_args=(--postgres-host 127.0.0.1 --postgres-user portsentry_bench --postgres-database portsentry_bench
             --postgres-password-file "$WORK/pgpass")
  fi
  for i in $(seq 1 "$SENSORS"); do "$CTL" sensors add "bench-$i" --data "$data" "${db_args[@]}"; done > "$WORK/tokens"
  "$CTL" serve --data "$data" --listen 127.0.0.1 --port $PORT "${db_args[@]}" > "$WORK/ctl.log" 2>&1 &
  local pid=$!
  local deadline=$((SECONDS + 30))
  until grep -q "listening on" "$WORK/ctl.log"; do
    [ $SECONDS -lt $deadline ] || { cat "$WORK/ctl.log" >&2; exit 1; }
    sleep 0.1
  done
  local before after
  before=$(awk '{print $14 + $15}' /proc/$pid/stat)
  python3 "$ROOT/benchmarks/ingest_bench.py" https://127.0.0.1:$PORT "$data/tls.crt" "$WORK/tokens" \
    --seconds "$SECONDS_PER_RUN" --batch "$BATCH" --workers "$WORKERS" > "$WORK/result.json"
  after=$(awk '{print $14 + $15}' /proc/$pid/stat)
  kill $pid; wait $pid 2>/dev/null || true
  local stored
  stored=$("$CTL" events --data "$data" "${db_args[@]}" --limit 100000000 | wc -l)
  python3 - "$WORK/result.json" "$before" "$after" "$stored" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1]))
ticks = os.sysconf("SC_CLK_TCK")
r["controller_cpu_percent"] = round((int(sys.argv[3]) - int(sys.argv[2])) / ticks / r["seconds"] * 100)
r["stored"] = int(sys.argv[4])
print(json.dumps(r))
PY
}

if [[ " $BACKENDS " == *" postgres "* ]]; then
  [ -n "$pg_version" ] || { echo "PostgreSQL is not installed (scripts/install-deps.sh)" >&2; exit 1; }
  if ! pg_lsclusters -h | awk -v v="$pg_version" '$1 == v && $2 == "main" {print $4}' | grep -q online; then
    pg_ctlcluster "$pg_version" main start; pg_started=1
  fi
  su postgres -c "psql -q -c 'DROP ROLE IF EXISTS portsentry_bench'" >/dev/null
  su postgres -c "psql -q -c \"CREATE ROLE portsentry_bench LOGIN PASSWORD 'portsentry_bench'\""
fi

echo "### Ingest benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "Controller: \`$BIN\`; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores. Client and controller share the machine."
echo "$SENSORS enrolled simulated sensors over $WORKERS client processes (\`benchmarks/ingest_bench.py\`), batches of $BATCH signed events, $SECONDS_PER_RUN s per run, loopback HTTPS."
echo
echo "| Store | Run | Events/s | Batches | Refused/failed | Stored afterwards | Batch latency p50 / p99 | Controller CPU |"
echo "|---|---|---|---|---|---|---|---|"
for backend in $BACKENDS; do
  for run in $(seq 1 "$RUNS"); do
    line=$(run_one "$backend" "$run")
    python3 - "$backend" "$run" "$line" <<'PY'
import json, sys
r = json.loads(sys.argv[3])
check = "" if r["stored"] == r["events"] else " (MISMATCH)"
print(f"| {sys.argv[1]} | {sys.argv[2]} | {r['events_per_second']:,} | {r['batches']:,} | {r['errors']} | {r['stored']:,}{check} | {r['latency_ms_p50']} / {r['latency_ms_p99']} ms | {r['controller_cpu_percent']}% |")
PY
  done
done
