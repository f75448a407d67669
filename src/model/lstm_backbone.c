// The LSTM backbone kind: the paper's 3-layer layer-normalised LSTM
// (fpt/lstm.h for the layer), no positional table, no final norm: the
// backbone's output is the top layer's h. Its LayerNorms form the "ln" group;
// i2h and h2h the "other" group, trained only with --full-train (the paper's
// freeze_trans: a "random frozen LSTM" trains its LayerNorms, input and output).
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/lstm.h"
#include "fpt/model.h"
#include "fpt/rng.h"

#define F(field) offsetof(fpt_backbone_cfg, field)
static const fpt_attr_spec attrs[] = {
    {"n_layer", FPT_ATTR_INT, F(n_layer), 1, 0, 1, 1 << 20, NULL},
    {"n_embd", FPT_ATTR_INT, F(n_embd), 1, 0, 2, 1 << 20, NULL},
    {"layer_norm_epsilon", FPT_ATTR_FLOAT, F(ln_eps), 0, 1e-6, 1e-30, 0.5, NULL},
    {"residual", FPT_ATTR_INT, F(residual), 0, 0, 0, 1, NULL},
};
#undef F

// Tensors of layer k, in order, and the layer's view of them.
static const struct {
  const char *name;
  int group, rows; // rows in units of C; 2-D tensors are (rows*C, C)
  int matrix;
} layer_tensors[10] = {{"i2h/weight", FPT_G_OTHER, 4, 1},  {"i2h/bias", FPT_G_OTHER, 4, 0},
                       {"h2h/weight", FPT_G_OTHER, 4, 1},  {"h2h/bias", FPT_G_OTHER, 4, 0},
                       {"ln_i2h/weight", FPT_G_LN, 4, 0},  {"ln_i2h/bias", FPT_G_LN, 4, 0},
                       {"ln_h2h/weight", FPT_G_LN, 4, 0},  {"ln_h2h/bias", FPT_G_LN, 4, 0},
                       {"ln_cell/weight", FPT_G_LN, 1, 0}, {"ln_cell/bias", FPT_G_LN, 1, 0}};

typedef struct {
  fpt_lstm_w w;
  fpt_lstm_g g;
} layer_weights;

typedef struct {
  fpt_lstm_acts k;
  float *out;     // (B,T,C)
  float *h0, *c0; // (B,C) the initial state of the last pass (random state)
} acts;

static int check(const fpt_backbone_cfg *c, const char *file) {
  FPT_ENSURE(c->n_embd >= 2, "%s: n_embd = %d: an LSTM needs at least 2", file, c->n_embd);
  FPT_ENSURE(c->residual == 0 || c->residual == 1, "%s: attribute residual = %d must be 0 or 1",
             file, c->residual);
  FPT_ENSURE(c->ln_eps > 0 && c->ln_eps < 1, "%s: layer_norm_epsilon = %g is out of range", file,
             (double)c->ln_eps);
  return 0;
}

static void tensors(const fpt_backbone_cfg *c, int where, fpt_tensor_fn add, void *ctx) {
  if (where < 0)
    return; // no positional table, no final norm
  int C = c->n_embd;
  char nm[48];
  for (int k = 0; k < 10; k++) {
    snprintf(nm, sizeof nm, "lstm/%d/%s", where, layer_tensors[k].name);
    add(ctx, layer_tensors[k].group, nm, layer_tensors[k].rows * C,
        layer_tensors[k].matrix ? C : 0);
  }
}

static fpt_tensor *find(fpt_model *m, int l, int k) {
  char nm[48];
  snprintf(nm, sizeof nm, "lstm/%d/%s", l, layer_tensors[k].name);
  return fpt_model_find(m, nm);
}

static void bind(fpt_model *m) {
  layer_weights *lw = fpt_calloc((size_t)m->cfg.n_layer, sizeof *lw);
  for (int l = m->part.l0; l < m->part.l1; l++) {
    fpt_lstm_w *w = &lw[l].w;
    fpt_lstm_g *g = &lw[l].g;
#define B(field, k)                                                                                \
  w->field = find(m, l, k)->data;                                                                  \
  g->field = find(m, l, k)->grad
    B(i2h_w, 0);
    B(i2h_b, 1);
    B(h2h_w, 2);
    B(h2h_b, 3);
    B(ln_i2h_w, 4);
    B(ln_i2h_b, 5);
    B(ln_h2h_w, 6);
    B(ln_h2h_b, 7);
    B(ln_cell_w, 8);
    B(ln_cell_b, 9);
#undef B
  }
  m->bbw = lw;
}

static void unbind(fpt_model *m) {
  free(m->bbw);
  m->bbw = NULL;
}

static int layer_rows(const fpt_model *m, int l) {
  (void)l;
  return m->task.seq; // a recurrence runs over every position
}

static void *layer_acts(const fpt_model *m, int l, int B) {
  (void)l;
  int T = m->task.seq, C = m->cfg.n_embd;
  acts *a = fpt_calloc(1, sizeof *a);
  fpt_lstm_acts_create(&a->k, B, T, C);
  a->out = fpt_alloc_floats((size_t)B * T * C);
  a->h0 = fpt_alloc_floats((size_t)B * C);
  a->c0 = fpt_alloc_floats((size_t)B * C);
  return a;
}

