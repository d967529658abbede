#!/usr/bin/env bash
# What a packet pays to cross a chain. Five variants side by side, each between a client
# namespace and a server namespace that this script makes (nothing else is touched):
#   floor        one veth pair, client to server
#   script       firewall + NAT router built by ip/nft commands, the same tables vcpe installs
#   vcpe         the same chain applied by vcpe (customer LAN bridge, fw, rt, WAN segment)
#   sites        two vcpe chains (fw, rt) on one segment, LAN host to LAN host through NAT and a port forward
#   sites-vpn    the same two sites with a vpn service each: LAN host to LAN host through WireGuard
# Per variant and round: UDP and TCP request/response (64 B, vcpe-bench-rr, HdrHistogram),
# TCP throughput (iperf3) and 64-byte UDP packets per second (iperf3 -u -l 64). The vcpe
# variant's UDP latency is cross-checked with sockperf. Variants alternate within a round.
# Prints one JSON object. Usage: bench/latency/run.sh [SAMPLES] [ROUNDS] [SECONDS] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh
samples=${1:-100000}; rounds=${2:-3}; secs=${3:-5}; bin=${4:-.build/release}
vcpe=$bin/vcpe; rr=$bin/vcpe-bench-rr
work=$(mktemp -d /tmp/vcpe-bench-lat.XXXXXX)
st="--state-dir $work/state"
variants="floor script vcpe sites sites-vpn"
customers="blv blsa blsb blva blvb"
pids=()
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  $vcpe delete $st $customers >/dev/null 2>&1
  for ns in $(ip netns list | awk '{print $1}' | grep -E '^bl-'); do ip netns del "$ns"; done
  for l in $(ip -o link | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^bl-'); do ip link del "$l" 2>/dev/null; done
  vcpe_remove_state $vcpe "$work/state"
  rm -rf "$work"
}
trap cleanup EXIT
warn() { echo "latency: $*" >&2; }

host() {  # host NS ADDRESS/LEN GATEWAY HOSTLINK: a namespace behind a host veth
  ip netns add "$1"
  ip link add "$4" type veth peer name eth0 netns "$1"
  ip -n "$1" addr add "$2" dev eth0; ip -n "$1" link set eth0 up; ip -n "$1" link set lo up
  [ -n "$3" ] && ip -n "$1" route add default via "$3"
  ip link set "$4" up
}
bridge() { ip link add "$1" type bridge; ip link set "$1" up; }

# --- floor: one veth pair.
ip netns add bl-floor-c; ip netns add bl-floor-s
ip link add eth0 netns bl-floor-c type veth peer name eth0 netns bl-floor-s
ip -n bl-floor-c addr add 10.250.0.1/30 dev eth0; ip -n bl-floor-s addr add 10.250.0.2/30 dev eth0
for n in bl-floor-c bl-floor-s; do ip -n $n link set eth0 up; ip -n $n link set lo up; done

# --- vcpe: one customer, firewall + router, its internet host on the segment.
office() {  # office CUSTOMER SEGMENT ATTACH
  cat > "$work/$1.json" <<JSON
{ "apiVersion": "vcpe/v1", "customer": "$1",
  "lan": { "subnet": "10.0.0.0/24", "gateway": "10.0.0.1", "attach": ["$3"] },
  "wan": { "address": "100.64.0.10/16", "gateway": "100.64.0.1", "segment": "$2" },
  "services": {
    "fw": { "type": "firewall", "default": "drop", "rules": [
      { "name": "web", "action": "accept", "from": "lan", "proto": "tcp", "dport": [80, 443, 5201] },
      { "name": "dns", "action": "accept", "from": "lan", "proto": "udp", "dport": [53, 5201, 11111] },
      { "name": "ssh-in", "action": "accept", "from": "wan", "proto": "tcp", "dport": 22, "src": "198.51.100.0/24" },
      { "name": "no-smb", "action": "reject", "proto": "tcp", "dport": "137-139" } ] },
    "rt": { "type": "router", "nat": "masquerade", "portForwards": [ { "proto": "tcp", "port": 8080, "to": "10.0.0.10:80" } ] } },
  "paths": { "internet": ["fw", "rt"] } }
JSON
}
host bl-vcpe-c 10.0.0.10/24 10.0.0.1 bl-vcpe-l
office blv bl-vcpe-w bl-vcpe-l
# The programs the chains' containers run (wireguard-go) are trusted, as after an install.
$vcpe trust $st >/dev/null
$vcpe apply $st "$work/blv.json" >/dev/null
host bl-vcpe-s 100.64.0.1/16 "" bl-vcpe-i; ip link set bl-vcpe-i master bl-vcpe-w

