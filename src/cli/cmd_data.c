// fpt data TASK ... -o DATA.h5: build a dataset file for one of the paper's
// tasks. Validation is carved out of train with a seeded split where the
// source has no validation split of its own (sizes in --n-val).
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "fpt/check.h"
#include "fpt/config.h"
#include "fpt/dataset.h"
#include "fpt/dataset_file.h"
#include "fpt/tasks.h"
#include "runtime.h"

typedef struct {
  const char *out, *input;
  long long seed, n_train, n_val, n_test, bit_length, patterns, patch, chunk_samples;
  int pad32;
} data_settings;

#define O(k, t, h) {#k, FPT_OPT_##t, offsetof(data_settings, k), h}
static const fpt_opt data_opts[] = {
    O(out, STR, "output dataset file (-o)"),
    O(input, STR, "source directory or file (task-dependent)"),
    O(seed, INT, "seed of generators and of the validation split"),
    O(n_train, INT, "training samples (generated tasks)"),
    O(n_val, INT, "validation samples: generated, or carved out of train"),
    O(n_test, INT, "test samples (generated tasks)"),
    O(bit_length, INT, "bits per pattern (bit tasks; 0 = task default)"),
    O(patterns, INT, "patterns (bit-memory; 0 = default 5)"),
    O(patch, INT, "bits per token (bit tasks; 0 = task default)"),
    O(chunk_samples, INT, "0: contiguous arrays (default); N: chunks of N samples"),
    O(pad32, BOOL, "mnist/fashion-mnist: pad to 32x32, 64 tokens (the paper's text)"),
};
#undef O
static const int n_data_opts = (int)(sizeof data_opts / sizeof *data_opts);

static int build_bits(const char *task, const data_settings *s, fpt_dataset *d) {
  fpt_bit_task t;
  FPT_TRY(fpt_bit_task_make(&t, task, (int)s->bit_length, (int)s->patterns, (int)s->patch));
  fpt_task_shape sh = fpt_bit_task_shape(&t);
  snprintf(d->task, sizeof d->task, "%s", task);
  d->seq = sh.seq;
  d->d_in = sh.d_in;
  d->n_classes = 2;
  d->r = sh.r;
  d->K = sh.r * sh.n_out / sh.n_cls;
  d->pad_id = -1;
  int64_t n[3] = {s->n_train, s->n_val, s->n_test};
  for (int k = 0; k < 3; k++) {
    FPT_ENSURE(n[k] >= 1, "option --n-%s: must be >= 1", fpt_split_names[k]);
    fpt_dataset_alloc(d, k, n[k]);
    // Same streams as `fpt train --task`: split k, sample i.
    for (int64_t i = 0; i < n[k]; i++)
      fpt_bit_task_sample(&t, (uint64_t)s->seed, k, i,
                          d->split[k].x + (size_t)i * d->seq * d->d_in,
                          d->split[k].y + (size_t)i * d->K);
  }
  snprintf(d->sources, sizeof d->sources, "generated");
  return 0;
}

static int run(int argc, char **argv) {
  FPT_ENSURE(argc > 2 && argv[2][0] != '-',
             "fpt data: the task comes first (fpt data TASK [options] -o DATA.h5)");
  const char *task = argv[2];
  data_settings s = {NULL, NULL, 1, 10000, 1000, 1000, 0, 0, 0, 0, 0};
  FPT_TRY(fpt_opts_parse(argc, argv, 3, data_opts, n_data_opts, &s));
  FPT_ENSURE(s.out, "option -o/--out: an output file is required");
  fpt_dataset d;
  memset(&d, 0, sizeof d);
  d.seed = s.seed;
  int rc;
  if (!strcmp(task, "bit-xor") || !strcmp(task, "bit-memory"))
    rc = build_bits(task, &s, &d);
  else
    FPT_FAIL("fpt data: unknown task '%s' (bit-xor, bit-memory)", task);
  if (rc == 0) {
    snprintf(d.generator, sizeof d.generator, "fpt data %s --seed %lld", task, s.seed);
    FPT_ENSURE(s.chunk_samples >= 0, "option --chunk-samples: must be >= 0");
    rc = fpt_dataset_write(s.out, &d, s.chunk_samples);
  }
  if (rc == 0)
    printf("fpt data %s: %lld train, %lld val, %lld test samples -> %s\n", task,
           (long long)d.split[0].n, (long long)d.split[1].n, (long long)d.split[2].n, s.out);
  fpt_dataset_free(&d);
  return rc;
}

int cmd_data(int argc, char **argv) {
  if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
    fpt_opts_help("fpt data TASK [options] -o DATA.h5\n"
                  "tasks: bit-xor bit-memory",
                  data_opts, n_data_opts);
    return 0;
  }
  fpt_runtime rt;
  fpt_runtime_init(&rt, &argc, &argv);
  int rc = rt.rank == 0 ? run(argc, argv) : 0;
  return fpt_runtime_finish(&rt, fpt_runtime_agree(&rt, rc));
}
