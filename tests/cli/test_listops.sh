#!/usr/bin/env bash
# fpt data listops: LRA's generator checked by an independent evaluator
# (tests/cli/listops_check.py), both tokenisations checked against the TSV,
# malformed TSV lines rejected, and both tokenisations train.
set -uo pipefail
FPT=$1
W=$2
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"
rm -rf "$W" && mkdir -p "$W"
check "fpt data listops (generate 2000/200/200)" "$FPT" data listops --n-train 2000 --n-val 200 --n-test 200 --seed 3 \
  --tsv-dir "$W/tsv" -o "$W/lo.h5"
/usr/bin/python3 "$HERE/listops_check.py" "$W/tsv" --sizes 2000,200,200 > "$W/tsv.check" 2>&1
check "independent evaluator: targets, lengths, depth, arguments, uniqueness ($(tail -1 "$W/tsv.check"))" test $? -eq 0
/usr/bin/python3 "$HERE/listops_check.py" --hdf5 "$W/lo.h5" "$W/tsv" > "$W/h5.check" 2>&1
check "HDF5 tokens (paper x, LRA x2) re-derived from the TSV ($(tail -1 "$W/h5.check"))" test $? -eq 0
# Reading an existing LRA directory (as the real lra_release gives it).
check "fpt data listops --input DIR" "$FPT" data listops --input "$W/tsv" -o "$W/lo2.h5"
check "same file contents from --input" /usr/bin/python3 -c "
import h5py, numpy as np, sys
a, b = h5py.File('$W/lo.h5'), h5py.File('$W/lo2.h5')
sys.exit(0 if all(np.array_equal(a[k][()], b[k][()]) for k in ('train/x', 'train/x2', 'test/y')) else 1)"
# Malformed TSV lines.
mkdir -p "$W/badtsv"
cp "$W/tsv/basic_train.tsv" "$W/tsv/basic_test.tsv" "$W/badtsv/"
printf 'Source\tTarget\n( ( [MAX 2 ) 9 ) ]\t7\n( ( [MAX 2 ) 9 ) ]\t12\n' > "$W/badtsv/basic_val.tsv"
expect_error "target outside 0..9" "basic_val.tsv:3: target 12 is outside 0..9" "$W/e1" -- "$FPT" data listops --input "$W/badtsv" -o "$W/bad.h5"
printf 'Source\tTarget\n( ( [FIRST 2 ) 9 ) ]\t7\n' > "$W/badtsv/basic_val.tsv"
expect_error "unknown token" "basic_val.tsv:2: unknown token '\[FIRST'" "$W/e2" -- "$FPT" data listops --input "$W/badtsv" -o "$W/bad.h5"
printf 'Source\tTarget\n( ( [MAX 2 ) 9 ) ] 7\n' > "$W/badtsv/basic_val.tsv"
expect_error "missing tab" "basic_val.tsv:2: .*tab" "$W/e3" -- "$FPT" data listops --input "$W/badtsv" -o "$W/bad.h5"
check "no output after errors" test ! -e "$W/bad.h5"
# Both tokenisations train (embedding input layer, 512 and 2000 tokens).
"$FPT" init --layers 1 --d-model 16 --heads 2 --positions 2048 -o "$W/m.h5" > /dev/null
for tok in x x2; do
  OMP_NUM_THREADS=1 "$MPIRUN" -np 2 --oversubscribe "$FPT" train --model "$W/m.h5" --data "$W/lo.h5" --tokens $tok \
    --steps 2 --batch-size 2 --run-dir "$W/run-$tok" > "$W/run-$tok.log" 2>&1
  check "trains on --tokens $tok ($(grep '^task: ' "$W/run-$tok.log"))" grep -q '"split":"test"' "$W/run-$tok/metrics.jsonl"
done
# --eval-limit N scores the first N val/test samples: the same numbers as a
# file whose val and test hold only those samples.
/usr/bin/python3 -c "
import h5py
with h5py.File('$W/lo.h5') as a, h5py.File('$W/lo37.h5', 'w') as b:
    for k, v in a.attrs.items(): b.attrs[k] = v
    for split in ('train', 'val', 'test'):
        for name, d in a[split].items():
            b.create_dataset(split + '/' + name, data=d[()] if split == 'train' else d[:37])
"
for f in lo lo37; do
  lim=$([ $f = lo ] && echo 37 || echo 0)
  OMP_NUM_THREADS=1 "$MPIRUN" -np 2 --oversubscribe "$FPT" train --model "$W/m.h5" --data "$W/$f.h5" --tokens x2 \
    --steps 2 --batch-size 2 --eval-test true --eval-limit $lim --run-dir "$W/lim-$f" > "$W/lim-$f.log" 2>&1
done
check "--eval-limit 37: val and test of 37 samples" grep -q 'final test .*(37 samples)' "$W/lim-lo.log"
check "--eval-limit 37 scores as a file holding those 37" /usr/bin/python3 -c "
import json, sys
a, b = ([json.loads(l) for l in open('$W/lim-' + f + '/metrics.jsonl') if '\"val\"' in l or '\"test\"' in l] for f in ('lo', 'lo37'))
sys.exit(0 if len(a) == 2 and [(r['split'], r['loss'], r['accuracy']) for r in a] == [(r['split'], r['loss'], r['accuracy']) for r in b] else 1)"
expect_error "--eval-limit below 0" "option --eval-limit: -1 is out of range (0 .. " "$W/e4" -- "$FPT" train --model "$W/m.h5" --data "$W/lo.h5" --eval-limit -1 --run-dir "$W/e4run"
expect_error "--eval-limit on a generated task" "option --eval-limit: applies to dataset files" "$W/e5" -- "$FPT" train --model "$W/m.h5" --task bit-xor --eval-limit 5 --run-dir "$W/e5run"
finish