static void layer_acts_free(void *p) {
  acts *a = p;
  fpt_lstm_acts_free(&a->k);
  free(a->out);
  free(a->h0);
  free(a->c0);
  free(a);
}

static float *layer_out(void *la) { return ((acts *)la)->out; }
static void *no_scratch(const fpt_model *m, int B) {
  (void)m;
  (void)B;
  return NULL;
}
static void no_free(void *p) { (void)p; }

static void embed_none(const fpt_model *m, fpt_acts *a, const fpt_batch *b, const fpt_pass *p) {
  (void)m, (void)a, (void)b, (void)p;
}

static fpt_dropout drop_of(const fpt_model *m, const fpt_batch *b, const fpt_pass *p) {
  fpt_dropout d = {p->train ? m->dropout : 0.0f, p->seed, p->step, b->sample};
  return d;
}

// The paper's code draws h0 and c0 from N(0, sqrt(2 / (2C))) on every pass,
// evaluation included. Here the draw is keyed by (seed, step, global sample,
// layer), so that it does not depend on the batch split; evaluation passes
// (step 0, seed 0) see the same state every time.
static void random_state(const fpt_model *m, acts *a, int l, const fpt_batch *b,
                         const fpt_pass *p) {
  int C = m->cfg.n_embd;
  double sd = sqrt(2.0 / (2.0 * C));
  for (int i = 0; i < b->B; i++) {
    fpt_stream s = {p->seed, FPT_SITE_LSTM_STATE, p->step, (uint32_t)b->sample[i]};
    for (int c = 0; c < C; c++) {
      a->h0[(size_t)i * C + c] = (float)(sd * fpt_stream_normal(s, (uint64_t)l * 2 * C + c));
      a->c0[(size_t)i * C + c] = (float)(sd * fpt_stream_normal(s, (uint64_t)l * 2 * C + C + c));
    }
  }
}

static void layer_forward(const fpt_model *m, fpt_acts *fa, int l, const float *in,
                          const fpt_batch *b, const fpt_pass *p) {
  const layer_weights *lw = &((const layer_weights *)m->bbw)[l];
  acts *a = fa->layer[l - fa->l0];
  fpt_dropout d = drop_of(m, b, p);
  if (m->random_state)
    random_state(m, a, l, b, p);
  lstm_layer_forward(a->out, &a->k, in, &lw->w, m->random_state ? a->h0 : NULL,
                     m->random_state ? a->c0 : NULL, b->B, m->task.seq, m->cfg.n_embd,
                     m->cfg.ln_eps, m->cfg.residual, &d, fpt_dropout_site(l, FPT_DROP_LSTM_OUT));
}

static void layer_backward(const fpt_model *m, fpt_acts *fa, int l, const float *in,
                           const fpt_batch *b, const fpt_pass *p, int need_dinput) {
  const layer_weights *lw = &((const layer_weights *)m->bbw)[l];
  acts *a = fa->layer[l - fa->l0];
  fpt_dropout d = drop_of(m, b, p);
  lstm_layer_backward(need_dinput ? fa->dres2 : NULL, &lw->g, fa->dres, &a->k, in, &lw->w,
                      m->random_state ? a->h0 : NULL, m->random_state ? a->c0 : NULL, b->B,
                      m->task.seq, m->cfg.n_embd, m->cfg.residual, &d, NULL, NULL);
  float *t = fa->dres; // d(input) is the next layer down's d(output)
  fa->dres = fa->dres2;
  fa->dres2 = t;
}

// No final norm: the backbone's output is the top layer's output.
static void *final_none(const fpt_model *m, int rows) {
  (void)m;
  (void)rows;
  return NULL;
}

static const float *final_forward(const fpt_model *m, void *fa, const float *h, int n) {
  (void)m, (void)fa, (void)n;
  return h;
}

static void final_backward(const fpt_model *m, void *fa, const float *h, const float *dout,
                           float *dh, int n) {
  (void)fa, (void)h;
  memcpy(dh, dout, sizeof(float) * (size_t)n * m->cfg.n_embd);
}

// The paper's init: every parameter of the LSTM cell U(+-1/sqrt(C)); each
// LayerNorm's gain and bias U(+-1/sqrt(its size)) (4C or C), not 1 and 0.
static void init_tensor(const fpt_model *m, fpt_tensor *t, uint64_t seed) {
  int size = t->group == FPT_G_LN ? t->shape[0] : m->cfg.n_embd;
  float bound = 1.0f / sqrtf((float)size);
  fpt_stream s = {seed, FPT_SITE_INIT, (uint32_t)t->uid, 0};
  for (size_t j = 0; j < t->numel; j++)
    t->data[j] = bound * (2.0f * fpt_stream_uniform(s, j) - 1.0f);
}

const fpt_backbone fpt_backbone_lstm = {
    .kind = "lstm",
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
    .scratch = no_scratch,
    .scratch_free = no_free,
    .embed_forward = embed_none,
    .embed_backward = embed_none,
    .layer_forward = layer_forward,
    .layer_backward = layer_backward,
    .final_acts = final_none,
    .final_acts_free = no_free,
    .final_forward = final_forward,
    .final_backward = final_backward,
    .init_tensor = init_tensor,
    .attention = NULL,
};
