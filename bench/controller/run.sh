#!/usr/bin/env bash
# Control-plane benchmark: apply N customers (firewall + router each) from scratch with
# vcpe, re-apply them unchanged, delete them; then the same N chains built and removed by
# a script of ip and nft commands. Rounds alternate. Everything lives in namespaces and
# host links named vcpe-bc*/vb-bc*/vl-bc*/vw-bc* and a bench-only WAN bridge.
# Prints one JSON object. Usage: bench/controller/run.sh [N] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib.sh
n=${1:-100}; rounds=${2:-3}
vcpe=${BENCH_BIN:-.build/release}/vcpe
work=$(mktemp -d /tmp/vcpe-bench-ctl.XXXXXX)
seg=vcpebenchw
cleanup() {
  set +e
  $vcpe delete --state-dir "$work/state" $(seq -f "bc%g" 0 $((n - 1))) >/dev/null 2>&1
  for ns in $(ip netns list | awk '{print $1}' | grep -E '^(vcpe-bc|bcs)'); do ip netns del "$ns"; done
  for l in $(ip -o link 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^(vb|vl|vw|sb|sl|sw)-bc'); do ip link del "$l" 2>/dev/null; done
  ip link del $seg 2>/dev/null
  vcpe_remove_state $vcpe "$work/state"
  rm -rf "$work"
}
trap cleanup EXIT

# Descriptors and the equivalent script.
mkdir -p "$work/chains"
for i in $(seq 0 $((n - 1))); do office_chain "bc$i" "$i" "$seg" > "$work/chains/bc$i.json"; done
$vcpe plan --empty-host "$work/chains/bc0.json" >/dev/null
# The nft text of the first customer's tables, as vcpe renders them (same rules for all).
fwtables="$work/fw.nft"; rttables="$work/rt.nft"
cat > "$fwtables" <<'NFT'
table inet vcpe {
	counter web {
	}
	counter dns {
	}
	counter ssh-in {
	}
	counter no-smb {
	}
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept comment "established"
		ct state invalid drop comment "invalid"
		iifname "internet-out" ip daddr 10.0.0.10 tcp dport 80 accept comment "port-forward-0"
		iifname "lan" tcp dport { 80, 443 } counter name "web" accept comment "web"
		iifname "lan" udp dport 53 counter name "dns" accept comment "dns"
		iifname "internet-out" ip saddr 198.51.100.0/24 tcp dport 22 counter name "ssh-in" accept comment "ssh-in"
		tcp dport 137-139 counter name "no-smb" reject with tcp reset comment "no-smb"
	}
}
NFT
cat > "$rttables" <<'NFT'
table ip vcpe {
	chain prerouting {
		type nat hook prerouting priority -100; policy accept;
		iifname "wan" ip daddr 100.64.0.10 tcp dport 8080 dnat to 10.0.0.10:80 comment "port-forward-0"
	}
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		oifname "wan" masquerade comment "masquerade"
	}
}
NFT
{
  echo "set -e"
  echo "ip link add $seg type bridge 2>/dev/null || true; ip link set $seg up"
  for i in $(seq 0 $((n - 1))); do
    a=$((i / 250)); b=$((i % 250)); fw=bcs$i-fw; rt=bcs$i-rt
    t1=$(printf '169.254.%d.%d' $(( (2*i) / 128 )) $(( (2*i*2) % 256 )))
    cat <<SH
ip netns add $fw; ip netns add $rt
ip link add sb-bc$i type bridge; ip link set sb-bc$i up
ip link add sl-bc$i type veth peer name lan netns $fw; ip link set sl-bc$i master sb-bc$i up
ip -n $fw link add internet-out type veth peer name internet-in netns $rt
ip -n $rt link add wan type veth peer name sw-bc$i netns 1; ip link set sw-bc$i master $seg up
ip -n $fw link set lo up; ip -n $fw link set lan up; ip -n $fw link set internet-out up
ip -n $rt link set lo up; ip -n $rt link set internet-in up; ip -n $rt link set wan up
ip -n $fw addr add 10.$a.$b.1/24 dev lan; ip -n $fw addr add 169.254.0.0/31 dev internet-out
ip -n $rt addr add 169.254.0.1/31 dev internet-in; ip -n $rt addr add 100.$((64 + a)).$b.10/16 dev wan
ip -n $fw route add default via 169.254.0.1 dev internet-out
ip -n $rt route add default via 100.$((64 + a)).0.1 dev wan; ip -n $rt route add 10.$a.$b.0/24 via 169.254.0.0 dev internet-in
ip netns exec $fw sysctl -qw net.ipv4.ip_forward=1; ip netns exec $rt sysctl -qw net.ipv4.ip_forward=1
ip netns exec $fw nft -f $fwtables; ip netns exec $rt nft -f $rttables
SH
  done
} > "$work/create.sh"
{
  echo "set -e"
  for i in $(seq 0 $((n - 1))); do echo "ip link del sl-bc$i; ip link del sw-bc$i; ip link del sb-bc$i; ip netns del bcs$i-fw; ip netns del bcs$i-rt"; done
} > "$work/delete.sh"

now() { date +%s.%N; }
sub() { awk "BEGIN { printf \"%.6f\", $1 - $2 }"; }
maxrss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n 1; }
memavail() { awk '/^MemAvailable:/ {print $2}' /proc/meminfo; }
results="["
for r in $(seq 1 "$rounds"); do
  vcpe_remove_state $vcpe "$work/state"
  m0=$(memavail)
  t0=$(now); $vcpe apply --state-dir "$work/state" "$work"/chains/*.json >/dev/null; t1=$(now)
  m1=$(memavail)
  $vcpe apply --state-dir "$work/state" "$work"/chains/*.json >/dev/null; t2=$(now)
  rss=$(maxrss $vcpe apply --state-dir "$work/state" "$work"/chains/*.json)
  t3=$(now); $vcpe delete --state-dir "$work/state" $(seq -f "bc%g" 0 $((n - 1))) >/dev/null; t4=$(now)
  # The retired bridges are removed by delete's background gc: when is everything gone?
  while ip -br link | grep -q '^vx-'; do sleep 0.01; done; t4g=$(now)
  ip link del $seg 2>/dev/null || true
  t5=$(now); bash "$work/create.sh"; t6=$(now); bash "$work/delete.sh"; t7=$(now)
  ip link del $seg 2>/dev/null || true
  sleep 0.5  # let the kernel finish tearing down namespaces before the next round
  results="$results{\"vcpe_apply_s\": $(sub $t1 $t0), \"vcpe_reapply_s\": $(sub $t2 $t1), \"vcpe_delete_s\": $(sub $t4 $t3), \"vcpe_delete_all_gone_s\": $(sub $t4g $t3), \"vcpe_peak_rss_kib\": $rss, \"script_create_s\": $(sub $t6 $t5), \"script_delete_s\": $(sub $t7 $t6), \"kernel_kib_per_customer\": $(( (m0 - m1) / n ))},"
done
echo "{\"benchmark\": \"controller\", \"customers\": $n, \"rounds\": ${results%,}]}"
