#include <math.h>

#include "fpt/kernels.h"

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *w, const float *b, int N, int C,
                       float eps) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < N; i++) {
    const float *x = inp + (size_t)i * C;
    float *y = out + (size_t)i * C;
    float m = 0.0f;
    for (int c = 0; c < C; c++)
      m += x[c];
    m /= C;
    float v = 0.0f;
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

void layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                        const float *inp, const float *w, const float *mean,
                        const float *rstd, int N, int C) {
  if (dinp) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
      const float *x = inp + (size_t)i * C, *dy = dout + (size_t)i * C;
      float *dx = dinp + (size_t)i * C;
      float m = mean[i], s = rstd[i];
      float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
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
    // Parallel over channels so that the reduction order is fixed.
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
      double sw = 0, sb = 0;
      for (int i = 0; i < N; i++) {
        float dy = dout[(size_t)i * C + c];
        sw += (double)dy * ((inp[(size_t)i * C + c] - mean[i]) * rstd[i]);
        sb += dy;
      }
      if (dw)
        dw[c] += (float)sw;
      if (db)
        db[c] += (float)sb;
    }
  }
}
