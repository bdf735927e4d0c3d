#!/usr/bin/env bash
# Times README's two commands on a fresh Debian 12 (as root; about half an
# hour on 2 cores): a minbase bookworm chroot gets this branch's committed
# tree (git archive HEAD), then
#   1. tools/up.sh /mnt/ipn   builds, installs and mounts; a message is sent
#                             from port2 to port1 through the mount;
#   2. tools/deps.sh --test   the install part of tools/test.sh (its build and
#                             test part is a CI run's length, not timed here).
# Prints the wall time of each and the megabytes apt downloaded for it.
#
#   tools/time-install.sh [--keep]     (--keep leaves the chroot for a look)
#
# The chroot is unpacked from the tarball the package test keeps
# (/var/cache/ipnfs-tests/bookworm-minbase.tar, its downloaded .debs dropped)
# or debootstrapped; everything runs in a private mount namespace, so no
# mount of the chroot (/proc, /sys, /dev, the ipnfs mount) outlives it.
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0
[[ "${1:-}" == --keep ]] && keep=1
if [[ -z "${IPNFS_TIME_INSTALL_INNER:-}" ]]; then
  [ "$(id -u)" -eq 0 ] || { echo "time-install.sh: run as root" >&2; exit 1; }
  IPNFS_TIME_INSTALL_INNER=1 exec unshare --mount --propagation private "$0" "$@"
fi

root=$(mktemp -d /var/tmp/ipnfs-fresh.XXXXXX)
cleanup() {
  # Innermost first: the ipnfs mount (its daemon exits), then /dev, /sys, /proc.
  findmnt -rn -o TARGET | grep -E "^$root(/|$)" | sort -r | while read -r m; do
    umount -l "$m" || true
  done
  if ((keep)); then echo "chroot kept in $root"; else rm -rf --one-file-system "$root"; fi
}
trap cleanup EXIT

tarball=/var/cache/ipnfs-tests/bookworm-minbase.tar
if [ -f "$tarball" ]; then
  tar -C "$root" -xf "$tarball"
  rm -f "$root"/var/cache/apt/archives/*.deb
else
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
  rm -f "$root"/var/cache/apt/archives/*.deb
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"  # /dev/fuse
mkdir -p "$root/root/ipnfs"
git archive HEAD | tar -C "$root/root/ipnfs" -x

in_chroot() { chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 /bin/bash -c "$1"; }
downloaded_mb() { du -sm --apparent-size "$root/var/cache/apt/archives" | cut -f1; }
seconds() { date +%s.%N; }

echo "== $(date -u '+%F %H:%M UTC'), $(nproc) cores, $(uname -r)"
before=$(downloaded_mb)
t0=$(seconds)
in_chroot 'cd /root/ipnfs && tools/up.sh /mnt/ipn' >"$root/up.log" 2>&1 || {
  tail -30 "$root/up.log"
  exit 1
}
t1=$(seconds)
mb1=$(($(downloaded_mb) - before))
got=$(in_chroot 'mkdir /mnt/ipn/chat
timeout 10 dd bs=65536 count=1 status=none < /mnt/ipn/chat/port1 > /tmp/got & sleep 1
echo hello > /mnt/ipn/chat/port2; wait; cat /tmp/got; rmdir /mnt/ipn/chat')
[ "$got" = hello ] || { echo "time-install.sh: port1 read '$got', not hello" >&2; exit 1; }
umount "$root/mnt/ipn"
printf 'command 1, tools/up.sh /mnt/ipn: %.1f min, apt downloaded %d MB; a message went from port2 to port1\n' \
  "$(awk "BEGIN { print ($t1 - $t0) / 60 }")" "$mb1"

before=$(downloaded_mb)
t0=$(seconds)
in_chroot 'cd /root/ipnfs && tools/deps.sh --test' >"$root/deps-test.log" 2>&1 || {
  tail -30 "$root/deps-test.log"
  exit 1
}
t1=$(seconds)
mb2=$(($(downloaded_mb) - before))
printf 'command 2, its install part (tools/deps.sh --test): %.1f min, apt downloaded %d MB\n' \
  "$(awk "BEGIN { print ($t1 - $t0) / 60 }")" "$mb2"
