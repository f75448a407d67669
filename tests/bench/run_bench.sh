#!/usr/bin/env bash
# fpt bench against the identical PyTorch step, interleaved in one run so that
# both see the same machine: REPS rounds of (fpt, torch tuned, torch default).
# Prints medians and ratios and writes a JSON report.
#   tests/bench/run_bench.sh [FPT_BINARY] [REPS] [REPORT.json]
set -euo pipefail
cd "$(dirname "$0")/../.."
FPT=${1:-build/fpt}
REPS=${2:-3}
REPORT=${3:-build/bench-report.json}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
for r in $(seq "$REPS"); do
  OMP_NUM_THREADS=2 "$FPT" bench --steps 8 --warmup 2 > "$W/fpt.$r"
  tests/bench/bench_torch.py --threads 2 --policy passive --steps 8 > "$W/torch_passive.$r"
  tests/bench/bench_torch.py --threads 2 --policy default --steps 8 > "$W/torch_default.$r"
  echo "round $r: fpt $(tail -1 "$W/fpt.$r") ($(grep -o 'sgemm rate: [0-9.]*' "$W/fpt.$r" | sed 's/sgemm rate: /step\/sgemm /')), torch tuned $(tail -1 "$W/torch_passive.$r"), torch default $(tail -1 "$W/torch_default.$r")"
done
/usr/bin/python3 - "$W" "$REPS" "$REPORT" <<'PY'
import json, re, statistics, sys
w, reps, report = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def last(kind, key="median_ms_per_step"):
    return [float(re.search(key + r"=([0-9.]+)", open(f"{w}/{kind}.{r}").read()).group(1))
            for r in range(1, reps + 1)]
def grab(kind, pattern):
    return [float(re.search(pattern, open(f"{w}/{kind}.{r}").read()).group(1)) for r in range(1, reps + 1)]
f, tp, td = (statistics.median(last(k)) for k in ("fpt", "torch_passive", "torch_default"))
ratio = statistics.median(grab("fpt", r"step rate / sgemm rate: ([0-9.]+)"))
sgemm = statistics.median(grab("fpt", r"sgemm rate \(weighted by the step's GEMMs\): ([0-9.]+)"))
gflops = statistics.median(grab("fpt", r"tokens/s, [0-9.]+ samples/s, ([0-9.]+) GFLOP/s"))
out = {"fpt_ms_per_step": f, "torch_tuned_ms_per_step": tp, "torch_default_ms_per_step": td,
       "speedup_vs_torch_tuned": tp / f, "speedup_vs_torch_default": td / f,
       "fpt_gflops": gflops, "sgemm_gflops_same_run": sgemm, "step_over_sgemm": ratio, "rounds": reps}
print(f"medians over {reps} rounds: fpt {f:.0f} ms/step, torch tuned {tp:.0f}, torch default {td:.0f}")
print(f"fpt is {tp / f:.2f}x tuned PyTorch and {td / f:.2f}x default PyTorch (steps per second)")
print(f"fpt {gflops:.1f} GFLOP/s = {ratio:.3f} of the same-run cblas_sgemm rate {sgemm:.1f} GFLOP/s")
json.dump(out, open(report, "w"), indent=1)
print(f"report: {report}")
PY
