#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/model.h"
#include "fpt/rng.h"

int fpt_block_tq(const fpt_model *m, int l) {
  return l == m->cfg.n_layer - 1 ? m->task.r : m->task.seq;
}

int fpt_acts_create(fpt_acts *a, const fpt_model *m, int B, int l0, int l1, int has_input,
                    int has_head) {
  memset(a, 0, sizeof *a);
  int T = m->task.seq, C = m->cfg.n_embd, NH = m->cfg.n_head;
  size_t BT = (size_t)B * T;
  a->B = B;
  a->l0 = l0;
  a->l1 = l1;
  a->has_input = has_input;
  a->has_head = has_head;
  if (has_input) {
    a->h0 = fpt_alloc_floats(BT * C);
    a->xin = fpt_alloc_floats(BT * C);
  }
  a->blk = fpt_calloc((size_t)(l1 > l0 ? l1 - l0 : 1), sizeof(fpt_block_acts));
  for (int l = l0; l < l1; l++) {
    fpt_block_acts *k = &a->blk[l - l0];
    size_t BQ = (size_t)B * fpt_block_tq(m, l);
    k->ln1 = fpt_alloc_floats(BT * C);
    k->ln1_mean = fpt_alloc_floats(BT);
    k->ln1_rstd = fpt_alloc_floats(BT);
    k->qkv = fpt_alloc_floats(BT * 3 * C);
    k->att = fpt_alloc_floats(BQ * NH * T);
    k->atty = fpt_alloc_floats(BQ * C);
    k->h1 = fpt_alloc_floats(BQ * C);
    k->ln2 = fpt_alloc_floats(BQ * C);
    k->ln2_mean = fpt_alloc_floats(BQ);
    k->ln2_rstd = fpt_alloc_floats(BQ);
    k->fch = fpt_alloc_floats(BQ * 4 * C);
    k->fch_gelu = fpt_alloc_floats(BQ * 4 * C);
    k->h2 = fpt_alloc_floats(BQ * C);
    k->mask_att = fpt_calloc(BQ * NH * fpt_mask_words(T), sizeof(uint32_t));
    k->mask_attn_out = fpt_calloc(BQ * fpt_mask_words(C), sizeof(uint32_t));
    k->mask_mlp_out = fpt_calloc(BQ * fpt_mask_words(C), sizeof(uint32_t));
  }
  if (has_head) {
    size_t BR = (size_t)B * m->task.r;
    a->lnf = fpt_alloc_floats(BR * C);
    a->lnf_mean = fpt_alloc_floats(BR);
    a->lnf_rstd = fpt_alloc_floats(BR);
    a->logits = fpt_alloc_floats(BR * m->task.n_out);
    a->dlogits = fpt_alloc_floats(BR * m->task.n_out);
  }
  a->dres = fpt_alloc_floats(BT * C);
  a->dres2 = fpt_alloc_floats(BT * C);
  a->dln = fpt_alloc_floats(BT * C);
  a->datty = fpt_alloc_floats(BT * C);
  a->dtmp = fpt_alloc_floats(BT * C);
  a->dqkv = fpt_alloc_floats(BT * 3 * C);
  a->dfch = fpt_alloc_floats(BT * 4 * C);
  a->dfch2 = fpt_alloc_floats(BT * 4 * C);
  a->att_work = fpt_alloc_floats(fpt_attention_work(T));
  return 0;
}

void fpt_acts_free(fpt_acts *a) {
  for (int l = a->l0; l < a->l1; l++) {
    fpt_block_acts *k = &a->blk[l - a->l0];
    float **f = &k->ln1;
    for (size_t i = 0; i < offsetof(fpt_block_acts, mask_att) / sizeof(float *); i++)
      free(f[i]);
    free(k->mask_att);
    free(k->mask_attn_out);
    free(k->mask_mlp_out);
  }
  free(a->blk);
  float *all[] = {a->h0,      a->xin,  a->lnf,   a->lnf_mean, a->lnf_rstd, a->logits,
                  a->dlogits, a->dres, a->dres2, a->dln,      a->datty,    a->dtmp,
                  a->dqkv,    a->dfch, a->dfch2, a->att_work};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    free(all[i]);
  memset(a, 0, sizeof *a);
}

