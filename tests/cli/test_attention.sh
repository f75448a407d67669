#!/usr/bin/env bash
# fpt attention: the dumped attention maps of checkpoints from short `fpt train`
# runs against an independent PyTorch computation (tests/torch/attention_ref.py:
# torch.nn.MultiheadAttention, float64; max abs error < 1e-5, rows sum to 1,
# exact zeros above the diagonal, predictions, targets); the rebuilt model's
# accuracy equals the run's own final val/test accuracy (also for a random
# frozen backbone and a frozen input layer, which only the seed reproduces);
# bad input (one error line, nonzero exit, no output); and
# analysis/plot_attention.py: a PNG, and its summary number against one
# computed here on a hand-made ATT.h5.
set -uo pipefail
FPT=$1
W=$2
HERE=$(cd "$(dirname "$0")" && pwd)
REF=$HERE/../torch/attention_ref.py
PLOT=$HERE/../../analysis/plot_attention.py
source "$HERE/lib.sh"
rm -rf "$W" && mkdir -p "$W"
export OMP_NUM_THREADS=1
"$FPT" init --layers 2 --d-model 16 --heads 2 --positions 16 --seed 3 -o "$W/m.h5" > /dev/null || exit 1
"$FPT" init --layers 2 --d-model 16 --heads 2 --positions 16 --seed 4 -o "$W/other.h5" > /dev/null || exit 1
"$FPT" data bit-xor --n-train 64 --n-val 12 --n-test 10 --seed 2 -o "$W/bits.h5" > /dev/null || exit 1

train() { # train NAME ARGS...
  local name=$1; shift
  "$MPIRUN" -np 1 "$FPT" train --model "$W/m.h5" --run-dir "$W/$name" --log-every 10 \
    --batch-size 4 --seed 7 "$@" > "$W/$name.log" 2>&1 || { bad "fpt train $name" "$W/$name.log"; }
}
train xor --task bit-xor --steps 30 --eval-samples 24 --data-seed 11
train file --data "$W/bits.h5" --steps 20 --full-train true --init stats
train mem --task bit-memory --bit-length 8 --patch 2 --patterns 2 --steps 10 --eval-samples 6
train rnd --task bit-xor --steps 20 --eval-samples 24 --init random --freeze-in true

att() { # att NAME ARGS... -> $W/NAME.h5
  local name=$1; shift
  "$FPT" attention "$@" -o "$W/$name.h5" > "$W/$name.log" 2>&1 || bad "fpt attention $name" "$W/$name.log"
}
compare() { # compare NAME [--data FILE]: the torch reference on $W/NAME.h5
  local name=$1; shift
  if "$REF" "$W/$name.h5" "$@" > "$W/$name.ref" 2>&1; then
    ok "$name: $(grep -o 'max abs error [^(]*' "$W/$name.ref"); $(grep -c '^ok' "$W/$name.ref") checks"
  else
    bad "$name: torch reference" "$W/$name.ref"
  fi
}
# Generated bit-xor, the run's test stream (its --data-seed), every layer.
att xor --model "$W/m.h5" --run-dir "$W/xor" --task bit-xor --samples 24
compare xor
# A dataset file's val split, only the last block (which training runs on the
# readout rows alone); full training with the stats init.
att file --run-dir "$W/file" --data "$W/bits.h5" --split val --samples 12 --layers 1
compare file --data "$W/bits.h5"
# bit-memory: 2-bit tokens, K = 8 targets over r = 4 readout rows; a named checkpoint.
att mem --checkpoint "$W/mem/checkpoints/ckpt-000000010.h5" --task bit-memory --samples 6 --layers 1,0
compare mem

# The same model as training built: accuracy on the run's own test and val sets
# equals the final accuracies in metrics.jsonl.
att rnd --run-dir "$W/rnd" --task bit-xor --samples 24
att rnd-val --run-dir "$W/rnd" --task bit-xor --samples 24 --split val
att xor-val --run-dir "$W/xor" --task bit-xor --samples 24 --split val
/usr/bin/python3 - "$W" <<'PY'
import h5py, json, sys
w = sys.argv[1]
ok = True
for run, split, dump in (("xor", "test", "xor"), ("xor", "val", "xor-val"),
                         ("rnd", "test", "rnd"), ("rnd", "val", "rnd-val")):
    final = [json.loads(l) for l in open(f"{w}/{run}/metrics.jsonl")]
    want = [r["accuracy"] for r in final if r.get("final") and r["split"] == split][0]
    got = float(h5py.File(f"{w}/{dump}.h5", "r").attrs["accuracy"])
    good = abs(got - want) < 1e-12
    ok &= good
    print(f"{'ok' if good else 'FAIL'}: run {run} ({'random frozen backbone, frozen input layer' if run == 'rnd' else 'pretrained'}): "
          f"{split} accuracy {got:.6f}, fpt train's final {want:.6f}")
sys.exit(0 if ok else 1)
PY
[ $? -eq 0 ] && ok "accuracy equals the training run's" || bad "accuracy equals the training run's"

