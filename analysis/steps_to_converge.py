#!/usr/bin/python3
"""Gradient steps to converge, in the shape of the paper's Table 6 (FPT vs random init).

  analysis/steps_to_converge.py runs/exp -o steps.md [--fraction 0.99] [--csv steps.csv] [--into RESULTS.md]

Reads RUNS_DIR/TASK/ARM/seedN/metrics.jsonl (arms fpt and random) and writes
Markdown (stdout, or -o FILE) with rows FPT, Random and Speed-up (ours, and the
paper's Table 6 beside: fashion-mnist shows the paper's MNIST column, pfam its
Homology column; listops-x2 has none), one column per task.

Convergence rule (per FINISHED run; finished = a final test line exists).
Let a_1..a_K be the run's val accuracies at its evaluation steps s_1 < ... < s_K
(every periodic evaluation and the final one), best = max a_k, and the
threshold = FRACTION x best (FRACTION = 0.99 by default: within 1 % of the run's
own best). The run converged at s_k for the first k with a_k >= threshold,
provided k < K, i.e. a later evaluation exists: the curve was already within
1 % of its best before the budget ran out. If only the last evaluation reaches
the threshold (the run was still improving at the end), the run did not
converge within its budget: "> B", B = its step budget (config.yaml `steps`,
else its last step).

Cell. The median over the finished seeds (an even count: the mean of the two
middle values), counting "> B" as larger than any step; when the median involves
a "> B" run the cell is "> B" (the largest such B). "(n=K)" follows when K < 3
or seeds are missing (seeds any arm of the task has). "—": no finished run.
Speed-up = median(random) / median(fpt): "> x" when only random is "> B"
(x = B / fpt), "< x" when only fpt is (x = random / B), "—" when both are.

Second table, steps to a common target: per task, target = the median best
val accuracy of the Random arm's finished runs (what random init reaches within
its budget). Each run's cell is the first evaluation step (the final one
included) whose val accuracy reaches the target ("> B" if none does); the
medians and Speed-up = Random / FPT as above. This compares the two arms at the
same accuracy, which a short budget does not bias the way the relative rule can.

Caveat: the threshold is relative to each run's own best, so a run that plateaus
at chance converges "fast"; the median best val accuracy is printed under the
table so a fast but low plateau shows. The paper's Table 6 counts steps to each
model's own converged accuracy as well.

How the runs ended (every arm): per cell the number of finished runs that
ended on a plateau (early stop: the final evaluation's step is below the step
cap, config.yaml steps) and on the cap, and the unfinished ones; "past its early
stop": the run trained on after the evaluation at which early stopping on val
accuracy ends it (its val lines show where; a resume before commit f8ca1df
restarted that patience count).

Protocol: as analysis/results_table.py, runs of one cell with different step
caps, patience, lr or batch are refused (exit 2, nothing written).

--csv FILE writes one line per run: task, arm, seed, best_val, threshold,
converged_step (empty when not converged), converged (yes/no), budget, finished,
ended (early stop / cap; empty when unfinished).

Debian's /usr/bin/python3 with numpy only.
"""
import argparse
import csv
import io
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fptruns as fr  # noqa: E402

ARMS = ["fpt", "random"]


def converge(run, fraction):
    """(best_val, threshold, step or None, budget) of a run with evaluations."""
    curve = run.val_curve
    best = max(v for _, v in curve)
    thr = fraction * best
    budget = run.budget if run.budget is not None else run.steps_done
    for k, (step, v) in enumerate(curve):
        if v >= thr:
            return best, thr, (step if k < len(curve) - 1 else None), budget
    return best, thr, None, budget  # not reached: cannot happen (best reaches it)


