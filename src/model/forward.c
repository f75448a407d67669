// The model around the backbone: the input layer, the readout and the
// output layer (or the tied language-model head), and the order in which a
// stage runs its pieces. The backbone's own work goes through m->bb.
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/model.h"
#include "fpt/rng.h"

int fpt_layer_rows(const fpt_model *m, int l) { return m->bb->layer_rows(m, l); }

float *fpt_layer_output(const fpt_acts *a, int l) {
  // a->layer holds the backbone's activations; the model does not know their type.
  const fpt_model *m = a->m;
  return m->bb->layer_out(a->layer[l - a->l0]);
}

size_t fpt_stage_floats(const fpt_model *m, int B) {
  return (size_t)B * m->task.seq * m->cfg.n_embd;
}

int fpt_acts_create(fpt_acts *a, const fpt_model *m, int B, int l0, int l1, int has_input,
                    int has_head) {
  memset(a, 0, sizeof *a);
  const fpt_backbone *bb = m->bb;
  int T = m->task.seq, C = m->cfg.n_embd, L = m->cfg.n_layer;
  size_t BT = (size_t)B * T, BR = (size_t)B * m->task.r;
  a->m = m;
  a->B = B;
  a->l0 = l0;
  a->l1 = l1;
  a->has_input = has_input;
  a->has_head = has_head;
  if (has_input) {
    a->h0 = fpt_alloc_floats(BT * C);
    a->xin = fpt_alloc_floats(BT * C);
  }
  a->layer = fpt_calloc((size_t)(l1 > l0 ? l1 - l0 : 1), sizeof(void *));
  for (int l = l0; l < l1; l++)
    a->layer[l - l0] = bb->layer_acts(m, l, B);
  a->scratch = bb->scratch(m, B);
  if (has_head) {
    size_t rows = (size_t)B * bb->layer_rows(m, L - 1);
    a->fin = bb->final_acts(m, (int)rows);
    a->feat = fpt_alloc_floats(BR * C);
    a->dfeat = fpt_alloc_floats(BR * C);
    a->dhid = fpt_alloc_floats(rows * C);
    a->logits = fpt_alloc_floats(BR * m->task.n_out);
    a->dlogits = fpt_alloc_floats(BR * m->task.n_out);
  }
  a->dres = fpt_alloc_floats(BT * C);
  a->dres2 = fpt_alloc_floats(BT * C);
  return 0;
}

void fpt_acts_free(fpt_acts *a) {
  const fpt_model *m = a->m;
  if (!m)
    return;
  for (int l = a->l0; l < a->l1; l++)
    m->bb->layer_acts_free(a->layer[l - a->l0]);
  free(a->layer);
  if (a->scratch)
    m->bb->scratch_free(a->scratch);
  if (a->fin)
    m->bb->final_acts_free(a->fin);
  float *all[] = {a->h0,     a->xin,     a->feat, a->dfeat, a->dhid,
                  a->logits, a->dlogits, a->dres, a->dres2};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    free(all[i]);
  memset(a, 0, sizeof *a);
}

static fpt_dropout drop_of(const fpt_model *m, const fpt_batch *b, const fpt_pass *p) {
  fpt_dropout d = {p->train ? m->dropout : 0.0f, p->seed, p->step, b->sample};
  return d;
}

static const float *layer_input(const fpt_acts *a, int l, const float *h_in) {
  if (h_in)
    return h_in;
  return l == a->l0 ? a->h0 : fpt_layer_output(a, l - 1);
}

void fpt_input_forward(const fpt_model *m, fpt_acts *a, const fpt_batch *b, const fpt_pass *p) {
  int T = m->task.seq, C = m->cfg.n_embd, B = b->B;
  fpt_dropout d = drop_of(m, b, p);
  if (m->task.vocab > 0) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < B * T; i++)
      memcpy(a->h0 + (size_t)i * C, m->in_w.w + (size_t)b->ids[i] * C, sizeof(float) * C);
  } else {
    linear_forward(a->h0, b->x, m->in_w.w, m->in_b.w, B * T, m->task.d_in, C);
    dropout_apply(a->h0, &d, fpt_dropout_site(-1, FPT_DROP_INPUT), B, T, 0, C);
  }
  m->bb->embed_forward(m, a, b, p);
}

