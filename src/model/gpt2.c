// The GPT-2 backbone kind: pre-LN transformer blocks (Hugging Face's GPT-2
// layout and names), a learned positional table before them, ln_f after.
// Root attributes `causal` (0: a bidirectional, ViT/BERT-style encoder) and
// `activation` (gelu_new, or the exact gelu) make the same layout an encoder.
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/model.h"
#include "fpt/rng.h"

static const char *const activations[] = {"gelu_new", "gelu", NULL};

#define F(field) offsetof(fpt_backbone_cfg, field)
static const fpt_attr_spec attrs[] = {
    {"n_layer", FPT_ATTR_INT, F(n_layer), 1, 0, 1, 1 << 20, NULL},
    {"n_head", FPT_ATTR_INT, F(n_head), 1, 0, 1, 1 << 20, NULL},
    {"n_embd", FPT_ATTR_INT, F(n_embd), 1, 0, 1, 1 << 20, NULL},
    {"n_positions", FPT_ATTR_INT, F(n_positions), 1, 0, 1, 1 << 20, NULL},
    {"layer_norm_epsilon", FPT_ATTR_FLOAT, F(ln_eps), 0, 1e-5, 1e-30, 0.5, NULL},
    {"causal", FPT_ATTR_INT, F(causal), 0, 1, 0, 1, NULL},
    {"activation", FPT_ATTR_CHOICE, F(activation), 0, FPT_ACT_GELU_NEW, 0, 0, activations},
};
#undef F

// Tensors of one block, in order; shapes in units of C (0 = absent dim).
static const struct {
  const char *name;
  int group, d0, d1;
} block_tensors[12] = {
    {"ln_1/weight", FPT_G_LN, 1, 0},          {"ln_1/bias", FPT_G_LN, 1, 0},
    {"attn/c_attn/weight", FPT_G_ATTN, 1, 3}, {"attn/c_attn/bias", FPT_G_ATTN, 3, 0},
    {"attn/c_proj/weight", FPT_G_ATTN, 1, 1}, {"attn/c_proj/bias", FPT_G_ATTN, 1, 0},
    {"ln_2/weight", FPT_G_LN, 1, 0},          {"ln_2/bias", FPT_G_LN, 1, 0},
    {"mlp/c_fc/weight", FPT_G_FF, 1, 4},      {"mlp/c_fc/bias", FPT_G_FF, 4, 0},
    {"mlp/c_proj/weight", FPT_G_FF, 4, 1},    {"mlp/c_proj/bias", FPT_G_FF, 1, 0}};

typedef struct {
  fpt_param ln1_w, ln1_b, qkv_w, qkv_b, ap_w, ap_b;
  fpt_param ln2_w, ln2_b, fc_w, fc_b, fp_w, fp_b;
  // bf16 copies of the frozen matrices (--frozen-dtype bf16), else NULL.
  fpt_bf16_matrix *qkv_bf, *ap_bf, *fc_bf, *fp_bf;
} block;

typedef struct {
  fpt_param wpe, lnf_w, lnf_b;
  block *blocks; // n_layer entries; those of the part are bound
} weights;

// From this many tokens on, attention runs fused (src/model/attention_flash.c):
// the (T, T) maps are never stored; below it the stored-map kernel is faster
// (docs/PERFORMANCE.md). fpt attention, which reads the maps, sets it out of reach.
int fpt_gpt2_flash_min_seq = 1024;

static int use_flash(const fpt_model *m) { return m->task.seq >= fpt_gpt2_flash_min_seq; }

// One block's activations for B samples.
typedef struct {
  int flash; // att is NULL, lse (B,NH,Tq) holds each row's log-sum-exp
  // ln1, ln2 and fch_gelu are the inputs of qkv, fc and the MLP projection,
  // which the backward reads only for that matrix's weight gradient: when
  // the matrix is frozen they are NULL here, and the forward writes them to
  // the part's scratch (dln, dfch2), whose values no call keeps (6 of the 16
  // floats per row and channel that a block would otherwise keep).
  float *ln1, *ln1_mean, *ln1_rstd, *qkv, *att, *lse, *atty, *h1;
  float *ln2, *ln2_mean, *ln2_rstd, *fch, *fch_gelu, *h2;
  // Dropout keep bits of the forward, for the backward (fpt_mask_words):
  // attention maps (B*NH*Tq rows of T), attention and MLP outputs (B*Tq rows of C).
  uint32_t *mask_att, *mask_attn_out, *mask_mlp_out;
} acts;

