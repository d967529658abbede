#!/usr/bin/env bash
# What the classifier hop costs. One shape, four ways of crossing its middle namespace:
#   kernel          the middle namespace forwards (ip_forward=1): the baseline
#   cache           vcpe's forwarder with RULES classifier rules and its flow cache (tc eBPF,
#                   the default): a flow's first packet in userspace, the rest in the kernel;
#                   forwarding off in the namespace, vcpe's ingress drop on its interfaces
#   forwarder       the same with the cache off ("flowCache": false): every packet in userspace
#                   (sleeps when idle, the default)
#   forwarder-busy  the cache off, busy-polling on CPU BUSY_CPU (vcpe forwarder configure --busy-poll)
# client ns --veth-- middle ns --veth-- server ns. The forwarder runs as `vcpe forwarder run`
# on a chain file this script writes (what apply would write for a classifier namespace).
# Per variant and round: UDP and TCP request/response (64 B, vcpe-bench-rr), TCP throughput
# (iperf3), 64-byte UDP packets per second (bench/steering/blast.c, sendmmsg; iperf3 offers
# too few) at full offered load and at a fixed rate, counted by an nft counter at the
# server's ingress, which drops them (so the server costs nothing); CPU per forwarded packet
# (the whole machine's, from /proc/stat, and the forwarder's own, from /proc/PID/stat).
# Then new flows per second: every datagram a new flow (blast NEW=1), at full offered load,
# with 1,000 and 10,000 rules (NEW_FLOW_RULES), cache on and off, and the kernel's rate.
# Prints one JSON object. Usage: bench/steering/run.sh [SAMPLES] [ROUNDS] [SECONDS] [BUILD_DIR] [RULES]
set -euo pipefail
cd "$(dirname "$0")/../.."
samples=${1:-100000}; rounds=${2:-3}; secs=${3:-5}; bin=${4:-.build/release}; nrules=${5:-1000}
busy_cpu=${BUSY_CPU:-1}
vcpe=$(realpath "$bin/vcpe"); rr=$bin/vcpe-bench-rr
work=$(mktemp -d /tmp/vcpe-bench-steer.XXXXXX)
variants="kernel cache forwarder forwarder-busy"
new_flow_rules=${NEW_FLOW_RULES:-1000 10000}
fixed_rate=${FIXED_RATE:-100000}
pids=()
fwd_pid=""
cleanup() {
  set +e
  [ -n "$fwd_pid" ] && kill "$fwd_pid" 2>/dev/null && wait "$fwd_pid" 2>/dev/null
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for ns in $(ip netns list | awk '{print $1}' | grep -E '^bs-'); do ip netns del "$ns"; done
  rm -rf "$work" /sys/fs/bpf/vcpe/bench
  rmdir /sys/fs/bpf/vcpe 2>/dev/null
}
trap cleanup EXIT
rm -rf /sys/fs/bpf/vcpe/bench  # a map an interrupted run left pinned

shape() {  # shape PREFIX FORWARD: client 10.1.0.10 -- middle -- server 10.2.0.1
  local c=bs-$1-c m=bs-$1-m s=bs-$1-s forward=$2
  for n in $c $m $s; do ip netns add $n; ip -n $n link set lo up; done
  ip -n $m link add lan type veth peer name eth0 netns $c
  ip -n $m link add p-out type veth peer name eth0 netns $s
  ip -n $c addr add 10.1.0.10/24 dev eth0; ip -n $m addr add 10.1.0.1/24 dev lan
  ip -n $m addr add 10.2.0.0/31 dev p-out; ip -n $s addr add 10.2.0.1/31 dev eth0
  ip -n $c link set eth0 up; ip -n $m link set lan up; ip -n $m link set p-out up; ip -n $s link set eth0 up
  ip -n $c route add default via 10.1.0.1; ip -n $s route add 10.1.0.0/24 via 10.2.0.0
  ip netns exec $m sysctl -qw net.ipv4.ip_forward=$forward
}
shape kernel 1
shape fwd 0
blast=$work/blast
cc -O2 -o "$blast" bench/steering/blast.c
for p in kernel fwd; do
  ip netns exec bs-$p-s nft -f - <<NFT
table netdev sink {
  chain in { type filter hook ingress device "eth0" priority 0; udp dport != 53 counter drop; }
}
NFT
done
# What vcpe installs in a classifier namespace: transit IPv4 dropped after the forwarder's tap.
ip netns exec bs-fwd-m nft -f - <<NFT
table netdev vcpe {
  chain in-lan { type filter hook ingress device "lan" priority 0; ip daddr 10.1.0.1 accept; meta protocol ip drop; }
  chain in-p { type filter hook ingress device "p-out" priority 0; ip daddr 10.2.0.0 accept; meta protocol ip drop; }
}
NFT

