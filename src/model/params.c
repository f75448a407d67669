#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/model.h"

const char *const fpt_group_names[FPT_G_N] = {"in", "out", "ln", "pos", "attn", "ff"};

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
  return f->full || !f->frozen[group];
}

// Every tensor of the whole model gets the next uid; only owned ones enter the table.
static void add(fpt_model *m, int *uid, int owned, int group, int layer, const char *name, int d0,
                int d1) {
  int id = (*uid)++;
  if (!owned)
    return;
  fpt_tensor *t = &m->tensors[m->n_tensors++];
  memset(t, 0, sizeof *t);
  t->uid = id;
  snprintf(t->name, sizeof t->name, "%s", name);
  t->group = group;
  t->layer = layer;
  t->ndim = d1 ? 2 : 1;
  t->shape[0] = d0;
  t->shape[1] = d1;
  t->numel = (size_t)d0 * (d1 ? d1 : 1);
  t->trainable = fpt_group_trainable(&m->freeze, group);
}

int fpt_model_create(fpt_model *m, const fpt_gpt2_config *cfg, const fpt_task_shape *task,
                     const fpt_freeze *fr) {
  fpt_part all = {0, cfg->n_layer, 1, 1};
  return fpt_model_create_part(m, cfg, task, fr, &all, NULL);
}

size_t fpt_model_frozen_size(const fpt_gpt2_config *cfg, const fpt_task_shape *task,
                             const fpt_freeze *fr, const fpt_part *part) {
  fpt_model m;
  if (fpt_model_create_part(&m, cfg, task, fr, part, (float *)&m) != 0)
    return 0;
  size_t n = m.n_frozen;
  fpt_model_free(&m);
  return n;
}

// The tensors of one block, in order; shapes in units of C (0 = absent dim).
static const struct {
  const char *name;
  int group, d0, d1; // in units of C (0 = absent dim)
} blk[12] = {{"ln_1/weight", FPT_G_LN, 1, 0},          {"ln_1/bias", FPT_G_LN, 1, 0},
             {"attn/c_attn/weight", FPT_G_ATTN, 1, 3}, {"attn/c_attn/bias", FPT_G_ATTN, 3, 0},
             {"attn/c_proj/weight", FPT_G_ATTN, 1, 1}, {"attn/c_proj/bias", FPT_G_ATTN, 1, 0},
             {"ln_2/weight", FPT_G_LN, 1, 0},          {"ln_2/bias", FPT_G_LN, 1, 0},
             {"mlp/c_fc/weight", FPT_G_FF, 1, 4},      {"mlp/c_fc/bias", FPT_G_FF, 4, 0},
             {"mlp/c_proj/weight", FPT_G_FF, 4, 1},    {"mlp/c_proj/bias", FPT_G_FF, 1, 0}};

