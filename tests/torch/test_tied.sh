#!/usr/bin/env bash
# The tied language-model head (fpt pretrain's model) against the independent
# PyTorch reference: logits = ln_f(h) . wte^T at every position, wte trained
# through both the lookup and the head. Same comparison as test_torch.sh
# (backbone output, logits, loss, every gradient, 10 Adam steps; tolerances in
# compare.py). Also: a case file without the "tied" attribute is still an
# ordinary (untied) case for the C runner.
set -uo pipefail
RUNNER=$1
W=$2
T=$(cd "$(dirname "$0")" && pwd)
source "$T/../cli/lib.sh"
rm -rf "$W" && mkdir -p "$W"

cases=(
  "tied-full-training|--vocab 11 --tied 1 --full 1 --seed 9"
  "tied-default-freeze|--vocab 11 --tied 1 --seed 10"
  "tied-frozen-wte|--vocab 5 --tied 1 --freeze-in 1 --full 1 --layers 3 --seq 10 --seed 11"
  "tied-wide-vocab|--vocab 40 --tied 1 --full 1 --seq 6 --batch 2 --d-model 24 --heads 3 --seed 12"
)
torch_cases "$RUNNER" "$W" "$T" "${cases[@]}"

# The case files name the table wte/weight, and the reference's trainable set
# has it exactly when the input group trains.
/usr/bin/python3 - "$W" <<'PY'
import sys, h5py
w = sys.argv[1]
ok = True
for name, trains in (("tied-full-training", True), ("tied-default-freeze", True), ("tied-frozen-wte", False)):
    with h5py.File(f"{w}/{name}/case.h5") as c, h5py.File(f"{w}/{name}/ref.h5") as r:
        good = (int(c.attrs["tied"]) == 1 and sorted(c["init"]) == ["wte"]
                and ("grads/wte/weight" in r) == trains and not any(k in r["grads"] for k in ("in", "out")))
    print(("ok" if good else "FAIL") + f": {name}: init has only wte, wte trainable = {trains}")
    ok &= good
sys.exit(0 if ok else 1)
PY
[ $? -eq 0 ] && ok "case files and trainable sets" || bad "case files and trainable sets"

# Old case files have no "tied" attribute: the runner treats it as 0.
d="$W/untied"
mkdir -p "$d"
if "$T/make_case.py" --out "$d/case.h5" --model "$d/model.h5" --vocab 7 --seed 2 > "$d/log" 2>&1 &&
   /usr/bin/python3 -c "import h5py, sys; sys.exit('tied' in h5py.File(sys.argv[1]).attrs)" "$d/case.h5" &&
   "$T/torch_ref.py" "$d/case.h5" "$d/model.h5" -o "$d/ref.h5" >> "$d/log" 2>&1 &&
   "$RUNNER" "$d/case.h5" "$d/model.h5" "$d/c.h5" >> "$d/log" 2>&1 &&
   "$T/compare.py" "$d/ref.h5" "$d/c.h5" > "$d/compare" 2>&1; then
  ok "case without a tied attribute: an untied case ($(tail -1 "$d/compare"))"
else
  bad "case without a tied attribute"; cat "$d/log" "$d/compare" 2>/dev/null | grep -v '^ok' | tail -20
fi
finish
