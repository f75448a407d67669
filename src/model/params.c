#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/model.h"

const char *const fpt_group_names[FPT_G_N] = {"in", "out", "ln", "pos", "attn", "ff", "other"};

fpt_freeze fpt_freeze_default(void) {
  fpt_freeze f = {{0}, 0};
  f.frozen[FPT_G_ATTN] = 1;
  f.frozen[FPT_G_FF] = 1;
  return f;
}

int fpt_is_backbone(const fpt_tensor *t) { return t->group != FPT_G_IN && t->group != FPT_G_OUT; }

int fpt_group_trainable(const fpt_freeze *f, int group) {
  if (group == FPT_G_IN || group == FPT_G_OUT)
    return !f->frozen[group];
  if (group == FPT_G_OTHER)
    return f->full;
  return f->full || !f->frozen[group];
}

// Building the table: every tensor of the whole model gets the next uid;
// only those of the part enter the table.
typedef struct {
  fpt_model *m;
  int uid, owned, layer;
} table_ctx;

static void add(void *ctx, int group, const char *name, int d0, int d1) {
  table_ctx *c = ctx;
  int id = c->uid++;
  if (!c->owned)
    return;
  fpt_model *m = c->m;
  fpt_tensor *t = &m->tensors[m->n_tensors++];
  memset(t, 0, sizeof *t);
  t->uid = id;
  snprintf(t->name, sizeof t->name, "%s", name);
  t->group = group;
  t->layer = c->layer;
  t->ndim = d1 ? 2 : 1;
  t->shape[0] = d0;
  t->shape[1] = d1;
  t->numel = (size_t)d0 * (d1 ? d1 : 1);
  t->trainable = fpt_group_trainable(&m->freeze, group);
}

int fpt_model_create(fpt_model *m, const fpt_backbone_cfg *cfg, const fpt_task_shape *task,
                     const fpt_freeze *fr) {
  fpt_part all = {0, cfg->n_layer, 1, 1};
  return fpt_model_create_part(m, cfg, task, fr, &all, NULL);
}

size_t fpt_model_frozen_size(const fpt_backbone_cfg *cfg, const fpt_task_shape *task,
                             const fpt_freeze *fr, const fpt_part *part) {
  fpt_tensor *t;
  int n;
  if (fpt_model_table(cfg, task, fr, part, &t, &n) != 0)
    return 0;
  size_t sum = 0;
  for (int i = 0; i < n; i++)
    sum += t[i].trainable ? 0 : (t[i].numel + 15) & ~(size_t)15;
  free(t);
  return sum;
}

int fpt_model_needs_lengths(const fpt_backbone_cfg *cfg, const fpt_task_shape *task) {
  return task->readout != FPT_READOUT_LAST || (cfg->n_head > 0 && !cfg->causal);
}

// The kind's model-file attributes in the ranges its reader accepts: a model
// fpt builds (fpt init) is one it can read back.
static int check_attrs(const fpt_backbone *bb, const fpt_backbone_cfg *cfg) {
  for (int i = 0; i < bb->n_attrs; i++) {
    const fpt_attr_spec *a = &bb->attrs[i];
    const char *field = (const char *)cfg + a->offset;
    double v = a->type == FPT_ATTR_INT     ? *(const int *)field
               : a->type == FPT_ATTR_FLOAT ? *(const float *)field
                                           : a->lo;
    FPT_ENSURE(v >= a->lo && v <= a->hi, "model: %s = %.10g is out of range [%.10g, %.10g]",
               a->name, v, a->lo, a->hi);
  }
  return 0;
}

