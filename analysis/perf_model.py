#!/usr/bin/python3
"""Calibrated performance model of `fpt train` (pipeline stages x data-parallel replicas).

  analysis/perf_model.py --calibrate   # ~4-6 min: fpt bench runs -> analysis/perf_calibration.json
  analysis/perf_model.py [--project]   # projection table + analysis/perf_projection.png
  analysis/perf_model.py --validate    # ~6 min: fpt train on this machine, measured vs predicted
  analysis/perf_model.py --reanalyse V.json  # tables again from saved --save-validation runs

The equations are written out in docs/PERFORMANCE_MODEL.md. In short, one step of
an S x R layout with M micro-batches of mbs = B / (R M) samples takes

  T_step = sum_s t_s + (M - 1) max_s t_s          pipeline (1F1B; = (M+S-1) t if stages are equal)
         + 2 sum_links (alpha + bytes / beta)       activations forward + gradients backward, fill/drain
         + max_s [ring all-reduce of stage s's trainable gradients over R + Adam on them]
         + small all-reduces (grad norm over the pipeline, loss/accuracy over the world)

where t_s is stage s's forward+backward time for one micro-batch, built from the
per-token, per-block time measured with `fpt bench` on this machine:

  tau(C, T) = a C^2 + b T C + e C     (seconds per token per frozen block, fwd + input-grad bwd)

times a small-batch factor f(rows) for micro-batches of fewer than 1024 rows, divided by
the Amdahl speedup of k threads per rank and multiplied by phi, the per-core slowdown
when every core of the node is busy.

Timing on a shared VM: other jobs can only add time, so every calibration and validation
point is the best of several runs (each run's value being fpt's own median over steps);
the median over runs is printed beside it to show the noise.

Only numpy/matplotlib from Debian's /usr/bin/python3 are used.
"""
import argparse
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FPT = os.path.join(ROOT, "build", "fpt")
CAL_PATH = os.path.join(HERE, "perf_calibration.json")
PNG_PATH = os.path.join(HERE, "perf_projection.png")

MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}

# --------------------------------------------------------------------------------------
# Model shapes
# --------------------------------------------------------------------------------------

MODELS = {
    # name: (layers, width, heads, positions)
    "GPT-2 base": (12, 768, 12, 1024),
    "GPT-2 XL": (48, 1600, 25, 1024),
}
# CIFAR-10 in the FPT paper: 32x32x3 image as 64 patches of 4x4x3 = 48 features,
# one readout token, 10 classes.
CIFAR = dict(T=64, d_in=48, r=1, n_out=10)


class Shape:
    """A model + task shape as fpt builds it (readout-only last block, r readout rows)."""

    def __init__(self, L, C, H, T, d_in, r, n_out, n_pos):
        self.L, self.C, self.H, self.T = L, C, H, T
        self.d_in, self.r, self.n_out, self.n_pos = d_in, r, n_out, n_pos

    def stage_layers(self, S, s):
        """fpt_stage_layers: the LAST (L mod S) stages get one extra layer."""
        base, extra = divmod(self.L, S)
        l0 = s * base + max(0, s - (S - extra))
        n = base + (1 if s >= S - extra else 0)
        return l0, l0 + n

    def n_train_stage(self, S, s):
        """Trainable floats held (and all-reduced) by stage s: LayerNorms 4C per block,
        plus input layer + positional table on stage 0, ln_f + output layer on the last."""
        C = self.C
        l0, l1 = self.stage_layers(S, s)
        n = 4 * C * (l1 - l0)
        if s == 0:
            n += self.d_in * C + C + self.n_pos * C
        if s == S - 1:
            n += 2 * C + C * self.n_out + self.n_out
        return n

    def n_train(self):
        return self.n_train_stage(1, 0)


# --------------------------------------------------------------------------------------
# Running fpt
# --------------------------------------------------------------------------------------

def load_avg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def cpu_busy_s():
    """Busy CPU seconds of the whole machine so far (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = v[3] + v[4]  # idle + iowait
    return (sum(v[:8]) - idle) / hz


def children_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run(cmd, env_extra, timeout=900):
    """Run a command; returns (stdout, wall seconds, foreign load). The foreign load is the
    average number of cores that OTHER processes kept busy while it ran: machine busy time
    (/proc/stat) minus our children's CPU time (rusage; MPI ranks are mpirun's children),
    divided by the wall time. It is how much the shared machine disturbed the run."""
    env = dict(os.environ)
    env.update(env_extra)
    b0, c0, t0 = cpu_busy_s(), children_cpu_s(), time.time()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=timeout)
    wall = time.time() - t0
    foreign = max(0.0, ((cpu_busy_s() - b0) - (children_cpu_s() - c0)) / wall)
    if p.returncode != 0:
        sys.stderr.write(p.stdout)
        raise RuntimeError("command failed (%d): %s" % (p.returncode, " ".join(cmd)))
    return p.stdout, wall, foreign


# Calibration configurations: (tag, width, heads, batch, seq, how, timed steps)
#   how = "1t": one process, OMP_NUM_THREADS=1;
#         "2r": mpirun -np 2, each rank bound to a core with 1 thread, two independent benches
#               at once: the per-core rate with every core busy (memory/cache/clock);
#         "2t": one process with 2 threads (OMP_WAIT_POLICY=PASSIVE).
# Every run has 1 untimed warm-up step; fpt bench prints the median of the timed steps.
CAL_CONFIGS = [
    ("w768", 768, 12, 16, 64, "1t", 4),
    ("w384", 384, 6, 16, 64, "1t", 5),
    ("w256", 256, 4, 16, 64, "1t", 9),
    ("w256_T192", 256, 4, 16, 192, "1t", 5),
    ("w384_T192", 384, 6, 8, 192, "1t", 4),
    ("w768_B1", 768, 12, 1, 64, "1t", 9),
    ("w768_2ranks", 768, 12, 16, 64, "2r", 4),
    ("w768_2thr", 768, 12, 16, 64, "2t", 4),
]
CAL_LAYERS = (2, 4)


def bench_cmd(C, H, B, T, L, how, steps, warmup=1):
    args = [FPT, "bench", "--layers", str(L), "--d-model", str(C), "--heads", str(H),
            "--batch-size", str(B), "--seq", str(T), "--d-in", str(CIFAR["d_in"]),
            "--classes", str(CIFAR["n_out"]), "--steps", str(steps), "--warmup", str(warmup)]
    if how == "1t":
        return args, {"OMP_NUM_THREADS": "1"}
    if how == "2t":
        return args, {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}
    if how == "2r":
        return (["mpirun", "-np", "2", "--oversubscribe"] + args,
                dict(MPI_ENV, OMP_NUM_THREADS="1"))
    raise ValueError(how)


def run_cpu(cmd, env):
    """Like run(), plus the CPU seconds of the command's process tree."""
    c0 = children_cpu_s()
    out, wall, foreign = run(cmd, env)
    return out, wall, foreign, children_cpu_s() - c0


