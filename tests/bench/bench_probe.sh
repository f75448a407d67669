#!/usr/bin/env bash
# fpt probe on Fashion-MNIST's training set: the time of the ridge solve
# (PDPOSV on the normal equations and PDGELS on the augmented system, per
# lambda) against the time of the feature pass, on 2 ranks and, from the
# cache, on 1 rank; and each solver's distance to numpy.linalg.lstsq.
# Two backbones: the project's (runs/pretrain/model.h5 if it exists, else a
# random 12-layer, 128-wide GPT-2), and a 1-layer, 768-wide one whose
# features have GPT-2 base's width (769 unknowns per output).
#   tests/bench/bench_probe.sh [FPT_BINARY] [OUT_DIR]
# Heavy: run it alone, e.g. nice -n 19 tests/bench/bench_probe.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
FPT=${1:-build/fpt}
OUT=${2:-build/bench-probe}
DATA=data/fashion-mnist.h5
LAMBDAS=0.01,0.1,1,10,100,1000,10000
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader OMP_NUM_THREADS=1
mkdir -p "$OUT"
[ -s "$DATA" ] || "$FPT" data fashion-mnist -o "$DATA"
if [ -s runs/pretrain/model.h5 ]; then
  MAIN=runs/pretrain/model.h5
else
  MAIN=$OUT/random-12x128.h5
  [ -s "$MAIN" ] || "$FPT" init --layers 12 --d-model 128 --heads 4 --positions 2048 -o "$MAIN" > /dev/null
fi
WIDE=$OUT/wide-1x768.h5
[ -s "$WIDE" ] || "$FPT" init --layers 1 --d-model 768 --heads 12 --positions 64 -o "$WIDE" > /dev/null