void fpt_layer_forward(const fpt_model *m, fpt_acts *a, int l, const float *h_in,
                       const fpt_batch *b, const fpt_pass *p) {
  m->bb->layer_forward(m, a, l, layer_input(a, l, h_in), b, p);
}

void fpt_layer_backward(const fpt_model *m, fpt_acts *a, int l, const float *h_in,
                        const fpt_batch *b, const fpt_pass *p, int need_dinput) {
  m->bb->layer_backward(m, a, l, layer_input(a, l, h_in), b, p, need_dinput);
}

static int real_len(const fpt_batch *b, int i, int T) { return b->len ? b->len[i] : T; }

// feat (B, r, C) from the backbone's output hid (B, rows, C).
static void readout_forward(const fpt_model *m, const float *hid, int rows, const fpt_batch *b,
                            float *feat) {
  int B = b->B, T = m->task.seq, C = m->cfg.n_embd, r = m->task.r;
  for (int i = 0; i < B; i++) {
    const float *h = hid + (size_t)i * rows * C;
    float *z = feat + (size_t)i * r * C;
    int n = real_len(b, i, T);
    if (m->task.readout == FPT_READOUT_LAST) {
      memcpy(z, h + (size_t)(rows - r) * C, sizeof(float) * r * C);
    } else if (m->task.readout == FPT_READOUT_LAST_REAL) {
      memcpy(z, h + (size_t)(n - 1) * C, sizeof(float) * C);
    } else {
      memset(z, 0, sizeof(float) * C);
      for (int t = 0; t < n; t++)
        for (int c = 0; c < C; c++)
          z[c] += h[(size_t)t * C + c];
      for (int c = 0; c < C; c++)
        z[c] /= (float)n;
    }
  }
}

// dhid (B, rows, C) from dfeat: the readout's backward (zero where unread).
static void readout_backward(const fpt_model *m, float *dhid, int rows, const fpt_batch *b,
                             const float *dfeat) {
  int B = b->B, T = m->task.seq, C = m->cfg.n_embd, r = m->task.r;
  if (m->task.readout == FPT_READOUT_LAST && rows == r) {
    memcpy(dhid, dfeat, sizeof(float) * B * r * C);
    return;
  }
  memset(dhid, 0, sizeof(float) * B * rows * C);
  for (int i = 0; i < B; i++) {
    float *dh = dhid + (size_t)i * rows * C;
    const float *dz = dfeat + (size_t)i * r * C;
    int n = real_len(b, i, T);
    if (m->task.readout == FPT_READOUT_LAST)
      memcpy(dh + (size_t)(rows - r) * C, dz, sizeof(float) * r * C);
    else if (m->task.readout == FPT_READOUT_LAST_REAL)
      memcpy(dh + (size_t)(n - 1) * C, dz, sizeof(float) * C);
    else
      for (int t = 0; t < n; t++)
        for (int c = 0; c < C; c++)
          dh[(size_t)t * C + c] = dz[c] / (float)n;
  }
}

double fpt_head_forward_backward(const fpt_model *m, fpt_acts *a, const float *h_last,
                                 const fpt_batch *b, float dscale, int64_t *correct) {
  int B = b->B, C = m->cfg.n_embd, r = m->task.r, no = m->task.n_out;
  int rows = m->bb->layer_rows(m, m->cfg.n_layer - 1);
  a->hid = m->bb->final_forward(m, a->fin, h_last, B * rows);
  readout_forward(m, a->hid, rows, b, a->feat);
  if (m->task.tied) // logits (B*r, V) = feat . wte^T
    fpt_gemm(0, 1, B * r, no, C, 1.0f, a->feat, C, m->in_w.w, C, 0.0f, a->logits, no);
  else
    linear_forward(a->logits, a->feat, m->out_w.w, m->out_b.w, B * r, C, no);
  double loss = crossentropy_forward_backward(dscale != 0.0f ? a->dlogits : NULL, a->logits, b->y,
                                              B * m->K, m->task.n_cls, dscale, correct);
  if (dscale == 0.0f)
    return loss;
  if (m->task.tied) {
    fpt_gemm(0, 0, B * r, C, no, 1.0f, a->dlogits, no, m->in_w.w, C, 0.0f, a->dfeat, C);
    if (m->in_w.g)
      fpt_gemm(1, 0, no, C, B * r, 1.0f, a->dlogits, no, a->feat, C, 1.0f, m->in_w.g, C);
  } else {
    linear_backward(a->dfeat, m->out_w.g, m->out_b.g, a->dlogits, a->feat, m->out_w.w, B * r, C,
                    no);
  }
  readout_backward(m, a->dhid, rows, b, a->dfeat);
  m->bb->final_backward(m, a->fin, h_last, a->dhid, a->dres, B * rows);
  return loss;
}

