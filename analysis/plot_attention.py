#!/usr/bin/python3
"""The paper's §3.5 attention figure from an `fpt attention` dump (ATT.h5).

For a few samples: one heatmap each of one block's attention (default layer 0), averaged over
the heads, with the r readout ("output") positions as rows and every input token as columns.
On Bit XOR (T = 2r tokens: string a, then string b) output i should look at a_i and b_i, tokens
i and i + r; those two cells are outlined (--no-overlay to leave them out).

Also prints the summary number, over every sample in the file: the mean attention mass that an
output query puts on its two same-index bits, next to what uniform attention over the tokens it
can see (causal: query q sees q + 1 tokens) would put there, 2 / (q + 1) averaged over the queries.

  analysis/plot_attention.py ATT.h5 -o attention.png [--samples 4] [--layer 0]
"""
import argparse
import sys

import h5py
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402


def same_index_mass(A, r):
    """A: [N, T, T] head-averaged maps with T = 2r. Returns (mean mass of output query i on
    tokens i and i + r, per-output-position masses [r], uniform baseline)."""
    T = A.shape[-1]
    i = np.arange(r)
    q = T - r + i
    mass = A[:, q, i] + A[:, q, i + r]  # [N, r]
    uniform = float(np.mean(2.0 / (q + 1)))
    return float(mass.mean()), mass.mean(0), uniform


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("att", help="ATT.h5 written by fpt attention")
    ap.add_argument("-o", "--out", required=True, help="PNG file to write")
    ap.add_argument("--samples", type=int, default=4, help="heatmaps (the first samples)")
    ap.add_argument("--layer", type=int, default=0, help="block to show (must be in the dump)")
    ap.add_argument("--no-overlay", action="store_true", help="do not outline tokens i and i+r")
    a = ap.parse_args()

    with h5py.File(a.att, "r") as f:
        layers = [int(l) for l in f["layers"][()]]
        if a.layer not in layers:
            sys.exit(f"{a.att}: layer {a.layer} is not in the dump (layers {layers}); "
                     f"run fpt attention with --layers {a.layer}")
        A = f["attention"][:, layers.index(a.layer)].astype(np.float64).mean(1)  # [N, T, T]
        x = f["inputs"][()]
        y, pred = f["targets"][()], f["predictions"][()]
        task = f.attrs["task"]
        task = task.decode() if isinstance(task, bytes) else str(task)
        r = int(f.attrs["readout"])
    N, T, _ = A.shape
    xor_like = T == 2 * r
    ns = max(1, min(a.samples, N))

    cols = min(ns, 2)
    rows = (ns + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(0.45 * T * cols + 1.5, 0.45 * r * rows + 1.3),
                             squeeze=False, constrained_layout=True)
    vmax = float(A[:ns, T - r:].max())
    for k in range(rows * cols):
        ax = axes[k // cols][k % cols]
        if k >= ns:
            ax.axis("off")
            continue
        im = ax.imshow(A[k, T - r:], cmap="viridis", vmin=0.0, vmax=vmax, aspect="equal")
        if x.ndim == 3 and x.shape[2] == 1:  # one value per token: show it
            vals = [f"{v:g}" for v in x[k, :, 0]]
        else:
            vals = [""] * T
        if xor_like:
            names = [f"a{j}" if j < r else f"b{j - r}" for j in range(T)]
        else:
            names = [str(j) for j in range(T)]
        ax.set_xticks(range(T), [f"{n}\n{v}" for n, v in zip(names, vals)], fontsize=7)
        ax.set_yticks(range(r), [f"out {i}" for i in range(r)], fontsize=7)
        if xor_like and not a.no_overlay:
            for i in range(r):
                for j in (i, i + r):
                    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=1.2,
                                           ec="red"))
        tgt = "".join(str(int(v)) for v in y[k])
        out = "".join(str(int(v)) for v in pred[k])
        ax.set_title(f"sample {k}: target {tgt}, predicted {out}", fontsize=8)
        ax.set_xlabel("input token", fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.8, label="attention (heads averaged)")
    fig.suptitle(f"{task}: layer {a.layer} attention of the {r} output positions", fontsize=9)
    fig.savefig(a.out, dpi=150)
    print(f"{a.out}: {ns} sample(s), layer {a.layer}")

    if not xor_like:
        print(f"no same-index summary: {T} tokens is not two strings of {r} bits (bit-xor)")
        return
    mass, per_pos, uniform = same_index_mass(A, r)
    print(f"layer {a.layer}, heads averaged, {N} samples: mean attention on the two same-index "
          f"bits {mass:.6f} (uniform over the visible tokens {uniform:.6f}, "
          f"ratio {mass / uniform:.2f})")
    print("per output position: " + " ".join(f"{v:.3f}" for v in per_pos))


if __name__ == "__main__":
    main()
