#!/usr/bin/env bash
# The new backbone kinds, padding and readouts against the independent PyTorch
# reference (fpt_torch.py's docstring): a ViT-style bidirectional encoder
# (causal 0, exact gelu, eps 1e-6) with key-padding masks, GPT-2 with exact
# gelu or padded readouts, and the paper's layer-normalised LSTM (frozen, full,
# residual). Same comparison as test_torch.sh (backbone output, logits, loss,
# every gradient, 10 Adam steps; tolerances in compare.py).
#   test_kinds.sh CASE_RUNNER WORKDIR
# Needs a case runner that reads kind/causal/activation/residual (model) and
# readout + /lengths (case); tests/torch/selftest_kinds.py checks the reference.
set -uo pipefail
RUNNER=$1
W=$2
T=$(cd "$(dirname "$0")" && pwd)
source "$T/../cli/lib.sh"
rm -rf "$W" && mkdir -p "$W"

vit="--causal 0 --activation gelu --eps 1e-6"
cases=(
  "vit-continuous|--d-in 5 $vit --seed 21"
  "vit-pad-readout-last|--vocab 9 $vit --pad 1 --seed 22"
  "vit-pad-last-real|--d-in 4 $vit --pad 1 --readout last-real --seed 23"
  "vit-pad-mean-full|--d-in 4 $vit --pad 1 --readout mean --full 1 --seed 24"
  "vit-long-attn-ff|--vocab 9 $vit --pad 1 --readout mean --seq 40 --positions 48 --freeze-attn 0 --freeze-ff 0 --d-model 16 --heads 2 --seed 25"
  "gpt2-exact-gelu|--d-in 5 --activation gelu --seed 26"
  "gpt2-pad-last-real|--vocab 7 --pad 1 --readout last-real --seed 27"
  "lstm-random-frozen|--kind lstm --d-in 5 --seed 31"
  "lstm-full|--kind lstm --vocab 7 --full 1 --seed 32"
  "lstm-residual-pad-last-real|--kind lstm --d-in 3 --residual 1 --pad 1 --readout last-real --layers 3 --seed 33"
  "lstm-pad-mean-frozen-in|--kind lstm --vocab 9 --pad 1 --readout mean --freeze-in 1 --seed 34"
  "lstm-bit-style-readout|--kind lstm --d-in 3 --r 3 --n-out 4 --n-cls 2 --residual 1 --seed 35"
  "lstm-long-full|--kind lstm --d-in 2 --seq 60 --d-model 16 --full 1 --seed 36"
)
torch_cases "$RUNNER" "$W" "$T" "${cases[@]}"

# The trainable sets the C side must reproduce: a frozen LSTM trains its LNs and
# in/out only; full adds i2h and h2h.
/usr/bin/python3 - "$W" <<'PY'
import sys, h5py
w = sys.argv[1]
ok = True
for name, other in (("lstm-random-frozen", False), ("lstm-full", True)):
    with h5py.File(f"{w}/{name}/ref.h5") as r:
        g = set(r["grads/lstm/0"])
    good = g == {"ln_i2h", "ln_h2h", "ln_cell"} | ({"i2h", "h2h"} if other else set())
    print(("ok" if good else "FAIL") + f": {name}: lstm/0 trains {sorted(g)}")
    ok &= good
sys.exit(0 if ok else 1)
PY
[ $? -eq 0 ] && ok "LSTM trainable sets" || bad "LSTM trainable sets"
finish
