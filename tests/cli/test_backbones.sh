#!/usr/bin/env bash
# Backbone kinds end to end (issue 13): the paper's LN-LSTM and a bidirectional
# ViT-style encoder under mpirun, for every stage x replica layout; padding
# invisible to an encoder; fpt export across 1 and 2 stages (the exported
# tensors are the checkpoint's, and fpt train takes the file as a frozen
# backbone); fpt forward for every kind against the PyTorch reference; and
# one error line for every bad kind, attribute or shape.
set -uo pipefail
FPT=$1
W=$2
T=$(cd "$(dirname "$0")/../torch" && pwd)
source "$(dirname "$0")/lib.sh"
rm -rf "$W" && mkdir -p "$W"
PY=/usr/bin/python3
"$FPT" init --kind lstm --layers 3 --d-model 24 --seed 3 -o "$W/lstm.h5" > /dev/null || exit 1
"$FPT" init --layers 3 --d-model 32 --heads 4 --positions 512 --causal false --activation gelu \
  --seed 4 -o "$W/vit.h5" > /dev/null || exit 1
"$FPT" data listops --n-train 200 --n-val 24 --n-test 24 --seed 2 -o "$W/lo.h5" > "$W/lo.log" 2>&1 || { cat "$W/lo.log"; exit 1; }
"$FPT" data bit-memory --bit-length 40 --patch 8 --n-train 200 --n-val 24 --n-test 24 -o "$W/bm.h5" > /dev/null || exit 1

check "fpt init writes an LSTM file (kind, residual, the paper's eps)" \
  $PY -c "import h5py,sys; a=h5py.File('$W/lstm.h5').attrs; sys.exit(not (a['kind'] in (b'lstm','lstm') and a['residual']==0 and abs(a['layer_norm_epsilon']-1e-6)<1e-12 and 'lstm/2/ln_cell/weight' in h5py.File('$W/lstm.h5')))"
check "fpt init --causal false --activation gelu writes an encoder (eps 1e-6)" \
  $PY -c "import h5py,sys; a=h5py.File('$W/vit.h5').attrs; sys.exit(not (a['causal']==0 and a['activation'] in (b'gelu','gelu') and abs(a['layer_norm_epsilon']-1e-6)<1e-12))"

run() { # NAME STAGES REPLICAS MODEL DATA [ARGS...]
  local name=$1 S=$2 R=$3 model=$4 data=$5; shift 5
  OMP_NUM_THREADS=1 "$MPIRUN" -np $((S * R)) --oversubscribe "$FPT" train --model "$model" \
    --data "$data" --steps 12 --batch-size 8 --micro-batches 2 --stages "$S" --log-every 1 \
    --dropout 0.1 --run-dir "$W/$name" "$@" > "$W/$name.log" 2>&1
}
for lay in "1 1" "2 1" "1 2" "3 1" "2 2"; do
  set -- $lay
  run "lstm-s$1r$2" "$1" "$2" "$W/lstm.h5" "$W/bm.h5" --full-train true --lstm-state random
  run "lstmf-s$1r$2" "$1" "$2" "$W/lstm.h5" "$W/lo.h5" --readout last-real
  run "vit-s$1r$2" "$1" "$2" "$W/vit.h5" "$W/lo.h5"
done
$PY - "$W" <<'PY'
import json, sys
w = sys.argv[1]
ok = True
def rows(n):
    try:
        return [(r["split"], r["loss"]) for r in map(json.loads, open(f"{w}/{n}/metrics.jsonl")) if r["split"] != "run"]
    except OSError:
        return []
for kind, what in (("lstm", "LSTM, full training, random state, bit-memory"),
                   ("lstmf", "frozen LSTM, ListOps, last-real readout"),
                   ("vit", "bidirectional encoder, padded ListOps")):
    a = rows(f"{kind}-s1r1")
    for lay in ("s2r1", "s1r2", "s3r1", "s2r2"):
        b = rows(f"{kind}-{lay}")
        good = len(a) == 14 and [x[0] for x in a] == [x[0] for x in b]
        rel = max((abs(x[1] - y[1]) / abs(x[1]) for x, y in zip(a, b)), default=1) if good else 1
        good = good and rel < 1e-5
        ok &= good
        print(f"{'ok' if good else 'FAIL'}: {what}: {lay} vs s1r1, 12 steps + val + test, max relative loss difference {rel:.1e}")
sys.exit(0 if ok else 1)
PY
[ $? -eq 0 ] && ok "layout independence of the LSTM and the encoder" || bad "layout independence of the LSTM and the encoder"
check "the encoder reads the last real token by default (auto)" grep -q "readout 1 (last-real, pad keys masked or skipped)" "$W/vit-s1r1.log"

