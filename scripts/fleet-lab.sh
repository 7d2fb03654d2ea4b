# Sourced by scripts/fleet-demo.sh and benchmarks/run-fleet.sh: a fleet on one machine.
# A controller, N sensor hosts and an attacker, each in its own network namespace, joined
# by a bridge in a namespace of its own (10.99.0.0/24). Nothing outside these namespaces is
# touched: no route, rule or address is added to the machine's own namespace.
#   fleet_up N CTL_BIN SENSOR_BIN WORKDIR   fleet_down
FLEET_TAG=${FLEET_TAG:-psfleet}
FLEET_NET=10.99.0
fleet_ns() { echo "$FLEET_TAG-$1"; }
fleet_host_ip() { echo "$FLEET_NET.$((10 + $1))"; }
FLEET_CTL_IP=$FLEET_NET.250
FLEET_ATTACKER_IP=$FLEET_NET.66
FLEET_GATEWAY_IP=$FLEET_NET.254

fleet_wait() { # seconds, description, command...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "timed out waiting for $what" >&2; return 1; }
    sleep 0.05
  done
}

fleet_down() {
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$FLEET_TAG-" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
  done
  sleep 0.5
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$FLEET_TAG-" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  [ -n "${FLEET_WORK:-}" ] && rm -rf "$FLEET_WORK"
  return 0
}

fleet_link() { # ns ip index
  local a="${FLEET_TAG:0:6}a$3" b="${FLEET_TAG:0:6}b$3"
  ip link add "$a" type veth peer name "$b"
  ip link set "$a" netns "$1"; ip link set "$b" netns "$(fleet_ns br)"
  ip -n "$(fleet_ns br)" link set "$b" master br0; ip -n "$(fleet_ns br)" link set "$b" up
  ip -n "$1" link set lo up; ip -n "$1" link set "$a" name eth0
  ip -n "$1" addr add "$2/24" dev eth0; ip -n "$1" link set eth0 up
}

fleet_up() { # N CTL SENSOR WORKDIR
  FLEET_N=$1 FLEET_CTL=$2 FLEET_SENSOR=$3 FLEET_WORK=$4
  mkdir -p "$FLEET_WORK"
  ip netns add "$(fleet_ns br)"; ip -n "$(fleet_ns br)" link add br0 type bridge; ip -n "$(fleet_ns br)" link set br0 up
  ip netns add "$(fleet_ns ctl)"; fleet_link "$(fleet_ns ctl)" $FLEET_CTL_IP 0
  ip netns add "$(fleet_ns attacker)"; fleet_link "$(fleet_ns attacker)" $FLEET_ATTACKER_IP 1
  local i
  for i in $(seq 1 "$FLEET_N"); do
    ip netns add "$(fleet_ns h$i)"; fleet_link "$(fleet_ns h$i)" "$(fleet_host_ip $i)" $((i + 1))
    ip -n "$(fleet_ns h$i)" route add default via $FLEET_GATEWAY_IP
  done
  local data=$FLEET_WORK/controller
  "$FLEET_CTL" init --data "$data" --name $FLEET_CTL_IP >/dev/null
  ip netns exec "$(fleet_ns ctl)" "$FLEET_CTL" serve --data "$data" --listen $FLEET_CTL_IP --port 8443 > "$FLEET_WORK/controller.log" 2>&1 &
  disown
  fleet_wait 30 "the controller" grep -q "listening on" "$FLEET_WORK/controller.log"
  for i in $(seq 1 "$FLEET_N"); do
    mkdir -p "$FLEET_WORK/h$i"
    cat > "$FLEET_WORK/h$i/portsentry.conf" <<CONF
TCP_PORTS="1,7,9,11,79,111"
UDP_PORTS="7,9"
SCAN_TRIGGER="2"
BLOCK_TCP="1"
BLOCK_UDP="1"
STATE_DIR="$FLEET_WORK/h$i/state"
CONTROL_SOCKET="$FLEET_WORK/h$i/control.sock"
CONF
    local token
    token=$("$FLEET_CTL" sensors add "host-$i" --data "$data")
    ip netns exec "$(fleet_ns h$i)" "$FLEET_SENSOR" enroll "https://$FLEET_CTL_IP:8443" "$token" --ca-file "$data/tls.crt" \
      -c "$FLEET_WORK/h$i/portsentry.conf" >/dev/null
    ip netns exec "$(fleet_ns h$i)" "$FLEET_SENSOR" -c "$FLEET_WORK/h$i/portsentry.conf" -i eth0 > "$FLEET_WORK/h$i/sensor.log" 2>&1 &
    disown
  done
  for i in $(seq 1 "$FLEET_N"); do
    fleet_wait 30 "sensor $i" grep -q "Portsentry is now active" "$FLEET_WORK/h$i/sensor.log"
  done
}

fleet_set() { # host index -> elements of its fleet4 set
  ip netns exec "$(fleet_ns h$1)" nft list set inet portsentry fleet4 2>/dev/null | tr -d '\n' | sed 's/.*elements = {//; s/}.*//'
}

fleet_everywhere() { # ip
  local i
  for i in $(seq 1 "$FLEET_N"); do fleet_set "$i" | grep -qw "$1" || return 1; done
}
