#!/usr/bin/env bash
# Checkpoints and restarts: an interrupted run resumed on the same layout has
# bit-identical losses and accuracies; on another layout within 1e-5; SIGUSR1
# checkpoints and exits 75; SIGKILL at any point of a checkpoint write leaves
# the previous checkpoint loadable; YAML configs; bad checkpoints and configs.
set -uo pipefail
FPT=$1
W=$2
source "$(dirname "$0")/lib.sh"
rm -rf "$W" && mkdir -p "$W"
"$FPT" init --layers 4 --d-model 32 --heads 4 --positions 64 --seed 3 -o "$W/m.h5" > /dev/null || exit 1
"$FPT" data bit-xor --n-train 100 --n-val 30 --n-test 30 -o "$W/d.h5" > /dev/null || exit 1
run() { # NAME NP STAGES [ARGS...]
  local name=$1 np=$2 S=$3; shift 3
  OMP_NUM_THREADS=1 "$MPIRUN" -np "$np" --oversubscribe "$FPT" train --model "$W/m.h5" --data "$W/d.h5" \
    --steps 30 --batch-size 8 --micro-batches 2 --stages "$S" --log-every 5 --eval-every 10 \
    --checkpoint-every 10 --run-dir "$W/$name" "$@" >> "$W/$name.log" 2>&1
}
same() { # A B TOL: the same metric lines (step, split, loss, accuracy) within TOL (0 = exact)
  /usr/bin/python3 - "$W/$1/metrics.jsonl" "$W/$2/metrics.jsonl" "$3" <<'PY'
import json, sys
a, b = ([(r["step"], r["split"], r["loss"], r["accuracy"]) for r in map(json.loads, open(p)) if r["split"] != "run"] for p in sys.argv[1:3])
tol = float(sys.argv[3])
ok = len(a) == len(b) > 0 and all(x[:2] == y[:2] and (x[2:] == y[2:] if tol == 0 else
     abs(x[2] - y[2]) <= tol * abs(x[2]) and abs(x[3] - y[3]) <= 1e-9 + tol) for x, y in zip(a, b))
sys.exit(0 if ok else 1)
PY
}
run ref 4 2
check "reference run: 30 steps, checkpoints kept (3 newest)" test "$(ls "$W/ref/checkpoints" | grep -c '^ckpt-')" -eq 3

# Killed mid-run (SIGKILL at step 17), resumed on the same layout: identical.
# In between the dataset file is made again, a second later, as a new
# machine's data job does: a checkpoint names its data file's checksum, so the
# file must come out with the same bytes (no clock in it) for the resume.
FPT_FAULT=step FPT_FAULT_AT=17 run a 4 2
sleep 1.1
"$FPT" data bit-xor --n-train 100 --n-val 30 --n-test 30 -o "$W/d-again.h5" > /dev/null || exit 1
check "fpt data made again a second later: the same bytes" cmp "$W/d.h5" "$W/d-again.h5"
mv "$W/d-again.h5" "$W/d.h5"
run a 4 2 --resume auto
check "killed at step 17, resumed from step 10 (on the data file made again): bit-identical metrics" same ref a 0
# Resumed on another layout (1 stage x 2 replicas, then 4 stages x 1).
FPT_FAULT=step FPT_FAULT_AT=13 run b 4 2
run b 2 1 --resume auto
check "resumed on 1 stage x 2 replicas: within 1e-5" same ref b 1e-5
FPT_FAULT=step FPT_FAULT_AT=25 run c 2 2
run c 4 4 --resume auto
check "resumed on 4 stages x 1 replica: within 1e-5" same ref c 1e-5

# SIGUSR1: checkpoint at the next step boundary, exit 75, resume finishes identically.
OMP_NUM_THREADS=1 "$MPIRUN" -np 2 --oversubscribe "$FPT" train --model "$W/m.h5" --data "$W/d.h5" --steps 3000 \
  --batch-size 8 --micro-batches 2 --stages 2 --log-every 5 --checkpoint-every 1000 --run-dir "$W/sig" > "$W/sig.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q '"step":20,' "$W/sig/metrics.jsonl" 2>/dev/null && break; sleep 0.1; done
kill -USR1 $pid
rc=0
wait $pid || rc=$?
check "SIGUSR1: exit $rc = 75 (requeue me)" test "$rc" -eq 75
check "SIGUSR1: a checkpoint was written" test -s "$W/sig/checkpoints/latest"
stopped=$(grep -o 'stopping at step [0-9]*' "$W/sig.log" | grep -o '[0-9]*$')
check "SIGUSR1: stopped at step $stopped" test -n "$stopped"

# YAML config; the command line wins over the file.
printf 'model: %s\ndata: %s\nsteps: 30\nbatch_size: 8\nmicro_batches: 2\nstages: 2\nlog_every: 5\neval_every: 10\ncheckpoint_every: 10\nlr: 0.5\n' \
  "$W/m.h5" "$W/d.h5" > "$W/cfg.yaml"
