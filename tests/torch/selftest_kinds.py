#!/usr/bin/python3
"""Self-tests of the reference's backbone kinds, padding and readouts (fpt_torch.py's docstring).

  selftest_kinds.py                   every check below; exit status 1 if any fails
  selftest_kinds.py --print-digests   the make_case digests of OLD_PATH_CASES from the current code

1. Encoder: fpt_torch with causal = 0, activation = "gelu", eps 1e-6 against stacks of
   torch.nn.TransformerEncoderLayer(norm_first=True, activation="gelu") plus the final LayerNorm,
   with and without src_key_padding_mask; and attention_ref.py's nn.MultiheadAttention stand-in
   against fpt_torch.attention with the new masks.
2. LSTM: fpt_torch's LN-LSTM against a second implementation written here in the shape of the
   paper's code (universal_computation/models/lstm.py: LNLSTM, LayerNormLSTM, LayerNorm, nn.Linear,
   sequence-first, one narrow()ed step at a time), residual 0 and 1; gradcheck of the whole
   forward + loss on tiny instances (LSTM, and the masked encoder with each readout); the
   trainable sets of the freeze flags; torch's clip + Adam against torch_ref's hand-written one.
3. Padding: with readout last-real or mean, a padded sample gives the logits of the same sample
   cut to its length (seq = len, no lengths), for the encoder, causal GPT-2 and the LSTM
   (residual 0 and 1); junk in the pads is shown to matter where it should (no key mask,
   readout last), so the check has teeth.
4. Old path: make_case's files for every case of tests/cli/test_torch.sh and tests/torch/
   test_tied.sh (and the bare defaults) hash to the digests recorded from make_case.py as it was
   before the new options existed (every dataset and attribute: name, dtype, shape, bytes).  Also:
   --pad only appends draws (x outside the pads, y and init are the unpadded case's), and a model
   file with the new attributes spelled out at their defaults gives bit-identical reference results.
   The digests assume numpy's default_rng streams stay as they are (numpy 1.24 here); if a numpy
   upgrade changes them, refresh with --print-digests from a tree whose make_case.py is trusted.
"""
import argparse
import hashlib
import os
import sys
import tempfile

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import attention_ref
import fpt_torch as ft
import make_case as mc
import torch_ref

DT = torch.float64
FAILURES = []


def check(what, err, tol):
    ok = err <= tol
    print(f"{'ok  ' if ok else 'FAIL'} {what}: {err:.3e} (tol {tol:g})")
    if not ok:
        FAILURES.append(what)


def expect(what, cond):
    check(what + " (0 = yes)", 0.0 if cond else 1.0, 0.0)


def maxdiff(a, b):
    return (a - b).abs().max().item()


def as_torch(params):
    return {n: torch.from_numpy(t.astype(np.float64)) for n, t in params.items()}


# ---------------------------------------------------------------- problems

def gpt2_problem(seed, C=16, H=4, L=2, T=7, causal=0, activation="gelu", eps=1e-6):
    rng = np.random.default_rng(seed)
    p = as_torch(mc.random_model(rng, L, C, T))
    cfg = {"kind": "gpt2", "n_layer": L, "n_head": H, "n_embd": C, "n_positions": T,
           "causal": causal, "activation": activation, "eps": eps}
    return cfg, p, rng


def lstm_problem(seed, C=12, L=2, residual=0, eps=1e-6):
    rng = np.random.default_rng(seed)
    p = as_torch(mc.random_lstm(rng, L, C))
    cfg = {"kind": "lstm", "n_layer": L, "n_embd": C, "residual": residual, "eps": eps}
    return cfg, p, rng


def add_io(p, rng, C, d_in=3, n_out=3):
    """Continuous input layer and output layer, as make_case draws them."""
    p.update(as_torch({"in/weight": rng.normal(0, 0.5, (d_in, C)), "in/bias": rng.normal(0, 0.5, (C,)),
                       "out/weight": rng.normal(0, 0.2, (C, n_out)), "out/bias": rng.normal(0, 0.2, (n_out,))}))


