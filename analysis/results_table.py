#!/usr/bin/python3
"""Test-accuracy tables in the shape of the paper's Table 1 and Tables 2/9.

  analysis/results_table.py runs/exp -o table.md --csv runs.csv [--params jobs/experiments.tsv]

Reads RUNS_DIR/TASK/ARM/seedN/metrics.jsonl (jobs/run-experiments.sh,
jobs/experiment.sbatch) and writes Markdown (stdout, or -o FILE):

  Table 1     FPT vs the Full transformer (arms fpt, full)
  Tables 2/9  frozen backbones: language-pretrained vs random vs statistics-matched
              init (arms fpt, random, stats)

one row per arm ("ours") with the paper's row under it, one column per task
(bit-memory, bit-xor, listops, listops-x2, fashion-mnist, pfam, then any other).

Selection rule (per run). The candidates are the run's evaluations: every step at
which both a val and a test accuracy were logged, the final evaluation ("final":1)
included. The selected evaluation is the one with the highest VAL accuracy; ties
(exactly equal accuracies as logged) go to the earliest step, and at equal steps
a periodic evaluation comes before the final one. The run's score is the TEST
accuracy of that evaluation. Test never takes part in the choice.

Cell. Over the FINISHED runs of a (task, arm) — finished = a final test line
exists, the rule jobs/run-experiments.sh skips on — the mean ± sample standard
deviation (ddof 1) of the scores, in %, one decimal; a single run has no ± part.
"(n=K)" follows when K < 3 or when K is below the number of seeds the task is
expected to have (the seeds of any arm of that task in RUNS_DIR, plus those
--params lists). "—" when there is no finished run. Unfinished and missing runs
are listed under the tables, never averaged in.

Paper rows (fpt-paper.md §4, Tables 1, 2, 9): fashion-mnist shows the paper's MNIST
column, pfam its Remote Homology column (footnoted); listops-x2 has no paper number.

--csv FILE writes one line per run directory: task, arm, seed, selected_step,
val_acc, test_acc (of the selected evaluation, unfinished runs included with the
evaluations they have so far), final_test_acc, steps_done, finished (yes/no).

Debian's /usr/bin/python3 with numpy only.
"""
import argparse
import csv
import io
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fptruns as fr  # noqa: E402

FOOT = {"bit-memory": "¹", "listops-x2": "²", "fashion-mnist": "³", "pfam": "⁴"}


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
    if lengths == ["100"]:
        what = "100-bit patterns (jobs/experiment.sbatch: --bit-length 100 --patch 10, 60 tokens)"
    else:
        what = "patterns of " + ", ".join(lengths) + " bits (config.yaml bit_length)"
    return (f"¹ bit-memory: our runs use {what}; the paper's use 1000-bit patterns (120 tokens of 50 bits), "
            "so the task is smaller than the paper's.")


NOTES = [
    "² listops-x2: ListOps with LRA's current tokenisation (`--tokens x2`: closing brackets kept, up to 2000 tokens); "
    "the paper only ran the old, lossy 512-token one (the listops column), so it has no number here.",
    "³ fashion-mnist: the paper has no Fashion-MNIST run; its row shows the paper's MNIST column "
    "(Fashion-MNIST is the harder task, so lower numbers are expected).",
    "⁴ pfam: the paper's row shows its Remote Homology column (TAPE fold classification, 1195 classes); our pfam "
    "is family classification over the Pfam families of Debian's hmmer-examples (docs/DATA.md): a different, "
    "much smaller task, so the numbers are not comparable.",
]