// Backward scratch shared by the blocks of a part.
typedef struct {
  float *dln, *datty, *dtmp; // (B,T,C)
  float *dqkv;               // (B,T,3C)
  float *dfch, *dfch2;       // (B,T,4C)
  float *att_work;           // fpt_attention_work(T)
} scratch;

typedef struct {
  float *out, *mean, *rstd; // ln_f of the last block's rows
} final;

static int check(const fpt_backbone_cfg *c, const char *file) {
  FPT_ENSURE(c->n_head >= 1 && c->n_positions >= 1, "%s: n_head and n_positions must be positive",
             file);
  FPT_ENSURE(c->n_embd % c->n_head == 0, "%s: n_embd (%d) is not divisible by n_head (%d)", file,
             c->n_embd, c->n_head);
  FPT_ENSURE(c->causal == 0 || c->causal == 1, "%s: attribute causal = %d must be 0 or 1", file,
             c->causal);
  FPT_ENSURE(c->ln_eps > 0 && c->ln_eps < 1, "%s: layer_norm_epsilon = %g is out of range", file,
             (double)c->ln_eps);
  return 0;
}

static void tensors(const fpt_backbone_cfg *c, int where, fpt_tensor_fn add, void *ctx) {
  int C = c->n_embd;
  char nm[48];
  if (where == FPT_AT_PRE) {
    add(ctx, FPT_G_POS, "wpe/weight", c->n_positions, C);
  } else if (where == FPT_AT_POST) {
    add(ctx, FPT_G_LN, "ln_f/weight", C, 0);
    add(ctx, FPT_G_LN, "ln_f/bias", C, 0);
  } else {
    for (int k = 0; k < 12; k++) {
      snprintf(nm, sizeof nm, "h/%d/%s", where, block_tensors[k].name);
      add(ctx, block_tensors[k].group, nm, block_tensors[k].d0 * C, block_tensors[k].d1 * C);
    }
  }
}

static fpt_param param(fpt_model *m, const char *name) {
  fpt_tensor *t = fpt_model_find(m, name);
  return t ? (fpt_param){t->data, t->grad} : (fpt_param){NULL, NULL};
}

static void bind(fpt_model *m) {
  weights *w = fpt_calloc(1, sizeof *w);
  w->wpe = param(m, "wpe/weight");
  w->lnf_w = param(m, "ln_f/weight");
  w->lnf_b = param(m, "ln_f/bias");
  w->blocks = fpt_calloc((size_t)m->cfg.n_layer, sizeof(block));
  char nm[48];
  for (int l = m->part.l0; l < m->part.l1; l++) {
    block *b = &w->blocks[l];
#define B(field, k)                                                                                \
  snprintf(nm, sizeof nm, "h/%d/%s", l, block_tensors[k].name);                                    \
  b->field = param(m, nm)
    B(ln1_w, 0);
    B(ln1_b, 1);
    B(qkv_w, 2);
    B(qkv_b, 3);
    B(ap_w, 4);
    B(ap_b, 5);
    B(ln2_w, 6);
    B(ln2_b, 7);
    B(fc_w, 8);
    B(fc_b, 9);
    B(fp_w, 10);
    B(fp_b, 11);
#undef B
  }
  m->bbw = w;
}

// The block's four matrices: fp32 tensor, bf16 copy, shape (in, out) in C.
typedef struct {
  const fpt_param *p;
  fpt_bf16_matrix **bf;
  int rows, cols;
} matrix_ref;

static void block_matrices(block *b, matrix_ref r[4]) {
  r[0] = (matrix_ref){&b->qkv_w, &b->qkv_bf, 1, 3};
  r[1] = (matrix_ref){&b->ap_w, &b->ap_bf, 1, 1};
  r[2] = (matrix_ref){&b->fc_w, &b->fc_bf, 1, 4};
  r[3] = (matrix_ref){&b->fp_w, &b->fp_bf, 4, 1};
}

