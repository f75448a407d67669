#include <math.h>
#include <stdlib.h>

#include "fpt/check.h"

#include "fpt/kernels.h"

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                       const float *b, int N, int C, float eps) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < N; i++) {
    const float *x = inp + (size_t)i * C;
    float *y = out + (size_t)i * C;
    float m = 0.0f;
#pragma omp simd reduction(+ : m)
    for (int c = 0; c < C; c++)
      m += x[c];
    m /= C;
    float v = 0.0f;
#pragma omp simd reduction(+ : v)
    for (int c = 0; c < C; c++) {
      float d = x[c] - m;
      v += d * d;
    }
    v /= C;
    float s = 1.0f / sqrtf(v + eps);
    for (int c = 0; c < C; c++)
      y[c] = (x[c] - m) * s * w[c] + b[c];
    mean[i] = m;
    rstd[i] = s;
  }
}

void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const float *mean, const float *rstd, int N, int C) {
  if (dinp) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
      const float *x = inp + (size_t)i * C, *dy = dout + (size_t)i * C;
      float *dx = dinp + (size_t)i * C;
      float m = mean[i], s = rstd[i];
      float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
#pragma omp simd reduction(+ : dnorm_mean, dnorm_norm_mean)
      for (int c = 0; c < C; c++) {
        float xhat = (x[c] - m) * s, dn = w[c] * dy[c];
        dnorm_mean += dn;
        dnorm_norm_mean += dn * xhat;
      }
      dnorm_mean /= C;
      dnorm_norm_mean /= C;
      for (int c = 0; c < C; c++) {
        float xhat = (x[c] - m) * s, dn = w[c] * dy[c];
        dx[c] += (dn - dnorm_mean - xhat * dnorm_norm_mean) * s;
      }
    }
  }
  if (dw || db) {
    // Row chunks of fixed size, summed in chunk order: cache-friendly, and the
    // result does not depend on the number of threads.
    enum { CH = 64 };
    int nch = (N + CH - 1) / CH;
    double *part = fpt_calloc((size_t)nch * 2 * C, sizeof(double));
#pragma omp parallel for schedule(static)
    for (int k = 0; k < nch; k++) {
      double *pw = part + (size_t)k * 2 * C, *pb = pw + C;
      int e = (k + 1) * CH < N ? (k + 1) * CH : N;
      for (int i = k * CH; i < e; i++) {
        const float *dy = dout + (size_t)i * C, *x = inp + (size_t)i * C;
        float m = mean[i], s = rstd[i];
        for (int c = 0; c < C; c++) {
          pw[c] += (double)dy[c] * ((x[c] - m) * s);
          pb[c] += dy[c];
        }
      }
    }
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
      double sw = 0, sb = 0;
      for (int k = 0; k < nch; k++) {
        sw += part[(size_t)k * 2 * C + c];
        sb += part[(size_t)k * 2 * C + C + c];
      }
      if (dw)
        dw[c] += (float)sw;
      if (db)
        db[c] += (float)sb;
    }
    free(part);
  }
}