def flat_case(readout="last", r=1, n_out=3, n_cls=3, **flags):
    case = {"vocab": 0, "d_in": 3, "r": r, "n_out": n_out, "n_cls": n_cls, "readout": readout, "tied": 0}
    case.update(zip(ft.FLAGS, (0, 0, 0, 0, 1, 1, 0)))  # the FPT defaults, as make_case's
    case.update(flags)
    return case


# ---------------------------------------------------------------- 1. encoder

def torch_encoder(p, cfg, e, lengths):
    """The same encoder from torch's own modules; Conv1D weights [in, out] become nn.Linear's [out, in]."""
    C, T = cfg["n_embd"], e.shape[1]
    pad = None if lengths is None else ~ft.real_mask(lengths, T)  # True = padding, torch's convention
    h = e + p["wpe/weight"][:T]
    for i in range(cfg["n_layer"]):
        q = f"h/{i}/"
        layer = nn.TransformerEncoderLayer(C, cfg["n_head"], dim_feedforward=4 * C, dropout=0.0,
                                           activation="gelu", layer_norm_eps=cfg["eps"], batch_first=True,
                                           norm_first=True, dtype=DT)
        layer.train()  # dropout is 0 anyway; training mode keeps torch off its fused fast path
        with torch.no_grad():
            for mod, name in ((layer.norm1, "ln_1"), (layer.norm2, "ln_2")):
                mod.weight.copy_(p[q + name + "/weight"])
                mod.bias.copy_(p[q + name + "/bias"])
            layer.self_attn.in_proj_weight.copy_(p[q + "attn/c_attn/weight"].t())
            layer.self_attn.in_proj_bias.copy_(p[q + "attn/c_attn/bias"])
            layer.self_attn.out_proj.weight.copy_(p[q + "attn/c_proj/weight"].t())
            layer.self_attn.out_proj.bias.copy_(p[q + "attn/c_proj/bias"])
            layer.linear1.weight.copy_(p[q + "mlp/c_fc/weight"].t())
            layer.linear1.bias.copy_(p[q + "mlp/c_fc/bias"])
            layer.linear2.weight.copy_(p[q + "mlp/c_proj/weight"].t())
            layer.linear2.bias.copy_(p[q + "mlp/c_proj/bias"])
            h = layer(h, src_key_padding_mask=pad)
    return F.layer_norm(h, (C,), p["ln_f/weight"], p["ln_f/bias"], cfg["eps"])


def test_encoder():
    cfg, p, rng = gpt2_problem(101)
    e = torch.from_numpy(rng.normal(0, 1, (4, 7, 16)))
    lengths = torch.tensor([7, 3, 1, 5])
    with torch.no_grad():
        for lens, what in ((None, "no padding"), (lengths, "key padding mask, lengths 7,3,1,5")):
            check(f"encoder vs nn.TransformerEncoderLayer(norm_first, gelu) stack + LN, {what}",
                  maxdiff(ft.backbone(p, cfg, e, lens), torch_encoder(p, cfg, e, lens)), 1e-10)
        # The comparisons above would not notice a mask or mode that changes nothing.
        real = ft.real_mask(lengths, 7)
        unmasked = ft.backbone(p, cfg, e)[real]
        check("encoder: the key mask changes real positions (1 = no)",
              float(maxdiff(ft.backbone(p, cfg, e, lengths)[real], unmasked) < 1e-3), 0.0)
        check("encoder: causal = 0 differs from causal = 1 (1 = no)",
              float(maxdiff(ft.backbone(p, {**cfg, "causal": 1}, e), ft.backbone(p, cfg, e)) < 1e-3), 0.0)
        x = 3 * e
        check("gelu vs F.gelu (exact)", maxdiff(ft.gelu(x), F.gelu(x)), 1e-12)
        check("gelu_new is not gelu (1 = same)", float(maxdiff(ft.gelu_new(x), ft.gelu(x)) < 1e-4), 0.0)
    test_attention_ref_masks(rng)


