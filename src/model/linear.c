#include <string.h>

#include "fpt/kernels.h"

void linear_forward(float *out, const float *inp, const float *w, const float *b, int N, int IC,
                    int OC) {
  // Bias first, then beta=1: the add is fused into the GEMM.
  if (b) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++)
      memcpy(out + (size_t)i * OC, b, sizeof(float) * OC);
  }
  fpt_gemm(0, 0, N, OC, IC, 1.0f, inp, IC, w, OC, b ? 1.0f : 0.0f, out, OC);
}

void linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                     const float *w, int N, int IC, int OC) {
  if (dinp)
    fpt_gemm(0, 1, N, IC, OC, 1.0f, dout, OC, w, OC, 0.0f, dinp, IC);
  if (dw)
    fpt_gemm(1, 0, IC, OC, N, 1.0f, inp, IC, dout, OC, 1.0f, dw, OC);
  if (db) {
#pragma omp parallel for schedule(static)
    for (int o = 0; o < OC; o++) {
      double s = 0;
      for (int i = 0; i < N; i++)
        s += dout[(size_t)i * OC + o];
      db[o] += (float)s;
    }
  }
}