# The chain file: N rules that the measured traffic must search past (none matches it;
# the default path takes it), as apply writes them, the flow cache on or off.
mkdir -p "$work/forwarder/chains"
write_chain() {  # write_chain RULES CACHE(true|false)
python3 - "$work/forwarder/chains/bench.json" "$1" "$2" <<'PY'
import json, random, sys
rnd = random.Random(5)
rules = []
for i in range(int(sys.argv[2])):
    m = {"src": [], "dst": [], "proto": "any", "sport": [], "dport": []}
    # Destinations in 172.16/12 with ports: the bench traffic (10.2.0.1) matches none.
    m["dst"] = [f"172.{16 + rnd.randrange(16)}.{rnd.randrange(256)}.0/{rnd.choice([24, 28, 32])}"]
    if i % 2: m["proto"] = rnd.choice(["tcp", "udp"]); m["dport"] = [rnd.randrange(1, 65535)]
    rules.append({"name": f"r{i}", "priority": i, "match": m,
                  "target": {"drop": {}} if i % 7 == 0 else {"path": {"_0": "p"}}})
json.dump({"customer": "bench", "namespace": "bs-fwd-m",
           "lan": {"interface": "lan", "gateway": "10.1.0.1", "subnet": "10.1.0.0/24"},
           "paths": [{"name": "p", "interface": "p-out", "address": "10.2.0.0", "peer": "10.2.0.1"}],
           "defaultPath": "p", "rules": rules, "flowCache": sys.argv[3] == "true"}, open(sys.argv[1], "w"))
PY
}

stop_forwarder() {  # the kernel's and the sender's figures are taken with no forwarder (a busy-polling one eats a CPU)
  [ -n "$fwd_pid" ] && { kill "$fwd_pid"; wait "$fwd_pid" 2>/dev/null || true; }
  fwd_pid=""
}
start_forwarder() {  # start_forwarder BUSY RULES CACHE
  stop_forwarder
  write_chain "$2" "$3"
  if [ "$1" = 1 ]; then echo "{\"busyPoll\": true, \"cpu\": $busy_cpu, \"ringFrames\": 64, \"spinMicroseconds\": 50}"
  else echo '{"busyPoll": false, "ringFrames": 128, "spinMicroseconds": 50}'; fi > "$work/forwarder/settings.json"
  "$vcpe" forwarder run "$work" >/dev/null 2>>"$work/forwarder.log" & fwd_pid=$!
  for _ in $(seq 100); do [ -S "$work/forwarder/run/control.sock" ] && break; sleep 0.05; done
  for _ in $(seq 50); do ip netns exec bs-fwd-c ping -c 1 -W 0.2 10.2.0.1 >/dev/null 2>&1 && return 0; done
  echo "steering: the forwarder does not forward" >&2; cat "$work/forwarder.log" >&2; exit 1
}
prefix() { case $1 in kernel) echo kernel;; *) echo fwd;; esac; }

for p in kernel fwd; do
  ip netns exec bs-$p-s $rr serve udp 53 & pids+=($!)
  ip netns exec bs-$p-s $rr serve tcp 443 & pids+=($!)
  ip netns exec bs-$p-s iperf3 -s -p 5201 -D -I "$work/iperf-$p.pid" >/dev/null
done
sleep 1
for p in kernel fwd; do pids+=($(cat "$work/iperf-$p.pid")); done

