#!/usr/bin/env bash
# The side-by-side benchmark, one command (as root, a few minutes):
#
#   bench/run.sh [--reps N] [--seconds S] [--stall-seconds S] [--tap-seconds S]
#                [--only fanout,latency,paired,scale,tap,memory,receivers] [--out FILE]
#                [--fanout 1,4,16] [--sizes 64,1400] [--modes lossless,lossy]
#                [--contenders ipnfs,...] [--baseline OTHER_BUILD/fs/ipnfs]
#                [--receiver blocking,epoll-lt,epoll-et,uring|all] [--ipnfs-options OPTS]
#
# Installs what is missing (tools/deps.sh --test: vde2, libvdeplug-dev, iperf3 among
# the rest), builds ipnfs, the load generator and the null FUSE filesystem in
# build-bench (or $BUILD_DIR), runs every contender under every load with the
# repetitions interleaved, and prints the tables in markdown; they are also
# written to build-bench/bench-results.md (or --out), every run's numbers to
# bench-results.json beside it, and, when matplotlib is installed (Debian:
# python3-matplotlib, in tools/deps.sh --test), charts of them beside that:
# bench-results-<chart>.svg and .png (bench/plot.py).  --baseline runs another
# build's daemon beside this one's on the fan-out loads ("comparing two builds"
# in docs/benchmark.md, which also explains the loads and holds the tables of
# one full run).
#
#   bench/run.sh tap-tcp [bench/tap_tcp.sh's options]
#
# builds ipnfs and ipnfs-cable the same way and runs bench/tap_tcp.sh with
# them: TCP between two namespaces through an ipnfs switch (TAPs, grabbed
# veths), a Linux bridge, vde_switch, and external against in-daemon cables.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-bench}

tools/deps.sh --test
# A tree configured with the benchmark programs is used as it is (the test
# build's, for one: its build type and compiler stay); cmake --build below
# reconfigures it by itself when a CMakeLists.txt changed.
if ! grep -qx 'IPNFS_BENCH:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIPNFS_BENCH=ON >/dev/null
fi
if [ "${1:-}" = tap-tcp ]; then
    shift
    cmake --build "$build" -j"$(nproc)" --target ipnfs ipnfs-cable >/dev/null
    exec bench/tap_tcp.sh --daemon "$build/daemon/ipnfs" --cable "$build/tools/cable/ipnfs-cable" "$@"
fi
cmake --build "$build" -j"$(nproc)" --target ipnfs ipnfs-loadgen ipnfs-nullfs >/dev/null
python3 bench/driver.py --build "$build" "$@"

# Where the driver put the tables, and the JSON the charts are drawn from.
out=$build/bench-results.md results=""
while (($#)); do
    case $1 in
        --out) out=$2; shift ;;
        --out=*) out=${1#--out=} ;;
        --tables-from) results=$2; shift ;;
        --tables-from=*) results=${1#--tables-from=} ;;
    esac
    shift
done
results=${results:-${out%.*}.json}
# python3 may be another interpreter than Debian's (pyenv, a venv): the
# first that has matplotlib draws.
for python in python3 /usr/bin/python3 ""; do
    [ -n "$python" ] && "$python" -c 'import matplotlib' 2>/dev/null && break
done
if [ -z "$python" ]; then
    echo "bench: charts skipped: no python3 here imports matplotlib (Debian: apt-get install python3-matplotlib)" >&2
else
    "$python" bench/plot.py "$results" --prefix "${out%.*}" >/dev/null
    echo "bench: charts in ${out%.*}-*.svg and .png" >&2
fi
