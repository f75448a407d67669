"""Shared reader for experiment run directories (imported by the analysis scripts).

Layout (made by jobs/run-experiments.sh and jobs/experiment.sbatch):

  RUNS_DIR/TASK/ARM/seedN/metrics.jsonl   (+ config.yaml, checkpoints/)

metrics.jsonl (src/io/metrics.c): one JSON object per line with "step", "split"
("train", "val" or "test"), "loss", "accuracy", "tokens_per_s", ...; train lines
every log_every steps; a val line and a test line at every evaluation
(eval_every, with --eval-test); and a final val + test pair marked "final":1 at
the last step. The trainer writes a non-finite number as null.

Definitions used by every script:

- evaluation: a (step, final) pair that has both a val line and a test line
  with finite accuracies. The periodic evaluations and the final one are all
  evaluations (with early stopping a periodic and the final evaluation can share
  a step; the periodic one sorts first). If a (step, split, final) line appears
  twice (a resumed run), the later line wins.
- finished: the run has a final test line (the rule jobs/run-experiments.sh
  uses to skip a run). Unfinished runs are listed, never averaged.
- steps done: the largest step of any line; budget: `steps:` of config.yaml.

Only the Python standard library and numpy are used here.
"""
import json
import math
import os
import re
import sys

import numpy as np

# Column order of the paper's tables, then our extra task.
TASKS = ["bit-memory", "bit-xor", "listops", "listops-x2", "fashion-mnist", "pfam"]
ARMS = ["fpt", "random", "stats", "full"]
ARM_LABEL = {
    "fpt": "FPT (language-pretrained, frozen)",
    "random": "Random init (frozen)",
    "stats": "Statistics-matched init (frozen)",
    "full": "Full transformer (3 layers, all trained)",
    "head": "Output layer only, SGD (input, LayerNorms, positions frozen too)",
    "probe": "Output layer only, exact (fpt probe: ridge least squares)",
}
ARM_SHORT = {"fpt": "FPT", "random": "Random", "stats": "Stats", "full": "Full",
             "head": "Output only, SGD", "probe": "Output only, exact"}
# The paper's Table 10 arms (output layer only): reported apart from Tables 1, 2/9.
OUTPUT_ARMS = ["head", "probe"]

# The paper's test accuracies in % (docs: /work/shared/reference/fpt-paper.md §4),
# written as the paper prints them. fashion-mnist <- MNIST column, pfam <- Homology
# column; listops-x2 has none. Table 1 (FPT, Full) and Tables 2/9 (FPT, Random,
# Statistics only) agree on the FPT row for these columns.
PAPER_ACC = {
    "fpt": {"bit-memory": "100", "bit-xor": "100", "listops": "38.4", "fashion-mnist": "98.0", "pfam": "12.7"},
    "full": {"bit-memory": "100", "bit-xor": "100", "listops": "38", "fashion-mnist": "99.1", "pfam": "9"},
    "random": {"bit-memory": "75.8", "bit-xor": "100", "listops": "34.3", "fashion-mnist": "91.7", "pfam": "9.3"},
    "stats": {"bit-memory": "100", "bit-xor": "100", "listops": "37.4", "fashion-mnist": "97.2", "pfam": "11.0"},
    "head": {"listops": "32.8"},  # Table 10: output layer only (SGD)
}
# Table 6: gradient steps to converge (same LR and batch).
PAPER_STEPS = {
    "fpt": {"bit-memory": "1×10⁴", "bit-xor": "5×10²", "listops": "2×10³", "fashion-mnist": "5×10³", "pfam": "1×10⁵"},
    "random": {"bit-memory": "4×10⁴", "bit-xor": "2×10⁴", "listops": "6×10³", "fashion-mnist": "2×10⁴", "pfam": "1×10⁵"},
    "speedup": {"bit-memory": "4×", "bit-xor": "40×", "listops": "3×", "fashion-mnist": "4×", "pfam": "1×"},
}

NO_VALUE = "—"


def warn(msg):
    print(f"{os.path.basename(sys.argv[0])}: warning: {msg}", file=sys.stderr)


def _finite(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


class Run:
    """One run directory: its evaluations, train curve and status."""

    def __init__(self, task, arm, seed, path):
        self.task, self.arm, self.seed, self.path = task, arm, seed, path
        self.evals = []  # [(step, final, val_acc, test_acc)] sorted by (step, final)
        self.val_curve = []  # [(step, val_acc)] of the evaluations, by step
        self.train = []  # [(step, loss)] by step
        self.finished = False
        self.final_test = None
        self.steps_done = 0
        self.budget = None
        self.config = {}
        self.has_metrics = False

    @property
    def name(self):
        return f"{self.task}/{self.arm}/seed{self.seed}"

    def selected(self):
        """The evaluation with the best val accuracy (ties: earliest step), or None."""
        if not self.evals:
            return None
        best = max(e[2] for e in self.evals)
        for e in self.evals:  # sorted by (step, final): the first hit is the earliest
            if e[2] == best:
                return e
        return None

    def status(self):
        if self.finished:
            return "finished"
        if not self.has_metrics:
            return "unfinished (no metrics.jsonl yet)"
        b = f" of {self.budget}" if self.budget is not None else ""
        return f"unfinished (step {self.steps_done}{b}, no final evaluation yet)"


def read_config(path):
    """The flat `key: value` lines of config.yaml (scalars only)."""
    cfg = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*):\s*(.*?)\s*$", line)
                if m:
                    v = m.group(2)
                    if len(v) >= 2 and v[0] == v[-1] == '"':
                        v = v[1:-1]
                    cfg[m.group(1)] = v
    except OSError:
        pass
    return cfg


