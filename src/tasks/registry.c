// The task table: every task fpt knows, one row each (fpt/task_registry.h).
// A new task is one file under src/tasks with its build function (and, if
// generated on the fly, its shape and sampler), declared in
// fpt/task_registry.h, plus one row here (docs/TASKS.md).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/images.h"
#include "fpt/task_registry.h"

#define TAKES_SPLITS (FPT_TAKES(N_TRAIN) | FPT_TAKES(N_VAL) | FPT_TAKES(N_TEST))

const fpt_task_def fpt_task_table[] = {
    {.name = "bit-xor",
     .summary = "generated: XOR of two 5-bit strings, 10 x 1 tokens (also fpt train --task)",
     .options = FPT_TAKES(SEED) | TAKES_SPLITS | FPT_TAKES(BIT_LENGTH) | FPT_TAKES(PATCH),
     .defaults = {.n_train = 10000,
                  .n_val = 1000,
                  .n_test = 1000,
                  .bit_length = 5,
                  .patterns = 2,
                  .patch = 1},
     .build = fpt_task_generate,
     .gen_shape = fpt_bit_xor_shape,
     .gen_sample = fpt_bit_xor_sample},
    {.name = "bit-memory",
     .summary = "generated: recall one of 5 stored 1000-bit patterns from a masked copy, "
                "120 x 50 tokens (also fpt train --task)",
     .options = FPT_TAKES(SEED) | TAKES_SPLITS | FPT_TAKES(BIT_LENGTH) | FPT_TAKES(PATTERNS) |
                FPT_TAKES(PATCH),
     .defaults = {.n_train = 10000,
                  .n_val = 1000,
                  .n_test = 1000,
                  .bit_length = 1000,
                  .patterns = 5,
                  .patch = 50},
     .build = fpt_task_generate,
     .gen_shape = fpt_bit_memory_shape,
     .gen_sample = fpt_bit_memory_sample},
    {.name = "listops",
     .summary = "LRA ListOps: LRA's generator (TSV files in --tsv-dir), or LRA's TSV files "
                "(--input DIR); x 512 ids, x2 2000",
     .options = FPT_TAKES(SEED) | TAKES_SPLITS | FPT_TAKES(INPUT) | FPT_TAKES(TSV_DIR),
     .defaults = {.n_train = 96000, .n_val = 2000, .n_test = 2000},
     .reads = "ListOps",
     .build = fpt_listops_build},
    {.name = "mnist",
     .summary = "MNIST IDX files, raw or gzipped (--input DIR): 49 x 16 patch tokens "
                "(--pad32: 64 x 16)",
     .options = FPT_TAKES(SEED) | FPT_TAKES(N_VAL) | FPT_TAKES(INPUT) | FPT_TAKES(PAD32),
     .defaults = {.n_val = 5000},
     .carve_val = 1,
     .reads = "IDX files",
     .build = fpt_idx_build},
    {.name = "fashion-mnist",
     .summary = "Fashion-MNIST IDX files, as mnist (default --input: Debian's "
                "dataset-fashion-mnist)",
     .options = FPT_TAKES(SEED) | FPT_TAKES(N_VAL) | FPT_TAKES(INPUT) | FPT_TAKES(PAD32),
     .defaults = {.n_val = 5000, .input = FPT_FASHION_MNIST_DIR},
     .carve_val = 1,
     .reads = "IDX files",
     .build = fpt_idx_build},
    {.name = "cifar10",
     .summary = "CIFAR-10 binary batches (--input DIR): 64 x 48 patch tokens; crop/flip/rotate "
                "in training",
     .options = FPT_TAKES(SEED) | FPT_TAKES(N_VAL) | FPT_TAKES(INPUT),
     .defaults = {.n_val = 5000},
     .carve_val = 1,
     .reads = "CIFAR-10 batches",
     .build = fpt_cifar10_build,
     .transform = &fpt_cifar10_augmentation},
    {.name = "cifar10-lra",
     .summary = "CIFAR-10 in grey as LRA (--input DIR): 1024 x 1 pixel tokens; crop/flip/rotate "
                "in training",
     .options = FPT_TAKES(SEED) | FPT_TAKES(N_VAL) | FPT_TAKES(INPUT),
     .defaults = {.n_val = 5000},
     .carve_val = 1,
     .reads = "CIFAR-10 batches",
     .build = fpt_cifar10_lra_build,
     .transform = &fpt_cifar10_lra_augmentation},
    {.name = "pfam",
     .summary = "protein families, one Stockholm file each (--input A.sto,B.sto; default: "
                "Debian's hmmer-examples)",
     .options = FPT_TAKES(SEED) | FPT_TAKES(INPUT) | FPT_TAKES(MAX_LEN),
     .defaults = {.max_len = 1024},
     .reads = "Stockholm files",
     .build = fpt_pfam_build},
    {.name = "text",
     .summary = "byte windows of text files (--input F1,F2) for fpt pretrain",
     .options = FPT_TAKES(INPUT) | FPT_TAKES(SEQ),
     .defaults = {.seq = 256},
     .reads = "text",
     .build = fpt_text_build},
};
const int fpt_task_count = (int)(sizeof fpt_task_table / sizeof *fpt_task_table);

