# Shell helpers shared by the demo and the benchmarks (sourced, not run).

# vcpe_remove_state VCPE DIR: removes a state directory vcpe used. Its deletes retired LAN
# bridges (renamed vx-*) for a gc in the background, which finds them only in DIR's record:
# gc runs here first (under the lock, so after any gc a delete started), then DIR goes once
# no gc of it runs any more (a late one would make it again, empty, and leave the bridges).
vcpe_remove_state() {
  local vcpe=$1 dir=$2
  [ -d "$dir" ] || return 0
  "$vcpe" gc --state-dir "$dir" >/dev/null 2>&1 || true
  for _ in $(seq 100); do pgrep -f "vcpe gc --state-dir $dir\$" >/dev/null || break; sleep 0.1; done
  rm -rf "$dir"
}
