#!/usr/bin/env bash
# fpt train end to end: metrics.jsonl fields, determinism (same seed twice is
# bit-identical), layout independence (1 rank vs 2 ranks within 1e-5), the
# freeze and init flags, and learning on bit-xor.
set -uo pipefail
FPT=$1
W=$2
source "$(dirname "$0")/lib.sh"
rm -rf "$W" && mkdir -p "$W"
"$FPT" init --layers 3 --d-model 32 --heads 4 --positions 128 --seed 3 -o "$W/m.h5" || exit 1

run() { # run NAME NP ARGS...
  local name=$1 np=$2; shift 2
  OMP_NUM_THREADS=1 "$MPIRUN" -np "$np" --oversubscribe "$FPT" train --model "$W/m.h5" \
    --run-dir "$W/$name" --log-every 1 "$@" > "$W/$name.log" 2>&1
}
run a 1 --task bit-xor --steps 20 --batch-size 8 --seed 5
run b 1 --task bit-xor --steps 20 --batch-size 8 --seed 5
run c 2 --task bit-xor --steps 20 --batch-size 8 --seed 5
run d 1 --task bit-xor --steps 20 --batch-size 8 --seed 6
check "metrics.jsonl and config.yaml written" test -s "$W/a/metrics.jsonl" -a -s "$W/a/config.yaml"

/usr/bin/python3 - "$W" <<'PY'
import json, sys
from checks import expect, finish
w = sys.argv[1]
load = lambda n: [r for r in map(json.loads, open(f"{w}/{n}/metrics.jsonl")) if r["split"] != "run"]
a, b, c, d = load("a"), load("b"), load("c"), load("d")
keys = {"step", "split", "loss", "accuracy", "tokens_per_s"}
expect(all(keys <= set(r) for r in a), "every line has step, split, loss, accuracy, tokens_per_s")
expect([r["split"] for r in a].count("train") == 20 and {r["split"] for r in a} == {"train", "val", "test"},
       "20 train lines, then val and test")
strip = lambda rs: [(r["step"], r["split"], r["loss"], r["accuracy"]) for r in rs]
expect(strip(a) == strip(b), "same seed, same layout: bit-identical losses and accuracies")
rel = max(abs(x[2] - y[2]) / abs(y[2]) for x, y in zip(strip(a), strip(c)))
expect(rel < 1e-5, f"1 rank vs 2 ranks: max relative loss difference {rel:.2e} < 1e-5")
expect(strip(a) != strip(d), "another seed gives other numbers")
finish()
PY
[ $? -eq 0 ] && ok "metrics checks" || bad "metrics checks"

# Learning: a random 3-layer backbone gets bit-xor well above chance in 400 steps.
run e 1 --task bit-xor --steps 400 --batch-size 16 --seed 1 --dropout 0 --log-every 100
acc=$(grep '"split":"test"' "$W/e/metrics.jsonl" | sed 's/.*"accuracy":\([0-9.e-]*\).*/\1/')
check "bit-xor test accuracy $acc > 0.58 after 400 steps (chance 0.5, sd 0.01)" /usr/bin/python3 -c "import sys; sys.exit(0 if $acc > 0.58 else 1)"

# Flags: output-only training trains the head alone.
run f 1 --task bit-xor --steps 3 --batch-size 8 --freeze-in true --freeze-ln true --freeze-pos true
check "output-only run: 66 trainable parameters (32x2 + 2)" grep -q " 66 trainable" "$W/f.log"
run g 1 --task bit-xor --steps 3 --batch-size 8 --full-train true
check "full training: every parameter trainable" grep -qE " ([0-9]+) parameters, \1 trainable" "$W/g.log"
run h 1 --task bit-xor --steps 3 --batch-size 8 --init random
run i 1 --task bit-xor --steps 3 --batch-size 8 --init stats
check "random and stats inits run" test -s "$W/h/metrics.jsonl" -a -s "$W/i/metrics.jsonl"
run j 1 --task bit-memory --bit-length 100 --patch 10 --steps 3 --batch-size 4
check "bit-memory runs (100 bits, patch 10: 60 tokens x 10)" grep -q "60 tokens x 10" "$W/j.log"

