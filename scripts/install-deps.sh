#!/usr/bin/env bash
# Installs every Debian package the project needs to build, test and benchmark.
# Idempotent: safe to run on every CI run. Needs root (or sudo).
set -euo pipefail

BUILD_PACKAGES=(
  pkg-config
  libpcap-dev            # capture (sensor)
  libcurl4-openssl-dev   # uplink and alerts (sensor)
  libssl-dev             # Ed25519 signing (shared)
  libnftables-dev        # firewall backend (sensor)
  libsqlite3-dev         # controller store
)
TEST_PACKAGES=(
  iproute2               # ip netns / veth for end-to-end tests
  nftables               # nft CLI to inspect sets in test namespaces
  ipset iptables         # iptables backend
  nmap hping3 masscan    # real scanners
  tcpdump                # fixture recording
  fail2ban               # fail2ban-regex compatibility checks
  iperf3                 # benign-load benchmark
  postgresql             # the controller's PostgreSQL store tests
  procps psmisc          # pgrep, ps, fuser
  python3 python3-cryptography   # ingest benchmark client
  curl iputils-ping bc   # fleet test and demo: metrics, reachability, timing
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# A real SMTPS server with authentication for the alert tests (Debian 12 has no package of it).
python_packages() {
  python3 -c "import aiosmtpd" 2>/dev/null || python3 -m pip install -q --root-user-action=ignore aiosmtpd
}

missing=()
for p in "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all packages present"
  python_packages
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# fail2ban and iperf3 ship services; never let the package start them on this machine.
printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d.portsentry >/dev/null
if [ ! -e /usr/sbin/policy-rc.d ]; then
  $SUDO cp /usr/sbin/policy-rc.d.portsentry /usr/sbin/policy-rc.d
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO rm -f /usr/sbin/policy-rc.d.portsentry
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
python_packages
