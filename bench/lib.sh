# Shell helpers shared by the benchmarks (sourced, not run).
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

# office_chain NAME I SEGMENT [EXTRA_PATHS [CLASSIFIER]]: a firewall + router customer, the
# benchmarks' standard one: LAN 10.A.B.0/24, WAN 100.(64+A).B.10/16 on SEGMENT (A.B from I),
# four firewall rules, masquerade and a port forward. EXTRA_PATHS and CLASSIFIER (JSON text
# after the internet path and after "paths") make it a steered chain.
office_chain() {
  local name=$1 i=$2 seg=$3 extra=${4:-} classifier=${5:-}
  local a=$((i / 250)) b=$((i % 250))
  cat <<JSON
{ "apiVersion": "vcpe/v1", "customer": "$name",
  "lan": { "subnet": "10.$a.$b.0/24", "gateway": "10.$a.$b.1" },
  "wan": { "address": "100.$((64 + a)).$b.10/16", "gateway": "100.$((64 + a)).0.1", "segment": "$seg" },
  "services": {
    "fw": { "type": "firewall", "default": "drop", "rules": [
      { "name": "web", "action": "accept", "from": "lan", "proto": "tcp", "dport": [80, 443] },
      { "name": "dns", "action": "accept", "from": "lan", "proto": "udp", "dport": 53 },
      { "name": "ssh-in", "action": "accept", "from": "wan", "proto": "tcp", "dport": 22, "src": "198.51.100.0/24" },
      { "name": "no-smb", "action": "reject", "proto": "tcp", "dport": "137-139" } ] },
    "rt": { "type": "router", "nat": "masquerade", "portForwards": [ { "proto": "tcp", "port": 8080, "to": "10.$a.$b.10:80" } ] } },
  "paths": { "internet": ["fw", "rt"]$extra }$classifier }
JSON
}