# Dataset files: the same global batches whatever the number of ranks.
"$FPT" data bit-xor --n-train 300 --n-val 50 --n-test 40 --seed 2 -o "$W/xor.h5" > /dev/null
run k 1 --data "$W/xor.h5" --steps 30 --batch-size 12 --seed 4
run l 2 --data "$W/xor.h5" --steps 30 --batch-size 12 --seed 4
run l3 3 --data "$W/xor.h5" --steps 30 --batch-size 12 --seed 4
/usr/bin/python3 - "$W" <<'PY'
import json, sys
w = sys.argv[1]
load = lambda n: [r for r in map(json.loads, open(f"{w}/{n}/metrics.jsonl")) if r["split"] != "run"]
k, l, l3 = load("k"), load("l"), load("l3")
ok = len(k) == 32 and [r["split"] for r in k[-2:]] == ["val", "test"]
rel = max(max(abs(a["loss"] - b["loss"]) / abs(a["loss"]) for a, b in zip(k, o)) for o in (l, l3))
print(f"{'ok' if ok and rel < 1e-5 else 'FAIL'}: dataset file, 1 vs 2 vs 3 ranks: max relative loss difference {rel:.2e}")
sys.exit(0 if ok and rel < 1e-5 else 1)
PY
[ $? -eq 0 ] && ok "dataset-file layout independence" || bad "dataset-file layout independence"
check "whole val (50) and test (40) splits evaluated" grep -q "final test .*(40 samples)" "$W/l.log"
# --keep-best: the checkpoint of the best validation accuracy (ties: the
# earlier; the final evaluation counts) is checkpoints/best.h5 with best.json,
# survives pruning (--keep-checkpoints 1) and an interruption, and scores what
# best.json says under fpt eval.
KB=(--task bit-xor --steps 60 --batch-size 8 --seed 2 --lr 3e-3 --eval-every 10 --eval-samples 64
    --checkpoint-every 20 --keep-checkpoints 1 --keep-best true)
run kb 1 "${KB[@]}"
run kb2 1 "${KB[@]}" --steps 25
run kb2 1 "${KB[@]}" --resume auto
OMP_NUM_THREADS=1 "$MPIRUN" -np 1 "$FPT" eval --model "$W/m.h5" --task bit-xor --eval-samples 64 \
  --seed 2 --checkpoint "$W/kb/checkpoints/best.h5" > "$W/kb-eval.log" 2>&1
/usr/bin/python3 - "$W" <<'PY'
import json, sys, re, h5py
from checks import expect, finish
w = sys.argv[1]
vals = [r for r in map(json.loads, open(f"{w}/kb/metrics.jsonl")) if r["split"] == "val"]
want = max(vals, key=lambda r: (r["accuracy"], -r["step"]))  # ties: the earlier
best = json.load(open(f"{w}/kb/checkpoints/best.json"))
expect(best["step"] == want["step"] and best["val_accuracy"] == want["accuracy"],
       f"best.json names step {best['step']} (val accuracy {best['val_accuracy']}); metrics say step {want['step']}")
step = int(h5py.File(f"{w}/kb/checkpoints/best.h5", "r").attrs["step"])
import os
expect(step == want["step"] and step < 60 and not os.path.exists(f"{w}/kb/checkpoints/ckpt-{step:09d}.h5"),
       f"best.h5 is the checkpoint of step {step}, whose ckpt file --keep-checkpoints 1 pruned")
m = re.search(r"val\s+loss ([0-9.]+)\s+accuracy ([0-9.]+)", open(f"{w}/kb-eval.log").read())
expect(m and abs(float(m.group(2)) - best["val_accuracy"]) < 1e-6,
       f"fpt eval of best.h5: val accuracy {m.group(2) if m else '?'} = best.json's")
b2 = json.load(open(f"{w}/kb2/checkpoints/best.json"))
expect(b2 == best, "interrupted at step 25 and resumed: the same best.json")
finish()
PY
[ $? -eq 0 ] && ok "keep-best checks" || bad "keep-best checks" "$W/kb.log"
# A checkpoint with a NaN weight is refused, not scored.
/usr/bin/python3 -c "
import shutil, sys, h5py, numpy as np
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], 'a') as f:
    w = f['params/out/weight'][...]; w[3, 1] = np.nan; f['params/out/weight'][...] = w" \
  "$W/kb/checkpoints/best.h5" "$W/nan-ckpt.h5"
expect_error "fpt eval of a checkpoint holding a NaN" "nan-ckpt.h5: dataset /params/out/weight holds a NaN or Inf (nan) at element 7" "$W/e-nan" -- \
  "$FPT" eval --model "$W/m.h5" --task bit-xor --eval-samples 64 --seed 2 --checkpoint "$W/nan-ckpt.h5"
# Early stopping: on the val loss (default) or on the val accuracy; the stop
# step is recomputed from the val lines (strictly better, or the patience
# count goes on), also across a resume, whose checkpoint carries both counts:
# es3 is es2 killed 5 steps before its stop, so that it resumes after its
# best evaluation with some of the patience used (a resume that forgot the
# accuracy's count stopped 3 evaluations after the resume instead).
es_args=(--task bit-xor --steps 400 --batch-size 16 --seed 1 --dropout 0 --log-every 50
  --eval-every 10 --eval-samples 32 --early-stop 3)