def median_steps(results):
    """results: [(step or None, budget)] -> (value, over) where over=True means '> value'."""
    vals = sorted((math.inf if s is None else s) for s, _ in results)
    n = len(vals)
    mid = vals[(n - 1) // 2: n // 2 + 1]
    if any(math.isinf(v) for v in mid):
        return max(b for s, b in results if s is None), True
    return sum(mid) / len(mid), False


def fmt_steps(v):
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"


def cell(res, n_expected):
    if not res:
        return fr.NO_VALUE
    v, over = median_steps(res)
    txt = f"> {fmt_steps(v)}" if over else fmt_steps(v)
    n = len(res)
    if n < 3 or n < n_expected:
        txt += f" (n={n})"
    return txt


def speedup(res_f, res_r):
    if not res_f or not res_r:
        return fr.NO_VALUE
    (f, fo), (r, ro) = median_steps(res_f), median_steps(res_r)
    if fo and ro:
        return fr.NO_VALUE
    if ro:
        return f"> {r / f:.1f}×"
    if fo:
        return f"< {r / f:.1f}×"
    return f"{r / f:.1f}×"


def reach(run, target):
    """(first evaluation step with val >= target or None, budget)."""
    budget = run.budget if run.budget is not None else run.steps_done
    for step, v in run.val_curve:
        if v >= target:
            return step, budget
    return None, budget


def common_target_rows(runs, tasks, bests, exp):
    targets, res = {}, {}
    for t in tasks:
        b = bests.get((t, "random"), [])
        if b:
            targets[t] = float(np.median(b))
    for r in runs:
        if r.arm in ARMS and r.finished and r.val_curve and r.task in targets:
            res.setdefault((r.task, r.arm), []).append(reach(r, targets[r.task]))
    rows = [["target: Random's median best val acc (%)"] +
            [f"{100 * targets[t]:.1f}" if t in targets else fr.NO_VALUE for t in tasks]]
    for arm in ARMS:
        rows.append([f"{fr.ARM_SHORT[arm]} (ours)"] +
                    [cell(res.get((t, arm), []), len(exp.get(t, ()))) if t in targets else fr.NO_VALUE
                     for t in tasks])
    rows.append(["Speed-up (ours)"] + [speedup(res.get((t, "fpt"), []), res.get((t, "random"), []))
                                       if t in targets else fr.NO_VALUE for t in tasks])
    return rows


def ended_cell(rs):
    if not rs:
        return fr.NO_VALUE
    n = {}
    for r in rs:
        k = (r.ended or "no cap recorded") if r.finished else "unfinished"
        n[k] = n.get(k, 0) + 1
    names = [("early stop", "plateau"), ("cap", "cap"), ("late stop", "past its early stop"), ("fit", "exact fit"),
             ("no cap recorded", "no cap recorded"),
             ("unfinished", "unfinished")]
    return ", ".join(f"{n[k]} {label}" for k, label in names if k in n)


def ended_rows(runs, tasks):
    arms = sorted({r.arm for r in runs}, key=fr.arm_key)
    return [[fr.ARM_SHORT.get(a, a) if a in fr.ARM_SHORT else a] +
            [ended_cell([r for r in runs if r.arm == a and r.task == t]) for t in tasks] for a in arms]


def analyse(runs, fraction):
    per_run, res, bests = [], {}, {}
    for r in runs:
        if r.arm not in ARMS:
            continue
        if not r.finished or not r.val_curve:
            per_run.append((r, None))
            continue
        c = converge(r, fraction)
        per_run.append((r, c))
        res.setdefault((r.task, r.arm), []).append((c[2], c[3]))
        bests.setdefault((r.task, r.arm), []).append(c[0])
    return per_run, res, bests


def table(runs, fraction):
    per_run, res, bests = analyse(runs, fraction)
    exp = fr.expected_seeds(runs)
    tasks = sorted({r.task for r in runs} or {"bit-memory", "bit-xor", "listops", "fashion-mnist", "pfam"},
                   key=fr.task_key)
    foot = {"bit-memory": " ¹", "fashion-mnist": " ³", "pfam": " ⁴", "listops-x2": " ²", "bit-memory-100": " ⁵"}
    header = [""] + [t + foot.get(t, "") for t in tasks]
    rows = []
    for arm in ARMS:
        lab = fr.ARM_SHORT[arm]
        rows.append([f"{lab} (ours)"] + [cell(res.get((t, arm), []), len(exp.get(t, ()))) for t in tasks])
        rows.append([f"{lab} (paper)"] + [fr.paper_value("6", arm, t) for t in tasks])
    rows.append(["Speed-up (ours)"] + [speedup(res.get((t, "fpt"), []), res.get((t, "random"), [])) for t in tasks])
    rows.append(["Speed-up (paper)"] + [fr.paper_value("6", "speedup", t) for t in tasks])
    brows = []
    for arm in ARMS:
        cells = []
        for t in tasks:
            b = bests.get((t, arm), [])
            cells.append(f"{100 * float(np.median(b)):.1f}" if b else fr.NO_VALUE)
        brows.append([f"{fr.ARM_SHORT[arm]}: median best val acc (%)"] + cells)

    pct = f"{100 * fraction:g} %"
    w = io.StringIO()
    w.write("# Gradient steps to converge (Table 6 shape)\n\n")
    w.write(f"Convergence rule: a run converges at the first evaluation step whose val accuracy is at least "
            f"{pct} of the run's own best val accuracy, provided a later evaluation exists; if only the last "
            f"evaluation reaches it, the run was still improving: \"> B\" (B = its step budget). Cell: median over "
            f"finished seeds (\"> B\" counts as larger than any step); (n=K) when K < 3 or seeds are missing; "
            f"— when no run is finished. Speed-up = Random / FPT. The resolution is the evaluation interval "
            f"(eval_every).\n\n")
    w.write(fr.md_table(header, rows) + "\n\n")
    w.write("Level reached (the threshold is relative to it):\n\n")
    w.write(fr.md_table(header, brows) + "\n\n")
    w.write("Steps to a common target (the accuracy random init reaches; see --help):\n\n")
    w.write(fr.md_table(header, common_target_rows(runs, tasks, bests, exp)) + "\n\n")
    w.write("How the runs ended: on a plateau (early stop: the final evaluation before the step cap, after "
            "`early_stop` evaluations without a better val loss, or val accuracy with `early_stop_on: accuracy`) or on the cap (config.yaml `steps`). Every arm; "
            "unfinished runs counted apart.\n\n")
    w.write(fr.md_table(header, ended_rows(runs, tasks)) + "\n\n")
    lengths = fr.bit_memory_lengths(runs)
    w.write(f"¹ bit-memory: ours uses {', '.join(lengths) or '1000'}-bit patterns (the paper: 1000). "
            "² listops-x2 (LRA's tokenisation) has no paper number. ³ fashion-mnist: the paper's MNIST column. "
            "⁴ pfam: the paper's Remote Homology column (a different task). ⁵ bit-memory-100: the reduced "
            "100-bit Bit Memory; the paper's row is its 1000-bit one. A run that ended on its cap (\"> B\", "
            "or \"cap\" below) had not converged by this rule or by early stopping.\n")
    skipped = [r for r, c in per_run if c is None]
    missing = [m for m in fr.missing_runs(runs) if m[1] in ARMS]
    if skipped or missing:
        w.write("\nNot in the table:\n\n")
        for r in skipped:
            w.write(f"- {r.name}: {r.status() if not r.finished else 'no evaluation'}\n")
        for task, arm, seed in missing:
            w.write(f"- {task}/{arm}/seed{seed}: missing (no run directory)\n")
    return w.getvalue(), per_run


def write_csv(per_run, path):
    with open(path, "w", newline="", encoding="utf-8") as f:
        c = csv.writer(f, lineterminator="\n")
        c.writerow(["task", "arm", "seed", "best_val", "threshold", "converged_step", "converged", "budget",
                    "finished", "ended"])
        for r, res in per_run:
            if res is None:
                c.writerow([r.task, r.arm, r.seed, "", "", "", "", "" if r.budget is None else r.budget,
                            "yes" if r.finished else "no", r.ended or ""])
            else:
                best, thr, step, budget = res
                c.writerow([r.task, r.arm, r.seed, repr(best), repr(thr), "" if step is None else step,
                            "no" if step is None else "yes", budget, "yes", r.ended or ""])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs_dir", metavar="RUNS_DIR", help="directory of TASK/ARM/seedN run directories (runs/exp)")
    ap.add_argument("-o", "--output", metavar="FILE", help="write the Markdown here (default: stdout)")
    ap.add_argument("--fraction", type=float, default=0.99,
                    help="converged = val accuracy >= FRACTION x the run's best (default 0.99)")
    ap.add_argument("--csv", metavar="FILE", help="also write one CSV line per run")
    fr.add_into_args(ap, "steps")
    a = ap.parse_args()
    if not 0 < a.fraction <= 1:
        ap.error("--fraction must be in (0, 1]")
    if a.into:
        fr.check_block(a.into, a.block)
    runs = fr.load_runs(a.runs_dir)
    conflicts = fr.protocol_conflicts(runs)
    if conflicts:
        for c in conflicts:
            print(f"{os.path.basename(sys.argv[0])}: error: {c}", file=sys.stderr)
        sys.exit(2)
    md, per_run = table(runs, a.fraction)
    if a.output:
        with open(a.output, "w", encoding="utf-8") as f:
            f.write(md)
    else:
        sys.stdout.write(md)
    if a.csv:
        write_csv(per_run, a.csv)
    if a.into:
        fr.splice(a.into, md, a.block)


if __name__ == "__main__":
    main()