def test_attention_ref_masks(rng):
    """attention_ref.py swaps its own attention in for fpt_torch's: it must honour the same masks."""
    a = torch.from_numpy(rng.normal(0, 1, (3, 6, 8)))
    w = [torch.from_numpy(rng.normal(0, s, shape)) for s, shape in
         ((0.4, (8, 24)), (0.1, (24,)), (0.4, (8, 8)), (0.1, (8,)))]
    keep = ft.real_mask(torch.tensor([6, 2, 4]), 6)
    with torch.no_grad():
        for kw, what in (({}, "causal"), ({"causal": False, "key_keep": keep}, "bidirectional + key mask")):
            ours = ft.attention(a, *w, 2, **kw)
            theirs = attention_ref.torch_attention([])(a, *w, 2, **kw)
            check(f"attention_ref's nn.MultiheadAttention stand-in, {what}", maxdiff(ours, theirs), 1e-12)


# ---------------------------------------------------------------- 2. LSTM

class PaperLayerNorm(nn.Module):
    """models/lstm.py's LayerNorm(learnable=True): gains alpha and biases beta of shape (1, size)."""

    def __init__(self, size, epsilon):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, size, dtype=DT))
        self.beta = nn.Parameter(torch.zeros(1, size, dtype=DT))
        self.epsilon = epsilon

    def forward(self, x):
        size = x.size()
        x = x.view(x.size(0), -1)
        x = (x - torch.mean(x, 1).unsqueeze(1).expand_as(x)) / torch.sqrt(
            torch.var(x, 1).unsqueeze(1).expand_as(x) + self.epsilon)
        x = self.alpha.expand_as(x) * x + self.beta.expand_as(x)
        return x.view(size)


class PaperLayerNormLSTM(nn.Module):
    """models/lstm.py's LayerNormLSTM cell (ln_preact, learnable, cln=False), without dropout."""

    def __init__(self, input_size, hidden_size, epsilon):
        super().__init__()
        self.hidden_size = hidden_size
        self.i2h = nn.Linear(input_size, 4 * hidden_size, dtype=DT)
        self.h2h = nn.Linear(hidden_size, 4 * hidden_size, dtype=DT)
        self.ln_h2h = PaperLayerNorm(4 * hidden_size, epsilon)
        self.ln_i2h = PaperLayerNorm(4 * hidden_size, epsilon)
        self.ln_cell = PaperLayerNorm(hidden_size, epsilon)

    def forward(self, x, hidden):
        h, c = hidden
        h = h.view(h.size(1), -1)
        c = c.view(c.size(1), -1)
        x = x.view(x.size(1), -1)
        preact = self.ln_i2h(self.i2h(x)) + self.ln_h2h(self.h2h(h))
        gates = preact[:, :3 * self.hidden_size].sigmoid()
        g_t = preact[:, 3 * self.hidden_size:].tanh()
        i_t = gates[:, :self.hidden_size]
        f_t = gates[:, self.hidden_size:2 * self.hidden_size]
        o_t = gates[:, -self.hidden_size:]
        c_t = self.ln_cell(torch.mul(c, f_t) + torch.mul(i_t, g_t))
        h_t = torch.mul(o_t, c_t.tanh())
        h_t = h_t.view(1, h_t.size(0), -1)
        c_t = c_t.view(1, c_t.size(0), -1)
        return h_t, (h_t, c_t)


