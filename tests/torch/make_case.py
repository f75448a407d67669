#!/usr/bin/python3
"""Write a random fpt test case: a model file (our HDF5 GPT-2 format) and a case file.

  make_case.py --out CASE.h5 --model MODEL.h5 [--layers 2 --d-model 32 --heads 4 --positions 16
               --seq 8 --batch 3 --steps 10] [--d-in 5 | --vocab 7] [--r 2 --n-out 4 --n-cls 2]
               [--freeze-in 0 --freeze-out 0 --freeze-ln 0 --freeze-pos 0 --freeze-attn 1
                --freeze-ff 1 --full 0] [--lr 1e-3] [--seed 0]

Freeze defaults are the FPT defaults (attention and MLP frozen, everything else trained).
Continuous inputs unless --vocab is given.  --tied 1 (needs --vocab) makes a language-model case
as `fpt pretrain` trains it: a token table init/wte/weight instead of in/* and out/*, logits
ln_f(h) @ wte.T at every position (r = seq and n_out = n_cls = vocab are set for you), and
next-token targets of a random token stream.  Weights are deliberately larger than GPT-2's
(N(0,0.2) instead of N(0,0.02)) so that errors in the C code show up clearly.

Other backbones and padding (fpt_torch.py's docstring has the semantics); with none of these
options the files, and the random numbers drawn for them, are exactly as before they existed:
  --kind gpt2|lstm        lstm: the paper's LN-LSTM (no --heads, --positions; --residual 0|1)
  --causal 0|1            gpt2: 0 = bidirectional, padded keys masked     } ViT-style encoder:
  --activation gelu_new|gelu   gpt2: the MLP nonlinearity                 } --causal 0 --activation
  --eps X                 LayerNorm epsilon (default 1e-5 gpt2, 1e-6 lstm)} gelu --eps 1e-6
  --readout last|last-real|mean   last-real and mean read one row (r = 1, the default for them)
  --pad 1                 random lengths in [1, seq] (/lengths); positions >= len hold pad
                          token vocab-1, or zeros for continuous inputs
A new model attribute (kind, causal, activation) or case attribute (readout) is written only when
its option is given; --pad writes /lengths.  LSTM weights are drawn like the GPT-2 ones: N(0,0.2)
weights, N(0,0.1) biases, LayerNorm gains 1 + N(0,0.1) and biases N(0,0.1).
"""
import argparse
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree

import h5py
import numpy as np

from fpt_torch import ACTIVATIONS, FLAGS, KINDS, READOUTS, backbone_names, lstm_names


def random_model(rng, n_layer, C, n_positions):
    shapes = {"wpe/weight": (n_positions, C), "ln_f/weight": (C,), "ln_f/bias": (C,)}
    for i in range(n_layer):
        p = f"h/{i}/"
        shapes.update({p + "ln_1/weight": (C,), p + "ln_1/bias": (C,),
                       p + "attn/c_attn/weight": (C, 3 * C), p + "attn/c_attn/bias": (3 * C,),
                       p + "attn/c_proj/weight": (C, C), p + "attn/c_proj/bias": (C,),
                       p + "ln_2/weight": (C,), p + "ln_2/bias": (C,),
                       p + "mlp/c_fc/weight": (C, 4 * C), p + "mlp/c_fc/bias": (4 * C,),
                       p + "mlp/c_proj/weight": (4 * C, C), p + "mlp/c_proj/bias": (C,)})
    params = {}
    for name in backbone_names(n_layer):  # fixed order, so a seed always gives the same model
        shape = shapes[name]
        if name == "wpe/weight":
            t = rng.normal(0, 0.1, shape)
        elif "ln_" in name:
            t = (1.0 if name.endswith("weight") else 0.0) + rng.normal(0, 0.1, shape)
        else:
            t = rng.normal(0, 0.2 if name.endswith("weight") else 0.1, shape)
        params[name] = t.astype(np.float32)
    return params


def random_lstm(rng, n_layer, C):
    params = {}
    for name in lstm_names(n_layer):  # fixed order, so a seed always gives the same model
        module = name.split("/")[2]
        rows = C if module == "ln_cell" else 4 * C
        if module.startswith("ln_"):
            t = (1.0 if name.endswith("weight") else 0.0) + rng.normal(0, 0.1, (rows,))
        elif name.endswith("weight"):
            t = rng.normal(0, 0.2, (rows, C))
        else:
            t = rng.normal(0, 0.1, (rows,))
        params[name] = t.astype(np.float32)
    return params


