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
finish
