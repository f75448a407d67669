#!/usr/bin/python3
"""Learning curves: one PNG per task, one line per arm.

  analysis/learning_curves.py runs/exp -o docs/figures/curves

Reads RUNS_DIR/TASK/ARM/seedN/metrics.jsonl and writes DIR/TASK.png with two
panels sharing the step axis:

  top     val accuracy at each evaluation (periodic ones and the final one)
  bottom  train loss (the trainer's mean over each log_every window)

For each arm the line is the mean over the seeds that have a value at that step,
and the shaded band spans their minimum to maximum. The line is solid where
every seed of the arm has a value and dotted where fewer have (after a seed
stopped early, the mean is over the others: a jump there is a change of
seeds, not of learning). Unfinished runs are drawn too (their curves simply
stop early) and the legend says how many there are; the legend also gives the
number of seeds. Steps at which seeds evaluated at different points are not
interpolated: each step averages the seeds logged there.

Debian's /usr/bin/python3 with numpy and matplotlib (Agg backend) only.
"""
import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fptruns as fr  # noqa: E402

COLOURS = {"fpt": "tab:blue", "random": "tab:orange", "stats": "tab:green", "full": "tab:red"}
# The other arms, in plot order; none repeats a colour above (matplotlib's C10 would be C0 again).
EXTRA = ["tab:purple", "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan", "#393b79", "#8c6d31",
         "#843c39", "#7b4173", "#17becf", "#bcbd22", "#637939"]
PAPER_NAME = {"bit-memory": "Bit Memory", "bit-xor": "Bit XOR", "listops": "ListOps",
              "listops-x2": "ListOps (LRA tokens)", "fashion-mnist": "Fashion-MNIST", "pfam": "Pfam families"}


def band(series):
    """series: list of [(step, value)] per seed -> steps, mean, min, max (over seeds logged at each step)."""
    by_step = {}
    for s in series:
        for step, v in s:
            by_step.setdefault(step, []).append(v)
    steps = np.array(sorted(by_step), dtype=float)
    vals = [np.array(by_step[int(s)]) for s in steps]
    return (steps, np.array([v.mean() for v in vals]), np.array([v.min() for v in vals]),
            np.array([v.max() for v in vals]), np.array([len(v) for v in vals]))


def plot_task(task, runs, path):
    fig, (ax_v, ax_l) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True, constrained_layout=True)
    arms = sorted({r.arm for r in runs}, key=fr.arm_key)
    extra = iter(EXTRA * (1 + len(arms) // len(EXTRA)))
    for arm in arms:
        rs = [r for r in runs if r.arm == arm]
        colour = COLOURS.get(arm) or next(extra)
        style = "--" if "@" in arm else "-"  # the LR sweep's arms, dashed beside their main arm
        n_unf = sum(not r.finished for r in rs)
        label = f"{fr.ARM_SHORT.get(arm, arm)} ({len(rs)} seed{'s' if len(rs) != 1 else ''}"
        label += f", {n_unf} unfinished)" if n_unf else ")"
        for ax, series, pct in ((ax_v, [r.val_curve for r in rs], True), (ax_l, [r.train for r in rs], False)):
            series = [s for s in series if s]
            if not series:
                continue
            st, mean, lo, hi, n = band(series)
            k = 100 if pct else 1
            full = n == len(series)
            mark = "o" if pct else None
            ax.plot(np.where(full, st, np.nan), k * mean, color=colour, linestyle=style, label=label,
                    marker=mark, ms=3)
            if not full.all():  # from the last step every seed logged on, to keep the line joined
                part = np.arange(len(st)) >= (np.flatnonzero(full)[-1] if full.any() else 0)
                ax.plot(np.where(part, st, np.nan), k * mean, color=colour, linestyle=":", marker=mark, ms=2)
            ax.fill_between(st, k * lo, k * hi, color=colour, alpha=0.2, linewidth=0)
    ax_v.set_ylabel("val accuracy (%)")
    ax_l.set_ylabel("train loss")
    ax_l.set_xlabel("step")
    ax_v.set_title(f"{task} ({PAPER_NAME.get(task, task)}): mean over seeds, band = min to max")
    for ax in (ax_v, ax_l):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs_dir", metavar="RUNS_DIR", help="directory of TASK/ARM/seedN run directories (runs/exp)")
    ap.add_argument("-o", "--output", metavar="DIR", required=True, help="directory for the TASK.png files")
    a = ap.parse_args()
    runs = fr.load_runs(a.runs_dir)
    os.makedirs(a.output, exist_ok=True)
    tasks = sorted({r.task for r in runs}, key=fr.task_key)
    if not tasks:
        fr.warn(f"{a.runs_dir}: no TASK/ARM/seedN run directories")
    for task in tasks:
        path = os.path.join(a.output, f"{task}.png")
        plot_task(task, [r for r in runs if r.task == task], path)
        print(path)


if __name__ == "__main__":
    main()
