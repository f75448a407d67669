#include <math.h>

#include "fpt/fastmath.h"
#include "fpt/kernels.h"

#define GELU_K 0.7978845608028654f // sqrt(2/pi)
#define GELU_A 0.044715f

// 0.5 (1 + tanh(u)) = sigmoid(2u): one exp instead of a tanh.
static inline float gelu_sigma(float x, float *du) {
  float x2 = x * x;
  float u = GELU_K * (x + GELU_A * x2 * x);
  *du = GELU_K * (1.0f + 3.0f * GELU_A * x2);
  return 1.0f / (1.0f + fpt_exp_fast(-2.0f * u));
}

// Plain loops over chunks, so that the compiler vectorises the math; the
// OpenMP loop hands out whole chunks.
#define GELU_CHUNK 4096

typedef void (*gelu_chunk_fn)(float *restrict out, const float *restrict inp,
                              const float *restrict dout, size_t n);

// f over [0, n) in chunks of GELU_CHUNK; dout is NULL for a forward.
static void for_chunks(gelu_chunk_fn f, float *out, const float *inp, const float *dout, size_t n) {
  long nc = (long)((n + GELU_CHUNK - 1) / GELU_CHUNK);
#pragma omp parallel for schedule(static)
  for (long c = 0; c < nc; c++) {
    size_t s = (size_t)c * GELU_CHUNK, e = s + GELU_CHUNK < n ? s + GELU_CHUNK : n;
    f(out + s, inp + s, dout ? dout + s : NULL, e - s);
  }
}

static void gelu_fwd_chunk(float *restrict out, const float *restrict inp,
                           const float *restrict dout, size_t n) {
  (void)dout;
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
  for_chunks(gelu_fwd_chunk, out, inp, NULL, n);
}

void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
  for_chunks(gelu_bwd_chunk, dinp, inp, dout, n);
}

// The exact GELU, x Phi(x) (torch.nn.functional.gelu's default, ViT's and
// BERT's). libm's erff does not vectorise and was 30-40 % of an encoder's
// training step; fpt_erf_fast is within 2 ulp of erf and does.
#define RSQRT2 0.70710678118654752f
#define RSQRT2PI 0.3989422804014327f

static void gelu_erf_fwd_chunk(float *restrict out, const float *restrict inp,
                               const float *restrict dout, size_t n) {
  (void)dout;
  for (size_t i = 0; i < n; i++)
    out[i] = 0.5f * inp[i] * (1.0f + fpt_erf_fast(inp[i] * RSQRT2));
}

static void gelu_erf_bwd_chunk(float *restrict dinp, const float *restrict inp,
                               const float *restrict dout, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float x = inp[i];
    float cdf = 0.5f * (1.0f + fpt_erf_fast(x * RSQRT2));
    float pdf = RSQRT2PI * fpt_exp_fast(-0.5f * x * x);
    dinp[i] = (cdf + x * pdf) * dout[i];
  }
}

void gelu_erf_forward(float *out, const float *inp, size_t n) {
  for_chunks(gelu_erf_fwd_chunk, out, inp, NULL, n);
}

void gelu_erf_backward(float *dinp, const float *inp, const float *dout, size_t n) {
  for_chunks(gelu_erf_bwd_chunk, dinp, inp, dout, n);
}

// The same with libm's erff and expf: the reference the tests hold the
// kernels above to.
void gelu_erf_forward_ref(float *out, const float *inp, size_t n) {
  for (size_t i = 0; i < n; i++)
    out[i] = 0.5f * inp[i] * (1.0f + erff(inp[i] * RSQRT2));
}

void gelu_erf_backward_ref(float *dinp, const float *inp, const float *dout, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float x = inp[i];
    float cdf = 0.5f * (1.0f + erff(x * RSQRT2));
    float pdf = RSQRT2PI * expf(-0.5f * x * x);
    dinp[i] = (cdf + x * pdf) * dout[i];
  }
}
