#!/usr/bin/python3
"""Run the float64 torch reference on a case and write the results the C harness must reproduce.

  torch_ref.py CASE.h5 MODEL.h5 -o REF.h5
  torch_ref.py CASE.h5 MODEL.h5 -o F32.h5 --dtype float32
  torch_ref.py --selftest            (backbone kinds, padding, readouts: selftest_kinds.py)

--dtype float32 runs the same code in float32: a stand-in for a correct float32 C implementation,
used to check that compare.py's tolerances are neither too tight nor too loose.

REF.h5 (all float64 except /hidden, which is float32 as the C side writes it):
  /hidden [B,T,C]          last_hidden_state, step-0 batch, initial parameters
  /logits [B, r*n_out]     same forward pass
  /loss, /accuracy         scalars, same forward pass
  /grads/<name>            step-0 gradient (before clipping) of every trainable tensor
  /losses [steps]          loss of step s on batch s, before that step's update
  /params/<name>           every trainable tensor after all steps
<name> is the model-file name without the leading slash (h/0/ln_1/weight, wpe/weight, ...;
lstm/0/ln_cell/weight, lstm/1/i2h/bias, ... for an LSTM) or in/weight, in/bias, out/weight,
out/bias; wte/weight for a tied language-model case.  With padding (/lengths in the case file)
/hidden still holds every position, padded ones included (fpt_torch.py's docstring).
"""
import argparse
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree

import h5py
import numpy as np
import torch
import torch.nn.functional as F

import fpt_torch as ft
import make_case as mc


def load_all(case_path, model_path):
    cfg, params = ft.load_model(model_path)
    case = ft.load_case(case_path)
    params.update(case["init"])
    return cfg, params, case


def write_results(path, res):
    with h5py.File(path, "w") as f:
        f.create_dataset("hidden", data=res["hidden"].numpy().astype(np.float32))
        f.create_dataset("logits", data=res["logits"].numpy().astype(np.float64))
        f.create_dataset("loss", data=np.float64(res["loss"]))
        f.create_dataset("accuracy", data=np.float64(res["accuracy"]))
        f.create_dataset("losses", data=np.asarray(res["losses"], dtype=np.float64))
        for group in ("grads", "params"):
            for n, t in res[group].items():
                f.create_dataset(f"{group}/{n}", data=t.numpy().astype(np.float64))


# ---------------------------------------------------------------- self-test

def small_problem(extra):
    """An in-memory case, tiny enough for full finite-difference Jacobians."""
    a = mc.parse_args(["--out", "-", "--model", "-", "--layers", "2", "--d-model", "8", "--heads", "2",
                       "--positions", "6", "--seq", "5", "--batch", "2", "--steps", "4",
                       "--r", "2", "--n-out", "3", "--n-cls", "3", "--lr", "0.05"] + extra)
    rng = np.random.default_rng(1)
    params = {n: torch.from_numpy(t.astype(np.float64))
              for n, t in mc.random_model(rng, a.layers, a.d_model, a.positions).items()}
    x, y, init = mc.random_case(rng, a, a.d_model)
    params.update({n: torch.from_numpy(t.astype(np.float64)) for n, t in init.items()})
    cfg = {"n_layer": a.layers, "n_head": a.heads, "n_embd": a.d_model, "n_positions": a.positions,
           "eps": 1e-5}
    case = {k: getattr(a, k) for k in ("steps", "batch", "seq", "r", "n_out", "n_cls", "lr", "tied") + ft.FLAGS}
    case.update(d_in=a.d_in, vocab=a.vocab,
                x=torch.from_numpy(x.astype(np.int64 if a.vocab else np.float64)),
                y=torch.from_numpy(y.astype(np.int64)))
    return cfg, params, case


