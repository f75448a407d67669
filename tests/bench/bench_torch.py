#!/usr/bin/python3
"""The PyTorch peer of `fpt bench`: the identical FPT training step (GPT-2-base
shape, frozen attention and MLP, trainable input/output layers, LayerNorms and
positions, dropout 0.1, global-norm clip 1.0, Adam) in plain float32 PyTorch.

    tests/bench/bench_torch.py [--threads 2] [--policy passive|default] [--steps 10]
        [--blas-kernel NAME] [--full 1] [--eval-samples N] [shape options as fpt bench]

Thread settings and the OpenBLAS kernel must be in the environment before
torch is imported, so the script re-executes itself with them. The kernel is
the one `fpt --version` reports for this machine (from --fpt, default
build/fpt), so that both sides run the same OpenBLAS kernel: Debian's
OpenBLAS falls back to SSE3 "Prescott" on CPUs it does not know. A user's own
OPENBLAS_CORETYPE wins. --full 1 trains every weight; --eval-samples N also
times a no-grad evaluation pass over N samples (eval_ms=<x>). The last line
is median_ms_per_step=<x>, as for `fpt bench`.
"""
import argparse
import math
import os
import statistics
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--policy", choices=["passive", "default"], default="passive")
ap.add_argument("--steps", type=int, default=10)
ap.add_argument("--warmup", type=int, default=2)
ap.add_argument("--layers", type=int, default=12)
ap.add_argument("--d-model", type=int, default=768)
ap.add_argument("--heads", type=int, default=12)
ap.add_argument("--batch-size", type=int, default=16)
ap.add_argument("--seq", type=int, default=64)
ap.add_argument("--d-in", type=int, default=48)
ap.add_argument("--classes", type=int, default=10)
ap.add_argument("--full", type=int, choices=(0, 1), default=0)
ap.add_argument("--kind", choices=("gpt2", "lstm"), default="gpt2")
ap.add_argument("--impl", choices=("ln", "nn"), default="ln",
                help="lstm: the paper's LN-LSTM in PyTorch ops (ln), or torch.nn.LSTM (nn, no LayerNorms)")
ap.add_argument("--eval-samples", type=int, default=0)
ap.add_argument("--blas-kernel", help="OPENBLAS_CORETYPE for torch's OpenBLAS (default: ask --fpt)")
ap.add_argument("--fpt", default="build/fpt", help="fpt binary that names this machine's kernel")
args = ap.parse_args()