SPEEDUP2_RANGE = (1.2, 2.05)  # plausible 1 -> 2 thread speedups of the block time
SPEEDUP2_FALLBACK = 1.8
PHI_RANGE = (1.0, 1.6)
PHI_NOISE_FLOOR = 0.85  # plausible per-core slowdowns with both cores busy
PHI_FALLBACK = 1.1


def calibrate(rounds):
    t_start = time.time()
    runs = []
    loads = [load_avg()]
    for rnd in range(rounds):
        for (tag, C, H, B, T, how, steps) in CAL_CONFIGS:
            for L in CAL_LAYERS:
                cmd, env = bench_cmd(C, H, B, T, L, how, steps)
                out, wall, foreign, cpu = run_cpu(cmd, env)
                ms = [float(x) for x in re.findall(r"median_ms_per_step=([0-9.]+)", out)]
                rec = dict(round=rnd, tag=tag, C=C, H=H, B=B, T=T, how=how, L=L, steps=steps,
                           median_ms=ms, step_s=statistics.mean(ms) * 1e-3,
                           cpu_s=round(cpu, 3), wall_s=round(wall, 2),
                           foreign_cores=round(foreign, 3), load=load_avg(),
                           cmd=" ".join("%s=%s" % kv for kv in env.items()) + " " +
                           " ".join(c if not c.startswith("/") else os.path.relpath(c, ROOT)
                                    for c in cmd))
                runs.append(rec)
                print("round %d %-12s L=%d  median step %s ms  (%.1f s wall, other jobs %.2f "
                      "cores, load %.2f)" % (rnd, tag, L, "/".join("%.1f" % m for m in ms),
                                              wall, foreign, rec["load"][0]), flush=True)
        loads.append(load_avg())
    cal = fit_calibration(runs)
    cal["rounds"] = rounds
    cal["calibration_wall_s"] = round(time.time() - t_start, 1)
    cal["load_avg_per_round"] = loads
    cal["date"] = time.strftime("%Y-%m-%d %H:%M:%S")
    cal["host"] = dict(nproc=os.cpu_count(), uname=" ".join(os.uname()))
    cal["runs"] = runs
    with open(CAL_PATH + ".tmp", "w") as f:
        json.dump(cal, f, indent=1)
    os.replace(CAL_PATH + ".tmp", CAL_PATH)
    print_calibration(cal)
    print("wrote %s (%.0f s)" % (os.path.relpath(CAL_PATH, ROOT), cal["calibration_wall_s"]))


# --------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------

ROWS_REF = 1024  # micro-batch rows at which the per-token cost is taken as "large"


def lsq_nonneg(A, y, names):
    """Least squares, refitting without any coefficient that comes out negative."""
    keep = list(range(A.shape[1]))
    while True:
        x, *_ = np.linalg.lstsq(A[:, keep], y, rcond=None)
        if (x >= 0).all() or len(keep) == 1:
            out = np.zeros(A.shape[1])
            out[keep] = np.maximum(x, 0)
            return out
        drop = keep[int(np.argmin(x))]
        print("fit: %s came out negative, fixed at 0" % names[drop])
        keep.remove(drop)


def robust_time(recs):
    """Seconds per step for one (config, L) from its runs (one per round; a run's value is
    fpt bench's median step, averaged over ranks for "2r"). Other jobs on the VM can only
    add time, so the estimate of the step on a dedicated core is the best run ("best of N",
    as timeit does); the median over all runs is kept to show the noise."""
    vals = [r["step_s"] for r in recs]
    return dict(t=min(vals), values=vals, median_all=statistics.median(vals), n=len(vals),
                foreign=[r["foreign_cores"] for r in recs],
                foreign_best=recs[vals.index(min(vals))]["foreign_cores"])


def step_features(C, T, B, L, n_train):
    """Linear features of a one-rank step time in (a, b, e, kappa, gamma); see tau() and
    readout_block_1t(): t = B T [(L-1) tau + readout] + kappa B T C + gamma n_train."""
    rho = CIFAR["r"] / T
    BT = B * T
    return [BT * ((L - 1) * C * C + C * C * (8 + 40 * rho) / 48),
            BT * ((L - 1) * T * C + T * C * rho),
            BT * ((L - 1) * C + C * (0.25 + 0.75 * rho)),
            BT * C,
            n_train]


