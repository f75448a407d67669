#!/usr/bin/python3
"""Float64 PyTorch reference for fpt: GPT-2 (Hugging Face transformers 4.1.1 semantics, fed
inputs_embeds, dropout off) wrapped by the FPT input/readout/output layers, plus one training step
(backward, global grad-norm clip at 1.0, torch.optim.Adam).

Parameters live in a flat dict keyed by model-file names without the leading slash
("wpe/weight", "h/0/attn/c_attn/weight", ..., "in/weight", "out/bias").  All weights use the
x @ W + b layout ([in, out]), as HF's Conv1D and our files do.

Tied language model (case["tied"] = 1, what `fpt pretrain` trains): GPT-2's own head.  The token
table "wte/weight" [vocab, C] is both the input embedding and the output projection,
logits[b, t] = ln_f(h)[b, t] @ wte.T, with a next-token target at every position (r = seq,
n_out = n_cls = vocab) and no in/* or out/* tensors.  wte is in the "in" group (trained unless
freeze_in), and autograd sums its two gradient paths by itself since it is one leaf tensor.

Training step semantics the C code must match (torch 1.13):
  g      = d loss / d p  for every trainable p                    (loss = mean CE over B*K rows)
  norm   = sqrt(sum over all trainable tensors of sum(g^2))
  g     *= min(1, 1.0 / (norm + 1e-6))
  t += 1; m = 0.9 m + 0.1 g; v = 0.999 v + 0.001 g^2
  p     -= (lr / (1 - 0.9^t)) * m / (sqrt(v) / sqrt(1 - 0.999^t) + 1e-8)

Backbone kinds: root attribute "kind" of the model file, "gpt2" when absent.

  gpt2  The blocks above.  Two optional root attributes: "causal" (int, 1 when absent; 0 = every
        query attends to every real key) and "activation" ("gelu_new" when absent: the tanh
        approximation; "gelu": exact 0.5 x (1 + erf(x / sqrt 2))).  A ViT-style pre-LN encoder is
        this layout with causal = 0, activation = "gelu", layer_norm_epsilon = 1e-6.

  lstm  The paper's layer-normalised LSTM (universal_computation/models/lstm.py: LNLSTM of
        LayerNormLSTM cells, cln=False, unidirectional, dropout off here).  Root attributes n_layer,
        n_embd (= C, input and hidden width), layer_norm_epsilon (the paper: 1e-6), residual (0/1),
        format_version; no n_head, n_positions, wpe or ln_f.  Tensors of layer k, nn.Linear layout
        (x @ W.T + b), gate blocks ordered i, f, o, g:
          lstm/k/i2h/weight [4C, C]  lstm/k/i2h/bias [4C]  lstm/k/h2h/weight [4C, C]  lstm/k/h2h/bias [4C]
          lstm/k/ln_i2h/{weight,bias} [4C]  lstm/k/ln_h2h/{weight,bias} [4C]  lstm/k/ln_cell/{weight,bias} [C]
        LN(z) = w * (z - mean) / sqrt(var_unbiased + eps) + b    (torch.var, unbiased=True)
        a = LN_i2h(x_t W_ih^T + b_ih) + LN_h2h(h_{t-1} W_hh^T + b_hh)
        i, f, o = sigmoid(a[0:C]), sigmoid(a[C:2C]), sigmoid(a[2C:3C]);  g = tanh(a[3C:4C])
        c_t = LN_cell(f * c_{t-1} + i * g)   (the normalised cell is carried);  h_t = o * tanh(c_t)
        h_0 = c_0 = 0.  Layer output = h (residual 0) or x + h (residual 1; the recurrence uses h).
        The backbone output is the top layer's output sequence [B, T, C]; in/* feeds layer 0 directly
        (no positional table).  Groups: ln_i2h, ln_h2h, ln_cell -> "ln"; i2h, h2h -> "other", which
        has no freeze flag and trains only with full (the paper's freeze_trans: a "random frozen
        LSTM" trains LNs + in + out).

Padding and readout (case file; absent = no padding, readout "last"):
  /lengths [steps, batch] int32   real tokens per sample, 1..seq, padded on the right
  attribute readout               "last": the last r positions, whatever they hold (the paper);
                                  "last-real" (r = 1): position lengths[b] - 1 of sample b;
                                  "mean" (r = 1): mean of the hidden states at positions < lengths[b]
  Only a bidirectional transformer (causal = 0) masks keys: keys at positions >= len get
  probability exactly 0 in every query's softmax.  Causal models (HF's -1e4 mask as above) and the
  LSTM apply no key mask (the paper's behaviour; a causal model's real positions never see the pads
  anyway).  Padded positions are otherwise computed like any other: their queries (causal = 0: over
  the real keys) and LSTM steps run, and /hidden holds them.

What torch_ref.py writes to REF.h5 is the same for every kind (hidden [B,T,C] = the backbone output
above, logits, loss, accuracy, grads/<name>, params/<name> after the steps, losses); an LSTM's
backbone tensors are named lstm/k/..., e.g. grads/lstm/0/ln_cell/weight, params/lstm/1/i2h/bias.
"""
import math