def random_lengths(rng, a, x):
    """Draws /lengths and overwrites x's padded positions in place (drawn after everything else,
    so x, y and init are the unpadded case's)."""
    lengths = rng.integers(1, a.seq + 1, (a.steps, a.batch)).astype(np.int32)
    pad = (np.arange(a.seq)[None, None, :] >= lengths[..., None])  # [steps, batch, seq]
    x[pad] = (a.vocab - 1) if a.vocab else 0.0
    return lengths


def random_case(rng, a, C):
    K = a.r * a.n_out // a.n_cls
    if getattr(a, "tied", 0):
        stream = rng.integers(0, a.vocab, (a.steps, a.batch, a.seq + 1)).astype(np.int32)
        init = {"wte/weight": rng.normal(0, 0.5, (a.vocab, C))}
        x, y = stream[..., :-1], stream[..., 1:]
        return np.ascontiguousarray(x), np.ascontiguousarray(y), {n: t.astype(np.float32) for n, t in init.items()}
    if a.vocab:
        x = rng.integers(0, a.vocab, (a.steps, a.batch, a.seq)).astype(np.int32)
        init = {"in/weight": rng.normal(0, 0.5, (a.vocab, C))}
    else:
        x = rng.normal(0, 1, (a.steps, a.batch, a.seq, a.d_in)).astype(np.float32)
        init = {"in/weight": rng.normal(0, 0.5, (a.d_in, C)), "in/bias": rng.normal(0, 0.5, (C,))}
    init["out/weight"] = rng.normal(0, 0.2, (C, a.n_out))
    init["out/bias"] = rng.normal(0, 0.2, (a.n_out,))
    y = rng.integers(0, a.n_cls, (a.steps, a.batch, K)).astype(np.int32)
    return x, y, {n: t.astype(np.float32) for n, t in init.items()}


def write_model(path, params, a):
    if a.kind == "lstm":
        ints = (("n_layer", a.layers), ("n_embd", a.d_model), ("residual", a.residual),
                ("format_version", 1))
    else:
        ints = (("n_layer", a.layers), ("n_head", a.heads), ("n_embd", a.d_model),
                ("n_positions", a.positions), ("format_version", 1))
    with h5py.File(path, "w") as f:
        for k, v in ints:
            f.attrs[k] = np.int64(v)
        f.attrs["layer_norm_epsilon"] = np.float64(a.eps)
        # Written only when asked for: a file without them is the default GPT-2 (as before they existed).
        # Strings are fixed-length ASCII, as the C writers store them.
        if a.kind_given or a.kind == "lstm":
            f.attrs["kind"] = np.bytes_(a.kind)
        if a.causal is not None:
            f.attrs["causal"] = np.int64(a.causal)
        if a.activation is not None:
            f.attrs["activation"] = np.bytes_(a.activation)
        for n, t in params.items():
            f.create_dataset(n, data=t)