void fpt_input_backward(const fpt_model *m, fpt_acts *a, const fpt_batch *b, const fpt_pass *p) {
  int T = m->task.seq, C = m->cfg.n_embd, B = b->B;
  fpt_dropout d = drop_of(m, b, p);
  float *de = a->dres;
  m->bb->embed_backward(m, a, b, p);
  if (!m->in_w.g && !m->in_b.g)
    return;
  if (m->task.vocab > 0) {
    // Serial: rows may repeat, and a fixed order keeps results reproducible.
    for (int i = 0; i < B * T; i++) {
      float *pg = m->in_w.g + (size_t)b->ids[i] * C;
      const float *g = de + (size_t)i * C;
      for (int c = 0; c < C; c++)
        pg[c] += g[c];
    }
  } else {
    dropout_apply(de, &d, fpt_dropout_site(-1, FPT_DROP_INPUT), B, T, 0, C);
    linear_backward(NULL, m->in_w.g, m->in_b.g, de, b->x, m->in_w.w, B * T, m->task.d_in, C);
  }
}

double fpt_part_forward(const fpt_model *m, fpt_acts *a, const fpt_batch *b, const fpt_pass *p,
                        const float *h_in, float dscale, int64_t *correct) {
  const fpt_part *pt = &m->part;
  if (pt->has_input)
    fpt_input_forward(m, a, b, p);
  for (int l = pt->l0; l < pt->l1; l++)
    fpt_layer_forward(m, a, l, l == pt->l0 && !pt->has_input ? h_in : NULL, b, p);
  if (!pt->has_head)
    return 0.0;
  return fpt_head_forward_backward(m, a, fpt_layer_output(a, pt->l1 - 1), b, dscale, correct);
}

void fpt_part_backward(const fpt_model *m, fpt_acts *a, const fpt_batch *b, const fpt_pass *p,
                       const float *h_in) {
  const fpt_part *pt = &m->part;
  int floor = m->grad_floor, need_input = m->input_trains;
  for (int l = pt->l1 - 1; l >= pt->l0 && l >= floor; l--)
    fpt_layer_backward(m, a, l, l == pt->l0 && !pt->has_input ? h_in : NULL, b, p,
                       l > floor || need_input);
  if (pt->has_input && need_input)
    fpt_input_backward(m, a, b, p);
}

double fpt_forward_backward(const fpt_model *m, fpt_acts *a, const fpt_batch *b, const fpt_pass *p,
                            float dscale, int64_t *correct) {
  int bwd = p->train && dscale != 0.0f;
  double loss = fpt_part_forward(m, a, b, p, NULL, bwd ? dscale : 0.0f, correct);
  if (bwd)
    fpt_part_backward(m, a, b, p, NULL);
  return loss;
}

void fpt_backbone_forward(const fpt_model *m, fpt_acts *a, const float *inputs_embeds,
                          const int32_t *len, float *out) {
  // Used by `fpt forward`: every position of every layer, no dropout.
  int T = m->task.seq, C = m->cfg.n_embd, B = a->B, L = m->cfg.n_layer;
  int64_t *ids = fpt_calloc((size_t)B, sizeof(int64_t));
  fpt_batch b = {B, NULL, NULL, NULL, ids, len};
  fpt_pass p = {0, 0, 0};
  memcpy(a->h0, inputs_embeds, sizeof(float) * B * T * C);
  m->bb->embed_forward(m, a, &b, &p);
  for (int l = 0; l < L; l++)
    fpt_layer_forward(m, a, l, NULL, &b, &p);
  const float *h = m->bb->final_forward(m, a->fin, fpt_layer_output(a, L - 1), B * T);
  memcpy(out, h, sizeof(float) * B * T * C);
  free(ids);
}
