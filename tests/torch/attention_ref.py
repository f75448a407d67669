#!/usr/bin/python3
"""Check an `fpt attention` dump (ATT.h5) against PyTorch, in float64.

The model is rebuilt from the files the dump names: the backbone from its `model`
attribute, then every tensor stored under /params of its `checkpoint` on top (the input and
output layers, LayerNorms, positions, and whatever else the run trained). The attention of every
block is torch's own nn.MultiheadAttention (need_weights, per head, boolean causal mask), put in
place of fpt_torch's hand-written attention; LayerNorm, gelu_new and the rest are fpt_torch's.
The dump's /inputs run through it; checked:

  - /attention against torch's probabilities, every requested layer, head, query row and key:
    max abs error < --tol (1e-5);
  - the dump itself: every row sums to 1 (within 1e-5), exact zeros above the diagonal (causal);
  - /predictions against the argmax of the reference logits of the r readout rows (a mismatch
    only counts where the reference's top two logits differ by more than 1e-4);
  - /targets: bit-xor targets are the XOR of the two strings in /inputs; with --data, /inputs
    and /targets are the first N rows of that split of the dataset file.

Needs the checkpoint to hold the input and output layers (runs that train them: the default).
Prints one `ok:`/`FAIL:` line per check and exits nonzero on any failure.
"""
import argparse
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fpt_torch  # noqa: E402

DT = torch.float64


def torch_attention(record):
    """A replacement for fpt_torch.attention built on torch.nn.MultiheadAttention, appending
    each block's probabilities [B, n_head, T, T] to `record`."""
    def attention(a, w_attn, b_attn, w_proj, b_proj, n_head, causal=True, key_keep=None):
        B, T, C = a.shape
        mha = torch.nn.MultiheadAttention(C, n_head, bias=True, batch_first=True, dtype=DT)
        with torch.no_grad():
            # GPT-2's Conv1D computes x @ W; nn.Linear computes x @ W.T.
            mha.in_proj_weight.copy_(w_attn.t())
            mha.in_proj_bias.copy_(b_attn)
            mha.out_proj.weight.copy_(w_proj.t())
            mha.out_proj.bias.copy_(b_proj)
        future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)  # True = masked
        y, w = mha(a, a, a, attn_mask=future if causal else None,
                   key_padding_mask=None if key_keep is None else ~key_keep,
                   need_weights=True, average_attn_weights=False)
        record.append(w.detach())
        return y
    return attention


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("att")
    ap.add_argument("--data", help="the dataset file the dump was made from")
    ap.add_argument("--tol", type=float, default=1e-5)
    a = ap.parse_args()
    ok = True

    def expect(cond, what):
        nonlocal ok
        print(("ok: " if cond else "FAIL: ") + what)
        ok &= bool(cond)

    with h5py.File(a.att, "r") as f:
        att = f["attention"][()]
        layers = [int(l) for l in f["layers"][()]]
        x = f["inputs"][()]
        y = f["targets"][()]
        pred = f["predictions"][()]
        at = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    N, nL, NH, T, _ = att.shape
    r, n_cls, K = int(at["readout"]), int(at["n_classes"]), int(at["K"])
    cfg, p = fpt_torch.load_model(at["model"])
    with h5py.File(at["checkpoint"], "r") as f:
        def take(name, obj):
            if isinstance(obj, h5py.Dataset):
                p[name] = torch.from_numpy(np.asarray(obj, dtype=np.float64))
        f["params"].visititems(take)
    for n in ("in/weight", "out/weight", "out/bias"):
        if n not in p:
            sys.exit(f"{at['checkpoint']}: no /params/{n} (the run froze it): cannot rebuild")
    expect((N, nL, NH, T) == (int(at["samples"]), len(layers), cfg["n_head"], int(at["seq"])),
           f"/attention is [N={N}, layers={nL}, heads={NH}, T={T}, T]")

    # The reference forward.
    record = []
    fpt_torch.attention = torch_attention(record)
    with torch.no_grad():
        if x.dtype.kind == "f":
            e = torch.from_numpy(x.astype(np.float64)) @ p["in/weight"] + p["in/bias"]
        else:
            e = p["in/weight"][torch.from_numpy(x.astype(np.int64))]
        hidden = fpt_torch.backbone(p, cfg, e)
        logits = hidden[:, -r:] @ p["out/weight"] + p["out/bias"]
    ref = torch.stack([record[l] for l in layers], 1).numpy()  # [N, nL, NH, T, T]
    err = float(np.abs(att.astype(np.float64) - ref).max())
    expect(err < a.tol, f"attention vs torch.nn.MultiheadAttention: max abs error {err:.2e} "
           f"< {a.tol:g} ({att.size} probabilities, layers {layers})")

    sums = float(np.abs(att.astype(np.float64).sum(-1) - 1.0).max())
    expect(sums < 1e-5, f"every query row sums to 1 (max deviation {sums:.2e})")
    upper = np.triu(np.ones((T, T), dtype=bool), 1)
    expect(np.all(att[..., upper] == 0.0) and np.all(att[..., ~upper] >= 0.0),
           "exact zeros above the diagonal, none negative (causal)")

    lg = logits.reshape(N, K, n_cls).numpy()
    top2 = np.sort(lg, -1)[..., -2:]
    clear = (top2[..., 1] - top2[..., 0]) > 1e-4
    miss = int(((lg.argmax(-1) != pred) & clear).sum())
    expect(miss == 0, f"/predictions = argmax of the reference logits ({miss} of "
           f"{int(clear.sum())} clear-cut ones differ)")
    acc = float((pred == y).mean())
    expect(abs(acc - float(at["accuracy"])) < 1e-12, f"accuracy attribute {acc:.4f}")

    if at["task"] == "bit-xor":
        bits = x.reshape(N, T).astype(np.int64)
        n = T // 2
        expect(np.array_equal(y, bits[:, :n] ^ bits[:, n:]), "bit-xor targets = XOR of the strings")
    if a.data:
        with h5py.File(a.data, "r") as f:
            g = f[at["split"]]
            expect(np.array_equal(g["x"][:N], x) and np.array_equal(g["y"][:N], y),
                   f"/inputs and /targets are the first {N} rows of {a.data}:/{at['split']}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
