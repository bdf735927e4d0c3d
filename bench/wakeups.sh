#!/usr/bin/env bash
# Context switches and system calls of the daemon per message (issue 21):
# one-way latency load (N=1, 64 B, paced) on a lossless network, with the
# daemon on the ring or on /dev/fuse.  As root, after building ipnfs and
# ipnfs-loadgen (bench/run.sh does both):
#
#   bench/wakeups.sh [BUILD_DIR] [uring=on|uring=off]
#
# Prints the daemon's voluntary and involuntary context switches per message
# (every thread of /proc/PID/task summed before and after), the load's p50,
# then `strace -c -f` of the daemon for a second run.  With uring=on it turns
# the fuse module's enable_uring on for the run and puts back what it found.
set -euo pipefail
build=${1:-build}
opts=${2:-uring=on}
rate=2000
seconds=2
param=/sys/module/fuse/parameters/enable_uring
mnt=$(mktemp -d /tmp/ipnfs-wakeups.XXXXXX)
saved=$(cat "$param")
daemon_pid=
cleanup() {
    [ -n "$daemon_pid" ] && { fusermount3 -u "$mnt" 2>/dev/null || true; wait "$daemon_pid" || true; }
    rmdir "$mnt" 2>/dev/null || true
    echo "$saved" >"$param"
}
trap cleanup EXIT
[ "$opts" = uring=on ] && echo Y >"$param"
"$build/daemon/ipnfs" none "$mnt" -o "$opts" -f >/dev/null 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.05; done
mkdir "$mnt/n"
printf 'queue 256\nlossless on\npool 4096\n' >"$mnt/n/ctl"
switches() {
    awk '/^voluntary_ctxt/ {v += $2} /^nonvoluntary_ctxt/ {n += $2} END {print v, n}' \
        /proc/"$daemon_pid"/task/*/status
}
load() {
    "$build/bench/ipnfs-loadgen" latency --kind ipnfs --net "$mnt/n" --seconds "$seconds" \
        --rate "$rate" --receiver blocking
}
read -r v0 n0 < <(switches)
out=$(load | tail -1)
read -r v1 n1 < <(switches)
messages=$((rate * seconds))
python3 - "$opts" "$messages" "$((v1 - v0))" "$((n1 - n0))" "$out" <<'PY'
import json, sys
opts, messages, vol, invol, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
r = json.loads(out)
print(f"{opts}: {vol / messages:.2f} voluntary + {invol / messages:.2f} involuntary context "
      f"switches of the daemon a message; one-way p50 {r['p50_us']} us")
PY
strace -c -f -p "$daemon_pid" -o "$mnt.strace" &
tracer=$!
sleep 1
load >/dev/null
kill -INT "$tracer"
wait "$tracer" || true
echo "strace -c -f of the daemon, $messages messages:"
head -8 "$mnt.strace"
rm -f "$mnt.strace"
rmdir "$mnt/n"
