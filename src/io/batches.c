#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/batches.h"
#include "fpt/check.h"
#include "fpt/rng.h"
#include "fpt/task_registry.h"

int fpt_source_open_task(fpt_source *s, const fpt_bit_task *t, const char *name, uint64_t seed,
                         uint64_t data_seed, int64_t eval_samples) {
  memset(s, 0, sizeof *s);
  s->pad_id = -1;
  snprintf(s->task, sizeof s->task, "%s", name);
  s->bits = *t;
  s->shape = fpt_bit_task_shape(t);
  s->K = s->shape.r * s->shape.n_out / s->shape.n_cls;
  s->train_key = seed;
  s->eval_key = data_seed;
  s->eval_samples = eval_samples;
  s->perm_epoch = -1;
  return 0;
}

int fpt_source_open_generated(fpt_source *s, const char *name, int n_bits, int patterns, int patch,
                              uint64_t seed, uint64_t data_seed, int64_t eval_samples) {
  fpt_bit_task t;
  FPT_TRY(fpt_bit_task_make(&t, name, n_bits, patterns, patch));
  return fpt_source_open_task(s, &t, t.def->name, seed, data_seed, eval_samples);
}

int fpt_source_open_file(fpt_source *s, const char *path, const char *tokens, uint64_t seed,
                         int augment, MPI_Comm comm) {
  memset(s, 0, sizeof *s);
  s->from_file = 1;
  s->perm_epoch = -1;
  s->shuffle_seed = seed;
  FPT_TRY(fpt_data_open(&s->rd, path, comm));
  const fpt_dataset *m = &s->rd.meta;
  snprintf(s->task, sizeof s->task, "%s", m->task);
  s->which = 1;
  if (tokens && !strcmp(tokens, "x2")) {
    FPT_ENSURE(m->seq2 > 0, "%s: option --tokens x2: the file has no second tokenisation", path);
    s->which = 2;
  } else {
    FPT_ENSURE(!tokens || !strcmp(tokens, "x"), "option --tokens: '%s' is not x or x2", tokens);
  }
  FPT_ENSURE(s->rd.n[FPT_TRAIN] > 0, "%s: /train is empty", path);
  FPT_ENSURE((int64_t)m->n_classes * m->K % m->r == 0,
             "%s: n_classes * K (%d * %d) is not a multiple of r (%d)", path, m->n_classes, m->K,
             m->r);
  fpt_task_shape sh = {0};
  sh.d_in = s->which == 1 ? m->d_in : 0;
  sh.vocab = s->which == 1 ? m->vocab : m->vocab2;
  sh.seq = s->which == 1 ? m->seq : m->seq2;
  sh.r = m->r;
  sh.n_cls = m->n_classes;
  sh.n_out = m->n_classes * m->K / m->r;
  s->shape = sh;
  s->K = m->K;
  s->pad_id = sh.vocab > 0 ? m->pad_id : -1;
  // The task's training-time transform (the task table), if it has one.
  const fpt_task_def *def = fpt_task_find(m->task);
  if (augment && def && def->transform) {
    s->transform = def->transform;
    s->augment = 1;
    FPT_ENSURE(m->seq == s->transform->seq && m->d_in == s->transform->d_in,
               "%s: a %s file must hold %d x %d tokens", path, m->task, s->transform->seq,
               s->transform->d_in);
  }
  return 0;
}

void fpt_source_close(fpt_source *s) {
  if (s->from_file && s->rd.file > 0)
    fpt_data_close(&s->rd);
  free(s->perm);
  s->perm = NULL;
}

int64_t fpt_source_size(const fpt_source *s, int split) {
  if (s->from_file)
    return s->limit[split] > 0 && s->limit[split] < s->rd.n[split] ? s->limit[split]
                                                                   : s->rd.n[split];
  return split == FPT_TRAIN ? -1 : s->eval_samples;
}

void fpt_source_want_lengths(fpt_source *s) { s->lengths = s->pad_id >= 0; }

int fpt_source_mlm(fpt_source *s, uint64_t seed) {
  FPT_ENSURE(s->from_file && !strcmp(s->task, "text") && s->shape.vocab == 256,
             "%s: masked-byte pretraining needs a byte-level text file (fpt data text), not task "
             "%s",
             s->from_file ? s->rd.path : "option --data", s->task);
  s->mlm = 1;
  s->mlm_seed = seed;
  s->shape.vocab = s->shape.n_out = s->shape.n_cls = FPT_MLM_MASK + 1;
  return 0;
}

