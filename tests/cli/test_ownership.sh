#!/usr/bin/env bash
# Nothing lost (issue 16 §1, §3, §4): a run directory belongs to one run (a
# lock; resume falls back to the newest checkpoint that verifies and never
# starts fresh over checkpoints; fpt probe refuses a training run's directory;
# every setting that changes the numbers must match on resume), an output is
# never an input, a dataset file that changes underneath stops the run, a FIFO
# is refused, and signals end evaluations too (75 where a checkpoint exists;
# the resume redoes the interrupted evaluation, bit for bit).
set -uo pipefail
FPT=$1
W=$2
source "$(dirname "$0")/lib.sh"
rm -rf "$W" && mkdir -p "$W"
PY=/usr/bin/python3
export OMP_NUM_THREADS=1
"$FPT" init --layers 3 --d-model 32 --heads 4 --positions 64 --seed 3 -o "$W/m.h5" > /dev/null || exit 1
"$FPT" data bit-xor --n-train 400 --n-val 64 --n-test 64 --seed 2 -o "$W/d.h5" > /dev/null || exit 1
cp "$W/d.h5" "$W/d2.h5"
"$FPT" data bit-xor --n-train 400 --n-val 64 --n-test 64 --seed 9 -o "$W/other.h5" > /dev/null || exit 1
tr() { # tr NAME NP ARGS...: fpt train on d.h5
  local name=$1 np=$2; shift 2
  "$MPIRUN" -np "$np" --oversubscribe "$FPT" train --model "$W/m.h5" --data "$W/d.h5" --batch-size 8 \
    --log-every 1 --run-dir "$W/$name" "$@" > "$W/$name.log" 2>&1
}
metrics() { $PY -c "
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r['split'] != 'run': print(r['step'], r['split'], repr(r['loss']), repr(r['accuracy']))" "$1"; }

tr ref 2 --steps 20 --checkpoint-every 5 --keep-checkpoints 4
metrics "$W/ref/metrics.jsonl" > "$W/ref.m"

# --- checkpoints/latest missing or garbage: fall back, never start fresh
for kind in missing garbage stale; do
  d=$W/latest-$kind
  tr "latest-$kind" 2 --steps 12 --checkpoint-every 5 --keep-checkpoints 4
  case $kind in
  missing) rm "$d/checkpoints/latest" ;;
  garbage) printf 'zz\n' > "$d/checkpoints/latest" ;;
  stale) printf 'ckpt-000000099.h5\n' > "$d/checkpoints/latest" ;;
  esac
  tr "latest-$kind" 2 --steps 20 --checkpoint-every 5 --keep-checkpoints 4 --resume auto
  check "latest $kind: the resume says so and uses the newest checkpoint that verifies" \
    grep -q "checkpoints/latest .*; resuming from the newest checkpoint that verifies: ckpt-000000012.h5" "$d.log"
  metrics "$d/metrics.jsonl" > "$d.m"
  check "latest $kind: metrics equal an uninterrupted run's, bit for bit" cmp -s "$W/ref.m" "$d.m"
done
d=$W/corrupt
tr corrupt 2 --steps 12 --checkpoint-every 5 --keep-checkpoints 4
cp "$d/metrics.jsonl" "$W/corrupt-metrics.before"
for c in "$d"/checkpoints/ckpt-*.h5; do # flip a byte of /params/out/weight's stored data
  $PY -c "
import h5py, sys
with h5py.File(sys.argv[1], 'r') as f:
    at = f['params/out/weight'].id.get_chunk_info(0).byte_offset + 5
with open(sys.argv[1], 'r+b') as f:
    f.seek(at); b = f.read(1); f.seek(at); f.write(bytes([b[0] ^ 0xff]))" "$c"
done
t2() { # t2 NAME ARGS...: fpt train on d.h5, 2 ranks, output to the caller
  local name=$1; shift
  "$MPIRUN" -np 2 --oversubscribe "$FPT" train --model "$W/m.h5" --data "$W/d.h5" --batch-size 8 --run-dir "$W/$name" "$@"
}
expect_error "every checkpoint corrupt: refused, not restarted" "holds 3 checkpoint file(s), but none verifies" "$W/e1" -- \
  t2 corrupt --steps 20 --checkpoint-every 5 --resume auto
check "   ... and its metrics.jsonl is untouched" cmp -s "$d/metrics.jsonl" "$W/corrupt-metrics.before"
rm "$W/latest-missing/checkpoints/latest"
expect_error "--resume none over checkpoints without a tracker" "already holds checkpoints" "$W/e2" -- \
  t2 latest-missing --steps 3 --resume none