OMP_NUM_THREADS=1 "$MPIRUN" -np 4 --oversubscribe "$FPT" train --config "$W/cfg.yaml" --lr 1e-3 --run-dir "$W/yaml" > "$W/yaml.log" 2>&1
check "YAML config + --lr override reproduces the reference" same ref yaml 0
check "resolved config.yaml written" grep -q "^lr: 0.001" "$W/yaml/config.yaml"

# SIGKILL at many points of a checkpoint write: the previous checkpoint survives.
# rank:point:counter. Rank 1 writes datasets (it owns stage 1's tensors);
# rank 0 renames and updates `latest`. Checkpoint 1 (step 10) completes, and
# the fault fires in checkpoint 2 (step 20: FPT_FAULT_NTH=2); the counter is
# the dataset's index within the checkpoint.
points="1:checkpoint-created:0 1:checkpoint-dataset:0 1:checkpoint-dataset:20 0:checkpoint-dataset:30 1:checkpoint-before-close:0 0:checkpoint-before-rename:0 0:checkpoint-before-latest:0"
for p in $points; do
  IFS=: read -r rank point at <<< "$p"
  name="k-$rank-$point-$at"
  FPT_FAULT=$point FPT_FAULT_AT=$at FPT_FAULT_RANK=$rank FPT_FAULT_NTH=2 run "$name" 4 2
  latest=$(cat "$W/$name/checkpoints/latest" 2>/dev/null || echo none)
  check "killed at rank $rank $point $at: the job died, latest is the step-10 checkpoint" \
    test "$latest" = ckpt-000000010.h5
  run "$name" 4 2 --resume auto
  if same ref "$name" 0; then ok "killed at rank $rank $point $at: resumed run matches the reference"
  else bad "killed at rank $rank $point $at: $(grep 'fpt: error' "$W/$name.log" | tail -1)"; fi
done

# Bad input: one error, nonzero exit, checkpoints untouched.
cp -r "$W/ref" "$W/bad"
before=$(cd "$W/bad/checkpoints" && md5sum ckpt-* latest)
"$FPT" init --layers 4 --d-model 32 --heads 4 --positions 64 --seed 4 -o "$W/other.h5" > /dev/null
bad_run() { OMP_NUM_THREADS=1 "$MPIRUN" -np 2 --oversubscribe "$FPT" train --data "$W/d.h5" --steps 40 --batch-size 8 \
  --stages 2 --run-dir "$W/bad" "$@"; }
expect_error "other backbone" "checksum" "$W/e1" -- bad_run --model "$W/other.h5" --resume auto
last=$(cat "$W/bad/checkpoints/latest")
cp "$W/bad/checkpoints/$last" "$W/corrupt.h5"
/usr/bin/python3 - "$W/corrupt.h5" <<'PY'
import h5py, sys
with h5py.File(sys.argv[1], "r") as f:
    off = f["params/wpe/weight"].id.get_offset() if f["params/wpe/weight"].chunks is None else None
    ds = f["params/wpe/weight"]
    info = ds.id.get_chunk_info(0)
    off = info.byte_offset
with open(sys.argv[1], "r+b") as g:
    g.seek(off + 100)
    b = g.read(1)
    g.seek(off + 100)
    g.write(bytes([b[0] ^ 0xFF]))
PY
expect_error "corrupted checkpoint (Fletcher32)" "corrupt.h5: reading dataset /params/wpe/weight failed" "$W/e2" -- bad_run --model "$W/m.h5" --resume "$W/corrupt.h5"
head -c 3000 "$W/bad/checkpoints/$last" > "$W/trunc.h5"
expect_error "truncated checkpoint" "trunc.h5" "$W/e3" -- bad_run --model "$W/m.h5" --resume "$W/trunc.h5"
"$FPT" data bit-memory --bit-length 40 --patch 8 --n-train 50 --n-val 10 --n-test 10 -o "$W/d2.h5" > /dev/null
expect_error "task shape differs" "/params/in/weight has 1 rows but the data has 8-wide tokens" "$W/e4" -- \
  bad_run --model "$W/m.h5" --data "$W/d2.h5" --resume auto
printf 'steps: 10\nbatch_sise: 8\n' > "$W/typo.yaml"
expect_error "unknown config key" "typo.yaml:2: unknown key 'batch_sise'" "$W/e5" -- bad_run --model "$W/m.h5" --config "$W/typo.yaml"
printf 'steps: ten\n' > "$W/type.yaml"
expect_error "wrong value type" "type.yaml:1: key steps: 'ten' is not an integer" "$W/e6" -- bad_run --model "$W/m.h5" --config "$W/type.yaml"
expect_error "unwritable run directory" "run-dir" "$W/e7" -- bad_run --model "$W/m.h5" --run-dir /proc/fpt-no
after=$(cd "$W/bad/checkpoints" && md5sum ckpt-* latest)
check "existing checkpoints untouched by the failures" test "$before" = "$after"
finish
