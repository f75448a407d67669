#!/usr/bin/python3
"""The C attention kernels (src/model/attention.c, the stored-map kernel, and
src/model/attention_flash.c, the fused one) against an independent float64
PyTorch computation.

  attention_kernel_check.py ATTENTION_CASE WORKDIR

For each case: random qkv (B,T,3C), dout, per-sample real key counts (klen)
and the mask kind are written to a raw file; the C program `attention_case`
runs the stored-map kernel, the fused kernel, and the fused kernel keeping its
dropout bits, forward and backward.  Here the same attention is built with
plain torch ops from its definition: query row i (position q0+i) of sample b
sees keys j < min(causal ? q0+i+1 : T, klen[b]); softmax over those of
q.k/sqrt(hs); dropout of the probabilities (kept ones scaled by 1/(1-p));
output = sum over keys of p * v; autograd for dq, dk, dv.  With dropout, only
the keep mask comes from C, drawn element by element by dropout_keep (not by
the attention code).  Also checked: the gradient of keys nobody sees is
exactly 0 in C.

Error of a tensor = max|c - ref| / max(max|ref|, 1e-6) (relative to the
tensor's scale, as tests/torch/compare.py).  Tolerances: forward 1e-5,
gradients 1e-4.  Times are printed, never checked.

File layout (little-endian):
  in:  int32 magic 'ATTN', B, T, q0, C, NH, causal, has_klen, qblock, kblock;
       float32 p; int32 klen (B) if has_klen; float32 qkv (B,T,3C), dout (B,T-q0,C)
  out: 3 x (float32 out (B,T-q0,C), dqkv (B,T,3C)) for stored, fused, fused
       keeping bits; if p > 0 the keep mask (B,NH,T-q0,T) as 0/1
"""
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch

MAGIC = 0x4E545441
TOL_FWD, TOL_GRAD, FLOOR = 1e-5, 1e-4, 1e-6
KERNELS = ["stored", "flash", "flash+bits"]


def attention(qkv, B, T, q0, C, NH, causal, klen, keep, p):
    """qkv (B,T,3C) float64 leaf; returns out (B,T-q0,C)."""
    hs = C // NH
    q = qkv[:, q0:, :C].reshape(B, T - q0, NH, hs).transpose(1, 2)  # (B,NH,Tq,hs)
    k = qkv[:, :, C:2 * C].reshape(B, T, NH, hs).transpose(1, 2)
    v = qkv[:, :, 2 * C:].reshape(B, T, NH, hs).transpose(1, 2)
    s = q @ k.transpose(-1, -2) / math.sqrt(hs)  # (B,NH,Tq,T)
    rows = torch.arange(q0, T).view(-1, 1)
    cols = torch.arange(T).view(1, -1)
    see = torch.ones(B, 1, T - q0, T, dtype=torch.bool)
    if causal:
        see = see & (cols <= rows)
    if klen is not None:
        see = see & (cols.view(1, 1, 1, T) < torch.tensor(klen).view(B, 1, 1, 1))
    a = torch.softmax(s.masked_fill(~see, float("-inf")), dim=-1)
    if keep is not None:
        a = a * keep / (1.0 - p)
    y = a @ v  # (B,NH,Tq,hs)
    return y.transpose(1, 2).reshape(B, T - q0, C)


def f32(a):
    return np.ascontiguousarray(a, dtype="<f4")


