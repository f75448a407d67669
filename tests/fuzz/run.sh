#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan + UBSan + libFuzzer) in build-fuzz/
# and run each for SECONDS (default 20) on a copy of its seed corpus in
# tests/fuzz/corpus/<name>/. Prints the executions per target and in total;
# exits nonzero if any target crashes (sanitizer report, leak, timeout > 10 s,
# RSS > 2 GB, or an abort in a target's own checks), after listing the
# reproducer files it left in build-fuzz/fuzz-run/<name>/artifacts/.
#
#   bash tests/fuzz/run.sh [SECONDS]
#   FPT_FUZZ_TARGETS="yaml idx" bash tests/fuzz/run.sh 60   # a subset
#   build-fuzz/tests/fuzz/fuzz_idx ARTIFACT                   # replay one input
set -uo pipefail
SECS=${1:-20}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${FPT_FUZZ_BUILD:-$ROOT/build-fuzz}
TARGETS=${FPT_FUZZ_TARGETS:-yaml safetensors idx cifar stockholm listops text h5attr}
CLANG=${FPT_FUZZ_CC:-clang}

# clang, libFuzzer's runtime and clang's OpenMP (jobs/setup.sh installs the rest).
missing=()
for p in clang libclang-rt-14-dev libomp-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ] && command -v apt-get >/dev/null; then
  echo "fuzz: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" || { echo "fuzz: cannot install ${missing[*]}" >&2; exit 2; }
fi
command -v "$CLANG" >/dev/null || { echo "fuzz: $CLANG not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
t0=$(date +%s)
echo "fuzz: configuring and building $BUILD with $CLANG"
mkdir -p "$BUILD"
if ! CC=$CLANG cmake -S "$ROOT" -B "$BUILD" -DFPT_FUZZ=ON -DFPT_SANITIZE=ON \
     -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD/fuzz-configure.log" 2>&1; then
  cat "$BUILD/fuzz-configure.log" >&2; exit 2
fi
if ! cmake --build "$BUILD" --target fuzz_all -j"$(nproc)" >"$BUILD/fuzz-build.log" 2>&1; then
  tail -n 40 "$BUILD/fuzz-build.log" >&2; exit 2
fi
echo "fuzz: built in $(( $(date +%s) - t0 )) s; running each target for $SECS s"

# Scratch files of the targets (they write their input to files): on tmpfs,
# and removed at the end, also when a target crashed and left its own behind.
SCRATCH=$(mktemp -d "${FPT_FUZZ_TMP_BASE:-/dev/shm}/fpt-fuzz-run.XXXXXX" 2>/dev/null || mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

# Our own options, not the caller's: tests/run.sh turns leak detection off for
# MPI programs, but a parser's leak is a finding here (MPI is never started).
export ASAN_OPTIONS=${FPT_FUZZ_ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

total=0
failed=()
printf '%-12s %12s %8s %s\n' target executions exec/s result
for name in $TARGETS; do
  bin=$BUILD/tests/fuzz/fuzz_$name
  work=$BUILD/fuzz-run/$name
  rm -rf "$work" && mkdir -p "$work/corpus" "$work/artifacts" "$SCRATCH/$name"
  cp "$HERE/corpus/$name/"* "$work/corpus/" 2>/dev/null
  args=(-max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$work/artifacts/")
  [ -f "$HERE/$name.dict" ] && args+=(-dict="$HERE/$name.dict")
  FPT_FUZZ_TMP=$SCRATCH/$name "$bin" "${args[@]}" "$work/corpus" >"$work/log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$work/log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *\([0-9]*\).*/\1/p' "$work/log" | tail -n 1)
  if [ -z "$execs" ]; then # a crash ends the run before the final stats
    execs=$(grep -o '^#[0-9]*' "$work/log" | tail -n 1 | tr -d '#')
  fi
  execs=${execs:-0}
  total=$(( total + execs ))
  if [ $rc -eq 0 ]; then
    printf '%-12s %12s %8s %s\n' "$name" "$execs" "${rate:-?}" ok
  else
    printf '%-12s %12s %8s %s\n' "$name" "$execs" "${rate:-?}" "CRASH (exit $rc)"
    failed+=("$name")
    grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|^fuzz:' "$work/log" | sed 's/^/    /'
    ls "$work/artifacts/" | sed "s|^|    $work/artifacts/|"
    echo "    log: $work/log"
  fi
done
echo "fuzz: total executions: $total ($(( $(date +%s) - t0 )) s with the build)"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no crashes"
