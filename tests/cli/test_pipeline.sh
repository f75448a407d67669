#!/usr/bin/env bash
# Pipeline stages x data-parallel replicas: the loss curve of 20 steps (dropout
# on) agrees within 1e-5 relative for the layouts 1x1, 2x1, 1x2, 3x1, 2x2, 4x1
# (stages x replicas) and for both schedules; the grid is checked at start-up;
# a rank killed mid-step takes the whole job down, nonzero, within seconds.
set -uo pipefail
FPT=$1
W=$2
source "$(dirname "$0")/lib.sh"
rm -rf "$W" && mkdir -p "$W"
"$FPT" init --layers 4 --d-model 32 --heads 4 --positions 64 --seed 3 -o "$W/m.h5" > /dev/null || exit 1
"$FPT" data bit-memory --bit-length 40 --patch 8 --n-train 200 --n-val 24 --n-test 24 -o "$W/d.h5" > /dev/null || exit 1

run() { # NAME STAGES REPLICAS [ARGS...]
  local name=$1 S=$2 R=$3; shift 3
  OMP_NUM_THREADS=1 "$MPIRUN" -np $((S * R)) --oversubscribe "$FPT" train --model "$W/m.h5" \
    --data "$W/d.h5" --steps 20 --batch-size 8 --micro-batches 2 --stages "$S" --log-every 1 \
    --dropout 0.1 --run-dir "$W/$name" "$@" > "$W/$name.log" 2>&1
}
for lay in "1 1" "2 1" "1 2" "3 1" "2 2" "4 1"; do
  set -- $lay
  run "s$1r$2" "$1" "$2"
done
run s2r2-gpipe 2 2 --schedule gpipe
run s4r1-m4 4 1 --micro-batches 4 --batch-size 8
run s1r1-m4 1 1 --micro-batches 4 --batch-size 8

/usr/bin/python3 - "$W" <<'PY'
import json, sys
w = sys.argv[1]
def losses(n):
    try:
        return [(r["split"], r["loss"], r["accuracy"]) for r in map(json.loads, open(f"{w}/{n}/metrics.jsonl")) if r["split"] != "run"]
    except OSError:
        return []
ok = True
def compare(a, b):
    global ok
    A, B = losses(a), losses(b)
    good = len(A) == 22 and len(A) == len(B) and [x[0] for x in A] == [x[0] for x in B]
    rel = max((abs(x[1] - y[1]) / abs(x[1]) for x, y in zip(A, B)), default=1.0) if good else 1.0
    good = good and rel < 1e-5
    print(f"{'ok' if good else 'FAIL'}: {b} vs {a}: 20 train steps + val + test, max relative loss difference {rel:.1e}")
    ok &= good
for lay in ("s2r1", "s1r2", "s3r1", "s2r2", "s4r1", "s2r2-gpipe"):
    compare("s1r1", lay)
compare("s1r1-m4", "s4r1-m4")
sys.exit(0 if ok else 1)
PY
[ $? -eq 0 ] && ok "layout independence" || bad "layout independence"
check "metrics carry the step-time split" grep -q '"p2p_wait_s"' "$W/s2r2/metrics.jsonl"
check "start-up table shows the grid" grep -q "grid: 2 stage(s) x 2 replica(s); 2 micro-batch(es) of 2 per replica" "$W/s2r2.log"

# Bad grids: one error from rank 0, every rank exits nonzero.
bad_run() { OMP_NUM_THREADS=1 "$MPIRUN" -np "$1" --oversubscribe "$FPT" train --model "$W/m.h5" --data "$W/d.h5" --steps 2 --run-dir "$W/bad" "${@:2}"; }
expect_error "world not divisible by stages" "world size 3 is not divisible by the 2 pipeline stages" "$W/e1" -- bad_run 3 --stages 2 --batch-size 6
expect_error "more stages than layers" "5 pipeline stages but only 4 layers" "$W/e2" -- bad_run 5 --stages 5 --batch-size 5
expect_error "micro-batches do not divide the batch" "batch size 8 is not divisible by replicas" "$W/e3" -- bad_run 2 --stages 1 --micro-batches 3 --batch-size 8
expect_error "unknown schedule" "option --schedule: 'zigzag'" "$W/e4" -- bad_run 2 --schedule zigzag --batch-size 8
# srun without PMIx starts lone rank-0 processes: the launcher said 2.
expect_error "lone rank under a 2-task launcher" "the launcher started 2 processes (SLURM_STEP_NUM_TASKS) but MPI sees a world of 1" "$W/e5" -- \
  env SLURM_STEP_NUM_TASKS=2 "$FPT" train --model "$W/m.h5" --data "$W/d.h5" --steps 1 --batch-size 8 --run-dir "$W/bad"

# A rank dies in the middle of training: nothing hangs.
start=$(date +%s)
rc=0
OMP_NUM_THREADS=1 FPT_FAULT=step FPT_FAULT_RANK=1 FPT_FAULT_AT=5 timeout 60 "$MPIRUN" -np 4 --oversubscribe "$FPT" train \
  --model "$W/m.h5" --data "$W/d.h5" --steps 50 --batch-size 8 --stages 2 --micro-batches 2 --run-dir "$W/die" > "$W/die.log" 2>&1 || rc=$?
took=$(( $(date +%s) - start ))
check "rank 1 killed at step 5: job exits $rc (nonzero, not the timeout's 124) in ${took}s" test "$rc" -ne 0 -a "$rc" -ne 124 -a "$took" -lt 30
check "no fpt process left behind" test -z "$(pgrep -f "$W/m.h5" || true)"
finish