# Bad input: one error line, nonzero exit, no output.
A=(--run-dir "$W/xor" --task bit-xor)
expect_error "missing checkpoint" "$W/nope.h5: cannot open" "$W/e1" -- "$FPT" attention --checkpoint "$W/nope.h5" --task bit-xor -o "$W/bad.h5"
mkdir -p "$W/empty"
expect_error "run without checkpoints" "option --run-dir: $W/empty has no complete checkpoint" "$W/e2" -- "$FPT" attention --run-dir "$W/empty" --task bit-xor -o "$W/bad.h5"
expect_error "other task shape (dataset file)" "/params/out/weight is \[16, 4\] but the task needs \[16, 2\]" "$W/e3" -- "$FPT" attention --run-dir "$W/mem" --data "$W/bits.h5" -o "$W/bad.h5"
expect_error "other generated task" "trained on the generated task bit-memory, not bit-xor (option --task)" "$W/e4" -- "$FPT" attention --run-dir "$W/mem" --task bit-xor -o "$W/bad.h5"
expect_error "layer out of range" "option --layers: block 2 is not in 0..1" "$W/e5" -- "$FPT" attention "${A[@]}" --layers 0,2 -o "$W/bad.h5"
expect_error "layers not a list" "option --layers: '0;1' is not" "$W/e6" -- "$FPT" attention "${A[@]}" --layers "0;1" -o "$W/bad.h5"
expect_error "N < 1" "option --samples: must be >= 1" "$W/e7" -- "$FPT" attention "${A[@]}" --samples 0 -o "$W/bad.h5"
expect_error "N > split" "option --samples: 11, but $W/bits.h5 has 10 test samples" "$W/e8" -- "$FPT" attention --run-dir "$W/file" --data "$W/bits.h5" --samples 11 -o "$W/bad.h5"
expect_error "other backbone" "made with backbone .* but --model $W/other.h5 has checksum" "$W/e9" -- "$FPT" attention "${A[@]}" --model "$W/other.h5" -o "$W/bad.h5"
expect_error "bad split" "option --split: 'train' is not val or test" "$W/e10" -- "$FPT" attention "${A[@]}" --split train -o "$W/bad.h5"
expect_error "no output file" "option -o/--out" "$W/e11" -- "$FPT" attention "${A[@]}"
expect_error "2 ranks" "runs in one process" "$W/e12" -- "$MPIRUN" -np 2 --oversubscribe "$FPT" attention "${A[@]}" -o "$W/bad.h5"
check "no output and no temporary files left" test -z "$(find "$W" -name 'bad.h5*')"

# The figure: runs, writes a PNG, prints the summary.
if "$PLOT" "$W/xor.h5" -o "$W/fig.png" --samples 3 > "$W/plot.log" 2>&1 &&
   [ "$(head -c 8 "$W/fig.png" | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ] &&
   grep -q "same-index bits" "$W/plot.log"; then
  ok "plot_attention.py: PNG written; $(grep same-index "$W/plot.log")"
else
  bad "plot_attention.py on a dump" "$W/plot.log"
fi
# The summary number on a hand-made ATT.h5 (layer 0 stored second), computed
# here with plain loops: mean over samples and output positions i of the
# head-averaged attention of query 5+i on tokens i and 5+i; uniform 2/(q+1).
/usr/bin/python3 - "$W" "$PLOT" <<'PY'
import h5py, re, subprocess, sys
import numpy as np
w, plot = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(5)
N, NH, T, r = 3, 2, 10, 5
att = np.zeros((N, 2, NH, T, T), np.float32)
for s in range(N):
    for l in range(2):
        for h in range(NH):
            for q in range(T):
                row = rng.random(q + 1) ** 3
                att[s, l, h, q, :q + 1] = row / row.sum()
with h5py.File(f"{w}/hand.h5", "w") as f:
    f["attention"] = att
    f["layers"] = np.array([1, 0], np.int32)
    f["inputs"] = rng.integers(0, 2, (N, T, 1)).astype(np.float32)
    f["targets"] = np.zeros((N, r), np.int32)
    f["predictions"] = np.zeros((N, r), np.int32)
    f.attrs["task"] = "bit-xor"
    f.attrs["readout"] = np.int64(r)
total, count = 0.0, 0
for s in range(N):
    for i in range(r):
        q = T - r + i
        total += sum(float(att[s, 1, h, q, i]) + float(att[s, 1, h, q, i + r]) for h in range(NH)) / NH
        count += 1
want = total / count
uniform = sum(2.0 / (T - r + i + 1) for i in range(r)) / r
out = subprocess.run([plot, f"{w}/hand.h5", "-o", f"{w}/hand.png", "--layer", "0"],
                     capture_output=True, text=True)
m = re.search(r"same-index bits ([0-9.]+) \(uniform over the visible tokens ([0-9.]+)", out.stdout)
good = out.returncode == 0 and m and abs(float(m[1]) - want) < 2e-6 and abs(float(m[2]) - uniform) < 2e-6
print(("ok" if good else "FAIL") + f": summary on a hand-made ATT.h5: {m[1] if m else out.stdout + out.stderr} "
      f"(computed here {want:.6f}), uniform {m[2] if m else '?'} (here {uniform:.6f})")
sys.exit(0 if good else 1)
PY
[ $? -eq 0 ] && ok "plot summary number" || bad "plot summary number"
# fpt bench --attention: the fused and the stored-map kernels train the same
# model to the same loss (float rounding); an unknown kernel is refused.
B=(bench --layers 2 --d-model 32 --heads 2 --seq 40 --batch-size 2 --d-in 4 --steps 3 --warmup 0)
l_stored=$("$FPT" "${B[@]}" --attention stored 2>&1 | sed -n 's/.*last loss \([0-9.]*\).*/\1/p')
l_fused=$("$FPT" "${B[@]}" --attention fused 2>&1 | sed -n 's/.*last loss \([0-9.]*\).*/\1/p')
check "bench: fused and stored attention give the same loss ($l_fused, $l_stored)" \
  /usr/bin/python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(a - b) > 2e-4 * abs(b))" "$l_fused" "$l_stored"
expect_error "bench: an unknown --attention" "option --attention: 'flash' is not auto, fused or stored" "$W/ebench" -- \
  "$FPT" "${B[@]}" --attention flash
finish
