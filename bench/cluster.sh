#!/usr/bin/env bash
# Cluster networks against the engine they run on, one run (as root):
#
#   bench/cluster.sh [--build DIR] [--seconds S] [--rate R] [--sizes 64,1400]
#
# Makes three hosts with tools/cluster-demo.sh (tools/cluster-hosts.sh, and
# this build's ipnfs daemon inside each host) and runs each contender 1 -> 2:
# a sender on host 1, a receiver on each of hosts 2 and 3.  For every size,
# a flood (as fast as the contender takes messages: receiver msg/s) and a
# paced run at R msg/s (default 1000: one-way latency at low load).  Prints a
# markdown table.  A contender is a function contender_NAME SIZE RATE that
# prints one line per receiver host, "HOST MSG_PER_S P50_US P99_US LOST"
# (LOST: messages sent that this receiver did not get); the contenders list
# names them.
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
contenders=(cpg_raw ipnfs ipnfs_framed ipnfs_lossless)
loadgen=$build/bench/ipnfs-loadgen
for bin in "$build/bench/ipnfs-cpg-raw" "$loadgen" "$build/daemon/ipnfs"; do
  [[ -x $bin ]] || {
    echo "$bin is missing (cmake --build $build --target ipnfs ipnfs-loadgen ipnfs-cpg-raw)" >&2
    exit 1
  }
done

dir=$(mktemp -d /tmp/ipnfs-bench-cluster.XXXXXX)
# However this script ends (a signal too: bash runs no EXIT trap when a
# signal it does not trap kills it), what it started in the background is
# stopped, then the daemons and the hosts, and $dir goes.
cleanup() {
  local pids
  read -ra pids <<<"$(jobs -p | tr '\n' ' ')"
  ((${#pids[@]} == 0)) || kill "${pids[@]}" 2>/dev/null || true
  tools/cluster-demo.sh down "$dir" || true
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
tools/cluster-demo.sh up "$dir" 3 --no-jobs --daemon "$build/daemon/ipnfs"

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
  local bin=$build/bench/ipnfs-cpg-raw limit=$((seconds + 40)) group=bench-cpg-raw-$RANDOM sent
  for h in 2 3; do
    in_host "$h" timeout "$limit" "$bin" recv "$group" >"$dir/recv$h" &
  done
  sent=$(in_host 1 timeout "$limit" "$bin" send "$group" "$size" "$seconds" 3 "$pace")
  wait
  sent=${sent#*sent=}
  for h in 2 3; do
    sed -E 's/.*received=([0-9]+) msg_per_s=([0-9.]+) p50_us=([0-9.]+) p99_us=([0-9.]+)/'"$h"' \2 \3 \4 \1/' \
      "$dir/recv$h" | awk -v sent="$sent" '{print $1, $2, $3, $4, sent - $5}'
  done
}

# The ipnfs cluster hub: a network of its own for each run, `scope cluster`
# on all three hosts, queues long enough that no reader drops at these
# rates.  ipnfs-loadgen (bench/loadgen) in this mount namespace writes on
# host 1's port0 and reads host 2's and host 3's port1: one process, one
# clock for the one-way latency.  Plain: one message per write and per
# read; framed: batches of records per write, 64 KiB of records per read.
contender_ipnfs() {
  local size=$1 pace=$2 mode=${3:-plain} lossless=${4:-off} h out
  local net=b$size-$mode-$lossless-$pace
  local args=(--kind ipnfs --size "$size" --seconds "$seconds" --net "$dir/host1/mnt/$net"
    --recv "$dir/host2/mnt/$net/port1,$dir/host3/mnt/$net/port1" --pid "$(cat "$dir/host1/ipnfs.pid")")
  for h in 1 2 3; do
    mkdir "$dir/host$h/mnt/$net"
    printf 'queue 65536\nlossless %s\nscope cluster\n' "$lossless" >"$dir/host$h/mnt/$net/ctl"
  done
  [[ $mode == plain ]] || args+=(--framed)
  if ((pace > 0)); then
    rm -f "$dir/latency"
    args=(latency "${args[@]}" --rate "$pace" --dump "$dir/latency")
  else
    args=(throughput "${args[@]}")
  fi
  out=$(timeout $((seconds + 60)) "$loadgen" "${args[@]}")
  # Per receiver: its msg/s, its own latency percentiles from the dump
  # ("receiver sent_us latency_us" a line), what it lost.
  python3 - "$out" "$dir/latency" "$pace" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
lat = {0: [], 1: []}
if sys.argv[3] != "0":
    for line in open(sys.argv[2]):
        i, _, us = line.split()
        lat[int(i)].append(float(us))
def pct(v, p):
    return sorted(v)[int(p * (len(v) - 1))] if v else 0
for i, host in enumerate((2, 3)):
    print(host, round(r["rates"][i]), pct(lat[i], 0.5), pct(lat[i], 0.99), r["sent"] - int(r["counts"][i]))
PY
  for h in 1 2 3; do rmdir "$dir/host$h/mnt/$net"; done
}
contender_ipnfs_framed() { contender_ipnfs "$1" "$2" framed; }
# Lossless across hosts: the credit the daemons pass in the order.
contender_ipnfs_lossless() { contender_ipnfs "$1" "$2" plain on; }

echo "| contender | size | load | host | msg/s | p50 µs | p99 µs | lost |"
echo "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
IFS=, read -ra size_list <<<"$sizes"
for size in "${size_list[@]}"; do
  for load in flood paced; do
    pace=0 label=flood
    if [[ $load == paced ]]; then pace=$rate label="$rate/s"; fi
    for c in "${contenders[@]}"; do
      "contender_$c" "$size" "$pace" | while read -r host mps p50 p99 lost; do
        echo "| $c | $size | $label | $host | $mps | $p50 | $p99 | $lost |"
      done
    done
  done
done
