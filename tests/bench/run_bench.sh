#!/usr/bin/env bash
# fpt bench against the identical PyTorch step at every shape we care about,
# interleaved in one run so that both see the same machine: REPS rounds of
# (fpt, torch tuned[, torch default]) per shape. Both run the OpenBLAS kernel
# that `fpt --version` names for this CPU (bench_torch.py asks fpt). Prints
# medians and ratios and writes one JSON report.
#   tests/bench/run_bench.sh [FPT_BINARY] [REPS] [REPORT.json] [SHAPE ...]
# Shapes: gpt2-base fmnist bit-memory listops-512 listops-2000 full-3layer
# (default: these), and lstm-128 lstm-768: the paper's 3-layer LN-LSTM fully
# trained at the Fashion-MNIST shape, against the same LN-LSTM in PyTorch ops
# and against torch.nn.LSTM (no LayerNorms, cuDNN-style fused cell). Nothing here asserts a time: this is a benchmark, not a test.
set -euo pipefail
cd "$(dirname "$0")/../.."
FPT=${1:-build/fpt}
REPS=${2:-3}
REPORT=${3:-build/bench-report.json}
shift $(($# < 3 ? $# : 3))
SHAPES=("$@")
[ ${#SHAPES[@]} -gt 0 ] || SHAPES=(gpt2-base fmnist bit-memory listops-512 listops-2000 full-3layer)
small="--layers 12 --d-model 128 --heads 4"
declare -A ARGS=(
  [gpt2-base]="--steps 8 --warmup 2"
  [fmnist]="$small --batch-size 16 --seq 49 --d-in 16 --steps 20 --warmup 3"
  [bit-memory]="$small --batch-size 16 --seq 60 --d-in 10 --classes 100 --steps 20 --warmup 3"
  [listops-512]="$small --batch-size 16 --seq 512 --d-in 16 --steps 3 --warmup 1"
  [listops-2000]="$small --batch-size 4 --seq 2000 --d-in 16 --steps 3 --warmup 1 --eval-samples 8"
  [full-3layer]="--layers 3 --d-model 128 --heads 4 --batch-size 16 --seq 49 --d-in 16 --full 1 --steps 20 --warmup 3"
  [lstm-128]="--kind lstm --layers 3 --d-model 128 --batch-size 16 --seq 49 --d-in 16 --full 1 --steps 10 --warmup 2"
  [lstm-768]="--kind lstm --layers 3 --d-model 768 --batch-size 16 --seq 49 --d-in 16 --full 1 --steps 5 --warmup 1"
)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$FPT" --version | tee "$W/version"
for r in $(seq "$REPS"); do
  for s in "${SHAPES[@]}"; do
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=2 "$FPT" bench ${ARGS[$s]} > "$W/$s.fpt.$r"
    # shellcheck disable=SC2086
    tests/bench/bench_torch.py --fpt "$FPT" --threads 2 --policy passive ${ARGS[$s]} > "$W/$s.torch_passive.$r"
    if [ "$s" = gpt2-base ]; then
      tests/bench/bench_torch.py --fpt "$FPT" --threads 2 --policy default ${ARGS[$s]} > "$W/$s.torch_default.$r"
    fi
    if [[ $s = lstm-* ]]; then
      # shellcheck disable=SC2086
      tests/bench/bench_torch.py --fpt "$FPT" --threads 2 --policy passive --impl nn ${ARGS[$s]} > "$W/$s.torch_nn.$r"
    fi
    echo "round $r $s: fpt $(tail -1 "$W/$s.fpt.$r") ($(grep -o 'sgemm rate: [0-9.]*' "$W/$s.fpt.$r" | sed 's/sgemm rate: /step\/sgemm /'), $(grep -o 'step [0-9.]* of peak' "$W/$s.fpt.$r")), torch tuned $(tail -1 "$W/$s.torch_passive.$r")"
  done
done
/usr/bin/python3 - "$W" "$REPS" "$REPORT" "${SHAPES[@]}" <<'PY'
import json, os, re, statistics, sys
w, reps, report, shapes = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
def grab(name, pattern):
    vals = []
    for r in range(1, reps + 1):
        m = re.search(pattern, open(f"{w}/{name}.{r}").read())
        if m:
            vals.append(float(m.group(1)))
    return statistics.median(vals) if vals else None
version = dict(l.split("=", 1) for l in open(f"{w}/version").read().splitlines() if "=" in l)
out = {"cpu": version.get("cpu"), "cpu_features": version.get("cpu_features"),
       "blas_kernel": version.get("blas_kernel"), "rounds": reps, "shapes": {}}
for s in shapes:
    f = grab(f"{s}.fpt", r"median_ms_per_step=([0-9.]+)")
    tp = grab(f"{s}.torch_passive", r"median_ms_per_step=([0-9.]+)")
    d = {"fpt_ms_per_step": f, "torch_tuned_ms_per_step": tp, "speedup_vs_torch_tuned": tp / f,
         "fpt_gflops": grab(f"{s}.fpt", r"tokens/s, [0-9.]+ samples/s, ([0-9.]+) GFLOP/s"),
         "sgemm_gflops_same_run": grab(f"{s}.fpt", r"sgemm rate \(weighted by the step's GEMMs\): ([0-9.]+)"),
         "step_over_sgemm": grab(f"{s}.fpt", r"step rate / sgemm rate: ([0-9.]+)"),
         "fma_peak_gflops": grab(f"{s}.fpt", r"measured\): ([0-9.]+) GFLOP/s"),
         "step_over_peak": grab(f"{s}.fpt", r"step ([0-9.]+) of peak")}
    if os.path.exists(f"{w}/{s}.torch_default.1"):
        td = grab(f"{s}.torch_default", r"median_ms_per_step=([0-9.]+)")
        d.update(torch_default_ms_per_step=td, speedup_vs_torch_default=td / f)
    if os.path.exists(f"{w}/{s}.torch_nn.1"):
        tn = grab(f"{s}.torch_nn", r"median_ms_per_step=([0-9.]+)")
        d.update(torch_nn_lstm_ms_per_step=tn, speedup_vs_torch_nn_lstm=tn / f)
    ev, evt = grab(f"{s}.fpt", r"eval_ms=([0-9.]+)"), grab(f"{s}.torch_passive", r"eval_ms=([0-9.]+)")
    if ev:
        d.update(fpt_eval_ms=ev, torch_eval_ms=evt, eval_speedup_vs_torch_tuned=evt / ev if evt else None)
    out["shapes"][s] = d
    print(f"{s}: fpt {f:.1f} ms/step, torch tuned {tp:.1f} ({tp / f:.2f}x); "
          f"step/sgemm {d['step_over_sgemm']:.3f}, step/peak {d['step_over_peak']:.3f} "
          f"(peak {d['fma_peak_gflops']:.0f} GFLOP/s)" + (f"; eval {ev:.0f} vs {evt:.0f} ms" if ev else "")
          + (f"; torch nn.LSTM {d['torch_nn_lstm_ms_per_step']:.1f} ({d['speedup_vs_torch_nn_lstm']:.2f}x)"
             if "torch_nn_lstm_ms_per_step" in d else ""))
print(f"medians over {reps} rounds on {out['cpu']} ({out['cpu_features']}), BLAS kernel {out['blas_kernel']}")
json.dump(out, open(report, "w"), indent=1)
print(f"report: {report}")
PY
