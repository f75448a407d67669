#include <math.h>

#include "fpt/kernels.h"

#define GELU_K 0.7978845608028654f // sqrt(2/pi)
#define GELU_A 0.044715f

// exp(x) for |x| <= 80, vectorisable (no libm call): 2^k * p(r) with
// r = x - k ln2 in [-ln2/2, ln2/2]; relative error about 2 ulp.
static inline float exp_fast(float x) {
  x = x < -80.0f ? -80.0f : (x > 80.0f ? 80.0f : x);
  float k = floorf(x * 1.44269504088896341f + 0.5f);
  float r = x - k * 0.693145751953125f - k * 1.428606765330187e-06f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  union {
    int i;
    float f;
  } s = {((int)k + 127) << 23};
  return p * s.f;
}

// 0.5 (1 + tanh(u)) = sigmoid(2u): one exp instead of a tanh.
static inline float gelu_sigma(float x, float *du) {
  float x2 = x * x;
  float u = GELU_K * (x + GELU_A * x2 * x);
  *du = GELU_K * (1.0f + 3.0f * GELU_A * x2);
  return 1.0f / (1.0f + exp_fast(-2.0f * u));
}

void gelu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; i++) {
    float du;
    out[i] = inp[i] * gelu_sigma(inp[i], &du);
  }
}

void gelu_backward(float *dinp, const float *inp, const float *dout,
                   size_t n) {
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; i++) {
    float du, x = inp[i];
    float s = gelu_sigma(x, &du);
    dinp[i] = (s + 2.0f * x * s * (1.0f - s) * du) * dout[i];
  }
}