static fpt_dropout drop_of(const fpt_model *m, const fpt_batch *b, const fpt_pass *p) {
  fpt_dropout d = {p->train ? m->dropout : 0.0f, p->seed, p->step, b->sample};
  return d;
}

static const float *block_input(const fpt_acts *a, int l, const float *h_in) {
  if (h_in)
    return h_in;
  return l == a->l0 ? a->h0 : a->blk[l - 1 - a->l0].h2;
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
#pragma omp parallel for schedule(static)
  for (int i = 0; i < B * T; i++) {
    float *h = a->h0 + (size_t)i * C;
    const float *pe = m->wpe.w + (size_t)(i % T) * C;
    for (int c = 0; c < C; c++)
      h[c] += pe[c];
  }
  dropout_apply(a->h0, &d, fpt_dropout_site(-1, FPT_DROP_EMBD), B, T, 0, C);
}

void fpt_block_forward(const fpt_model *m, fpt_acts *a, int l, const float *h_in,
                       const fpt_batch *b, const fpt_pass *p) {
  const fpt_block *w = &m->blocks[l];
  fpt_block_acts *k = &a->blk[l - a->l0];
  int B = b->B, T = m->task.seq, C = m->cfg.n_embd, NH = m->cfg.n_head;
  int Tq = fpt_block_tq(m, l), q0 = T - Tq, BQ = B * Tq;
  float eps = m->cfg.ln_eps;
  fpt_dropout d = drop_of(m, b, p);
  const float *h = block_input(a, l, h_in);

  layernorm_forward(k->ln1, k->ln1_mean, k->ln1_rstd, h, w->ln1_w.w, w->ln1_b.w, B * T, C, eps);
  if (q0 == 0) {
    linear_forward(k->qkv, k->ln1, w->qkv_w.w, w->qkv_b.w, B * T, C, 3 * C);
  } else {
    // Only the readout rows need queries: K|V for all rows, Q for the last Tq.
    int C3 = 3 * C;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < B * T; i++)
      memcpy(k->qkv + (size_t)i * C3, w->qkv_b.w, sizeof(float) * C3);
    fpt_gemm(0, 0, B * T, 2 * C, C, 1.0f, k->ln1, C, w->qkv_w.w + C, C3, 1.0f, k->qkv + C, C3);
    for (int bb = 0; bb < B; bb++)
      fpt_gemm(0, 0, Tq, C, C, 1.0f, k->ln1 + ((size_t)bb * T + q0) * C, C, w->qkv_w.w, C3, 1.0f,
               k->qkv + ((size_t)bb * T + q0) * C3, C3);
  }
  attention_forward(k->atty, k->att, k->mask_att, k->qkv, B, T, q0, C, NH, &d,
                    fpt_dropout_site(l, FPT_DROP_ATTN), a->att_work);
  linear_forward(k->h1, k->atty, w->ap_w.w, w->ap_b.w, BQ, C, C);
  dropout_forward(k->h1, k->h1, h, T, &d, fpt_dropout_site(l, FPT_DROP_ATTN_OUT), B, Tq, q0, C,
                  k->mask_attn_out);
  layernorm_forward(k->ln2, k->ln2_mean, k->ln2_rstd, k->h1, w->ln2_w.w, w->ln2_b.w, BQ, C, eps);
  linear_forward(k->fch, k->ln2, w->fc_w.w, w->fc_b.w, BQ, C, 4 * C);
  gelu_forward(k->fch_gelu, k->fch, (size_t)BQ * 4 * C);
  linear_forward(k->h2, k->fch_gelu, w->fp_w.w, w->fp_b.w, BQ, 4 * C, C);
  dropout_forward(k->h2, k->h2, k->h1, Tq, &d, fpt_dropout_site(l, FPT_DROP_MLP_OUT), B, Tq, q0, C,
                  k->mask_mlp_out);
}

