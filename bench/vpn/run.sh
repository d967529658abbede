#!/usr/bin/env bash
# VPN benchmark: what the WireGuard tunnel costs a packet. Two sites (customers on one
# host, their WAN ends on a bench-only segment) talk LAN host to LAN host, once through a
# firewall -> vpn -> router chain at each site (the tunnel), once through the same chain
# without the vpn service (the router's NAT and a port forward, in clear): the baseline.
# Variants alternate within each round. TCP throughput with iperf3, TCP and UDP
# request/response latency with sockperf ping-pong.
# Prints one JSON object. Usage: bench/vpn/run.sh [SECONDS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-5}; rounds=${2:-3}
vcpe=.build/release/vcpe
work=$(mktemp -d /tmp/vcpe-bench-vpn.XXXXXX)
seg=vcpebvpnw
st="--state-dir $work/state"
customers="bvv1 bvv2 bvp1 bvp2"
pids=()
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  $vcpe delete $st $customers >/dev/null 2>&1
  for c in $customers; do ip netns del "bh-$c" 2>/dev/null; ip link del "bh-$c" 2>/dev/null; done
  ip link del $seg 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
ip link add $seg type bridge && ip link set $seg up

# A LAN host per customer: 10.<k>.0.10/24 behind host veth bh-<customer>.
k=0
for c in $customers; do
  k=$((k + 1))
  ip netns add "bh-$c"
  ip link add "bh-$c" type veth peer name eth0 netns "bh-$c"
  ip -n "bh-$c" addr add "10.$k.0.10/24" dev eth0
  ip -n "bh-$c" link set eth0 up; ip -n "bh-$c" link set lo up
  ip -n "bh-$c" route add default via "10.$k.0.1"
done

# chain CUSTOMER K OTHER_K VPN(0/1) PEERKEY
chain() {
  local c=$1 me=$2 other=$3 vpn=$4 key=${5:-}
  local vpnsvc="" path='["fw", "rt"]' fwd=""
  if [ "$vpn" = 1 ]; then
    vpnsvc="\"vpn\": { \"type\": \"vpn\", \"wireguard\": { \"address\": \"10.99.0.$me/32\", \"listenPort\": 51820,
      \"peers\": [ { \"name\": \"other\", \"publicKey\": \"$key\", \"endpoint\": \"100.64.0.$other:51820\",
                     \"allowedIPs\": [\"10.$other.0.0/24\"], \"keepalive\": 25 } ] } },"
    path='["fw", "vpn", "rt"]'
  else
    fwd=', "portForwards": [ { "proto": "tcp", "port": "5201", "to": "10.'$me'.0.10:5201" },
                             { "proto": "tcp", "port": "11111", "to": "10.'$me'.0.10:11111" },
                             { "proto": "udp", "port": "11111", "to": "10.'$me'.0.10:11111" } ]'
  fi
  cat > "$work/$c.json" <<JSON
{ "apiVersion": "vcpe/v1", "customer": "$c",
  "lan": { "subnet": "10.$me.0.0/24", "gateway": "10.$me.0.1", "attach": ["bh-$c"] },
  "wan": { "address": "100.64.0.$me/24", "gateway": "100.64.0.254", "segment": "$seg" },
  "services": {
    "fw": { "type": "firewall", "default": "drop", "rules": [
      { "name": "lan-out", "action": "accept", "from": "lan" },
      { "name": "in", "action": "accept", "from": "wan", "proto": "tcp", "dport": [5201, 11111] },
      { "name": "in-udp", "action": "accept", "from": "wan", "proto": "udp", "dport": 11111 },
      { "name": "ping-in", "action": "accept", "from": "wan", "proto": "icmp" } ] },
    $vpnsvc
    "rt": { "type": "router", "nat": "masquerade"$fwd } },
  "paths": { "site": $path } }
JSON
}
pubkey() { $vcpe status $st --json "$1" | python3 -c 'import json,sys; print([s["vpn"]["publicKey"] for s in json.load(sys.stdin)[0]["services"] if "vpn" in s][0])'; }
stranger=dpdBJobiTzRHV0txjujEHYNCPMe0AMmdl4hiVcrwPFo=
chain bvv1 1 2 1 $stranger; $vcpe apply $st "$work/bvv1.json" >/dev/null
chain bvv2 2 1 1 "$(pubkey bvv1)"; $vcpe apply $st "$work/bvv2.json" >/dev/null
chain bvv1 1 2 1 "$(pubkey bvv2)"; $vcpe apply $st "$work/bvv1.json" >/dev/null
chain bvp1 3 4 0; chain bvp2 4 3 0; $vcpe apply $st "$work/bvp1.json" "$work/bvp2.json" >/dev/null

# Servers on the far side of each variant.
for c in bvv2 bvp2; do
  ip netns exec "bh-$c" iperf3 -s -D -I "$work/iperf-$c.pid" >/dev/null
  ip netns exec "bh-$c" sockperf sr --tcp -p 11111 >/dev/null 2>&1 & pids+=($!)
  ip netns exec "bh-$c" sockperf sr -p 11111 >/dev/null 2>&1 & pids+=($!)
done
sleep 1
for c in bvv2 bvp2; do pids+=($(cat "$work/iperf-$c.pid")); done
# Where the client dials: through the tunnel the far LAN host itself; without, the far WAN address.
target() { [ "$1" = vpn ] && echo 10.2.0.10 || echo 100.64.0.4; }
client() { [ "$1" = vpn ] && echo bh-bvv1 || echo bh-bvp1; }
ip netns exec bh-bvv1 ping -c 3 -i 0.2 -W 1 10.2.0.10 >/dev/null || { echo "vpn: the tunnel does not pass traffic" >&2; exit 1; }

iperf() {
  ip netns exec "$(client $1)" iperf3 -c "$(target $1)" -t "$secs" -O 1 -J | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9)'
}
# sockperf ping-pong: prints "p50 p99 p99.9 max" of the round trip in microseconds.
rr() {
  local proto=""; [ "$2" = tcp ] && proto="--tcp"
  ip netns exec "$(client $1)" sockperf pp $proto -i "$(target $1)" -p 11111 -t "$secs" -m 64 2>&1 | python3 -c '
import re, sys
t = sys.stdin.read()
def pct(p):
    m = re.search(r"percentile %s\s*=\s*([0-9.]+)" % re.escape(p), t)
    return float(m.group(1)) if m else float("nan")
mx = re.search(r"<MAX> observation\s*=\s*([0-9.]+)", t)
# sockperf reports half the round trip; double it back.
print(" ".join(str(2 * v) for v in (pct("50.000"), pct("99.000"), pct("99.900"), float(mx.group(1)) if mx else float("nan"))))'
}

echo "{\"seconds\": $secs, \"kernel\": \"$(uname -r)\", \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\", \"rounds\": ["
for r in $(seq 1 "$rounds"); do
  [ "$r" -gt 1 ] && echo ","
  echo "{"
  first=1
  for v in plain vpn; do
    [ $first = 0 ] && echo ","; first=0
    g=$(iperf $v); t=$(rr $v tcp); u=$(rr $v udp)
    read -r t50 t99 t999 tmax <<< "$t"; read -r u50 u99 u999 umax <<< "$u"
    echo "\"$v\": {\"tcp_gbit_s\": $g, \"tcp_rtt_us\": {\"p50\": $t50, \"p99\": $t99, \"p99_9\": $t999, \"max\": $tmax}, \"udp_rtt_us\": {\"p50\": $u50, \"p99\": $u99, \"p99_9\": $u999, \"max\": $umax}}"
  done
  echo "}"
done
echo "]}"