// BERT's masking of n samples' bytes in place (ids), targets in y. `key`
// names the draw: the training step's stream position, or the split.
static void mlm_mask(const fpt_source *s, uint32_t key, const int64_t *pos, int n,
                     fpt_source_buf *b) {
  int T = s->shape.seq;
  for (int i = 0; i < n; i++) {
    fpt_stream st = {s->mlm_seed, FPT_SITE_MLM, key, (uint32_t)pos[i]};
    int32_t *ids = b->ids + (size_t)i * T, *y = b->y + (size_t)i * T;
    for (int t = 0; t < T; t++) {
      uint32_t u = fpt_stream_u32(st, 3 * (uint64_t)t), v = fpt_stream_u32(st, 3 * (uint64_t)t + 1);
      y[t] = -1;
      if (u >= (uint32_t)(0.15 * 4294967296.0))
        continue;
      y[t] = ids[t];
      if (v < (uint32_t)(0.8 * 4294967296.0))
        ids[t] = FPT_MLM_MASK;
      else if (v < (uint32_t)(0.9 * 4294967296.0))
        ids[t] = (int32_t)(fpt_stream_u32(st, 3 * (uint64_t)t + 2) % FPT_MLM_MASK);
    }
  }
}

void fpt_source_buf_init(fpt_source_buf *b, const fpt_source *s, int B) {
  b->B = B;
  b->len = s->lengths ? fpt_calloc((size_t)B, sizeof(int32_t)) : NULL;
  size_t T = (size_t)s->shape.seq;
  b->x = s->shape.d_in > 0 ? fpt_alloc_floats((size_t)B * T * s->shape.d_in) : NULL;
  b->ids = s->shape.vocab > 0 ? fpt_calloc((size_t)B * T, sizeof(int32_t)) : NULL;
  b->y = fpt_calloc((size_t)B * s->K, sizeof(int32_t));
  b->sample = fpt_calloc((size_t)B, sizeof(int64_t));
}

void fpt_source_buf_free(fpt_source_buf *b) {
  free(b->x);
  free(b->ids);
  free(b->y);
  free(b->sample);
  free(b->len);
  memset(b, 0, sizeof *b);
}

// Seeded Fisher-Yates permutation of the training split for one epoch.
static void make_perm(fpt_source *s, int64_t epoch) {
  int64_t n = s->rd.n[FPT_TRAIN];
  if (!s->perm)
    s->perm = fpt_calloc((size_t)n, sizeof(int64_t));
  for (int64_t i = 0; i < n; i++)
    s->perm[i] = i;
  fpt_stream st = {s->shuffle_seed, FPT_SITE_DATA, 0x5EED, (uint32_t)epoch};
  fpt_shuffle(s->perm, n, st);
  s->perm_epoch = epoch;
}

