#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (in build-fuzz) and
# runs each one for SECONDS (default 600: a long run; CI runs 20), first on
# its saved crash reproducers (tests/fuzz/regressions/TARGET, each run once:
# a fixed bug must stay fixed), then fuzzing from its seeds
# (tests/fuzz/corpus/TARGET), one target per core at a time.  New inputs go
# to build-fuzz/corpus/TARGET, so the tree's corpus grows only by a merge; crashes to
# build-fuzz/artifacts/TARGET.  Prints a summary and fails if any target
# crashed.
#
#   tools/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# To fold a long run's finds into the tree's seeds, minimized:
#   build-fuzz/tests/fuzz/TARGET -merge=1 tests/fuzz/corpus/TARGET build-fuzz/corpus/TARGET
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-600}
shift || true
all=(fuzz_ctl fuzz_framed_write fuzz_framed_read fuzz_route fuzz_plugin_checks fuzz_config
  fuzz_vde_request fuzz_cluster_wire)
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")

# The longest input worth trying: a ctl write of a few dozen lines, a framed
# write of a handful of records, a stream of a few hundred operations, a
# cluster batch of a few dozen records.
declare -A max_len=(
  [fuzz_ctl]=1024 [fuzz_framed_write]=4096 [fuzz_framed_read]=4096
  [fuzz_route]=4096 [fuzz_plugin_checks]=512 [fuzz_config]=2048 [fuzz_vde_request]=512
  [fuzz_cluster_wire]=4096)

tools/deps.sh --test

# -O1 and line tables only: quicker to build than -O2 -g, fast enough to
# fuzz, and the fuzzer's stacks still name every line.
build=build-fuzz
flags="-O1 -gline-tables-only"
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  -DIPNFS_FUZZ=ON -DIPNFS_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="$flags" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$flags" >/dev/null
cmake --build "$build" --target "${targets[@]}" -j"$(nproc)"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1

# One target: its regressions once each, then fuzzing; its summary row goes
# to $build/summary-TARGET, and it fails if either crashed.
run_target() {
  local t=$1 bin=$build/tests/fuzz/$1 work=$build/corpus/$1 artifacts=$build/artifacts/$1
  local log=$build/fuzz-$1.log row=$build/summary-$1
  mkdir -p "$work" "$artifacts"
  local regressions=(tests/fuzz/regressions/"$t"/*)
  if [ -e "${regressions[0]}" ] && ! "$bin" "${regressions[@]}" >"$log.regressions" 2>&1; then
    tail -n 30 "$log.regressions"
    printf '%-20s a regression input fails again: %s\n' "$t" "$log.regressions" >"$row"
    return 1
  fi
  local status=ok
  if ! "$bin" -max_total_time="$seconds" -timeout=10 -max_len="${max_len[$t]}" \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$work" "tests/fuzz/corpus/$t" \
    >"$log" 2>&1; then
    status=CRASHED
    tail -n 40 "$log"
  fi
  local runs last
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  # The last status line: "#N DONE cov: C ft: F corp: N/B ...".
  last=$(grep -E '^#[0-9]+' "$log" | tail -n1 || true)
  printf '%-20s %10s %6s %7s %12s %8s  %s\n' "$t" "${runs:-?}" \
    "$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")" \
    "$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")" \
    "$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")" \
    "$(find "$artifacts" -type f | wc -l)" "$status" >"$row"
  [ "$status" = ok ]
}

# One target per core at a time: each fuzzer is a single process.
echo "== fuzzing ${targets[*]}: ${seconds}s each, $(nproc) at a time"
pids=()
for t in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= $(nproc))); do wait -n || true; done
  run_target "$t" &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done

echo "== fuzz summary (${seconds}s per target; artifacts in $build/artifacts)"
printf '%-20s %10s %6s %7s %12s %8s  %s\n' target executions cov ft corpus crashes result
for t in "${targets[@]}"; do cat "$build/summary-$t"; done
exit "$failed"