cpu_ticks() { awk '/^cpu /{print $2+$3+$4+$6+$7+$8}' /proc/stat; }  # busy jiffies, all CPUs
proc_ticks() { awk '{print $14+$15}' /proc/$1/stat; }
sunk() { ip netns exec bs-$1-s nft -j list table netdev sink | python3 -c '
import json, sys
print([e["counter"]["packets"] for x in json.load(sys.stdin)["nftables"] if "rule" in x for e in x["rule"]["expr"] if "counter" in e][0])'; }
hz=$(getconf CLK_TCK)
warmup=$((samples / 20 < 1000 ? 1000 : samples / 20))
pps() {  # pps VARIANT RATE(0 = all it can) [NEW]: JSON of offered, forwarded, loss, CPU per packet
  local v=$1 p; p=$(prefix $1)
  local n0 c0 f0=0 sent n1 c1 f1=0
  n0=$(sunk $p); c0=$(cpu_ticks); [ $v != kernel ] && f0=$(proc_ticks $fwd_pid)
  local port=9 fresh=0; [ -n "${3:-}" ] && { port=1024; fresh=1; }
  sent=$(timeout $((secs + 20)) ip netns exec bs-$p-c "$blast" 10.2.0.1 $port $secs $2 $fresh)
  n1=$(sunk $p); c1=$(cpu_ticks); [ $v != kernel ] && f1=$(proc_ticks $fwd_pid)
  python3 -c "
got = max(1, $n1 - $n0)
print('{\"offered_pps\": %d, \"pps\": %d, \"loss_pct\": %.3f, \"machine_us_per_packet\": %.3f, \"forwarder_us_per_packet\": %s}' % (
    $sent / $secs, got / $secs, 100.0 * ($sent - got) / max(1, $sent), ($c1 - $c0) / $hz * 1e6 / got,
    'null' if '$v' == 'kernel' else '%.3f' % (($f1 - $f0) / $hz * 1e6 / got)))"
}
# The sender's own cost: the same blast dropped at the middle's LAN ingress, before any
# forwarding. A variant's machine CPU per packet less this is what forwarding costs, and one
# core's packets per second is the inverse of that.
sender_cost() {
  ip netns exec bs-kernel-m nft -f - <<NFT
table netdev gen {
  chain in { type filter hook ingress device "lan" priority -500; udp dport 9 counter drop; }
}
NFT
  local c0 c1 sent got
  c0=$(cpu_ticks)
  sent=$(timeout $((secs + 20)) ip netns exec bs-kernel-c "$blast" 10.2.0.1 9 $secs 0 0)
  c1=$(cpu_ticks)
  got=$(ip netns exec bs-kernel-m nft -j list table netdev gen | python3 -c '
import json, sys
print([e["counter"]["packets"] for x in json.load(sys.stdin)["nftables"] if "rule" in x for e in x["rule"]["expr"] if "counter" in e][0])')
  ip netns exec bs-kernel-m nft delete table netdev gen
  python3 -c "print('{\"pps\": %d, \"machine_us_per_packet\": %.3f}' % (max(1, $got) / $secs, ($c1 - $c0) / $hz * 1e6 / max(1, $got)))"
}
tcp_gbit() {  # tcp_gbit CLIENT_NS SECONDS
  timeout $(($2 + 20)) ip netns exec $1 iperf3 -c 10.2.0.1 -p 5201 -t $2 -O 1 -J | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9)'
}
measure() {  # one variant, one round: a JSON object
  local v=$1 c; c=bs-$(prefix $v)-c
  local u t g
  u=$(ip netns exec $c $rr client udp 10.2.0.1 53 $samples $warmup)
  t=$(ip netns exec $c $rr client tcp 10.2.0.1 443 $samples $warmup)
  g=$(tcp_gbit $c $secs)
  echo "{\"udp_rr\": $u, \"tcp_rr\": $t, \"tcp_gbit_s\": $g, \"udp64_max\": $(pps $v 0), \"udp64_fixed\": $(pps $v $fixed_rate)}"
}

echo "{\"benchmark\": \"steering\", \"rules\": $nrules, \"samples\": $samples, \"warmup\": $warmup, \"seconds\": $secs, \"rounds_run\": $rounds,"
echo "\"shape\": \"client ns, veth, middle ns, veth, server ns; the middle forwards by kernel or by vcpe's forwarder\", \"busy_cpu\": $busy_cpu, \"fixed_rate_pps\": $fixed_rate, \"variants\": {"
declare -A out
senders=""
for r in $(seq 1 "$rounds"); do
  stop_forwarder
  senders="${senders}${senders:+,}$(sender_cost)"
  for v in $variants; do
    # Started here, not in measure's subshell: the forwarder outlives the round's variant.
    case $v in cache) start_forwarder 0 $nrules true;; forwarder) start_forwarder 0 $nrules false;; forwarder-busy) start_forwarder 1 $nrules false;; esac
    out[$v]="${out[$v]:-}${out[$v]:+,}$(measure $v)"
  done
done
first=1
for v in $variants; do
  [ $first = 0 ] && echo ","; first=0
  echo "\"$v\": {\"rounds\": [${out[$v]}]}"
done
echo "}, \"sender\": [$senders],"
# Latency in pairs: these machines drift by 20 % between runs, so kernel and cache alternate
# in short runs and each pair gives a ratio.
start_forwarder 0 $nrules true
pairs=""
for i in $(seq 1 $((rounds * 3))); do
  k=$(ip netns exec bs-kernel-c $rr client udp 10.2.0.1 53 $((samples / 4)) $warmup)
  c=$(ip netns exec bs-fwd-c $rr client udp 10.2.0.1 53 $((samples / 4)) $warmup)
  pairs="${pairs}${pairs:+,}{\"kernel\": $(echo "$k" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["us"]))'), \"cache\": $(echo "$c" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["us"]))')}"
done
echo "\"latency_pairs\": [$pairs],"
# TCP throughput and 64-byte packets the same way: kernel and cache back to back.
pairs=""
for i in $(seq 1 $((rounds * 2))); do
  pairs="${pairs}${pairs:+,}{\"kernel\": {\"tcp_gbit_s\": $(tcp_gbit bs-kernel-c $secs), \"udp64\": $(pps kernel 0)}, \"cache\": {\"tcp_gbit_s\": $(tcp_gbit bs-fwd-c $secs), \"udp64\": $(pps cache 0)}}"
done
echo "\"throughput_pairs\": [$pairs],"
# New flows: every datagram opens one, so every one is a miss the classifier decides.
declare -A nf
for r in $(seq 1 "$rounds"); do
  stop_forwarder
  nf[kernel]="${nf[kernel]:-}${nf[kernel]:+,}$(pps kernel 0 1)"
  for n in $new_flow_rules; do
    for c in true false; do
      start_forwarder 0 $n $c
      k="$n-$c"; nf[$k]="${nf[$k]:-}${nf[$k]:+,}$(pps forwarder 0 1)"
    done
  done
done
echo "\"new_flows\": {\"kernel\": [${nf[kernel]}]"
for n in $new_flow_rules; do
  echo ", \"$n\": {\"cache\": [${nf[$n-true]}], \"forwarder\": [${nf[$n-false]}]}"
done
echo "}}"