def run_case(exe, work, name, B, T, q0, C, NH, causal, klen, p, blocks, seed):
    rng = np.random.default_rng(seed)
    qkv = f32(rng.standard_normal((B, T, 3 * C)))
    dout = f32(rng.standard_normal((B, T - q0, C)))
    if klen is not None:  # junk keys and values beyond the real ones must not matter
        for b in range(B):
            qkv[b, klen[b]:, C:] = f32(50 * rng.standard_normal((T - klen[b], 2 * C)))
    fin, fout = os.path.join(work, name + ".in"), os.path.join(work, name + ".out")
    with open(fin, "wb") as f:
        f.write(np.array([MAGIC, B, T, q0, C, NH, causal, klen is not None, blocks[0], blocks[1]],
                         dtype="<i4").tobytes())
        f.write(np.array([p], dtype="<f4").tobytes())
        if klen is not None:
            f.write(np.array(klen, dtype="<i4").tobytes())
        f.write(qkv.tobytes())
        f.write(dout.tobytes())
    t0 = time.perf_counter()
    subprocess.run([exe, fin, fout], check=True)
    t_c = time.perf_counter() - t0

    raw = np.fromfile(fout, dtype="<f4")
    off = 0

    def take(shape):
        nonlocal off
        n = int(np.prod(shape))
        a = raw[off:off + n].reshape(shape).astype(np.float64)
        off += n
        return a

    got = [(take((B, T - q0, C)), take((B, T, 3 * C))) for _ in KERNELS]
    keep = None
    if p > 0:
        keep = take((B, NH, T - q0, T))
        if not set(np.unique(keep)) <= {0.0, 1.0} or abs(keep.mean() - (1 - p)) > 0.05:
            raise SystemExit(f"{name}: keep mask is not 0/1 with rate {1 - p} (got {keep.mean():.3f})")
        keep = torch.tensor(keep)
    if off != raw.size:
        raise SystemExit(f"{name}: output file has {raw.size} floats, expected {off}")

    t0 = time.perf_counter()
    x = torch.tensor(qkv, dtype=torch.float64, requires_grad=True)
    y = attention(x, B, T, q0, C, NH, causal, klen, keep, float(np.float32(p)))
    (y * torch.tensor(dout, dtype=torch.float64)).sum().backward()
    t_ref = time.perf_counter() - t0
    ref_y, ref_d = y.detach().numpy(), x.grad.numpy()

    ok, worst = True, [0.0, 0.0]
    for kname, (cy, cd) in zip(KERNELS, got):
        parts = [("out", cy, ref_y, TOL_FWD, 0)]
        for i, part in enumerate(["dq", "dk", "dv"]):
            parts.append((part, cd[..., i * C:(i + 1) * C], ref_d[..., i * C:(i + 1) * C], TOL_GRAD, 1))
        for what, c, r, tol, kind in parts:
            if not np.all(np.isfinite(c)):
                print(f"FAIL: {name}: {kname} {what} has NaN or Inf")
                ok = False
                continue
            err = float(np.max(np.abs(c - r)) / max(float(np.max(np.abs(r))), FLOOR))
            worst[kind] = max(worst[kind], err)
            if err > tol:
                print(f"FAIL: {name}: {kname} {what} error {err:.3g} > {tol:g}")
                ok = False
        if klen is not None:  # keys nobody sees: exactly 0 gradient
            for b in range(B):
                if np.any(cd[b, klen[b]:, C:] != 0):
                    print(f"FAIL: {name}: {kname} dk/dv of sample {b} not 0 beyond klen {klen[b]}")
                    ok = False
    print(f"{'ok' if ok else 'FAIL'}: {name} (B={B} T={T} q0={q0} C={C} NH={NH} causal={causal} "
          f"klen={klen} p={p} blocks={blocks}): forward {worst[0]:.2e}, gradients {worst[1]:.2e}; "
          f"C {t_c * 1e3:.0f} ms (process), torch {t_ref * 1e3:.0f} ms")
    return ok


CASES = [  # name, B, T, q0, C, NH, causal, klen, p, (qblock, kblock), seed
    ("causal", 2, 9, 0, 16, 2, 1, None, 0.0, (0, 0), 1),
    ("bidir", 2, 9, 0, 16, 2, 0, None, 0.0, (0, 0), 2),
    ("bidir-klen", 3, 11, 0, 24, 3, 0, [11, 4, 1], 0.0, (0, 0), 3),
    ("causal-klen-q0", 2, 12, 5, 16, 2, 1, [7, 12], 0.0, (0, 0), 4),
    ("bidir-klen-q0-drop", 2, 13, 6, 16, 4, 0, [9, 13], 0.3, (0, 0), 5),
    ("causal-drop-small-blocks", 2, 23, 0, 16, 2, 1, [23, 17], 0.2, (5, 7), 6),
    ("bidir-drop-blocks", 2, 150, 0, 64, 2, 0, [150, 97], 0.1, (16, 48), 7),
    ("readout-row", 2, 70, 69, 32, 4, 0, [70, 33], 0.1, (0, 0), 8),
    ("backbone-shape-causal", 1, 300, 0, 128, 4, 1, None, 0.1, (0, 0), 9),
    ("backbone-shape-bidir-klen", 2, 300, 0, 128, 4, 0, [300, 211], 0.1, (0, 0), 10),
]


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    exe, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    torch.set_num_threads(1)
    ok = True
    for c in CASES:
        ok &= run_case(exe, work, *c)
    print("all attention kernel cases agree with PyTorch" if ok else "attention kernel check FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