// The tensor table (names, shapes, groups, trainable) without any storage.
static int build_table(fpt_model *m, const fpt_gpt2_config *cfg, const fpt_task_shape *task,
                       const fpt_freeze *fr, const fpt_part *part) {
  memset(m, 0, sizeof *m);
  m->cfg = *cfg;
  m->task = *task;
  m->freeze = *fr;
  m->part = *part;
  m->dropout = 0.1f;
  int L = cfg->n_layer, C = cfg->n_embd;
  FPT_ENSURE(L >= 1 && C >= 1 && cfg->n_head >= 1 && cfg->n_positions >= 1,
             "model: n_layer, n_embd, n_head and n_positions must be positive");
  FPT_ENSURE(C % cfg->n_head == 0, "model: n_embd (%d) is not divisible by n_head (%d)", C,
             cfg->n_head);
  FPT_ENSURE((task->d_in > 0) != (task->vocab > 0),
             "task: exactly one of token width and vocabulary must be set");
  FPT_ENSURE(task->seq >= 1 && task->seq <= cfg->n_positions,
             "task: %d tokens per sample, but the model has n_positions = %d", task->seq,
             cfg->n_positions);
  FPT_ENSURE(task->r >= 1 && task->r <= task->seq, "task: readout length %d must be in 1..%d",
             task->r, task->seq);
  FPT_ENSURE(task->n_cls >= 2 && task->n_out >= 1 && (task->r * task->n_out) % task->n_cls == 0,
             "task: r*n_out (%d) must be a multiple of n_classes (%d)", task->r * task->n_out,
             task->n_cls);
  m->K = task->r * task->n_out / task->n_cls;
  FPT_ENSURE(part->l0 >= 0 && part->l0 <= part->l1 && part->l1 <= L,
             "model: layer range [%d, %d) is outside 0..%d", part->l0, part->l1, L);
  int uid = 0, in = part->has_input, hd = part->has_head;

  m->tensors = fpt_calloc((size_t)(16 + 12 * (part->l1 - part->l0)), sizeof(fpt_tensor));
  char nm[48];
  FPT_ENSURE(!task->tied || (task->vocab > 0 && task->n_out == task->vocab),
             "task: a tied language-model head needs n_out (%d) == vocab (%d)", task->n_out,
             task->vocab);
  if (task->tied) {
    add(m, &uid, in || hd, FPT_G_IN, -1, "wte/weight", task->vocab, C);
  } else if (task->vocab > 0) {
    add(m, &uid, in, FPT_G_IN, -1, "in/weight", task->vocab, C);
  } else {
    add(m, &uid, in, FPT_G_IN, -1, "in/weight", task->d_in, C);
    add(m, &uid, in, FPT_G_IN, -1, "in/bias", C, 0);
  }
  add(m, &uid, in, FPT_G_POS, -1, "wpe/weight", cfg->n_positions, C);
  for (int l = 0; l < L; l++)
    for (int k = 0; k < 12; k++) {
      snprintf(nm, sizeof nm, "h/%d/%s", l, blk[k].name);
      add(m, &uid, l >= part->l0 && l < part->l1, blk[k].group, l, nm, blk[k].d0 * C,
          blk[k].d1 * C);
    }
  add(m, &uid, hd, FPT_G_LN, -1, "ln_f/weight", C, 0);
  add(m, &uid, hd, FPT_G_LN, -1, "ln_f/bias", C, 0);
  if (!task->tied) {
    add(m, &uid, hd, FPT_G_OUT, -1, "out/weight", C, task->n_out);
    add(m, &uid, hd, FPT_G_OUT, -1, "out/bias", task->n_out, 0);
  }
  return 0;
}

int fpt_model_table(const fpt_gpt2_config *cfg, const fpt_task_shape *task, const fpt_freeze *fr,
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

int fpt_model_create_part(fpt_model *m, const fpt_gpt2_config *cfg, const fpt_task_shape *task,
                          const fpt_freeze *fr, const fpt_part *part, float *frozen_ext) {
  int rc = build_table(m, cfg, task, fr, part);
  if (rc != 0) {
    free(m->tensors);
    m->tensors = NULL;
    return rc;
  }
  int L = cfg->n_layer;
  char nm[48];

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
#define P(field, nm_)                                                                              \
  do {                                                                                             \
    fpt_tensor *t_ = fpt_model_find(m, nm_);                                                       \
    if (t_)                                                                                        \
      m->field = (fpt_param){t_->data, t_->grad};                                                  \
  } while (0)
  P(in_w, task->tied ? "wte/weight" : "in/weight");
  P(in_b, "in/bias");
  P(wpe, "wpe/weight");
  P(lnf_w, "ln_f/weight");
  P(lnf_b, "ln_f/bias");
  P(out_w, "out/weight");
  P(out_b, "out/bias");
  m->blocks = fpt_calloc((size_t)L, sizeof(fpt_block));
  for (int l = part->l0; l < part->l1; l++) {
    fpt_param *slot = &m->blocks[l].ln1_w;
    for (int k = 0; k < 12; k++) {
      snprintf(nm, sizeof nm, "h/%d/%s", l, blk[k].name);
      fpt_tensor *t = fpt_model_find(m, nm);
      slot[k] = (fpt_param){t->data, t->grad};
    }
  }
#undef P
  return 0;
}

void fpt_model_free(fpt_model *m) {
  free(m->tensors);
  free(m->blocks);
  if (!m->frozen_external)
    free(m->frozen_mem);
  free(m->train_mem);
  free(m->grad_mem);
  free(m->adam_m);
  free(m->adam_v);
  memset(m, 0, sizeof *m);
}

fpt_tensor *fpt_model_find(fpt_model *m, const char *name) {
  for (int i = 0; i < m->n_tensors; i++)
    if (strcmp(m->tensors[i].name, name) == 0)
      return &m->tensors[i];
  return NULL;
}

int fpt_grad_floor(const fpt_model *m) {
  // Every block has the same groups, so block 0 is the lowest with a trainable
  // tensor whenever any block has one. Depends only on the freeze flags, so
  // every pipeline stage agrees.
  const fpt_freeze *f = &m->freeze;
  for (int g = 0; g < FPT_G_N; g++)
    if (g != FPT_G_OUT && fpt_group_trainable(f, g))
      return 0;
  return m->cfg.n_layer;
}
