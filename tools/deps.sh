#!/usr/bin/env bash
# Installs the Debian 12 packages ipnfs needs, if any is missing.  Safe to run
# again: it does nothing when all are there.
#   tools/deps.sh          what building and running need (README command 1)
#   tools/deps.sh --test   that and what the tests, fuzzing and the benchmark
#                          need (README command 2, bench/run.sh)
set -euo pipefail

# Building and running: the compiler, the libraries the daemon links, fuse3.
packages=(
  build-essential cmake pkg-config
  libfuse3-dev fuse3
  libspdlog-dev libfmt-dev libboost-dev
  liburing-dev  # fs/: the io_uring transport (-o uring)
  libsystemd-dev  # daemon/: the journal sink (-o log=journal)
  libcpg-dev libquorum-dev libvotequorum-dev libcorosync-common-dev  # cluster/: cluster networks
  python3  # tools/ipnfs-top: `ipnfs top`, the live view (curses)
)
packages_bare=()

# The tests, fuzzing and the benchmark, on top.
if [[ "${1:-}" == --test ]]; then
  packages+=(
    libgtest-dev libgmock-dev googletest
    util-linux procps python3
    iproute2 iputils-ping tcpdump
    vde2 libvdeplug-dev iperf3
    libzmq3-dev  # bench/: the ZeroMQ contender
    vde-switch vdeplug  # the cable tests: vde_switch, vde_plug and dpipe
    clang libclang-rt-14-dev llvm  # tools/fuzz.sh: libFuzzer, its sanitizers, llvm-symbolizer
    ccache  # tools/test.sh, tools/fuzz.sh: four builds per CI run share one compile cache
    dpkg-dev debootstrap  # the .deb: cpack's dpkg-shlibdeps, and the Debian 12 chroot it installs in
    lintian  # the .deb's lintian test (PackageTest.LintianFindsNothingUnjustified)
    groff-base mandoc  # the man pages' lint test
    python3-matplotlib  # bench/plot.py: bench/run.sh's charts (optional for a user), the bench_plots test
    dnsmasq-base  # the qemu VDE test: the DHCP server qemu's iPXE asks through the network
    corosync  # the cluster tests: tools/cluster-hosts.sh runs one per network namespace
    tmux  # the ipnfs top tests: a terminal to run the live view in (send-keys, capture-pane)
    mypy  # the python_types test: python/ipnfs and its example under mypy --strict
    strace  # bench/wakeups.sh: the daemon's system calls per message
  )
  # Installed without their Recommends (qemu-system-x86's are a GUI, OVMF, ...).
  # qemu-system-x86 brings ipxe-qemu, the NIC's boot ROM, as a dependency.
  packages_bare+=(
    qemu-system-x86  # the qemu VDE test: qemu -netdev vde against an endpoint
    # the metrics test: node_exporter's textfile collector reads ipnfs.prom
    # (its Recommends are other collectors' scripts), curl scrapes it
    prometheus-node-exporter curl
    # the journal test (its own systemd-journald in a mount namespace, journalctl)
    # and systemd-analyze verify of the .deb's ipnfs.service; a container starts none of it
    systemd
    # the package test that boots the .deb's Debian 12 tree with systemd as PID 1
    # (systemd-nspawn) and runs ipnfs.service there
    systemd-container
  )
elif [[ $# -gt 0 ]]; then
  echo "usage: tools/deps.sh [--test]" >&2
  exit 2
fi

# One dpkg-query for all: one per package takes seconds on a busy machine.
declare -A installed=()
while read -r p status; do
  [[ "$status" == "install ok installed" ]] && installed[$p]=1
done < <(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]}" "${packages_bare[@]}" 2>/dev/null || true)
missing=()
for p in "${packages[@]}"; do [[ -n "${installed[$p]:-}" ]] || missing+=("$p"); done
missing_bare=()
for p in "${packages_bare[@]}"; do [[ -n "${installed[$p]:-}" ]] || missing_bare+=("$p"); done
if ((${#missing[@]} + ${#missing_bare[@]})); then
  echo "ipnfs: installing ${missing[*]} ${missing_bare[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # corosync's postinst starts a corosync through invoke-rc.d where no
  # systemd runs (and fails the install if it cannot start).  The tests run
  # their own, one per namespace (tools/cluster-hosts.sh): during the install
  # a policy-rc.d denies service starts, unless the machine has one already.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    trap '$sudo rm -f "$policy"' EXIT
  fi
  if ((${#missing[@]})); then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
  fi
  if ((${#missing_bare[@]})); then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      "${missing_bare[@]}"
  fi
fi