def tables(runs, params=None):
    tasks = sorted({r.task for r in runs} | set(fr.TASKS), key=fr.task_key)
    scores = {}
    for r in runs:
        if r.finished:
            sel = r.selected()
            if sel is not None:
                scores.setdefault((r.task, r.arm), []).append(sel[3])
    header = ["arm"] + [t + (" " + FOOT[t] if t in FOOT else "") for t in tasks]

    def rows(arms):
        out = []
        for arm in arms:
            label = fr.ARM_SHORT.get(arm, arm)
            out.append([f"{label} (ours)"] + [cell(scores.get((t, arm), []), fr.expected_count(runs, params, t, arm)) for t in tasks])
            if arm in fr.PAPER_ACC:
                out.append([f"{label} (paper)"] + [fr.PAPER_ACC[arm].get(t, fr.NO_VALUE) for t in tasks])
        return out

    other = sorted({r.arm for r in runs} - set(fr.ARMS) - set(fr.OUTPUT_ARMS), key=fr.arm_key)
    w = io.StringIO()
    w.write("# Test accuracy (%), selected on validation\n\n")
    w.write("Per run: the test accuracy at the evaluation with the best val accuracy (ties: earliest step; "
            "the final evaluation is a candidate). Cell: mean ± sample std over the finished seeds; "
            "(n=K) when K < 3 or seeds are missing; — when no run is finished.\n\n")
    w.write("## Table 1: FPT vs the fully trained transformer\n\n")
    w.write(fr.md_table(header, rows(["fpt", "full"])) + "\n\n")
    w.write("Paper's Full row: ListOps is quoted from LRA's vanilla transformer (Tay et al.) and Homology from "
            "TAPE's 12-layer transformer (Rao et al.); its CIFAR-10 Full is a 3-layer GPT-2 trained end to end "
            "(Appendix D.1). Ours is, for every task, a 3-layer GPT-2 of the backbone's width trained end to end "
            "from random init.\n\n")
    w.write("## Tables 2 and 9: frozen backbone, language-pretrained vs random vs statistics-matched init\n\n")
    w.write(fr.md_table(header, rows(["fpt", "random", "stats"] + other)) + "\n\n")
    if any(r.arm in fr.OUTPUT_ARMS for r in runs):
        w.write("## Table 10: output layer only (SGD, and exact) vs FPT\n\n")
        w.write(fr.md_table(header, rows(["fpt"] + fr.OUTPUT_ARMS)) + "\n\n")
        w.write("Output only: the input layer stays at its seeded init, and the LayerNorms, positions and the "
                "backbone stay frozen. SGD trains the output layer with the FPT arm's budget. Exact: `fpt probe` "
                "fits it by ridge least squares on the frozen features of as many training samples as SGD sees "
                "(the squared loss, λ chosen on val). Paper: Table 10's output-only row (ListOps; its other "
                "task, CIFAR-10 LRA, is not run here).\n\n")
    w.write(bit_memory_note(runs) + "\n")
    for n in NOTES:
        w.write(n + "\n")
    unfinished = [r for r in runs if not r.finished]
    missing = fr.missing_runs(runs, params)
    if unfinished or missing:
        w.write("\nNot in the tables:\n\n")
        for r in unfinished:
            w.write(f"- {r.name}: {r.status()}\n")
        for task, arm, seed in missing:
            w.write(f"- {task}/{arm}/seed{seed}: missing (no run directory)\n")
    return w.getvalue()


def write_csv(runs, path):
    with open(path, "w", newline="", encoding="utf-8") as f:
        c = csv.writer(f, lineterminator="\n")
        c.writerow(["task", "arm", "seed", "selected_step", "val_acc", "test_acc", "final_test_acc",
                    "steps_done", "finished"])
        for r in runs:
            sel = r.selected()
            c.writerow([r.task, r.arm, r.seed,
                        "" if sel is None else sel[0],
                        "" if sel is None else repr(sel[2]),
                        "" if sel is None else repr(sel[3]),
                        "" if r.final_test is None else repr(r.final_test),
                        r.steps_done, "yes" if r.finished else "no"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs_dir", metavar="RUNS_DIR", help="directory of TASK/ARM/seedN run directories (runs/exp)")
    ap.add_argument("-o", "--output", metavar="FILE", help="write the Markdown here (default: stdout)")
    ap.add_argument("--csv", metavar="FILE", help="also write one CSV line per run")
    ap.add_argument("--params", metavar="TSV",
                    help="experiments TSV (jobs/experiments.tsv): its runs count as expected, absent ones as missing")
    ap.add_argument("--into", metavar="MD",
                    help="also replace the block between '<!-- tables:begin -->' and '<!-- tables:end -->' of "
                         "this Markdown file (docs/RESULTS.md) with the tables, headings one level down")
    a = ap.parse_args()
    runs = fr.load_runs(a.runs_dir)
    params = fr.read_params(a.params) if a.params else None
    md = tables(runs, params)
    if a.output:
        with open(a.output, "w", encoding="utf-8") as f:
            f.write(md)
    else:
        sys.stdout.write(md)
    if a.csv:
        write_csv(runs, a.csv)
    if a.into:
        splice(a.into, md)


def splice(path, md):
    """Put md (its first heading dropped, the others one level down) between
    the markers of path, atomically."""
    begin, end = "<!-- tables:begin -->", "<!-- tables:end -->"
    with open(path, encoding="utf-8") as f:
        text = f.read()
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < i:
        sys.exit(f"{path}: no '{begin}' ... '{end}' block")
    lines = md.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    body = "\n".join("#" + l if l.startswith("#") else l for l in lines).strip("\n")
    out = text[:i + len(begin)] + "\n" + body + "\n" + text[j:]
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(out)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