static void drop_bf16(fpt_model *m) {
  weights *w = m->bbw;
  matrix_ref r[4];
  for (int l = m->part.l0; l < m->part.l1; l++) {
    block_matrices(&w->blocks[l], r);
    for (int i = 0; i < 4; i++)
      if (*r[i].bf) {
        fpt_bf16_free(*r[i].bf);
        free(*r[i].bf);
        *r[i].bf = NULL;
      }
  }
  m->bf16_bytes = 0;
  m->n_bf16 = 0;
}

// fp32 frozen matrices are packed too (fpt_f32_pack_layouts: no rounding,
// the same numbers up to the order of the sums) where the CPU has AVX-512 and
// the copies take at most this much per rank: at the experiments' 12 x 128
// shape packing B was 8 % of a step and the copies take 19 MB; at GPT-2 base
// (K >= 768) OpenBLAS packs at little cost and the copies would take 680 MB.
size_t fpt_gpt2_f32_pack_max = (size_t)256 << 20;

static size_t frozen_floats(fpt_model *m, matrix_ref r[4]) {
  weights *w = m->bbw;
  size_t n = 0, C = (size_t)m->cfg.n_embd;
  for (int l = m->part.l0; l < m->part.l1; l++) {
    block_matrices(&w->blocks[l], r);
    for (int i = 0; i < 4; i++)
      if (r[i].p->w && !r[i].p->g)
        n += r[i].rows * C * r[i].cols * C * (l >= m->grad_floor ? 2 : 1);
  }
  return n;
}

// Each frozen matrix of the part's blocks packed from its current values, in
// bf16 or (fp32 runs, see above) fp32: the forward layout, and the
// input-gradient one where the backward runs (layer >= grad_floor).
// Trainable matrices (a gradient) stay fp32 only.
static int frozen_bf16(fpt_model *m, int bf16) {
  weights *w = m->bbw;
  int C = m->cfg.n_embd, rc = 0;
  matrix_ref r[4];
  drop_bf16(m);
  int f32 = !bf16 && fpt_f32_packed_supported() &&
            frozen_floats(m, r) * sizeof(float) <= fpt_gpt2_f32_pack_max;
  for (int l = m->part.l0; l < m->part.l1 && (bf16 || f32) && rc == 0; l++) {
    block_matrices(&w->blocks[l], r);
    int layouts = FPT_BF16_NN | (l >= m->grad_floor ? FPT_BF16_NT : 0);
    for (int i = 0; i < 4 && rc == 0; i++) {
      if (!r[i].p->w || r[i].p->g)
        continue;
      *r[i].bf = fpt_calloc(1, sizeof(fpt_bf16_matrix));
      int rows = r[i].rows * C, cols = r[i].cols * C;
      rc = bf16 ? fpt_bf16_pack_layouts(*r[i].bf, r[i].p->w, rows, cols, layouts)
                : fpt_f32_pack_layouts(*r[i].bf, r[i].p->w, rows, cols, layouts);
      m->bf16_bytes += (*r[i].bf)->bytes;
      m->n_bf16 += rc == 0;
    }
  }
  if (rc != 0)
    drop_bf16(m);
  return rc;
}

static void unbind(fpt_model *m) {
  weights *w = m->bbw;
  drop_bf16(m);
  free(w->blocks);
  free(w);
  m->bbw = NULL;
}

// The last block computes only the readout rows when the readout is the
// last r positions; the other readouts need every row.
static int layer_rows(const fpt_model *m, int l) {
  return l == m->cfg.n_layer - 1 && m->task.readout == FPT_READOUT_LAST ? m->task.r : m->task.seq;
}

