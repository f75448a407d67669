#!/usr/bin/python3
"""Write small image-dataset files in the real formats, and corrupt variants.

Usage: make_image_files.py OUT_DIR

Valid sets (random pixels, labels 0-9, seeded, so every run writes the same bytes):
  idx/        MNIST-style IDX, raw: 60 train + 20 test images of 28x28
  idx_gz/     the same content, every file gzipped (name + ".gz")
  idx_mixed/  the same content, train gzipped and test raw
  cifar/      CIFAR-10 binary: data_batch_1..5.bin with 4, 3, 5, 2, 6 records, test_batch.bin with 7

Corrupt variants (one defect each; everything else valid):
  idx_bad_truncated       train-images .gz whose content stops 100 bytes short (record 59 incomplete)
  idx_bad_truncated_raw   t10k-images raw, last record 1 byte short (record 19)
  idx_bad_gzip_cut        train-images .gz whose compressed stream is cut in half
  idx_bad_magic           train-labels .gz with magic number 1234 (expected 2049)
  idx_bad_image_magic     t10k-images raw with magic 2049 (expected 2051)
  idx_bad_count           t10k-labels declares and holds 19 labels for 20 images
  idx_bad_label           train-labels record 7 = 11
  idx_bad_dims            train-images declares 27x28 images
  idx_bad_trailing        t10k-labels with one byte after the last record
  idx_missing             no t10k-images file (neither raw nor .gz)
  cifar_bad_size          data_batch_2.bin 100 bytes longer than 3 records
  cifar_bad_label         data_batch_3.bin record 2 has label 11
  cifar_missing           no data_batch_4.bin
  cifar_empty             data_batch_5.bin is empty

OUT_DIR/expected.tsv lists, one line per directory: name, loader (idx | cifar), the file the
error must name ("-" for a valid set) and a fragment of the expected message ("-" for valid).
"""
import gzip
import os
import shutil
import struct
import sys

import numpy as np

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(20210309)

N_TRAIN, N_TEST = 60, 20
train_img = rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8)
test_img = rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8)
# Exercise the extremes of the byte range in known places.
train_img[0, 0, 0], train_img[0, 27, 27], train_img[1, 13, 14] = 0, 255, 255
train_lab = rng.integers(0, 10, N_TRAIN, dtype=np.uint8)
test_lab = rng.integers(0, 10, N_TEST, dtype=np.uint8)

CIFAR_COUNTS = [4, 3, 5, 2, 6]
N_CIFAR_TEST = 7


def idx_images(img, magic=2051, rows=None):
    n, r, c = img.shape
    return struct.pack(">IIII", magic, n, rows if rows is not None else r, c) + img.tobytes()


def idx_labels(lab, magic=2049, count=None):
    return struct.pack(">II", magic, len(lab) if count is None else count) + lab.tobytes()


def write(path, data, gz=False):
    if gz:
        with gzip.open(path + ".gz", "wb") as f:
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)