int fpt_model_check(const fpt_backbone_cfg *cfg, const fpt_task_shape *task) {
  const fpt_backbone *bb = fpt_backbone_find(cfg->kind);
  FPT_ENSURE(bb, "model: unknown backbone kind '%s' (known: %s)", cfg->kind, fpt_backbone_kinds());
  FPT_TRY(check_attrs(bb, cfg));
  FPT_ENSURE(cfg->n_layer >= 1 && cfg->n_embd >= 1, "model: n_layer and n_embd must be positive");
  FPT_TRY(bb->check(cfg, "model"));
  FPT_ENSURE((task->d_in > 0) != (task->vocab > 0),
             "task: exactly one of token width and vocabulary must be set");
  FPT_ENSURE(task->seq >= 1, "task: %d tokens per sample", task->seq);
  FPT_ENSURE(!cfg->n_positions || task->seq <= cfg->n_positions,
             "task: %d tokens per sample, but the model has n_positions = %d", task->seq,
             cfg->n_positions);
  FPT_ENSURE(task->r >= 1 && task->r <= task->seq, "task: readout length %d must be in 1..%d",
             task->r, task->seq);
  FPT_ENSURE(task->readout == FPT_READOUT_LAST || task->r == 1,
             "task: the last-real and mean readouts read one position (r = 1), not %d", task->r);
  FPT_ENSURE(task->n_cls >= 2 && task->n_out >= 1 && (task->r * task->n_out) % task->n_cls == 0,
             "task: r*n_out (%d) must be a multiple of n_classes (%d)", task->r * task->n_out,
             task->n_cls);
  FPT_ENSURE(!task->tied || (task->vocab > 0 && task->n_out == task->vocab),
             "task: a tied language-model head needs n_out (%d) == vocab (%d)", task->n_out,
             task->vocab);
  return 0;
}

// The tensor table (names, shapes, groups, trainable) without any storage,
// in model order: input layer, the backbone's pre-layer tensors, its layers,
// its post-layer tensors, output layer.
static int build_table(fpt_model *m, const fpt_backbone_cfg *cfg, const fpt_task_shape *task,
                       const fpt_freeze *fr, const fpt_part *part) {
  memset(m, 0, sizeof *m);
  FPT_TRY(fpt_model_check(cfg, task));
  m->cfg = *cfg;
  m->bb = fpt_backbone_find(cfg->kind);
  m->task = *task;
  m->freeze = *fr;
  m->part = *part;
  m->dropout = 0.1f;
  int L = cfg->n_layer, C = cfg->n_embd;
  m->K = task->r * task->n_out / task->n_cls;
  FPT_ENSURE(part->l0 >= 0 && part->l0 <= part->l1 && part->l1 <= L,
             "model: layer range [%d, %d) is outside 0..%d", part->l0, part->l1, L);
  int in = part->has_input, hd = part->has_head, cap = 8;
  // Capacity: count the backbone's tensors first.
  table_ctx count = {m, 0, 0, FPT_AT_PRE};
  for (int w = FPT_AT_POST; w < L; w++)
    m->bb->tensors(cfg, w, add, &count);
  cap += count.uid;
  m->tensors = fpt_calloc((size_t)cap, sizeof(fpt_tensor));
  table_ctx c = {m, 0, in, FPT_AT_PRE};
  if (task->tied) {
    c.owned = in || hd;
    add(&c, FPT_G_IN, "wte/weight", task->vocab, C);
  } else if (task->vocab > 0) {
    add(&c, FPT_G_IN, "in/weight", task->vocab, C);
  } else {
    add(&c, FPT_G_IN, "in/weight", task->d_in, C);
    add(&c, FPT_G_IN, "in/bias", C, 0);
  }
  c.owned = in;
  m->bb->tensors(cfg, FPT_AT_PRE, add, &c);
  for (int l = 0; l < L; l++) {
    c.owned = l >= part->l0 && l < part->l1;
    c.layer = l;
    m->bb->tensors(cfg, l, add, &c);
  }
  c.owned = hd;
  c.layer = FPT_AT_POST;
  m->bb->tensors(cfg, FPT_AT_POST, add, &c);
  if (!task->tied) {
    add(&c, FPT_G_OUT, "out/weight", C, task->n_out);
    add(&c, FPT_G_OUT, "out/bias", task->n_out, 0);
  }
  return 0;
}

// Where backward must reach, from the whole model's table (every stage
// computes the same): the lowest layer with a trainable tensor, or layer 0
// when a tensor before the first layer trains (input layer, positions, a
// tied token table); n_layer when only tensors after the layers do.
static void grad_reach(fpt_model *m) {
  fpt_part all = {0, m->cfg.n_layer, 1, 1};
  fpt_tensor *t;
  int n;
  m->grad_floor = m->cfg.n_layer;
  m->input_trains = 0;
  if (fpt_model_table(&m->cfg, &m->task, &m->freeze, &all, &t, &n) != 0)
    return;
  for (int i = 0; i < n; i++) {
    if (!t[i].trainable || t[i].layer == FPT_AT_POST || t[i].group == FPT_G_OUT)
      continue;
    if (t[i].layer == FPT_AT_PRE)
      m->input_trains = 1;
    int at = t[i].layer >= 0 ? t[i].layer : 0;
    m->grad_floor = at < m->grad_floor ? at : m->grad_floor;
  }
  free(t);
}

