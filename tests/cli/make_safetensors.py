#!/usr/bin/python3
"""Write a small random GPT-2 checkpoint as Hugging Face's model.safetensors, for `fpt import`.

  make_safetensors.py OUT.safetensors [--layers 2 --d-model 32 --heads 4 --positions 16
                      --vocab 50 --seed 0] [--dtype F32|F16|BF16] [--mask-dtype same|F32|U8|BOOL|none]
                      [--prefix] [--lm-head] [--no-wte] [--config [--eps 1e-5]] [--ref REF.npz]
                      [--corrupt KIND]

Tensor names and shapes are those of Hugging Face's GPT2Model state dict (Conv1D weights are
[in, out]), including the causal-mask buffers h.N.attn.bias [1,1,P,P] and h.N.attn.masked_bias []
that older checkpoints carry. --prefix names everything "transformer.*" as GPT2LMHeadModel does;
--lm-head adds lm_head.weight. --config writes config.json beside OUT. --ref writes the float32
values before any rounding to F16/BF16, keyed by the unprefixed name.

The file is laid out as the reference writer (safetensors' Rust `prepare`) lays it out: tensors
sorted by dtype, largest alignment first, then by name; a compact JSON header with "__metadata__"
first and the tensors in data order; the header padded with spaces to a multiple of 8 bytes.

--corrupt KIND writes a broken variant instead:
  truncated       the file cut short inside the last tensor's data
  header-length   the header length field larger than the file
  bad-json        one ':' of the header replaced by ';'
  trailing        non-space bytes after the JSON, inside the header
  missing         h.<last>.mlp.c_fc.bias left out
  extra           an unknown tensor h.0.attn.c_attn.lora inside a block
  wrong-shape     h.0.attn.c_attn.weight stored as [3C, C] (nn.Linear layout)
  bad-offsets     data_offsets of ln_f.weight one element short
  overlap         ln_f.bias given ln_f.weight's data_offsets (same size: the two overlap)
  bad-dtype       ln_f.weight stored as F64
  nan / inf       a NaN in h.1.attn.c_proj.weight / an Inf in ln_f.bias
  bad-config      config.json that is not JSON (implies --config)
  config-mismatch config.json whose n_embd disagrees with the tensors (implies --config)
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

# safetensors' Dtype enum, in its (increasing alignment) order, and element sizes.
DTYPES = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32",
          "F32", "F64", "I64", "U64"]
NUMPY = {"BOOL": "|u1", "U8": "|u1", "F16": "<f2", "F32": "<f4", "F64": "<f8", "I32": "<i4"}

CORRUPT = ["truncated", "header-length", "bad-json", "trailing", "missing", "extra", "wrong-shape",
           "bad-offsets", "overlap", "bad-dtype", "nan", "inf", "bad-config", "config-mismatch"]


def to_bytes(a, dtype):
    """Little-endian bytes of float32/bool array `a` as safetensors `dtype`."""
    if dtype == "BF16":  # round to nearest even, as torch's .to(torch.bfloat16)
        u = np.ascontiguousarray(a, dtype="<f4").view("<u4").astype(np.uint64)
        u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
        return u.astype("<u2").tobytes()
    return np.ascontiguousarray(a).astype(NUMPY[dtype]).tobytes()


def gpt2_state_dict(rng, L, C, P, V):
    """Random float32 GPT2Model parameters, HF names and shapes, in HF's module order."""
    sd = {"wte.weight": rng.normal(0, 0.02, (V, C)), "wpe.weight": rng.normal(0, 0.01, (P, C))}
    for i in range(L):
        p = f"h.{i}."
        sd.update({p + "ln_1.weight": 1 + rng.normal(0, 0.1, C), p + "ln_1.bias": rng.normal(0, 0.1, C),
                   p + "attn.c_attn.weight": rng.normal(0, 0.02, (C, 3 * C)),
                   p + "attn.c_attn.bias": rng.normal(0, 0.02, 3 * C),
                   p + "attn.c_proj.weight": rng.normal(0, 0.02, (C, C)),
                   p + "attn.c_proj.bias": rng.normal(0, 0.02, C),
                   p + "ln_2.weight": 1 + rng.normal(0, 0.1, C), p + "ln_2.bias": rng.normal(0, 0.1, C),
                   p + "mlp.c_fc.weight": rng.normal(0, 0.02, (C, 4 * C)),
                   p + "mlp.c_fc.bias": rng.normal(0, 0.02, 4 * C),
                   p + "mlp.c_proj.weight": rng.normal(0, 0.02, (4 * C, C)),
                   p + "mlp.c_proj.bias": rng.normal(0, 0.02, C)})
    sd.update({"ln_f.weight": 1 + rng.normal(0, 0.1, C), "ln_f.bias": rng.normal(0, 0.1, C)})
    sd = {k: v.astype(np.float32) for k, v in sd.items()}
    # Edge values for the F16/BF16 converters: signed zero, F16 subnormals, F16 max, 1.
    edge = np.array([0.0, -0.0, 5.9604645e-08, -3.0517578e-05, 1e-6, 65504.0, -65504.0, 1.0],
                    dtype=np.float32)
    sd["h.0.ln_1.bias"][:len(edge)] = edge[:C]
    return sd


