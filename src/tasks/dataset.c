#include <stdlib.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/dataset.h"
#include "fpt/rng.h"

const char *const fpt_split_names[3] = {"train", "val", "test"};

void fpt_dataset_free(fpt_dataset *d) {
  for (int s = 0; s < 3; s++) {
    free(d->split[s].x);
    free(d->split[s].ids);
    free(d->split[s].ids2);
    free(d->split[s].y);
    free(d->split[s].index);
    memset(&d->split[s], 0, sizeof d->split[s]);
  }
}

void fpt_dataset_alloc(fpt_dataset *d, int s, int64_t n) {
  fpt_split *p = &d->split[s];
  p->n = n;
  size_t N = (size_t)(n > 0 ? n : 0);
  if (d->d_in > 0)
    p->x = fpt_alloc_floats(N * d->seq * d->d_in);
  else
    p->ids = fpt_calloc(N * d->seq, sizeof(int32_t));
  if (d->seq2 > 0)
    p->ids2 = fpt_calloc(N * d->seq2, sizeof(int32_t));
  p->y = fpt_calloc(N * d->K, sizeof(int32_t));
}

// Copy sample i of `from` to slot j of `to`.
static void copy_sample(const fpt_dataset *d, const fpt_split *from, int64_t i, fpt_split *to,
                        int64_t j) {
  if (from->x) {
    size_t w = (size_t)d->seq * d->d_in;
    memcpy(to->x + j * w, from->x + i * w, w * sizeof(float));
  }
  if (from->ids)
    memcpy(to->ids + j * d->seq, from->ids + i * d->seq, sizeof(int32_t) * d->seq);
  if (from->ids2)
    memcpy(to->ids2 + j * d->seq2, from->ids2 + i * d->seq2, sizeof(int32_t) * d->seq2);
  memcpy(to->y + j * d->K, from->y + i * d->K, sizeof(int32_t) * d->K);
  to->index[j] = from->index ? from->index[i] : i;
}

void fpt_dataset_carve_val(fpt_dataset *d, int64_t n_val, uint64_t seed) {
  fpt_split *tr = &d->split[FPT_TRAIN];
  int64_t n = tr->n;
  if (n_val <= 0 || n_val >= n)
    return;
  // Seeded Fisher-Yates over indices; the first n_val become validation.
  int64_t *perm = fpt_calloc((size_t)n, sizeof(int64_t));
  for (int64_t i = 0; i < n; i++)
    perm[i] = i;
  fpt_stream st = {seed, FPT_SITE_DATA, 0xCA, 0xFE};
  fpt_shuffle(perm, n, st);
  char *is_val = fpt_calloc((size_t)n, 1);
  for (int64_t k = 0; k < n_val; k++)
    is_val[perm[k]] = 1;
  fpt_dataset nd = *d;
  memset(nd.split, 0, sizeof nd.split);
  fpt_dataset_alloc(&nd, FPT_TRAIN, n - n_val);
  fpt_dataset_alloc(&nd, FPT_VAL, n_val);
  nd.split[FPT_TRAIN].index = fpt_calloc((size_t)(n - n_val), sizeof(int64_t));
  nd.split[FPT_VAL].index = fpt_calloc((size_t)n_val, sizeof(int64_t));
  int64_t a = 0, b = 0;
  for (int64_t i = 0; i < n; i++) {
    if (is_val[i])
      copy_sample(d, tr, i, &nd.split[FPT_VAL], b++);
    else
      copy_sample(d, tr, i, &nd.split[FPT_TRAIN], a++);
  }
  free(perm);
  free(is_val);
  fpt_split test = d->split[FPT_TEST];
  d->split[FPT_TEST] = (fpt_split){0};
  fpt_dataset_free(d);
  d->split[FPT_TRAIN] = nd.split[FPT_TRAIN];
  d->split[FPT_VAL] = nd.split[FPT_VAL];
  d->split[FPT_TEST] = test;
}
