"""Shared reader for experiment run directories (imported by the analysis scripts).

Layout (made by jobs/run-experiments.sh, jobs/experiment.sbatch, jobs/campaign.sh):

  RUNS_DIR/TASK/ARM/seedN/metrics.jsonl   (+ config.yaml, checkpoints/best.json ...)

ARM may carry a label, ARM@LABEL (fpt@lr3e-4: the LR sweep): its own cell, of kind ARM.

metrics.jsonl (src/io/metrics.c): one JSON object per line with "step", "split"
("train", "val" or "test"), "loss", "accuracy", "tokens_per_s", ...; train lines
every log_every steps; a val line and a test line at every evaluation
(eval_every, with --eval-test; with --eval-test-at best, a test line only where
the val accuracy beat every earlier one; with end, only for the best one,
written after training from checkpoints/best.h5); and a final val + test pair marked
"final":1 at the last step. The trainer writes a non-finite number as null.

Definitions used by every script:

- evaluation: a (step, final) pair that has a val line with a finite accuracy,
  and its test accuracy when a test line is there (finite, or the evaluation
  is skipped). Selection on val picks the earliest evaluation of the best val
  accuracy: under --eval-test-at best or end that one always has its test line (a
  run whose selected evaluation has none is reported, never averaged). The
  periodic evaluations and the final one are all
  evaluations (with early stopping a periodic and the final evaluation can share
  a step; the periodic one sorts first). If a (step, split, final) line appears
  twice (a resumed run), the later line wins.
- finished: the run has a final test line (the rule jobs/run-experiments.sh
  uses to skip a run). Unfinished runs are listed, never averaged.
- steps done: the largest step of any line; budget (the step cap): `steps:` of
  config.yaml; ended: "early stop" when the final evaluation is before the cap,
  "late stop" when the run went on past the evaluation at which early stopping
  on val accuracy (`early_stop_on: accuracy`, patience `early_stop`) ends it, as
  its val lines show (protocol_stop): what a resume did before commit f8ca1df,
  which restarted the accuracy's patience count.
- protocol: the config.yaml settings a cell's runs must share (PROTOCOL).

Only the Python standard library and numpy are used here.
"""
import json
import math
import os
import re
import sys

import numpy as np

# Column order of the tables: the paper's tasks, then our extra ones.
TASKS = ["bit-memory", "bit-memory-100", "bit-xor", "listops", "listops-x2", "fashion-mnist", "pfam"]
ARMS = ["fpt", "random", "stats", "full", "lstm-full", "lstm-frozen", "bit", "image", "mlm", "head", "probe"]
ARM_LABEL = {
    "fpt": "FPT (language-pretrained, frozen)",
    "random": "Random init (frozen)",
    "stats": "Statistics-matched init (frozen)",
    "full": "Full transformer (3 layers, all trained)",
    "lstm-full": "LSTM (3 layers, all trained)",
    "lstm-frozen": "LSTM (3 layers, random, frozen: LayerNorms, input, output trained)",
    "bit": "Transformer pretrained on Bit Memory (frozen)",
    "image": "Bidirectional encoder pretrained on Fashion-MNIST (frozen)",
    "mlm": "Bidirectional encoder pretrained by masked bytes (frozen)",
    "head": "Output layer only, SGD (input, LayerNorms, positions frozen too)",
    "probe": "Output layer only, exact (fpt probe: ridge least squares)",
}
ARM_SHORT = {"fpt": "FPT", "random": "Random", "stats": "Stats", "full": "Full", "lstm-full": "LSTM, full",
             "lstm-frozen": "LSTM, frozen", "bit": "Bit", "image": "Image", "mlm": "MLM",
             "head": "Output only, SGD", "probe": "Output only, exact"}
# The paper's Table 10 arms (output layer only).
OUTPUT_ARMS = ["head", "probe"]
# Cells where the frozen backbone was pretrained on the task itself (not a transfer).
IN_DOMAIN = {("bit", "bit-memory"), ("image", "fashion-mnist")}

# The paper's numbers (analysis/paper_tables.json, from shared/reference/fpt-paper.md §4).
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "paper_tables.json"), encoding="utf-8") as _f:
    PAPER = json.load(_f)

NO_VALUE = "—"


def paper_value(table, arm, task):
    """The paper's number for our (arm, task) in its Table `table`, as printed, or NO_VALUE."""
    col = PAPER["task_column"].get(task)
    row = PAPER["tables"][str(table)]["rows"].get(arm, {})
    return row.get(col, NO_VALUE) if col else NO_VALUE