#define O(k, t, h)                                                                                 \
  { .key = #k, .type = FPT_OPT_##t, .offset = offsetof(fpt_task_args, k), .help = h }
const fpt_opt fpt_task_opts[FPT_N_TOPTS] = {
    [FPT_TOPT_INPUT] = O(input, STR, "source directory or comma-separated files"),
    [FPT_TOPT_TSV_DIR] = O(tsv_dir, STR, "where the generated TSV files go (default OUT.tsv.d)"),
    [FPT_TOPT_SEED] = O(seed, INT, "seed of the generator and of the validation split (1)"),
    [FPT_TOPT_N_TRAIN] = O(n_train, INT, "training samples"),
    [FPT_TOPT_N_VAL] =
        O(n_val, INT, "validation samples (>= 1): generated, or carved out of train"),
    [FPT_TOPT_N_TEST] = O(n_test, INT, "test samples"),
    [FPT_TOPT_BIT_LENGTH] = O(bit_length, INT, "bits per pattern"),
    [FPT_TOPT_PATTERNS] = O(patterns, INT, "stored patterns"),
    [FPT_TOPT_PATCH] = O(patch, INT, "bits per token"),
    [FPT_TOPT_MAX_LEN] = O(max_len, INT, "tokens per sequence incl. <cls> and <sep>"),
    [FPT_TOPT_SEQ] = O(seq, INT, "bytes per sample"),
    [FPT_TOPT_PAD32] = O(pad32, BOOL, "pad to 32x32, 64 tokens (the paper's text)"),
};
#undef O

const fpt_task_def *fpt_task_find(const char *name) {
  for (int i = 0; name && i < fpt_task_count; i++)
    if (!strcmp(fpt_task_table[i].name, name))
      return &fpt_task_table[i];
  return NULL;
}

const char *fpt_task_names(char *buf, size_t n, int generated_only) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < fpt_task_count; i++) {
    if (generated_only && !fpt_task_table[i].gen_sample)
      continue;
    int w = snprintf(buf + used, n - used, "%s%s", used ? ", " : "", fpt_task_table[i].name);
    if (w < 0 || (size_t)w >= n - used)
      break;
    used += (size_t)w;
  }
  return buf;
}

// "--n-train" from the key "n_train".
static const char *flag(int opt, char *buf, size_t n) {
  const char *k = fpt_task_opts[opt].key;
  size_t i = 0;
  buf[i++] = '-';
  buf[i++] = '-';
  for (; *k && i + 1 < n; k++)
    buf[i++] = *k == '_' ? '-' : *k;
  buf[i] = '\0';
  return buf;
}

static void *field(fpt_task_args *a, int opt) { return (char *)a + fpt_task_opts[opt].offset; }
static const void *cfield(const fpt_task_args *a, int opt) {
  return (const char *)a + fpt_task_opts[opt].offset;
}

void fpt_task_args_unset(fpt_task_args *a) {
  memset(a, 0, sizeof *a);
  for (int o = 0; o < FPT_N_TOPTS; o++) {
    if (fpt_task_opts[o].type == FPT_OPT_INT)
      *(long long *)field(a, o) = FPT_TASK_UNSET;
    else if (fpt_task_opts[o].type == FPT_OPT_BOOL)
      *(int *)field(a, o) = -1;
  }
}

static int is_given(const fpt_task_args *a, int opt) {
  switch (fpt_task_opts[opt].type) {
  case FPT_OPT_INT:
    return *(const long long *)cfield(a, opt) != FPT_TASK_UNSET;
  case FPT_OPT_BOOL:
    return *(const int *)cfield(a, opt) != -1;
  default:
    return *(const char *const *)cfield(a, opt) != NULL;
  }
}