def manual_training(cfg, params, case):
    """Clip + Adam written out by hand (the formulas in fpt_torch's docstring)."""
    names = sorted(n for n in params if ft.is_trainable(n, case))
    p = {n: t.clone() for n, t in params.items()}
    m = {n: torch.zeros_like(p[n]) for n in names}
    v = {n: torch.zeros_like(p[n]) for n in names}
    for t in range(1, case["steps"] + 1):
        leaves = {n: p[n].clone().requires_grad_(True) for n in names}
        _, logits = ft.forward({**p, **leaves}, cfg, case, case["x"][t - 1], ft.batch_lengths(case, t - 1))
        loss, _ = ft.loss_and_accuracy(logits, case["y"][t - 1], case["n_cls"])
        g = dict(zip(names, torch.autograd.grad(loss, [leaves[n] for n in names])))
        norm = torch.sqrt(sum((gi ** 2).sum() for gi in g.values())).item()
        scale = min(1.0, 1.0 / (norm + 1e-6))
        for n in names:
            gi = g[n] * scale
            m[n] = 0.9 * m[n] + 0.1 * gi
            v[n] = 0.999 * v[n] + 0.001 * gi ** 2
            p[n] = p[n] - case["lr"] / (1 - 0.9 ** t) * m[n] / (v[n].sqrt() / (1 - 0.999 ** t) ** 0.5 + 1e-8)
    return {n: p[n] for n in names}


