#!/usr/bin/python3
"""The C layer-normalised LSTM kernels (src/model/lstm.c) against an independent
float64 PyTorch computation.

  lstm_kernel_check.py LSTM_CASE WORKDIR

For each case: random inputs, weights and initial states are written to a raw
file, the C program `lstm_case` runs a stack of L layers forward and backward
on them, and the same computation is built here with plain torch ops from the
paper's description (universal_computation/models/lstm.py, LayerNormLSTM with
cln=False, unidirectional): its own LayerNorm with the unbiased variance,
autograd for every gradient.  Nothing is shared with the C side but the file
layout.  With dropout, only the keep mask comes from C (drawn by
dropout_apply, not by the LSTM code); where it applies is the paper's: h_t is
dropped in place (scaled by 1/(1-p)), so the dropped h is both the output and
the state of step t+1.

Error of a tensor = max|c - ref| / max(max|ref|, 1e-6) (relative to the
tensor's scale, as tests/torch/compare.py).  Tolerances: forward 1e-5,
gradients 1e-4.  Prints each case's worst errors and timing; times are never
checked.

File layout (little-endian):
  in:  int32 magic 'LSTM', B, T, C, L, residual; float32 eps, p; float32 x (B,T,C),
       dout (B,T,C), then per layer the 10 tensors below, h0 (B,C), c0 (B,C)
  out: float32 out (B,T,C), dx (B,T,C), then per layer the 10 gradients,
       dh0 (B,C), dc0 (B,C); if p > 0, then per layer the keep mask (B,T,C) as 0/1
"""
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch

MAGIC = 0x4D54534C
NAMES = ["i2h_w", "i2h_b", "h2h_w", "h2h_b", "ln_i2h_w", "ln_i2h_b",
         "ln_h2h_w", "ln_h2h_b", "ln_cell_w", "ln_cell_b"]
TOL_FWD, TOL_GRAD, FLOOR = 1e-5, 1e-4, 1e-6


def shapes(C):
    G = 4 * C
    return {"i2h_w": (G, C), "i2h_b": (G,), "h2h_w": (G, C), "h2h_b": (G,),
            "ln_i2h_w": (G,), "ln_i2h_b": (G,), "ln_h2h_w": (G,), "ln_h2h_b": (G,),
            "ln_cell_w": (C,), "ln_cell_b": (C,)}


def make_layer(rng, C, init):
    """'paper': the paper's init (every Linear and LN tensor U(+-1/sqrt(size)),
    LN gains included); 'wide': larger weights and LN gains around 1, so that
    the gates saturate and the cell LN matters."""
    p = {}
    for n, s in shapes(C).items():
        if init == "paper":
            size = C if n.startswith(("i2h", "h2h")) else s[0]
            p[n] = rng.uniform(-1, 1, s) / math.sqrt(size)
        elif n.startswith("ln_") and n.endswith("_w"):
            p[n] = 1.0 + 0.3 * rng.standard_normal(s)
        else:
            p[n] = (1.5 / math.sqrt(C) if n.endswith("_w") and n[:3] in ("i2h", "h2h") else 0.3) \
                * rng.standard_normal(s)
    return p


def layer_norm(x, w, b, eps):
    # The paper's LayerNorm: torch.var's default (unbiased) variance, eps inside the sqrt.
    m = x.mean(dim=-1, keepdim=True)
    v = torch.var(x, dim=-1, unbiased=True, keepdim=True)
    return w * (x - m) / torch.sqrt(v + eps) + b


def lstm_layer(x, p, h, c, eps, residual, keep=None, pdrop=0.0):
    """x (B,T,C) batch-first; p: dict of tensors; keep (B,T,C) 0/1 or None;
    returns (B,T,C)."""
    C = h.shape[1]
    ys = []
    for t in range(x.shape[1]):
        i2h = layer_norm(x[:, t] @ p["i2h_w"].T + p["i2h_b"], p["ln_i2h_w"], p["ln_i2h_b"], eps)
        h2h = layer_norm(h @ p["h2h_w"].T + p["h2h_b"], p["ln_h2h_w"], p["ln_h2h_b"], eps)
        a = i2h + h2h
        i = torch.sigmoid(a[:, :C])
        f = torch.sigmoid(a[:, C:2 * C])
        o = torch.sigmoid(a[:, 2 * C:3 * C])
        g = torch.tanh(a[:, 3 * C:])
        c = layer_norm(f * c + i * g, p["ln_cell_w"], p["ln_cell_b"], eps)
        h = o * torch.tanh(c)
        if keep is not None:  # F.dropout(h_t, inplace=True): the state is the dropped h
            h = h * keep[:, t] / (1.0 - pdrop)
        ys.append(h)
    y = torch.stack(ys, dim=1)
    return x + y if residual else y


def f32(a):
    return np.ascontiguousarray(a, dtype="<f4")


