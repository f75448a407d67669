#!/usr/bin/env bash
# fpt probe (the exact ridge least-squares output layer, ScaLAPACK), fpt eval
# and fpt train --init-head-from: the solution against numpy.linalg.lstsq on
# the cached features (PDPOSV and PDGELS), the same answer on 1, 2 and 4 ranks
# (features recomputed on each layout, and one cache solved on each BLACS
# grid), the feature cache reused and invalidated, eval of the written
# checkpoint, training from it, and the bad inputs of docs/PROBE.md.
set -uo pipefail
FPT=$1
W=$2
HERE=$(dirname "$0")
source "$HERE/lib.sh"
export OMP_NUM_THREADS=1
PY=/usr/bin/python3
rm -rf "$W" && mkdir -p "$W"
"$FPT" init --layers 3 --d-model 32 --heads 4 --positions 64 --seed 3 -o "$W/m.h5" > /dev/null || exit 1
"$FPT" init --layers 3 --d-model 32 --heads 4 --positions 64 --seed 4 -o "$W/other.h5" > /dev/null || exit 1
$PY "$HERE/probe_check.py" make-data "$W/syn.h5" || exit 1
$PY "$HERE/probe_check.py" make-data "$W/same.h5" --same || exit 1
"$FPT" data bit-xor --n-train 300 --n-val 60 --n-test 60 --seed 2 -o "$W/xor.h5" > /dev/null || exit 1

probe() { # probe NAME NP ARGS...: fpt probe into $W/NAME, log $W/NAME.log
  local name=$1 np=$2; shift 2
  "$MPIRUN" -np "$np" --oversubscribe "$FPT" probe --model "$W/m.h5" --run-dir "$W/$name" \
    --block-size 8 "$@" > "$W/$name.log" 2>&1
}
pycheck() { # pycheck WHAT ARGS...: probe_check.py, its lines shown on failure
  local what=$1; shift
  if $PY "$HERE/probe_check.py" "$@" > "$W/check.out" 2>&1; then
    ok "$what ($(grep -c '^ok' "$W/check.out") checks$(grep -o ' within [0-9.e+-]*' "$W/check.out" | head -2 | tr '\n' ';'))"
  else
    bad "$what" "$W/check.out"
  fi
}
runs() { # runs WHAT CMD...: the command succeeds
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what" "$W/last.log"; fi
}

# 1. NumPy agreement: a 10-class task (r = 1) and bit-xor (r = 5 readout
#    positions, 5 targets each), both solvers, a lambda sweep.
runs "probe, 1 rank, sweep, both solvers" probe p1 1 --data "$W/syn.h5" --lambdas 0.01,0.1,1,10 --solver both
cp "$W/p1.log" "$W/last.log"
pycheck "10-class task: PDPOSV and PDGELS = numpy lstsq, scores = NumPy's" check "$W/p1"
runs "probe bit-xor (r = 5), 1 rank" probe x1 1 --data "$W/xor.h5" --lambdas 0.1,1,10 --solver both
pycheck "bit-xor: PDPOSV and PDGELS = numpy lstsq, scores = NumPy's" check "$W/x1"
check "posv and gels agree in the log" grep -q "posv vs gels: max |dW| / max |W| = .*e-1[0-9]" "$W/p1.log"
runs "probe gels only" probe g1 1 --data "$W/syn.h5" --lambda 1 --solver gels
pycheck "gels alone = numpy lstsq" check "$W/g1"

# 2. The same answer on 1, 2 and 4 ranks, features recomputed on each layout
#    (2: 2 replicas; 4: 2 pipeline stages x 2 replicas, a 2 x 2 BLACS grid).
runs "probe, 1 rank, lambda 1" probe a1 1 --data "$W/syn.h5" --lambda 1
runs "probe, 2 ranks" probe a2 2 --data "$W/syn.h5" --lambda 1
runs "probe, 4 ranks (2 stages x 2 replicas)" probe a4 4 --data "$W/syn.h5" --lambda 1 --stages 2 --batch-size 16
check "4 ranks: 2 x 2 BLACS grid" grep -q "2 x 2 BLACS grid" "$W/a4.log"
pycheck "1 vs 2 ranks within 1e-5" compare "$W/a1" "$W/a2" 1e-5
pycheck "1 vs 4 ranks within 1e-5" compare "$W/a1" "$W/a4" 1e-5
runs "bit-xor on 4 ranks" probe x4 4 --data "$W/xor.h5" --lambdas 0.1,1,10 --stages 2 --batch-size 16
pycheck "bit-xor, 1 vs 4 ranks within 1e-5" compare "$W/x1" "$W/x4" 1e-5
#    One cache, solved on grids 1 x 1, 2 x 1 and 2 x 2: only ScaLAPACK's layout differs.
runs "2 ranks on a1's cache" probe c2 2 --data "$W/syn.h5" --lambda 1 --cache "$W/a1/features.h5"
runs "4 ranks on a1's cache" probe c4 4 --data "$W/syn.h5" --lambda 1 --cache "$W/a1/features.h5"
cp "$W/a1/features.h5" "$W/c2/features.h5" && cp "$W/a1/features.h5" "$W/c4/features.h5"
pycheck "same cache, 1 vs 2 ranks within 1e-9" compare "$W/a1" "$W/c2" 1e-9
pycheck "same cache, 1 vs 4 ranks within 1e-9" compare "$W/a1" "$W/c4" 1e-9

