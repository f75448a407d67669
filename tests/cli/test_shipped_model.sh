#!/bin/bash
# The shipped default backbone (data/models/default.h5) is a language model:
# the independent PyTorch GPT-2 scores unseen English prose below 3 bits per
# byte with it, and the same check fails on a copy whose token table has its
# rows permuted (so the check can fail). `fpt train` accepts it as a backbone.
# usage: test_shipped_model.sh FPT WORKDIR
set -u
FPT=$1
W=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/cli/lib.sh
source "$ROOT/tests/cli/lib.sh"
rm -rf "$W" && mkdir -p "$W"
MODEL=$ROOT/data/models/default.h5
TEXT=$ROOT/tests/torch/english_sample.txt

check "shipped model scores English below 3 bits/byte" \
  /usr/bin/python3 "$ROOT/tests/torch/check_shipped_model.py" "$MODEL" "$TEXT"

/usr/bin/python3 - "$MODEL" "$W/permuted.h5" <<'PY'
import shutil, sys, h5py, numpy as np
shutil.copyfile(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    w = f["wte/weight"][...]
    f["wte/weight"][...] = w[np.random.default_rng(0).permutation(w.shape[0])]
PY
if /usr/bin/python3 "$ROOT/tests/torch/check_shipped_model.py" "$W/permuted.h5" "$TEXT" >"$W/perm.out" 2>&1; then
  bad "a permuted token table still passed: $(cat "$W/perm.out")"
else
  ok "a permuted token table fails the check ($(tail -1 "$W/perm.out"))"
fi

check "fpt train runs on the shipped backbone" \
  "$FPT" train --model "$MODEL" --task bit-xor --steps 3 --batch-size 4 --log-every 1 --run-dir "$W/run"
finish
