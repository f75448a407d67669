#!/usr/bin/python3
"""Test-accuracy tables in the shape of the paper's Tables 1, 2, 3, 9, 10 and 17, and the LR sweep.

  analysis/results_table.py runs/exp -o table.md --csv runs.csv [--params jobs/experiments.tsv]

Reads RUNS_DIR/TASK/ARM/seedN/metrics.jsonl and config.yaml (jobs/experiment.sbatch,
jobs/run-experiments.sh, jobs/campaign.sh) and writes Markdown (stdout, or -o FILE):

  Table 1   FPT vs the fully trained transformer and LSTM (arms fpt, full, lstm-full)
  Table 2   pretraining modality, all frozen: fpt, random, bit, image
  Table 3   random frozen transformer vs random frozen LSTM: random, lstm-frozen
  Table 9   statistics-matched init: fpt, stats, random
  Table 10  output layer only: fpt, head (SGD), probe (exact), full
  Table 17  causal LM vs masked-byte encoder pretrained on the same bytes: fpt, mlm
  LR sweep  arms with a label (fpt@lr3e-4, ...): the lr chosen on val, per task and arm
  Other arms, if any

one row per arm ("ours") with the paper's row under it (analysis/paper_tables.json),
one column per task (bit-memory, bit-memory-100, bit-xor, listops, listops-x2,
fashion-mnist, pfam, then any other). A cell marked † is in-domain: the backbone was
pretrained on that task itself (bit on bit-memory, image on fashion-mnist).

Selection rule (per run). The candidates are the run's evaluations: every step at
which both a val and a test accuracy were logged, the final evaluation ("final":1)
included. The selected evaluation is the one with the highest VAL accuracy; ties
(exactly equal accuracies as logged) go to the earliest step, and at equal steps
a periodic evaluation comes before the final one. The run's score is the TEST
accuracy of that evaluation. Test never takes part in the choice. This is the
evaluation whose weights --keep-best kept as checkpoints/best.h5 (the same rule:
a strictly better val accuracy); when best.json names another step the run is
listed under "Checks". A run that trained past the evaluation at which early
stopping on val accuracy ends it (fptruns: "late stop") is listed under the
tables with where its selected evaluation lies.

Cell. Over the FINISHED runs of a (task, arm) — finished = a final test line
exists, the rule the runners skip on — the mean ± sample standard deviation
(ddof 1) of the scores, in %, one decimal; a single run has no ± part. "(n=K)"
follows when K < 3 or when K is below the number of seeds expected (the lines
--params lists for the cell; without them, the seeds any arm of the task has).
"—" when there is no finished run. Unfinished and missing runs are listed under
the tables, never averaged in.

Protocol. The runs of one cell must share their step cap (config.yaml steps),
patience (early_stop), lr and batch (batch_size); the members of an LR sweep
their cap, patience and batch. Otherwise the script refuses: it names the cell,
the setting and both values (with the runs that have each), exit 2, and writes
nothing.

LR sweep. An arm directory ARM@LABEL is arm ARM with other settings, in practice
another lr. For each (task, ARM) with labelled directories, the candidates are
ARM and every ARM@LABEL; each one's val score is the mean over its finished runs
of the selected val accuracy, and the chosen lr is the best of these (ties: the
smaller lr). Its test score is reported. "(provisional)" when a run of the
sweep is unfinished or missing.

--csv FILE writes one line per run directory: task, arm, seed, lr, steps (cap),
patience, selected_step, val_acc, test_acc (of the selected evaluation, unfinished
runs included with the evaluations they have so far), final_test_acc, steps_done,
ended (early stop / cap / late stop, finished runs), best_ckpt_step (checkpoints/best.json),
finished (yes/no).

Debian's /usr/bin/python3 with numpy only.
"""
import argparse
import csv
import io
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fptruns as fr  # noqa: E402

FOOT = {"bit-memory": "¹", "listops-x2": "²", "fashion-mnist": "³", "pfam": "⁴", "bit-memory-100": "⁵"}
IN_DOMAIN_MARK = " †"

