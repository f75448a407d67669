#!/bin/bash
# Run jobs/experiments.tsv without Slurm: each line in turn through
# jobs/experiment.sbatch, skipping finished runs (a final test line in
# metrics.jsonl) and resuming interrupted ones from their checkpoints. A line
# whose backbone (bit, image, mlm) is not made yet first makes it with
# jobs/backbone.sbatch (once; if that fails, its lines fail). The file is
# checked first (jobs/experiment.sbatch --check): a bad file runs nothing.
# Stop it at any time (kill the script: the trainer checkpoints on SIGUSR1)
# and rerun it later to go on.
#   nohup bash jobs/run-experiments.sh > runs/experiments.log 2>&1 &
#   ONLY=bit-xor bash jobs/run-experiments.sh       # lines whose task matches
#   PARAMS=jobs/experiments-short.tsv bash jobs/run-experiments.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
PARAMS=${PARAMS:-jobs/experiments.tsv}
EXP_DIR=${EXP_DIR:-runs/exp}
BACKBONE_DIR=${BACKBONE_DIR:-runs/backbones}
export PARAMS EXP_DIR BACKBONE_DIR
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
bash jobs/experiment.sbatch --check >/dev/null 2>&1 || {
  bash jobs/experiment.sbatch --check 2>&1 | grep 'error' >&2
  echo "$(date '+%F %T') run-experiments: $PARAMS has errors (above): nothing run" >&2
  exit 1
}
# shellcheck source=jobs/lib/fpt-job.sh
source jobs/lib/fpt-job.sh
n=$(fpt_exp_count "$PARAMS")
failed=0
child=""
declare -A backbone_failed=()
trap '[ -n "$child" ] && kill -USR1 "$child" 2>/dev/null; wait "$child"; exit 75' USR1 TERM INT
run() { # run WHAT CMD...: in the background, so that the trap can forward a signal
  "$@" &
  child=$!
  wait "$child"
  local rc=$?
  child=""
  return "$rc"
}
for ((i = 0; i < n; i++)); do
  read -r task arm seed bb < <(fpt_exp_line "$PARAMS" "$i" && echo "$EXP_TASK $EXP_ARM $EXP_SEED $EXP_BACKBONE")
  if [ -n "${ONLY:-}" ] && [ "$task" != "$ONLY" ]; then continue; fi
  dir=$EXP_DIR/$task/$arm/seed$seed
  # Another protocol's finished run goes to experiment.sbatch: continued or refused there.
  if fpt_finished "$dir" && [ "$(fpt_exp_line "$PARAMS" "$i" && fpt_finished_as_line "$dir")" = done ]; then continue; fi
  # shellcheck disable=SC2086 # a list of words
  if fpt__in "$bb" $FPT_BACKBONES && [ ! -e "$(fpt_backbone_file "$bb")" ]; then
    if [ -z "${backbone_failed[$bb]:-}" ]; then
      echo "$(date '+%F %T') run-experiments: making backbone $bb for line $i"
      rc=0
      BACKBONE=$bb run bash jobs/backbone.sbatch || rc=$?
      echo "$(date '+%F %T') run-experiments: backbone $bb exit $rc"
      [ "$rc" -eq 0 ] || backbone_failed[$bb]=1
    fi
  fi
  echo "$(date '+%F %T') run-experiments: line $i: $task $arm seed $seed -> $dir"
  rc=0
  SLURM_ARRAY_TASK_ID=$i run bash jobs/experiment.sbatch || rc=$?
  echo "$(date '+%F %T') run-experiments: line $i exit $rc"
  [ "$rc" -eq 0 ] || failed=$((failed + 1))
done
if [ "$failed" -gt 0 ]; then
  echo "$(date '+%F %T') run-experiments: $failed run(s) did not finish (see above); rerun to resume them" >&2
  exit 1
fi