def fit_calibration(runs):
    cfg = {}
    for (tag, C, H, B, T, how, steps) in CAL_CONFIGS:
        c = dict(C=C, H=H, B=B, T=T, how=how)
        for L in CAL_LAYERS:
            c["L%d" % L] = robust_time([r for r in runs if r["tag"] == tag and r["L"] == L])
        t2, t4 = c["L2"]["t"], c["L4"]["t"]
        c.update(t_L2_s=t2, t_L4_s=t4, block_s=(t4 - t2) / 2, intercept_s=t2 - (t4 - t2) / 2)
        c["block_s_per_token"] = c["block_s"] / (B * T)
        cfg[tag] = c

    def shape(c, L):
        return Shape(L, c["C"], c["H"], c["T"], CIFAR["d_in"], CIFAR["r"], CIFAR["n_out"],
                     max(1024, c["T"]))

    # 1) Joint fit of every large-batch one-thread point (4 configs x L=2,4) to
    #    t = B T [(L-1) tau(C,T) + readout(C,T)] + kappa B T C + gamma n_train,
    #    tau = a C^2 + b T C + e C; least squares on relative error.
    names = ["a", "b", "e", "kappa", "gamma"]
    rows, ys = [], []
    for tag in ["w768", "w384", "w256", "w256_T192", "w384_T192"]:
        c = cfg[tag]
        for L in CAL_LAYERS:
            rows.append(step_features(c["C"], c["T"], c["B"], L, shape(c, L).n_train()))
            ys.append(c["t_L%d_s" % L])
    A, y = np.array(rows, float), np.array(ys)
    x = lsq_nonneg(A / y[:, None], np.ones(len(y)), names)
    par = dict(zip(names, [float(v) for v in x]))
    cal = dict(params=par)

    # 2) Small micro-batch factor f(64 rows) from the B=1 runs (block + readout part).
    c = cfg["w768_B1"]
    num = den = 0.0
    for L in CAL_LAYERS:
        f = step_features(c["C"], c["T"], c["B"], L, shape(c, L).n_train())
        blocks = f[0] * par["a"] + f[1] * par["b"] + f[2] * par["e"]
        rest = f[3] * par["kappa"] + f[4] * par["gamma"]
        num += blocks * (c["t_L%d_s" % L] - rest)
        den += blocks * blocks
    par["f_rows_64"] = max(1.0, num / den)

    # 3) Threads and a full node, from whole L=4 steps (a ratio of two best runs; the block
    #    difference would double the noise). Values outside a plausible range mean the other
    #    jobs on this 2-core VM took one of the two cores during every such run: a 2-thread
    #    process then waits at each barrier for its descheduled thread, and a 2-rank run
    #    shares its cores. Then the documented reference values are used instead.
    s2m = cfg["w768"]["t_L4_s"] / cfg["w768_2thr"]["t_L4_s"]
    phim = cfg["w768_2ranks"]["t_L4_s"] / cfg["w768"]["t_L4_s"]
    par["speedup_2threads_measured"], par["phi_measured"] = s2m, phim
    par["speedup_2threads_source"] = par["phi_source"] = "measured"
    s2, phi = s2m, phim
    if not (SPEEDUP2_RANGE[0] <= s2m <= SPEEDUP2_RANGE[1]):
        s2 = SPEEDUP2_FALLBACK
        par["speedup_2threads_source"] = (
            "fallback: measured %.2f is outside [%.2f, %.2f]; %.2f from "
            "/work/shared/reference/toolchain.md (2-thread sgemm 131 vs 70 GFLOP/s median; "
            "1 rank x 2 threads within noise of 2 ranks x 1 thread)" % (
                s2m, SPEEDUP2_RANGE[0], SPEEDUP2_RANGE[1], s2))
        print("calibration: 2 threads: " + par["speedup_2threads_source"])
    if PHI_NOISE_FLOOR <= phim < 1.0:
        # A busy neighbour core cannot make a rank faster: below 1 is noise, i.e. no
        # measurable slowdown on this VM.
        phi = 1.0
        par["phi_source"] = "measured %.2f, i.e. no measurable slowdown: 1.0" % phim
    elif not (PHI_RANGE[0] <= phim <= PHI_RANGE[1]):
        phi = PHI_FALLBACK
        par["phi_source"] = (
            "fallback: measured %.2f is outside [%.2f, %.2f]; %.2f from "
            "/work/shared/reference/toolchain.md (2 ranks x 1 thread 130-156 GFLOP/s together vs "
            "75-85 for one)" % (phim, PHI_RANGE[0], PHI_RANGE[1], phi))
        print("calibration: phi: " + par["phi_source"])
    par["speedup_2threads"] = s2
    # Amdahl: 1/s2 = (1-p) + p/2  ->  p = 2 (1 - 1/s2), clamped to [0, 1].
    par["amdahl_p"] = min(1.0, max(0.0, 2 * (1 - 1 / s2)))
    par["phi_node_busy"] = max(1.0, phi)

    cal["configs"] = cfg
    chk = {}
    for t, c in cfg.items():
        for L in CAL_LAYERS:
            k = 2 if c["how"] == "2t" else 1
            phi = par["phi_node_busy"] if c["how"] == "2r" else 1.0
            pred = single_step_time(cal, shape(c, L), c["B"], threads=k, phi=phi)
            meas = c["t_L%d_s" % L]
            chk["%s_L%d" % (t, L)] = dict(measured_s=meas, model_s=pred, ratio=meas / pred)
    cal["fit_check"] = chk
    a = par["a"]
    fl = 1024 * (48 * 768 ** 2 + 12 * 64 * 768)
    cal["derived"] = dict(
        gemm_gflops_equiv=48.0 / a * 1e-9 if a > 0 else None,
        block_gflops_gpt2base_B16=fl / (1024 * (a * 768 ** 2 + par["b"] * 64 * 768 +
                                                par["e"] * 768)) * 1e-9,
        block_ms_gpt2base_B16=1e3 * 1024 * (a * 768 ** 2 + par["b"] * 64 * 768 + par["e"] * 768),
        block_ms_gpt2xl_B16=1e3 * 1024 * (a * 1600 ** 2 + par["b"] * 64 * 1600 +
                                          par["e"] * 1600))
    return cal


