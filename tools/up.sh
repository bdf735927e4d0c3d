#!/usr/bin/env bash
# README command 1: installs what is missing, builds and installs ipnfs, and
# mounts it at /mnt/ipn (or the directory given) for every user.
set -euo pipefail
cd "$(dirname "$0")/.."
mnt=${1:-/mnt/ipn}

tools/deps.sh
cmake -S . -B build -DIPNFS_TESTS=OFF -DIPNFS_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
cmake --install build >/dev/null

mkdir -p "$mnt"
if mountpoint -q "$mnt"; then
  echo "ipnfs: $mnt is already a mount point; leaving it as it is"
else
  mount -t fuse.ipnfs none "$mnt" -o allow_other
fi
echo "ipnfs is mounted on $mnt. Try:"
echo "  mkdir $mnt/chat; cat $mnt/chat/port1 &  echo hello > $mnt/chat/port2"
