#!/usr/bin/python3
"""Check an image dataset file written by `fpt data` against its source files.

Usage: images_check.py DATASET.h5 SRC_DIR [--all] [--max-samples N] [--known-fashion]

The tokens are re-derived here with NumPy, independently of the C code, following the FPT
reference (kzl/universal-computation, datasets/{mnist,cifar10,cifar10_gray}.py):
  mnist / fashion-mnist  pixel / 255 (float32); seq 49: 28x28 in 4x4 patches; seq 64: the image
                         padded to 32x32 with 2 zero pixels on every side first
  cifar10                (pixel / 255 - mean[c]) / std[c] in float32, mean (0.4914, 0.4822,
                         0.4465), std (0.2023, 0.1994, 0.2010), 4x4 patches, 64 x 48
  cifar10-lra            g = 0.2989 R + 0.587 G + 0.114 B on pixel / 255, (g - 0.5) / 0.5, 1024 x 1
Token layout: einops 'c (h p1) (w p2) -> (h w) (p1 p2 c)'.

Train and val together must be the source training set: /train/index and /val/index (int64)
give each sample's index in it, and together they must be a permutation of range(N_train).
/test/index is optional (identity if absent). Each split with more than 20000 samples is
checked on a seeded subset of --max-samples (default 1000) unless --all; smaller ones fully.

--known-fashion: also check Fashion-MNIST test image 0 (an ankle boot, label 9) pixel by pixel,
with explicit loops, against /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz, whose
bytes are pinned by a SHA-256.

Exit status 0 when everything matches; 1 with "FAIL:" lines otherwise.
"""
import argparse
import gzip
import hashlib
import os
import struct
import sys

import h5py
import numpy as np

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_TEST0_SHA256 = "ffc7351ed0f8bae542820866086177fa4e0b366b97bf9d998dffdb8dbe138787"
FASHION_TEST0_LABEL = 9  # ankle boot
CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)
CIFAR_STD = np.array([0.2023, 0.1994, 0.2010], np.float32)
TOL = 1e-6

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def ok(msg):
    print("ok: " + msg)


# ---------------------------------------------------------------------------
# Sources


def read_maybe_gz(path):
    """Raw file if present, else path + '.gz' (the C loader's order)."""
    if os.path.exists(path):
        with open(path, "rb") as f:
            data = f.read()
        if data[:2] == b"\x1f\x8b":  # a gzip file without the .gz name
            data = gzip.decompress(data)
        return path, data
    with gzip.open(path + ".gz", "rb") as f:
        return path + ".gz", f.read()


def read_idx(src, prefix):
    ipath, ib = read_maybe_gz(os.path.join(src, f"{prefix}-images-idx3-ubyte"))
    lpath, lb = read_maybe_gz(os.path.join(src, f"{prefix}-labels-idx1-ubyte"))
    magic, n, rows, cols = struct.unpack(">IIII", ib[:16])
    assert magic == 2051 and rows == 28 and cols == 28, ipath
    lmagic, ln = struct.unpack(">II", lb[:8])
    assert lmagic == 2049 and ln == n, lpath
    img = np.frombuffer(ib, np.uint8, n * 784, 16).reshape(n, 28, 28)
    lab = np.frombuffer(lb, np.uint8, n, 8).astype(np.int32)
    return img, lab


def read_cifar(src, names):
    recs = []
    for fn in names:
        with open(os.path.join(src, fn), "rb") as f:
            recs.append(np.frombuffer(f.read(), np.uint8).reshape(-1, 3073))
    r = np.concatenate(recs)
    return r[:, 1:].reshape(-1, 3, 32, 32), r[:, 0].astype(np.int32)