# 3. The cache: reused when model, data and input layer match, else recomputed.
check "second run reuses the cache" grep -q "features: reusing" "$W/c4.log"
runs "sweep again on p1's run directory" probe p1 1 --data "$W/syn.h5" --lambdas 3,30
check "  ... without the backbone" grep -q "features: reusing .* (matches" "$W/p1.log"
runs "another seed" probe p1 1 --data "$W/syn.h5" --lambda 3 --seed 9
check "  ... recomputes (input layer differs)" grep -q "computing .*seed differs" "$W/p1.log"
runs "another backbone" probe p1 1 --data "$W/syn.h5" --lambda 3 --model "$W/other.h5"
check "  ... recomputes (model checksum differs)" grep -q "computing .*model_checksum differs" "$W/p1.log"
check "no temporary files left" test -z "$(find "$W" -name '*.tmp*')"

#    --train-limit / --eval-limit: the first samples of each split, the same
#    answer as a file that holds only those.
$PY - "$W/syn.h5" "$W/cut.h5" <<'PYEOF' || exit 1
import sys, h5py
with h5py.File(sys.argv[1]) as a, h5py.File(sys.argv[2], "w") as b:
    for k, v in a.attrs.items():
        b.attrs[k] = v
    for split, n in (("train", 300), ("val", 50), ("test", 50)):
        for name, d in a[split].items():
            b[f"{split}/{name}"] = d[:n]
PYEOF
runs "probe --train-limit 300 --eval-limit 50" probe lim 2 --data "$W/syn.h5" --lambda 1 --train-limit 300 --eval-limit 50
runs "probe on the file cut to 300/50/50" probe cut 2 --data "$W/cut.h5" --lambda 1
check "  ... the cache holds 300 train rows" $PY -c "import h5py, sys; sys.exit(h5py.File('$W/lim/features.h5')['train/features'].shape[0] != 300)"
pycheck "limits = the cut file within 1e-6" compare "$W/lim" "$W/cut" 1e-6
pycheck "limits: solution = numpy lstsq on the limited rows" check "$W/lim"

# 4. fpt eval reproduces the probe's val and test scores; fpt train starts from it.
CK=$W/a1/checkpoints/ckpt-000000000.h5
check "checkpoint written" test -s "$CK"
for np in 1 2; do
  "$MPIRUN" -np $np --oversubscribe "$FPT" eval --model "$W/m.h5" --data "$W/syn.h5" --checkpoint "$CK" > "$W/eval$np.log" 2>&1
  pycheck "fpt eval on $np rank(s) = the probe's val and test" eval "$W/a1" "$W/eval$np.log"
done
"$MPIRUN" -np 2 "$FPT" train --model "$W/m.h5" --data "$W/syn.h5" --init-head-from "$CK" --steps 4 \
  --batch-size 16 --log-every 2 --run-dir "$W/t1" > "$W/t1.log" 2>&1
pycheck "fpt train --init-head-from: step-0 val = the probe's val" step0 "$W/a1" "$W/t1"
#    fpt eval also scores training checkpoints: full training (frozen tensors
#    loaded into the node's shared copy) and 2 pipeline stages.
"$FPT" train --model "$W/m.h5" --data "$W/xor.h5" --steps 6 --batch-size 8 --full-train true \
  --run-dir "$W/ft" > "$W/ft.log" 2>&1
"$MPIRUN" -np 2 "$FPT" eval --model "$W/m.h5" --data "$W/xor.h5" --checkpoint "$W/ft/checkpoints/ckpt-000000006.h5" > "$W/evalft.log" 2>&1
pycheck "fpt eval of a full-training checkpoint (2 ranks) = the run's final val and test" eval "$W/ft" "$W/evalft.log"
"$MPIRUN" -np 2 "$FPT" train --model "$W/m.h5" --data "$W/xor.h5" --steps 6 --batch-size 8 --stages 2 \
  --run-dir "$W/st" > "$W/st.log" 2>&1
"$MPIRUN" -np 2 "$FPT" eval --model "$W/m.h5" --data "$W/xor.h5" --checkpoint "$W/st/checkpoints/ckpt-000000006.h5" --stages 2 > "$W/evalst.log" 2>&1
pycheck "fpt eval of a 2-stage checkpoint = the run's final val and test" eval "$W/st" "$W/evalst.log"
CKX=$W/x1/checkpoints/ckpt-000000000.h5
"$FPT" train --model "$W/m.h5" --data "$W/xor.h5" --init-head-from "$CKX" --steps 2 --batch-size 8 \
  --stages 1 --run-dir "$W/tx" > "$W/tx.log" 2>&1
pycheck "bit-xor: step-0 val = the probe's val" step0 "$W/x1" "$W/tx"