def print_calibration(cal):
    p = cal["params"]
    print("\nCalibration: fpt bench median step per run; estimate = best run over %s rounds "
          "(median over all runs beside it)" % cal.get("rounds", "?"))
    print("| config | C | B x T | how | step L=2 ms | step L=4 ms | block ms (all-run medians) "
          "| L=4 per run ms | other jobs during the runs, cores |")
    print("|---|---|---|---|---|---|---|---|---|")
    for t, c in cal["configs"].items():
        blk_med = (c["L4"]["median_all"] - c["L2"]["median_all"]) / 2
        print("| %s | %d | %d x %d | %s | %.1f | %.1f | %.1f (%.1f) | %s | %s |" % (
            t, c["C"], c["B"], c["T"], c["how"], c["t_L2_s"] * 1e3, c["t_L4_s"] * 1e3,
            c["block_s"] * 1e3, blk_med * 1e3,
            ", ".join("%.0f" % (v * 1e3) for v in c["L4"]["values"]),
            ", ".join("%.1f" % f for f in c["L2"]["foreign"] + c["L4"]["foreign"])))
    print("\ntau(C,T) = a C^2 + b T C + e C  [s per token per block]:  a=%.4g  b=%.4g  e=%.4g"
          % (p["a"], p["b"], p["e"]))
    print("  GPT-2 base block at B16xT64: %.1f ms (%.1f GFLOP/s over its 48 C^2 + 12 T C "
          "flops per token); XL block: %.1f ms" % (
              cal["derived"]["block_ms_gpt2base_B16"],
              cal["derived"].get("block_gflops_gpt2base_B16", float("nan")),
              cal["derived"]["block_ms_gpt2xl_B16"]))
    print("f_rows(64) = %.3f   kappa = %.3g s/(token*C)   gamma = %.3g s/param" % (
        p["f_rows_64"], p["kappa"], p["gamma"]))
    print("2 threads: speedup %.2f (%s) -> Amdahl p = %.3f" % (
        p["speedup_2threads"], p.get("speedup_2threads_source", ""), p["amdahl_p"]))
    print("phi (per-core slowdown, both cores busy) = %.3f (%s)" % (
        p["phi_node_busy"], p.get("phi_source", "")))
    print("\nfit check (measured / model step time):")
    for k, v in cal["fit_check"].items():
        print("  %-18s %8.1f ms  model %8.1f ms  ratio %.3f" % (
            k, v["measured_s"] * 1e3, v["model_s"] * 1e3, v["ratio"]))


def load_calibration(path=CAL_PATH):
    if not os.path.exists(path):
        sys.exit("no %s: run `analysis/perf_model.py --calibrate` first" % path)
    with open(path) as f:
        return json.load(f)


# --------------------------------------------------------------------------------------
# Compute model (one thread, alone on the node, then scaled)
# --------------------------------------------------------------------------------------

def f_rows(cal, rows):
    """Per-token slowdown of a micro-batch of `rows` = mbs x T rows relative to >= 1024 rows.
    Each GEMM call packs its weight panel (cost ~ K N, independent of the rows M) and forks
    its threads once, so the per-row cost is ~ 1 + c / rows; c is fixed by the measured
    factor at 64 rows (fpt bench --batch-size 1):  f = (1 + c/rows) / (1 + c/1024)."""
    if rows >= ROWS_REF:
        return 1.0
    f64 = cal["params"]["f_rows_64"]
    # (1 + c/64) = f64 (1 + c/1024)  ->  c = (f64 - 1) / (1/64 - f64/1024)
    c = (f64 - 1.0) / (1.0 / 64 - f64 / ROWS_REF) if f64 < 16 else 1e9
    return (1 + c / rows) / (1 + c / ROWS_REF)


def tau(cal, C, T):
    p = cal["params"]
    return p["a"] * C * C + p["b"] * T * C + p["e"] * C


def full_block_1t(cal, sh, mbs):
    """One frozen block, forward + input-gradient backward, one micro-batch, seconds."""
    return mbs * sh.T * f_rows(cal, mbs * sh.T) * tau(cal, sh.C, sh.T)


def readout_block_1t(cal, sh, mbs):
    """The last block: K|V (and LN1) for all T rows, the rest only for r rows.
    GEMM flops per token: 8 C^2 for K,V (fwd+bwd) of 48 C^2; 40 C^2 for the r rows."""
    p = cal["params"]
    C, T, rho = sh.C, sh.T, sh.r / sh.T
    per_tok = (p["a"] * C * C * (8 + 40 * rho) / 48 + p["b"] * T * C * rho +
               p["e"] * C * (0.25 + 0.75 * rho))
    return mbs * T * f_rows(cal, mbs * T) * per_tok


def stage_time_1t(cal, sh, S, s, mbs):
    """Stage s's forward+backward for one micro-batch (1 thread, alone)."""
    l0, l1 = sh.stage_layers(S, s)
    t = 0.0
    for l in range(l0, l1):
        t += readout_block_1t(cal, sh, mbs) if l == sh.L - 1 else full_block_1t(cal, sh, mbs)
    if s == 0:  # input layer, positions, dropout (+ the small head, folded into kappa)
        t += cal["params"]["kappa"] * mbs * sh.T * sh.C
    return t


THREAD_MODEL = "amdahl"  # or "linear": k x (speedup_2threads / 2), an optimistic bound


def thread_speedup(cal, k):
    """Speedup of one rank with k threads over 1 thread. Only k = 2 is measured; Amdahl's law
    with the serial fraction that reproduces it is the default extrapolation."""
    if k == 1:
        return 1.0
    if THREAD_MODEL == "linear":
        return k * cal["params"]["speedup_2threads"] / 2
    p = cal["params"]["amdahl_p"]
    return 1.0 / ((1 - p) + p / k)


def single_step_time(cal, sh, B, threads=1, phi=1.0):
    """One rank holding the whole model, one micro-batch of B (what fpt bench times)."""
    t = stage_time_1t(cal, sh, 1, 0, B) + cal["params"]["gamma"] * sh.n_train()
    return t * phi / thread_speedup(cal, threads)