import h5py
import numpy as np
import torch
import torch.nn.functional as F

DT = torch.float64
FLAGS = ("freeze_in", "freeze_out", "freeze_ln", "freeze_pos", "freeze_attn", "freeze_ff", "full")
KINDS = ("gpt2", "lstm")
ACTIVATIONS = ("gelu_new", "gelu")
READOUTS = ("last", "last-real", "mean")


def backbone_names(n_layer):
    names = ["wpe/weight"]
    for i in range(n_layer):
        p = f"h/{i}/"
        names += [p + "ln_1/weight", p + "ln_1/bias",
                  p + "attn/c_attn/weight", p + "attn/c_attn/bias",
                  p + "attn/c_proj/weight", p + "attn/c_proj/bias",
                  p + "ln_2/weight", p + "ln_2/bias",
                  p + "mlp/c_fc/weight", p + "mlp/c_fc/bias",
                  p + "mlp/c_proj/weight", p + "mlp/c_proj/bias"]
    return names + ["ln_f/weight", "ln_f/bias"]


def lstm_names(n_layer):
    return [f"lstm/{k}/{m}/{w}" for k in range(n_layer)
            for m in ("i2h", "h2h", "ln_i2h", "ln_h2h", "ln_cell") for w in ("weight", "bias")]


def model_names(cfg):
    """The backbone tensors of a model file of cfg's kind."""
    if cfg.get("kind", "gpt2") == "lstm":
        return lstm_names(cfg["n_layer"])
    return backbone_names(cfg["n_layer"])


def group_of(name):
    parts = name.split("/")
    if parts[0] in ("in", "out"):
        return parts[0]
    if parts[0] == "wte":  # the tied token table is the model's input layer
        return "in"
    if parts[0] == "wpe":
        return "pos"
    if parts[0] == "ln_f" or (parts[0] == "h" and parts[2] in ("ln_1", "ln_2")):
        return "ln"
    if parts[0] == "h" and parts[2] == "attn":
        return "attn"
    if parts[0] == "h" and parts[2] == "mlp":
        return "ff"
    if parts[0] == "lstm" and len(parts) == 4:
        return "ln" if parts[2].startswith("ln_") else "other"
    raise ValueError(f"tensor {name!r} belongs to no group")


def is_trainable(name, flags):
    g = group_of(name)
    # full unfreezes the backbone only; the FPT wrapper's in/out layers keep their own flags.
    if g not in ("in", "out") and flags["full"]:
        return True
    if g == "other":  # no freeze flag of its own: frozen unless full
        return False
    return not flags["freeze_" + g]


# ---------------------------------------------------------------- file I/O

def str_attr(attrs, key, default):
    """A string attribute, fixed-length ASCII (as the C writers) or h5py's variable-length str."""
    v = attrs.get(key, default)
    return v.decode() if isinstance(v, bytes) else str(v)


