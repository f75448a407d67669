#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/kernels.h"

// Each (sample, head) pair is one task; OpenBLAS does not thread these small
// GEMMs, so the pairs are spread over the OpenMP threads instead.

void attention_forward(float *out, float *att, const float *qkv, int B, int T, int q0, int C,
                       int NH, const fpt_dropout *d, uint32_t site) {
  int hs = C / NH, Tq = T - q0, C3 = 3 * C;
  float scale = 1.0f / sqrtf((float)hs);
  int drop = d && d->p > 0.0f;
#pragma omp parallel
  {
    float *pd = drop ? fpt_alloc_floats((size_t)Tq * T) : NULL;
#pragma omp for schedule(static)
    for (int bh = 0; bh < B * NH; bh++) {
      int b = bh / NH, h = bh % NH;
      const float *q = qkv + ((size_t)b * T + q0) * C3 + h * hs;
      const float *k = qkv + (size_t)b * T * C3 + C + h * hs;
      const float *v = k + C;
      float *p = att + (size_t)bh * Tq * T;
      fpt_gemm1(0, 1, Tq, T, hs, scale, q, C3, k, C3, 0.0f, p, T);
      for (int i = 0; i < Tq; i++) {
        float *row = p + (size_t)i * T;
        int n = q0 + i + 1; // keys 0..q0+i are visible
        float mx = row[0];
        for (int j = 1; j < n; j++)
          mx = row[j] > mx ? row[j] : mx;
        float sum = 0.0f;
        for (int j = 0; j < n; j++) {
          row[j] = expf(row[j] - mx);
          sum += row[j];
        }
        float inv = 1.0f / sum;
        for (int j = 0; j < n; j++)
          row[j] *= inv;
        memset(row + n, 0, sizeof(float) * (T - n));
      }
      const float *pv = p;
      if (drop) {
        memcpy(pd, p, sizeof(float) * Tq * T);
        int64_t one = d->sample[b];
        fpt_dropout db = *d;
        db.sample = &one;
        // Element index of the mask: (head, query, key) of the full T x T map.
        dropout_apply(pd, &db, site, 1, Tq, h * T + q0, T);
        pv = pd;
      }
      fpt_gemm1(0, 0, Tq, hs, T, 1.0f, pv, T, v, C3, 0.0f, out + (size_t)b * Tq * C + h * hs, C);
    }
    free(pd);
  }
}

void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, int B,
                        int T, int q0, int C, int NH, const fpt_dropout *d, uint32_t site) {
  int hs = C / NH, Tq = T - q0, C3 = 3 * C;
  float scale = 1.0f / sqrtf((float)hs);
  int drop = d && d->p > 0.0f;
#pragma omp parallel
  {
    float *dp = fpt_alloc_floats((size_t)Tq * T);
    float *pd = drop ? fpt_alloc_floats((size_t)Tq * T) : NULL;
#pragma omp for schedule(static)
    for (int bh = 0; bh < B * NH; bh++) {
      int b = bh / NH, h = bh % NH;
      const float *q = qkv + ((size_t)b * T + q0) * C3 + h * hs;
      const float *k = qkv + (size_t)b * T * C3 + C + h * hs;
      const float *v = k + C;
      float *dq = dqkv + (size_t)b * T * C3 + h * hs;
      float *dk = dq + C, *dv = dq + 2 * C;
      const float *p = att + (size_t)bh * Tq * T;
      const float *dy = dout + (size_t)b * Tq * C + h * hs;
      int64_t one = d ? d->sample[b] : 0;
      fpt_dropout db;
      if (drop) {
        db = *d;
        db.sample = &one;
      }
      // dPd = dY V^T
      fpt_gemm1(0, 1, Tq, T, hs, 1.0f, dy, C, v, C3, 0.0f, dp, T);
      const float *pv = p;
      if (drop) {
        memcpy(pd, p, sizeof(float) * Tq * T);
        dropout_apply(pd, &db, site, 1, Tq, h * T + q0, T);
        dropout_apply(dp, &db, site, 1, Tq, h * T + q0, T);
        pv = pd;
      }
      // dV = Pd^T dY
      fpt_gemm1(1, 0, T, hs, Tq, 1.0f, pv, T, dy, C, 0.0f, dv, C3);
      // Softmax backward, in place: dp becomes dS (scaled scores).
      for (int i = 0; i < Tq; i++) {
        const float *pr = p + (size_t)i * T;
        float *dr = dp + (size_t)i * T;
        int n = q0 + i + 1;
        float s = 0.0f;
        for (int j = 0; j < n; j++)
          s += pr[j] * dr[j];
        for (int j = 0; j < n; j++)
          dr[j] = pr[j] * (dr[j] - s) * scale;
        memset(dr + n, 0, sizeof(float) * (T - n));
      }
      for (int t = 0; t < q0; t++)
        memset(dq + (size_t)t * C3, 0, sizeof(float) * hs);
      fpt_gemm1(0, 0, Tq, hs, T, 1.0f, dp, T, k, C3, 0.0f, dq + (size_t)q0 * C3, C3);
      fpt_gemm1(1, 0, T, hs, Tq, 1.0f, dp, T, q, C3, 0.0f, dk, C3);
    }
    free(dp);
    free(pd);
  }
}
