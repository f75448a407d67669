#!/usr/bin/python3
"""Held-out bits per byte of the pretrained language model, next to a unigram
baseline and the same model at its random init (docs/RESULTS.md, Pretraining).

  analysis/pretrain_report.py --data data/corpus/text.h5 \
      --run runs/pretrain --init-run runs/pretrain-init [-o table.md]

--run and --init-run are fpt pretrain run directories: the trained run, and
`fpt pretrain --steps 0` of the same shape and seed (it only evaluates the
random init). Their final val/test losses are mean cross-entropies in nats per
predicted byte; bits per byte = loss / ln 2.

The unigram baseline predicts every byte with the byte frequencies of the
training split (add-one smoothed over 256 values) and is scored on the same
val/test targets as the model.
"""
import argparse
import json
import math
import sys

import h5py
import numpy as np


def final_losses(run):
    out = {}
    with open(f"{run}/metrics.jsonl") as f:
        for line in f:
            o = json.loads(line)
            if o.get("final") == 1:
                out[o["split"]] = o["loss"]
    if "val" not in out or "test" not in out:
        sys.exit(f"pretrain_report: {run}/metrics.jsonl has no final val/test lines (unfinished run?)")
    return out


def unigram_bpb(path):
    with h5py.File(path, "r") as f:
        if f.attrs["task"] not in (b"text", "text"):
            sys.exit(f"pretrain_report: {path}: task is {f.attrs['task']!r}, not text")
        counts = np.bincount(f["train/y"][...].ravel(), minlength=256).astype(np.float64) + 1.0
        logp = np.log2(counts / counts.sum())
        res = {}
        for split in ("val", "test"):
            y = f[f"{split}/y"][...].ravel()
            res[split] = float(-logp[y].mean())
        res["bytes"] = {s: int(f[f"{s}/y"].size) for s in ("train", "val", "test")}
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--init-run", required=True)
    ap.add_argument("-o", "--out")
    a = ap.parse_args()
    uni = unigram_bpb(a.data)
    trained = final_losses(a.run)
    init = final_losses(a.init_run)
    ln2 = math.log(2)
    rows = [
        ("uniform over 256 bytes", 8.0, 8.0),
        ("unigram (train byte frequencies)", uni["val"], uni["test"]),
        ("12-layer model at random init", init["val"] / ln2, init["test"] / ln2),
        ("12-layer model, pretrained", trained["val"] / ln2, trained["test"] / ln2),
    ]
    lines = ["| model | val bits/byte | test bits/byte |", "|---|---|---|"]
    lines += [f"| {n} | {v:.3f} | {t:.3f} |" for n, v, t in rows]
    b = uni["bytes"]
    lines.append("")
    lines.append(f"Held-out targets: {b['val']:,} val and {b['test']:,} test bytes; "
                 f"{b['train']:,} training targets.")
    text = "\n".join(lines) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    print(text, end="")


if __name__ == "__main__":
    main()