def serialize(tensors, metadata, offset_fix=None):
    """tensors: name -> (dtype, shape, bytes). Returns the file's bytes."""
    order = sorted(tensors, key=lambda n: (-DTYPES.index(tensors[n][0]), n))
    header, offset = {}, 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for n in order:
        dtype, shape, data = tensors[n]
        header[n] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    if offset_fix:
        offset_fix(header)
    hb = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    return struct.pack("<Q", len(hb)) + hb + b"".join(tensors[n][2] for n in order)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--d-model", type=int, default=32)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--positions", type=int, default=16)
    ap.add_argument("--vocab", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=["F32", "F16", "BF16"], default="F32")
    ap.add_argument("--mask-dtype", choices=["same", "F32", "U8", "BOOL", "none"], default="same")
    ap.add_argument("--prefix", action="store_true")
    ap.add_argument("--lm-head", action="store_true")
    ap.add_argument("--no-wte", action="store_true")
    ap.add_argument("--config", action="store_true")
    ap.add_argument("--eps", type=float, default=1e-5)
    ap.add_argument("--ref")
    ap.add_argument("--corrupt", choices=CORRUPT)
    return ap.parse_args(argv)


def main(argv):
    a = parse_args(argv)
    L, C, P, V = a.layers, a.d_model, a.positions, a.vocab
    rng = np.random.default_rng(a.seed)
    sd = gpt2_state_dict(rng, L, C, P, V)
    if a.no_wte:
        del sd["wte.weight"]
    if a.corrupt == "nan":
        sd["h.1.attn.c_proj.weight"][3, 5] = np.nan
    if a.corrupt == "inf":
        sd["ln_f.bias"][-1] = np.inf
    if a.ref:
        np.savez(a.ref, **sd)

    pre = "transformer." if a.prefix else ""
    tensors = {}
    for n, t in sd.items():
        shape = t.shape
        if a.corrupt == "wrong-shape" and n == "h.0.attn.c_attn.weight":
            t = np.ascontiguousarray(t.T)
            shape = t.shape
        dtype = "F64" if a.corrupt == "bad-dtype" and n == "ln_f.weight" else a.dtype
        tensors[pre + n] = (dtype, shape, to_bytes(t, dtype))
    if a.corrupt == "missing":
        del tensors[f"{pre}h.{L - 1}.mlp.c_fc.bias"]
    if a.corrupt == "extra":
        tensors[pre + "h.0.attn.c_attn.lora"] = (a.dtype, (C,), to_bytes(np.zeros(C, np.float32), a.dtype))
    mask_dtype = a.dtype if a.mask_dtype == "same" else a.mask_dtype
    if mask_dtype != "none":
        # What GPT2Attention registers: tril(ones(P, P)).view(1, 1, P, P) and tensor(-1e4).
        mask = np.tril(np.ones((P, P), np.float32)).reshape(1, 1, P, P)
        for i in range(L):
            tensors[f"{pre}h.{i}.attn.bias"] = (mask_dtype, mask.shape, to_bytes(mask, mask_dtype))
            if mask_dtype not in ("U8", "BOOL"):  # the bool-mask era had no masked_bias
                mb = np.array(-1e4, np.float32)
                tensors[f"{pre}h.{i}.attn.masked_bias"] = (mask_dtype, (), to_bytes(mb, mask_dtype))
    if a.lm_head:
        wte = np.asarray(sd.get("wte.weight", np.zeros((V, C), np.float32)))
        tensors["lm_head.weight"] = (a.dtype, wte.shape, to_bytes(wte, a.dtype))

    def short_offsets(header):  # one element short: size no longer matches dtype x shape
        header[pre + "ln_f.weight"]["data_offsets"][1] -= 4 if a.dtype == "F32" else 2

    def overlap(header):  # two tensors on the same bytes
        header[pre + "ln_f.bias"]["data_offsets"] = list(header[pre + "ln_f.weight"]["data_offsets"])

    hooks = {"bad-offsets": short_offsets, "overlap": overlap}
    data = serialize(tensors, {"format": "pt"}, hooks.get(a.corrupt))
    n = struct.unpack("<Q", data[:8])[0]
    if a.corrupt == "truncated":
        begin, end = max(v["data_offsets"] for k, v in json.loads(data[8:8 + n]).items()
                         if k != "__metadata__")
        data = data[:8 + n + (begin + end) // 2]
    elif a.corrupt == "header-length":
        data = struct.pack("<Q", len(data)) + data[8:]
    elif a.corrupt == "bad-json":
        i = data.index(b":", 8)
        data = data[:i] + b";" + data[i + 1:]
    elif a.corrupt == "trailing":
        head = data[8:8 + n].rstrip(b" ") + b"x"
        head += b" " * ((8 - len(head) % 8) % 8)
        # Keep the data offsets valid: they are relative to the end of the header.
        data = struct.pack("<Q", len(head)) + head + data[8 + n:]
    with open(a.out, "wb") as f:
        f.write(data)

    if a.config or a.corrupt in ("bad-config", "config-mismatch"):
        # A trimmed version of what the hub's gpt2 config.json holds.
        cfg = {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
               "layer_norm_epsilon": a.eps, "model_type": "gpt2", "n_ctx": P,
               "n_embd": C + (8 if a.corrupt == "config-mismatch" else 0), "n_head": a.heads,
               "n_layer": L, "n_positions": P, "vocab_size": V}
        text = json.dumps(cfg, indent=2)
        if a.corrupt == "bad-config":
            text = text.replace('"n_head":', '"n_head"', 1)
        with open(os.path.join(os.path.dirname(os.path.abspath(a.out)), "config.json"), "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
