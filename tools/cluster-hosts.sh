#!/usr/bin/env bash
# Makes N "hosts" on this machine, each a network namespace running its own
# corosync, joined into one cluster: what the cluster tests, bench/cluster.sh
# and the demo run on.  Run as root.  docs/cluster.md ("Trying it on one
# machine") shows it in use.
#
#   cluster-hosts.sh up DIR N     N hosts, waits until all N see a quorate
#                                 membership of N (30 s at most)
#   cluster-hosts.sh down DIR     stops and removes everything `up` made
#   cluster-hosts.sh kill DIR I   kill -9 host I's corosync (a crashed host)
#   cluster-hosts.sh start DIR I  starts host I's corosync again, waits until
#                                 every host sees all N (so the others run)
#   cluster-hosts.sh cut DIR I    host I's cable off the switch ...
#   cluster-hosts.sh heal DIR I   ... and back
#   cluster-hosts.sh ns DIR I     host I's namespace name
#
# DIR (up makes it if missing) holds the state: `hosts` (one namespace name a line,
# host 1 first), the shared `authkey`, and per host hostI/ with corosync.conf,
# corosync.log, corosync.pid, its state dir and the directory bind-mounted on
# /run in its mount namespace (corosync's pid lock, /run/corosync.pid, is
# compiled in).  Namespace and interface names come from a hash of DIR, so
# runs in different directories do not clash.  Host I is 10.X.Y.I/24 on a
# bridge in a namespace of its own (the "switch"); X.Y is 10.213.77 unless
# CLUSTER_HOSTS_SUBNET says otherwise (three octets, e.g. 10.99.1).
# CLUSTER_HOSTS_TOKEN sets totem's token timeout in ms (default 1000: a dead
# host is noticed in about 3.5 s).  Prints nothing but errors.
set -euo pipefail

die() {
  echo "cluster-hosts: $*" >&2
  exit 1
}
usage() { die "usage: $0 up DIR N | down DIR | kill|start|cut|heal|ns DIR I"; }

