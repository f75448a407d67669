#!/usr/bin/env bash
# Install what is missing (Debian 12 packages only) and build fpt into build/.
# Idempotent: a second run installs nothing and rebuilds only what changed.
# Usage: jobs/setup.sh [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config
  libopenmpi-dev openmpi-bin
  libhdf5-openmpi-dev hdf5-tools
  libopenblas-dev libscalapack-openmpi-dev
  libcjson-dev libyaml-dev libcmocka-dev zlib1g-dev
  dataset-fashion-mnist hmmer-examples python3-lmdb
  slurmctld slurmd slurm-client munge libpmix-dev
  python3 python3-numpy python3-h5py python3-torch python3-matplotlib
)
# What only the tests need (tests/run.sh sets FPT_TEST_PACKAGES=1).
[ "${FPT_TEST_PACKAGES:-0}" != 1 ] || PACKAGES+=(clang-format)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" > build.cmake.log 2>&1 || { cat build.cmake.log; exit 1; }
rm -f build.cmake.log
cmake --build build -j "$(nproc)"