double fpt_head_forward_backward(const fpt_model *m, fpt_acts *a, const float *h_last,
                                 const fpt_batch *b, float dscale, int64_t *correct) {
  int B = b->B, C = m->cfg.n_embd, r = m->task.r, no = m->task.n_out;
  int Tq = fpt_block_tq(m, m->cfg.n_layer - 1);
  // The readout rows are the last r of the last block's Tq (= r) rows.
  (void)Tq;
  layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, h_last, m->lnf_w.w, m->lnf_b.w, B * r, C,
                    m->cfg.ln_eps);
  if (m->task.tied) // logits (B*r, V) = lnf . wte^T
    fpt_gemm(0, 1, B * r, no, C, 1.0f, a->lnf, C, m->in_w.w, C, 0.0f, a->logits, no);
  else
    linear_forward(a->logits, a->lnf, m->out_w.w, m->out_b.w, B * r, C, no);
  double loss = crossentropy_forward_backward(dscale != 0.0f ? a->dlogits : NULL, a->logits, b->y,
                                              B * m->K, m->task.n_cls, dscale, correct);
  if (dscale != 0.0f) {
    if (m->task.tied) {
      fpt_gemm(0, 0, B * r, C, no, 1.0f, a->dlogits, no, m->in_w.w, C, 0.0f, a->dln, C);
      if (m->in_w.g)
        fpt_gemm(1, 0, no, C, B * r, 1.0f, a->dlogits, no, a->lnf, C, 1.0f, m->in_w.g, C);
    } else {
      linear_backward(a->dln, m->out_w.g, m->out_b.g, a->dlogits, a->lnf, m->out_w.w, B * r, C, no);
    }
    memset(a->dres, 0, sizeof(float) * B * r * C);
    layernorm_backward(a->dres, m->lnf_w.g, m->lnf_b.g, a->dln, h_last, m->lnf_w.w, a->lnf_mean,
                       a->lnf_rstd, B * r, C);
  }
  return loss;
}

void fpt_block_backward(const fpt_model *m, fpt_acts *a, int l, const float *h_in,
                        const fpt_batch *b, const fpt_pass *p, int need_dinput) {
  const fpt_block *w = &m->blocks[l];
  fpt_block_acts *k = &a->blk[l - a->l0];
  int B = b->B, T = m->task.seq, C = m->cfg.n_embd, NH = m->cfg.n_head;
  int Tq = fpt_block_tq(m, l), q0 = T - Tq, BQ = B * Tq;
  fpt_dropout d = drop_of(m, b, p);
  const float *h = block_input(a, l, h_in);
  float *dres = a->dres; // d(h2), (B,Tq,C); becomes d(h1) in place

  // MLP branch: h2 = h1 + drop(gelu(ln2 . Wfc + bfc) . Wp + bp)
  dropout_backward(a->dtmp, dres, k->mask_mlp_out, &d, BQ, C);
  linear_backward(a->dfch2, w->fp_w.g, w->fp_b.g, a->dtmp, k->fch_gelu, w->fp_w.w, BQ, 4 * C, C);
  gelu_backward(a->dfch, k->fch, a->dfch2, (size_t)BQ * 4 * C);
  linear_backward(a->dln, w->fc_w.g, w->fc_b.g, a->dfch, k->ln2, w->fc_w.w, BQ, C, 4 * C);
  layernorm_backward(dres, w->ln2_w.g, w->ln2_b.g, a->dln, k->h1, w->ln2_w.w, k->ln2_mean,
                     k->ln2_rstd, BQ, C);

  // Attention branch: h1 = h[q0:] + drop(attn(ln1 . Wqkv + b) . Wa + ba)
  dropout_backward(a->dtmp, dres, k->mask_attn_out, &d, BQ, C);
  linear_backward(a->datty, w->ap_w.g, w->ap_b.g, a->dtmp, k->atty, w->ap_w.w, BQ, C, C);
  attention_backward(a->dqkv, a->datty, k->qkv, k->att, k->mask_att, B, T, q0, C, NH, &d,
                     a->att_work);
  int need_ln1 = need_dinput || w->ln1_w.g || w->ln1_b.g;
  linear_backward(need_ln1 ? a->dln : NULL, w->qkv_w.g, w->qkv_b.g, a->dqkv, k->ln1, w->qkv_w.w,
                  B * T, C, 3 * C);
  if (!need_ln1)
    return;
  float *dh = dres;
  if (q0 > 0) {
    // Residual gradient exists only on rows [q0,T); spread it to (B,T,C).
    dh = a->dres2;
    memset(dh, 0, sizeof(float) * B * T * C);
    for (int bb = 0; bb < B; bb++)
      memcpy(dh + ((size_t)bb * T + q0) * C, dres + (size_t)bb * Tq * C, sizeof(float) * Tq * C);
  }
  layernorm_backward(need_dinput ? dh : NULL, w->ln1_w.g, w->ln1_b.g, a->dln, h, w->ln1_w.w,
                     k->ln1_mean, k->ln1_rstd, B * T, C);
  if (dh != a->dres) {
    float *t = a->dres;
    a->dres = a->dres2;
    a->dres2 = t;
  }
}

