#!/usr/bin/env bash
# TCP between two network namespaces through the ways Linux can switch
# Ethernet frames between them, measured in one run with the runs of the
# contenders alternating: iperf3's Mbit/s and retransmits, and the CPU the
# switching processes spent per Gbit moved (utime + stime from /proc, the
# kernel's own work not included: the kernel bridge's is 0 by that measure).
# Ratios against the kernel bridge of the same run are what to compare.
#
# Usage (root): bench/tap_tcp.sh [--daemon IPNFS] [--cable IPNFS_CABLE]
#                   [--baseline OTHER_IPNFS] [--runs N] [--seconds S]
#                   [--only tap,bridge,vde,grab,cable,ctlcable,lcable,lctlcable]
#                   [--out FILE]
#   --daemon    the ipnfs binary to mount (default build/daemon/ipnfs)
#   --cable     ipnfs-cable (default build/tools/cable/ipnfs-cable)
#   --baseline  a second daemon: its TAP and grab rows are measured too
#   --runs      repetitions of every contender, alternating (default 3)
#   --seconds   iperf3 -t (default 5)
#
# Contenders (each namespace holds one interface, 10.77.0.1 and 10.77.0.2):
#   tap       an ipnfs switch network with two TAPs
#   bridge    a Linux bridge (in a namespace of its own) with two veths
#   vde       vde_switch with two vde_plug2tap TAPs
#   grab      an ipnfs switch grabbing the far ends of two veths
#   cable     two ipnfs networks with a TAP each, joined by
#             dpipe ipnfs-cable A = ipnfs-cable B (docs/cables.md)
#   ctlcable  the same two networks joined by ctl `cable` instead
#   lcable, lctlcable  the same two, the networks lossless (docs/cables.md)
set -euo pipefail
cd "$(dirname "$0")/.."

daemon=build/daemon/ipnfs
cable=build/tools/cable/ipnfs-cable
baseline=""
runs=3
seconds=5
only="tap,bridge,vde,grab,cable,ctlcable,lcable,lctlcable"
out=""
while [ $# -gt 0 ]; do
    case $1 in
        --daemon) daemon=$2; shift 2 ;;
        --cable) cable=$2; shift 2 ;;
        --baseline) baseline=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "tap_tcp.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
for tool in iperf3 ip python3; do
    command -v "$tool" > /dev/null || { echo "tap_tcp.sh: $tool is missing (tools/deps.sh)" >&2; exit 1; }
done
daemon=$(realpath "$daemon")
cable=$(realpath "$cable")
[ -z "$baseline" ] || baseline=$(realpath "$baseline")

tag="tt$$"
work=$(mktemp -d /tmp/ipnfs-taptcp.XXXXXX)
results="$work/results.tsv"
pids=()      # what this script started and must stop
mounts=()

stop_pids() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
    for p in "${pids[@]}"; do
        while kill -0 "$p" 2> /dev/null; do sleep 0.05; done
    done
    pids=()
}

teardown() {  # what one contender made
    stop_pids
    local ns
    for ns in a b br; do ip netns del "$tag$ns" 2> /dev/null || true; done
    ip link del "${tag}ga" 2> /dev/null || true
    ip link del "${tag}gb" 2> /dev/null || true
}