# (paper table, heading, arms)
TABLES = [
    ("1", "Table 1: FPT vs the fully trained transformer and the fully trained LSTM", ["fpt", "full", "lstm-full"]),
    ("2", "Table 2: the pretraining modality (all frozen, FPT's trainable set)", ["fpt", "random", "bit", "image"]),
    ("3", "Table 3: random frozen transformer vs random frozen LSTM", ["random", "lstm-frozen"]),
    ("9", "Table 9: language-pretrained vs statistics-matched vs random init (frozen)", ["fpt", "stats", "random"]),
    ("10", "Table 10: output layer only (SGD, and exact) vs FPT and the full transformer",
     ["fpt", "head", "probe", "full"]),
    ("17", "Table 17: causal language model vs masked-byte encoder, pretrained on the same bytes", ["fpt", "mlm"]),
]
OURS_NOTE = {
    "1": "Ours: Full is a 3-layer GPT-2 of the backbone's width trained end to end from random init, for every "
         "task; LSTM is the paper's 3-layer LN-LSTM of that width, every weight trained, lr 3e-4.",
    "2": "Ours: Bit is the shipped 12 x 128 shape trained fully on Bit Memory (5 x 1000 bits) and frozen; Image "
         "is a 12 x 128 bidirectional encoder trained fully on Fashion-MNIST's training split and frozen "
         "(jobs/backbone.sbatch: the checkpoint of the best val accuracy).",
    "3": "Ours: LSTM, frozen is the paper's LN-LSTM at its random init with only the input layer, the output "
         "layer and the LSTM's LayerNorms trained (§3.3), lr 3e-4.",
    "10": "Output only: the input layer stays at its seeded init, and the LayerNorms, positions and the backbone "
          "stay frozen. SGD trains the output layer (the FPT arm's cap and patience); exact: `fpt probe` fits it "
          "by ridge least squares on the frozen features of steps x batch training samples (λ chosen on val).",
    "17": "Ours: MLM is a 12 x 128 bidirectional encoder pretrained by `fpt pretrain --objective mlm` on the "
          "shipped causal model's corpus with its seed, batch, steps and schedule (the same bytes), frozen.",
}


def cell(scores, n_expected):
    if not scores:
        return fr.NO_VALUE
    m, s = fr.mean_std(scores)
    txt = f"{100 * m:.1f}" if s is None else f"{100 * m:.1f} ± {100 * s:.1f}"
    n = len(scores)
    if n < 3 or n < n_expected:
        txt += f" (n={n})"
    return txt


def bit_memory_note(runs):
    lengths = fr.bit_memory_lengths(runs)
    if lengths == ["1000"]:
        return ("¹ bit-memory: the paper's size: 5 patterns of 1000 bits, 120 tokens of 50 "
                "(jobs/experiment.sbatch: --bit-length 1000 --patterns 5 --patch 50).")
    if not lengths:
        return ("¹ bit-memory: no run recorded its pattern length yet; jobs/experiment.sbatch runs the paper's "
                "size: 5 patterns of 1000 bits, 120 tokens of 50.")
    return (f"¹ bit-memory: our runs use patterns of {', '.join(lengths)} bits (config.yaml bit_length); "
            "the paper's use 1000 bits (120 tokens of 50).")


NOTES = [
    "² listops-x2: ListOps with LRA's current tokenisation (`--tokens x2`: closing brackets kept, up to 2000 tokens); "
    "the paper only ran the old, lossy 512-token one (the listops column), so it has no number here.",
    "³ fashion-mnist: the paper has no Fashion-MNIST run; its row shows the paper's MNIST column "
    "(Fashion-MNIST is the harder task, so lower numbers are expected).",
    "⁴ pfam: the paper's row shows its Remote Homology column (TAPE fold classification, 1195 classes); our pfam "
    "is family classification over the Pfam families of Debian's hmmer-examples (docs/DATA.md): a different, "
    "much smaller task, so the numbers are not comparable.",
    "⁵ bit-memory-100: the reduced Bit Memory of the short-budget runs (5 patterns of 100 bits, 60 tokens of 10); "
    "the paper's row shows its (1000-bit) Bit Memory column.",
    "† in-domain: the frozen backbone was pretrained on this task itself (Bit on bit-memory, Image on "
    "Fashion-MNIST's training split), so the cell measures no transfer.",
]


