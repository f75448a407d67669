#!/usr/bin/env bash
# Bad model files and options: one clear error line naming the file and the
# dataset, a nonzero exit on every rank, and no partial output.
set -uo pipefail
FPT=$1
W=$2
source "$(dirname "$0")/lib.sh"
rm -rf "$W" && mkdir -p "$W"
/usr/bin/python3 "$(dirname "$0")/make_bad_models.py" "$W" || exit 1

train() { "$FPT" train --task bit-xor --steps 2 --batch-size 4 --run-dir "$W/run" "$@"; }
expect_error "missing file" "$W/nope.h5: cannot open" "$W/e1" -- train --model "$W/nope.h5"
expect_error "not HDF5" "$W/text.h5: not an HDF5 file" "$W/e2" -- train --model "$W/text.h5"
expect_error "truncated" "$W/truncated.h5" "$W/e3" -- train --model "$W/truncated.h5"
expect_error "missing dataset" "missing.h5: dataset /h/1/mlp/c_fc/weight is missing" "$W/e4" -- train --model "$W/missing.h5"
expect_error "wrong shape" "shape.h5: dataset /h/0/attn/c_attn/weight has shape \[17, 48\], expected \[16, 48\]" "$W/e5" -- train --model "$W/shape.h5"
expect_error "wrong dtype" "dtype.h5: dataset /h/0/ln_1/bias must be float32" "$W/e6" -- train --model "$W/dtype.h5"
expect_error "heads do not divide" "heads.h5: n_embd (16) is not divisible by n_head (3)" "$W/e7" -- train --model "$W/heads.h5"
expect_error "NaN weight" "nan.h5: dataset /h/1/attn/c_proj/weight holds a NaN" "$W/e8" -- train --model "$W/nan.h5"
expect_error "unknown option" "unknown option '--bogus'" "$W/e9" -- train --model "$W/good.h5" --bogus 1
expect_error "bad number" "option --lr: 'fast' is not a finite number" "$W/e10" -- train --model "$W/good.h5" --lr fast
printf 'steps: 2\nlr: 0.1\nsteps: 3\n' > "$W/dup.yaml" # found by fuzzing (tests/fuzz): a YAML key given twice
expect_error "YAML: a key given twice" "dup.yaml:3: key steps appears twice" "$W/e9b" -- train --model "$W/good.h5" --config "$W/dup.yaml"
printf 'lr: &x 0.5\nsteps: *x\nseed: 3\n' > "$W/alias.yaml" # tests/fuzz: the alias was skipped
expect_error "YAML: an alias" "alias.yaml:2: key steps: aliases (\*name) are not allowed" "$W/e9c" -- train --model "$W/good.h5" --config "$W/alias.yaml"
expect_error "too many tokens" "bit-memory.*n_positions\|n_positions is 16" "$W/e11" -- train --model "$W/good.h5" --task bit-memory
LONG=$W/$(printf 'd%.0s' $(seq 200))
LONG=$LONG/$(basename "$LONG")/$(basename "$LONG")/$(basename "$LONG")/$(basename "$LONG")/$(basename "$LONG")
expect_error "a 1300-character path keeps the reason at the end of the message" "/m.h5: cannot open" "$W/e11b" -- train --model "$LONG/$(basename "$LONG")/$(basename "$LONG")/m.h5"
expect_error "a batch that cannot fit in memory names the options" "options --batch-size 16000000, --micro-batches 1: .* GB of activations per rank, but this rank may use" "$W/e11c" -- train --model "$W/good.h5" --batch-size 16000000
expect_error "forward: missing input" "$W/none.h5: cannot open" "$W/e12" -- "$FPT" forward --model "$W/good.h5" --input "$W/none.h5" -o "$W/y.h5"
check "forward: no partial output" test ! -e "$W/y.h5"
/usr/bin/python3 -c "
import sys, h5py, numpy as np
n = int(h5py.File(sys.argv[1], 'r').attrs['n_embd'])
x = np.zeros((2, 4, n), np.float32); x[1, 2, 0] = np.inf
h5py.File(sys.argv[2], 'w')['inputs_embeds'] = x" "$W/good.h5" "$W/inf.h5"
expect_error "forward: a non-finite input" "inf.h5: dataset /inputs_embeds holds a NaN or Inf (inf) at element" "$W/e12b" -- "$FPT" forward --model "$W/good.h5" --input "$W/inf.h5" -o "$W/y.h5"
check "  ... and no output" test ! -e "$W/y.h5"
expect_error "forward: -o is the input" "option -o: $W/inf.h5 is an input" "$W/e12c" -- "$FPT" forward --model "$W/good.h5" --input "$W/inf.h5" -o "$W/inf.h5"
expect_error "init: bad heads" "n_embd (16) is not divisible by n_head (3)" "$W/e13" -- "$FPT" init --layers 1 --d-model 16 --heads 3 -o "$W/new.h5"
check "init: no partial output" test -z "$(ls "$W" | grep -E '^new.h5')"

# Under mpirun: every rank exits, nonzero, with one error line in all.
start=$(date +%s)
expect_error "2 ranks: bad model" "shape.h5: dataset /h/0/attn/c_attn/weight" "$W/e14" -- \
  "$MPIRUN" -np 2 --oversubscribe "$FPT" train --model "$W/shape.h5" --task bit-xor --steps 2 --batch-size 4 --run-dir "$W/run2"
expect_error "2 ranks: batch not divisible" "batch size 5 is not divisible by replicas (world/stages = 2/1 = 2)" "$W/e15" -- \
  "$MPIRUN" -np 2 --oversubscribe "$FPT" train --model "$W/good.h5" --task bit-xor --steps 2 --batch-size 5 --run-dir "$W/run3"