# --- script: the same chain by hand, loading the very tables vcpe installed.
ip netns exec vcpe-blv.fw nft -s list table inet vcpe > "$work/fw.nft"
ip netns exec vcpe-blv.rt nft -s list table ip vcpe > "$work/rt.nft"
host bl-script-c 10.0.0.10/24 10.0.0.1 bl-script-l
host bl-script-s 100.64.0.1/16 "" bl-script-i
bridge bl-script-b; bridge bl-script-w
ip link set bl-script-l master bl-script-b; ip link set bl-script-i master bl-script-w
ip netns add bl-script-fw; ip netns add bl-script-rt
ip link add bl-script-v type veth peer name lan netns bl-script-fw; ip link set bl-script-v master bl-script-b up
ip -n bl-script-fw link add internet-out type veth peer name internet-in netns bl-script-rt
ip -n bl-script-rt link add wan type veth peer name bl-script-x netns 1; ip link set bl-script-x master bl-script-w up
for n in bl-script-fw bl-script-rt; do ip -n $n link set lo up; ip netns exec $n sysctl -qw net.ipv4.ip_forward=1; done
ip -n bl-script-fw link set lan up; ip -n bl-script-fw link set internet-out up
ip -n bl-script-rt link set internet-in up; ip -n bl-script-rt link set wan up
ip -n bl-script-fw addr add 10.0.0.1/24 dev lan; ip -n bl-script-fw addr add 169.254.0.0/31 dev internet-out
ip -n bl-script-rt addr add 169.254.0.1/31 dev internet-in; ip -n bl-script-rt addr add 100.64.0.10/16 dev wan
ip -n bl-script-fw route add default via 169.254.0.1 dev internet-out
ip -n bl-script-rt route add default via 100.64.0.1 dev wan; ip -n bl-script-rt route add 10.0.0.0/24 via 169.254.0.0 dev internet-in
ip netns exec bl-script-fw nft -f "$work/fw.nft"; ip netns exec bl-script-rt nft -f "$work/rt.nft"

# --- sites and sites-vpn: two customers each, LAN hosts 10.K.0.10.
site() {  # site CUSTOMER K OTHER_K SEGMENT VPN PEERKEY
  local vpnsvc="" path='["fw", "rt"]' fwd=""
  if [ "$5" = 1 ]; then
    vpnsvc="\"vpn\": { \"type\": \"vpn\", \"wireguard\": { \"address\": \"10.99.0.$2/32\", \"listenPort\": 51820,
      \"peers\": [ { \"name\": \"other\", \"publicKey\": \"$6\", \"endpoint\": \"100.64.0.$3:51820\",
                     \"allowedIPs\": [\"10.$3.0.0/24\"], \"keepalive\": 25 } ] } },"
    path='["fw", "vpn", "rt"]'
  else
    fwd=', "portForwards": [ { "proto": "tcp", "port": 443, "to": "10.'$2'.0.10" }, { "proto": "udp", "port": 53, "to": "10.'$2'.0.10" },
                             { "proto": "tcp", "port": 5201, "to": "10.'$2'.0.10" }, { "proto": "udp", "port": 5201, "to": "10.'$2'.0.10" } ]'
  fi
  cat > "$work/$1.json" <<JSON
{ "apiVersion": "vcpe/v1", "customer": "$1",
  "lan": { "subnet": "10.$2.0.0/24", "gateway": "10.$2.0.1", "attach": ["bl-$1"] },
  "wan": { "address": "100.64.0.$2/24", "gateway": "100.64.0.254", "segment": "$4" },
  "services": {
    "fw": { "type": "firewall", "default": "drop", "rules": [
      { "name": "lan-out", "action": "accept", "from": "lan" },
      { "name": "in-tcp", "action": "accept", "from": "wan", "proto": "tcp", "dport": [443, 5201] },
      { "name": "in-udp", "action": "accept", "from": "wan", "proto": "udp", "dport": [53, 5201] } ] },
    $vpnsvc
    "rt": { "type": "router", "nat": "masquerade"$fwd } },
  "paths": { "site": $path } }
JSON
}
pubkey() { $vcpe status $st --json "$1" | python3 -c 'import json,sys; print([s["vpn"]["publicKey"] for s in json.load(sys.stdin)[0]["services"] if "vpn" in s][0])'; }
k=0
for c in blsa blsb blva blvb; do
  k=$((k + 1))
  ns=bl-$c; host "$ns" "10.$k.0.10/24" "10.$k.0.1" "bl-$c"