def paper_lstm(p, cfg, e):
    """LNLSTM.forward (unidirectional, batch_first) with h0 = c0 = 0 instead of the paper's
    random draw, weights loaded from the flat dict."""
    C = cfg["n_embd"]
    layers = []
    for k in range(cfg["n_layer"]):
        cell = PaperLayerNormLSTM(C, C, cfg["eps"])
        with torch.no_grad():
            for n, mod in (("i2h", cell.i2h), ("h2h", cell.h2h)):
                mod.weight.copy_(p[f"lstm/{k}/{n}/weight"])
                mod.bias.copy_(p[f"lstm/{k}/{n}/bias"])
            for n in ("ln_i2h", "ln_h2h", "ln_cell"):
                getattr(cell, n).alpha.copy_(p[f"lstm/{k}/{n}/weight"].view(1, -1))
                getattr(cell, n).beta.copy_(p[f"lstm/{k}/{n}/bias"].view(1, -1))
        layers.append(cell)
    x = e.permute(1, 0, 2).contiguous()  # sequence-first, as layer_forward works
    for cell in layers:
        h = (torch.zeros(1, x.size(1), C, dtype=DT), torch.zeros(1, x.size(1), C, dtype=DT))
        ys = []
        for i in range(x.size(0)):
            y, h = cell(x.narrow(0, i, 1), h)
            ys.append(y)
        f_x = torch.cat(ys, 0)
        x = x + f_x if cfg["residual"] else f_x
    return x.permute(1, 0, 2)


def test_lstm():
    for residual in (0, 1):
        cfg, p, rng = lstm_problem(201 + residual, L=3, residual=residual)
        e = torch.from_numpy(rng.normal(0, 1, (3, 9, 12)))
        with torch.no_grad():
            ours, paper = ft.backbone(p, cfg, e), paper_lstm(p, cfg, e)
        check(f"LSTM vs the paper-shaped LayerNormLSTM, residual {residual}", maxdiff(ours, paper), 1e-12)
    # residual must matter, or the two comparisons above test one thing twice.
    with torch.no_grad():
        check("LSTM: residual 1 differs from residual 0 (1 = no)",
              float(maxdiff(ft.backbone(p, cfg, e), ft.backbone(p, {**cfg, "residual": 0}, e)) < 1e-3), 0.0)
    test_lstm_gradcheck()
    test_lstm_trainable_and_adam()


def gradcheck_loss(what, cfg, p, case, x, y, lengths, probe):
    def loss_of(*ts):
        _, logits = ft.forward({**p, **dict(zip(probe, ts))}, cfg, case, x, lengths)
        return ft.loss_and_accuracy(logits, y, case["n_cls"])[0]

    leaves = [p[n].clone().requires_grad_(True) for n in probe]
    ok = torch.autograd.gradcheck(loss_of, leaves, eps=1e-6, atol=1e-8, rtol=1e-6, raise_exception=False)
    expect(f"gradcheck {what} ({', '.join(probe)})", ok)


def test_lstm_gradcheck():
    lengths = torch.tensor([4, 2])
    for residual, readout in ((0, "last-real"), (1, "mean")):
        cfg, p, rng = lstm_problem(211, C=4, residual=residual)
        add_io(p, rng, 4)
        x = torch.from_numpy(rng.normal(0, 1, (2, 4, 3)))
        y = torch.tensor([[0], [2]])
        probe = ["in/weight", "lstm/0/i2h/weight", "lstm/0/h2h/weight", "lstm/1/h2h/bias",
                 "lstm/0/ln_cell/weight", "lstm/1/ln_i2h/bias", "lstm/0/ln_h2h/weight", "out/weight"]
        gradcheck_loss(f"LSTM residual {residual} readout {readout}", cfg, p, flat_case(readout), x, y,
                       lengths, probe)
    cfg, p, rng = gpt2_problem(212, C=8, H=2, T=5)
    add_io(p, rng, 8)
    x = torch.from_numpy(rng.normal(0, 1, (3, 5, 3)))
    probe = ["in/weight", "wpe/weight", "h/0/attn/c_attn/weight", "h/1/ln_1/weight", "h/0/mlp/c_fc/weight",
             "ln_f/bias", "out/bias"]
    for readout in ("last", "last-real", "mean"):
        gradcheck_loss(f"encoder, padded, readout {readout}", cfg, p, flat_case(readout),
                       x, torch.tensor([[0], [1], [2]]), torch.tensor([5, 2, 1]), probe)