def load_run(task, arm, seed, path):
    run = Run(task, arm, seed, path)
    run.config = read_config(os.path.join(path, "config.yaml"))
    try:
        run.budget = int(float(run.config.get("steps", "")))
    except ValueError:
        run.budget = None
    mpath = os.path.join(path, "metrics.jsonl")
    if not os.path.exists(mpath):
        return run
    run.has_metrics = True
    lines = {}  # (step, split, final) -> accuracy / loss; later lines win
    train = {}
    with open(mpath, encoding="utf-8") as f:
        raw = f.read().splitlines()
    for i, line in enumerate(raw):
        if not line.strip():
            continue
        try:
            o = json.loads(line)
            step = int(o["step"])
            split = o["split"]
        except (ValueError, KeyError, TypeError):
            if i != len(raw) - 1:
                warn(f"{mpath}:{i + 1}: not a metrics line, skipped")
            continue  # a last line cut by a crash
        run.steps_done = max(run.steps_done, step)
        final = bool(o.get("final"))
        if split == "train":
            train[step] = o.get("loss")
        elif split in ("val", "test"):
            lines[(step, split, final)] = o.get("accuracy")
            if split == "test" and final:
                run.finished = True
    keys = sorted({(s, fin) for (s, _, fin) in lines})
    for step, final in keys:
        v, t = lines.get((step, "val", final)), lines.get((step, "test", final))
        if v is None or t is None:
            if (step, "val", final) in lines and (step, "test", final) in lines:
                warn(f"{mpath}: step {step}: non-finite accuracy, evaluation skipped")
            continue
        if not (_finite(v) and _finite(t)):
            warn(f"{mpath}: step {step}: non-finite accuracy, evaluation skipped")
            continue
        run.evals.append((step, final, float(v), float(t)))
        if final:
            run.final_test = float(t)
    seen = set()
    for step, final, v, _ in run.evals:
        if step not in seen:  # early stop: periodic and final share a step (same weights)
            run.val_curve.append((step, v))
            seen.add(step)
    run.train = sorted((s, float(l)) for s, l in train.items() if _finite(l))
    return run


def load_runs(runs_dir):
    """Every RUNS_DIR/TASK/ARM/seedN directory, as Run objects (sorted)."""
    if not os.path.isdir(runs_dir):
        sys.exit(f"{os.path.basename(sys.argv[0])}: error: {runs_dir}: not a directory")
    runs = []
    for task in sorted(os.listdir(runs_dir)):
        tdir = os.path.join(runs_dir, task)
        if not os.path.isdir(tdir):
            continue
        for arm in sorted(os.listdir(tdir)):
            adir = os.path.join(tdir, arm)
            if not os.path.isdir(adir):
                continue
            for sd in os.listdir(adir):
                m = re.fullmatch(r"seed(\d+)", sd)
                if m and os.path.isdir(os.path.join(adir, sd)):
                    runs.append(load_run(task, arm, int(m.group(1)), os.path.join(adir, sd)))
    runs.sort(key=lambda r: (task_key(r.task), arm_key(r.arm), r.seed))
    return runs


def read_params(path):
    """(task, arm, seed) of every line of an experiments TSV (jobs/experiments.tsv)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            cols = line.rstrip("\r\n").split("\t")
            if i == 0 or len(cols) < 3 or not cols[0]:
                continue
            try:
                out.append((cols[0], cols[1], int(cols[2])))
            except ValueError:
                warn(f"{path}:{i + 1}: bad seed '{cols[2]}', line skipped")
    return out


def task_key(t):
    return (TASKS.index(t), "") if t in TASKS else (len(TASKS), t)


def arm_key(a):
    return (ARMS.index(a), "") if a in ARMS else (len(ARMS), a)


def expected_seeds(runs, params=None):
    """task -> the seeds a task should have: seeds of any arm of the task (run
    directories), plus those the PARAMS file lists for it."""
    exp = {}
    for r in runs:
        exp.setdefault(r.task, set()).add(r.seed)
    for task, _arm, seed in params or []:
        exp.setdefault(task, set()).add(seed)
    return exp


def expected_count(runs, params, task, arm):
    """How many seeds a (task, arm) cell should have: PARAMS' lines for it when it
    has any (an arm may run fewer seeds), else the task's expected seeds."""
    listed = {s for t, a, s in params or [] if t == task and a == arm}
    return len(listed) if listed else len(expected_seeds(runs, params).get(task, ()))


def missing_runs(runs, params=None):
    """(task, arm, seed) with no run directory: a line of PARAMS, or without PARAMS
    a seed another arm of the task has."""
    have = {(r.task, r.arm, r.seed) for r in runs}
    if params:
        return sorted(set(params) - have, key=lambda x: (task_key(x[0]), arm_key(x[1]), x[2]))
    exp = expected_seeds(runs, params)
    arms = {}
    for r in runs:
        arms.setdefault(r.task, set()).add(r.arm)
    want = set()
    for task, seeds in exp.items():
        for arm in arms.get(task, set()):
            want.update((task, arm, s) for s in seeds)
    return sorted(want - have, key=lambda x: (task_key(x[0]), arm_key(x[1]), x[2]))


def bit_memory_lengths(runs):
    """The pattern lengths (config.yaml bit_length) of the bit-memory runs; ["100"]
    (jobs/experiment.sbatch's --bit-length) when no config says."""
    found = sorted({r.config.get("bit_length") for r in runs if r.task == "bit-memory"} - {None, "", "0", "null"},
                   key=lambda x: (len(x), x))
    return found or ["100"]


def mean_std(values):
    """Mean and sample standard deviation (ddof 1; None for one value)."""
    a = np.asarray(values, dtype=float)
    return float(a.mean()), (float(a.std(ddof=1)) if a.size > 1 else None)


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)