def patchify(img, p):
    """(N, C, H, W) -> (N, (H/p)(W/p), p*p*C), einops 'c (h p1) (w p2) -> (h w) (p1 p2 c)'."""
    n, c, h, w = img.shape
    x = img.reshape(n, c, h // p, p, w // p, p)
    x = x.transpose(0, 2, 4, 3, 5, 1)  # n, h, w, p1, p2, c
    return x.reshape(n, (h // p) * (w // p), p * p * c)


def derive(task, seq, raw):
    """Source bytes (N, C, H, W) uint8 -> tokens float32, as the reference computes them."""
    x = raw.astype(np.float32) / np.float32(255)
    if task in ("mnist", "fashion-mnist"):
        if seq == 64:
            x = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
        return patchify(x, 4)
    if task == "cifar10":
        x = (x - CIFAR_MEAN[None, :, None, None]) / CIFAR_STD[None, :, None, None]
        return patchify(x, 4)
    if task == "cifar10-lra":
        g = (np.float32(0.2989) * x[:, 0] + np.float32(0.587) * x[:, 1]) + np.float32(0.114) * x[:, 2]
        g = (g - np.float32(0.5)) / np.float32(0.5)
        return g.reshape(-1, 1024, 1)
    raise SystemExit(f"images_check: unknown task {task}")


# ---------------------------------------------------------------------------
# Checks


def attr(f, name):
    v = f.attrs[name]
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    return v.decode() if isinstance(v, bytes) else v


def pick(n, limit, seed):
    if limit is None or n <= 20000:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=min(limit, n), replace=False))


def check_split(f, name, task, seq, src_raw, src_lab, rows, with_index):
    g = f[name]
    x, y = g["x"], g["y"]
    n = x.shape[0]
    d_in = x.shape[2]
    if y.shape != (n, 1):
        fail(f"/{name}/y shape {y.shape}, expected ({n}, 1)")
        return
    if with_index:
        index = g["index"][...]
    else:
        index = np.arange(n, dtype=np.int64)
    chosen = pick(n, rows, {"train": 1, "val": 2, "test": 3}[name])
    contiguous = len(chosen) == n
    worst, bad_x, bad_y = 0.0, [], []
    for lo in range(0, len(chosen), 4096):  # slices bound memory on the 50k CIFAR set
        sel = chosen[lo:lo + 4096]
        if contiguous:
            xs, ys = x[sel[0]:sel[-1] + 1], y[sel[0]:sel[-1] + 1, 0]
        else:
            xs, ys = x[sel], y[sel, 0]  # h5py: increasing indices
        src = index[sel]
        ref = derive(task, seq, src_raw[src])
        if ref.shape[1:] != (seq, d_in):
            fail(f"/{name}/x tokens {xs.shape[1:]}, derived {ref.shape[1:]}")
            return
        diff = np.abs(xs.astype(np.float64) - ref.astype(np.float64)).reshape(len(sel), -1).max(axis=1)
        worst = max(worst, float(diff.max()))
        bad_x += list(sel[diff > TOL])
        bad_y += list(sel[ys != src_lab[src]])
    if bad_x:
        i = bad_x[0]
        fail(f"/{name}/x: {len(bad_x)} of {len(chosen)} samples differ from the source "
             f"(first: sample {i} = source {index[i]}; max |diff| {worst:.3g})")
    if bad_y:
        i = bad_y[0]
        fail(f"/{name}/y: {len(bad_y)} labels differ (first: sample {i} = source {index[i]}: "
             f"{y[i, 0]} vs {src_lab[index[i]]})")
    if not bad_x and not bad_y:
        ok(f"/{name}: {len(chosen)} of {n} samples match the source (max |diff| {worst:.3g})")


def check_known_fashion(f, test_index):
    path = os.path.join(FASHION_DIR, "t10k-images-idx3-ubyte.gz")
    with gzip.open(path) as g:
        head = g.read(16 + 784)
    with gzip.open(os.path.join(FASHION_DIR, "t10k-labels-idx1-ubyte.gz")) as g:
        lhead = g.read(9)
    pix = head[16:16 + 784]
    if hashlib.sha256(pix).hexdigest() != FASHION_TEST0_SHA256:
        fail(f"{path}: test image 0 is not the known ankle boot (SHA-256 differs)")
        return
    if lhead[8] != FASHION_TEST0_LABEL:
        fail(f"{path}: test label 0 is {lhead[8]}, expected 9")
        return
    where = np.nonzero(test_index == 0)[0]
    if len(where) != 1:
        fail("known image: source test index 0 not found exactly once in /test")
        return
    j = int(where[0])
    x = f["test/x"][j]
    y = int(f["test/y"][j, 0])
    seq = x.shape[0]
    off, grid = (2, 8) if seq == 64 else (0, 7)
    errs = 0
    for r in range(28):
        for c in range(28):
            pr, pc = r + off, c + off
            t, k = (pr // 4) * grid + pc // 4, (pr % 4) * 4 + pc % 4
            if abs(float(x[t, k]) - pix[r * 28 + c] / 255.0) > TOL:
                errs += 1
    border = 0
    if seq == 64:
        for pr in range(32):
            for pc in range(32):
                if pr < 2 or pr >= 30 or pc < 2 or pc >= 30:
                    border += x[(pr // 4) * 8 + pc // 4, (pr % 4) * 4 + pc % 4] != 0
    # The brightest pixel (255) is at row 20, column 17.
    t, k = ((20 + off) // 4) * grid + (17 + off) // 4, ((20 + off) % 4) * 4 + (17 + off) % 4
    if errs or border or y != 9 or x[t, k] != 1.0:
        fail(f"known Fashion-MNIST test image 0: {errs} pixels differ, {border} border "
             f"pixels nonzero, label {y}, pixel (20,17) = {x[t, k]}")
    else:
        ok(f"known Fashion-MNIST test image 0 (ankle boot, label 9) at /test sample {j}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("h5")
    ap.add_argument("src")
    ap.add_argument("--all", action="store_true", help="check every sample")
    ap.add_argument("--max-samples", type=int, default=1000)
    ap.add_argument("--known-fashion", action="store_true")
    a = ap.parse_args()
    rows = None if a.all else a.max_samples

    with h5py.File(a.h5, "r") as f:
        task = attr(f, "task")
        seq, d_in = int(attr(f, "seq")), int(attr(f, "d_in"))
        want = {"mnist": [(49, 16), (64, 16)], "fashion-mnist": [(49, 16), (64, 16)],
                "cifar10": [(64, 48)], "cifar10-lra": [(1024, 1)]}.get(task)
        if want is None:
            raise SystemExit(f"images_check: {a.h5}: task '{task}' is not an image task")
        if (seq, d_in) not in want:
            fail(f"seq {seq} x d_in {d_in} is not valid for {task}")
        for k, v in (("n_classes", 10), ("K", 1), ("r", 1), ("vocab", 0), ("pad_id", -1)):
            if k in f.attrs and int(attr(f, k)) != v:
                fail(f"attribute {k} = {attr(f, k)}, expected {v}")
        for s in ("train", "val", "test"):
            if s in f and f[s]["x"].shape[1:] != (seq, d_in):
                fail(f"/{s}/x shape {f[s]['x'].shape}, expected (N, {seq}, {d_in})")
        if failures:
            sys.exit(1)

        if task in ("mnist", "fashion-mnist"):
            tr_img, tr_lab = read_idx(a.src, "train")
            te_img, te_lab = read_idx(a.src, "t10k")
            tr_raw, te_raw = tr_img[:, None], te_img[:, None]
        else:
            tr_raw, tr_lab = read_cifar(a.src, [f"data_batch_{k}.bin" for k in range(1, 6)])
            te_raw, te_lab = read_cifar(a.src, ["test_batch.bin"])

        # Train + val = the source training set, by index.
        has_val = "val" in f and f["val"]["x"].shape[0] > 0
        n_tr = f["train"]["x"].shape[0]
        if "index" in f["train"]:
            idx = [f["train"]["index"][...]]
            if has_val:
                if "index" not in f["val"]:
                    fail("/val has samples but no /val/index")
                    sys.exit(1)
                idx.append(f["val"]["index"][...])
            allidx = np.concatenate(idx)
            if len(allidx) != len(tr_raw) or not np.array_equal(np.sort(allidx),
                                                                np.arange(len(tr_raw))):
                fail(f"/train/index + /val/index ({len(allidx)} entries) is not a permutation "
                     f"of the {len(tr_raw)} source training samples")
                sys.exit(1)
            ok(f"train {n_tr} + val {len(allidx) - n_tr} = the {len(tr_raw)} source training samples")
        else:
            if has_val:
                fail("/val has samples but /train has no index")
                sys.exit(1)
            if n_tr != len(tr_raw):
                fail(f"/train has {n_tr} samples, the source {len(tr_raw)}")
                sys.exit(1)
        check_split(f, "train", task, seq, tr_raw, tr_lab, rows, "index" in f["train"])
        if has_val:
            check_split(f, "val", task, seq, tr_raw, tr_lab, rows, True)

        n_te = f["test"]["x"].shape[0]
        test_index = f["test"]["index"][...] if "index" in f["test"] else np.arange(n_te)
        if n_te != len(te_raw) or not np.array_equal(np.sort(test_index), np.arange(len(te_raw))):
            fail(f"/test: {n_te} samples, not the {len(te_raw)} source test samples")
        else:
            check_split(f, "test", task, seq, te_raw, te_lab, rows, "index" in f["test"])

        if a.known_fashion:
            if task != "fashion-mnist":
                fail(f"--known-fashion on a {task} dataset")
            else:
                check_known_fashion(f, test_index)

    if failures:
        sys.exit(1)
    print("images_check: all checks passed")


main()
