#include <math.h>
#include <string.h>

#include "fpt/model.h"

void fpt_zero_grad(fpt_model *m) { memset(m->grad_mem, 0, sizeof(float) * m->n_train); }

double fpt_grad_sumsq(const fpt_model *m) {
  double s = 0.0;
  for (size_t i = 0; i < m->n_train; i++)
    s += (double)m->grad_mem[i] * m->grad_mem[i];
  return s;
}

double fpt_grad_norm(const fpt_model *m) { return sqrt(fpt_grad_sumsq(m)); }

void fpt_scale_grad(fpt_model *m, float c) {
  for (size_t i = 0; i < m->n_train; i++)
    m->grad_mem[i] *= c;
}

// torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when below 1.
static double clip_to(fpt_model *m, double sumsq, double max_norm) {
  double norm = sqrt(sumsq), coef = max_norm / (norm + 1e-6);
  if (coef < 1.0)
    fpt_scale_grad(m, (float)coef);
  return norm;
}

double fpt_clip_grad(fpt_model *m, double max_norm) {
  return clip_to(m, fpt_grad_sumsq(m), max_norm);
}

void fpt_adam_step(fpt_model *m, float lr) {
  m->adam_t++;
  adam_update(m->train_mem, m->grad_mem, m->adam_m, m->adam_v, m->n_train, lr, 0.9f, 0.999f, 1e-8f,
              m->adam_t);
}

double fpt_lr_at(const fpt_lr_schedule *s, int64_t step) {
  double lr = s->lr;
  if (s->warmup > 0 && step < s->warmup)
    lr *= (double)(step + 1) / (double)s->warmup;
  if (s->cosine && s->steps > 0)
    lr *= 0.1 + 0.9 * 0.5 * (1.0 + cos(acos(-1.0) * (double)step / (double)s->steps));
  return lr;
}

double fpt_optimizer_step(fpt_model *m, double global_sumsq, double clip, float lr) {
  double norm = clip_to(m, global_sumsq, clip);
  fpt_adam_step(m, lr);
  return norm;
}