def model_config(path, attrs):
    kind = str_attr(attrs, "kind", "gpt2")
    if kind == "gpt2":
        cfg = {k: int(attrs[k]) for k in ("n_layer", "n_head", "n_embd", "n_positions")}
        cfg["causal"] = int(attrs.get("causal", 1))
        cfg["activation"] = str_attr(attrs, "activation", "gelu_new")
    elif kind == "lstm":
        cfg = {k: int(attrs[k]) for k in ("n_layer", "n_embd", "residual")}
    else:
        raise ValueError(f"{path}: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    cfg["kind"] = kind
    cfg["eps"] = float(attrs["layer_norm_epsilon"])
    bad = [(k, cfg[k]) for k in ("causal", "residual") if cfg.get(k, 0) not in (0, 1)]
    if cfg.get("activation", "gelu_new") not in ACTIVATIONS:
        bad.append(("activation", cfg["activation"]))
    if bad:
        raise ValueError(f"{path}: bad attribute(s) {bad}")
    return cfg


def load_model(path):
    with h5py.File(path, "r") as f:
        if int(f.attrs["format_version"]) != 1:
            raise ValueError(f"{path}: unsupported format_version {f.attrs['format_version']}")
        cfg = model_config(path, f.attrs)
        params = {n: torch.from_numpy(np.asarray(f[n], dtype=np.float64)) for n in model_names(cfg)}
    return cfg, params


def load_case(path):
    with h5py.File(path, "r") as f:
        case = {k: int(f.attrs[k]) for k in
                ("steps", "batch", "seq", "d_in", "vocab", "r", "n_out", "n_cls") + FLAGS}
        case["tied"] = int(f.attrs.get("tied", 0))  # cases written before the LM mode have none
        case["frozen_bf16"] = int(f.attrs.get("frozen_bf16", 0))  # absent: fp32 (older cases)
        case["readout"] = str_attr(f.attrs, "readout", "last")
        case["lengths"] = (torch.from_numpy(np.asarray(f["lengths"]).astype(np.int64))
                           if "lengths" in f else None)  # None: every token is real
        case["lr"] = float(f.attrs["lr"])
        x = np.asarray(f["x"])
        case["x"] = (torch.from_numpy(x.astype(np.int64)) if case["vocab"]
                     else torch.from_numpy(x.astype(np.float64)))
        case["y"] = torch.from_numpy(np.asarray(f["y"]).astype(np.int64))
        init = {}
        f["init"].visititems(lambda n, o: init.__setitem__(n, o) if isinstance(o, h5py.Dataset) else None)
        case["init"] = {n: torch.from_numpy(np.asarray(o, dtype=np.float64)) for n, o in init.items()}
    return case


# ---------------------------------------------------------------- model

def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)  # biased, as nn.LayerNorm
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


ACTIVATION = {"gelu_new": gelu_new, "gelu": gelu}


def real_mask(lengths, T):
    """[B, T] bool, True at the real (unpadded) positions."""
    return torch.arange(T)[None, :] < lengths[:, None]


# fpt --frozen-dtype bf16 (issue 14 §5): set FROZEN_BF16 = True and the four
# products with a FROZEN GPT-2 block matrix (one that does not require grad)
# round both inputs to bf16 first, as fpt's kernels do (fp32 -> bf16, round to
# nearest even: torch's bfloat16 cast, the same as vcvtne2ps2bf16), then
# multiply in the tensors' own precision (float64: no accumulation error to
# speak of). The forward rounds (activation, weight); the input gradient rounds
# (output gradient, weight), as fpt's dX GEMM does. Trainable matrices: plain.
FROZEN_BF16 = False


def bf16_round(x):
    return x.to(torch.float32).to(torch.bfloat16).to(x.dtype)


class _FrozenBf16Matmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(w)
        return bf16_round(x) @ bf16_round(w)

    @staticmethod
    def backward(ctx, g):
        (w,) = ctx.saved_tensors
        return bf16_round(g) @ bf16_round(w).transpose(-1, -2), None


def frozen_mm(x, w):
    return _FrozenBf16Matmul.apply(x, w) if FROZEN_BF16 and not w.requires_grad else x @ w


def attention(a, w_attn, b_attn, w_proj, b_proj, n_head, causal=True, key_keep=None):
    """key_keep: [B, T] bool or None; False keys get probability exactly 0 for every query."""
    B, T, C = a.shape
    hd = C // n_head
    qkv = frozen_mm(a, w_attn) + b_attn
    q, k, v = (t.reshape(B, T, n_head, hd).transpose(1, 2) for t in qkv.split(C, dim=-1))
    w = q @ k.transpose(-1, -2) / math.sqrt(hd)
    if causal:
        keep = torch.tril(torch.ones(T, T, dtype=w.dtype))
        # HF's masking: masked scores become exactly -1e4 (not -inf); a float32 C port sees the same.
        w = w * keep - 1e4 * (1.0 - keep)
    if key_keep is not None:
        # -inf, so exp gives exactly 0; no row is all -inf since every sample has a real token.
        w = w.masked_fill(~key_keep[:, None, None, :], float("-inf"))
    y = torch.softmax(w, dim=-1) @ v
    y = y.transpose(1, 2).reshape(B, T, C)
    return frozen_mm(y, w_proj) + b_proj