def arm_kind(arm):
    """The arm without its label: fpt@lr3e-4 -> fpt."""
    return arm.split("@", 1)[0]


def warn(msg):
    print(f"{os.path.basename(sys.argv[0])}: warning: {msg}", file=sys.stderr)


def _finite(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


class Run:
    """One run directory: its evaluations, train curve and status."""

    def __init__(self, task, arm, seed, path):
        self.task, self.arm, self.seed, self.path = task, arm, seed, path
        self.evals = []  # [(step, final, val_acc, test_acc or None)] sorted by (step, final)
        self.val_curve = []  # [(step, val_acc)] of the evaluations, by step
        self.train = []  # [(step, loss)] by step
        self.finished = False
        self.final_test = None
        self.steps_done = 0
        self.budget = None
        self.config = {}
        self.has_metrics = False
        self.final_step = None  # the step of the final evaluation
        self.best_json_step = None  # checkpoints/best.json (--keep-best)

    @property
    def kind(self):
        return arm_kind(self.arm)

    def protocol(self):
        """The settings a cell's runs must share: {key: value as written} (those config.yaml has)."""
        return {k: self.config[k] for k in PROTOCOL if k in self.config}

    def protocol_stop(self):
        """The periodic evaluation at which early stopping on val accuracy ends the run
        (`early_stop` evaluations in a row without a strictly higher one), or None (it never
        does, or the run does not stop on accuracy)."""
        try:
            patience = int(float(self.config.get("early_stop", "0")))
        except ValueError:
            return None
        if patience <= 0 or self.config.get("early_stop_on") != "accuracy":
            return None
        best, since = None, 0
        for step, final, v, _ in self.evals:
            if final:
                continue
            if best is None or v > best:
                best, since = v, 0
            else:
                since += 1
            if since >= patience:
                return step
        return None

    @property
    def ended(self):
        """How a finished run ended: "early stop" (its final evaluation before the step cap),
        "cap" (at the cap), "late stop" (past its protocol_stop), "fit" (the probe arm: an
        exact fit, no steps), or None (unfinished, or no cap recorded)."""
        if not self.finished:
            return None
        if self.kind == "probe":
            return "fit"
        if self.budget is None or self.final_step is None:
            return None
        stop = self.protocol_stop()
        if stop is not None and self.final_step > stop:
            return "late stop"
        return "early stop" if self.final_step < self.budget else "cap"

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
        elif o.get("sweep"):
            continue  # fpt probe's val line per lambda: its choice, not an evaluation
        elif split in ("val", "test"):
            lines[(step, split, final)] = o.get("accuracy")
            if split == "test" and final:
                run.finished = True
    keys = sorted({(s, fin) for (s, _, fin) in lines})
    for step, final in keys:
        v, t = lines.get((step, "val", final)), lines.get((step, "test", final))
        has_test = (step, "test", final) in lines
        if (step, "val", final) not in lines or (final and not has_test):
            continue
        if not (_finite(v) and (_finite(t) or not has_test)):
            warn(f"{mpath}: step {step}: non-finite accuracy, evaluation skipped")
            continue
        run.evals.append((step, final, float(v), float(t) if has_test else None))
        if final:
            run.final_test = float(t)
            run.final_step = step
    seen = set()
    for step, final, v, _ in run.evals:
        if step not in seen:  # early stop: periodic and final share a step (same weights)
            run.val_curve.append((step, v))
            seen.add(step)
    run.train = sorted((s, float(l)) for s, l in train.items() if _finite(l))
    try:
        with open(os.path.join(path, "checkpoints", "best.json"), encoding="utf-8") as f:
            run.best_json_step = int(json.load(f)["step"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return run


# config.yaml keys that define a cell's protocol: runs of one cell must agree on them.
PROTOCOL = ["steps", "early_stop", "early_stop_on", "lr", "batch_size"]
PROTOCOL_NAME = {"steps": "step cap (steps)", "early_stop": "patience (early_stop)",
                 "early_stop_on": "early stopping on (early_stop_on)", "lr": "lr", "batch_size": "batch"}


def _num(v):
    try:
        return float(v)
    except ValueError:
        return v


def protocol_conflicts(runs, cell_of=lambda r: (r.task, r.arm), keys=None):
    """Messages for cells whose runs differ in a protocol setting, naming the cell, the
    setting and both values (with the seeds that have each). cell_of groups the runs."""
    keys = keys or PROTOCOL
    cells = {}
    for r in runs:
        cells.setdefault(cell_of(r), []).append(r)
    out = []
    for cell, rs in sorted(cells.items(), key=lambda kv: str(kv[0])):
        for k in keys:
            vals = {}
            for r in rs:
                if k in r.config:
                    vals.setdefault(_num(r.config[k]), []).append(r)
            if len(vals) > 1:
                parts = []
                for v, rr in sorted(vals.items(), key=lambda kv: str(kv[0])):
                    shown = rr[0].config[k]
                    parts.append(f"{shown} ({', '.join(x.arm + '/seed' + str(x.seed) for x in rr)})")
                name = cell if isinstance(cell, str) else "/".join(str(c) for c in cell)
                out.append(f"cell {name} mixes two protocols: {PROTOCOL_NAME.get(k, k)} " + " vs ".join(parts))
    return out


def load_runs(runs_dir, missing_ok=False):
    """Every RUNS_DIR/TASK/ARM/seedN directory, as Run objects (sorted). A RUNS_DIR
    that does not exist is an error, or no runs with missing_ok (a campaign not started)."""
    if missing_ok and not os.path.exists(runs_dir):
        return []
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
    """(task, arm, seed) of every line of an experiments TSV (jobs/experiments.tsv; its
    header names the columns, task, arm and seed among them)."""
    return [(d["task"], d["arm"], d["seed"]) for d in read_param_lines(path)]


def read_param_lines(path):
    """Every line of an experiments TSV as a dict of its columns (seed as an int)."""
    out = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    head = lines[0].rstrip("\r").split("\t") if lines else []
    if not all(c in head for c in ("task", "arm", "seed")):
        sys.exit(f"{os.path.basename(sys.argv[0])}: error: {path}: the header has no task, arm and seed columns")
    ti, ai, si = head.index("task"), head.index("arm"), head.index("seed")
    for i, line in enumerate(lines[1:], start=2):
        cols = line.rstrip("\r").split("\t")
        if len(cols) <= max(ti, ai, si) or not cols[ti]:
            continue
        try:
            d = dict(zip(head, cols))
            d["seed"] = int(cols[si])
            out.append(d)
        except ValueError:
            warn(f"{path}:{i}: bad seed '{cols[si]}', line skipped")
    return out


def task_key(t):
    return (TASKS.index(t), "") if t in TASKS else (len(TASKS), t)


def arm_key(a):
    k = arm_kind(a)
    return ((ARMS.index(k), a) if k in ARMS else (len(ARMS), a))


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


def bit_memory_lengths(runs, task="bit-memory"):
    """The pattern lengths (config.yaml bit_length) of a bit-memory task's runs; [] when no
    config says (bit_length 0 is the generator's default, 1000)."""
    found = {r.config.get("bit_length") for r in runs if r.task == task} - {None, "", "null"}
    found = {"1000" if x == "0" else x for x in found}
    return sorted(found, key=lambda x: (len(x), x))


def mean_std(values):
    """Mean and sample standard deviation (ddof 1; None for one value)."""
    a = np.asarray(values, dtype=float)
    return float(a.mean()), (float(a.std(ddof=1)) if a.size > 1 else None)


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def add_into_args(ap, block):
    """The --into MD and --block NAME options (default NAME: block)."""
    ap.add_argument("--into", metavar="MD",
                    help="also replace the block between '<!-- BLOCK:begin -->' and '<!-- BLOCK:end -->' of "
                         "this Markdown file (docs/RESULTS.md) with the tables, headings one level down")
    ap.add_argument("--block", default=block, help=f"the marker name for --into (default: {block})")


def _block(path, block):
    """(text of path, index of its begin marker, of its end marker, the begin
    marker); exits with one error line when the file or the block is not there."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        sys.exit(f"{os.path.basename(sys.argv[0])}: error: {path}: {e.strerror}")
    begin, end = f"<!-- {block}:begin -->", f"<!-- {block}:end -->"
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < i:
        sys.exit(f"{os.path.basename(sys.argv[0])}: error: {path}: no '{begin}' ... '{end}' block")
    return text, i, j, begin


def check_block(path, block):
    """Exit with one error line unless path has a '<!-- BLOCK:begin -->' ...
    '<!-- BLOCK:end -->' block (checked before any output is written)."""
    _block(path, block)


def splice(path, md, block):
    """Put md (its first heading dropped, the others one level down) between
    the markers of path (check_block first), atomically."""
    text, i, j, begin = _block(path, block)
    lines = md.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    body = "\n".join("#" + l if l.startswith("#") else l for l in lines).strip("\n")
    out = text[:i + len(begin)] + "\n" + body + "\n" + text[j:]
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(out)
    os.replace(path + ".tmp", path)