def run_case(exe, work, name, B, T, C, L, residual, init, eps, pdrop, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, C))
    dout = rng.standard_normal((B, T, C))
    std0 = math.sqrt(2.0 / (C + C))  # the paper's initial-state scale
    layers = []
    for _ in range(L):
        p = make_layer(rng, C, init)
        layers.append((p, std0 * rng.standard_normal((B, C)), std0 * rng.standard_normal((B, C))))
    # The reference sees exactly the float32 values the C code reads.
    x, dout = f32(x), f32(dout)
    layers = [({n: f32(v) for n, v in p.items()}, f32(h0), f32(c0)) for p, h0, c0 in layers]

    fin, fout = os.path.join(work, name + ".in"), os.path.join(work, name + ".out")
    with open(fin, "wb") as f:
        f.write(np.array([MAGIC, B, T, C, L, residual], dtype="<i4").tobytes())
        f.write(np.array([eps, pdrop], dtype="<f4").tobytes())
        f.write(x.tobytes())
        f.write(dout.tobytes())
        for p, h0, c0 in layers:
            for n in NAMES:
                f.write(p[n].tobytes())
            f.write(h0.tobytes())
            f.write(c0.tobytes())
    t0 = time.perf_counter()
    subprocess.run([exe, fin, fout], check=True)
    t_c = time.perf_counter() - t0

    raw = np.fromfile(fout, dtype="<f4")
    got, off = {}, 0

    def take(key, shape):
        nonlocal off
        n = int(np.prod(shape))
        got[key] = raw[off:off + n].reshape(shape).astype(np.float64)
        off += n

    take("out", (B, T, C))
    take("dx", (B, T, C))
    for l in range(L):
        for n, s in shapes(C).items():
            take(f"{l}/{n}", s)
        take(f"{l}/h0", (B, C))
        take(f"{l}/c0", (B, C))
    keeps = [None] * L
    if pdrop > 0:
        for l in range(L):
            take(f"{l}/keep", (B, T, C))
            keeps[l] = torch.tensor(got[f"{l}/keep"], dtype=torch.float64)
        kept = float(np.mean([k.mean().item() for k in keeps]))
        if not (set(np.unique(got["0/keep"])) <= {0.0, 1.0}) or abs(kept - (1 - pdrop)) > 0.05:
            raise SystemExit(f"{name}: keep masks are not 0/1 with rate {1 - pdrop} (got {kept:.3f})")
    if off != raw.size:
        raise SystemExit(f"{name}: output file has {raw.size} floats, expected {off}")

    t0 = time.perf_counter()
    leaf = lambda a: torch.tensor(a, dtype=torch.float64, requires_grad=True)
    xt = leaf(x)
    tl = [({n: leaf(v) for n, v in p.items()}, leaf(h0), leaf(c0)) for p, h0, c0 in layers]
    y = xt
    for (p, h0, c0), keep in zip(tl, keeps):
        y = lstm_layer(y, p, h0, c0, float(np.float32(eps)), residual, keep,
                       float(np.float32(pdrop)))
    (y * torch.tensor(dout, dtype=torch.float64)).sum().backward()
    t_ref = time.perf_counter() - t0

    ref = {"out": y.detach().numpy(), "dx": xt.grad.numpy()}
    for l, (p, h0, c0) in enumerate(tl):
        for n in NAMES:
            ref[f"{l}/{n}"] = p[n].grad.numpy()
        ref[f"{l}/h0"] = h0.grad.numpy()
        ref[f"{l}/c0"] = c0.grad.numpy()

    worst = {"fwd": (0.0, ""), "grad": (0.0, "")}
    ok = True
    for k, r in ref.items():
        c = got[k]
        kind, tol = ("fwd", TOL_FWD) if k == "out" else ("grad", TOL_GRAD)
        if not np.all(np.isfinite(c)):
            print(f"FAIL: {name}: {k} has NaN or Inf")
            ok = False
            continue
        err = float(np.max(np.abs(c - r)) / max(float(np.max(np.abs(r))), FLOOR))
        if err > worst[kind][0]:
            worst[kind] = (err, k)
        if err > tol:
            print(f"FAIL: {name}: {k} error {err:.3g} > {tol:g}")
            ok = False
    print(f"{'ok' if ok else 'FAIL'}: {name} (B={B} T={T} C={C} L={L} residual={residual} "
          f"init={init} p={pdrop}): forward {worst['fwd'][0]:.2e}, gradients {worst['grad'][0]:.2e} "
          f"({worst['grad'][1]}); C {t_c * 1e3:.0f} ms (process), torch {t_ref * 1e3:.0f} ms")
    return ok, worst["fwd"][0], worst["grad"][0]


CASES = [  # name, B, T, C, L, residual, init, eps, dropout p, seed
    ("paper-c8", 3, 5, 8, 2, 0, "paper", 1e-6, 0.0, 1),
    ("wide-c16-residual", 3, 6, 16, 2, 1, "wide", 1e-6, 0.0, 2),
    ("wide-c24", 3, 7, 24, 2, 0, "wide", 1e-5, 0.0, 3),
    ("paper-c12-residual", 3, 5, 12, 2, 1, "paper", 1e-6, 0.0, 4),
    ("paper-c128-t20", 3, 20, 128, 2, 0, "paper", 1e-6, 0.0, 5),
    ("wide-c128-t20-residual", 3, 20, 128, 2, 1, "wide", 1e-6, 0.0, 6),
    # Dropout: the mask from C, its place (in-place on h, carried on) from the paper.
    ("wide-c16-dropout", 3, 6, 16, 2, 0, "wide", 1e-6, 0.3, 7),
    ("paper-c128-t20-dropout-residual", 3, 20, 128, 2, 1, "paper", 1e-6, 0.1, 8),
    # B * 4C >= 4096: each step's rows run on OpenMP threads.
    ("wide-c256-b4-dropout", 4, 6, 256, 2, 0, "wide", 1e-6, 0.1, 9),
]


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    exe, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    torch.set_num_threads(1)
    results = [run_case(exe, work, *c) for c in CASES]
    print(f"max forward error {max(r[1] for r in results):.2e} (tolerance {TOL_FWD:g}), "
          f"max gradient error {max(r[2] for r in results):.2e} (tolerance {TOL_GRAD:g})")
    sys.exit(0 if all(r[0] for r in results) else 1)


if __name__ == "__main__":
    main()
