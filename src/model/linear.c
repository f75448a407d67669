#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/kernels.h"

static void bias_rows(float *out, const float *b, int N, int OC) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < N; i++)
    memcpy(out + (size_t)i * OC, b, sizeof(float) * OC);
}

void linear_forward(float *out, const float *inp, const float *w, const float *b, int N, int IC,
                    int OC) {
  linear_forward_bf(out, inp, w, NULL, b, N, IC, OC);
}

void linear_forward_bf(float *out, const float *inp, const float *w, const fpt_bf16_matrix *bf,
                       const float *b, int N, int IC, int OC) {
  // A packed copy adds the bias as it stores C; OpenBLAS gets it copied into
  // C first, then beta = 1. Both round acc + bias once: the same bits.
  if (bf) {
    fpt_gemm_bf16_nn_cols(N, 0, OC, IC, inp, IC, bf, b, 0.0f, out, OC);
    return;
  }
  if (b)
    bias_rows(out, b, N, OC);
  fpt_gemm(0, 0, N, OC, IC, 1.0f, inp, IC, w, OC, b ? 1.0f : 0.0f, out, OC);
}

void linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                     const float *w, int N, int IC, int OC) {
  linear_backward_bf(dinp, dw, db, dout, inp, w, NULL, N, IC, OC);
}

void linear_backward_bf(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const fpt_bf16_matrix *bf, int N, int IC, int OC) {
  if (bf && dw) {
    fprintf(stderr, "fpt: internal error: a bf16 copy of a trainable matrix\n");
    abort();
  }
  if (dinp && bf)
    fpt_gemm_bf16_nt(N, OC, IC, dout, OC, bf, 0.0f, dinp, IC);
  else if (dinp)
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
