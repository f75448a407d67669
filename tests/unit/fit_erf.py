#!/usr/bin/python3
"""Regenerates the erf coefficients of include/fpt/fastmath.h (fpt_erf_fast).

Two pieces, chosen so that float evaluation stays within about one ulp:
  |x| <  A: erf(x) = x + x * P1(x^2)                (odd series, relative error)
  |x| >= A: erf(x) = 1 - exp(-x^2) * P2((x - M) * S) (erfc(x) exp(x^2) is smooth)
Both are near-minimax fits of the relative error (Lawson's iteratively
reweighted least squares) against mpmath at 40 digits.  Past B erf rounds to 1
in float.  Prints the constants and the fits' errors with float coefficients.
  /usr/bin/python3 tests/unit/fit_erf.py
"""
import mpmath as mp
import numpy as np

mp.mp.dps = 40
A, B = 0.921875, 3.92
f32 = lambda v: float(np.float32(v))
M = f32((A + B) / 2)
S = f32(2 / (B - A))


def lawson(V, y, offset=0.0, iters=40):
    """Coefficients c minimising max |offset + V c - y| / |y|."""
    w = np.ones(len(y))
    for _ in range(iters):
        W = np.sqrt(w) / np.abs(y)
        c = np.linalg.lstsq(V * W[:, None], (y - offset) * W, rcond=None)[0]
        e = (offset + V @ c - y) / np.abs(y)
        w = w * np.abs(e)
        w /= w.sum()
    return c


def nodes(lo, hi, n=4000):
    return np.cos(np.pi * (np.arange(n) + 0.5) / n) * (hi - lo) / 2 + (hi + lo) / 2


def p1():
    s = nodes(0.0, A * A)
    y = np.array([float(mp.erf(mp.sqrt(v)) / mp.sqrt(v)) for v in s])
    # erf(x) = x + x R(x^2), as fdlibm does: R(0) = 2/sqrt(pi) - 1 in float is
    # ten times closer, relative to erf(x)/x, than 2/sqrt(pi) in float.
    V = np.vander(s, 7, increasing=True)
    c = lawson(V, y, offset=1.0)
    c = c.astype(np.float32).astype(np.float64)
    return c, np.max(np.abs((1 + V @ c - y) / y))


def p2():
    x = nodes(A, B)
    y = np.array([float(mp.erfc(v) * mp.exp(mp.mpf(v) ** 2)) for v in x])
    V = np.vander((x - M) * S, 12, increasing=True)
    c = lawson(V, y).astype(np.float32).astype(np.float64)
    return c, np.max(np.abs((V @ c - y) / y))


def main():
    c1, e1 = p1()
    c2, e2 = p2()
    print(f"// P1: relative error {e1:.2e}; P2: {e2:.2e} (float coefficients, exact arithmetic)")
    print(f"A {A!r}f  B {B!r}f  M {M:.9e}f  S {S:.9e}f")
    print("P1", ", ".join(f"{v:.9e}f" for v in c1))
    print("P2", ", ".join(f"{v:.9e}f" for v in c2))


if __name__ == "__main__":
    main()