def test_lstm_trainable_and_adam():
    cfg, p, rng = lstm_problem(221, C=6)
    add_io(p, rng, 6)
    lstm = [n for n in p if n.startswith("lstm/")]
    lns = [n for n in lstm if "/ln_" in n]
    io = ["in/bias", "in/weight", "out/bias", "out/weight"]
    base = flat_case()
    for flags, expect_set in ((base, lns + io),                                  # "random frozen LSTM"
                              ({**base, "full": 1}, lstm + io),                  # the LSTM baseline
                              ({**base, "freeze_ln": 1}, io),
                              ({**base, "full": 1, "freeze_in": 1, "freeze_out": 1}, lstm),
                              ({**base, "freeze_attn": 0, "freeze_ff": 0, "freeze_pos": 1}, lns + io)):
        got = sorted(n for n in p if ft.is_trainable(n, flags))
        diff = {k: v for k, v in flags.items() if k in ft.FLAGS and v != base[k]}
        expect(f"LSTM trainable set with {diff or 'the defaults'}", got == sorted(expect_set))
    steps, B, T = 4, 3, 5
    case = {**flat_case("last-real", full=1), "steps": steps, "batch": B, "seq": T, "lr": 0.05,
            "x": torch.from_numpy(rng.normal(0, 1, (steps, B, T, 3))),
            "y": torch.from_numpy(rng.integers(0, 3, (steps, B, 1))),
            "lengths": torch.from_numpy(rng.integers(1, T + 1, (steps, B)))}
    res = ft.run(cfg, {n: t.clone() for n, t in p.items()}, case)
    hand = torch_ref.manual_training(cfg, p, case)
    check("LSTM + padding: torch clip+Adam vs hand-written",
          max(maxdiff(res["params"][n], hand[n]) for n in hand), 1e-9)
    expect("LSTM training moved every trainable tensor",
           min(maxdiff(res["params"][n], p[n]) for n in hand) > 1e-3)


# ---------------------------------------------------------------- 3. padding

def pad_batch(rng, B, T, lengths, d_in=3):
    """Continuous inputs whose positions >= len hold large junk."""
    x = rng.normal(0, 1, (B, T, d_in))
    junk = ~ft.real_mask(lengths, T).numpy()
    x[junk] = rng.normal(0, 5, (int(junk.sum()), d_in))
    return torch.from_numpy(x)


def truncated_logits(p, cfg, case, x, lengths):
    """Each sample alone, cut to its real tokens: no padding at all."""
    return torch.cat([ft.forward(p, cfg, case, x[b:b + 1, :int(n)])[1] for b, n in enumerate(lengths)])


def test_padding():
    lengths = torch.tensor([7, 3, 1, 5, 6])
    models = [("encoder", *gpt2_problem(301)), ("causal gpt2", *gpt2_problem(302, causal=1, activation="gelu_new")),
              ("LSTM residual 0", *lstm_problem(303, C=16)), ("LSTM residual 1", *lstm_problem(304, C=16, residual=1))]
    with torch.no_grad():
        for name, cfg, p, rng in models:
            add_io(p, rng, cfg["n_embd"])
            x = pad_batch(rng, 5, 7, lengths)
            for readout in ("last-real", "mean"):
                case = flat_case(readout)
                _, padded = ft.forward(p, cfg, case, x, lengths)
                check(f"{name}, readout {readout}: junk-padded = truncated",
                      maxdiff(padded, truncated_logits(p, cfg, case, x, lengths)), 1e-12)
            _, last = ft.forward(p, cfg, flat_case("last"), x, lengths)
            short = lengths < 7
            check(f"{name}: readout last sees the junk (1 = no)",
                  float(maxdiff(last[short], truncated_logits(p, cfg, flat_case("last"), x, lengths)[short]) < 1e-3), 0.0)
        # The encoder's invariance comes from the key mask: without lengths the junk leaks in.
        name, cfg, p, rng = models[0]
        x = pad_batch(rng, 5, 7, lengths)
        _, unmasked = ft.forward(p, cfg, flat_case("last-real"), x, None)
        _, masked = ft.forward(p, cfg, flat_case("last-real"), x, lengths)
        check("encoder without the key mask sees the junk (1 = no)",
              float(maxdiff(unmasked[lengths < 7], masked[lengths < 7]) < 1e-3), 0.0)


