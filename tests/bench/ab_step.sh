#!/usr/bin/env bash
# The training step of two fpt binaries on one model and data file,
# interleaved (A, B, A, B, ...) so that both see the same machine: ROUNDS
# rounds of `fpt train --steps 100 --batch-size 16 --eval-every 0`, each
# reporting the median of its last three logged step_s. For a change that
# the benchmark shapes of run_bench.sh do not show, such as a backbone's own
# weights (docs/PERFORMANCE.md, "Encoders"). Stop other runs while it runs.
# Nothing here asserts a time: this is a benchmark, not a test.
#   tests/bench/ab_step.sh OLD_FPT NEW_FPT MODEL.h5 [DATA.h5] [ROUNDS] [THREADS]
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,9p "$0" >&2; exit 2; }
old=$1 new=$2 model=$3 data=${4:-data/fashion-mnist.h5} rounds=${5:-3}
export OMP_NUM_THREADS=${6:-1}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for round in $(seq "$rounds"); do
  for which in old new; do
    bin=$old
    [ $which = new ] && bin=$new
    rm -rf "$dir/run"
    if ! "$bin" train --data "$data" --model "$model" --init pretrained --seed 1 --steps 100 \
      --batch-size 16 --lr 1e-3 --log-every 20 --eval-every 0 --eval-test false \
      --run-dir "$dir/run" > "$dir/log" 2>&1; then
      echo "ab_step: $bin failed:" >&2
      tail -3 "$dir/log" >&2
      exit 1
    fi
    med=$(grep '"split":"train"' "$dir/run/metrics.jsonl" | tail -3 |
      grep -o '"step_s":[0-9.e-]*' | cut -d: -f2 | sort -g | sed -n 2p)
    echo "$(basename "$model") round $round $which step_s $med"
  done
done
