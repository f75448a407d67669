#!/usr/bin/env bash
# fpt data text and fpt pretrain end to end: the byte windows and the held-out
# blocks re-derived from the raw files by an independent Python reader; bad
# inputs; a tiny byte-level GPT-2 learns; the learning-rate schedule; --export
# writes a model file (backbone + wte) that fpt train accepts; errors for a
# non-text dataset and for --stages 2; 1 rank vs 2 ranks; a killed and resumed
# run is bit-identical to an uninterrupted one.
set -uo pipefail
FPT=$1
W=$2
source "$(dirname "$0")/lib.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rm -rf "$W" && mkdir -p "$W"
PY=/usr/bin/python3

# Deterministic pseudo-English with some multi-byte UTF-8 (bytes >= 128), in
# two files: 2.0 MB + 1.5 MB, so that the 50th 64 KiB block (test) is reached.
$PY - "$W" <<'PY'
import random, sys
w = sys.argv[1]
words = ("the of and to in is was that for on with as by at from his her this which model data "
         "train step loss layer token stage rank batch file value table quick brown fox jumps over "
         "lazy dog north south river stone light night café naïve über — ∑").split()
def make(path, nbytes, seed):
    r = random.Random(seed)
    out, n = [], 0
    while n < nbytes:
        s = " ".join(r.choice(words) for _ in range(r.randint(4, 14)))
        s = s[0].upper() + s[1:] + r.choice(".!?") + ("\n" if r.random() < 0.3 else " ")
        b = s.encode()
        out.append(b)
        n += len(b)
    open(path, "wb").write(b"".join(out)[:nbytes])
make(f"{w}/a.txt", 2_000_000, 1)
make(f"{w}/b.txt", 1_500_000, 2)
make(f"{w}/short.txt", 3_200_000, 3)  # reaches the validation block, not the test block
make(f"{w}/tiny.txt", 1000, 4)
open(f"{w}/empty.txt", "wb").close()
PY

# --- fpt data text: every split re-derived from the raw bytes ---
if "$FPT" data text --input "$W/a.txt,$W/b.txt" --seq 32 -o "$W/t.h5" > "$W/data.log" 2>&1; then
  ok "fpt data text: $(tail -1 "$W/data.log")"
else
  bad "fpt data text" "$W/data.log"
fi
$PY - "$W" <<'PY'
import sys, h5py, numpy as np
from checks import expect, finish
w = sys.argv[1]
T, BLOCK, BLOCKS = 32, 65536, 50
stream = np.frombuffer(open(f"{w}/a.txt", "rb").read() + b"\n" + open(f"{w}/b.txt", "rb").read() + b"\n",
                       dtype=np.uint8)
