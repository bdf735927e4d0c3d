#!/usr/bin/env bash
# TCP throughput between two network namespaces through an ipnfs network's
# TAPs (switch and hub policies), against the same over a plain veth pair,
# measured in one run.  Ratios are what to compare; absolute numbers drift.
#
# Usage (root): bench/tap_tcp.sh [MOUNTPOINT] [MEGABYTES]
#   MOUNTPOINT: a mounted ipnfs (default /mnt/ipn); MEGABYTES per run (200).
set -euo pipefail

mnt=${1:-/mnt/ipn}
mb=${2:-200}
tag="bt$$"
net="$mnt/$tag"

cleanup() {
    ip netns del "${tag}a" 2>/dev/null || true
    ip netns del "${tag}b" 2>/dev/null || true
    rmdir "$net" 2>/dev/null || true
}
trap cleanup EXIT

# Seconds to move $mb MiB from 10.77.0.1 in ns a to 10.77.0.2 in ns b.
transfer() {
    ip netns exec "${tag}b" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.77.0.2", 5201)); s.listen(1); c, _ = s.accept()
while c.recv(1 << 20): pass' &
    local server=$!
    sleep 0.3
    ip netns exec "${tag}a" python3 -c '
import socket, sys, time
chunk = b"x" * (1 << 20); n = int(sys.argv[1])
s = socket.create_connection(("10.77.0.2", 5201)); t = time.monotonic()
for _ in range(n): s.sendall(chunk)
s.shutdown(socket.SHUT_WR); s.recv(1); print(time.monotonic() - t)' "$mb"
    wait "$server"
}

namespaces() {
    cleanup
    ip netns add "${tag}a"
    ip netns add "${tag}b"
}

address() {  # NS IFACE ADDR
    ip -n "$1" addr add "$3/24" dev "$2"
    ip -n "$1" link set "$2" up
    ip -n "$1" link set lo up
}

through_ipnfs() {  # POLICY
    namespaces
    mkdir "$net"
    printf 'policy %s\nqueue 1024\ntap %sa\ntap %sb\n' "$1" "$tag" "$tag" > "$net/ctl"
    ip link set "${tag}a" netns "${tag}a"
    ip link set "${tag}b" netns "${tag}b"
    address "${tag}a" "${tag}a" 10.77.0.1
    address "${tag}b" "${tag}b" 10.77.0.2
    ip netns exec "${tag}a" ping -c 1 -W 2 10.77.0.2 > /dev/null
    transfer
    rmdir "$net"
}

through_veth() {
    namespaces
    ip link add "${tag}a" netns "${tag}a" type veth peer name "${tag}b" netns "${tag}b"
    address "${tag}a" "${tag}a" 10.77.0.1
    address "${tag}b" "${tag}b" 10.77.0.2
    transfer
}

rate() { python3 -c "print(f'{$mb / $1:.0f}')"; }

switch=$(through_ipnfs switch)
hub=$(through_ipnfs hub)
veth=$(through_veth)
echo "| path | MiB/s | vs veth |"
echo "| --- | ---: | ---: |"
for row in "ipnfs switch (TAP to TAP):$switch" "ipnfs hub (TAP to TAP):$hub" "veth pair (kernel only):$veth"; do
    name=${row%%:*}
    secs=${row##*:}
    echo "| $name | $(rate "$secs") | $(python3 -c "print(f'{$veth / $secs:.2f}')") |"
done
