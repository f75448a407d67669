#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fpt/kernels.h"

#define GELU_K 0.7978845608028654f // sqrt(2/pi)
#define GELU_A 0.044715f

// exp(x) for |x| <= 80, vectorisable (no libm call): 2^k * p(r) with
// r = x - k ln2 in [-ln2/2, ln2/2]; relative error about 2 ulp.
static inline float exp_fast(float x) {
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
  int32_t bits = ((int32_t)k + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// 0.5 (1 + tanh(u)) = sigmoid(2u): one exp instead of a tanh.
static inline float gelu_sigma(float x, float *du) {
  float x2 = x * x;
  float u = GELU_K * (x + GELU_A * x2 * x);
  *du = GELU_K * (1.0f + 3.0f * GELU_A * x2);
  return 1.0f / (1.0f + exp_fast(-2.0f * u));
}

// Plain loops over chunks, so that the compiler vectorises the math; the
// OpenMP loop hands out whole chunks.
#define GELU_CHUNK 4096

static void gelu_fwd_chunk(float *restrict out, const float *restrict inp, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float du;
    out[i] = inp[i] * gelu_sigma(inp[i], &du);
  }
}

static void gelu_bwd_chunk(float *restrict dinp, const float *restrict inp,
                           const float *restrict dout, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float du, x = inp[i];
    float s = gelu_sigma(x, &du);
    dinp[i] = (s + 2.0f * x * s * (1.0f - s) * du) * dout[i];
  }
}

void gelu_forward(float *out, const float *inp, size_t n) {
  long nc = (long)((n + GELU_CHUNK - 1) / GELU_CHUNK);
#pragma omp parallel for schedule(static)
  for (long c = 0; c < nc; c++) {
    size_t s = (size_t)c * GELU_CHUNK, e = s + GELU_CHUNK < n ? s + GELU_CHUNK : n;
    gelu_fwd_chunk(out + s, inp + s, e - s);
  }
}

void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
  long nc = (long)((n + GELU_CHUNK - 1) / GELU_CHUNK);
#pragma omp parallel for schedule(static)
  for (long c = 0; c < nc; c++) {
    size_t s = (size_t)c * GELU_CHUNK, e = s + GELU_CHUNK < n ? s + GELU_CHUNK : n;
    gelu_bwd_chunk(dinp + s, inp + s, dout + s, e - s);
  }
}