class Refused(Exception):
    pass


def scores_of(runs):
    """(task, arm) -> [selected (val, test)] over the finished runs."""
    out = {}
    for r in runs:
        if r.finished:
            sel = r.selected()
            if sel is not None and sel[3] is None:
                fr.warn(f"{r.name}: its selected evaluation (val, step {sel[0]}) has no test line: not counted")
            elif sel is not None:
                out.setdefault((r.task, r.arm), []).append((sel[2], sel[3]))
    return out


def lr_of(runs, task, arm):
    lrs = {fr._num(r.config["lr"]) for r in runs if r.task == task and r.arm == arm and "lr" in r.config}
    return next(iter(lrs)) if len(lrs) == 1 else None


def fmt_lr(x):
    """1e-4, 3e-4, 0.001 -> 1e-3: the way the parameter files write them."""
    if x is None:
        return "?"
    m, e = f"{x:e}".split("e")
    return f"{float(m):g}e{int(e)}"


def sweep_section(runs, params, scores, param_lr=None):
    """Markdown of the LR sweep (labelled arms), or ""."""
    groups = sorted({(r.task, r.kind) for r in runs if r.arm != r.kind} |
                    {(t, fr.arm_kind(a)) for t, a, _ in params or [] if "@" in a},
                    key=lambda g: (fr.task_key(g[0]), fr.arm_key(g[1])))
    if not groups:
        return ""
    rows, summary = [], {}
    for task, kind in groups:
        arms = sorted({r.arm for r in runs if r.task == task and r.kind == kind} |
                      {a for t, a, _ in params or [] if t == task and fr.arm_kind(a) == kind}, key=fr.arm_key)
        cand = []
        incomplete = False
        for arm in arms:
            sc = scores.get((task, arm), [])
            n_exp = fr.expected_count(runs, params, task, arm)
            have = [r for r in runs if r.task == task and r.arm == arm]
            if len(sc) < max(n_exp, len(have)):
                incomplete = True
            lr = lr_of(runs, task, arm)
            if lr is None:  # no config yet: the parameter file's
                lr = (param_lr or {}).get((task, arm))
            cand.append((arm, lr, sc, n_exp))
        lrs = [c[1] for c in cand if c[1] is not None]
        if len(lrs) != len(set(lrs)):
            raise Refused(f"LR sweep {task}/{kind}: two arm directories with the same lr "
                          f"({', '.join(c[0] + ' lr ' + fmt_lr(c[1]) for c in cand)})")
        scored = [c for c in cand if c[2]]
        chosen = None
        if scored:
            chosen = max(scored, key=lambda c: (fr.mean_std([v for v, _ in c[2]])[0], -(c[1] or 0)))
        for arm, lr, sc, n_exp in sorted(cand, key=lambda c: (c[1] is None, c[1] or 0)):
            vals, tests = [v for v, _ in sc], [t for _, t in sc]
            mark = ""
            if chosen is not None and arm == chosen[0]:
                mark = "chosen" + (" (provisional)" if incomplete else "")
            rows.append([task, fr.ARM_SHORT.get(kind, kind), arm, fmt_lr(lr), cell(vals, n_exp), cell(tests, n_exp),
                         mark])
        if chosen is not None:
            summary[(task, kind)] = (fmt_lr(chosen[1]) + (" (provisional)" if incomplete else ""),
                                     cell([t for _, t in chosen[2]], chosen[3]))
    w = io.StringIO()
    w.write("## LR sweep: the learning rate chosen on val (Rothermel et al. 2021)\n\n")
    w.write("Per arm directory: val = the mean of each finished run's best val accuracy, test = the mean of its "
            "test accuracy there (%). The lr with the best val is chosen (ties: the smaller lr); "
            "\"(provisional)\": a run of the sweep is unfinished or missing.\n\n")
    w.write(fr.md_table(["task", "arm", "run directory", "lr", "val", "test", ""], rows) + "\n\n")
    tasks = sorted({g[0] for g in groups}, key=fr.task_key)
    kinds = sorted({g[1] for g in groups}, key=fr.arm_key)
    head = ["task"]
    for k in kinds:
        head += [f"{fr.ARM_SHORT.get(k, k)}: chosen lr", f"{fr.ARM_SHORT.get(k, k)}: test"]
    srows = []
    for t in tasks:
        row = [t]
        for k in kinds:
            lr, te = summary.get((t, k), (fr.NO_VALUE, fr.NO_VALUE))
            row += [lr, te]
        srows.append(row)
    w.write(fr.md_table(head, srows) + "\n\n")
    return w.getvalue()


