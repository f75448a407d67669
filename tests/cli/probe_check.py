#!/usr/bin/python3
"""Independent checks of `fpt probe` with NumPy (written from the problem
statement in docs/PROBE.md, not from the C code).

  make-data OUT [--same]     a small 10-class dataset file (r = 1, K = 1);
                             --same: every training input is the same
  check RUN                  re-solve RUN's ridge problem from its feature
                             cache with numpy.linalg.lstsq at the chosen
                             lambda; compare the solution (probe.h5) and the
                             reported scores (metrics.jsonl)
  compare RUN_A RUN_B TOL    the same answer: solutions within TOL (relative),
                             same accuracies, losses within TOL
  eval RUN LOG               `fpt eval`'s printed val/test = RUN's final ones
  step0 RUN TRAIN_RUN        `fpt train --init-head-from`'s step-0 val line
                             = the probe's val score
"""
import json
import sys

import h5py
import numpy as np

OK = True


def expect(cond, what):
    global OK
    print(("ok: " if cond else "FAIL: ") + what)
    OK &= bool(cond)


def make_data(out, same):
    rng = np.random.default_rng(7)
    seq, d_in, ncls = 8, 6, 10
    centers = rng.normal(0, 1, (ncls, seq, d_in))
    with h5py.File(out, "w") as f:
        attrs = dict(format_version=1, seq=seq, d_in=d_in, vocab=0, seq2=0, vocab2=0,
                     n_classes=ncls, K=1, r=1, pad_id=-1, seed=7)
        for k, v in attrs.items():
            f.attrs[k] = np.int64(v)
        f.attrs["task"] = np.bytes_("synthetic")  # fixed-length ASCII, as the C writers
        f.attrs["sources"] = np.bytes_("tests/cli/probe_check.py")
        f.attrs["generator"] = np.bytes_("probe_check.py make-data")
        for split, n in (("train", 600), ("val", 200), ("test", 200)):
            y = rng.integers(0, ncls, n)
            x = centers[y] + rng.normal(0, 1.5, (n, seq, d_in))
            if same and split == "train":
                x[:] = x[0]
            f[f"{split}/x"] = x.astype(np.float32)
            f[f"{split}/y"] = y.astype(np.int32)[:, None]


def load_run(run):
    feats = h5py.File(f"{run}/features.h5", "r")
    sol = h5py.File(f"{run}/probe.h5", "r")
    final, sweep = {}, []
    for l in map(json.loads, open(f"{run}/metrics.jsonl")):  # the last run's lines
        if l.get("sweep"):
            if final:
                final, sweep = {}, []
            sweep.append(l)
        elif l.get("final"):
            final[l["split"]] = l
    return feats, sol, final, sweep


def onehot(f, y):
    """Targets of the N*r readout rows: n_out/n_cls groups of n_cls classes per position."""
    r, n_out, ncls = int(f.attrs["r"]), int(f.attrs["n_out"]), int(f.attrs["n_classes"])
    per = n_out // ncls
    N = y.shape[0]
    Y = np.zeros((N * r, n_out))
    for j in range(r):
        for o in range(n_out):
            Y[j::r, o] = y[:, j * per + o // ncls] == o % ncls
    return Y


def scores(f, split, W):
    """The float32 head on a split: cross-entropy, accuracy, as the model's head."""
    X = f[f"{split}/features"][:].astype(np.float64)
    y = f[f"{split}/y"][:]
    ncls = int(f.attrs["n_classes"])
    Wf = W.astype(np.float32).astype(np.float64)
    z = (X @ Wf[:-1] + Wf[-1]).reshape(-1, ncls)  # rows of n_cls logits, target order
    t = y.reshape(-1)
    z = z - z.max(axis=1, keepdims=True)
    loss = np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(t)), t])
    return loss, np.mean(z.argmax(axis=1) == t), len(t)


