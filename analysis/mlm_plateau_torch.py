#!/usr/bin/python3
"""Masked-byte pretraining in plain PyTorch, independent of fpt's C code: does a
small bidirectional encoder leave the unigram plateau within the budget that
`fpt pretrain --objective mlm` gets? (docs/RESULTS.md, "The mlm backbone").

  analysis/mlm_plateau_torch.py [STEPS]      # default 800; prints train and val loss every 100 steps

The shape of the tiny check beside it: 2 pre-LN encoder layers of 64, 4 heads,
learned positions, exact GELU, LayerNorm eps 1e-6, the byte table tied to the
logits (256 bytes + a mask id), BERT's 15 % / 80-10-10 masking, Adam lr 1e-3
with 100 warm-up steps and cosine decay to 1e-4, clip 1.0, batch 16 x 256
bytes of data/corpus/text.h5 (its first 20,000 training windows), loss on the
chosen bytes only. Val: 256 windows with one fixed masking. Debian's
/usr/bin/python3 with python3-torch and python3-h5py.
"""
import h5py, math, sys, torch, torch.nn as nn, torch.nn.functional as F
torch.manual_seed(1); torch.set_num_threads(1)
L, C, H, T, B, STEPS = 2, 64, 4, 256, 16, int(sys.argv[1]) if len(sys.argv) > 1 else 800
import os
f = h5py.File(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "corpus", "text.h5"), "r"); X = torch.from_numpy(f["train/x"][:20000]).long(); V = torch.from_numpy(f["val/x"][:256]).long()
MASK = 256
class Block(nn.Module):
    def __init__(s):
        super().__init__(); s.ln1 = nn.LayerNorm(C, eps=1e-6); s.att = nn.MultiheadAttention(C, H, batch_first=True); s.ln2 = nn.LayerNorm(C, eps=1e-6)
        s.fc = nn.Linear(C, 4 * C); s.pr = nn.Linear(4 * C, C)
    def forward(s, x):
        h = s.ln1(x); x = x + s.att(h, h, h, need_weights=False)[0]
        return x + s.pr(F.gelu(s.fc(s.ln2(x))))
class M(nn.Module):
    def __init__(s):
        super().__init__(); s.wte = nn.Embedding(257, C); s.wpe = nn.Embedding(T, C); s.blocks = nn.ModuleList(Block() for _ in range(L)); s.lnf = nn.LayerNorm(C, eps=1e-6)
        for p in s.parameters():
            if p.dim() > 1: nn.init.normal_(p, 0, 0.02)
    def forward(s, ids):
        x = s.wte(ids) + s.wpe.weight[None]
        for b in s.blocks: x = b(x)
        return s.lnf(x) @ s.wte.weight.T
def mask(ids, g):
    ids = ids.clone(); u = torch.rand(ids.shape, generator=g); v = torch.rand(ids.shape, generator=g)
    y = torch.where(u < 0.15, ids, torch.full_like(ids, -1)); m = (u < 0.15) & (v < 0.8); r = (u < 0.15) & (v >= 0.8) & (v < 0.9)
    ids[m] = MASK; ids[r] = torch.randint(0, 256, (int(r.sum()),), generator=g); return ids, y
m = M(); opt = torch.optim.Adam(m.parameters(), lr=1e-3); g = torch.Generator().manual_seed(1)
sched = lambda s: (s + 1) / 100 if s < 100 else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - 100) / (STEPS - 100)))
for step in range(STEPS):
    for pg in opt.param_groups: pg["lr"] = 1e-3 * sched(step)
    ids, y = mask(X[torch.randint(0, len(X), (B,), generator=g)], g)
    loss = F.cross_entropy(m(ids).reshape(-1, 257), y.reshape(-1), ignore_index=-1)
    opt.zero_grad(); loss.backward(); nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step()
    if (step + 1) % 100 == 0:
        with torch.no_grad():
            vi, vy = mask(V, torch.Generator().manual_seed(7)); vl = F.cross_entropy(m(vi).reshape(-1, 257), vy.reshape(-1), ignore_index=-1)
        print(f"step {step+1} train {loss.item():.4f} val {vl.item():.4f}", flush=True)
