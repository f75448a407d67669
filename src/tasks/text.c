// The "text" task: byte windows of text files for fpt pretrain (fpt/text.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/task_registry.h"
#include "fpt/text.h"

static int split_of(size_t byte) {
  size_t b = (byte / FPT_TEXT_BLOCK) % FPT_TEXT_BLOCKS;
  return b == FPT_TEXT_BLOCKS - 2 ? FPT_VAL : b == FPT_TEXT_BLOCKS - 1 ? FPT_TEST : FPT_TRAIN;
}

static int read_all(const char *path, unsigned char **buf, size_t *len, size_t *cap) {
  FILE *f = fopen(path, "rb");
  FPT_ENSURE(f, "%s: cannot open", path);
  size_t before = *len;
  for (;;) {
    if (*len + 65536 + 1 > *cap) {
      *cap = 2 * *cap + 65536 + 1;
      *buf = realloc(*buf, *cap);
      FPT_ENSURE(*buf, "%s: out of memory", path);
    }
    size_t got = fread(*buf + *len, 1, 65536, f);
    *len += got;
    if (got < 65536)
      break;
  }
  int err = ferror(f);
  fclose(f);
  FPT_ENSURE(!err, "%s: read error", path);
  FPT_ENSURE(*len > before, "%s: empty file", path);
  (*buf)[(*len)++] = '\n';
  return 0;
}

int fpt_text_load(const char *const *paths, int n, int seq, fpt_dataset *d) {
  FPT_ENSURE(n >= 1, "fpt data text: --input FILE[,FILE...] is required");
  FPT_ENSURE(seq >= 2, "option --seq: must be >= 2");
  unsigned char *buf = NULL;
  size_t len = 0, cap = 0;
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++)
    rc = read_all(paths[i], &buf, &len, &cap);
  if (rc != 0) {
    free(buf);
    return rc;
  }
  snprintf(d->task, sizeof d->task, "text");
  d->seq = seq;
  d->vocab = 256;
  d->n_classes = 256;
  d->K = seq;
  d->r = seq;
  d->pad_id = -1;
  size_t windows = (len - 1) / (size_t)seq;
  int64_t count[3] = {0, 0, 0};
  for (size_t w = 0; w < windows; w++)
    count[split_of(w * seq)]++;
  for (int k = 0; k < 3; k++) {
    if (count[k] == 0) {
      free(buf);
      FPT_FAIL("fpt data text: %zu bytes give no %s windows (need more than %d blocks of %d "
               "bytes)",
               len, fpt_split_names[k], FPT_TEXT_BLOCKS, FPT_TEXT_BLOCK);
    }
    fpt_dataset_alloc(d, k, count[k]);
    d->split[k].index = fpt_calloc((size_t)count[k], sizeof(int64_t));
  }
  int64_t at[3] = {0, 0, 0};
  for (size_t w = 0; w < windows; w++) {
    int k = split_of(w * seq);
    fpt_split *sp = &d->split[k];
    const unsigned char *p = buf + w * seq;
    for (int t = 0; t < seq; t++) {
      sp->ids[(size_t)at[k] * seq + t] = p[t];
      sp->y[(size_t)at[k] * seq + t] = p[t + 1];
    }
    sp->index[at[k]] = (int64_t)w;
    at[k]++;
  }
  free(buf);
  return 0;
}

// Task table hook (fpt/task_registry.h): --input is a comma-separated list of
// UTF-8/ASCII files, read as bytes.
int fpt_text_build(const fpt_task_def *t, const fpt_task_args *a, fpt_dataset *d) {
  (void)t;
  FPT_ENSURE(a->input, "fpt data text: --input FILE[,FILE...] is required");
  char *copy = fpt_malloc(strlen(a->input) + 1);
  strcpy(copy, a->input);
  char **paths = NULL;
  int n = fpt_task_split_list(copy, &paths);
  int rc = fpt_text_load((const char *const *)paths, n, (int)a->seq, d);
  snprintf(d->sources, sizeof d->sources, "%.2000s", a->input);
  free(paths);
  free(copy);
  return rc;
}
