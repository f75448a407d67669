#!/usr/bin/env bash
# Install what is missing, build with -Werror, run every test (ctest), then
# build and run the unit tests again under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
FPT_TEST_PACKAGES=1 bash jobs/setup.sh -DFPT_WERROR=ON
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
(cd build && ctest --output-on-failure -j 2 "$@")

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFPT_WERROR=ON -DFPT_SANITIZE=ON > /dev/null
cmake --build build-asan -j "$(nproc)" --target test_kernels test_model test_schedule test_listops test_images test_protein test_lstm test_attention test_cpu test_gemm_bf16 fpt case_runner
# LeakSanitizer stays on; Open MPI and OpenBLAS keep a few allocations alive at exit.
export ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1
(cd build-asan && ctest --output-on-failure -L unit)
bash tests/fuzz/run.sh "${FPT_FUZZ_SECONDS:-20}"