def check(run):
    f, sol, final, sweep = load_run(run)
    lam = float(sol.attrs["lambda"])
    X = f["train/features"][:].astype(np.float64)
    Y = onehot(f, f["train/y"][:])
    M, C = X.shape
    A = np.vstack([np.hstack([X, np.ones((M, 1))]),
                   np.hstack([np.sqrt(lam) * np.eye(C), np.zeros((C, 1))])])
    B = np.vstack([Y, np.zeros((C, Y.shape[1]))])
    Wnp = np.linalg.lstsq(A, B, rcond=None)[0]
    scale = np.abs(Wnp).max()
    for name in ("W", "W_gels"):
        if name in sol:
            err = np.abs(sol[name][:] - Wnp).max() / scale
            expect(err < 1e-6, f"{run}: {name} (lambda {lam:g}) = NumPy lstsq within {err:.1e} < 1e-6")
    primary = [l for l in sweep if l["sweep"] == min(x["sweep"] for x in sweep)]  # posv first
    best = max(primary, key=lambda l: (l["accuracy"], l["lambda"]))  # ties: the larger lambda
    expect(best["lambda"] == lam, f"{run}: chosen lambda {lam:g} has the best validation accuracy")
    for split in ("train", "val", "test"):
        loss, acc, n = scores(f, split, sol["W"][:])
        c = final[split]
        expect(abs(acc - c["accuracy"]) <= 1.0 / n + 1e-12 and abs(loss - c["loss"]) < 1e-5 * max(1, loss),
               f"{run}: {split} accuracy {c['accuracy']:.6f} loss {c['loss']:.6f} = NumPy's "
               f"{acc:.6f} {loss:.6f}")


def compare(a, b, tol):
    fa, sa, ma, _ = load_run(a)
    fb, sb, mb, _ = load_run(b)
    Wa, Wb = sa["W"][:], sb["W"][:]
    err = np.abs(Wa - Wb).max() / np.abs(Wa).max()
    expect(err < tol, f"{a} vs {b}: solutions within {err:.1e} < {tol:g}")
    for split in ("train", "val", "test"):
        la, lb = ma[split], mb[split]
        expect(la["accuracy"] == lb["accuracy"] and abs(la["loss"] - lb["loss"]) < tol * max(1, la["loss"]),
               f"{a} vs {b}: {split} accuracy {la['accuracy']:.6f} = {lb['accuracy']:.6f}, loss "
               f"{la['loss']:.7f} ~ {lb['loss']:.7f}")


def parse_eval(log):
    out = {}
    for line in open(log):
        w = line.split()
        if len(w) >= 5 and w[0] in ("val", "test") and w[1] == "loss":
            out[w[0]] = (float(w[2]), float(w[4]))
    return out


def eval_check(run, log):
    final = {}
    for l in map(json.loads, open(f"{run}/metrics.jsonl")):
        if l.get("final"):
            final[l["split"]] = l
    ev = parse_eval(log)
    for split in ("val", "test"):
        loss, acc = ev.get(split, (None, None))
        c = final[split]
        expect(acc is not None and abs(acc - c["accuracy"]) < 1e-6 and abs(loss - c["loss"]) < 1e-5,
               f"fpt eval {split}: accuracy {acc} loss {loss} = {run}'s {c['accuracy']:.6f} {c['loss']:.6f}")


def step0(run, train_run):
    _, _, final, _ = load_run(run)
    lines = [r for r in map(json.loads, open(f"{train_run}/metrics.jsonl")) if r["split"] != "run"]
    first = lines[0]
    c = final["val"]
    expect(first["step"] == 0 and first["split"] == "val" and first["accuracy"] == c["accuracy"]
           and abs(first["loss"] - c["loss"]) < 1e-5,
           f"train step 0 val accuracy {first['accuracy']:.6f} loss {first['loss']:.6f} = the "
           f"probe's {c['accuracy']:.6f} {c['loss']:.6f}")
    expect(any(l["split"] == "train" for l in lines), "training continued from the probe's head")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make-data":
        make_data(args[0], "--same" in args)
    elif cmd == "check":
        check(args[0])
    elif cmd == "compare":
        compare(args[0], args[1], float(args[2]))
    elif cmd == "eval":
        eval_check(args[0], args[1])
    elif cmd == "step0":
        step0(args[0], args[1])
    sys.exit(0 if OK else 1)
