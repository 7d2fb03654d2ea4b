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

status=0
swift test --skip-build -Xswiftc -warnings-as-errors || status=$?

# A test that died could not clean up; say so loudly and clean up here.
leftover=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^pste-" || true)
if [ -n "$leftover" ]; then
  echo "scripts/test.sh: namespaces left behind: $leftover (removing)" >&2
  for ns in $leftover; do ip netns del "$ns" || true; done
  status=1
fi
exit $status