def idx_set(name, gz_train=False, gz_test=False, **over):
    """over: file stem -> bytes replacing that file's content (None: omit the file)."""
    d = os.path.join(out, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    files = {
        "train-images-idx3-ubyte": (idx_images(train_img), gz_train),
        "train-labels-idx1-ubyte": (idx_labels(train_lab), gz_train),
        "t10k-images-idx3-ubyte": (idx_images(test_img), gz_test),
        "t10k-labels-idx1-ubyte": (idx_labels(test_lab), gz_test),
    }
    for stem, (data, gz) in files.items():
        data = over.get(stem.replace("-", "_"), data)
        if data is not None:
            write(os.path.join(d, stem), data, gz)
    return d


def cifar_records(n, first):
    """n records; record i (global index first+i) has label (first+i) % 10 and random pixels."""
    r = np.random.default_rng(1000 + first)
    recs = np.empty((n, 3073), np.uint8)
    recs[:, 0] = (np.arange(first, first + n) % 10).astype(np.uint8)
    recs[:, 1:] = r.integers(0, 256, (n, 3072), dtype=np.uint8)
    if n:
        recs[0, 1], recs[0, 3072] = 0, 255
    return recs


def cifar_set(name, extra=None, bad_label=None, omit=None):
    d = os.path.join(out, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    first = 0
    names = [f"data_batch_{k + 1}.bin" for k in range(5)] + ["test_batch.bin"]
    counts = CIFAR_COUNTS + [N_CIFAR_TEST]
    for k, (fn, n) in enumerate(zip(names, counts)):
        recs = cifar_records(n, first if k < 5 else 100000)
        first += n
        if bad_label and bad_label[0] == fn:
            recs[bad_label[1], 0] = bad_label[2]
        data = recs.tobytes()
        if extra and extra[0] == fn:
            data += bytes(extra[1])
        if omit == fn:
            continue
        if omit == "empty:" + fn:
            data = b""
        write(os.path.join(d, fn), data)
    return d


expected = []


def expect(name, loader, file="-", msg="-"):
    expected.append((name, loader, file, msg))


idx_set("idx")
expect("idx", "idx")
idx_set("idx_gz", gz_train=True, gz_test=True)
expect("idx_gz", "idx")
idx_set("idx_mixed", gz_train=True)
expect("idx_mixed", "idx")

idx_set("idx_bad_truncated", gz_train=True,
        train_images_idx3_ubyte=idx_images(train_img)[:-100])
expect("idx_bad_truncated", "idx", "train-images-idx3-ubyte.gz", "record 59: truncated")
idx_set("idx_bad_truncated_raw", t10k_images_idx3_ubyte=idx_images(test_img)[:-1])
expect("idx_bad_truncated_raw", "idx", "t10k-images-idx3-ubyte", "record 19: truncated")
d = idx_set("idx_bad_gzip_cut", gz_train=True)
p = os.path.join(d, "train-images-idx3-ubyte.gz")
with open(p, "rb") as f:
    blob = f.read()
with open(p, "wb") as f:
    f.write(blob[: len(blob) // 2])
expect("idx_bad_gzip_cut", "idx", "train-images-idx3-ubyte.gz", "truncated")
idx_set("idx_bad_magic", gz_train=True, train_labels_idx1_ubyte=idx_labels(train_lab, magic=1234))
expect("idx_bad_magic", "idx", "train-labels-idx1-ubyte.gz", "magic number 1234, expected 2049")
idx_set("idx_bad_image_magic", t10k_images_idx3_ubyte=idx_images(test_img, magic=2049))
expect("idx_bad_image_magic", "idx", "t10k-images-idx3-ubyte", "magic number 2049, expected 2051")
idx_set("idx_bad_count", t10k_labels_idx1_ubyte=idx_labels(test_lab[:-1]))
expect("idx_bad_count", "idx", "t10k-labels-idx1-ubyte", "19 labels, but")
bad = train_lab.copy()
bad[7] = 11
idx_set("idx_bad_label", train_labels_idx1_ubyte=idx_labels(bad))
expect("idx_bad_label", "idx", "train-labels-idx1-ubyte", "record 7: label 11 > 9")
idx_set("idx_bad_dims", train_images_idx3_ubyte=idx_images(train_img, rows=27))
expect("idx_bad_dims", "idx", "train-images-idx3-ubyte", "image size 27x28, expected 28x28")
idx_set("idx_bad_trailing", t10k_labels_idx1_ubyte=idx_labels(test_lab) + b"\0")
expect("idx_bad_trailing", "idx", "t10k-labels-idx1-ubyte", "data after the last record")
idx_set("idx_missing", t10k_images_idx3_ubyte=None)
expect("idx_missing", "idx", "t10k-images-idx3-ubyte", "not found")

cifar_set("cifar")
expect("cifar", "cifar")
cifar_set("cifar_bad_size", extra=("data_batch_2.bin", 100))
expect("cifar_bad_size", "cifar", "data_batch_2.bin", "not a multiple of the 3073-byte record")
cifar_set("cifar_bad_label", bad_label=("data_batch_3.bin", 2, 11))
expect("cifar_bad_label", "cifar", "data_batch_3.bin", "record 2: label 11 > 9")
cifar_set("cifar_missing", omit="data_batch_4.bin")
expect("cifar_missing", "cifar", "data_batch_4.bin", "cannot open")
cifar_set("cifar_empty", omit="empty:data_batch_5.bin")
expect("cifar_empty", "cifar", "data_batch_5.bin", "empty")

with open(os.path.join(out, "expected.tsv"), "w") as f:
    for row in expected:
        f.write("\t".join(row) + "\n")
print(f"wrote {len(expected)} directories under {out}")