# 5. Bad input: one error line naming the option or file, nonzero exit on
#    every rank (2 ranks), no checkpoint written.
P2=("$MPIRUN" -np 2 "$FPT" probe --model "$W/m.h5" --block-size 8)
expect_error "lambda = 0" "option --lambda: lambda = 0 must be > 0" "$W/e1" -- "${P2[@]}" --data "$W/syn.h5" --run-dir "$W/e1d" --lambda 0
expect_error "negative lambda in a sweep" "option --lambdas: lambda = -2 must be > 0" "$W/e2" -- "${P2[@]}" --data "$W/syn.h5" --run-dir "$W/e2d" --lambdas 1,-2
expect_error "an empty value in a sweep" "option --lambdas: an empty value in '1,,2'" "$W/e2b" -- "${P2[@]}" --data "$W/syn.h5" --run-dir "$W/e2bd" --lambdas 1,,2
expect_error "lambda not a number" "option --lambda: 'abc' is not a number" "$W/e3" -- "${P2[@]}" --data "$W/syn.h5" --run-dir "$W/e3d" --lambda abc
expect_error "--lambda and --lambdas" "give one, not both" "$W/e4" -- "${P2[@]}" --data "$W/syn.h5" --run-dir "$W/e4d" --lambda 1 --lambdas 1,2
"$FPT" data bit-xor --n-train 6 --n-val 5 --n-test 5 -o "$W/tiny.h5" > /dev/null
expect_error "more unknowns than samples" "tiny.h5: /train has 6 samples (30 readout rows) but the output layer has 33 unknowns" "$W/e5" -- "${P2[@]}" --data "$W/tiny.h5" --run-dir "$W/e5d"
expect_error "rank-deficient features, tiny lambda" "option --lambda: lambda = 1e-30 leaves the regularised system singular" "$W/e6" -- "${P2[@]}" --data "$W/same.h5" --run-dir "$W/e6d" --lambda 1e-30
expect_error "  ... also with the QR solver" "option --lambda: lambda = 1e-30 leaves the regularised system singular" "$W/e7" -- "${P2[@]}" --data "$W/same.h5" --run-dir "$W/e7d" --lambda 1e-30 --solver gels --cache "$W/e6d/features.h5"
check "no checkpoint after a failed solve" test ! -e "$W/e6d/checkpoints"
runs "a sweep skips a singular lambda" probe sk 2 --data "$W/same.h5" --lambdas 1e-30,1 --cache "$W/e6d/features.h5"
check "  ... reports it and keeps lambda 1" grep -q "chosen lambda 1 " "$W/sk.log"
check "  ... with a line in the table" grep -q "^1e-30 .*singular in double precision (Cholesky pivot" "$W/sk.log"
expect_error "a sweep where every lambda is singular" "option --lambdas: every value is too small" "$W/e7b" -- "${P2[@]}" --data "$W/same.h5" --run-dir "$W/e7bd" --lambdas 1e-30,1e-40 --cache "$W/e6d/features.h5"
runs "rank-deficient features, lambda 1: solved (the ridge term makes it well-posed)" probe r1 2 --data "$W/same.h5" --lambda 1 --solver both
pycheck "rank-deficient features = numpy lstsq" check "$W/r1"
expect_error "--train-limit below the unknowns" "has 20 samples used (--train-limit)" "$W/e9" -- "${P2[@]}" --data "$W/syn.h5" --train-limit 20 --run-dir "$W/e9d"
expect_error "no --data" "option --data: fpt probe needs a dataset file" "$W/e8" -- "${P2[@]}" --run-dir "$W/e8d"
expect_error "bad --solver" "option --solver: 'lu' is not posv, gels or both" "$W/e9" -- "${P2[@]}" --data "$W/syn.h5" --run-dir "$W/e9d" --solver lu
expect_error "training-only option" "option --steps: fpt probe does not take it (fpt train does)" "$W/e10" -- "${P2[@]}" --data "$W/syn.h5" --run-dir "$W/e10d" --steps 3
expect_error "eval without --checkpoint" "option --checkpoint: fpt eval needs a checkpoint" "$W/e11" -- "$MPIRUN" -np 2 "$FPT" eval --model "$W/m.h5" --data "$W/syn.h5"
expect_error "eval with another backbone" "was made with backbone" "$W/e12" -- "$MPIRUN" -np 2 "$FPT" eval --model "$W/other.h5" --data "$W/syn.h5" --checkpoint "$CK"
expect_error "--init-head-from another init" "made with --init pretrained, but this run has --init random" "$W/e13" -- "$MPIRUN" -np 2 "$FPT" train --model "$W/m.h5" --data "$W/syn.h5" --init random --init-head-from "$CK" --steps 1 --run-dir "$W/e13d"
expect_error "--init-head-from another task" "out/weight is \[32, 10\] but the task needs \[32, 2\]" "$W/e14" -- "$MPIRUN" -np 2 "$FPT" train --model "$W/m.h5" --data "$W/xor.h5" --init-head-from "$CK" --steps 1 --run-dir "$W/e14d"
finish