run es1 1 "${es_args[@]}"
run es2 1 "${es_args[@]}" --early-stop-on accuracy
es2_stop=$(/usr/bin/python3 -c "import json,sys; print(max(r['step'] for r in map(json.loads, open(sys.argv[1])) if r['split'] == 'val'))" "$W/es2/metrics.jsonl")
FPT_FAULT=step FPT_FAULT_AT=$((es2_stop - 5)) run es3 1 "${es_args[@]}" --early-stop-on accuracy \
  --checkpoint-every 10
check "es3's first attempt was killed (step $((es2_stop - 5)))" grep -q "fault injection: killed at step" "$W/es3.log"
run es3 1 "${es_args[@]}" --early-stop-on accuracy --checkpoint-every 10 --resume auto
expect_error "--early-stop-on of another metric" "option --early-stop-on: 'val' is not one of loss, accuracy" "$W/es-bad" -- \
  "$FPT" train --model "$W/m.h5" --task bit-xor --steps 3 --early-stop-on val
/usr/bin/python3 - "$W" <<'PY'
import json, sys
from checks import expect, finish
w = sys.argv[1]
def stop_step(vals, key, better, patience):
    best, since = None, 0
    for step, v in vals:
        if best is None or better(v[key], best):
            best, since = v[key], 0
        else:
            since += 1
        if since >= patience:
            return step
    return None
strip = lambda n: [(r["step"], r["split"], r["loss"], r["accuracy"], bool(r.get("final")))
                   for r in map(json.loads, open(f"{w}/{n}/metrics.jsonl")) if r["split"] != "run"]
expect(strip("es3") == strip("es2"), "es3 (killed after its best, resumed) has es2's metrics")
for name, key, better in (("es1", "loss", lambda a, b: a < b), ("es2", "accuracy", lambda a, b: a > b),
                          ("es3", "accuracy", lambda a, b: a > b)):
    rows = [json.loads(l) for l in open(f"{w}/{name}/metrics.jsonl")]
    vals = [(r["step"], r) for r in rows if r["split"] == "val" and not r.get("final")]
    last = max(r["step"] for r in rows if r["split"] in ("train", "val", "test"))
    want = stop_step(vals, key, better, 3)
    expect(want is not None and want < 400 and last == want,
           f"{name}: stopped at step {last}, 3 evaluations after the best val {key} (expected {want})")
finish()
PY
[ $? -eq 0 ] && ok "early-stop checks" || bad "early-stop checks" "$W/es2.log"
check "the early stop says which metric it watched" grep -q "no better validation accuracy for 3 evaluations" "$W/es2.log"
# --eval-test-at best: the same run, a test line only where the val accuracy is
# a new best (and the final one), each equal to the every-evaluation run's.
run tb-every 1 --task bit-xor --steps 400 --batch-size 16 --seed 1 --dropout 0 --log-every 50 \
  --eval-every 10 --eval-samples 32 --early-stop 3 --early-stop-on accuracy --eval-test true
run tb-best 1 --task bit-xor --steps 400 --batch-size 16 --seed 1 --dropout 0 --log-every 50 \
  --eval-every 10 --eval-samples 32 --early-stop 3 --early-stop-on accuracy --eval-test true --eval-test-at best
# --eval-test-at end: test only at the final evaluation and, once, on
# checkpoints/best.h5 at its step: the same numbers as the line the
# every-evaluation run wrote there.
run tb-end 1 --task bit-xor --steps 400 --batch-size 16 --seed 1 --dropout 0 --log-every 50 \
  --eval-every 10 --eval-samples 32 --early-stop 3 --early-stop-on accuracy --eval-test true --eval-test-at end \
  --keep-best true
expect_error "--eval-test-at of another kind" "option --eval-test-at: 'some' is not one of every, best, end" "$W/tb-bad" -- \
  "$FPT" train --model "$W/m.h5" --task bit-xor --steps 3 --eval-test true --eval-test-at some
expect_error "--eval-test-at end without --keep-best" "option --eval-test-at: end scores the test split on checkpoints/best.h5, which needs --keep-best true" "$W/tb-bad2" -- \
  "$FPT" train --model "$W/m.h5" --task bit-xor --steps 3 --eval-test true --eval-test-at end
/usr/bin/python3 - "$W" <<'PY'
import json, sys
w = sys.argv[1]
def lines(name, split):
    return {(r["step"], bool(r.get("final"))): (r["loss"], r["accuracy"])
            for r in map(json.loads, open(f"{w}/{name}/metrics.jsonl")) if r["split"] == split}
