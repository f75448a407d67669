#!/usr/bin/env bash
# --frozen-dtype fp32 against bf16 (issue 14 §5). A measurement, not a test:
# nothing here asserts a time or a score.
#
#   tests/bench/bf16_compare.sh [--fpt BIN] [--rounds N] [--threads T]
#     fpt bench at the shipped 12 x 128 Fashion-MNIST shape (batch 16, 49
#     tokens x 16 features) and at the GPT-2 base shape (12 x 768, batch 16,
#     64 x 48), fp32 and bf16 interleaved, N rounds (default 3): the median ms
#     per training step of each and the speed-up fp32 / bf16.
#
#   tests/bench/bf16_compare.sh --runs STEPS [--fpt BIN] [--threads T]
#       [--model M.h5] [--work DIR] [--out RESULTS.tsv] [--seeds "1 2 3"]
#     fpt train for STEPS steps on Fashion-MNIST (fpt data fashion-mnist) and
#     bit-xor, seeds 1 2 3, in both dtypes, on the shipped model (default
#     data/models/lm-byte-12x128.h5), batch 16; writes one TSV line per
#     (task, dtype, seed): the final val and test loss and accuracy, and the
#     median step time. Run directories go to DIR (default build/bf16-runs);
#     a finished run is not redone.
set -euo pipefail
cd "$(dirname "$0")/../.."
FPT=build/fpt ROUNDS=3 THREADS=2 RUNS=0 MODEL=data/models/lm-byte-12x128.h5
WORK=build/bf16-runs OUT="" SEEDS="1 2 3"
while [ $# -gt 0 ]; do
  case $1 in
  --fpt) FPT=$2 ;;
  --rounds) ROUNDS=$2 ;;
  --threads) THREADS=$2 ;;
  --runs) RUNS=$2 ;;
  --model) MODEL=$2 ;;
  --work) WORK=$2 ;;
  --out) OUT=$2 ;;
  --seeds) SEEDS=$2 ;;
  *) echo "bf16_compare.sh: unknown argument $1 (see the comment at the top)" >&2; exit 2 ;;
  esac
  shift 2
done
"$FPT" --version | grep -q '^cpu_features=.*avx512_bf16' ||
  { echo "bf16_compare.sh: this CPU has no AVX512_BF16 ($("$FPT" --version | grep '^cpu=')): nothing to compare" >&2; exit 1; }

bench_mode() {
  W=$(mktemp -d)
  trap 'rm -rf "$W"' EXIT
  declare -A ARGS=(
    [fmnist-12x128]="--layers 12 --d-model 128 --heads 4 --batch-size 16 --seq 49 --d-in 16 --steps 20 --warmup 3"
    [gpt2-base]="--steps 8 --warmup 2"
  )
  local shapes=(fmnist-12x128 gpt2-base)
  "$FPT" --version | grep -E '^(cpu|blas_kernel)='
  for r in $(seq "$ROUNDS"); do
    for s in "${shapes[@]}"; do
      for d in fp32 bf16; do
        # shellcheck disable=SC2086
        OMP_NUM_THREADS=$THREADS "$FPT" bench ${ARGS[$s]} --frozen-dtype $d > "$W/$s.$d.$r"
        echo "round $r $s $d: $(grep '^median_ms_per_step=' "$W/$s.$d.$r")"
      done
    done
  done
  /usr/bin/python3 - "$W" "$ROUNDS" "$THREADS" "${shapes[@]}" <<'PY'
import re, statistics, sys
w, rounds, threads, shapes = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
def ms(s, d):
    return [float(re.search(r"median_ms_per_step=([0-9.]+)", open(f"{w}/{s}.{d}.{r}").read()).group(1))
            for r in range(1, rounds + 1)]
print(f"\nmedian of {rounds} rounds, {threads} threads, ms per training step (forward, backward, Adam):")
print(f"{'shape':<16}{'fp32':>10}{'bf16':>10}{'speed-up':>10}")
for s in shapes:
    a, b = statistics.median(ms(s, "fp32")), statistics.median(ms(s, "bf16"))
    print(f"{s:<16}{a:>10.1f}{b:>10.1f}{a / b:>9.2f}x")
PY
}

runs_mode() {
  mkdir -p "$WORK"
  local fm="$WORK/fashion-mnist.h5"
  [ -e "$fm" ] || "$FPT" data fashion-mnist -o "$fm" > /dev/null
  OUT=${OUT:-$WORK/results.tsv}
  printf 'task\tdtype\tseed\tsteps\tval_loss\tval_acc\ttest_loss\ttest_acc\tmedian_step_s\n' > "$OUT"
  for task in fashion-mnist bit-xor; do
    local data=(--task bit-xor)
    [ "$task" = fashion-mnist ] && data=(--data "$fm")
    for seed in $SEEDS; do
      for d in fp32 bf16; do
        local dir="$WORK/$task-$d-s$seed"
        if ! grep -q '"final":1' "$dir/metrics.jsonl" 2>/dev/null; then
          rm -rf "$dir"
          OMP_NUM_THREADS=$THREADS "$FPT" train --model "$MODEL" "${data[@]}" --seed "$seed" \
            --steps "$RUNS" --batch-size 16 --log-every 50 --eval-every 0 --frozen-dtype $d \
            --run-dir "$dir" > "$dir.log" 2>&1 || { echo "failed: $dir (see $dir.log)" >&2; continue; }
        fi
        /usr/bin/python3 - "$dir/metrics.jsonl" "$task" "$d" "$seed" "$RUNS" >> "$OUT" <<'PY'
import json, statistics, sys
path, task, d, seed, steps = sys.argv[1:]
rows = [json.loads(l) for l in open(path)]
fin = {r["split"]: r for r in rows if r.get("final")}
step_s = statistics.median([r["step_s"] for r in rows if r["split"] == "train" and "step_s" in r] or [0])
print("\t".join([task, d, seed, steps] + [f"{fin[s][k]:.6f}" for s in ("val", "test")
                                         for k in ("loss", "accuracy")] + [f"{step_s:.4f}"]))
PY
        echo "$(tail -1 "$OUT")"
      done
    done
  done
  echo "wrote $OUT"
}

if [ "$RUNS" -gt 0 ]; then runs_mode; else bench_mode; fi
