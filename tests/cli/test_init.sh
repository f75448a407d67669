#!/usr/bin/env bash
# fpt init: Hugging Face's default GPT-2 init, and statistics matching (--like).
set -uo pipefail
FPT=$1
W=$2
source "$(dirname "$0")/lib.sh"
rm -rf "$W" && mkdir -p "$W"
"$FPT" init --layers 2 --d-model 64 --heads 4 --positions 64 --seed 1 -o "$W/r.h5"
check "random model written" test -s "$W/r.h5"
# The same seed, a second later: the same file byte for byte (no clock in it),
# so that a checkpoint's checksum of its backbone holds for a remade shape.h5.
sleep 1.1
"$FPT" init --layers 2 --d-model 64 --heads 4 --positions 64 --seed 1 -o "$W/r2.h5"
check "the same init a second later writes the same bytes" cmp "$W/r.h5" "$W/r2.h5"
# A base with distinctive per-tensor statistics, then a model matched to it.
/usr/bin/python3 - "$W" <<'PY'
import h5py, numpy as np, sys
w = sys.argv[1]
rng = np.random.default_rng(0)
with h5py.File(f"{w}/r.h5", "r") as f, h5py.File(f"{w}/base.h5", "w") as g:
    for k, v in f.attrs.items():
        g.attrs[k] = v
    def copy(name, obj):
        if isinstance(obj, h5py.Dataset):
            g[name] = (rng.uniform(-1, 1) + rng.uniform(0.01, 0.5) * rng.standard_normal(obj.shape)).astype(np.float32)
    f.visititems(copy)
PY
"$FPT" init --like "$W/base.h5" --seed 2 -o "$W/like.h5"
/usr/bin/python3 - "$W" <<'PY'
import h5py, numpy as np, sys
from checks import expect, finish
w = sys.argv[1]
names = []
with h5py.File(f"{w}/r.h5") as f:
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    expect(len(names) == 2 * 12 + 3, f"{len(names)} tensors (12 per block + wpe + ln_f)")
    for n in names:
        x = f[n][()]
        if "ln_" in n:
            expect(np.all(x == (1 if n.endswith("weight") else 0)), f"{n}: LayerNorm {'1' if n.endswith('weight') else '0'}")
        elif n.endswith("bias"):
            expect(np.all(x == 0), f"{n}: zero bias")
        else:
            expect(abs(x.std() - 0.02) < 0.002 and abs(x.mean()) < 0.002, f"{n}: N(0, 0.02), std {x.std():.4f}")
with h5py.File(f"{w}/base.h5") as b, h5py.File(f"{w}/like.h5") as l:
    for n in names:
        x, y = b[n][()], l[n][()]
        tol = 5 * x.std() / np.sqrt(x.size) + 1e-6  # 5 sigma of a sample mean
        good = abs(x.mean() - y.mean()) < tol and abs(x.std() - y.std()) < 5 * x.std() / np.sqrt(2 * x.size) + 1e-6
        expect(good and not np.array_equal(x, y), f"{n}: like base, mean {y.mean():.4f} vs {x.mean():.4f}, std {y.std():.4f} vs {x.std():.4f}")
finish()
PY
[ $? -eq 0 ] && ok "statistics" || bad "statistics"

# Outputs are checked before any work, and fpt init writes only what it can read.
mkdir -p "$W/adir"
expect_error "-o names a directory" "option -o: $W/adir exists and is not a regular file" "$W/e1" -- \
  "$FPT" init --layers 1 --d-model 8 --heads 2 --positions 8 -o "$W/adir"
expect_error "-o in a directory that does not exist" "directory $W/nodir does not exist" "$W/e2" -- \
  "$FPT" init --layers 1 --d-model 8 --heads 2 --positions 8 -o "$W/nodir/m.h5"
cp "$W/base.h5" "$W/base-copy.h5"
expect_error "-o is the --like input" "option -o: $W/base-copy.h5 is an input" "$W/e3" -- \
  "$FPT" init --like "$W/base-copy.h5" -o "$W/base-copy.h5"
cmp -s "$W/base.h5" "$W/base-copy.h5" && ok "  ... and the input is untouched" || bad "--like input changed"
expect_error "n_positions beyond what model files may hold" "model: n_positions = 2000000 is out of range \[1, 1048576\]" "$W/e4" -- \
  "$FPT" init --layers 1 --d-model 8 --heads 2 --positions 2000000 -o "$W/big.h5"
[ ! -e "$W/big.h5" ] && ok "  ... and nothing is written" || bad "an unreadable model file was written"
finish