cleanup() {
    teardown
    local m
    for m in "${mounts[@]}"; do
        for d in "$m"/*/; do [ -d "$d" ] && rmdir "$d" 2> /dev/null; done
        umount "$m" 2> /dev/null || umount -l "$m" 2> /dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# mount_daemon BINARY NAME: mounts, prints the daemon's pid.
mount_daemon() {
    local mnt="$work/$2"
    mkdir -p "$mnt"
    "$1" none "$mnt" -f -o log_level=warn > "$work/$2.log" 2>&1 &
    local pid=$!
    local i
    for i in $(seq 100); do
        mountpoint -q "$mnt" && { echo "$pid"; return; }
        sleep 0.05
    done
    echo "tap_tcp.sh: $1 did not mount: $(cat "$work/$2.log")" >&2
    exit 1
}

namespaces() {
    teardown
    ip netns add "${tag}a"
    ip netns add "${tag}b"
}

# up NS IFACE ADDR: moves IFACE into NS (if it is not there) and sets it up.
up() {
    ip link show "$2" > /dev/null 2>&1 && ip link set "$2" netns "$1"
    ip -n "$1" addr add "$3/24" dev "$2"
    ip -n "$1" link set "$2" up
    ip -n "$1" link set lo up
}

pair_up() {  # IFACE_A IFACE_B
    up "${tag}a" "$1" 10.77.0.1
    up "${tag}b" "$2" 10.77.0.2
    local i
    for i in $(seq 40); do
        ip netns exec "${tag}a" ping -c 1 -W 1 10.77.0.2 > /dev/null 2>&1 && return
    done
    echo "tap_tcp.sh: the two namespaces never reached each other" >&2
    return 1
}

cpu_of() {  # utime + stime of the pids, in clock ticks
    local total=0 p f
    for p in "$@"; do
        f=$(sed 's/.*) //' "/proc/$p/stat")
        set -- $f
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

# measure NAME PIDS...: one iperf3 run, one line in results.tsv; the drops
# of the ipnfs networks in `nets` (their stats' `drops`) go with it.
nets=()
measure() {
    local name=$1
    shift
    ip netns exec "${tag}b" iperf3 -s -1 -B 10.77.0.2 > /dev/null 2>&1 &
    local server=$!
    sleep 0.3
    local cpu0 cpu1
    cpu0=$(cpu_of "$@")
    # Bounded: a path that drops the handshake would otherwise hang the run.
    timeout $((seconds + 20)) ip netns exec "${tag}a" \
        iperf3 -c 10.77.0.2 -t "$seconds" --connect-timeout 5000 -J > "$work/iperf.json" || true
    cpu1=$(cpu_of "$@")
    kill "$server" 2> /dev/null || true  # gone after its one test, unless that failed
    wait "$server" || true
    local drops=0 net
    for net in "${nets[@]}"; do
        drops=$((drops + $(awk '$1 == "drops" { print $2; exit }' "$net/stats")))
    done
    nets=()
    python3 - "$name" "$((cpu1 - cpu0))" "$(getconf CLK_TCK)" "$work/iperf.json" "$drops" \
        >> "$results" << 'EOF'
import json, sys
name, ticks, hz, path, drops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
try:
    end = json.load(open(path))["end"]
    bits = end["sum_received"]["bytes"] * 8
    mbit = end["sum_received"]["bits_per_second"] / 1e6
    retr = end["sum_sent"].get("retransmits", 0)
except (ValueError, KeyError):
    print(f"tap_tcp.sh: {name}: iperf3 failed", file=sys.stderr)
    print(f"{name}\t0\t-1\t0\t{drops}")  # counted as a failed run
    sys.exit(0)
print(f"{name}\t{mbit:.1f}\t{retr}\t{ticks / hz / (bits / 1e9) if bits else 0:.3f}\t{drops}")
EOF
    echo "  $name: $(tail -1 "$results" | cut -f2) Mbit/s, $(tail -1 "$results" | cut -f3) retransmits" >&2
}

switch_net() {  # MOUNT NAME [SETTING]: a switch network for Ethernet with MTU 1500
    mkdir "$1/$2"
    printf 'policy switch\nmtu 1514\n%s\n' "${3:-}" > "$1/$2/ctl"
}

run_tap() {  # LABEL MOUNT PID
    namespaces
    switch_net "$2" tap
    printf 'tap %sta\ntap %stb\n' "$tag" "$tag" > "$2/tap/ctl"
    pair_up "${tag}ta" "${tag}tb"
    nets=("$2/tap")
    measure "$1" "$3"
    teardown
    rmdir "$2/tap"
}

run_grab() {  # LABEL MOUNT PID
    namespaces
    ip link add "${tag}ga" type veth peer name "${tag}a1" netns "${tag}a"
    ip link add "${tag}gb" type veth peer name "${tag}b1" netns "${tag}b"
    ip link set "${tag}ga" up
    ip link set "${tag}gb" up
    switch_net "$2" grab
    printf 'grab %sga\ngrab %sgb\n' "$tag" "$tag" > "$2/grab/ctl"
    pair_up "${tag}a1" "${tag}b1"
    nets=("$2/grab")
    measure "$1" "$3"
    teardown
    rmdir "$2/grab"
}

run_bridge() {
    namespaces
    ip netns add "${tag}br"
    ip -n "${tag}br" link add br0 type bridge
    ip -n "${tag}br" link set br0 up
    local s
    for s in a b; do
        ip -n "${tag}br" link add "p$s" type veth peer name "${tag}${s}1" netns "$tag$s"
        ip -n "${tag}br" link set "p$s" master br0 up
    done
    pair_up "${tag}a1" "${tag}b1"
    measure bridge
    teardown
}

run_vde() {
    namespaces
    local sock="$work/vde.ctl" plugs=() s
    vde_switch -s "$sock" -d -p "$work/vde.pid" -n 64 < /dev/null
    for s in a b; do
        vde_plug2tap -s "$sock" -d -P "$work/plug$s.pid" "${tag}v$s" < /dev/null
    done
    local i
    for i in $(seq 100); do
        [ -s "$work/vde.pid" ] && [ -s "$work/pluga.pid" ] && [ -s "$work/plugb.pid" ] &&
            [ -e "/sys/class/net/${tag}va" ] && [ -e "/sys/class/net/${tag}vb" ] && break
        sleep 0.05
    done
    pids+=("$(cat "$work/vde.pid")" "$(cat "$work/pluga.pid")" "$(cat "$work/plugb.pid")")
    pair_up "${tag}va" "${tag}vb"
    measure vde "${pids[@]}"
    teardown
    rm -f "$work"/*.pid
}

# run_cables LABEL MOUNT PID external|ctl [SETTING]
run_cables() {
    namespaces
    switch_net "$2" ca "${5:-}"
    switch_net "$2" cb "${5:-}"
    echo "tap ${tag}ca" > "$2/ca/ctl"
    echo "tap ${tag}cb" > "$2/cb/ctl"
    local helpers=()
    if [ "$4" = external ]; then
        dpipe "$cable" -q -p "$work/cablea.pid" "$2/ca" = "$cable" -q -p "$work/cableb.pid" "$2/cb" &
        pids+=($!)
        local i
        for i in $(seq 100); do
            [ -s "$work/cablea.pid" ] && [ -s "$work/cableb.pid" ] && break
            sleep 0.05
        done
        helpers=("$(cat "$work/cablea.pid")" "$(cat "$work/cableb.pid")")
    else
        echo "cable cb" > "$2/ca/ctl"
    fi
    pair_up "${tag}ca" "${tag}cb"
    nets=("$2/ca" "$2/cb")
    measure "$1" "$3" "${helpers[@]}"
    teardown
    rm -f "$work"/cable?.pid
    rmdir "$2/ca" "$2/cb"
}

pid=$(mount_daemon "$daemon" ipn)
mounts+=("$work/ipn")
pids_keep=("$pid")
if [ -n "$baseline" ]; then
    base_pid=$(mount_daemon "$baseline" base)
    mounts+=("$work/base")
fi
has() { [[ ",$only," == *",$1,"* ]]; }
if has vde && ! command -v vde_plug2tap > /dev/null; then
    echo "tap_tcp.sh: no vde_plug2tap (vde2): the vde row is left out" >&2
fi
if has cable && ! command -v dpipe > /dev/null; then
    echo "tap_tcp.sh: no dpipe (vde2): the cable row is left out" >&2
fi

load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "tap_tcp.sh: $runs runs of iperf3 -t $seconds per contender, alternating" >&2
for run in $(seq "$runs"); do
    echo "run $run" >&2
    has bridge && run_bridge
    has tap && run_tap "ipnfs switch, 2 TAPs" "$work/ipn" "$pid"
    has tap && [ -n "$baseline" ] && run_tap "baseline switch, 2 TAPs" "$work/base" "$base_pid"
    has grab && run_grab "ipnfs switch, 2 grabbed veths" "$work/ipn" "$pid"
    has grab && [ -n "$baseline" ] && run_grab "baseline switch, 2 grabbed veths" "$work/base" "$base_pid"
    has vde && command -v vde_plug2tap > /dev/null && run_vde
    has cable && command -v dpipe > /dev/null &&
        run_cables "2 networks, ipnfs-cable + dpipe" "$work/ipn" "$pid" external
    has ctlcable && run_cables "2 networks, ctl cable" "$work/ipn" "$pid" ctl
    has lcable && command -v dpipe > /dev/null &&
        run_cables "2 lossless networks, ipnfs-cable + dpipe" "$work/ipn" "$pid" external "lossless on"
    has lctlcable && run_cables "2 lossless networks, ctl cable" "$work/ipn" "$pid" ctl "lossless on"
done

python3 - "$results" "$runs" "$seconds" "$load" "$(cut -d' ' -f1-3 /proc/loadavg)" << 'EOF' | tee ${out:+"$out"}
import statistics, sys
from collections import OrderedDict
rows = OrderedDict()
for line in open(sys.argv[1]):
    name, mbit, retr, cpu, drops = line.rstrip("\n").split("\t")
    rows.setdefault(name, []).append((float(mbit), int(retr), float(cpu), int(drops)))
ok = {n: [r for r in v if r[1] >= 0] for n, v in rows.items()}
med = {n: [statistics.median(r[i] for r in v) for i in range(4)] if v else None
       for n, v in ok.items()}
bridge = med.get("bridge", [0])[0]
print(f"iperf3 -t {sys.argv[3]}, one TCP stream from namespace A to B, "
      f"medians of {sys.argv[2]} alternating runs; load average {sys.argv[4]} at the start, "
      f"{sys.argv[5]} at the end")
print()
print("| path | TCP Mbit/s | vs bridge | retransmits | CPU s per Gbit | ipnfs drops | runs (Mbit/s) |")
print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
names = {"bridge": "Linux bridge, 2 veths", "vde": "vde_switch + 2 vde_plug2tap"}
for n, m in med.items():
    if m is None:
        print(f"| {names.get(n, n)} | iperf3 failed in all {len(rows[n])} runs | | | | | |")
        continue
    mbit, retr, cpu, drops = m
    ratio = f"{mbit / bridge:.2f}" if bridge else "-"
    cpu_text = "(kernel)" if n == "bridge" else f"{cpu:.2f}"
    each = ", ".join(f"{r[0]:.0f}" if r[1] >= 0 else "failed" for r in rows[n])
    drop_text = f"{drops:,.0f}" if n.startswith(("ipnfs", "baseline", "2 ")) else "-"
    print(f"| {names.get(n, n)} | {mbit:,.0f} | {ratio} | {retr:,.0f} | {cpu_text} | {drop_text} | {each} |")
EOF
