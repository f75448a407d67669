#!/usr/bin/python3
"""The shipped default backbone is a language model, checked independently of the C code.

  tests/torch/check_shipped_model.py MODEL.h5 TEXT_FILE [TEXT_FILE ...]

Loads MODEL.h5 with the float64 PyTorch GPT-2 of fpt_torch.py (the token table /wte/weight is
both the input embedding and the output projection, as fpt pretrain trains it), and scores
next-byte prediction on 256-byte windows of the given English files (tests/torch/english_sample.txt:
plain prose written for this test, which the model never saw). It must reach fewer than MAX_BPB bits per byte, where the same
architecture at random init scores about 8 and a unigram byte model about 4.5, and its file
must have the documented shape (12 layers, 128 wide, vocabulary 256).
"""
import math
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, __import__("os").path.dirname(__file__))
import fpt_torch  # noqa: E402

MAX_BPB = 3.0
SEQ = 256


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path = sys.argv[1]
    cfg, params = fpt_torch.load_model(path)
    with h5py.File(path, "r") as f:
        if "wte/weight" not in f:
            sys.exit(f"FAIL {path}: no /wte/weight (the language model's token table)")
        params["wte/weight"] = torch.from_numpy(np.asarray(f["wte/weight"], dtype=np.float64))
    shape = (cfg["n_layer"], cfg["n_embd"], tuple(params["wte/weight"].shape))
    if shape != (12, 128, (256, 128)):
        sys.exit(f"FAIL {path}: shape {shape}, expected 12 layers, 128 wide, wte [256, 128]")
    data = b"".join(open(p, "rb").read() + b"\n" for p in sys.argv[2:])
    n = min((len(data) - 1) // SEQ, 8)
    if n < 4:
        sys.exit("FAIL: need at least 4 windows of text")
    buf = np.frombuffer(data[: n * SEQ + 1], dtype=np.uint8).astype(np.int64)
    x = torch.from_numpy(buf[:-1].reshape(n, SEQ))
    y = torch.from_numpy(buf[1:].reshape(n, SEQ))
    case = {"tied": 1}
    with torch.no_grad():
        _, logits = fpt_torch.forward(params, cfg, case, x)
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, 256), y.reshape(-1))
    bpb = nll.item() / math.log(2)
    print(f"{path}: {bpb:.3f} bits per byte on {n * SEQ} bytes of {len(sys.argv) - 2} file(s) "
          f"(limit {MAX_BPB})")
    if not bpb < MAX_BPB:
        sys.exit(f"FAIL: {bpb:.3f} bits per byte is not below {MAX_BPB}")


if __name__ == "__main__":
    main()
