#!/usr/bin/env bash
# Installs the Debian 12 packages ipnfs needs to build, run and test, if any
# is missing.  Safe to run again: it does nothing when all are there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libfuse3-dev fuse3
  libspdlog-dev libfmt-dev libboost-dev
  libgtest-dev libgmock-dev googletest
  util-linux procps python3
  iproute2 iputils-ping tcpdump
  vde2 libvdeplug-dev iperf3
  vde-switch vdeplug  # the cable tests: vde_switch, vde_plug and dpipe
  clang libclang-rt-14-dev llvm  # tools/fuzz.sh: libFuzzer, its sanitizers, llvm-symbolizer
  ccache  # tools/test.sh, tools/fuzz.sh: four builds per CI run share one compile cache
  dpkg-dev debootstrap  # the .deb: cpack's dpkg-shlibdeps, and the Debian 12 chroot it installs in
  groff-base mandoc  # the man pages' lint test
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "ipnfs: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
