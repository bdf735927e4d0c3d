#!/usr/bin/env bash
# Cluster networks against the engine they run on, one run (as root):
#
#   bench/cluster.sh [--build DIR] [--seconds S] [--rate R] [--sizes 64,1400]
#
# Makes three hosts with tools/cluster-hosts.sh and runs each contender 1 -> 2:
# a sender on host 1, a receiver on each of hosts 2 and 3.  For every size,
# a flood (as fast as the contender takes messages: receiver msg/s) and a
# paced run at R msg/s (default 1000: one-way latency at low load).  Prints a
# markdown table.  A contender is a function contender_NAME SIZE RATE that
# prints one line per receiver host, "HOST MSG_PER_S P50_US P99_US"; the
# contenders list names them.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
seconds=5
rate=1000
sizes=64,1400
while (($#)); do
  case $1 in
    --build) build=$2 ;;
    --seconds) seconds=$2 ;;
    --rate) rate=$2 ;;
    --sizes) sizes=$2 ;;
    *) echo "usage: $0 [--build DIR] [--seconds S] [--rate R] [--sizes 64,1400]" >&2 && exit 2 ;;
  esac
  shift 2
done
contenders=(cpg_raw)

dir=$(mktemp -d /tmp/ipnfs-bench-cluster.XXXXXX)
cleanup() {
  tools/cluster-hosts.sh down "$dir" || true
  rm -rf "$dir"
}
trap cleanup EXIT
tools/cluster-hosts.sh up "$dir" 3

# COMMAND in host I's network namespace only.
in_host() {
  local i=$1
  shift
  nsenter --net="/run/netns/$(tools/cluster-hosts.sh ns "$dir" "$i")" "$@"
}

# Raw CPG: bench/cpg_raw.cpp, one group, receivers first (the sender waits
# for them to be members).
contender_cpg_raw() {
  local size=$1 pace=$2 h
  local bin=$build/bench/ipnfs-cpg-raw limit=$((seconds + 40)) group=bench-cpg-raw-$RANDOM
  [[ -x $bin ]] || {
    echo "$bin is missing (cmake --build $build --target ipnfs-cpg-raw)" >&2
    return 1
  }
  for h in 2 3; do
    in_host "$h" timeout "$limit" "$bin" recv "$group" >"$dir/recv$h" &
  done
  in_host 1 timeout "$limit" "$bin" send "$group" "$size" "$seconds" 3 "$pace" >/dev/null
  wait
  for h in 2 3; do
    sed -E 's/.*msg_per_s=([0-9.]+) p50_us=([0-9.]+) p99_us=([0-9.]+)/'"$h"' \1 \2 \3/' "$dir/recv$h"
  done
}

echo "| contender | size | load | host | msg/s | p50 µs | p99 µs |"
echo "| --- | ---: | --- | ---: | ---: | ---: | ---: |"
IFS=, read -ra size_list <<<"$sizes"
for size in "${size_list[@]}"; do
  for load in flood paced; do
    pace=0 label=flood
    if [[ $load == paced ]]; then pace=$rate label="$rate/s"; fi
    for c in "${contenders[@]}"; do
      "contender_$c" "$size" "$pace" | while read -r host mps p50 p99; do
        echo "| $c | $size | $label | $host | $mps | $p50 | $p99 |"
      done
    done
  done
done
