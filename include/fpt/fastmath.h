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

#endif