# --------------------------------------------------------------------------------------
# Communication and the step model
# --------------------------------------------------------------------------------------

class Net:
    def __init__(self, a_intra, b_intra, a_inter, b_inter):
        self.a_intra, self.b_intra = a_intra, b_intra
        self.a_inter, self.b_inter = a_inter, b_inter


def ring_allreduce(R, nbytes, alpha, beta):
    if R <= 1:
        return 0.0
    return 2 * (R - 1) * alpha + 2.0 * (R - 1) / R * nbytes / beta


def step_time(cal, sh, net, S, R, M, B, k, P, phi, detail=False):
    """Seconds per training step. S stages x R replicas, M micro-batches, k threads per
    rank, P ranks per node (rank = replica*S + stage, consecutive ranks share a node)."""
    mbs = B // (R * M)
    speed = thread_speedup(cal, k) / phi
    ts = [stage_time_1t(cal, sh, S, s, mbs) / speed for s in range(S)]
    compute = sum(ts) + (M - 1) * max(ts)
    ideal = (sum(ts) * M) / S  # perfectly balanced, no bubble
    # Point-to-point: activation (forward) and gradient (backward) of one micro-batch per
    # link, on the fill/drain path; in steady state the non-blocking sends overlap compute.
    # The worst replica decides: count links that cross a node boundary.
    msg = mbs * sh.T * sh.C * 4
    p2p = 0.0
    for rep in range(R):
        t = 0.0
        for s in range(S - 1):
            r0 = rep * S + s
            inter = (r0 // P) != ((r0 + 1) // P)
            a_, b_ = (net.a_inter, net.b_inter) if inter else (net.a_intra, net.b_intra)
            t += 2 * (a_ + msg / b_)
        p2p = max(p2p, t)
    # All-reduce of each stage's trainable gradients over its R replicas (concurrently for all
    # stages). Replicas of a stage are S ranks apart; the ring stays in a node if all R fit.
    world = S * R
    nodes = -(-world // P)
    ar = 0.0
    adam = 0.0
    for s in range(S):
        nb = 4 * sh.n_train_stage(S, s)
        if R > 1:
            if nodes == 1:
                t = ring_allreduce(R, nb, net.a_intra, net.b_intra)
            else:
                # every stage ring leaving a node shares that node's NIC
                flows = max(1, min(P, S))
                t = ring_allreduce(R, nb, net.a_inter, net.b_inter / flows)
            ar = max(ar, t)
        adam = max(adam, cal["params"]["gamma"] * sh.n_train_stage(S, s) * phi /
                   thread_speedup(cal, k))
    # Grad-norm all-reduce over the pipeline + loss/accuracy over the world (a few bytes).
    a_small = net.a_intra if nodes == 1 else net.a_inter
    small = 2 * a_small * (math.ceil(math.log2(S)) if S > 1 else 0) + \
        2 * a_small * (math.ceil(math.log2(world)) if world > 1 else 0)
    total = compute + p2p + ar + small + adam
    if not detail:
        return total
    return dict(total=total, compute=compute, ideal=ideal, bubble=compute - ideal, p2p=p2p,
                allreduce=ar + small, adam=adam, stage_times=ts, mbs=mbs, nodes=nodes,
                mem_node_gb=node_memory(sh, S, R, M, B, P) / 1e9)


def node_memory(sh, S, R, M, B, P):
    """Bytes on the fullest node (the first): per rank, the activations fpt allocates (one
    slot per micro-batch that 1F1B can hold live on the stage, min(S - s, M): 16C + H T floats
    per token and block plus 16C per token of backward scratch; and a receive buffer of C per
    token for each micro-batch and direction) and 4 copies of the trainable floats
    (value, gradient, Adam m and v); per stage present on the node, one copy of its frozen
    weights (--shared-weights, the default: 12 C^2 + 13 C floats per block)."""
    C, T = sh.C, sh.T
    mbs = B // (R * M)
    ranks = range(min(P, S * R))
    total = 0.0
    stages = set()
    for r in ranks:
        s = r % S
        l0, l1 = sh.stage_layers(S, s)
        slots = min(S - s, M)
        total += 4 * slots * mbs * T * ((l1 - l0) * (16 * C + sh.H * T) + 16 * C)
        total += 4 * M * mbs * T * C * ((s > 0) + (s < S - 1))
        total += 4 * 4 * sh.n_train_stage(S, s)
        stages.add(s)
    for s in stages:
        l0, l1 = sh.stage_layers(S, s)
        total += 4 * (l1 - l0) * (12 * C * C + 13 * C)
    return total


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def best_layout(cal, sh, net, B, N, c, max_threads=None, tie=0.01, min_S=1):
    """Enumerate threads per rank k (powers of 2 dividing c), S (1..L), R | B, M | B/R, with
    S*R ranks fitting on N nodes of c/k ranks each. Returns the fastest; among layouts within
    `tie` of it, the one using the fewest cores, then the fewest stages (a pipeline that buys
    0.1 % of all-reduce time is not worth reporting)."""
    cands = []
    phi = cal["params"]["phi_node_busy"]
    k = 1
    while k <= min(c, max_threads or c):
        if c % k == 0:
            P = c // k
            for S in range(min_S, sh.L + 1):
                for R in divisors(B):
                    if S * R > N * P:
                        continue
                    for M in divisors(B // R):
                        t = step_time(cal, sh, net, S, R, M, B, k, P, phi)
                        cands.append((t, S * R * k, S, M, dict(S=S, R=R, M=M, k=k, P=P)))
        k *= 2
    tbest = min(cand[0] for cand in cands)
    ok = [cand for cand in cands if cand[0] <= tbest * (1 + tie)]
    t, cores, _, _, lay = min(ok, key=lambda cand: (cand[1], cand[2], cand[3], cand[0]))
    d = step_time(cal, sh, net, lay["S"], lay["R"], lay["M"], B, lay["k"], lay["P"], phi,
                  detail=True)
    lay.update(d)
    lay["cores_used"] = cores
    return lay


# --------------------------------------------------------------------------------------
# Projection
# --------------------------------------------------------------------------------------

NODES = [1, 2, 4, 8, 16, 32, 64]
CORES = [16, 32, 64]
BATCHES = [16, 256]


def project(cal, net, png=PNG_PATH, detail=False, max_threads=None):
    res = {}
    for name, (L, C, H, npos) in MODELS.items():
        sh = Shape(L, C, H, CIFAR["T"], CIFAR["d_in"], CIFAR["r"], CIFAR["n_out"], npos)
        for B in BATCHES:
            for c in CORES:
                for N in NODES:
                    r = best_layout(cal, sh, net, B, N, c, max_threads)
                    rp = best_layout(cal, sh, net, B, N, c, max_threads, min_S=2)
                    r["pipe"] = dict((k, rp[k]) for k in ("S", "R", "M", "k", "total", "bubble"))
                    res[(name, B, c, N)] = r
    print("\nNetwork: inter-node alpha %.2g s, beta %.3g B/s; intra-node alpha %.2g s, beta %.3g B/s"
          % (net.a_inter, net.b_inter, net.a_intra, net.b_intra))
    print("Per-core rate / phi = %.2f (all cores busy); threads per rank: %s (2 threads: %.2fx)%s\n"
          % (cal["params"]["phi_node_busy"],
             "Amdahl p = %.3f" % cal["params"]["amdahl_p"] if THREAD_MODEL == "amdahl"
             else "linear", cal["params"]["speedup_2threads"],
             "; at most %d threads per rank" % max_threads if max_threads else ""))
    for name in MODELS:
        for B in BATCHES:
            print("### %s, CIFAR-10 shape (T=64), global batch B=%d\n" % (name, B))
            print("| nodes | " + " | ".join("%d cores/node: steps/s (eff.) | layout S x R, M, thr"
                                            % c for c in CORES) + " |")
            print("|---" * (1 + 2 * len(CORES)) + "|")
            for N in NODES:
                cells = []
                for c in CORES:
                    r = res[(name, B, c, N)]
                    r1 = res[(name, B, c, 1)]
                    eff = (1 / r["total"]) / (N / r1["total"])
                    r["eff"] = eff
                    cells.append("%.3g (%.0f %%)" % (1 / r["total"], 100 * eff))
                    cells.append("%dx%d, %d, %d" % (r["S"], r["R"], r["M"], r["k"]))
                print("| %d | %s |" % (N, " | ".join(cells)))
            print()
    if detail:
        print("| model | B | cores/node | nodes | S | R | M | thr | cores used | step s | "
              "compute | bubble | p2p | all-reduce | Adam | GB/node | best with S>=2: "
              "S x R, M, thr; step s |")
        print("|---" * 17 + "|")
        for (name, B, c, N), r in res.items():
            print("| %s | %d | %d | %d | %d | %d | %d | %d | %d | %.4g | %.4g | %.4g | %.2g | "
                  "%.2g | %.2g | %.1f | %dx%d, %d, %d; %.4g |" % (
                      name, B, c, N, r["S"], r["R"], r["M"], r["k"], r["cores_used"], r["total"],
                      r["compute"], r["bubble"], r["p2p"], r["allreduce"], r["adam"],
                      r["mem_node_gb"], r["pipe"]["S"], r["pipe"]["R"], r["pipe"]["M"],
                      r["pipe"]["k"], r["pipe"]["total"]))
    plot(res, png)
    return res


def plot(res, png):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colors = {"GPT-2 base": "tab:blue", "GPT-2 XL": "tab:red"}
    styles = {16: ("o", ":"), 32: ("s", "--"), 64: ("^", "-")}
    fig, axes = plt.subplots(2, 2, figsize=(13, 9.5), sharex=True)
    for row, B in enumerate(BATCHES):
        ax, axe = axes[row]
        for name in MODELS:
            for c in CORES:
                mk, ls = styles[c]
                sps = [1 / res[(name, B, c, N)]["total"] for N in NODES]
                eff = [100 * res[(name, B, c, N)]["eff"] for N in NODES]
                lab = "%s, %d cores/node" % (name, c)
                ax.plot(NODES, sps, ls, marker=mk, color=colors[name], label=lab)
                axe.plot(NODES, eff, ls, marker=mk, color=colors[name], label=lab)
        # ideal linear scaling from the 1-node, 64-core point
        for name in MODELS:
            s1 = 1 / res[(name, B, 64, 1)]["total"]
            ax.plot(NODES, [s1 * n for n in NODES], color=colors[name], lw=0.8, alpha=0.35)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_ylabel("training steps / s")
        ax.set_title("steps/s, global batch B=%d (faint: linear from 1 node x 64 cores)" % B)
        ax.grid(True, which="both", alpha=0.3)
        axe.set_xscale("log", base=2)
        axe.set_ylim(0, 105)
        axe.set_ylabel("parallel efficiency vs 1 node (%)")
        axe.set_title("efficiency, global batch B=%d" % B)
        axe.grid(True, alpha=0.3)
        share = max((res[(nm, B, c, N)]["allreduce"] + res[(nm, B, c, N)]["p2p"]) /
                    res[(nm, B, c, N)]["total"] for nm in MODELS for c in CORES for N in NODES)
        note = ("blue (base) and red (XL) overlap: compute dominates;\n"
                "communication is at most %.1f %% of a step" % (100 * share))
        if B == 16:
            note += ("\nB=16: at most 16 replicas; beyond them only threads\n"
                     "per rank (Amdahl) add speed, so the curves go flat")
        axe.text(0.03, 0.03, note, transform=axe.transAxes, fontsize=8.5, va="bottom",
                 bbox=dict(boxstyle="round", fc="white", ec="0.7", alpha=0.9))
    for ax in axes[1]:
        ax.set_xlabel("nodes")
        ax.set_xticks(NODES)
        ax.set_xticklabels([str(n) for n in NODES])
    axes[0][1].legend(fontsize=8.5, loc="upper right")
    fig.suptitle("fpt projected step rate, CIFAR-10 shape (T=64, 48 features, 10 classes), "
                 "best S x R x M x threads per point\n(calibrated on a 2-core EPYC VM; "
                 "100 Gb/s-class network: alpha 1.5 us, 12 GB/s)", fontsize=11)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    print("wrote %s" % os.path.relpath(png, ROOT))


# --------------------------------------------------------------------------------------
# Validation on this machine
# --------------------------------------------------------------------------------------

NCORES_LOCAL = os.cpu_count() or 2
VAL = dict(L=5, C=512, H=8, bits=32, B=8, positions=256)
# (name, S, R, M): ranks = S*R
VAL_LAYOUTS = [("1 rank M=1", 1, 1, 1), ("1 rank M=2", 1, 1, 2), ("1 rank M=4", 1, 1, 4),
               ("1 rank M=8", 1, 1, 8), ("S=1 R=2", 1, 2, 1), ("S=2 R=1 M=1", 2, 1, 1),
               ("S=2 R=1 M=2", 2, 1, 2), ("S=2 R=1 M=4", 2, 1, 4), ("S=2 R=1 M=8", 2, 1, 8)]


def read_metrics(path, skip=1):
    rows = []
    with open(path) as f:
        for line in f:
            d = json.loads(line)
            if d.get("split") == "train" and "step_s" in d:
                rows.append(d)
    return rows[skip:]


VAL_KEYS = ["step_s", "compute_s", "p2p_wait_s", "allreduce_s"]


def validate(cal, net_local, reps, steps, workdir, save=None):
    """Run every layout `reps` times (interleaved, so a burst of other jobs hits one rep of
    everything rather than every rep of one layout), then analyse()."""
    t_start = time.time()
    os.makedirs(workdir, exist_ok=True)
    model = os.path.join(workdir, "val_model.h5")
    init_cmd = [FPT, "init", "--layers", str(VAL["L"]), "--d-model", str(VAL["C"]), "--heads",
                str(VAL["H"]), "--positions", str(VAL["positions"]), "--seed", "1", "-o", model]
    if not os.path.exists(model):
        run(init_cmd, {})
    runs = {lay[0]: [] for lay in VAL_LAYOUTS}
    loads = [load_avg()]
    cmds = {}
    for rep in range(reps):
        for (name, S, R, M) in VAL_LAYOUTS:
            rd = os.path.join(workdir, "run_%s_%d" % (re.sub(r"[^A-Za-z0-9]+", "_", name), rep))
            cmd = ["mpirun", "-np", str(S * R), "--oversubscribe", FPT, "train", "--model", model,
                   "--task", "bit-memory", "--bit-length", str(VAL["bits"]), "--patch", "1",
                   "--steps", str(steps), "--stages", str(S), "--micro-batches", str(M),
                   "--batch-size", str(VAL["B"]), "--log-every", "1", "--eval-samples", "8",
                   "--run-dir", rd]
            cmds[name] = "OMP_NUM_THREADS=1 " + " ".join(
                os.path.relpath(c, ROOT) if c == FPT else c for c in cmd)
            out, wall, foreign = run(cmd, dict(MPI_ENV, OMP_NUM_THREADS="1"))
            rows = read_metrics(os.path.join(rd, "metrics.jsonl"), skip=1)
            runs[name].append(dict(rep=rep, foreign_cores=foreign, wall_s=wall,
                                   rows=[{k: r[k] for k in VAL_KEYS} for r in rows]))
            print("rep %d %-12s step_s %s  (%.1f s wall, other jobs %.2f cores, load %.2f)" % (
                rep, name, " ".join("%.3f" % r["step_s"] for r in rows), wall, foreign,
                load_avg()[0]), flush=True)
        loads.append(load_avg())
    data = dict(runs=runs, loads=loads, wall_s=time.time() - t_start, commands=cmds,
                init=" ".join(os.path.relpath(c, ROOT) if c == FPT else c for c in init_cmd),
                reps=reps, steps=steps)
    if save:
        with open(save, "w") as f:
            json.dump(data, f, indent=1)
        print("wrote %s" % save)
    analyse(cal, net_local, data)


def analyse(cal, net_local, data):
    """Measured vs predicted. A run's value is the median over its steps (the first step is
    dropped); per layout, the best run estimates the time on a machine without other jobs
    (they can only add time), the median over runs is shown beside it."""
    sh = Shape(VAL["L"], VAL["C"], VAL["H"], 6 * VAL["bits"], 1, VAL["bits"], 2, VAL["positions"])
    phi = cal["params"]["phi_node_busy"]
    res = {}
    for (name, S, R, M) in VAL_LAYOUTS:
        per_run = []
        for r in data["runs"][name]:
            med = {k: statistics.median(x[k] for x in r["rows"]) for k in VAL_KEYS}
            med["foreign_cores"] = r["foreign_cores"]
            per_run.append(med)
        best = min(per_run, key=lambda m: m["step_s"])
        world = S * R
        d = step_time(cal, sh, net_local, S, R, M, VAL["B"], 1, 2, phi if world > 1 else 1.0,
                      detail=True)
        res[name] = dict(S=S, R=R, M=M, best=best, runs=per_run,
                         median_all=statistics.median(m["step_s"] for m in per_run),
                         predicted=d)

    print("\nValidation: %d-layer %d-wide %d-head random GPT-2, bit-memory (T=%d, r=%d), "
          "global batch %d; %d reps x %d steps (first step of each run dropped)\n" % (
              VAL["L"], VAL["C"], VAL["H"], sh.T, sh.r, VAL["B"], data["reps"], data["steps"]))
    print("| layout | ranks | mbs | measured step s: best run (median of runs) | compute s | "
          "p2p wait s | all-reduce s | other jobs, cores | predicted s | measured / predicted: "
          "best (median) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (name, S, R, M) in VAL_LAYOUTS:
        r = res[name]
        m, p = r["best"], r["predicted"]
        print("| %s | %d | %d | %.3f (%.3f) | %.3f | %.3f | %.4f | %.2f | %.3f | %.2f (%.2f) |" % (
            name, S * R, p["mbs"], m["step_s"], r["median_all"], m["compute_s"],
            m["p2p_wait_s"], m["allreduce_s"], m["foreign_cores"], p["total"],
            m["step_s"] / p["total"], r["median_all"] / p["total"]))

    print("\nPipeline bubble, S=2, R=1 (theory (S-1)/(M+S-1) assumes equal stages and free "
          "communication; the model adds this split's stage imbalance)\n")
    print("| M | theory | model | measured: 1 - t(S=1,M) / (2 t(S=2,M)) "
          "| measured: p2p wait / step (slowest rank) |")
    print("|---|---|---|---|---|")
    bub = {}
    for M in (1, 2, 4, 8):
        r2, r1 = res["S=2 R=1 M=%d" % M], res["1 rank M=%d" % M]
        theo = 1.0 / (M + 1)
        p = r2["predicted"]
        model_b = 1 - (r1["predicted"]["total"] / 2) / p["total"]
        m2, m1 = r2["best"]["step_s"], r1["best"]["step_s"]
        wait = r2["best"]["p2p_wait_s"] / m2
        meas = 1 - m1 / (2 * m2)
        meas_phi = 1 - phi * m1 / (2 * m2)
        bub[M] = dict(theory=theo, model=model_b, measured=meas, measured_phi=meas_phi,
                      wait_share=wait)
        print("| %d | %.3f | %.3f | %.3f | %.3f |" % (M, theo, model_b, meas, wait))
    r = res["S=1 R=2"]
    share = r["best"]["allreduce_s"] / r["best"]["step_s"]
    shares = [m["allreduce_s"] / m["step_s"] for m in r["runs"]]
    pshare = r["predicted"]["allreduce"] / r["predicted"]["total"]
    print("\nAll-reduce share of the step, S=1 R=2: best run %.2f %% (%.4f s of %.3f s), runs %s;"
          " model %.3f %% (ring of %d floats = %.0f KB). The measured time includes waiting for "
          "the slower replica." % (100 * share, r["best"]["allreduce_s"], r["best"]["step_s"],
                                   ", ".join("%.1f %%" % (100 * x) for x in shares),
                                   100 * pshare, sh.n_train(), 4 * sh.n_train() / 1e3))
    print("validation wall time %.0f s; load average after each rep %s" % (
        data["wall_s"], ", ".join("%.2f" % l[0] for l in data["loads"])))
    return res, bub


# --------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calibrate", action="store_true", help="run fpt bench, write %s" % CAL_PATH)
    ap.add_argument("--project", action="store_true", help="projection table + PNG (default)")
    ap.add_argument("--validate", action="store_true", help="fpt train runs on this machine")
    ap.add_argument("--rounds", type=int, default=3, help="calibration rounds (medians)")
    ap.add_argument("--reps", type=int, default=3, help="validation repetitions")
    ap.add_argument("--val-steps", type=int, default=5, help="steps per validation run")
    ap.add_argument("--workdir", default="/tmp/fpt_perf_validate")
    ap.add_argument("--save-validation", default=None, help="write validation runs (JSON)")
    ap.add_argument("--reanalyse", default=None, metavar="JSON",
                    help="analyse saved validation runs again (e.g. after recalibrating)")
    ap.add_argument("--detail", action="store_true", help="projection: every layout's breakdown")
    ap.add_argument("--png", default=PNG_PATH)
    ap.add_argument("--local-alpha", type=float, default=1e-6,
                    help="validation (this VM, shared memory): latency s (default 1 us)")
    ap.add_argument("--local-beta", type=float, default=2.7e9,
                    help="validation: bandwidth B/s (default 2.7 GB/s, from toolchain.md)")
    ap.add_argument("--thread-model", choices=["amdahl", "linear"], default="amdahl",
                    help="extrapolation of the 1->2 thread speedup to k threads per rank")
    ap.add_argument("--max-threads", type=int, default=None, help="cap on threads per rank")
    ap.add_argument("--alpha-inter", type=float, default=1.5e-6, help="s (default 1.5 us)")
    ap.add_argument("--beta-inter", type=float, default=12e9, help="B/s (default 12 GB/s)")
    ap.add_argument("--alpha-intra", type=float, default=0.3e-6, help="s (default 0.3 us)")
    ap.add_argument("--beta-intra", type=float, default=10e9, help="B/s (default 10 GB/s)")
    a = ap.parse_args()
    net = Net(a.alpha_intra, a.beta_intra, a.alpha_inter, a.beta_inter)
    # This VM's shared memory (Open MPI vader): 3.5 MB all-reduced over 2 ranks in 1.3 ms
    # (toolchain.md), i.e. a ring's bytes / beta = 1.3 ms -> beta = 2.7 GB/s.
    net_local = Net(a.local_alpha, a.local_beta, a.local_alpha, a.local_beta)
    global THREAD_MODEL
    THREAD_MODEL = a.thread_model
    if a.calibrate:
        calibrate(a.rounds)
    if a.validate:
        cal = load_calibration()
        validate(cal, net_local, a.reps, a.val_steps, a.workdir, a.save_validation)
    if a.reanalyse:
        with open(a.reanalyse) as f:
            analyse(load_calibration(), net_local, json.load(f))
    if a.project or not (a.calibrate or a.validate or a.reanalyse):
        cal = load_calibration()
        print_calibration(cal)
        project(cal, net, a.png, a.detail, a.max_threads)


if __name__ == "__main__":
    main()