# --- settings that change the numbers must match on resume
expect_error "resume with other freeze flags" "freeze_ln 0 -> 1" "$W/e3" -- \
  t2 ref --steps 25 --resume auto --freeze-ln true
expect_error "resume on another dataset" "data_checksum [0-9a-f]* -> [0-9a-f]*" "$W/e4" -- \
  "$MPIRUN" -np 1 "$FPT" train --model "$W/m.h5" --data "$W/other.h5" --batch-size 8 --steps 25 --run-dir "$W/ref" --resume auto
tr ref-more 1 --steps 5
tr ref-more 1 --steps 8 --resume auto --log-every 2 --keep-checkpoints 5
check "--steps, --log-every and --keep-checkpoints may change on resume" grep -q "resume: .*ckpt-000000005.h5" "$W/ref-more.log"

# --- one run per directory
"$MPIRUN" -np 1 "$FPT" train --model "$W/m.h5" --data "$W/d.h5" --batch-size 8 --log-every 1 \
  --run-dir "$W/long" --steps 100000 --checkpoint-every 100000 > "$W/long.log" 2>&1 &
LONG=$! # mpirun itself: it forwards SIGUSR1 to the rank
for _ in $(seq 100); do grep -q '"step":10,' "$W/long/metrics.jsonl" 2>/dev/null && break; sleep 0.1; done
expect_error "a second run on a directory in use" "is in use by another fpt run (host .* pid [0-9]*)" "$W/e5" -- \
  t2 long --steps 3 --resume auto
kill -USR1 $LONG
wait $LONG
rc=$?
check "the first run went on and checkpointed (exit $rc on SIGUSR1)" eval '[ $rc -eq 75 ] && test -s "$W/long/checkpoints/latest"'
expect_error "fpt probe over a training run" "holds a training run (checkpoints/)" "$W/e6" -- \
  "$MPIRUN" -np 1 "$FPT" probe --model "$W/m.h5" --data "$W/d.h5" --run-dir "$W/ref" --lambda 1
check "   ... and the run's checkpoints and config are untouched" eval 'test "$(cat "$W/ref/checkpoints/latest")" = ckpt-000000020.h5 && grep -q "steps: 20" "$W/ref/config.yaml"'

# --- an output is never an input; outputs are checked before any work
cp "$W/m.h5" "$W/m-copy.h5"
expect_error "--export equal to --model" "option --export: .*m-copy.h5 is the backbone file" "$W/e7" -- \
  "$MPIRUN" -np 1 "$FPT" train --model "$W/m-copy.h5" --data "$W/d.h5" --steps 2 --run-dir "$W/x1" --export "$W/m-copy.h5"
check "   ... the backbone is intact" cmp -s "$W/m.h5" "$W/m-copy.h5"
expect_error "--cache equal to --data" "option --cache: .*d2.h5 is an input" "$W/e8" -- \
  "$MPIRUN" -np 1 "$FPT" probe --model "$W/m.h5" --data "$W/d2.h5" --run-dir "$W/p1" --cache "$W/d2.h5" --lambda 1
check "   ... the dataset is intact" cmp -s "$W/d.h5" "$W/d2.h5"
expect_error "an --export in a directory that does not exist, before any work" "directory .*nodir does not exist" "$W/e9" -- \
  "$MPIRUN" -np 1 "$FPT" train --model "$W/m.h5" --data "$W/d.h5" --steps 2 --run-dir "$W/x2" --export "$W/nodir/out.h5"
check "a failed command leaves no empty run directory" eval '! test -e "$W/x1" && ! test -e "$W/x2" && ! test -e "$W/p1"'

# --- files that change underneath
cp "$W/d.h5" "$W/shrink.h5"
"$MPIRUN" -np 2 --oversubscribe "$FPT" train --model "$W/m.h5" --data "$W/shrink.h5" --batch-size 8 --steps 100000 \
  --log-every 1 --run-dir "$W/shrink" > "$W/shrink.log" 2>&1 &
SH=$!
for _ in $(seq 100); do grep -q '"step":5,' "$W/shrink/metrics.jsonl" 2>/dev/null && break; sleep 0.1; done
truncate -s 20000 "$W/shrink.h5"
rc=0
timeout 60 tail --pid=$SH -f /dev/null || rc=$?
wait $SH
rc=$?
check "a dataset truncated under a running job stops it (exit $rc) with one message" \
  eval '[ "$rc" -ne 0 ] && grep -q "shrink.h5: the file changed while this run reads it (its size changed)" "$W/shrink.log" && ! grep -q "\"final\"" "$W/shrink/metrics.jsonl"'