done
site blsa 1 2 bl-sites-w 0; site blsb 2 1 bl-sites-w 0
$vcpe apply $st "$work/blsa.json" "$work/blsb.json" >/dev/null
stranger=dpdBJobiTzRHV0txjujEHYNCPMe0AMmdl4hiVcrwPFo=
site blva 3 4 bl-vpn-w 1 $stranger; $vcpe apply $st "$work/blva.json" >/dev/null
site blvb 4 3 bl-vpn-w 1 "$(pubkey blva)"; $vcpe apply $st "$work/blvb.json" >/dev/null
site blva 3 4 bl-vpn-w 1 "$(pubkey blvb)"; $vcpe apply $st "$work/blva.json" >/dev/null

# Where each variant's client is and what it dials.
client() { case $1 in floor) echo bl-floor-c;; script) echo bl-script-c;; vcpe) echo bl-vcpe-c;; sites) echo bl-blsa;; sites-vpn) echo bl-blva;; esac; }
server() { case $1 in floor) echo bl-floor-s;; script) echo bl-script-s;; vcpe) echo bl-vcpe-s;; sites) echo bl-blsb;; sites-vpn) echo bl-blvb;; esac; }
target() { case $1 in floor) echo 10.250.0.2;; script|vcpe) echo 100.64.0.1;; sites) echo 100.64.0.2;; sites-vpn) echo 10.4.0.10;; esac; }
shape() { case $1 in
  floor) echo "one veth pair";;
  script) echo "LAN bridge, firewall ns, NAT router ns, WAN bridge (ip/nft script)";;
  vcpe) echo "LAN bridge, firewall ns, NAT router ns, WAN bridge (vcpe apply)";;
  sites) echo "two vcpe chains: fw, rt (NAT), WAN bridge, rt (port forward), fw";;
  sites-vpn) echo "two vcpe chains: fw, vpn, rt, WAN bridge, rt, vpn, fw (WireGuard, wireguard-go)";;
esac; }
for v in $variants; do
  s=$(server $v)
  ip netns exec $s $rr serve udp 53 & pids+=($!)
  ip netns exec $s $rr serve tcp 443 & pids+=($!)
  ip netns exec $s iperf3 -s -p 5201 -D -I "$work/iperf-$v.pid" >/dev/null
  if [ $v = vcpe ]; then ip netns exec $s sockperf sr -p 11111 >/dev/null 2>&1 & pids+=($!); fi
done
sleep 1
for v in $variants; do pids+=($(cat "$work/iperf-$v.pid")); done
for v in $variants; do
  ip netns exec $(client $v) ping -c 2 -i 0.3 -W 2 $(target $v) >/dev/null 2>&1 || ip netns exec $(client $v) $rr client udp $(target $v) 53 10 0 >/dev/null \
    || { warn "$v: no way through"; exit 1; }
done

warmup=$((samples / 20 < 1000 ? 1000 : samples / 20))
measure() {  # one variant, one round: a JSON object
  local v=$1 c; c=$(client $v)
  local u t g p
  u=$(ip netns exec $c $rr client udp $(target $v) 53 $samples $warmup)
  t=$(ip netns exec $c $rr client tcp $(target $v) 443 $samples $warmup)
  g=$(ip netns exec $c iperf3 -c $(target $v) -p 5201 -t $secs -O 1 -J | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9)')
  p=$(ip netns exec $c iperf3 -c $(target $v) -p 5201 -u -l 64 -b 0 -t $secs -J | python3 -c '
import json, sys
s = json.load(sys.stdin)["end"]["sum"]
print(round((s["packets"] - s["lost_packets"]) / s["seconds"]))')
  echo "{\"udp_rr\": $u, \"tcp_rr\": $t, \"tcp_gbit_s\": $g, \"udp64_pps\": $p}"
}

echo "{\"benchmark\": \"latency\", \"samples\": $samples, \"warmup\": $warmup, \"seconds\": $secs, \"rounds_run\": $rounds, \"variants\": {"
first=1
declare -A out
for r in $(seq 1 "$rounds"); do
  for v in $variants; do out[$v]="${out[$v]:-}${out[$v]:+,}$(measure $v)"; done
done
for v in $variants; do
  [ $first = 0 ] && echo ","; first=0
  echo "\"$v\": {\"shape\": \"$(shape $v)\", \"rounds\": [${out[$v]}]}"
done
# sockperf, an independent tool, on the vcpe variant: half round trips doubled back.
sp=$(ip netns exec bl-vcpe-c sockperf pp -i 100.64.0.1 -p 11111 -t $secs -m 64 2>&1 | python3 -c '
import re, sys
t = sys.stdin.read()
def pct(p):
    m = re.search(r"percentile %s\s*=\s*([0-9.]+)" % re.escape(p), t)
    return 2 * float(m.group(1)) if m else None
import json; print(json.dumps({"p50": pct("50.000"), "p90": pct("90.000"), "p99": pct("99.000"), "p99_9": pct("99.900")}))')
echo "}, \"sockperf_vcpe_udp_us\": $sp}"