def write_case(path, a, x, y, init, lengths=None):
    with h5py.File(path, "w") as f:
        attrs = {"steps": a.steps, "batch": a.batch, "seq": a.seq, "d_in": a.d_in, "vocab": a.vocab,
                 "r": a.r, "n_out": a.n_out, "n_cls": a.n_cls}
        if a.tied:  # absent means 0: old case files stay valid
            attrs["tied"] = 1
        if a.frozen_bf16:  # absent means fp32 frozen matrices
            attrs["frozen_bf16"] = 1
        attrs.update({k: getattr(a, k) for k in FLAGS})
        for k, v in attrs.items():
            f.attrs[k] = np.int64(v)
        f.attrs["lr"] = np.float64(a.lr)
        if a.readout is not None:  # absent means "last"
            f.attrs["readout"] = np.bytes_(a.readout)
        f.create_dataset("x", data=x)
        f.create_dataset("y", data=y)
        if lengths is not None:  # absent means every token is real
            f.create_dataset("lengths", data=lengths)
        for n, t in init.items():
            f.create_dataset("init/" + n, data=t)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--kind", choices=KINDS)  # None = gpt2, and no kind attribute written
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--d-model", type=int, default=32)
    # GPT-2 only; None tells "not given" apart from the defaults (4 and 16) filled in below.
    ap.add_argument("--heads", type=int)
    ap.add_argument("--positions", type=int)
    ap.add_argument("--causal", type=int, choices=(0, 1))
    ap.add_argument("--activation", choices=ACTIVATIONS)
    ap.add_argument("--eps", type=float, help="LayerNorm epsilon (default 1e-5 gpt2, 1e-6 lstm)")
    ap.add_argument("--residual", type=int, choices=(0, 1), help="lstm only (default 0)")
    ap.add_argument("--seq", type=int, default=8)
    ap.add_argument("--batch", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    kind = ap.add_mutually_exclusive_group()
    kind.add_argument("--d-in", type=int)  # default 5 is set below: argparse's exclusivity test ignores values equal to the default
    kind.add_argument("--vocab", type=int, default=0)
    ap.add_argument("--r", type=int, help="default 2, or 1 for --readout last-real|mean")
    ap.add_argument("--n-out", type=int, default=4)
    ap.add_argument("--n-cls", type=int, default=2)
    for flag, default in zip(FLAGS, (0, 0, 0, 0, 1, 1, 0)):
        ap.add_argument("--" + flag.replace("_", "-"), type=int, choices=(0, 1), default=default)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tied", type=int, choices=(0, 1), default=0)
    ap.add_argument("--frozen-bf16", type=int, choices=(0, 1), default=0,
                    help="fpt --frozen-dtype bf16: frozen block matrices multiply in bf16")
    ap.add_argument("--readout", choices=READOUTS)  # None = last, and no readout attribute written
    ap.add_argument("--pad", type=int, choices=(0, 1), default=0)
    a = ap.parse_args(argv)
    check_new_options(ap, a)
    if a.d_in is None:
        a.d_in = 0 if a.vocab else 5
    if a.tied:
        if not a.vocab:
            ap.error("--tied 1 needs --vocab")
        a.r, a.n_out, a.n_cls = a.seq, a.vocab, a.vocab
    if a.kind == "gpt2" and a.d_model % a.heads:
        ap.error("--d-model must be a multiple of --heads")
    if not 1 <= a.r <= a.seq <= (a.positions if a.kind == "gpt2" else a.seq):
        ap.error("need 1 <= r <= seq <= positions")
    if (a.r * a.n_out) % a.n_cls:
        ap.error("r*n_out must be a multiple of n_cls")
    if a.steps < 1 or a.batch < 1 or a.layers < 1 or a.n_cls < 2 or (a.vocab < 1 and a.d_in < 1):
        ap.error("steps, batch, layers, d_in/vocab must be positive and n_cls >= 2")
    return a


def check_new_options(ap, a):
    """Fills in the defaults of the options added with the new kinds, refusing combinations that
    mean nothing.  Runs before the older checks, which need r."""
    a.kind_given = a.kind is not None
    a.kind = a.kind or "gpt2"
    given = lambda *names: [f"--{n}" for n in names if getattr(a, n) is not None]
    if a.kind == "lstm" and given("heads", "positions", "causal", "activation"):
        ap.error(f"--kind lstm has no heads, positions, causal mask or activation choice: "
                 f"drop {' '.join(given('heads', 'positions', 'causal', 'activation'))}")
    if a.kind == "gpt2" and given("residual"):
        ap.error("--residual is for --kind lstm (a GPT-2 block always has its residuals)")
    if a.kind == "gpt2":
        a.heads = 4 if a.heads is None else a.heads
        a.positions = 16 if a.positions is None else a.positions
    else:
        a.residual = a.residual or 0
    if a.eps is None:
        a.eps = 1e-6 if a.kind == "lstm" else 1e-5
    if not a.eps > 0:
        ap.error("--eps must be positive")
    if a.readout in ("last-real", "mean"):
        if a.r not in (None, 1):
            ap.error(f"--readout {a.readout} reads one row per sample: it needs --r 1")
        a.r = 1
    a.r = 2 if a.r is None else a.r
    if a.tied and (a.kind == "lstm" or a.readout not in (None, "last") or a.pad):
        ap.error("--tied 1 is GPT-2's language model: no --kind lstm, --readout other than last, or --pad")


def main(argv=None):
    a = parse_args(argv)
    rng = np.random.default_rng(a.seed)
    if a.kind == "lstm":
        params = random_lstm(rng, a.layers, a.d_model)
    else:
        params = random_model(rng, a.layers, a.d_model, a.positions)
    x, y, init = random_case(rng, a, a.d_model)
    lengths = random_lengths(rng, a, x) if a.pad else None
    write_model(a.model, params, a)
    write_case(a.out, a, x, y, init, lengths)


if __name__ == "__main__":
    main()