def tables(runs, params=None, param_lr=None):
    conflicts = fr.protocol_conflicts(runs)
    conflicts += fr.protocol_conflicts([r for r in runs if any(x.arm != x.kind for x in runs
                                                               if x.task == r.task and x.kind == r.kind)],
                                       cell_of=lambda r: f"LR sweep {r.task}/{r.kind}",
                                       keys=["steps", "early_stop", "batch_size"])
    if conflicts:
        raise Refused("\n".join(conflicts))
    tasks = sorted({r.task for r in runs} | {t for t, _, _ in params or []} or
                   {"bit-memory", "bit-xor", "listops", "fashion-mnist", "pfam"}, key=fr.task_key)
    scores = scores_of(runs)
    header = ["arm"] + [t + (" " + FOOT[t] if t in FOOT else "") for t in tasks]

    def ours(arm, t):
        c = cell([x for _, x in scores.get((t, arm), [])], fr.expected_count(runs, params, t, arm))
        return c + IN_DOMAIN_MARK if (arm, t) in fr.IN_DOMAIN and c != fr.NO_VALUE else c

    def rows(table, arms):
        out = []
        prow = fr.PAPER["tables"][table]["rows"]
        for arm in arms:
            label = fr.ARM_SHORT.get(arm, arm)
            out.append([f"{label} (ours)"] + [ours(arm, t) for t in tasks])
            if arm in prow:
                out.append([f"{label} (paper)"] + [fr.paper_value(table, arm, t) for t in tasks])
        return out

    w = io.StringIO()
    w.write("# Test accuracy (%), selected on validation\n\n")
    if not runs:
        n = len(params or [])
        w.write(f"**Pending: no run has a directory yet** ({n} runs expected by the parameter file). "
                "Every \"ours\" cell is —; the paper's numbers are beside them.\n\n")
    w.write("Per run: the test accuracy at the evaluation with the best val accuracy (ties: earliest step; "
            "the final evaluation is a candidate), the weights --keep-best keeps as checkpoints/best.h5. "
            "Cell: mean ± sample std over the finished seeds; (n=K) when K < 3 or seeds are missing; — when "
            "no run is finished.\n\n")
    for table, heading, arms in TABLES:
        t = fr.PAPER["tables"][table]
        w.write(f"## {heading}\n\n")
        w.write(fr.md_table(header, rows(table, arms)) + "\n\n")
        notes = [n for n in (t.get("note"), OURS_NOTE.get(table)) if n]
        if notes:
            w.write(" ".join(notes) + "\n\n")
    in_tables = {a for _, _, arms in TABLES for a in arms}
    other = sorted({r.arm for r in runs if r.arm == r.kind} - in_tables, key=fr.arm_key)
    if other:
        w.write("## Other arms\n\n")
        w.write(fr.md_table(header, rows("2", other)) + "\n\n")
    w.write(sweep_section(runs, params, scores, param_lr))
    if "bit-memory" in tasks:
        w.write(bit_memory_note(runs) + "\n")
    for n in NOTES:
        if n[0] == "†" or any(t in tasks and n.startswith(FOOT[t]) for t in FOOT):
            w.write(n + "\n")
    unfinished = [r for r in runs if not r.finished]
    missing = fr.missing_runs(runs, params)
    if unfinished or (missing and runs):
        w.write("\nNot in the tables (unfinished or missing; never averaged):\n\n")
        for r in unfinished:
            w.write(f"- {r.name}: {r.status()}\n")
        for task, arm, seed in missing:
            w.write(f"- {task}/{arm}/seed{seed}: missing (no run directory)\n")
    checks = [r for r in runs if r.finished and r.best_json_step is not None and r.selected() is not None
              and r.selected()[0] != r.best_json_step]
    if checks:
        w.write("\nChecks (the selected evaluation and checkpoints/best.json disagree):\n\n")
        for r in checks:
            w.write(f"- {r.name}: best val in metrics.jsonl at step {r.selected()[0]}, best.json step "
                    f"{r.best_json_step}\n")
    late = [r for r in runs if r.ended == "late stop"]
    if late:
        w.write("\nRuns that trained past their early stop (a resume before commit f8ca1df restarted the "
                "patience count of val accuracy; counted in the tables, but a selection past the stop is not "
                "the protocol's):\n\n")
        for r in late:
            sel = r.selected()[0] if r.selected() else None
            where = "within it" if sel is not None and sel <= r.protocol_stop() else "PAST IT"
            w.write(f"- {r.name}: early stop at step {r.protocol_stop()}, ran to {r.final_step}; the selected "
                    f"evaluation (step {sel}) is {where}\n")
    return w.getvalue()


