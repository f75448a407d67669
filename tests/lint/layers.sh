#!/usr/bin/env bash
# The house rules of docs/ARCHITECTURE.md that a grep can check:
#   src/model, src/tasks: no MPI and no HDF5 (model math and task data are
#     plain C over arrays and files; the grid and the formats live elsewhere);
#   src/parallel, src/cli: no HDF5 calls of their own (HDF5 lives in src/io);
#   the model's public headers pull in neither mpi.h nor hdf5.h.
# Exits 1 listing every offending line.
set -uo pipefail
cd "$(dirname "$0")/../.."
fail=0
check() { # what, pattern, files...
  local what=$1 pat=$2
  shift 2
  local hits
  # Comments are not calls: drop // ... and lines inside /* */ blocks of one line.
  hits=$(grep -nE "$pat" "$@" 2>/dev/null | grep -vE '^[^:]+:[0-9]+:\s*(//|\*|/\*)' | sed -E 's#//.*##' | grep -E "$pat")
  if [ -n "$hits" ]; then
    echo "layers: $what:"
    echo "$hits" | sed 's/^/  /'
    fail=1
  fi
}
MPI='#include <mpi\.h>|\bMPI_[A-Z][a-z_]+\s*\(|\bMPI_Comm\b'
H5='#include <hdf5\.h>|\bH5[A-Z][A-Za-z]*\s*\(|\bhid_t\b'
check "model code calls MPI (src/model)" "$MPI" src/model/*.[ch]
check "model code calls HDF5 (src/model)" "$H5" src/model/*.[ch]
check "task code calls MPI (src/tasks)" "$MPI" src/tasks/*.[ch]
check "task code calls HDF5 (src/tasks; write through src/io)" "$H5" src/tasks/*.[ch]
check "the executor calls HDF5 (src/parallel)" "\bH5[A-Z][A-Za-z]*\s*\(" src/parallel/*.[ch]
check "a command calls HDF5 itself (src/cli; use src/io)" "\bH5[A-Z][A-Za-z]*\s*\(" src/cli/*.[ch]
MODEL_HEADERS=(include/fpt/model.h include/fpt/backbone.h include/fpt/kernels.h include/fpt/tasks.h
               include/fpt/task_registry.h include/fpt/run.h include/fpt/schedule.h include/fpt/fastmath.h
               include/fpt/gemm_bf16.h)
have=()
for h in "${MODEL_HEADERS[@]}"; do [ -f "$h" ] && have+=("$h"); done
check "a model header pulls in MPI or HDF5" '#include <(mpi|hdf5)\.h>' "${have[@]}"
if [ $fail -eq 0 ]; then
  echo "layers: ok (src/model and src/tasks free of MPI and HDF5; HDF5 only in src/io)"
fi
exit $fail