def fpt_kernel():
    """The kernel fpt runs on this machine (its --version), or None."""
    import subprocess
    try:
        out = subprocess.run([args.fpt, "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return None
    got = [l.split("=", 1)[1] for l in out.splitlines() if l.startswith("blas_kernel=")]
    return got[0] if got else None


want = {"OPENBLAS_NUM_THREADS": str(args.threads), "OMP_NUM_THREADS": str(args.threads)}
if "FPT_BENCH_CHILD" not in os.environ and "OPENBLAS_CORETYPE" not in os.environ:
    kernel = args.blas_kernel or fpt_kernel()
    if kernel:
        want["OPENBLAS_CORETYPE"] = kernel
    else:
        print(f"warning: {args.fpt} not found: OpenBLAS picks its own kernel", file=sys.stderr)
if args.policy == "passive":
    want["OMP_WAIT_POLICY"] = "PASSIVE"
if any(os.environ.get(k) != v for k, v in want.items()) and "FPT_BENCH_CHILD" not in os.environ:
    env = dict(os.environ, FPT_BENCH_CHILD="1", **want)
    if args.policy == "default":
        env.pop("OMP_WAIT_POLICY", None)
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(args.threads)


def blas_kernel():
    """The kernel of the OpenBLAS that torch loaded (through libblas.so.3)."""
    import ctypes
    for line in open("/proc/self/maps"):
        path = line.split()[-1]
        if "libopenblas" in path:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib.openblas_get_corename().decode()
    return "none loaded"


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.attn_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.H, C // self.H).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // self.H)
        mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
        att = self.drop(att.masked_fill(~mask, -1e4).softmax(-1))
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.drop(self.attn_proj(y))
        return x + self.drop(self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh")))


class FPT(nn.Module):
    def __init__(self):
        super().__init__()
        C = args.d_model
        self.inp = nn.Linear(args.d_in, C)
        nn.init.orthogonal_(self.inp.weight, 1.41)
        nn.init.zeros_(self.inp.bias)
        self.wpe = nn.Parameter(0.02 * torch.randn(max(1024, args.seq), C))
        self.blocks = nn.ModuleList(Block(C, args.heads) for _ in range(args.layers))
        self.ln_f = nn.LayerNorm(C)
        self.out = nn.Linear(C, args.classes)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        h = self.drop(self.drop(self.inp(x)) + self.wpe[: x.shape[1]])
        for b in self.blocks:
            h = b(h)
        return self.out(self.ln_f(h[:, -1]))


class LNLSTMLayer(nn.Module):
    """The paper's LayerNormLSTM (unbiased LayerNorms, eps 1e-6, the normalised cell carried),
    one time step at a time as its code runs it, dropout on h."""

    def __init__(self, C):
        super().__init__()
        self.i2h, self.h2h = nn.Linear(C, 4 * C), nn.Linear(C, 4 * C)
        self.ln_i2h, self.ln_h2h, self.ln_cell = (nn.ParameterList([nn.Parameter(torch.ones(n)), nn.Parameter(torch.zeros(n))])
                                                   for n in (4 * C, 4 * C, C))
        self.drop = nn.Dropout(0.1)

    @staticmethod
    def ln(x, p):
        return (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + 1e-6) * p[0] + p[1]

    def forward(self, xs):
        B, T, C = xs.shape
        h = c = xs.new_zeros(B, C)
        ui = self.ln(self.i2h(xs), self.ln_i2h)  # every step's input projection at once
        ys = []
        for t in range(T):
            a = ui[:, t] + self.ln(self.h2h(h), self.ln_h2h)
            g = a[:, :3 * C].sigmoid()
            c = self.ln(g[:, C:2 * C] * c + g[:, :C] * a[:, 3 * C:].tanh(), self.ln_cell)
            h = self.drop(g[:, 2 * C:] * c.tanh())
            ys.append(h)
        return torch.stack(ys, 1)


class LSTMNet(nn.Module):
    def __init__(self):
        super().__init__()
        C = args.d_model
        self.inp = nn.Linear(args.d_in, C)
        if args.impl == "nn":
            self.rnn = nn.LSTM(C, C, args.layers, batch_first=True, dropout=0.1)
        else:
            self.rnn = nn.Sequential(*(LNLSTMLayer(C) for _ in range(args.layers)))
        self.out = nn.Linear(C, args.classes)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        h = self.drop(self.inp(x))
        h = self.rnn(h)[0] if args.impl == "nn" else self.rnn(h)
        return self.out(h[:, -1])


torch.manual_seed(0)
model = FPT() if args.kind == "gpt2" else LSTMNet()
for name, p in model.named_parameters():  # the paper's default trainable set
    frozen = ("c_attn", "attn_proj", "c_fc", "mlp_proj") if args.kind == "gpt2" else ("i2h", "h2h", "rnn.weight", "rnn.bias")
    p.requires_grad = bool(args.full) or not any(s in name for s in frozen)
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.Adam(params, lr=1e-3)
x = torch.rand(args.batch_size, args.seq, args.d_in)
y = torch.randint(0, args.classes, (args.batch_size,))
model.train()
times = []
for i in range(args.warmup + args.steps):
    t0 = time.perf_counter()
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    times.append(time.perf_counter() - t0)
med = statistics.median(times[args.warmup:])
B, T = args.batch_size, args.seq
if args.eval_samples:
    model.eval()
    xe = torch.rand(args.eval_samples, args.seq, args.d_in)
    evals = []
    for i in range(3):
        t0 = time.perf_counter()
        with torch.no_grad():
            for j in range(0, args.eval_samples, B):
                model(xe[j:j + B])
        evals.append(time.perf_counter() - t0)
    print(f"eval: {args.eval_samples} samples, median {statistics.median(evals) * 1e3:.1f} ms")
    print(f"eval_ms={statistics.median(evals) * 1e3:.3f}")
print(f"torch {torch.__version__}: {args.threads} threads, policy {args.policy}, BLAS kernel "
      f"{blas_kernel()}, {sum(p.numel() for p in params)} trainable parameters, last loss {loss.item():.4f}")
print(f"step: median {med * 1e3:.1f} ms over {args.steps} steps "
      f"(min {min(times[args.warmup:]) * 1e3:.1f}); {B * T / med:.1f} tokens/s")
print(f"median_ms_per_step={med * 1e3:.3f}")
