#!/usr/bin/env bash
# fpt data for the image tasks: small files in the real formats (IDX raw and
# gzipped, CIFAR-10 binary) convert to exactly the tokens an independent NumPy
# re-derivation gives; the real Fashion-MNIST converts and its test image 0 is
# the IDX source's ankle boot; every corrupt file fails with one error line
# naming the file, and leaves no output.
set -uo pipefail
FPT=$1
W=$2
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"
rm -rf "$W" && mkdir -p "$W"
/usr/bin/python3 "$HERE/make_image_files.py" "$W/src" > /dev/null || exit 1

convert_check() { # NAME TASK DIR [fpt data options...]
  local name=$1 task=$2 dir=$3; shift 3
  if "$FPT" data "$task" --input "$dir" --n-val 7 "$@" -o "$W/$name.h5" > "$W/$name.log" 2>&1 &&
     /usr/bin/python3 "$HERE/images_check.py" "$W/$name.h5" "$dir" --all > "$W/$name.check" 2>&1; then
    ok "$name: $(tail -1 "$W/$name.check")"
  else
    bad "$name: $(cat "$W/$name.log" "$W/$name.check" 2>/dev/null | tail -5)"
  fi
}
convert_check mnist-raw mnist "$W/src/idx"
convert_check mnist-gz mnist "$W/src/idx_gz"
convert_check mnist-pad32 mnist "$W/src/idx_gz" --pad32 true
convert_check cifar10 cifar10 "$W/src/cifar"
convert_check cifar10-lra cifar10-lra "$W/src/cifar"

while IFS=$'\t' read -r dir kind file msg; do
  [ "$file" = "-" ] && continue
  task=mnist
  [ "$kind" = cifar ] && task=cifar10
  expect_error "corrupt $dir" "$file.*$msg" "$W/err.$dir" -- "$FPT" data "$task" --input "$W/src/$dir" -o "$W/bad.$dir.h5"
  check "corrupt $dir: no output" test ! -e "$W/bad.$dir.h5"
done < "$W/src/expected.tsv"

# The real Fashion-MNIST from Debian's dataset-fashion-mnist.
if "$FPT" data fashion-mnist -o "$W/fashion.h5" > "$W/fashion.log" 2>&1 &&
   /usr/bin/python3 "$HERE/images_check.py" "$W/fashion.h5" /usr/share/datasets/fashion-mnist \
     --known-fashion --max-samples 2000 > "$W/fashion.check" 2>&1; then
  ok "real Fashion-MNIST: $(grep -c '^ok' "$W/fashion.check") checks; $(grep -E 'read|wrote' "$W/fashion.log" | tr '\n' ' ')"
else
  bad "real Fashion-MNIST: $(tail -5 "$W/fashion.log" "$W/fashion.check")"
fi
# CIFAR-10 training with on-the-fly augmentation: the same numbers on 1 and 2
# ranks, and other numbers without augmentation.
"$FPT" init --layers 1 --d-model 16 --heads 2 --positions 64 -o "$W/m.h5" > /dev/null
for run in "a 1 true" "b 2 true" "c 1 false"; do
  set -- $run
  OMP_NUM_THREADS=1 "$MPIRUN" -np "$2" --oversubscribe "$FPT" train --model "$W/m.h5" --data "$W/cifar10.h5" \
    --steps 4 --batch-size 4 --log-every 1 --augment "$3" --run-dir "$W/run$1" > "$W/run$1.log" 2>&1
done
cmp_runs() { # A B: relative difference of the train losses, or "missing"
  /usr/bin/python3 -c '
import json, sys
L = [[r["loss"] for r in map(json.loads, open(f"{sys.argv[1]}/run{n}/metrics.jsonl")) if r["split"] == "train"]
     for n in sys.argv[2:]]
print(max(abs(a - b) / abs(a) for a, b in zip(*L)) if all(len(l) == 4 for l in L) else "missing")' "$W" "$1" "$2"
}
d_ab=$(cmp_runs a b)
d_ac=$(cmp_runs a c)
check "augmented training: 1 rank vs 2 ranks differ by $d_ab < 1e-5" /usr/bin/python3 -c "import sys; sys.exit(0 if '$d_ab' != 'missing' and $d_ab < 1e-5 else 1)"
check "augmentation changes the losses (by $d_ac)" /usr/bin/python3 -c "import sys; sys.exit(0 if '$d_ac' != 'missing' and $d_ac > 1e-3 else 1)"
check "no temporary files left" test -z "$(find "$W" -name '*.tmp.*')"
finish
