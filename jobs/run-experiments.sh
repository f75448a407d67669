#!/bin/bash
# Run jobs/experiments.tsv without Slurm: each line in turn through
# jobs/experiment.sbatch, skipping finished runs (a final test line in
# metrics.jsonl) and resuming interrupted ones from their checkpoints. Stop it
# at any time (kill the script: the trainer checkpoints on SIGUSR1) and rerun
# it later to go on.
#   nohup bash jobs/run-experiments.sh > runs/experiments.log 2>&1 &
#   ONLY=bit-xor bash jobs/run-experiments.sh       # lines whose task matches
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
PARAMS=${PARAMS:-jobs/experiments.tsv}
EXP_DIR=${EXP_DIR:-runs/exp}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
n=$(($(awk 'END { print NR }' "$PARAMS") - 1)) # also counts a last line without a newline
failed=0
child=""
trap '[ -n "$child" ] && kill -USR1 "$child" 2>/dev/null; wait "$child"; exit 75' USR1 TERM INT
for ((i = 0; i < n; i++)); do
  IFS=$'\t' read -r task arm seed _ < <(sed -n "$((i + 2))p" "$PARAMS")
  if [ -n "${ONLY:-}" ] && [ "$task" != "$ONLY" ]; then continue; fi
  run=$EXP_DIR/$task/$arm/seed$seed
  if grep -q '"split":"test".*"final":1' "$run/metrics.jsonl" 2>/dev/null; then continue; fi
  echo "$(date '+%F %T') run-experiments: line $i: $task $arm seed $seed -> $run"
  SLURM_ARRAY_TASK_ID=$i bash jobs/experiment.sbatch &
  child=$!
  wait "$child"
  rc=$?
  child=""
  echo "$(date '+%F %T') run-experiments: line $i exit $rc"
  [ "$rc" -eq 0 ] || failed=$((failed + 1))
done
if [ "$failed" -gt 0 ]; then
  echo "$(date '+%F %T') run-experiments: $failed run(s) did not finish (see above); rerun to resume them" >&2
  exit 1
fi
