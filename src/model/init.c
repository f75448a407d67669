#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/model.h"
#include "fpt/rng.h"

// LAPACK (Fortran symbols; OpenBLAS ships them, Debian has no LAPACKE here).
void sgeqrf_(const int *m, const int *n, float *a, const int *lda, float *tau, float *work,
             const int *lwork, int *info);
void sorgqr_(const int *m, const int *n, const int *k, float *a, const int *lda, const float *tau,
             float *work, const int *lwork, int *info);

static fpt_stream init_stream(uint64_t seed, uint32_t tensor_id) {
  fpt_stream s = {seed, FPT_SITE_INIT, tensor_id, 0};
  return s;
}

void fpt_init_backbone_random(fpt_model *m, uint64_t seed) {
  for (int i = 0; i < m->n_tensors; i++) {
    fpt_tensor *t = &m->tensors[i];
    if (fpt_is_backbone(t) && !(m->frozen_readonly && !t->trainable))
      m->bb->init_tensor(m, t, seed);
  }
}

void fpt_init_backbone_like(fpt_model *m, const fpt_model *like, uint64_t seed) {
  for (int i = 0; i < m->n_tensors; i++) {
    fpt_tensor *t = &m->tensors[i];
    if (!fpt_is_backbone(t) || (m->frozen_readonly && !t->trainable))
      continue;
    const fpt_tensor *u = fpt_model_find((fpt_model *)like, t->name);
    double sum = 0, sq = 0;
    for (size_t j = 0; j < u->numel; j++) {
      sum += u->data[j];
      sq += (double)u->data[j] * u->data[j];
    }
    double mean = sum / u->numel;
    double var = u->numel > 1 ? (sq - sum * mean) / (u->numel - 1) : 0.0;
    double sd = var > 0 ? sqrt(var) : 0.0;
    fpt_stream s = init_stream(seed, (uint32_t)t->uid);
    for (size_t j = 0; j < t->numel; j++)
      t->data[j] = (float)(mean + sd * fpt_stream_normal(s, j));
  }
}

// As torch.nn.init.orthogonal_ on a (cols x rows) torch weight: QR of a
// Gaussian matrix, signs fixed by diag(R), then scaled. w is (rows, cols)
// row-major in our x.W layout, i.e. the transpose of torch's weight.
int fpt_orthogonal(float *w, int rows, int cols, float gain, uint64_t seed, uint32_t tensor_id) {
  int big = rows > cols ? rows : cols, small = rows > cols ? cols : rows;
  // a: big x small, column-major (LAPACK), filled from the stream.
  float *a = fpt_alloc_floats((size_t)big * small), *tau = fpt_alloc_floats(small);
  fpt_stream s = init_stream(seed, tensor_id);
  for (size_t j = 0; j < (size_t)big * small; j++)
    a[j] = (float)fpt_stream_normal(s, j);
  int info = 0, lwork = -1;
  float wq = 0;
  sgeqrf_(&big, &small, a, &big, tau, &wq, &lwork, &info);
  lwork = (int)wq + 1;
  float *work = fpt_alloc_floats((size_t)lwork);
  sgeqrf_(&big, &small, a, &big, tau, work, &lwork, &info);
  float *sign = fpt_alloc_floats(small);
  for (int k = 0; k < small && info == 0; k++)
    sign[k] = a[(size_t)k * big + k] < 0 ? -1.0f : 1.0f;
  if (info == 0)
    sorgqr_(&big, &small, &small, a, &big, tau, work, &lwork, &info);
  if (info == 0) {
    // Q is big x small with orthonormal columns; w gets Q or Q^T.
    for (int i = 0; i < big; i++)
      for (int k = 0; k < small; k++) {
        float q = gain * sign[k] * a[(size_t)k * big + i];
        if (rows >= cols)
          w[(size_t)i * cols + k] = q;
        else
          w[(size_t)k * cols + i] = q;
      }
  }
  free(a);
  free(tau);
  free(work);
  free(sign);
  FPT_ENSURE(info == 0, "orthogonal init: LAPACK QR failed (info %d)", info);
  return 0;
}

int fpt_init_wrapper(fpt_model *m, uint64_t seed, float orth_gain) {
  int C = m->cfg.n_embd;
  fpt_tensor *tin = fpt_model_find(m, m->task.tied ? "wte/weight" : "in/weight");
  if (!tin)
    goto head;
  uint32_t id_in = (uint32_t)tin->uid;
  if (m->task.tied) {
    // GPT-2's token table: N(0, 0.02), as Hugging Face initialises it.
    fpt_stream s = init_stream(seed, id_in);
    for (size_t j = 0; j < tin->numel; j++)
      tin->data[j] = 0.02f * (float)fpt_stream_normal(s, j);
  } else if (m->task.vocab > 0) {
    fpt_stream s = init_stream(seed, id_in);
    for (size_t j = 0; j < tin->numel; j++)
      tin->data[j] = (float)fpt_stream_normal(s, j);
  } else {
    FPT_TRY(fpt_orthogonal(tin->data, m->task.d_in, C, orth_gain, seed, id_in));
    memset(m->in_b.w, 0, sizeof(float) * C);
  }
head:;
  fpt_tensor *tw = fpt_model_find(m, "out/weight");
  fpt_tensor *tb = fpt_model_find(m, "out/bias");
  if (!tw)
    return 0;
  float bound = 1.0f / sqrtf((float)C);
  fpt_stream sw = init_stream(seed, (uint32_t)tw->uid);
  fpt_stream sb = init_stream(seed, (uint32_t)tb->uid);
  for (size_t j = 0; j < tw->numel; j++)
    tw->data[j] = bound * (2.0f * fpt_stream_uniform(sw, j) - 1.0f);
  for (size_t j = 0; j < tb->numel; j++)
    tb->data[j] = bound * (2.0f * fpt_stream_uniform(sb, j) - 1.0f);
  return 0;
}