void fpt_input_backward(const fpt_model *m, fpt_acts *a, const fpt_batch *b, const fpt_pass *p) {
  int T = m->task.seq, C = m->cfg.n_embd, B = b->B;
  fpt_dropout d = drop_of(m, b, p);
  float *de = a->dres;
  dropout_apply(de, &d, fpt_dropout_site(-1, FPT_DROP_EMBD), B, T, 0, C);
  if (m->wpe.g) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++)
      for (int bb = 0; bb < B; bb++) {
        const float *g = de + ((size_t)bb * T + t) * C;
        float *pg = m->wpe.g + (size_t)t * C;
        for (int c = 0; c < C; c++)
          pg[c] += g[c];
      }
  }
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
    fpt_block_forward(m, a, l, l == pt->l0 && !pt->has_input ? h_in : NULL, b, p);
  if (!pt->has_head)
    return 0.0;
  return fpt_head_forward_backward(m, a, a->blk[pt->l1 - 1 - a->l0].h2, b, dscale, correct);
}

void fpt_part_backward(const fpt_model *m, fpt_acts *a, const fpt_batch *b, const fpt_pass *p,
                       const float *h_in) {
  const fpt_part *pt = &m->part;
  int floor = fpt_grad_floor(m);
  int need_input =
      fpt_group_trainable(&m->freeze, FPT_G_IN) || fpt_group_trainable(&m->freeze, FPT_G_POS);
  for (int l = pt->l1 - 1; l >= pt->l0 && l >= floor; l--)
    fpt_block_backward(m, a, l, l == pt->l0 && !pt->has_input ? h_in : NULL, b, p,
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

void fpt_backbone_forward(const fpt_model *m, fpt_acts *a, const float *inputs_embeds, float *out) {
  // Used by `fpt forward`: all positions of every block, then ln_f, no dropout.
  int T = m->task.seq, C = m->cfg.n_embd, B = a->B, L = m->cfg.n_layer;
  int64_t *ids = fpt_calloc((size_t)B, sizeof(int64_t));
  fpt_batch b = {B, NULL, NULL, NULL, ids};
  fpt_pass p = {0, 0, 0};
#pragma omp parallel for schedule(static)
  for (int i = 0; i < B * T; i++)
    for (int c = 0; c < C; c++)
      a->h0[(size_t)i * C + c] =
          inputs_embeds[(size_t)i * C + c] + m->wpe.w[(size_t)(i % T) * C + c];
  for (int l = 0; l < L; l++)
    fpt_block_forward(m, a, l, NULL, &b, &p);
  float *mean = fpt_alloc_floats((size_t)B * T), *rstd = fpt_alloc_floats((size_t)B * T);
  layernorm_forward(out, mean, rstd, a->blk[L - 1 - a->l0].h2, m->lnf_w.w, m->lnf_b.w, B * T, C,
                    m->cfg.ln_eps);
  free(mean);
  free(rstd);
  free(ids);
}
