#!/usr/bin/python3
"""Write a valid small model file and broken variants of it, for the bad-input tests."""
import os
import shutil
import sys

import h5py
import numpy as np

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
L, C, H, P = 2, 16, 2, 16
rng = np.random.default_rng(0)


def write(path, drop=None, reshape=None, dtype=None, attrs=None, nan=None):
    with h5py.File(path, "w") as f:
        a = dict(n_layer=L, n_head=H, n_embd=C, n_positions=P, format_version=1)
        a.update(attrs or {})
        for k, v in a.items():
            f.attrs[k] = np.int64(v)
        f.attrs["layer_norm_epsilon"] = 1e-5
        shapes = {"wpe/weight": (P, C), "ln_f/weight": (C,), "ln_f/bias": (C,)}
        for i in range(L):
            for n, s in [("ln_1/weight", (C,)), ("ln_1/bias", (C,)),
                         ("attn/c_attn/weight", (C, 3 * C)), ("attn/c_attn/bias", (3 * C,)),
                         ("attn/c_proj/weight", (C, C)), ("attn/c_proj/bias", (C,)),
                         ("ln_2/weight", (C,)), ("ln_2/bias", (C,)),
                         ("mlp/c_fc/weight", (C, 4 * C)), ("mlp/c_fc/bias", (4 * C,)),
                         ("mlp/c_proj/weight", (4 * C, C)), ("mlp/c_proj/bias", (C,))]:
                shapes[f"h/{i}/{n}"] = s
        for n, s in shapes.items():
            if n == drop:
                continue
            if n == reshape:
                s = (s[0] + 1,) + s[1:]
            x = (0.02 * rng.standard_normal(s)).astype(dtype if n == reshape and dtype else np.float32)
            if n == nan:
                x.flat[3] = np.nan
            f[n] = x


write(f"{out}/good.h5")
write(f"{out}/missing.h5", drop="h/1/mlp/c_fc/weight")
write(f"{out}/shape.h5", reshape="h/0/attn/c_attn/weight")
write(f"{out}/dtype.h5", reshape="h/0/ln_1/bias", dtype=np.float64)
with h5py.File(f"{out}/dtype.h5", "a") as f:  # right shape, wrong dtype
    del f["h/0/ln_1/bias"]
    f["h/0/ln_1/bias"] = np.zeros(C, dtype=np.float64)
write(f"{out}/heads.h5", attrs={"n_head": 3})
write(f"{out}/nan.h5", nan="h/1/attn/c_proj/weight")
with open(f"{out}/text.h5", "w") as f:
    f.write("this is not an HDF5 file\n")
data = open(f"{out}/good.h5", "rb").read()
with open(f"{out}/truncated.h5", "wb") as f:
    f.write(data[: len(data) * 2 // 3])
