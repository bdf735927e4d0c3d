#!/usr/bin/env bash
# A cluster network to try on one machine (as root): N "hosts" from
# tools/cluster-hosts.sh (network namespaces with a corosync each), an ipnfs
# daemon inside each host's namespace mounted where every shell of this
# machine sees it, and a network `jobs` with `scope cluster` on each.
# docs/cluster.md ("Trying it on one machine") shows it in use.
#
#   cluster-demo.sh up DIR [N] [--daemon PATH] [--no-jobs]
#       N hosts (3), host I's daemon mounted at DIR/hostI/mnt (allow_other,
#       and jobs's ports are rw for all: any user may try it; its ctl is
#       root's), then prints the commands to type.  DIR must be
#       missing or empty.  The daemon is PATH, else this tree's
#       build/daemon/ipnfs, else ipnfs in PATH.  --no-jobs makes no network
#       (bench/cluster.sh makes its own).
#   cluster-demo.sh down DIR
#       stops the daemons, the hosts (cluster-hosts.sh down) and removes DIR.
#
# Host I's daemon logs to DIR/hostI/ipnfs.log; its pid is in
# DIR/hostI/ipnfs.pid.  A failed up leaves nothing behind.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
hosts_sh=$here/cluster-hosts.sh

die() {
  echo "cluster-demo: $*" >&2
  exit 1
}
usage() { die "usage: $0 up DIR [N] [--daemon PATH] [--no-jobs] | down DIR"; }

# The pid in hostI/ipnfs.pid if that process still runs.
daemon_pid() {
  local pid
  pid=$(cat "$dir/host$1/ipnfs.pid" 2>/dev/null) || return 1
  [[ -d /proc/$pid ]] && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 1
  echo "$pid"
}

mounted() { findmnt -n -M "$1" >/dev/null 2>&1; }

# Host I's daemon in host I's network namespace only (nsenter --net): it
# reaches that host's corosync, and its mount is made in this mount
# namespace, so every shell sees it.  A session of its own, so the caller's
# terminal or timeout(1) does not take it down.
start_daemon() {
  local i=$1 h=$dir/host$1 ns k
  ns=$("$hosts_sh" ns "$dir" "$i")
  mkdir -p "$h/mnt"
  setsid nsenter --net="/run/netns/$ns" "$daemon" none "$h/mnt" -f \
    -o "allow_other,log_level=info,log_file=$h/ipnfs.log" </dev/null >"$h/ipnfs.out" 2>&1 &
  echo $! >"$h/ipnfs.pid"
  for ((k = 0; k < 100; k++)); do
    mounted "$h/mnt" && return 0
    daemon_pid "$i" >/dev/null || break
    sleep 0.05
  done
  echo "cluster-demo: host $i's daemon did not mount $h/mnt; its output and log:" >&2
  tail -5 "$h/ipnfs.out" "$h/ipnfs.log" >&2 2>/dev/null || true
  return 1
}

# SIGTERM ends a daemon at any time, files open or not (docs/usage.md,
# Unmounting); whatever is still mounted then goes lazily.
stop_daemon() {
  local i=$1 h=$dir/host$1 pid k
  if pid=$(daemon_pid "$i"); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((k = 0; k < 50; k++)); do
      daemon_pid "$i" >/dev/null || break
      sleep 0.1
    done
    if daemon_pid "$i" >/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  if mounted "$h/mnt"; then umount -l "$h/mnt" 2>/dev/null || true; fi
}

down() {
  local i
  [[ -d $dir ]] || return 0
  for h in "$dir"/host*/; do
    [[ -d $h ]] || continue
    i=${h%/}
    stop_daemon "${i##*host}"
  done
  "$hosts_sh" down "$dir" || true
  # --one-file-system: were a mount still there, its files would stay.
  rm -rf --one-file-system "$dir"
}

up() {
  local n=3 jobs=1 i
  daemon=
  while (($#)); do
    case $1 in
      --daemon) (($# >= 2)) || usage && daemon=$2 && shift ;;
      --no-jobs) jobs=0 ;;
      *) [[ $1 =~ ^[0-9]+$ ]] || usage && n=$1 ;;
    esac
    shift
  done
  if [[ -z $daemon ]]; then
    if [[ -x $here/../build/daemon/ipnfs ]]; then
      daemon=$here/../build/daemon/ipnfs
    else
      daemon=$(command -v ipnfs) || die "no ipnfs daemon: build it or give --daemon PATH"
    fi
  fi
  [[ -x $daemon ]] || die "$daemon is not an executable"
  # nsenter runs it from another directory: an absolute path.
  daemon=$(cd "$(dirname "$daemon")" && pwd)/$(basename "$daemon")
  trap 'down >/dev/null 2>&1 || true' EXIT
  # A signal must run that EXIT trap too.
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
  "$hosts_sh" up "$dir" "$n"
  for ((i = 1; i <= n; i++)); do start_daemon "$i"; done
  if ((jobs)); then
    for ((i = 1; i <= n; i++)); do
      # Every user may send and receive; only root manages it.
      mkdir -m 0777 "$dir/host$i/mnt/jobs"
      chmod go-w "$dir/host$i/mnt/jobs/ctl"
      echo 'scope cluster' >"$dir/host$i/mnt/jobs/ctl"
    done
  fi
  trap - EXIT HUP INT TERM
  ((jobs)) || return 0
  local me
  me=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
  cat <<EOF
$n hosts, one ipnfs daemon each; network jobs is one bus across them:
  host I's jobs is $dir/hostI/mnt/jobs (I = 1..$n)

Try, in any shell of this machine:
  cat $dir/host3/mnt/jobs/events &
  cat $dir/host2/mnt/jobs/port1 &
  echo hello > $dir/host1/mnt/jobs/port0
  cat $dir/host1/mnt/jobs/stats

events on host 3 shows host 2's reader join ("join 1 node 2"), the reader on
host 2 prints hello, written on host 1; stats has a row per host's daemon.
As root, "host 3 crashes" (its corosync is killed; its ports leave after
about 4 s) and comes back:
  $hosts_sh kill $dir 3
  $hosts_sh start $dir 3

Undo it all (as root):
  $me down $dir
EOF
}

(($# >= 2)) || usage
cmd=$1
case $cmd in
  up)
    [[ ! -e $2 ]] || [[ -d $2 && -z $(ls -A "$2") ]] || die "$2 is not empty"
    mkdir -p "$2"
    dir=$(cd "$2" && pwd)
    shift 2
    up "$@"
    ;;
  down)
    (($# == 2)) || usage
    [[ -e $2 ]] || exit 0
    dir=$(cd "$2" && pwd)
    down
    ;;
  *) usage ;;
esac