static void *layer_acts(const fpt_model *m, int l, int B) {
  int T = m->task.seq, C = m->cfg.n_embd, NH = m->cfg.n_head;
  size_t BT = (size_t)B * T, BQ = (size_t)B * layer_rows(m, l);
  const block *w = &((const weights *)m->bbw)->blocks[l];
  acts *k = fpt_calloc(1, sizeof *k);
  k->flash = use_flash(m);
  if (w->qkv_w.g)
    k->ln1 = fpt_alloc_floats(BT * C);
  k->ln1_mean = fpt_alloc_floats(BT);
  k->ln1_rstd = fpt_alloc_floats(BT);
  k->qkv = fpt_alloc_floats(BT * 3 * C);
  if (k->flash)
    k->lse = fpt_alloc_floats(BQ * NH);
  else
    k->att = fpt_alloc_floats(BQ * NH * T);
  k->atty = fpt_alloc_floats(BQ * C);
  k->h1 = fpt_alloc_floats(BQ * C);
  if (w->fc_w.g)
    k->ln2 = fpt_alloc_floats(BQ * C);
  k->ln2_mean = fpt_alloc_floats(BQ);
  k->ln2_rstd = fpt_alloc_floats(BQ);
  k->fch = fpt_alloc_floats(BQ * 4 * C);
  if (w->fp_w.g)
    k->fch_gelu = fpt_alloc_floats(BQ * 4 * C);
  k->h2 = fpt_alloc_floats(BQ * C);
  k->mask_att = fpt_calloc(BQ * NH * fpt_mask_words(T), sizeof(uint32_t));
  k->mask_attn_out = fpt_calloc(BQ * fpt_mask_words(C), sizeof(uint32_t));
  k->mask_mlp_out = fpt_calloc(BQ * fpt_mask_words(C), sizeof(uint32_t));
  return k;
}

static void layer_acts_free(void *p) {
  acts *k = p;
  float *f[] = {k->ln1, k->ln1_mean, k->ln1_rstd, k->qkv,      k->att, k->lse,      k->atty,
                k->h1,  k->ln2,      k->ln2_mean, k->ln2_rstd, k->fch, k->fch_gelu, k->h2};
  for (size_t i = 0; i < sizeof f / sizeof *f; i++)
    free(f[i]);
  free(k->mask_att);
  free(k->mask_attn_out);
  free(k->mask_mlp_out);
  free(k);
}

static float *layer_out(void *la) { return ((acts *)la)->h2; }

static void *make_scratch(const fpt_model *m, int B) {
  int T = m->task.seq, C = m->cfg.n_embd;
  size_t BT = (size_t)B * T;
  scratch *s = fpt_calloc(1, sizeof *s);
  s->dln = fpt_alloc_floats(BT * C);
  s->datty = fpt_alloc_floats(BT * C);
  s->dtmp = fpt_alloc_floats(BT * C);
  s->dqkv = fpt_alloc_floats(BT * 3 * C);
  s->dfch = fpt_alloc_floats(BT * 4 * C);
  s->dfch2 = fpt_alloc_floats(BT * 4 * C);
  s->att_work =
      fpt_alloc_floats(use_flash(m) ? fpt_attention_flash_work(T) : fpt_attention_work(T));
  return s;
}

static void scratch_free(void *p) {
  scratch *s = p;
  float *f[] = {s->dln, s->datty, s->dtmp, s->dqkv, s->dfch, s->dfch2, s->att_work};
  for (size_t i = 0; i < sizeof f / sizeof *f; i++)
    free(f[i]);
  free(s);
}

static fpt_dropout drop_of(const fpt_model *m, const fpt_batch *b, const fpt_pass *p) {
  fpt_dropout d = {p->train ? m->dropout : 0.0f, p->seed, p->step, b->sample};
  return d;
}

static void embed_forward(const fpt_model *m, fpt_acts *a, const fpt_batch *b, const fpt_pass *p) {
  const weights *w = m->bbw;
  int T = m->task.seq, C = m->cfg.n_embd, B = b->B;
  fpt_dropout d = drop_of(m, b, p);
#pragma omp parallel for schedule(static)
  for (int i = 0; i < B * T; i++) {
    float *h = a->h0 + (size_t)i * C;
    const float *pe = w->wpe.w + (size_t)(i % T) * C;
    for (int c = 0; c < C; c++)
      h[c] += pe[c];
  }
  dropout_apply(a->h0, &d, fpt_dropout_site(-1, FPT_DROP_EMBD), B, T, 0, C);
}

