#!/usr/bin/env bash
# Fails when a target imports a module its layer must not see. SwiftPM on Linux lets a target
# import any module that happens to be built (a system-library shim, another target), so the
# declared dependencies alone do not keep the layers apart; this check does.
#   scripts/check-layers.sh        (scripts/test.sh runs it before the build)
set -euo pipefail
cd "$(dirname "$0")/.."

# Target folder → the only modules its files may import. Anything else is a finding.
declare -A allowed=(
  # Parse and detect: pure functions over raw bytes. No I/O, no Foundation, no libpcap.
  [Sources/SensorCore]="PortsentryShared Synchronization"
  # The wire contract: encoding and signing only. No capture, no HTTP server, no database.
  [Sources/Shared]="COpenSSL Foundation Glibc Darwin Synchronization"
  # The sensor's I/O and daemon: never the controller's server or database.
  [Sources/Sensor]="SensorCore PortsentryShared CPcap CLinux CNftables CCurl Foundation Glibc Logging ArgumentParser Synchronization Dispatch"
  [Sources/SensorMain]="Sensor"
  # Correlate and decide: pure policy. No HTTP server, no database driver, no network.
  [Sources/ControllerCore]="PortsentryShared Logging Synchronization Foundation"
  # The controller: never libpcap, nftables or the sensor's modules.
  [Sources/Controller]="ControllerCore PortsentryShared Foundation Glibc Logging ArgumentParser Hummingbird HummingbirdTLS ServiceLifecycle GRDB PostgresNIO Synchronization NIOCore NIOPosix NIOSSL X509 Crypto SwiftASN1 Prometheus"
  [Sources/ControllerMain]="Controller"
)

status=0
for dir in "${!allowed[@]}"; do
  [ -d "$dir" ] || { echo "check-layers: $dir is missing (update scripts/check-layers.sh)" >&2; status=1; continue; }
  while IFS=: read -r file line text; do
    module=$(sed -E 's/^[[:space:]]*(@[A-Za-z_]+[[:space:]]+)*((public|package|internal|private|fileprivate)[[:space:]]+)?import[[:space:]]+((struct|class|enum|func|var|let|protocol|typealias)[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*).*/\6/' <<<"$text")
    if ! grep -qw -- "$module" <<<"${allowed[$dir]}"; then
      echo "check-layers: $file:$line imports $module, which $dir must not use" >&2
      status=1
    fi
  done < <(grep -rnE '^[[:space:]]*(@[A-Za-z_]+[[:space:]]+)*((public|package|internal|private|fileprivate)[[:space:]]+)?import[[:space:]]' --include='*.swift' "$dir" || true)
done
if [ "$status" -eq 0 ]; then echo "check-layers: every target imports only what its layer allows"; fi
exit $status