every, best = lines("tb-every", "val"), lines("tb-best", "val")
test_every, test_best = lines("tb-every", "test"), lines("tb-best", "test")
top, want = -1.0, set()
for (step, final), (_, acc) in sorted(every.items()):
    if final or acc > top:
        want.add((step, final))
    if not final:
        top = max(top, acc)
fails = []
if best != every:
    fails.append("the val lines differ from the every-evaluation run's")
if set(test_best) != want:
    fails.append(f"test lines at {sorted(test_best)}, expected {sorted(want)}")
if any(test_best[k] != test_every[k] for k in test_best if k in test_every):
    fails.append("a test line differs from the every-evaluation run's")
if len(want) >= len(every):
    fails.append("every evaluation improved: the case tests nothing")
end, test_end = lines("tb-end", "val"), lines("tb-end", "test")
best_step = max((k for k in want if not k[1]), default=None)
want_end = {k for k in want if k[1]} | ({best_step} if best_step else set())
if end != every:
    fails.append("end: the val lines differ from the every-evaluation run's")
if set(test_end) != want_end or len(want_end) != 2:
    fails.append(f"end: test lines at {sorted(test_end)}, expected {sorted(want_end)} (the best and the final)")
if any(test_end[k] != test_every.get(k) for k in test_end):
    fails.append("end: a test line differs from the every-evaluation run's")
print("FAIL: " + "; ".join(fails) if fails else f"ok: {len(test_best)} of {len(every)} evaluations tested")
sys.exit(1 if fails else 0)
PY
[ $? -eq 0 ] && ok "--eval-test-at best and end: test lines at the new bests (best) or the best only (end), and the final; the same numbers" || bad "--eval-test-at best/end" "$W/tb-end.log"
# Killed after the early stop's checkpoint, before its final lines (as a
# preemption during the final evaluation): the resume trains no further step
# and writes what the run would have written.
cp -r "$W/tb-end" "$W/tb-kill"
/usr/bin/python3 - "$W/tb-kill/metrics.jsonl" <<'PY'
import json, sys
rows = open(sys.argv[1]).read().splitlines(True)
last_val = max(i for i, l in enumerate(rows) if json.loads(l)["split"] == "val" and not json.loads(l).get("final"))
open(sys.argv[1], "w").writelines(rows[:last_val + 1])
PY
run tb-kill 1 --task bit-xor --steps 400 --batch-size 16 --seed 1 --dropout 0 --log-every 50 \
  --eval-every 10 --eval-samples 32 --early-stop 3 --early-stop-on accuracy --eval-test true --eval-test-at end \
  --keep-best true --resume auto
/usr/bin/python3 - "$W" <<'PY'
import json, sys
from checks import expect, finish
w = sys.argv[1]
strip = lambda n: [(r["step"], r["split"], r["loss"], r["accuracy"], bool(r.get("final")))
                   for r in map(json.loads, open(f"{w}/{n}/metrics.jsonl")) if r["split"] != "run"]
expect(strip("tb-kill") == strip("tb-end"), "killed before the final lines of an early stop: the resume writes the run's own lines")
finish()
PY
[ $? -eq 0 ] && ok "a resume at the early stop's checkpoint trains no further step" || bad "resume at the early stop" "$W/tb-kill.log"
check "the resume says the step was the early stop's" grep -q "is the early stop's: no further steps" "$W/tb-kill.log"
# A copy of a run that lost its best.h5 (best.json kept): resumed, it could not
# score the test split on its best weights at the end, so it stops at once,
# writing nothing.
cp -r "$W/tb-kill" "$W/tb-lost"
head -n -2 "$W/tb-kill/metrics.jsonl" > "$W/tb-lost/metrics.jsonl"
cp "$W/tb-lost/metrics.jsonl" "$W/tb-lost.before"
rm "$W/tb-lost/checkpoints/best.h5"
expect_error "a resume whose best.json has lost its best.h5" "tb-lost/checkpoints/best.h5: missing, but best.json beside it names step [0-9]* as the best val evaluation" "$W/tb-lost.err" -- \
  "$FPT" train --model "$W/m.h5" --run-dir "$W/tb-lost" --task bit-xor --steps 400 --batch-size 16 --seed 1 \
  --dropout 0 --eval-every 10 --eval-samples 32 --early-stop 3 --early-stop-on accuracy --eval-test true \
  --eval-test-at end --keep-best true --resume auto
check "... and writes nothing" cmp -s "$W/tb-lost.before" "$W/tb-lost/metrics.jsonl"
finish