def write_csv(runs, path):
    with open(path, "w", newline="", encoding="utf-8") as f:
        c = csv.writer(f, lineterminator="\n")
        c.writerow(["task", "arm", "seed", "lr", "steps", "patience", "selected_step", "val_acc", "test_acc",
                    "final_test_acc", "steps_done", "ended", "best_ckpt_step", "finished"])
        for r in runs:
            sel = r.selected()
            c.writerow([r.task, r.arm, r.seed, r.config.get("lr", ""), r.config.get("steps", ""),
                        r.config.get("early_stop", ""),
                        "" if sel is None else sel[0],
                        "" if sel is None else repr(sel[2]),
                        "" if sel is None or sel[3] is None else repr(sel[3]),
                        "" if r.final_test is None else repr(r.final_test),
                        r.steps_done, r.ended or "",
                        "" if r.best_json_step is None else r.best_json_step,
                        "yes" if r.finished else "no"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs_dir", metavar="RUNS_DIR", help="directory of TASK/ARM/seedN run directories (runs/exp)")
    ap.add_argument("-o", "--output", metavar="FILE", help="write the Markdown here (default: stdout)")
    ap.add_argument("--csv", metavar="FILE", help="also write one CSV line per run")
    ap.add_argument("--params", metavar="TSV",
                    help="experiments TSV (jobs/experiments.tsv): its runs count as expected, absent ones as missing")
    fr.add_into_args(ap, "tables")
    a = ap.parse_args()
    runs = fr.load_runs(a.runs_dir, missing_ok=bool(a.params))
    lines = fr.read_param_lines(a.params) if a.params else None
    params = [(d["task"], d["arm"], d["seed"]) for d in lines] if lines is not None else None
    param_lr = {}
    for d in lines or []:
        try:
            param_lr[(d["task"], d["arm"])] = float(d.get("lr", ""))
        except ValueError:
            pass
    try:
        md = tables(runs, params, param_lr)
    except Refused as e:  # nothing is written
        for line in str(e).splitlines():
            print(f"{os.path.basename(sys.argv[0])}: error: {line}", file=sys.stderr)
        sys.exit(2)
    if a.into:
        fr.check_block(a.into, a.block)
    if a.output:
        with open(a.output, "w", encoding="utf-8") as f:
            f.write(md)
    else:
        sys.stdout.write(md)
    if a.csv:
        write_csv(runs, a.csv)
    if a.into:
        fr.splice(a.into, md, a.block)


if __name__ == "__main__":
    main()
