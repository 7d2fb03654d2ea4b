#!/usr/bin/env bash
# Runs every test: unit tests, pcap-fixture replays, and end-to-end tests that start the real
# sensor and real scanners in network namespaces. Needs root (namespaces, capture). Installs
# the Debian packages it needs first. Leaves no namespace, process or file behind.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh: the end-to-end tests create network namespaces; run as root (sudo $0)" >&2
  exit 1
fi

scripts/install-deps.sh

# The layers the targets stand for: no target imports what it must not.
scripts/check-layers.sh
python3 scripts/check-function-length.py

# Strict build of the project's own code: any compiler warning in it fails the run.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! swift build --build-tests -Xswiftc -warnings-as-errors >"$log" 2>&1; then
  cat "$log"
  echo "scripts/test.sh: build failed" >&2
  exit 1
fi
if grep -E "$(pwd)/(Sources|Tests)/.*(warning|error):" "$log"; then
  echo "scripts/test.sh: the project's code has compiler warnings (above)" >&2
  exit 1
fi

# A real PostgreSQL for the controller's store tests: started if it is not running, a
# throwaway role and database, both removed again at the end.
pg_version=$(ls /etc/postgresql | sort -V | tail -n 1)
pg_started=0
if ! pg_lsclusters -h | awk -v v="$pg_version" '$1 == v && $2 == "main" {print $4}' | grep -q online; then
  pg_ctlcluster "$pg_version" main start
  pg_started=1
fi
cleanup_postgres() {
  su postgres -c "dropdb --if-exists portsentry_test" >/dev/null 2>&1 || true
  su postgres -c "psql -q -c 'DROP ROLE IF EXISTS portsentry_test'" >/dev/null 2>&1 || true
  if [ "$pg_started" -eq 1 ]; then pg_ctlcluster "$pg_version" main stop || true; fi
  rm -f "$log"
}
trap cleanup_postgres EXIT
su postgres -c "dropdb --if-exists portsentry_test" >/dev/null 2>&1 || true
su postgres -c "psql -q -c 'DROP ROLE IF EXISTS portsentry_test'" >/dev/null 2>&1 || true
su postgres -c "psql -q -c \"CREATE ROLE portsentry_test LOGIN PASSWORD 'portsentry_test'\""
su postgres -c "createdb -O portsentry_test portsentry_test"
export PORTSENTRY_TEST_POSTGRES="127.0.0.1:5432:portsentry_test:portsentry_test:portsentry_test"

status=0
swift test --skip-build -Xswiftc -warnings-as-errors || status=$?

# The parser, detector and config tests again with the project's modules under
# AddressSanitizer: an over-read fails a test instead of passing silently. (Leak checking is
# off: the Swift runtime's one-time allocations look like leaks to it.)
export ASAN_OPTIONS=detect_leaks=0
if ! PORTSENTRY_ASAN=1 swift build --build-tests >"$log" 2>&1; then
  cat "$log"
  echo "scripts/test.sh: the AddressSanitizer build failed" >&2
  status=1
else
  PORTSENTRY_ASAN=1 swift test --skip-build --filter "PacketParserTests|FixtureReplayTests|DetectorTests|ConfigTests|PathRulesTests|UplinkSpoolTests|FleetSubscriptionTests" || status=1
fi
unset ASAN_OPTIONS

# Every decoder of outside input under libFuzzer and AddressSanitizer, seeded from the
# fixtures: a short bounded run of each target (the long runs are in docs/fuzzing.md).
FUZZ_SECONDS=${FUZZ_SECONDS:-15} scripts/fuzz.sh || status=1

# A test that died could not clean up; say so loudly and clean up here.
leftover=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^pste-" || true)
if [ -n "$leftover" ]; then
  echo "scripts/test.sh: namespaces left behind: $leftover (removing)" >&2
  for ns in $leftover; do ip netns del "$ns" || true; done
  status=1
fi
exit $status
