#include "fpt/readout.h"
#include "fpt/kernels.h"

double fpt_readout_onehot(const fpt_task_shape *t, const int32_t *y, int pos, int out) {
  int per = t->n_out / t->n_cls;
  return y[pos * per + out / t->n_cls] == out % t->n_cls ? 1.0 : 0.0;
}

void fpt_readout_score(const fpt_task_shape *t, int C, const float *feat, const int32_t *y, int B,
                       const float *W, const float *bias, float *logits, fpt_readout_sums *s) {
  int r = t->r, no = t->n_out, K = r * no / t->n_cls;
  if (B <= 0)
    return;
  // The same two steps as the model's head after ln_f (fpt_head_forward_backward).
  linear_forward(logits, feat, W, bias, B * r, C, no);
  int64_t hits = 0;
  s->loss += crossentropy_forward_backward(NULL, logits, y, B * K, t->n_cls, 0.0f, &hits);
  s->hits += hits;
  for (int i = 0; i < B * r; i++) {
    const int32_t *yi = y + (size_t)(i / r) * K;
    for (int o = 0; o < no; o++) {
      double d = logits[(size_t)i * no + o] - fpt_readout_onehot(t, yi, i % r, o);
      s->sqerr += d * d;
    }
  }
}