def gpt2_backbone(p, cfg, e, lengths=None):
    T = e.shape[1]
    eps = cfg["eps"]
    causal = bool(cfg.get("causal", 1))
    act = ACTIVATION[cfg.get("activation", "gelu_new")]
    # Only a bidirectional model masks padded keys; a causal one runs as the paper's, unmasked.
    key_keep = None if causal or lengths is None else real_mask(lengths, T)
    h = e + p["wpe/weight"][:T]
    for i in range(cfg["n_layer"]):
        q = f"h/{i}/"
        a = layer_norm(h, p[q + "ln_1/weight"], p[q + "ln_1/bias"], eps)
        h = h + attention(a, p[q + "attn/c_attn/weight"], p[q + "attn/c_attn/bias"],
                          p[q + "attn/c_proj/weight"], p[q + "attn/c_proj/bias"], cfg["n_head"],
                          causal=causal, key_keep=key_keep)
        m = layer_norm(h, p[q + "ln_2/weight"], p[q + "ln_2/bias"], eps)
        f = act(frozen_mm(m, p[q + "mlp/c_fc/weight"]) + p[q + "mlp/c_fc/bias"])
        h = h + frozen_mm(f, p[q + "mlp/c_proj/weight"]) + p[q + "mlp/c_proj/bias"]
    return layer_norm(h, p["ln_f/weight"], p["ln_f/bias"], eps)


def layer_norm_unbiased(x, w, b, eps):
    """The paper LSTM's LayerNorm: unbiased variance (torch.var's default)."""
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).sum(-1, keepdim=True) / (x.shape[-1] - 1)
    return w * (x - mu) / torch.sqrt(var + eps) + b


def lstm_layer(p, q, x, eps):
    """One LN-LSTM layer (tensor prefix q) over x [B, T, C]; returns the h sequence [B, T, C]."""
    B, T, C = x.shape
    ln = {n: (p[q + n + "/weight"], p[q + n + "/bias"], eps) for n in ("ln_i2h", "ln_h2h", "ln_cell")}
    w_hh, b_hh = p[q + "h2h/weight"], p[q + "h2h/bias"]
    xi = x @ p[q + "i2h/weight"].t() + p[q + "i2h/bias"]  # no recurrence in it: every step at once
    h = c = x.new_zeros(B, C)
    hs = []
    for t in range(T):
        a = layer_norm_unbiased(xi[:, t], *ln["ln_i2h"]) + layer_norm_unbiased(h @ w_hh.t() + b_hh, *ln["ln_h2h"])
        i, f, o = torch.sigmoid(a[:, :3 * C]).split(C, dim=-1)
        g = torch.tanh(a[:, 3 * C:])
        c = layer_norm_unbiased(f * c + i * g, *ln["ln_cell"])
        h = o * torch.tanh(c)
        hs.append(h)
    return torch.stack(hs, dim=1)


def lstm_backbone(p, cfg, e):
    x = e
    for k in range(cfg["n_layer"]):
        h = lstm_layer(p, f"lstm/{k}/", x, cfg["eps"])
        x = x + h if cfg["residual"] else h
    return x


def backbone(p, cfg, e, lengths=None):
    """e: [B, T, C] inputs to the backbone; lengths: [B] real tokens per sample (None: all T)."""
    if cfg.get("kind", "gpt2") == "lstm":
        return lstm_backbone(p, cfg, e)  # no key mask: padding just runs through the recurrence
    return gpt2_backbone(p, cfg, e, lengths)


def readout(hidden, case, lengths):
    """The rows the output layer sees: [B, r, C]."""
    how = case.get("readout", "last")
    if how == "last":
        return hidden[:, -case["r"]:]
    B, T, _ = hidden.shape
    if lengths is None:
        lengths = torch.full((B,), T, dtype=torch.int64)
    if how == "last-real":
        return hidden[torch.arange(B), lengths - 1].unsqueeze(1)
    if how == "mean":
        real = real_mask(lengths, T).to(hidden.dtype)[..., None]
        return ((hidden * real).sum(1) / lengths[:, None].to(hidden.dtype)).unsqueeze(1)
    raise ValueError(f"unknown readout {how!r}")