int fpt_task_resolve(const fpt_task_def *t, fpt_task_args *a) {
  a->given = 0;
  char f[64];
  for (int o = 0; o < FPT_N_TOPTS; o++) {
    if (!is_given(a, o))
      continue;
    if (!(t->options & (1u << o))) {
      char takes[512];
      size_t used = 0;
      takes[0] = '\0';
      for (int k = 0; k < FPT_N_TOPTS; k++)
        if (t->options & (1u << k)) {
          int w = snprintf(takes + used, sizeof takes - used, " %s", flag(k, f, sizeof f));
          if (w > 0 && (size_t)w < sizeof takes - used)
            used += (size_t)w;
        }
      FPT_FAIL("option %s: does not apply to task %s (it takes%s)", flag(o, f, sizeof f), t->name,
               used ? takes : " none");
    }
    a->given |= 1u << o;
  }
  for (int o = 0; o < FPT_N_TOPTS; o++) {
    if (a->given & (1u << o))
      continue;
    switch (fpt_task_opts[o].type) {
    case FPT_OPT_INT:
      *(long long *)field(a, o) = *(const long long *)cfield(&t->defaults, o);
      break;
    case FPT_OPT_BOOL:
      *(int *)field(a, o) = *(const int *)cfield(&t->defaults, o);
      break;
    default:
      *(const char **)field(a, o) = *(const char *const *)cfield(&t->defaults, o);
      break;
    }
  }
  if (!(a->given & FPT_TAKES(SEED)))
    a->seed = 1; // every task's default (recorded in the file even where unused)
  FPT_ENSURE(!(t->options & FPT_TAKES(N_TRAIN)) || a->n_train >= 1,
             "option --n-train: must be >= 1");
  FPT_ENSURE(!(t->options & FPT_TAKES(N_VAL)) || a->n_val >= 1,
             "option --n-val: must be >= 1 (an empty validation split is never written)");
  FPT_ENSURE(!(t->options & FPT_TAKES(N_TEST)) || a->n_test >= 1, "option --n-test: must be >= 1");
  return 0;
}

void fpt_task_option_help(int opt, char *buf, size_t n) {
  size_t used = 0;
  int w = snprintf(buf, n, "%s [", fpt_task_opts[opt].help);
  if (w < 0 || (size_t)w >= n)
    return;
  used = (size_t)w;
  int first = 1;
  for (int i = 0; i < fpt_task_count && used < n; i++) {
    const fpt_task_def *t = &fpt_task_table[i];
    if (!(t->options & (1u << opt)))
      continue;
    char dflt[128] = "";
    if (fpt_task_opts[opt].type == FPT_OPT_INT && opt != FPT_TOPT_SEED) {
      long long v = *(const long long *)cfield(&t->defaults, opt);
      if (v)
        snprintf(dflt, sizeof dflt, " %lld", v);
    } else if (fpt_task_opts[opt].type == FPT_OPT_STR) {
      const char *v = *(const char *const *)cfield(&t->defaults, opt);
      if (v)
        snprintf(dflt, sizeof dflt, " %.100s", v);
    }
    w = snprintf(buf + used, n - used, "%s%s%s", first ? "" : ", ", t->name, dflt);
    if (w < 0 || (size_t)w >= n - used)
      return;
    used += (size_t)w;
    first = 0;
  }
  snprintf(buf + used, n - used, "]");
}

int fpt_task_generate(const fpt_task_def *t, const fpt_task_args *a, fpt_dataset *d) {
  fpt_bit_task g;
  FPT_TRY(fpt_bit_task_make(&g, t->name, (int)a->bit_length, (int)a->patterns, (int)a->patch));
  fpt_task_shape sh = fpt_bit_task_shape(&g);
  snprintf(d->task, sizeof d->task, "%s", t->name);
  d->seq = sh.seq;
  d->d_in = sh.d_in;
  d->n_classes = sh.n_cls;
  d->r = sh.r;
  d->K = sh.r * sh.n_out / sh.n_cls;
  d->pad_id = -1;
  int64_t n[3] = {a->n_train, a->n_val, a->n_test};
  for (int k = 0; k < 3; k++) {
    FPT_ENSURE(n[k] >= 1, "option --n-%s: must be >= 1", fpt_split_names[k]);
    fpt_dataset_alloc(d, k, n[k]);
    // Same streams as `fpt train --task`: split k, sample i.
    for (int64_t i = 0; i < n[k]; i++)
      fpt_bit_task_sample(&g, (uint64_t)a->seed, k, i, d->split[k].x + (size_t)i * d->seq * d->d_in,
                          d->split[k].y + (size_t)i * d->K);
  }
  snprintf(d->sources, sizeof d->sources, "generated");
  return 0;
}

int fpt_task_split_list(char *s, char ***list) {
  char **out = fpt_calloc(strlen(s) + 1, sizeof(char *));
  int n = 0;
  char *save = NULL;
  for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
    out[n++] = tok;
  *list = out;
  return n;
}
