#!/bin/bash
# cmake --install: fpt, the jobs, the analysis scripts and the default model
# under a temporary prefix; a job script run from there (outside the
# repository, no FPT or FPT_ROOT set) finds the installed fpt and model and
# trains. A configure without tests does not need cmocka; with tests it does.
# usage: test_install.sh BUILD_DIR WORKDIR
set -u
BUILD=$1
W=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/cli/lib.sh
source "$ROOT/tests/cli/lib.sh"
rm -rf "$W" && mkdir -p "$W/job"
P=$W/prefix
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader OMP_NUM_THREADS=1

check "cmake --install into a temporary prefix" cmake --install "$BUILD" --prefix "$P"
for f in bin/fpt share/fpt/jobs/lib/fpt-job.sh share/fpt/jobs/train-bit-xor.sbatch \
  share/fpt/jobs/quickstart.sh share/fpt/analysis/results_table.py \
  share/fpt/data/models/default.h5 share/fpt/data/make_corpus.sh share/doc/fpt/ARCHITECTURE.md; do
  if [ -e "$P/$f" ]; then ok "installed $f"; else bad "not installed: $f"; fi
done
if [ -x "$P/share/fpt/analysis/results_table.py" ]; then ok "analysis scripts stay executable"; else
  bad "analysis/results_table.py lost its execute bit"; fi
if grep -q "source \"\${FPT_ROOT:-$P/share/fpt}/jobs/lib/fpt-job.sh\"" "$P/share/fpt/jobs/train-bit-xor.sbatch"; then
  ok "installed sbatch scripts fall back to $P/share/fpt"
else
  bad "installed train-bit-xor.sbatch does not source fpt-job.sh from the prefix" "$P/share/fpt/jobs/train-bit-xor.sbatch"
fi

"$P/bin/fpt" --version >"$W/version.out" 2>&1
if grep -q "^fpt [0-9]" "$W/version.out" && grep -q "git" "$W/version.out" && grep -qi "kernel" "$W/version.out"; then
  ok "installed fpt --version: $(head -1 "$W/version.out")"
else
  bad "installed fpt --version lacks the version, git revision or BLAS kernel" "$W/version.out"
fi

# The job, as a user would run it from their own directory (not under Slurm:
# fpt_run exits with fpt's status). PATH without the build directory.
(cd "$W/job" && env -u FPT -u FPT_ROOT -u FPT_MODELS -u SLURM_JOB_ID SLURM_NTASKS=1 \
  STEPS=20 BATCH_SIZE=8 LOG_EVERY=10 EVAL_EVERY=10 CHECKPOINT_EVERY=10 RUN_DIR=run \
  FPT_ARGS="--eval-samples 32" bash "$P/share/fpt/jobs/train-bit-xor.sbatch") >"$W/job.log" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "final val" "$W/job.log"; then ok "the installed job trained (exit 0)"; else
  bad "the installed bit-xor job failed (exit $rc)" "$W/job.log"; fi
if grep -q "$P/bin/fpt train --model $P/share/fpt/data/models/default.h5" "$W/job.log"; then
  ok "the job used the installed fpt and the installed default model"
else
  bad "the job did not use $P/bin/fpt and $P/share/fpt/data/models/default.h5" "$W/job.log"
fi
if [ -s "$W/job/run/metrics.jsonl" ] && ls "$W/job/run/checkpoints/"*.h5 >/dev/null 2>&1; then
  ok "run directory in the job's working directory: metrics.jsonl and checkpoints"
else
  bad "no metrics or checkpoints in $W/job/run"
fi

# Configure only: FPT_BUILD_TESTS=OFF needs no cmocka. pkg-config is pointed
# at a copy of its directory without cmocka.pc.
PC=$W/pkgconfig
mkdir -p "$PC"
for d in $(pkg-config --variable pc_path pkg-config | tr ':' ' '); do
  [ -d "$d" ] && for f in "$d"/*.pc; do
    [ -e "$f" ] && [ "$(basename "$f")" != cmocka.pc ] && ln -sf "$f" "$PC/"
  done
done
if PKG_CONFIG_LIBDIR=$PC pkg-config --exists cmocka; then bad "cmocka still visible to pkg-config"; fi
if PKG_CONFIG_LIBDIR=$PC cmake -S "$ROOT" -B "$W/notests" -DFPT_BUILD_TESTS=OFF >"$W/notests.log" 2>&1; then
  ok "configure with FPT_BUILD_TESTS=OFF succeeds without cmocka"
else
  bad "configure without tests failed without cmocka" "$W/notests.log"
fi
if PKG_CONFIG_LIBDIR=$PC cmake -S "$ROOT" -B "$W/withtests" >"$W/withtests.log" 2>&1; then
  bad "configure with tests succeeded without cmocka" "$W/withtests.log"
elif grep -q cmocka "$W/withtests.log"; then
  ok "configure with tests needs cmocka, and says so"
else
  bad "configure with tests failed, but not naming cmocka" "$W/withtests.log"
fi
finish
