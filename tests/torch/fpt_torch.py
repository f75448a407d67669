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
"""
import math

import h5py
import numpy as np
import torch
import torch.nn.functional as F

DT = torch.float64
FLAGS = ("freeze_in", "freeze_out", "freeze_ln", "freeze_pos", "freeze_attn", "freeze_ff", "full")


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
    raise ValueError(f"tensor {name!r} belongs to no group")


def is_trainable(name, flags):
    g = group_of(name)
    # full unfreezes the backbone only; the FPT wrapper's in/out layers keep their own flags.
    if g not in ("in", "out") and flags["full"]:
        return True
    return not flags["freeze_" + g]


# ---------------------------------------------------------------- file I/O

def load_model(path):
    with h5py.File(path, "r") as f:
        if int(f.attrs["format_version"]) != 1:
            raise ValueError(f"{path}: unsupported format_version {f.attrs['format_version']}")
        cfg = {k: int(f.attrs[k]) for k in ("n_layer", "n_head", "n_embd", "n_positions")}
        cfg["eps"] = float(f.attrs["layer_norm_epsilon"])
        params = {n: torch.from_numpy(np.asarray(f[n], dtype=np.float64))
                  for n in backbone_names(cfg["n_layer"])}
    return cfg, params


def load_case(path):
    with h5py.File(path, "r") as f:
        case = {k: int(f.attrs[k]) for k in
                ("steps", "batch", "seq", "d_in", "vocab", "r", "n_out", "n_cls") + FLAGS}
        case["tied"] = int(f.attrs.get("tied", 0))  # cases written before the LM mode have none
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


def attention(a, w_attn, b_attn, w_proj, b_proj, n_head):
    B, T, C = a.shape
    hd = C // n_head
    qkv = a @ w_attn + b_attn
    q, k, v = (t.reshape(B, T, n_head, hd).transpose(1, 2) for t in qkv.split(C, dim=-1))
    w = q @ k.transpose(-1, -2) / math.sqrt(hd)
    keep = torch.tril(torch.ones(T, T, dtype=w.dtype))
    # HF's masking: masked scores become exactly -1e4 (not -inf); a float32 C port sees the same.
    w = w * keep - 1e4 * (1.0 - keep)
    y = torch.softmax(w, dim=-1) @ v
    y = y.transpose(1, 2).reshape(B, T, C)
    return y @ w_proj + b_proj


def backbone(p, cfg, e):
    T = e.shape[1]
    eps = cfg["eps"]
    h = e + p["wpe/weight"][:T]
    for i in range(cfg["n_layer"]):
        q = f"h/{i}/"
        a = layer_norm(h, p[q + "ln_1/weight"], p[q + "ln_1/bias"], eps)
        h = h + attention(a, p[q + "attn/c_attn/weight"], p[q + "attn/c_attn/bias"],
                          p[q + "attn/c_proj/weight"], p[q + "attn/c_proj/bias"], cfg["n_head"])
        m = layer_norm(h, p[q + "ln_2/weight"], p[q + "ln_2/bias"], eps)
        f = gelu_new(m @ p[q + "mlp/c_fc/weight"] + p[q + "mlp/c_fc/bias"])
        h = h + f @ p[q + "mlp/c_proj/weight"] + p[q + "mlp/c_proj/bias"]
    return layer_norm(h, p["ln_f/weight"], p["ln_f/bias"], eps)


def forward(p, cfg, case, x):
    """x: one batch, [B,T,d_in] float or [B,T] int. Returns (last_hidden_state, logits [B, r*n_out])."""
    if case.get("tied"):
        wte = p["wte/weight"]
        hidden = backbone(p, cfg, wte[x])
        # GPT-2's LM head: every position, projected back onto the token table.
        return hidden, (hidden @ wte.t()).reshape(x.shape[0], -1)
    if case["vocab"]:
        e = p["in/weight"][x]
    else:
        e = x @ p["in/weight"] + p["in/bias"]
    hidden = backbone(p, cfg, e)
    z = hidden[:, -case["r"]:]
    logits = (z @ p["out/weight"] + p["out/bias"]).reshape(x.shape[0], -1)
    return hidden, logits


def loss_and_accuracy(logits, y, n_cls):
    rows = logits.reshape(-1, n_cls)  # [B*K, n_cls]; row-major, so sample b's K groups stay together
    target = y.reshape(-1)
    loss = F.cross_entropy(rows, target)
    acc = (rows.argmax(-1) == target).to(rows.dtype).mean()
    return loss, acc


# ---------------------------------------------------------------- training

def run(cfg, params, case):
    """Train for case['steps'] steps. `params` (model + case init, float64) is updated in place.
    Returns dict with hidden, logits, loss, accuracy, grads (step 0, before clipping), losses."""
    if case["steps"] < 1 or not 1 <= case["r"] <= case["seq"] <= cfg["n_positions"]:
        raise ValueError("need steps >= 1 and 1 <= r <= seq <= n_positions")
    if (case["r"] * case["n_out"]) % case["n_cls"]:
        raise ValueError("r*n_out must be a multiple of n_cls")
    if case.get("tied") and not (case["vocab"] and case["r"] == case["seq"]
                                 and case["n_out"] == case["n_cls"] == case["vocab"]):
        raise ValueError("a tied LM case needs r = seq and n_out = n_cls = vocab")
    names = sorted(n for n in params if is_trainable(n, case))
    for n in params:
        params[n].requires_grad_(n in names)
    trainable = [params[n] for n in names]
    opt = torch.optim.Adam(trainable, lr=case["lr"])
    res = {"losses": []}
    for s in range(case["steps"]):
        hidden, logits = forward(params, cfg, case, case["x"][s])
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
