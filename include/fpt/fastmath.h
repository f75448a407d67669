#ifndef FPT_FASTMATH_H
#define FPT_FASTMATH_H

#include <stdint.h>
#include <string.h>

// exp(x) for |x| <= 80, vectorisable (no libm call): 2^k * p(r) with
// r = x - k ln2 in [-ln2/2, ln2/2]; relative error about 2 ulp. NaN in,
// NaN out.
static inline float fpt_exp_fast(float x) {
  x = x < -80.0f ? -80.0f : (x > 80.0f ? 80.0f : x);
  // Round to nearest by the 1.5 * 2^23 trick (floorf does not vectorise).
  float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - k * 0.693145751953125f - k * 1.428606765330187e-06f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // A NaN input gives a NaN through p; its k must not reach the int
  // conversion (undefined behaviour), so a select makes it 0.
  int32_t bits = ((int32_t)(k == k ? k : 0.0f) + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// exp(z) for a softmax's z = score - row max <= 0, and 0 below -64: such a
// weight is under e^-64 = 1.6e-28 of the row's largest, twenty orders below
// float's rounding (2^-24), so no output can resolve it; kept, it is a tiny
// number whose products with other small values are subnormal, and an Intel
// core takes a microcode assist on each (the image backbone's step ran 1.6x
// slower). A select, not the MXCSR's flush-to-zero: OpenBLAS's threads do not
// inherit that, so results would depend on the thread count.
static inline float fpt_softmax_exp(float z) { return z < -64.0f ? 0.0f : fpt_exp_fast(z); }

// c[0] + c[1] x + ... + c[n-1] x^(n-1) by Horner; n is a constant at every
// call, so the loop unrolls and the caller's loop still vectorises.
static inline float fpt_poly(float x, const float *c, int n) {
  float p = c[n - 1];
  for (int i = n - 2; i >= 0; i--)
    p = p * x + c[i];
  return p;
}

// erf(x), vectorisable (no libm call, no branch): x + x P1(x^2) below
// |x| = 0.921875, 1 - exp(-x^2) P2(x) above, 1 past 3.92 where erf rounds to 1
// in float. Within about 2 ulp of erf over all floats (unit_test_kernels
// measures it); NaN in, NaN out. Coefficients: tests/unit/fit_erf.py.
static inline float fpt_erf_fast(float x) {
  static const float P1[7] = {1.283791661e-01f,  -3.761263490e-01f, 1.128369570e-01f,
                              -2.685939893e-02f, 5.201031920e-03f,  -8.142702864e-04f,
                              8.370094292e-05f};
  static const float P2[12] = {2.168443799e-01f,  -1.175950766e-01f, 6.052215025e-02f,
                               -2.974457480e-02f, 1.402147301e-02f,  -6.372681819e-03f,
                               2.825534670e-03f,  -1.195958932e-03f, 4.403585626e-04f,
                               -1.836003066e-04f, 1.203272404e-04f,  -4.354215707e-05f};
  float ax = x < 0.0f ? -x : x;
  float small = ax + ax * fpt_poly(ax * ax, P1, 7);
  // A comparison with NaN is false, so a NaN stays a NaN here and below.
  float c = ax > 3.92f ? 3.92f : ax;
  float q = fpt_poly((c - 2.420937538f) * 6.670836210e-01f, P2, 12);
  float large = 1.0f - fpt_exp_fast(-c * c) * q;
  float r = ax < 0.921875f ? small : large;
  return x < 0.0f ? -r : r;
}

#endif