static void embed_backward(const fpt_model *m, fpt_acts *a, const fpt_batch *b, const fpt_pass *p) {
  const weights *w = m->bbw;
  int T = m->task.seq, C = m->cfg.n_embd, B = b->B;
  fpt_dropout d = drop_of(m, b, p);
  float *de = a->dres;
  dropout_apply(de, &d, fpt_dropout_site(-1, FPT_DROP_EMBD), B, T, 0, C);
  if (!w->wpe.g)
    return;
#pragma omp parallel for schedule(static)
  for (int t = 0; t < T; t++)
    for (int bb = 0; bb < B; bb++) {
      const float *g = de + ((size_t)bb * T + t) * C;
      float *pg = w->wpe.g + (size_t)t * C;
      for (int c = 0; c < C; c++)
        pg[c] += g[c];
    }
}

// Which keys a query sees: causal, or (bidirectional) the real positions.
static fpt_attn_mask mask_of(const fpt_model *m, const fpt_batch *b) {
  fpt_attn_mask am = {m->cfg.causal, m->cfg.causal ? NULL : b->len};
  return am;
}

// qkv (B,T,3C) from ln1; only the readout rows need queries when q0 > 0.
// A bf16 copy splits at column C only when C is a multiple of its panel
// width (FPT_BF16_NR); otherwise every row gets its queries too (the unused
// ones cost time, not bits: each row of the product is its own).
static void qkv_forward(const block *w, acts *k, const float *ln1, int B, int T, int q0, int C) {
  const fpt_bf16_matrix *bf = w->qkv_bf;
  if (q0 == 0 || (bf && C % FPT_BF16_NR)) {
    linear_forward_bf(k->qkv, ln1, w->qkv_w.w, bf, w->qkv_b.w, B * T, C, 3 * C);
    return;
  }
  int C3 = 3 * C, Tq = T - q0;
#pragma omp parallel for schedule(static)
  for (int i = 0; i < B * T; i++)
    memcpy(k->qkv + (size_t)i * C3, w->qkv_b.w, sizeof(float) * C3);
  if (bf)
    fpt_gemm_bf16_nn_cols(B * T, C, 2 * C, C, ln1, C, bf, NULL, 1.0f, k->qkv + C, C3);
  else
    fpt_gemm(0, 0, B * T, 2 * C, C, 1.0f, ln1, C, w->qkv_w.w + C, C3, 1.0f, k->qkv + C, C3);
  for (int bb = 0; bb < B; bb++) {
    const float *x = ln1 + ((size_t)bb * T + q0) * C;
    float *q = k->qkv + ((size_t)bb * T + q0) * C3;
    if (bf)
      fpt_gemm_bf16_nn_cols(Tq, 0, C, C, x, C, bf, NULL, 1.0f, q, C3);
    else
      fpt_gemm(0, 0, Tq, C, C, 1.0f, x, C, w->qkv_w.w, C3, 1.0f, q, C3);
  }
}

static void layer_forward(const fpt_model *m, fpt_acts *a, int l, const float *h,
                          const fpt_batch *b, const fpt_pass *p) {
  const block *w = &((const weights *)m->bbw)->blocks[l];
  acts *k = a->layer[l - a->l0];
  scratch *s = a->scratch;
  int B = b->B, T = m->task.seq, C = m->cfg.n_embd, NH = m->cfg.n_head;
  int Tq = layer_rows(m, l), q0 = T - Tq, BQ = B * Tq;
  float eps = m->cfg.ln_eps;
  fpt_dropout d = drop_of(m, b, p);
  fpt_attn_mask am = mask_of(m, b);
  float *ln1 = k->ln1 ? k->ln1 : s->dln, *ln2 = k->ln2 ? k->ln2 : s->dln;
  float *gelu = k->fch_gelu ? k->fch_gelu : s->dfch2;

  layernorm_forward(ln1, k->ln1_mean, k->ln1_rstd, h, w->ln1_w.w, w->ln1_b.w, B * T, C, eps);
  qkv_forward(w, k, ln1, B, T, q0, C);
  if (k->flash) // the keep bits are kept: one Philox pass fewer in the backward
    attention_flash_forward(k->atty, k->lse, k->mask_att, k->qkv, B, T, q0, C, NH, &am, &d,
                            fpt_dropout_site(l, FPT_DROP_ATTN), s->att_work);
  else
    attention_forward_masked(k->atty, k->att, k->mask_att, k->qkv, B, T, q0, C, NH, &am, &d,
                             fpt_dropout_site(l, FPT_DROP_ATTN), s->att_work);
  linear_forward_bf(k->h1, k->atty, w->ap_w.w, w->ap_bf, w->ap_b.w, BQ, C, C);
  dropout_forward(k->h1, k->h1, h, T, &d, fpt_dropout_site(l, FPT_DROP_ATTN_OUT), B, Tq, q0, C,
                  k->mask_attn_out);
  layernorm_forward(ln2, k->ln2_mean, k->ln2_rstd, k->h1, w->ln2_w.w, w->ln2_b.w, BQ, C, eps);
  linear_forward_bf(k->fch, ln2, w->fc_w.w, w->fc_bf, w->fc_b.w, BQ, C, 4 * C);
  if (m->cfg.activation == FPT_ACT_GELU)
    gelu_erf_forward(gelu, k->fch, (size_t)BQ * 4 * C);
  else
    gelu_forward(gelu, k->fch, (size_t)BQ * 4 * C);
  linear_forward_bf(k->h2, gelu, w->fp_w.w, w->fp_bf, w->fp_b.w, BQ, 4 * C, C);
  dropout_forward(k->h2, k->h2, k->h1, Tq, &d, fpt_dropout_site(l, FPT_DROP_MLP_OUT), B, Tq, q0, C,
                  k->mask_mlp_out);
}