def selftest():
    torch.manual_seed(0)
    failures = []

    def check(what, err, tol):
        ok = err <= tol
        print(f"{'ok  ' if ok else 'FAIL'} {what}: {err:.3e} (tol {tol:g})")
        if not ok:
            failures.append(what)

    x = torch.randn(3, 5, 8, dtype=ft.DT)
    w, b = 1 + 0.1 * torch.randn(8, dtype=ft.DT), torch.randn(8, dtype=ft.DT)
    check("layer_norm vs F.layer_norm",
          (ft.layer_norm(x, w, b, 1e-5) - F.layer_norm(x, (8,), w, b, 1e-5)).abs().max().item(), 1e-12)
    check("gelu_new vs F.gelu(tanh)",
          (ft.gelu_new(3 * x) - F.gelu(3 * x, approximate="tanh")).abs().max().item(), 1e-12)

    wa, ba = 0.3 * torch.randn(8, 24, dtype=ft.DT), 0.1 * torch.randn(24, dtype=ft.DT)
    wp, bp = 0.3 * torch.randn(8, 8, dtype=ft.DT), 0.1 * torch.randn(8, dtype=ft.DT)
    causal = torch.triu(torch.ones(5, 5, dtype=torch.bool), diagonal=1)  # True = may not attend
    ref, _ = F.multi_head_attention_forward(
        x.transpose(0, 1), x.transpose(0, 1), x.transpose(0, 1), 8, 2, wa.t(), ba, None, None, False,
        0.0, wp.t(), bp, training=False, need_weights=False, attn_mask=causal)
    check("attention vs F.multi_head_attention_forward",
          (ft.attention(x, wa, ba, wp, bp, 2) - ref.transpose(0, 1)).abs().max().item(), 1e-12)

    for kind in (["--d-in", "3"], ["--vocab", "4"]):
        cfg, params, case = small_problem(kind + ["--full", "1"])
        probe = ["in/weight", "wpe/weight", "h/0/ln_1/weight", "h/0/attn/c_attn/weight",
                 "h/1/mlp/c_fc/bias", "ln_f/bias", "out/weight"]

        def loss_of(*ts):
            _, logits = ft.forward({**params, **dict(zip(probe, ts))}, cfg, case, case["x"][0])
            return ft.loss_and_accuracy(logits, case["y"][0], case["n_cls"])[0]

        leaves = [params[n].clone().requires_grad_(True) for n in probe]
        ok = torch.autograd.gradcheck(loss_of, leaves, eps=1e-6, atol=1e-8, rtol=1e-6, raise_exception=False)
        check(f"gradcheck {kind[0]} ({', '.join(probe)})", 0.0 if ok else 1.0, 0.0)

        res = ft.run(cfg, {n: t.clone() for n, t in params.items()}, {**case, "full": 0})
        expect = sorted(n for n in params if ft.group_of(n) not in ("attn", "ff"))
        check(f"default trainable set {kind[0]}", 0.0 if sorted(res["grads"]) == expect else 1.0, 0.0)

        res = ft.run(cfg, {n: t.clone() for n, t in params.items()}, case)
        hand = manual_training(cfg, params, case)
        # Not 1e-15: the key bias has an analytically zero gradient, so Adam turns its ~1e-19
        # rounding noise into ~1e-11 moves that differ between the two summation orders.
        check(f"torch clip+Adam vs hand-written {kind[0]}",
              max((res["params"][n] - hand[n]).abs().max().item() for n in hand), 1e-9)
        moved = max((res["params"][n] - params[n]).abs().max().item() for n in hand)
        check(f"training moved parameters {kind[0]} (0 = yes)", float(moved < 1e-3), 0.0)

    # Tied language model: the reference's head is GPT-2's, and wte's gradient has both paths.
    cfg, params, case = small_problem(["--vocab", "6", "--tied", "1", "--full", "1"])
    x0, y0 = case["x"][0], case["y"][0]
    hidden, logits = ft.forward(params, cfg, case, x0)
    by_hand = torch.einsum("btc,vc->btv", hidden, params["wte/weight"]).reshape(logits.shape)
    check("tied logits = ln_f(h) . wte^T at every position", (logits - by_hand).abs().max().item(), 1e-12)
    check("tied: no in/* or out/* tensors", float(any(n.startswith(("in/", "out/")) for n in params)), 0.0)
    probe = ["wte/weight", "wpe/weight", "h/0/ln_1/weight", "h/1/attn/c_attn/weight", "h/0/mlp/c_proj/bias",
             "ln_f/weight"]

    def tied_loss(*ts):
        _, lg = ft.forward({**params, **dict(zip(probe, ts))}, cfg, case, x0)
        return ft.loss_and_accuracy(lg, y0, case["n_cls"])[0]

    leaves = [params[n].clone().requires_grad_(True) for n in probe]
    ok = torch.autograd.gradcheck(tied_loss, leaves, eps=1e-6, atol=1e-8, rtol=1e-6, raise_exception=False)
    check(f"gradcheck tied ({', '.join(probe)})", 0.0 if ok else 1.0, 0.0)
    # Untie by hand: one copy for the lookup, one for the head. The tied gradient is their sum,
    # and each path alone is far from it (so a reference missing either would be caught).
    w_in = params["wte/weight"].clone().requires_grad_(True)
    w_out = params["wte/weight"].clone().requires_grad_(True)
    h = ft.backbone(params, cfg, w_in[x0])
    loss = ft.loss_and_accuracy((h @ w_out.t()).reshape(x0.shape[0], -1), y0, case["n_cls"])[0]
    g_in, g_out = torch.autograd.grad(loss, [w_in, w_out])
    w = params["wte/weight"].clone().requires_grad_(True)
    g = torch.autograd.grad(tied_loss(w, *[params[n] for n in probe[1:]]), [w])[0]
    check("tied wte gradient = lookup path + head path", (g - g_in - g_out).abs().max().item(), 1e-12)
    check("each path alone is off by > 10% (0 = yes)",
          float(min((g - g_in).abs().max().item(), (g - g_out).abs().max().item()) < 0.1 * g.abs().max().item()), 0.0)
    res = ft.run(cfg, {n: t.clone() for n, t in params.items()}, {**case, "full": 0})
    expect = sorted(n for n in params if ft.group_of(n) not in ("attn", "ff"))
    check("tied default trainable set includes wte/weight",
          0.0 if sorted(res["grads"]) == expect and "wte/weight" in expect else 1.0, 0.0)
    res = ft.run(cfg, {n: t.clone() for n, t in params.items()}, case)
    hand = manual_training(cfg, params, case)
    check("tied torch clip+Adam vs hand-written",
          max((res["params"][n] - hand[n]).abs().max().item() for n in hand), 1e-9)

    print("selftest", "FAILED: " + ", ".join(failures) if failures else "passed")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", nargs="?")
    ap.add_argument("model", nargs="?")
    ap.add_argument("-o", "--out")
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    ap.add_argument("--selftest", action="store_true")
    a = ap.parse_args()
    if a.selftest:
        return selftest()
    if not (a.case and a.model and a.out):
        ap.error("need CASE.h5 MODEL.h5 -o REF.h5 (or --selftest)")
    torch.set_num_threads(1)  # deterministic reductions, so reruns give bit-identical files
    cfg, params, case = load_all(a.case, a.model)
    ft.FROZEN_BF16 = bool(case["frozen_bf16"])
    dt = getattr(torch, a.dtype)
    params = {n: t.to(dt) for n, t in params.items()}
    if not case["vocab"]:
        case["x"] = case["x"].to(dt)
    write_results(a.out, ft.run(cfg, params, case))
    return 0


if __name__ == "__main__":
    sys.exit(main())