// Values the model indexes memory with, or that would poison a step, are
// checked as they arrive. A bad one is zeroed and recorded (the first, with
// the file, array and sample), so that this rank finishes the step like the
// others; the executor then stops every rank with that message.
static void bad_value(fpt_source *s, int32_t *slot, float *fslot, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void bad_value(fpt_source *s, int32_t *slot, float *fslot, const char *fmt, ...) {
  if (!s->bad_values) {
    char msg[FPT_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fpt_error_set("%s", msg);
    s->bad_values = 1;
  }
  if (slot)
    *slot = 0;
  if (fslot)
    *fslot = 0.0f;
}

static void check_values(fpt_source *s, int split, const int64_t *idx, int n, int need_x,
                         int need_y, fpt_source_buf *b) {
  const char *path = s->rd.path, *sp = fpt_split_names[split];
  const char *xname = s->which == 2 ? "x2" : "x";
  size_t T = (size_t)s->shape.seq;
  for (int i = 0; i < n; i++) {
    if (need_x && s->shape.vocab > 0)
      for (size_t t = 0; t < T; t++) {
        int32_t *v = &b->ids[i * T + t];
        if (*v < 0 || *v >= s->shape.vocab)
          bad_value(s, v, NULL, "%s: /%s/%s sample %lld, token %zu: id %d is outside [0, %d)", path,
                    sp, xname, (long long)idx[i], t, *v, s->shape.vocab);
      }
    if (need_x && s->shape.d_in > 0) {
      size_t w = T * s->shape.d_in;
      for (size_t j = 0; j < w; j++)
        if (!isfinite(b->x[i * w + j]))
          bad_value(s, NULL, &b->x[i * w + j], "%s: /%s/%s sample %lld holds a NaN or Inf", path,
                    sp, xname, (long long)idx[i]);
    }
    if (need_y)
      for (int k = 0; k < s->K; k++) {
        int32_t *v = &b->y[(size_t)i * s->K + k];
        if (*v < 0 || *v >= s->shape.n_cls)
          bad_value(s, v, NULL, "%s: /%s/y sample %lld, target %d: class %d is outside [0, %d)",
                    path, sp, (long long)idx[i], k, *v, s->shape.n_cls);
      }
  }
}

// Right padding: a sample's real length is one past its last non-pad token
// (at least 1, so that an all-pad sample still has a position to read).
static void lengths(const fpt_source *s, int n, fpt_source_buf *b) {
  int T = s->shape.seq;
  for (int i = 0; i < n; i++) {
    const int32_t *ids = b->ids + (size_t)i * T;
    int len = T;
    while (len > 1 && ids[len - 1] == s->pad_id)
      len--;
    b->len[i] = len;
  }
}

static int read_file(fpt_source *s, int split, const int64_t *idx, int n, int need_x, int need_y,
                     fpt_source_buf *b) {
  need_x |= s->lengths || s->mlm; // MLM's targets come from the tokens
  need_y |= s->mlm;
  void *x = !need_x ? NULL : s->shape.d_in > 0 ? (void *)b->x : (void *)b->ids;
  FPT_TRY(fpt_data_read(&s->rd, split, idx, n, s->which, x, need_y ? b->y : NULL));
  check_values(s, split, idx, n, need_x, need_y, b);
  if (s->lengths)
    lengths(s, n, b);
  return 0;
}

int fpt_source_train(fpt_source *s, int64_t first, int n, int need_x, int need_y,
                     fpt_source_buf *b) {
  for (int i = 0; i < n; i++)
    b->sample[i] = first + i;
  if (!s->from_file) {
    for (int i = 0; i < n; i++)
      fpt_bit_task_sample(&s->bits, s->train_key, FPT_TRAIN, first + i,
                          b->x + (size_t)i * s->shape.seq * s->shape.d_in, b->y + (size_t)i * s->K);
    return 0;
  }
  int64_t N = s->rd.n[FPT_TRAIN];
  int64_t *idx = fpt_calloc((size_t)(n > 0 ? n : 1), sizeof(int64_t));
  for (int i = 0; i < n; i++) {
    int64_t p = first + i, e = p / N;
    if (e != s->perm_epoch)
      make_perm(s, e);
    idx[i] = s->perm[p % N];
  }
  int rc = read_file(s, FPT_TRAIN, idx, n, need_x, need_y, b);
  if (rc == 0 && s->mlm) // a fresh masking each epoch: keyed by the stream position
    mlm_mask(s, FPT_TRAIN, b->sample, n, b);
  if (rc == 0 && need_x && s->augment) {
    size_t w = (size_t)s->shape.seq * s->shape.d_in;
    for (int i = 0; i < n; i++)
      s->transform->apply(b->x + i * w, s->shuffle_seed, (uint32_t)((first + i) / N), idx[i]);
  }
  free(idx);
  return rc;
}

int fpt_source_eval(fpt_source *s, int split, int64_t first, int n, int need_x, int need_y,
                    fpt_source_buf *b) {
  for (int i = 0; i < n; i++)
    b->sample[i] = first + i;
  if (!s->from_file) {
    for (int i = 0; i < n; i++)
      fpt_bit_task_sample(&s->bits, s->eval_key, split, first + i,
                          b->x + (size_t)i * s->shape.seq * s->shape.d_in, b->y + (size_t)i * s->K);
    return 0;
  }
  int64_t *idx = fpt_calloc((size_t)(n > 0 ? n : 1), sizeof(int64_t));
  for (int i = 0; i < n; i++)
    idx[i] = first + i;
  int rc = read_file(s, split, idx, n, need_x, need_y, b);
  if (rc == 0 && s->mlm) // the same masking at every evaluation
    mlm_mask(s, (uint32_t)split, idx, n, b);
  free(idx);
  return rc;
}