// d(ln1 input) where the residual gradient exists only on rows [q0, T):
// spread it to (B,T,C), then add the LayerNorm's gradient; a->dres ends up
// holding d(input).
static void ln1_backward(const block *w, const acts *k, fpt_acts *a, const float *h, int B, int T,
                         int q0, int C, int need_dinput) {
  scratch *s = a->scratch;
  float *dres = a->dres, *dh = dres;
  int Tq = T - q0;
  if (q0 > 0) {
    dh = a->dres2;
    memset(dh, 0, sizeof(float) * B * T * C);
    for (int bb = 0; bb < B; bb++)
      memcpy(dh + ((size_t)bb * T + q0) * C, dres + (size_t)bb * Tq * C, sizeof(float) * Tq * C);
  }
  layernorm_backward(need_dinput ? dh : NULL, w->ln1_w.g, w->ln1_b.g, s->dln, h, w->ln1_w.w,
                     k->ln1_mean, k->ln1_rstd, B * T, C);
  if (dh != a->dres) {
    float *t = a->dres;
    a->dres = a->dres2;
    a->dres2 = t;
  }
}

static void layer_backward(const fpt_model *m, fpt_acts *a, int l, const float *h,
                           const fpt_batch *b, const fpt_pass *p, int need_dinput) {
  const block *w = &((const weights *)m->bbw)->blocks[l];
  acts *k = a->layer[l - a->l0];
  scratch *s = a->scratch;
  int B = b->B, T = m->task.seq, C = m->cfg.n_embd, NH = m->cfg.n_head;
  int Tq = layer_rows(m, l), q0 = T - Tq, BQ = B * Tq;
  fpt_dropout d = drop_of(m, b, p);
  fpt_attn_mask am = mask_of(m, b);
  float *dres = a->dres; // d(h2), (B,Tq,C); becomes d(h1) in place

  // MLP branch: h2 = h1 + drop(gelu(ln2 . Wfc + bfc) . Wp + bp)
  dropout_backward(s->dtmp, dres, k->mask_mlp_out, &d, BQ, C);
  linear_backward_bf(s->dfch2, w->fp_w.g, w->fp_b.g, s->dtmp, k->fch_gelu, w->fp_w.w, w->fp_bf, BQ,
                     4 * C, C);
  if (m->cfg.activation == FPT_ACT_GELU)
    gelu_erf_backward(s->dfch, k->fch, s->dfch2, (size_t)BQ * 4 * C);
  else
    gelu_backward(s->dfch, k->fch, s->dfch2, (size_t)BQ * 4 * C);
  linear_backward_bf(s->dln, w->fc_w.g, w->fc_b.g, s->dfch, k->ln2, w->fc_w.w, w->fc_bf, BQ, C,
                     4 * C);
  layernorm_backward(dres, w->ln2_w.g, w->ln2_b.g, s->dln, k->h1, w->ln2_w.w, k->ln2_mean,
                     k->ln2_rstd, BQ, C);

  // Attention branch: h1 = h[q0:] + drop(attn(ln1 . Wqkv + b) . Wa + ba)
  dropout_backward(s->dtmp, dres, k->mask_attn_out, &d, BQ, C);
  linear_backward_bf(s->datty, w->ap_w.g, w->ap_b.g, s->dtmp, k->atty, w->ap_w.w, w->ap_bf, BQ, C,
                     C);
  if (k->flash)
    attention_flash_backward(s->dqkv, s->datty, k->atty, k->lse, k->mask_att, k->qkv, B, T, q0, C,
                             NH, &am, &d, fpt_dropout_site(l, FPT_DROP_ATTN), s->att_work);
  else
    attention_backward_masked(s->dqkv, s->datty, k->qkv, k->att, k->mask_att, B, T, q0, C, NH, &am,
                              &d, s->att_work);
  int need_ln1 = need_dinput || w->ln1_w.g || w->ln1_b.g;
  linear_backward_bf(need_ln1 ? s->dln : NULL, w->qkv_w.g, w->qkv_b.g, s->dqkv, k->ln1, w->qkv_w.w,
                     w->qkv_bf, B * T, C, 3 * C);
  if (need_ln1)
    ln1_backward(w, k, a, h, B, T, q0, C, need_dinput);
}

