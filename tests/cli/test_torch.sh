#!/usr/bin/env bash
# The C model against the independent PyTorch reference (tests/torch): backbone
# output, logits, loss, every trainable gradient, and the parameters after 10
# Adam steps, for several input kinds, readouts and freeze sets. Also
# `fpt forward` against the reference backbone. Tolerances: tests/torch/compare.py.
set -uo pipefail
FPT=$1
RUNNER=$2
W=$3
T=$(cd "$(dirname "$0")/../torch" && pwd)
source "$(dirname "$0")/lib.sh"
rm -rf "$W" && mkdir -p "$W"

cases=(
  "default-continuous|--d-in 5 --seed 1"
  "default-embedding|--vocab 7 --seed 2"
  "full-training|--d-in 5 --full 1 --seed 3"
  "bit-style-readout|--d-in 3 --r 3 --n-out 4 --n-cls 2 --seed 4"
  "ln-only|--d-in 4 --freeze-in 1 --freeze-out 1 --freeze-pos 1 --seed 5"
  "output-only|--d-in 4 --freeze-in 1 --freeze-ln 1 --freeze-pos 1 --seed 6"
  "attn-and-ff|--vocab 9 --freeze-attn 0 --freeze-ff 0 --layers 3 --d-model 48 --heads 6 --seq 12 --seed 7"
  "readout-is-all|--d-in 2 --seq 4 --r 4 --n-out 2 --n-cls 2 --seed 8"
  "long-causal-blocks|--vocab 9 --seq 150 --positions 160 --r 20 --n-out 4 --n-cls 2 --freeze-attn 0 --layers 2 --d-model 16 --heads 2 --seed 9"
)
torch_cases "$RUNNER" "$W" "$T" "${cases[@]}"

# fpt forward: /inputs_embeds -> /last_hidden_state, against the reference backbone.
d="$W/forward"
mkdir -p "$d"
cp "$W/attn-and-ff/model.h5" "$d/model.h5"
/usr/bin/python3 - "$d" "$T" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
x = np.random.default_rng(0).standard_normal((5, 11, 48)).astype(np.float32)
with h5py.File(f"{d}/x.h5", "w") as f:
    f["inputs_embeds"] = x
PY
"$FPT" forward --model "$d/model.h5" --input "$d/x.h5" -o "$d/y.h5" > "$d/log" 2>&1 || cat "$d/log"
/usr/bin/python3 - "$d" "$T" <<'PY'
import sys, h5py, numpy as np, torch
d, t = sys.argv[1], sys.argv[2]
sys.path.insert(0, t)
import fpt_torch
cfg, p = fpt_torch.load_model(f"{d}/model.h5")
x = torch.from_numpy(h5py.File(f"{d}/x.h5")["inputs_embeds"][()].astype(np.float64))
ref = fpt_torch.backbone(p, cfg, x).numpy()
got = h5py.File(f"{d}/y.h5")["last_hidden_state"][()]
err = np.abs(got - ref).max() / np.abs(ref).max()
print(f"fpt forward vs reference: max error {err:.2e} relative to max |h|")
sys.exit(0 if got.shape == ref.shape and err < 1e-5 else 1)
PY
[ $? -eq 0 ] && ok "fpt forward agrees with the reference (1e-5)" || bad "fpt forward"
finish