for spec in "main:$MAIN" "wide:$WIDE"; do
  name=${spec%%:*} model=${spec#*:}
  echo "== $name: $model"
  # Features on 2 ranks (recomputed), both solvers; then the same cache solved on 1 rank.
  mpirun -np 2 "$FPT" probe --model "$model" --data "$DATA" --run-dir "$OUT/$name" \
    --recompute true --solver both --lambdas "$LAMBDAS" > "$OUT/$name.np2.log" 2>&1
  mpirun -np 1 "$FPT" probe --model "$model" --data "$DATA" --run-dir "$OUT/$name-np1" \
    --cache "$OUT/$name/features.h5" --solver both --lambdas "$LAMBDAS" > "$OUT/$name.np1.log" 2>&1
  grep -E "^features: [0-9]|^system|^time|^chosen|^probe" "$OUT/$name.np2.log"
done

/usr/bin/python3 - "$OUT" "$MAIN" "$WIDE" <<'PY'
import json, re, statistics, sys, time
import h5py
import numpy as np

out, main, wide = sys.argv[1:4]
report = {}
for name, model in (("main", main), ("wide", wide)):
    r = {"model": model}
    for np_ in (2, 1):
        log = open(f"{out}/{name}.np{np_}.log").read()
        rows = re.findall(r"^(\S+)\s+(posv|gels)\s+([0-9.]+)\s+([0-9.]+)\s+(\S+)\s+([0-9.]+)\s+([0-9.]+)$", log, re.M)
        t = re.search(r"time: features ([0-9.]+) s.*cache read ([0-9.]+) s, X\^T X ([0-9.]+) s.*"
                      r"CPU per rank: features ([0-9.]+) s, X\^T X ([0-9.]+) s", log)
        d = {"read_s": float(t.group(2)), "gram_s": float(t.group(3)), "gram_cpu_s": float(t.group(5))}
        for m in ("posv", "gels"):
            for k, col in (("s", 5), ("cpu_s", 6)):
                v = [float(x[col]) for x in rows if x[1] == m]
                d[f"{m}_per_lambda_{k}"] = statistics.median(v)
                d[f"{m}_sweep_{k}"] = sum(v)
        d["posv_sweep_s"] += d["gram_s"]
        d["posv_sweep_cpu_s"] += d["gram_cpu_s"]
        d["dW_posv_gels"] = [float(x) for x in re.findall(r"max \|dW\| / max \|W\| = (\S+)", log)]
        if np_ == 2:
            d["feature_s"] = float(t.group(1))
            d["feature_cpu_s"] = float(t.group(4))
            f = re.search(r"features: (\d+) samples in ([0-9.]+) s, [0-9.]+ CPU s per rank \(([0-9.]+) samples/s", log)
            d["feature_samples_per_s"] = float(f.group(3))
            m = re.search(r"system: (\d+) rows x (\d+) unknowns", log)
            r["rows"], r["unknowns"] = int(m.group(1)), int(m.group(2))
            for s in ("train", "val", "test"):
                a = re.search(rf"probe {s}\s+loss ([0-9.]+)\s+accuracy ([0-9.]+)", log)
                r[f"{s}_accuracy"] = float(a.group(2))
            r["lambda"] = float(re.search(r"chosen lambda (\S+)", log).group(1))
        r[f"np{np_}"] = d
    # Accuracy of each solver against an SVD-based least-squares solution.
    f = h5py.File(f"{out}/{name}/features.h5", "r")
    X = f["train/features"][:].astype(np.float64)
    y = f["train/y"][:, 0]
    M, C = X.shape
    Y = np.zeros((M, int(f.attrs["n_out"])))
    Y[np.arange(M), y] = 1
    lam = r["lambda"]
    A = np.vstack([np.hstack([X, np.ones((M, 1))]), np.hstack([np.sqrt(lam) * np.eye(C), np.zeros((C, 1))])])
    B = np.vstack([Y, np.zeros((C, Y.shape[1]))])
    t0 = time.time()
    Wref = np.linalg.lstsq(A, B, rcond=None)[0]
    r["numpy_lstsq_s"] = time.time() - t0
    obj = lambda W: np.sum((A @ W - B) ** 2)
    sol = h5py.File(f"{out}/{name}/probe.h5", "r")
    for m, key in (("posv", "W"), ("gels", "W_gels")):
        W = sol[key][:]
        r[f"{m}_rel_error_vs_lstsq"] = float(np.abs(W - Wref).max() / np.abs(Wref).max())
        r[f"{m}_objective_excess"] = float(obj(W) / obj(Wref) - 1)
    r["cond_X1"] = float(np.linalg.cond(np.hstack([X, np.ones((M, 1))])))
    report[name] = r
    n2 = r["np2"]
    print(f"\n{name}: {model}, {r['rows']} rows x {r['unknowns']} unknowns, lambda {lam:g}: "
          f"train {r['train_accuracy']:.4f} val {r['val_accuracy']:.4f} test {r['test_accuracy']:.4f}")
    print(f"  feature pass (2 ranks): {n2['feature_s']:.1f} s wall, {n2['feature_cpu_s']:.1f} CPU s per rank "
          f"({n2['feature_samples_per_s']:.0f} samples/s)")
    for np_ in (2, 1):
        d = r[f"np{np_}"]
        for k, unit in (("s", "wall"), ("cpu_s", "CPU")):
            print(f"  {np_} rank(s), {unit}: posv: X^T X {d['gram_' + k]:.3f} s + {d['posv_per_lambda_' + k]:.4f} "
                  f"s/lambda (sweep of 7: {d['posv_sweep_' + k]:.3f} s); gels {d['gels_per_lambda_' + k]:.3f} "
                  f"s/lambda (sweep: {d['gels_sweep_' + k]:.2f} s)")
        print(f"  {np_} rank(s): cache read {d['read_s']:.2f} s")
    print(f"  feature pass / posv sweep (2 ranks): {n2['feature_s'] / n2['posv_sweep_s']:.0f}x wall, "
          f"{n2['feature_cpu_s'] / n2['posv_sweep_cpu_s']:.0f}x CPU; / gels sweep: "
          f"{n2['feature_s'] / n2['gels_sweep_s']:.0f}x wall, {n2['feature_cpu_s'] / n2['gels_sweep_cpu_s']:.0f}x CPU")
    print(f"  vs numpy lstsq ({r['numpy_lstsq_s']:.1f} s): posv max rel error {r['posv_rel_error_vs_lstsq']:.1e}, "
          f"objective +{r['posv_objective_excess']:.1e}; gels {r['gels_rel_error_vs_lstsq']:.1e}, "
          f"+{r['gels_objective_excess']:.1e}; cond([X 1]) = {r['cond_X1']:.1e}; posv vs gels per lambda: "
          + " ".join(f"{x:.0e}" for x in n2["dW_posv_gels"]))
json.dump(report, open(f"{out}/summary.json", "w"), indent=1)
print(f"\nreport: {out}/summary.json")
PY