(($# >= 2)) || usage
cmd=$1
[[ $cmd != up ]] || mkdir -p "$2"
dir=$(cd "$2" && pwd)
tag=c$(printf '%s' "$dir" | sha256sum | cut -c1-6) # 7 bytes: names stay <= 15
switch_ns=$tag-sw
subnet=${CLUSTER_HOSTS_SUBNET:-10.213.77}
token=${CLUSTER_HOSTS_TOKEN:-1000}

host_ns() { echo "$tag-$1"; }
host_if() { echo "${tag}h$1"; }   # the host's end of its cable
switch_if() { echo "${tag}s$1"; } # the switch's end
count() { wc -l <"$dir/hosts"; }
check_host() {
  [[ -f $dir/hosts ]] || die "$dir: no hosts (run up first)"
  if ! [[ $1 =~ ^[0-9]+$ ]] || (($1 < 1 || $1 > $(count))); then die "no host $1 in $dir"; fi
}

# The pid in hostI/corosync.pid if that process is still corosync.
corosync_pid() {
  local pid
  pid=$(cat "$dir/host$1/corosync.pid" 2>/dev/null) || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == corosync ]] || return 1
  [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 1
  echo "$pid"
}

# The shared memory libqb made for corosync PID, which kill -9 leaves behind:
# its flight recorder (qb-corosync-PID-blackbox-*) and its clients' IPC
# buffers (qb-PID-CLIENTPID-*).  Only that pid's: other corosyncs' stay.
remove_qb_files() {
  rm -rf /dev/shm/qb-corosync-"$1"-* /dev/shm/qb-"$1"-* 2>/dev/null || true
}

write_conf() {
  local i=$1 h=$dir/host$1 n
  n=$(count)
  {
    cat <<EOF
totem {
    version: 2
    cluster_name: $tag
    transport: knet
    crypto_cipher: aes256
    crypto_hash: sha256
    keyfile: $dir/authkey
    token: $token
}
nodelist {
EOF
    for ((j = 1; j <= n; j++)); do
      cat <<EOF
    node {
        ring0_addr: $subnet.$j
        nodeid: $j
        name: host$j
    }
EOF
    done
    cat <<EOF
}
quorum {
    provider: corosync_votequorum
}
logging {
    to_stderr: no
    to_syslog: no
    to_logfile: yes
    logfile: $h/corosync.log
    timestamp: on
}
system {
    state_dir: $h/state
}
EOF
  } >"$h/corosync.conf"
}

# Starts host I's corosync in its namespace, in a session of its own (so the
# caller's timeout(1) or terminal does not take it down), with a private /run.
start_corosync() {
  local i=$1 h=$dir/host$1
  mkdir -p "$h/state" "$h/run"
  rm -f "$h/corosync.pid"
  # shellcheck disable=SC2016 # $$ is the inner shell's: it execs corosync
  setsid ip netns exec "$(host_ns "$i")" sh -c \
    'echo $$ >"$1/corosync.pid" && mount --bind "$1/run" /run && exec corosync -f -c "$1/corosync.conf"' \
    sh "$h" </dev/null >>"$h/corosync.out" 2>&1 &
}

# True when host I's corosync sees a quorate membership of N nodes and its
# CPG service, which the tests and the benchmark use, answers.
quorate() {
  local out ns
  ns=$(host_ns "$1")
  out=$(ip netns exec "$ns" timeout 5 corosync-quorumtool -s 2>/dev/null) || true
  grep -Eq '^Quorate: +Yes' <<<"$out" && grep -Eq "^Nodes: +$2\$" <<<"$out" &&
    ip netns exec "$ns" timeout 5 corosync-cpgtool >/dev/null 2>&1
}

# Waits (30 s at most) until every host runs and sees all N.
wait_quorate() {
  local n i deadline=$((SECONDS + 30)) all
  n=$(count)
  while :; do
    all=1
    for ((i = 1; i <= n; i++)); do
      if ! corosync_pid "$i" >/dev/null || ! quorate "$i" "$n"; then
        all=0
        break
      fi
    done
    ((all)) && return 0
    ((SECONDS < deadline)) || break
    sleep 0.2
  done
  for ((i = 1; i <= n; i++)); do
    if ! corosync_pid "$i" >/dev/null; then
      echo "cluster-hosts: host $i's corosync is not running; $dir/host$i/corosync.out:" >&2
      tail -5 "$dir/host$i/corosync.out" >&2 2>/dev/null || true
    elif ! quorate "$i" "$n"; then
      echo "cluster-hosts: host $i does not see a quorate membership of $n; its log:" >&2
      tail -5 "$dir/host$i/corosync.log" >&2 2>/dev/null || true
    fi
  done
  die "no quorate cluster of $n after 30 s"
}

stop_host() {
  local pid i=$1 k
  pid=$(corosync_pid "$i") || return 0
  kill -"${2:-TERM}" "$pid" 2>/dev/null || true
  for ((k = 0; k < 50; k++)); do
    corosync_pid "$i" >/dev/null || break
    sleep 0.1
  done
  if corosync_pid "$i" >/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  for ((k = 0; k < 20; k++)); do
    corosync_pid "$i" >/dev/null || break
    sleep 0.1
  done
  remove_qb_files "$pid"
}

link() { ip netns exec "$switch_ns" ip link set "$(switch_if "$1")" "$2"; }

up() {
  local n=$1 i
  if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 1 || n > 32)); then die "N must be 1..32"; fi
  [[ ! -e $dir/hosts ]] || die "$dir is in use (run down first)"
  for ((i = 1; i <= n; i++)); do host_ns "$i"; done >"$dir/hosts"
  # Whatever fails from here on (set -e, die), nothing of this stays.
  trap 'down >/dev/null 2>&1 || true' EXIT
  ip netns add "$switch_ns"
  ip -n "$switch_ns" link add br0 type bridge
  ip -n "$switch_ns" link set br0 up
  (umask 077 && head -c 256 /dev/urandom >"$dir/authkey")
  chmod 0400 "$dir/authkey"
  for ((i = 1; i <= n; i++)); do
    local ns
    ns=$(host_ns "$i")
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip link add "$(host_if "$i")" netns "$ns" type veth peer name "$(switch_if "$i")" netns "$switch_ns"
    ip -n "$switch_ns" link set "$(switch_if "$i")" master br0 up
    ip -n "$ns" addr add "$subnet.$i/24" dev "$(host_if "$i")"
    ip -n "$ns" link set "$(host_if "$i")" up
    mkdir -p "$dir/host$i"
    write_conf "$i"
    start_corosync "$i"
  done
  wait_quorate
  trap - EXIT
}

down() {
  [[ -f $dir/hosts ]] || return 0
  local n i
  n=$(count)
  for ((i = 1; i <= n; i++)); do stop_host "$i"; done
  for ((i = 1; i <= n; i++)); do ip netns del "$(host_ns "$i")" 2>/dev/null || true; done
  ip netns del "$switch_ns" 2>/dev/null || true
  rm -f "$dir/hosts"
}

case $cmd in
  up) (($# == 3)) || usage && up "$3" ;;
  down) (($# == 2)) || usage && down ;;
  kill | start | cut | heal | ns)
    (($# == 3)) || usage
    check_host "$3"
    case $cmd in
      kill) stop_host "$3" KILL ;;
      start)
        ! corosync_pid "$3" >/dev/null || die "host $3's corosync runs already"
        start_corosync "$3"
        wait_quorate
        ;;
      cut) link "$3" down ;;
      heal) link "$3" up ;;
      ns) host_ns "$3" ;;
    esac
    ;;
  *) usage ;;
esac
