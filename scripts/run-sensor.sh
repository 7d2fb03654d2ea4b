#!/usr/bin/env bash
# Installs what the sensor needs, builds it (release) and runs it in the foreground with the
# given arguments. With no /etc/portsentry/portsentry.conf and no -c, it uses the built-in
# default: Portsentry's example tripwire ports, log only, events on stdout. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO scripts/install-deps.sh
swift build -c release --product portsentry
exec $SUDO .build/release/portsentry "$@"