# Export across 1 and 2 stages: the file holds the checkpoint's trained
# tensors and the backbone's frozen ones, with its provenance.
"$FPT" export --run-dir "$W/lstm-s1r1" -o "$W/x1.h5" > "$W/x1.log" 2>&1
"$FPT" export --run-dir "$W/lstm-s2r1" -o "$W/x2.h5" > "$W/x2.log" 2>&1
"$FPT" export --run-dir "$W/lstmf-s3r1" -o "$W/x3.h5" > "$W/x3.log" 2>&1
$PY - "$W" <<'PY'
import h5py, numpy as np, sys
from checks import expect, finish
w = sys.argv[1]
def tensors(f):
    out = {}
    f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out
def ckpt(run):
    import glob
    c = sorted(glob.glob(f"{w}/{run}/checkpoints/ckpt-*.h5"))[-1]
    with h5py.File(c) as f:
        return tensors(f["params"])
x1, x2, x3 = (tensors(h5py.File(f"{w}/{n}.h5")) for n in ("x1", "x2", "x3"))
c1, c3 = ckpt("lstm-s1r1"), ckpt("lstmf-s3r1")
base = tensors(h5py.File(f"{w}/lstm.h5"))
expect(sorted(x1) == sorted(base), f"the export holds exactly the backbone's {len(base)} tensors")
expect(all(np.array_equal(x1[n], c1[n]) for n in base), "1 stage: every tensor equals the checkpoint's (full training)")
d = max(np.abs(x1[n] - x2[n]).max() / max(np.abs(x1[n]).max(), 1e-30) for n in base)
expect(d < 1e-5, f"2 stages: the export agrees with 1 stage within {d:.1e}")
trained = [n for n in base if "ln_" in n]
expect(all(np.array_equal(x3[n], c3[n]) for n in trained) and all(np.array_equal(x3[n], base[n]) for n in base if n not in trained),
       "frozen LSTM over 3 stages: LayerNorms from the checkpoint, i2h/h2h the original file's")
a = h5py.File(f"{w}/x2.h5").attrs
expect(a["kind"] in (b"lstm", "lstm") and int(a["source_step"]) == 12 and a["source_task"] in (b"bit-memory", "bit-memory")
       and 0 <= float(a["source_val_accuracy"]) <= 1 and "lstm-s2r1" in str(a["source_run"]),
       f"provenance: run {a['source_run']}, task {a['source_task']}, step {a['source_step']}, val accuracy {a['source_val_accuracy']:.3f}")
finish()
PY
[ $? -eq 0 ] && ok "fpt export across stage layouts" || bad "fpt export across stage layouts" "$W/x2.log"
run frozen-on-export 2 1 "$W/x2.h5" "$W/lo.h5" --steps 4
check "fpt train takes the exported LSTM as a frozen backbone" grep -q '"split":"test"' "$W/frozen-on-export/metrics.jsonl"
run train-export 2 1 "$W/vit.h5" "$W/lo.h5" --steps 4 --full-train true --export "$W/vit-trained.h5"
check "fpt train --export with 2 stages writes the trained encoder" \
  $PY -c "import h5py,sys; f=h5py.File('$W/vit-trained.h5'); sys.exit(not (f.attrs['causal']==0 and int(f.attrs['source_step'])==4))"

# fpt forward for every kind: /inputs_embeds -> /last_hidden_state against the
# independent PyTorch backbone (GPT-2 and encoders after ln_f, the LSTM's top h).
for k in lstm vit; do
  $PY - "$W" "$k" "$T" <<'PY'
import sys, h5py, numpy as np
w, k, t = sys.argv[1:4]
C = 24 if k == "lstm" else 32
with h5py.File(f"{w}/x-{k}.h5", "w") as f:
    f["inputs_embeds"] = np.random.default_rng(1).standard_normal((3, 9, C)).astype(np.float32)
PY
  "$FPT" forward --model "$W/$k.h5" --input "$W/x-$k.h5" -o "$W/y-$k.h5" > "$W/fwd-$k.log" 2>&1
  $PY - "$W" "$k" "$T" <<'PY'
