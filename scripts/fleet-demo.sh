#!/usr/bin/env bash
# The fleet on one machine: a controller, five sensor hosts and an attacker in network
# namespaces. The attacker sweeps ONE tripwire port on each host -- one probe per host, below
# every sensor's own trigger, so no single host reacts -- and the controller, seeing all of
# them, blocks the attacker on every host. Then it shows the decision and each host's
# kernel set, and removes everything it created. Needs root.
#   sudo scripts/fleet-demo.sh            (SENSORS=N for another fleet size)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "scripts/fleet-demo.sh creates network namespaces: run it as root" >&2; exit 1; }
SENSORS=${SENSORS:-5}
scripts/install-deps.sh >/dev/null
echo "== building (debug) =="
swift build --product portsentry 2>&1 | tail -1
swift build --product portsentry-controller 2>&1 | tail -1
source scripts/fleet-lab.sh
FLEET_TAG=psdemo
trap fleet_down EXIT
fleet_down
work=$(mktemp -d /tmp/psdemo.XXXXXX)
echo "== starting a controller and $SENSORS sensors in namespaces =="
fleet_up "$SENSORS" "$PWD/.build/debug/portsentry-controller" "$PWD/.build/debug/portsentry" "$work"
hosts=$(for i in $(seq 1 "$SENSORS"); do printf "%s " "$(fleet_host_ip $i)"; done)
echo "== attacker $FLEET_ATTACKER_IP: nmap -sS -p 79 against $hosts(one port per host) =="
start=$(date +%s.%N)
ip netns exec "$(fleet_ns attacker)" nmap -sS -Pn -n --max-retries 0 -p 79 $hosts | grep -E "Nmap done|79/tcp" || true
fleet_wait 10 "the block on every host" fleet_everywhere $FLEET_ATTACKER_IP
printf "== blocked on all %s hosts %.2f s after the sweep started ==\n" "$SENSORS" "$(echo "$(date +%s.%N) - $start" | bc)"
for i in $(seq 1 "$SENSORS"); do
  printf "host-%s (%s) fleet set: %s | own trigger reached: %s\n" "$i" "$(fleet_host_ip $i)" "$(fleet_set $i | xargs)" \
    "$(grep -q "triggered: true" "$work/h$i/sensor.log" && echo yes || echo no)"
done
echo "== the controller's decision =="
.build/debug/portsentry-controller decisions list --data "$work/controller"
echo "== ping from the attacker to host-1 now =="
ip netns exec "$(fleet_ns attacker)" ping -c 1 -W 1 "$(fleet_host_ip 1)" | grep -E "packet loss" || true
echo "== cleaning up =="