int fpt_model_table(const fpt_backbone_cfg *cfg, const fpt_task_shape *task, const fpt_freeze *fr,
                    const fpt_part *part, fpt_tensor **tensors, int *n) {
  fpt_model m;
  int rc = build_table(&m, cfg, task, fr, part);
  if (rc != 0) {
    free(m.tensors);
    return rc;
  }
  *tensors = m.tensors;
  *n = m.n_tensors;
  return 0;
}

int fpt_model_create_part(fpt_model *m, const fpt_backbone_cfg *cfg, const fpt_task_shape *task,
                          const fpt_freeze *fr, const fpt_part *part, float *frozen_ext) {
  int rc = build_table(m, cfg, task, fr, part);
  if (rc != 0) {
    free(m->tensors);
    m->tensors = NULL;
    return rc;
  }

  for (int i = 0; i < m->n_tensors; i++) {
    fpt_tensor *t = &m->tensors[i];
    // Pad each tensor to 16 floats so that every tensor starts 64-byte aligned.
    size_t padded = (t->numel + 15) & ~(size_t)15;
    if (t->trainable)
      m->n_train += padded;
    else
      m->n_frozen += padded;
  }
  m->frozen_external = frozen_ext != NULL;
  m->frozen_mem = frozen_ext ? frozen_ext : fpt_alloc_floats(m->n_frozen);
  m->train_mem = fpt_alloc_floats(m->n_train);
  m->grad_mem = fpt_alloc_floats(m->n_train);
  m->adam_m = fpt_alloc_floats(m->n_train);
  m->adam_v = fpt_alloc_floats(m->n_train);
  size_t of = 0, ot = 0;
  for (int i = 0; i < m->n_tensors; i++) {
    fpt_tensor *t = &m->tensors[i];
    size_t padded = (t->numel + 15) & ~(size_t)15;
    if (t->trainable) {
      t->data = m->train_mem + ot;
      t->grad = m->grad_mem + ot;
      ot += padded;
    } else {
      t->data = m->frozen_mem + of;
      of += padded;
    }
  }
  fpt_tensor *t = fpt_model_find(m, task->tied ? "wte/weight" : "in/weight");
  if (t)
    m->in_w = (fpt_param){t->data, t->grad};
  if ((t = fpt_model_find(m, "in/bias")))
    m->in_b = (fpt_param){t->data, t->grad};
  if ((t = fpt_model_find(m, "out/weight")))
    m->out_w = (fpt_param){t->data, t->grad};
  if ((t = fpt_model_find(m, "out/bias")))
    m->out_b = (fpt_param){t->data, t->grad};
  m->bb->bind(m);
  grad_reach(m);
  return 0;
}

void fpt_model_free(fpt_model *m) {
  if (m->bb && m->bbw)
    m->bb->unbind(m);
  free(m->tensors);
  if (!m->frozen_external)
    free(m->frozen_mem);
  free(m->train_mem);
  free(m->grad_mem);
  free(m->adam_m);
  free(m->adam_v);
  memset(m, 0, sizeof *m);
}

int fpt_model_set_frozen_dtype(fpt_model *m, int dtype) {
  FPT_ENSURE(dtype == FPT_FROZEN_FP32 || dtype == FPT_FROZEN_BF16, "model: frozen dtype %d", dtype);
  FPT_ENSURE(dtype == FPT_FROZEN_FP32 || m->bb->frozen_bf16,
             "model: the %s backbone keeps its frozen matrices in fp32 only (bf16: gpt2)",
             m->cfg.kind);
  int rc = m->bb->frozen_bf16 ? m->bb->frozen_bf16(m, dtype == FPT_FROZEN_BF16) : 0;
  m->frozen_dtype = rc == 0 ? dtype : FPT_FROZEN_FP32; // a failed pack leaves none
  return rc;
}

fpt_tensor *fpt_model_find(fpt_model *m, const char *name) {
  for (int i = 0; i < m->n_tensors; i++)
    if (strcmp(m->tensors[i].name, name) == 0)
      return &m->tensors[i];
  return NULL;
}