n = (len(stream) - 1) // T  # windows of T+1 bytes at stride T
starts = np.arange(n) * T
block = (starts // BLOCK) % BLOCKS
split = np.where(block == BLOCKS - 2, 1, np.where(block == BLOCKS - 1, 2, 0))
with h5py.File(f"{w}/t.h5", "r") as f:
    a = f.attrs
    expect(a["task"] in ("text", b"text") and int(a["vocab"]) == 256 and int(a["n_classes"]) == 256
           and int(a["seq"]) == T and int(a["K"]) == T and int(a["r"]) == T and int(a["d_in"]) == 0,
           "attributes: task text, vocab 256, n_classes 256, seq = K = r = 32")
    for k, name in enumerate(("train", "val", "test")):
        w_k = np.nonzero(split == k)[0]
        x = w_k[:, None] * T + np.arange(T)[None, :]
        ex, ey = stream[x].astype(np.int32), stream[x + 1].astype(np.int32)
        g = f[name]
        gx, gy, gi = g["x"][()], g["y"][()], g["index"][()]
        expect(gx.dtype == np.int32 and gy.dtype == np.int32, f"{name}: x and y are int32")
        expect(gx.shape == ex.shape and np.array_equal(gx, ex), f"{name}: x = bytes [i*T, i*T+T) of {len(w_k)} windows")
        expect(gy.shape == ey.shape and np.array_equal(gy, ey), f"{name}: y = the next bytes")
        expect(np.array_equal(gi, w_k), f"{name}: index = the window numbers")
    expect(int(f["val"]["x"].shape[0]) == 2048 and int(f["test"]["x"].shape[0]) == 2048,
           "val and test: one 64 KiB block (2048 windows) each")
    expect(f["train"]["x"][()].max() >= 128, "bytes >= 128 (UTF-8) kept as 128..255")
finish()
PY
[ $? -eq 0 ] && ok "text windows, targets, indices and splits re-derived from the raw bytes" ||
  bad "text windows re-derived from the raw bytes"

# Bad inputs: one error line, nonzero exit, no output (not even a temporary file).
mkdir -p "$W/err"
expect_error "data text: missing input file" "nope.txt: cannot open" "$W/e1" -- \
  "$FPT" data text --input "$W/a.txt,$W/nope.txt" --seq 32 -o "$W/err/o.h5"
expect_error "data text: empty file" "empty.txt: empty file" "$W/e2" -- \
  "$FPT" data text --input "$W/empty.txt" --seq 32 -o "$W/err/o.h5"
expect_error "data text: 1 kB gives no val windows" "1001 bytes give no val windows" "$W/e3" -- \
  "$FPT" data text --input "$W/tiny.txt" --seq 32 -o "$W/err/o.h5"
expect_error "data text: 3.2 MB reaches val but not test" "3200001 bytes give no test windows" "$W/e4" -- \
  "$FPT" data text --input "$W/short.txt" --seq 32 -o "$W/err/o.h5"
expect_error "data text: no --input" "--input" "$W/e5" -- "$FPT" data text --seq 32 -o "$W/err/o.h5"
check "no output file left behind by the failures" test -z "$(ls -A "$W/err")"

# --- fpt pretrain ---
"$FPT" init --layers 2 --d-model 32 --heads 2 --positions 64 --seed 3 -o "$W/m.h5" > /dev/null || exit 1
run() { # NAME NP [ARGS...]
  local name=$1 np=$2; shift 2
  OMP_NUM_THREADS=1 "$MPIRUN" -np "$np" --oversubscribe "$FPT" pretrain --model "$W/m.h5" \
    --data "$W/t.h5" --steps 40 --batch-size 8 --warmup 5 --log-every 1 --eval-every 20 --eval-test true \
    --checkpoint-every 10 --run-dir "$W/$name" "$@" >> "$W/$name.log" 2>&1
}
run ref 1 --export "$W/lm.h5"
check "pretrain ran and exported a model file" test -s "$W/ref/metrics.jsonl" -a -s "$W/lm.h5"
check "pretrain trains every weight" grep -qE " ([0-9]+) parameters, \1 trainable" "$W/ref.log"
$PY - "$W" <<'PY'
import json, math, sys
from checks import expect, finish
w = sys.argv[1]
rows = [r for r in map(json.loads, open(f"{w}/ref/metrics.jsonl")) if r["split"] != "run"]
cfg = {k: v.strip().strip('"') for k, v in (l.split(": ", 1) for l in open(f"{w}/ref/config.yaml") if ": " in l)}
train = [r for r in rows if r["split"] == "train"]
expect(cfg.get("init") == "random" and cfg.get("full_train") == "true" and float(cfg.get("dropout", 1)) == 0
       and cfg.get("lr_schedule") == "cosine" and float(cfg.get("lr", 0)) == 1e-3,
       f"pretrain defaults: init random, full_train, dropout 0, cosine, lr 1e-3 ({cfg.get('init')}, "
       f"{cfg.get('full_train')}, {cfg.get('dropout')}, {cfg.get('lr_schedule')}, {cfg.get('lr')})")
first, last = train[0]["loss"], sum(r["loss"] for r in train[-5:]) / 5
expect(abs(first - math.log(256)) < 0.15, f"first loss {first:.3f} ~ ln 256 = {math.log(256):.3f} (GPT-2 init)")
expect(first - last > 0.6, f"training loss falls: {first:.3f} -> {last:.3f} (last 5 steps)")
val = {r["step"]: r["loss"] for r in rows if r["split"] == "val"}
test = {r["step"]: r["loss"] for r in rows if r["split"] == "test"}
expect(sorted(val) == [20, 40] and sorted(test) == [20, 40], "--eval-test: val and test at step 20 and at the end")
expect(val[40] < val[20] < math.log(256) - 0.3, f"val loss falls: {val[20]:.3f} -> {val[40]:.3f}")
# Learning rate: warm-up 5 steps, cosine from 1e-3 to 1e-4 over 40 steps.
lr = lambda s: 1e-3 * min(1.0, (s + 1) / 5) * (0.1 + 0.45 * (1 + math.cos(math.pi * s / 40)))
err = max(abs(r["lr"] - lr(r["step"] - 1)) / lr(r["step"] - 1) for r in train)
expect(len(train) == 40 and err < 1e-9, f"lr follows warm-up + cosine at every step (max rel. err {err:.1e})")
finish()
PY
[ $? -eq 0 ] && ok "pretrain learns; defaults, schedule, evaluations" || bad "pretrain learns" "$W/ref.log"

# The exported file: GPT-2's tensors (backbone + wte), bit-equal to the final
# checkpoint's parameters, and trained away from the init.
$PY - "$W" <<'PY'
import sys, h5py, numpy as np
w = sys.argv[1]
names = []
with h5py.File(f"{w}/lm.h5", "r") as f, h5py.File(f"{w}/ref/checkpoints/ckpt-000000040.h5", "r") as c, \
     h5py.File(f"{w}/m.h5", "r") as m:
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    want = ["wte/weight", "wpe/weight", "ln_f/weight", "ln_f/bias"] + [
        f"h/{i}/{t}" for i in range(2) for t in ("ln_1/weight", "ln_1/bias", "attn/c_attn/weight", "attn/c_attn/bias",
        "attn/c_proj/weight", "attn/c_proj/bias", "ln_2/weight", "ln_2/bias", "mlp/c_fc/weight", "mlp/c_fc/bias",
        "mlp/c_proj/weight", "mlp/c_proj/bias")]
    ok = sorted(names) == sorted(want)
    print(("ok" if ok else "FAIL") + f": datasets are GPT-2's: {sorted(set(names) ^ set(want)) or 'exactly'}")
    good = f["wte/weight"].shape == (256, 32) and f["wpe/weight"].shape == (64, 32) and \
        f["h/1/mlp/c_fc/weight"].shape == (32, 128)
    print(("ok" if good else "FAIL") + f": wte {f['wte/weight'].shape}, wpe {f['wpe/weight'].shape}")
    ok &= good
    attrs = {k: int(f.attrs[k]) for k in ("n_layer", "n_head", "n_embd", "n_positions")}
    good = attrs == {"n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 64}
    print(("ok" if good else "FAIL") + f": attributes {attrs}")
    ok &= good
    same = [n for n in names if np.array_equal(f[n][()], c["params/" + n][()])]
    good = len(same) == len(names)
    print(("ok" if good else "FAIL") + f": {len(same)}/{len(names)} tensors bit-equal to the final checkpoint")
    ok &= good
    moved = [n for n in names if n != "wte/weight" and not np.array_equal(f[n][()], m[n][()])]
    good = len(moved) == len(names) - 1
    print(("ok" if good else "FAIL") + f": {len(moved)}/{len(names) - 1} backbone tensors differ from the --model file")
    ok &= good
    sd = float(np.std(f["wte/weight"][()]))
    good = 0.01 < sd < 0.1
    print(("ok" if good else "FAIL") + f": wte std {sd:.4f} (N(0, 0.02) init, 40 steps of lr <= 1e-3)")
    ok &= good
sys.exit(0 if ok else 1)
PY
[ $? -eq 0 ] && ok "exported model file: backbone + wte, the trained values" || bad "exported model file"

# The export is a model file for fpt train; --eval-test scores test at every evaluation.
OMP_NUM_THREADS=1 "$MPIRUN" -np 1 "$FPT" train --model "$W/lm.h5" --task bit-xor --steps 2 --batch-size 4 \
  --eval-every 1 --eval-test true --log-every 1 --run-dir "$W/ft" > "$W/ft.log" 2>&1
rc=$?
check "fpt train --model EXPORT --task bit-xor: exit $rc" test "$rc" -eq 0
check "fpt train --eval-test true: test scored at step 1 and at the end" \
  test "$(grep -c '"split":"test"' "$W/ft/metrics.jsonl" 2>/dev/null)" -eq 2

# Continuing from the export (--init pretrained) keeps its token table: the
# first loss is the exported model's last one, not a fresh table's (~ln 256).
OMP_NUM_THREADS=1 "$MPIRUN" -np 1 "$FPT" pretrain --model "$W/lm.h5" --init pretrained --data "$W/t.h5" \
  --steps 2 --batch-size 8 --log-every 1 --lr 1e-9 --warmup 0 --run-dir "$W/cont" > "$W/cont.log" 2>&1
/usr/bin/python3 - "$W/ref/metrics.jsonl" "$W/cont/metrics.jsonl" <<'PY'
import json, sys
tr = lambda p: [o["loss"] for o in map(json.loads, open(p)) if o["split"] == "train"]
last, first = tr(sys.argv[1])[-1], tr(sys.argv[2])[0]
good = abs(first - last) < 0.3
print(("ok" if good else "FAIL") + f": continuing from the export starts at loss {first:.3f} (export ended at {last:.3f})")
sys.exit(0 if good else 1)
PY
[ $? -eq 0 ] && ok "pretrain --init pretrained loads the exported wte" || bad "pretrain --init pretrained loads the exported wte" "$W/cont.log"

# Errors: a non-text dataset, no dataset, a pipeline.
"$FPT" data bit-xor --n-train 50 --n-val 10 --n-test 10 -o "$W/xor.h5" > /dev/null
expect_error "pretrain on a bit-xor dataset" "xor.h5: fpt pretrain needs a text dataset" "$W/e6" -- \
  "$MPIRUN" -np 1 "$FPT" pretrain --model "$W/m.h5" --data "$W/xor.h5" --steps 2 --run-dir "$W/bad1"
expect_error "pretrain without --data" "fpt pretrain needs a text dataset" "$W/e7" -- \
  "$MPIRUN" -np 1 "$FPT" pretrain --model "$W/m.h5" --steps 2 --run-dir "$W/bad2"
expect_error "pretrain --stages 2 under mpirun -np 2" "option --stages: fpt pretrain ties" "$W/e8" -- \
  "$MPIRUN" -np 2 --oversubscribe "$FPT" pretrain --model "$W/m.h5" --data "$W/t.h5" --stages 2 \
  --batch-size 8 --steps 2 --run-dir "$W/bad3"

# Layout: 2 data-parallel ranks; killed at step 25, resumed from step 20.
run two 2
FPT_FAULT=step FPT_FAULT_AT=25 run res 1 --export "$W/lm-res.h5"
check "fault run died before the end, its newest checkpoint is step 20" \
  test "$(cat "$W/res/checkpoints/latest" 2>/dev/null)" = ckpt-000000020.h5 -a ! -e "$W/lm-res.h5"
run res 1 --export "$W/lm-res.h5" --resume auto
check "resumed from step 20" grep -q "resume: .*ckpt-000000020.h5 (step 20)" "$W/res.log"
$PY - "$W" <<'PY'
import json, sys, h5py, numpy as np
w = sys.argv[1]
load = lambda n: [(r["step"], r["split"], r["loss"], r["accuracy"]) for r in map(json.loads, open(f"{w}/{n}/metrics.jsonl")) if r["split"] != "run"]
ref, two, res = load("ref"), load("two"), load("res")
ok = len(ref) == 44 and [r[:2] for r in two] == [r[:2] for r in ref]
rel = max(abs(a[2] - b[2]) / abs(a[2]) for a, b in zip(ref, two)) if ok else float("inf")
good = ok and rel < 1e-5
print(("ok" if good else "FAIL") + f": 1 rank vs 2 ranks: {len(two)} lines, max relative loss difference {rel:.2e} (tol 1e-5)")
same = res == ref
print(("ok" if same else "FAIL") + f": killed at step 25 and resumed: metrics bit-identical ({len(res)} lines)")
with h5py.File(f"{w}/lm.h5") as a, h5py.File(f"{w}/lm-res.h5") as b:
    names = []
    a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    bits = all(np.array_equal(a[n][()], b[n][()]) for n in names)
print(("ok" if bits else "FAIL") + ": the resumed run exports bit-identical tensors")
sys.exit(0 if good and same and bits else 1)
PY
[ $? -eq 0 ] && ok "layout independence and exact resume" || bad "layout independence and exact resume"
finish