def forward(p, cfg, case, x, lengths=None):
    """x: one batch, [B,T,d_in] float or [B,T] int; lengths: [B] real tokens or None (all real).
    Returns (last_hidden_state, logits [B, r*n_out])."""
    if case.get("tied"):
        wte = p["wte/weight"]
        hidden = backbone(p, cfg, wte[x])
        # GPT-2's LM head: every position, projected back onto the token table.
        return hidden, (hidden @ wte.t()).reshape(x.shape[0], -1)
    if case["vocab"]:
        e = p["in/weight"][x]
    else:
        e = x @ p["in/weight"] + p["in/bias"]
    hidden = backbone(p, cfg, e, lengths)
    z = readout(hidden, case, lengths)
    logits = (z @ p["out/weight"] + p["out/bias"]).reshape(x.shape[0], -1)
    return hidden, logits


def loss_and_accuracy(logits, y, n_cls):
    rows = logits.reshape(-1, n_cls)  # [B*K, n_cls]; row-major, so sample b's K groups stay together
    target = y.reshape(-1)
    loss = F.cross_entropy(rows, target)
    acc = (rows.argmax(-1) == target).to(rows.dtype).mean()
    return loss, acc


# ---------------------------------------------------------------- training

def check_case(cfg, case):
    lstm = cfg.get("kind", "gpt2") == "lstm"
    positions = float("inf") if lstm else cfg["n_positions"]  # an LSTM has no position limit
    if case["steps"] < 1 or not 1 <= case["r"] <= case["seq"] <= positions:
        raise ValueError("need steps >= 1 and 1 <= r <= seq <= n_positions")
    if (case["r"] * case["n_out"]) % case["n_cls"]:
        raise ValueError("r*n_out must be a multiple of n_cls")
    if case.get("tied") and not (case["vocab"] and case["r"] == case["seq"]
                                 and case["n_out"] == case["n_cls"] == case["vocab"]):
        raise ValueError("a tied LM case needs r = seq and n_out = n_cls = vocab")
    how, lengths = case.get("readout", "last"), case.get("lengths")
    if how not in READOUTS:
        raise ValueError(f"unknown readout {how!r} (known: {', '.join(READOUTS)})")
    if how != "last" and case["r"] != 1:
        raise ValueError(f"readout {how} needs r = 1")
    if lengths is not None and (tuple(lengths.shape) != tuple(case["x"].shape[:2])
                                or not bool(((lengths >= 1) & (lengths <= case["seq"])).all())):
        raise ValueError("lengths must be [steps, batch] with values in 1..seq")
    if case.get("tied") and (lstm or how != "last" or lengths is not None):
        raise ValueError("a tied LM case is a GPT-2 with readout last and no lengths")


def batch_lengths(case, s):
    lengths = case.get("lengths")
    return None if lengths is None else lengths[s]


def run(cfg, params, case):
    """Train for case['steps'] steps. `params` (model + case init, float64) is updated in place.
    Returns dict with hidden, logits, loss, accuracy, grads (step 0, before clipping), losses."""
    check_case(cfg, case)
    names = sorted(n for n in params if is_trainable(n, case))
    for n in params:
        params[n].requires_grad_(n in names)
    trainable = [params[n] for n in names]
    opt = torch.optim.Adam(trainable, lr=case["lr"])
    res = {"losses": []}
    for s in range(case["steps"]):
        hidden, logits = forward(params, cfg, case, case["x"][s], batch_lengths(case, s))
        loss, acc = loss_and_accuracy(logits, case["y"][s], case["n_cls"])
        opt.zero_grad()
        loss.backward()
        if s == 0:
            res.update(hidden=hidden.detach().clone(), logits=logits.detach().clone(),
                       loss=loss.item(), accuracy=acc.item(),
                       grads={n: params[n].grad.detach().clone() for n in names})
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        res["losses"].append(loss.item())
    res["params"] = {n: params[n].detach().clone() for n in names}
    return res
