#!/usr/bin/env bash
# Classifier benchmark, one core: ns per packet and memory of the compiled structures for
# generated acl, fw and ipc-like sets of each size. In the same run and on the same rules:
# the best vector kernel, the scalar C build of the same algorithm, and the Swift linear
# oracle (on a shorter trace: it is slow). Rounds alternate engines.
# Prints one JSON object. Usage: bench/classifier/run.sh [SIZES] [ROUNDS]   (SIZES: "1000 10000 100000")
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=${1:-"1000 10000 100000"}; rounds=${2:-3}
vcpe=${BENCH_BIN:-.build/release}/vcpe
work=$(mktemp -d /tmp/vcpe-bench-cls.XXXXXX)
trap 'rm -rf "$work"' EXIT
core=$(( $(nproc) - 1 ))
one() { taskset -c $core "$vcpe" classify --rules "$1" --trace "$2" --engine "$3" --repeat "$4"; }

echo -n '{"benchmark": "classifier", "core": '$core', "sets": ['
sep=""
for kind in acl fw ipc; do
  for n in $sizes; do
    r="$work/$kind-$n.rules"; t="$work/$kind-$n.trace"; ts="$work/$kind-$n.short"
    $vcpe generate-rules --kind $kind --count $n --packets 100000 --seed 11 --rules-file "$r" --trace-file "$t"
    $vcpe generate-rules --kind $kind --count $n --packets $(( n >= 100000 ? 300 : (n >= 10000 ? 2000 : 10000) )) --seed 11 --rules-file "$r.same" --trace-file "$ts"
    cmp -s "$r" "$r.same"  # the same seed gives the same rules
    for i in $(seq 1 "$rounds"); do
      v=$(one "$r" "$t" best 5); s=$(one "$r" "$t" scalar 5); o=$(one "$r" "$ts" oracle 1)
      echo -n "$sep{\"kind\": \"$kind\", \"rules\": $n, \"vector\": $v, \"scalar\": $s, \"oracle\": $o}"
      sep=", "
    done
  done
done
echo ']}'