# ---------------------------------------------------------------- 4. old path

OLD_PATH_CASES = {  # name: make_case arguments (tests/cli/test_torch.sh, tests/torch/test_tied.sh)
    "plain-defaults": "",
    "default-continuous": "--d-in 5 --seed 1",
    "default-embedding": "--vocab 7 --seed 2",
    "full-training": "--d-in 5 --full 1 --seed 3",
    "bit-style-readout": "--d-in 3 --r 3 --n-out 4 --n-cls 2 --seed 4",
    "ln-only": "--d-in 4 --freeze-in 1 --freeze-out 1 --freeze-pos 1 --seed 5",
    "output-only": "--d-in 4 --freeze-in 1 --freeze-ln 1 --freeze-pos 1 --seed 6",
    "attn-and-ff": "--vocab 9 --freeze-attn 0 --freeze-ff 0 --layers 3 --d-model 48 --heads 6 --seq 12 --seed 7",
    "readout-is-all": "--d-in 2 --seq 4 --r 4 --n-out 2 --n-cls 2 --seed 8",
    "long-causal-blocks": "--vocab 9 --seq 150 --positions 160 --r 20 --n-out 4 --n-cls 2 --freeze-attn 0 "
                          "--layers 2 --d-model 16 --heads 2 --seed 9",
    "tied-full-training": "--vocab 11 --tied 1 --full 1 --seed 9",
    "tied-default-freeze": "--vocab 11 --tied 1 --seed 10",
    "tied-frozen-wte": "--vocab 5 --tied 1 --freeze-in 1 --full 1 --layers 3 --seq 10 --seed 11",
    "tied-wide-vocab": "--vocab 40 --tied 1 --full 1 --seq 6 --batch 2 --d-model 24 --heads 3 --seed 12",
}
# Recorded from make_case.py before --kind/--causal/--activation/--eps/--residual/--readout/--pad.
OLD_PATH_DIGESTS = {
    "plain-defaults": "ea3b766a90de423d2e552aa6",
    "default-continuous": "75b0c1ecb87bd993ac22517f",
    "default-embedding": "b4eddee7ca1616e660755b26",
    "full-training": "f34454f130b687c92c04fa96",
    "bit-style-readout": "ac09315280cddb91d0105b6b",
    "ln-only": "62c9bcf7a11d155625c7b22e",
    "output-only": "b921ff7f8957e5d8ba66c10b",
    "attn-and-ff": "323117a212bdc0fbd193581d",
    "readout-is-all": "93e86510ee960b855c78b961",
    "long-causal-blocks": "5ec208175f39b8dd878d65f6",
    "tied-full-training": "fc5fc760ccfc7733d9cfd0a2",
    "tied-default-freeze": "a5483b6ca865ebb556e772bd",
    "tied-frozen-wte": "036ddad07c63e5d9b82b8530",
    "tied-wide-vocab": "f6d36121d5d2348c22a015af",
}