import sys, h5py, numpy as np, torch
w, k, t = sys.argv[1:4]
sys.path.insert(0, t)
import fpt_torch
cfg, p = fpt_torch.load_model(f"{w}/{k}.h5")
x = torch.from_numpy(h5py.File(f"{w}/x-{k}.h5")["inputs_embeds"][()].astype(np.float64))
ref = fpt_torch.backbone(p, cfg, x).numpy()
got = h5py.File(f"{w}/y-{k}.h5")["last_hidden_state"][()]
err = np.abs(got - ref).max() / np.abs(ref).max()
print(f"fpt forward ({k}) vs the PyTorch reference: max error {err:.2e} relative to max |h|")
sys.exit(0 if got.shape == ref.shape and err < 1e-5 else 1)
PY
  [ $? -eq 0 ] && ok "fpt forward: $k against the reference" || bad "fpt forward: $k against the reference" "$W/fwd-$k.log"
done

# Bad input: one error line naming the file, attribute or option; no output.
$PY - "$W" <<'PY'
import h5py, numpy as np, shutil, sys
w = sys.argv[1]
def edit(src, dst, fn):
    shutil.copy(f"{w}/{src}.h5", f"{w}/{dst}.h5")
    with h5py.File(f"{w}/{dst}.h5", "a") as f:
        fn(f)
edit("lstm", "bad-kind", lambda f: f.attrs.__setitem__("kind", np.bytes_("rnn")))
edit("lstm", "lstm-missing", lambda f: f.__delitem__("lstm/1/h2h/weight"))
def reshape(f):
    del f["lstm/0/ln_cell/bias"]
    f["lstm/0/ln_cell/bias"] = np.zeros(25, np.float32)
edit("lstm", "lstm-shape", reshape)
edit("vit", "causal-str", lambda f: f.attrs.__setitem__("causal", np.bytes_("no")))
edit("vit", "causal-2", lambda f: f.attrs.__setitem__("causal", np.int64(2)))
edit("vit", "act-bad", lambda f: f.attrs.__setitem__("activation", np.bytes_("relu")))
edit("vit", "act-num", lambda f: f.attrs.__setitem__("activation", np.int64(1)))
edit("vit", "embd-frac", lambda f: f.attrs.__setitem__("n_embd", np.float64(32.7)))
PY
t1() { OMP_NUM_THREADS=1 "$MPIRUN" -np 2 --oversubscribe "$FPT" train --data "$W/lo.h5" --steps 1 --batch-size 4 --run-dir "$W/bad-run" "$@"; }
expect_error "unknown kind" "bad-kind.h5: attribute kind = \"rnn\" is not a backbone kind (gpt2, lstm)" "$W/e1" -- t1 --model "$W/bad-kind.h5"
expect_error "LSTM file missing a tensor" "lstm-missing.h5.*lstm/1/h2h/weight" "$W/e2" -- t1 --model "$W/lstm-missing.h5"
expect_error "LSTM tensor of the wrong shape" "lstm-shape.h5: dataset /lstm/0/ln_cell/bias has shape \[25\], expected \[24\]" "$W/e3" -- t1 --model "$W/lstm-shape.h5"
expect_error "causal of the wrong type" "causal-str.h5: attribute causal must be an integer" "$W/e4" -- t1 --model "$W/causal-str.h5"
expect_error "causal out of range" "causal-2.h5: attribute causal = 2 is out of range" "$W/e5" -- t1 --model "$W/causal-2.h5"
expect_error "unknown activation" "act-bad.h5: attribute activation = \"relu\" is not one of gelu_new, gelu" "$W/e6" -- t1 --model "$W/act-bad.h5"
expect_error "activation of the wrong type" "act-num.h5: attribute activation must be a string" "$W/e7" -- t1 --model "$W/act-num.h5"
expect_error "a fractional n_embd" "embd-frac.h5: attribute n_embd must be an integer" "$W/e8" -- t1 --model "$W/embd-frac.h5"
expect_error "more stages than LSTM layers" "4 pipeline stages but only 3 layers" "$W/e9" -- \
  env OMP_NUM_THREADS=1 "$MPIRUN" -np 4 --oversubscribe "$FPT" train --model "$W/lstm.h5" --data "$W/lo.h5" --stages 4 --batch-size 4 --steps 1 --run-dir "$W/bad-run"
expect_error "--lstm-state on a transformer" "option --lstm-state: .*vit.h5 has a gpt2 backbone, not an LSTM" "$W/e10" -- t1 --model "$W/vit.h5" --lstm-state random
expect_error "a readout of one position on a task that reads several" "option --readout: mean reads one position, but the task reads the last 5" "$W/e11" -- \
  "$FPT" train --model "$W/vit.h5" --task bit-xor --readout mean --steps 1 --run-dir "$W/bad-run"