check "2-rank failures took under 30 s" test $(( $(date +%s) - start )) -lt 30

# Dataset files.
"$FPT" data bit-xor --n-train 20 --n-val 5 --n-test 5 -o "$W/xor.h5" > /dev/null
/usr/bin/python3 - "$W" <<'PY'
import h5py, shutil, sys, numpy as np
w = sys.argv[1]
for name in ("noy", "dtype", "short", "seq", "utf8", "inttask", "strarr", "vlenarr"):
    shutil.copy(f"{w}/xor.h5", f"{w}/{name}.h5")
with h5py.File(f"{w}/utf8.h5", "a") as f:
    f.attrs["task"] = "bit-xor"  # a Python str: h5py writes variable-length UTF-8
with h5py.File(f"{w}/inttask.h5", "a") as f:
    f.attrs["task"] = np.int64(3)
# tests/fuzz: arrays of strings overflowed the reader's buffer.
with h5py.File(f"{w}/strarr.h5", "a") as f:
    f.attrs["task"] = np.array([b"bit-xor", b"bit-xor"])  # fixed-length, two of them
with h5py.File(f"{w}/vlenarr.h5", "a") as f:
    f.attrs["task"] = ["bit-xor", "bit-xor", "bit-xor"]  # variable-length, three
with h5py.File(f"{w}/noy.h5", "a") as f:
    del f["val/y"]
with h5py.File(f"{w}/dtype.h5", "a") as f:
    del f["train/x"]; f["train/x"] = np.zeros((20, 10, 1), np.float64)
with h5py.File(f"{w}/short.h5", "a") as f:
    del f["test/x"]; f["test/x"] = np.zeros((4, 10, 1), np.float32)
with h5py.File(f"{w}/seq.h5", "a") as f:
    f.attrs["seq"] = np.int64(200)
PY
dtrain() { "$MPIRUN" -np 2 --oversubscribe "$FPT" train --model "$W/good.h5" --steps 2 --batch-size 4 --run-dir "$W/run4" "$@"; }
expect_error "data: missing labels" "noy.h5: dataset /val/y is missing" "$W/e16" -- dtrain --data "$W/noy.h5"
expect_error "data: wrong dtype" "dtype.h5: dataset /train/x has the wrong type (float32 expected)" "$W/e17" -- dtrain --data "$W/dtype.h5"
expect_error "data: x and y disagree" "short.h5: dataset /test/x has 4 samples, but /test/y has 5" "$W/e18" -- dtrain --data "$W/short.h5"
expect_error "data: shape vs attributes" "seq.h5: dataset /train/x has the wrong shape" "$W/e19" -- dtrain --data "$W/seq.h5"
expect_error "data: no second tokenisation" "option --tokens x2: the file has no second tokenisation" "$W/e20" -- dtrain --data "$W/xor.h5" --tokens x2
"$MPIRUN" -np 2 --oversubscribe "$FPT" train --model "$W/good.h5" --steps 2 --batch-size 4 --run-dir "$W/run-utf8" --data "$W/utf8.h5" > "$W/utf8.log" 2>&1
check "data: a UTF-8 string attribute (h5py's str) is read" grep -q "^task: bit-xor," "$W/utf8.log"
expect_error "data: a string attribute that is not a string" "inttask.h5: attribute task must be a string" "$W/e22" -- dtrain --data "$W/inttask.h5"
expect_error "data: an array of two fixed-length strings" "strarr.h5: attribute task must be one string, not 2" "$W/e22b" -- dtrain --data "$W/strarr.h5"
expect_error "data: an array of three variable-length strings" "vlenarr.h5: attribute task must be one string, not 3" "$W/e22c" -- dtrain --data "$W/vlenarr.h5"
expect_error "data: not a dataset" "good.h5: attribute seq is missing" "$W/e21" -- dtrain --data "$W/good.h5"
# Values out of range or not finite, in one sample that only one of the two
# ranks reads: every rank stops with that rank's message, nothing hangs.
"$FPT" data pfam --max-len 16 -o "$W/pf.h5" >/dev/null
/usr/bin/python3 - "$W" <<'PY'
import shutil, sys, h5py, numpy as np
w = sys.argv[1]
for name in ("badid", "badcls"):
    shutil.copy(f"{w}/pf.h5", f"{w}/{name}.h5")
shutil.copy(f"{w}/xor.h5", f"{w}/nan.h5")
with h5py.File(f"{w}/badid.h5", "a") as f:
    f["train/x"][3, 5] = 30            # vocab is 30
with h5py.File(f"{w}/badcls.h5", "a") as f:
    f["val/y"][2, 0] = -1
with h5py.File(f"{w}/nan.h5", "a") as f:
    x = f["test/x"][...]; x[4, 0, 0] = np.nan; f["test/x"][...] = x
PY
ptrain() { "$MPIRUN" -np 2 --oversubscribe "$FPT" train --model "$W/good.h5" --batch-size 4 "$@"; }
expect_error "data: token id out of range" "badid.h5: /train/x sample 3, token 5: id 30 is outside \[0, 30)" "$W/e22" -- ptrain --data "$W/badid.h5" --steps 60 --run-dir "$W/run5"
expect_error "data: class out of range" "badcls.h5: /val/y sample 2, target 0: class -1 is outside \[0, 9)" "$W/e23" -- ptrain --data "$W/badcls.h5" --steps 2 --run-dir "$W/run6"
expect_error "data: NaN input" "nan.h5: /test/x sample 4 holds a NaN or Inf" "$W/e24" -- ptrain --data "$W/nan.h5" --steps 2 --run-dir "$W/run7"
check "no temporary files left" test -z "$(find "$W" -name '*.tmp.*')"
finish