static void *final_acts(const fpt_model *m, int rows) {
  final *f = fpt_calloc(1, sizeof *f);
  f->out = fpt_alloc_floats((size_t)rows * m->cfg.n_embd);
  f->mean = fpt_alloc_floats((size_t)rows);
  f->rstd = fpt_alloc_floats((size_t)rows);
  return f;
}

static void final_acts_free(void *p) {
  final *f = p;
  free(f->out);
  free(f->mean);
  free(f->rstd);
  free(f);
}

static const float *final_forward(const fpt_model *m, void *fa, const float *h, int n) {
  const weights *w = m->bbw;
  final *f = fa;
  layernorm_forward(f->out, f->mean, f->rstd, h, w->lnf_w.w, w->lnf_b.w, n, m->cfg.n_embd,
                    m->cfg.ln_eps);
  return f->out;
}

static void final_backward(const fpt_model *m, void *fa, const float *h, const float *dout,
                           float *dh, int n) {
  const weights *w = m->bbw;
  final *f = fa;
  memset(dh, 0, sizeof(float) * (size_t)n * m->cfg.n_embd);
  layernorm_backward(dh, w->lnf_w.g, w->lnf_b.g, dout, h, w->lnf_w.w, f->mean, f->rstd, n,
                     m->cfg.n_embd);
}

// Hugging Face GPT-2's default init: N(0, 0.02) weights, zero biases, LN 1/0.
static void init_tensor(const fpt_model *m, fpt_tensor *t, uint64_t seed) {
  (void)m;
  int is_ln = t->group == FPT_G_LN;
  int is_bias = strstr(t->name, "/bias") != NULL;
  fpt_stream s = {seed, FPT_SITE_INIT, (uint32_t)t->uid, 0};
  for (size_t j = 0; j < t->numel; j++)
    t->data[j] = is_ln     ? (is_bias ? 0.0f : 1.0f)
                 : is_bias ? 0.0f
                           : (float)(0.02 * fpt_stream_normal(s, j));
}

static const float *attention(const void *la) { return ((const acts *)la)->att; }

const fpt_backbone fpt_backbone_gpt2 = {
    .kind = "gpt2",
    .attrs = attrs,
    .n_attrs = (int)(sizeof attrs / sizeof *attrs),
    .check = check,
    .tensors = tensors,
    .bind = bind,
    .unbind = unbind,
    .layer_rows = layer_rows,
    .layer_acts = layer_acts,
    .layer_acts_free = layer_acts_free,
    .layer_out = layer_out,
    .scratch = make_scratch,
    .scratch_free = scratch_free,
    .embed_forward = embed_forward,
    .embed_backward = embed_backward,
    .layer_forward = layer_forward,
    .layer_backward = layer_backward,
    .final_acts = final_acts,
    .final_acts_free = final_acts_free,
    .final_forward = final_forward,
    .final_backward = final_backward,
    .init_tensor = init_tensor,
    .attention = attention,
    .frozen_bf16 = frozen_bf16,
};