expect_error "fpt export of a missing checkpoint" "nope.h5" "$W/e12" -- "$FPT" export --checkpoint "$W/nope.h5" -o "$W/nope-out.h5"
head -c 3000 "$(ls "$W"/lstm-s1r1/checkpoints/ckpt-*.h5 | tail -1)" > "$W/cut.h5"
expect_error "fpt export of a truncated checkpoint" "cut.h5" "$W/e13" -- "$FPT" export --checkpoint "$W/cut.h5" -o "$W/cut-out.h5"
expect_error "fpt export over its own backbone" "option -o: .*lstm.h5 is the backbone file" "$W/e14" -- "$FPT" export --run-dir "$W/lstm-s1r1" -o "$W/lstm.h5"
expect_error "fpt attention on an LSTM" "a lstm backbone has no attention maps" "$W/e15" -- "$FPT" attention --run-dir "$W/lstm-s1r1" --data "$W/bm.h5" -o "$W/att.h5"
expect_error "fpt init: --heads with --kind lstm" "option --heads: does not apply to --kind lstm" "$W/e16" -- "$FPT" init --kind lstm --heads 4 -o "$W/no.h5"
# Masked-byte pretraining (a bidirectional model on the same text corpus as
# fpt pretrain's causal models): it learns, 1 rank and 2 ranks agree, the
# export has the mask id in its token table; a causal model is refused.
$PY - "$W" <<'PY'
import random, sys
r = random.Random(7)
words = "the of and to in is was that for on with as by at from model data train step loss".split()
text = " ".join(r.choice(words) for _ in range(900_000)).encode()[:3_400_000]
open(f"{sys.argv[1]}/corpus.txt", "wb").write(text)
PY
"$FPT" data text --input "$W/corpus.txt" --seq 32 -o "$W/text.h5" > /dev/null || exit 1
"$FPT" init --layers 2 --d-model 32 --heads 4 --positions 32 --causal false --activation gelu -o "$W/enc.h5" > /dev/null
mlm() { # NAME NP [ARGS]
  local name=$1 np=$2; shift 2
  OMP_NUM_THREADS=1 "$MPIRUN" -np "$np" --oversubscribe "$FPT" pretrain --model "$W/enc.h5" --data "$W/text.h5" \
    --objective mlm --steps 60 --warmup 10 --batch-size 16 --log-every 10 --eval-every 30 --eval-limit 64 --run-dir "$W/$name" "$@" > "$W/$name.log" 2>&1
}
mlm mlm1 1 --export "$W/enc-mlm.h5"
mlm mlm2 2
$PY - "$W" <<'PY'
import json, math, sys, h5py
from checks import expect, finish
w = sys.argv[1]
rows = lambda n: [r for r in map(json.loads, open(f"{w}/{n}/metrics.jsonl")) if r["split"] != "run"]
a, b = rows("mlm1"), rows("mlm2")
tr = [r["loss"] for r in a if r["split"] == "train"]
expect(len(tr) == 6 and tr[0] < math.log(257) + 0.2 and tr[-1] < tr[0] - 0.5,
       f"masked-byte loss falls from {tr[0]:.3f} (ln 257 = {math.log(257):.3f}) to {tr[-1]:.3f}")
rel = max(abs(x["loss"] - y["loss"]) / x["loss"] for x, y in zip(a, b)) if len(a) == len(b) else 1
expect(len(a) == len(b) and rel < 1e-5, f"1 rank vs 2 ranks: max relative loss difference {rel:.1e}")
f = h5py.File(f"{w}/enc-mlm.h5")
expect(f["wte/weight"].shape == (257, 32) and f.attrs["causal"] == 0, "the export: an encoder with a 257-row token table (256 bytes + the mask id)")
finish()
PY
[ $? -eq 0 ] && ok "masked-byte pretraining" || bad "masked-byte pretraining" "$W/mlm1.log"
"$FPT" init --layers 2 --d-model 32 --heads 4 --positions 32 -o "$W/dec.h5" > /dev/null
expect_error "--objective mlm on a causal model" "option --objective mlm: .*dec.h5 is a causal model" "$W/e17" -- \
  "$FPT" pretrain --model "$W/dec.h5" --data "$W/text.h5" --objective mlm --steps 1 --run-dir "$W/bad-run"
expect_error "--objective in fpt train" "option --objective: fpt train does not take it (fpt pretrain does)" "$W/e18" -- \
  "$FPT" train --model "$W/dec.h5" --task bit-xor --objective mlm --steps 1 --run-dir "$W/bad-run"
check "no output file from any failed command" eval '! ls "$W"/nope-out.h5 "$W"/cut-out.h5 "$W"/att.h5 "$W"/no.h5 2>/dev/null | grep -q .'
check "the backbone survived the refused export" cmp -s "$W/lstm.h5" "$W/lstm.h5"
finish
