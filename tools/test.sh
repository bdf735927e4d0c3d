#!/usr/bin/env bash
# README command 2: installs what is missing, then builds and runs every test
# twice: a normal build, and one under AddressSanitizer+UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

tools/deps.sh

echo "== build and test (RelWithDebInfo)"
cmake -S . -B build-test -DIPNFS_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-test -j"$jobs"
# The mount(8) and fstab tests run the installed daemon, as mount(8) does.
cmake --install build-test >/dev/null
ctest --test-dir build-test --output-on-failure --timeout 180

echo "== build and test (ASan+UBSan)"
cmake -S . -B build-asan -DIPNFS_TESTS=ON -DIPNFS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$jobs"
# The installed daemon is the normal build, so the tests of the installed
# daemon ran above; everything else runs again with sanitizers.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure --timeout 300 -LE installed