mkfifo "$W/fifo.h5"
expect_error "a FIFO as --data is refused, not waited on" "fifo.h5: not a regular file" "$W/e10" -- \
  timeout 20 "$MPIRUN" -np 1 "$FPT" train --model "$W/m.h5" --data "$W/fifo.h5" --steps 2 --run-dir "$W/x3"

# --- signals end evaluations too
"$FPT" init --layers 6 --d-model 64 --heads 4 --positions 64 --seed 3 -o "$W/big.h5" > /dev/null
ev() { "$MPIRUN" -np 2 --oversubscribe "$FPT" train --model "$W/big.h5" --task bit-xor --batch-size 8 --log-every 1 \
  --eval-every 4 --eval-samples 60000 --keep-best true --run-dir "$W/$1" "${@:2}" > "$W/$1.log" 2>&1; }
"$MPIRUN" -np 2 --oversubscribe "$FPT" train --model "$W/big.h5" --task bit-xor --batch-size 8 --log-every 1 \
  --eval-every 4 --eval-samples 60000 --keep-best true --run-dir "$W/evsig" --steps 8 > "$W/evsig.log" 2>&1 &
EV=$!
for _ in $(seq 300); do grep -q '"step":4,' "$W/evsig/metrics.jsonl" 2>/dev/null && break; sleep 0.05; done
sleep 0.2
kill -USR1 $EV
t0=$(date +%s)
wait $EV
rc=$?
check "SIGUSR1 during an evaluation: exit 75 within seconds ($(($(date +%s) - t0)) s)" eval '[ $rc -eq 75 ] && [ $(($(date +%s) - t0)) -lt 20 ]'
check "   ... the evaluation was cut short (no val line at step 4)" eval '! grep -q "step.:4,.split.:.val" "$W/evsig/metrics.jsonl"'
# A signal during that redone evaluation: 75 again (the job is requeued, not failed).
"$MPIRUN" -np 2 --oversubscribe "$FPT" train --model "$W/big.h5" --task bit-xor --batch-size 8 --log-every 1 \
  --eval-every 4 --eval-samples 60000 --keep-best true --run-dir "$W/evsig" --steps 8 --resume auto > "$W/evsig.log" 2>&1 &
EV=$!
for _ in $(seq 300); do grep -q "interrupted: doing it now" "$W/evsig.log" 2>/dev/null && break; sleep 0.05; done
sleep 0.2
kill -USR1 $EV
wait $EV
rc=$?
check "SIGUSR1 during the resume's redone evaluation: exit $rc = 75" eval '[ $rc -eq 75 ] && grep -q "stopped by a signal during the evaluation at step 4; exit 75" "$W/evsig.log"'
ev evsig --steps 8 --resume auto
check "   ... the resume redoes it" grep -q "the evaluation at step 4 was interrupted: doing it now" "$W/evsig.log"
ev evref --steps 8
metrics "$W/evsig/metrics.jsonl" > "$W/evsig.m"
metrics "$W/evref/metrics.jsonl" > "$W/evref.m"
check "   ... and the metrics equal an uninterrupted run's, bit for bit" cmp -s "$W/evsig.m" "$W/evref.m"
# The redone evaluation at step 4 is this seed's best (step 8 scores no
# higher): --keep-best keeps its weights, as the uninterrupted run did.
check "   ... and so does checkpoints/best.json ($(cat "$W/evref/checkpoints/best.json" 2>/dev/null))" \
  cmp -s "$W/evsig/checkpoints/best.json" "$W/evref/checkpoints/best.json"
"$MPIRUN" -np 2 --oversubscribe "$FPT" eval --model "$W/big.h5" --task bit-xor --eval-samples 400000 \
  --checkpoint "$W/evref/checkpoints/ckpt-000000008.h5" > "$W/eval.log" 2>&1 &
E=$!
sleep 3
kill -TERM $E
t0=$(date +%s)
wait $E
rc=$?
check "SIGTERM to fpt eval: nonzero within seconds (exit $rc, $(($(date +%s) - t0)) s)" eval '[ $rc -ne 0 ] && [ $(($(date +%s) - t0)) -lt 20 ]'
finish