def file_digest(path):
    """sha256 over every attribute and dataset (name, dtype, shape, bytes), not over the file's
    HDF5 layout."""
    sha = hashlib.sha256()

    def add(kind, name, value):
        a = np.asarray(value)
        sha.update(f"{kind}|{name}|{a.dtype.str}|{a.shape}|".encode())
        sha.update(a.tobytes())

    with h5py.File(path, "r") as f:
        objs = [("", f)]
        f.visititems(lambda n, o: objs.append((n, o)))
        for name, obj in sorted(objs, key=lambda t: t[0]):
            for k in sorted(obj.attrs):
                add("attr", f"{name}@{k}", obj.attrs[k])
            if isinstance(obj, h5py.Dataset):
                add("data", name, obj[()])
    return sha.hexdigest()


def make_files(d, name, args):
    case, model = os.path.join(d, name + ".case.h5"), os.path.join(d, name + ".model.h5")
    mc.main(["--out", case, "--model", model] + args.split())
    return case, model


def case_digest(d, name, args):
    case, model = make_files(d, name, args)
    return hashlib.sha256((file_digest(model) + file_digest(case)).encode()).hexdigest()[:24]


def test_old_path():
    with tempfile.TemporaryDirectory() as d:
        bad = [n for n, args in OLD_PATH_CASES.items() if case_digest(d, n, args) != OLD_PATH_DIGESTS.get(n)]
        expect(f"make_case's {len(OLD_PATH_CASES)} old cases hash as before the new options"
               + (f"; differ: {', '.join(bad)}" if bad else ""), not bad)
        test_pad_appends_draws(d)
        test_explicit_defaults(d)


def test_pad_appends_draws(d):
    for name, args in (("cont", "--d-in 4 --seed 5"), ("disc", "--vocab 6 --seed 6")):
        with h5py.File(make_files(d, name, args)[0]) as f0, \
                h5py.File(make_files(d, name + "-pad", args + " --pad 1")[0]) as f1:
            lengths = f1["lengths"][()]
            real = np.arange(f0.attrs["seq"])[None, None, :] < lengths[..., None]
            pad_value = f0.attrs["vocab"] - 1 if f0.attrs["vocab"] else 0
            same = (np.array_equal(f0["x"][()][real], f1["x"][()][real]) and np.array_equal(f0["y"], f1["y"])
                    and all(np.array_equal(f0["init"][n], f1["init"][n]) for n in f0["init"])
                    and np.all(f1["x"][()][~real] == pad_value) and (~real).any())
            expect(f"--pad 1 ({name}): x at real positions, y and init are the unpadded case's; pads hold "
                   f"{pad_value}", same)


def test_explicit_defaults(d):
    """Attributes spelled out at their defaults mean what their absence means."""
    results = []
    for name, extra in (("implicit", ""), ("explicit", " --kind gpt2 --causal 1 --activation gelu_new "
                                                        "--eps 1e-5 --readout last --steps 3")):
        case, model = make_files(d, name, "--vocab 5 --steps 3 --seed 7" + extra)
        cfg, params, c = torch_ref.load_all(case, model)
        results.append(ft.run(cfg, params, c))
    a, b = results
    same = all(torch.equal(a[k], b[k]) for k in ("hidden", "logits")) and a["losses"] == b["losses"] and all(
        torch.equal(a[g][n], b[g][n]) for g in ("grads", "params") for n in a[g]) and a["grads"].keys() == b["grads"].keys()
    expect("kind/causal/activation/readout written at their defaults = absent (bit-identical results)", same)


def print_digests():
    with tempfile.TemporaryDirectory() as d:
        for n, args in OLD_PATH_CASES.items():
            print(f'    "{n}": "{case_digest(d, n, args)}",')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--print-digests", action="store_true")
    if ap.parse_args().print_digests:
        print_digests()
        return 0
    torch.manual_seed(0)
    torch.set_num_threads(1)
    for test in (test_encoder, test_lstm, test_padding, test_old_path):
        test()
    print("selftest_kinds", "FAILED: " + ", ".join(FAILURES) if FAILURES else "passed")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
