// fpt data TASK ... -o DATA.h5: build a dataset file for one of the paper's
// tasks. Validation is carved out of train with a seeded split where the
// source has no validation split of its own (sizes in --n-val).
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "commands.h"
#include "fpt/check.h"
#include "fpt/config.h"
#include "fpt/dataset.h"
#include "fpt/dataset_file.h"
#include "fpt/images.h"
#include "fpt/listops.h"
#include "fpt/protein.h"
#include "fpt/tasks.h"
#include "fpt/text.h"
#include "runtime.h"

typedef struct {
  const char *out, *input, *tsv_dir;
  long long seed, n_train, n_val, n_test, bit_length, patterns, patch, chunk_samples, max_len, seq;
  int pad32;
} data_settings;

#define O(k, t, h)                                                                                 \
  { #k, FPT_OPT_##t, offsetof(data_settings, k), h }
static const fpt_opt data_opts[] = {
    O(out, STR, "output dataset file (-o)"),
    O(input, STR, "source directory or file (task-dependent)"),
    O(tsv_dir, STR, "listops: where the generated LRA TSV files go (default OUT.tsv.d)"),
    O(seed, INT, "seed of generators and of the validation split"),
    O(n_train, INT, "training samples (generated tasks: bits 10000, listops 96000)"),
    O(n_val, INT, "validation samples: generated (1000), or carved out of train (5000)"),
    O(n_test, INT, "test samples (generated tasks: bits 1000, listops 2000)"),
    O(bit_length, INT, "bits per pattern (bit tasks; 0 = task default)"),
    O(patterns, INT, "patterns (bit-memory; 0 = default 5)"),
    O(patch, INT, "bits per token (bit tasks; 0 = task default)"),
    O(chunk_samples, INT, "0: contiguous arrays (default); N: chunks of N samples"),
    O(max_len, INT, "pfam: tokens per sequence incl. <cls> and <sep> (1024)"),
    O(seq, INT, "text: bytes per sample (256)"),
    O(pad32, BOOL, "mnist/fashion-mnist: pad to 32x32, 64 tokens (the paper's text)"),
};
#undef O
static const int n_data_opts = (int)(sizeof data_opts / sizeof *data_opts);

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

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
      fpt_bit_task_sample(&t, (uint64_t)s->seed, k, i, d->split[k].x + (size_t)i * d->seq * d->d_in,
                          d->split[k].y + (size_t)i * d->K);
  }
  snprintf(d->sources, sizeof d->sources, "generated");
  return 0;
}

// pfam: --input is a comma-separated list of Stockholm files (one family each);
// without it, the Pfam families that Debian's hmmer-examples ships.
static int load_pfam(const data_settings *s, fpt_dataset *d) {
  FPT_ENSURE(s->max_len >= 3, "option --max-len: must be >= 3");
  char **paths = NULL;
  int n = 0;
  if (s->input) {
    char *copy = fpt_malloc(strlen(s->input) + 1);
    strcpy(copy, s->input);
    paths = fpt_calloc(strlen(copy) + 1, sizeof(char *));
    for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ","))
      paths[n++] = tok;
    int rc = fpt_pfam_load((const char *const *)paths, n, (uint64_t)s->seed, (int)s->max_len, d);
    free(paths);
    free(copy);
    return rc;
  }
  FPT_TRY(fpt_pfam_default_paths(&paths, &n));
  int rc = fpt_pfam_load((const char *const *)paths, n, (uint64_t)s->seed, (int)s->max_len, d);
  fpt_pfam_free_paths(paths, n);
  return rc;
}

// text: --input is a comma-separated list of UTF-8/ASCII files, read as bytes.
static int load_text(const data_settings *s, fpt_dataset *d) {
  FPT_ENSURE(s->input, "fpt data text: --input FILE[,FILE...] is required");
  char *copy = fpt_malloc(strlen(s->input) + 1);
  strcpy(copy, s->input);
  const char **paths = fpt_calloc(strlen(copy) + 1, sizeof(char *));
  int n = 0;
  for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ","))
    paths[n++] = tok;
  int rc = fpt_text_load(paths, n, (int)s->seq, d);
  snprintf(d->sources, sizeof d->sources, "%.2000s", s->input);
  free(paths);
  free(copy);
  return rc;
}

// listops: read an LRA TSV directory (--input), or generate one with LRA's
// algorithm (96000/2000/2000 by default) and read that. Both tokenisations.
static int build_listops(data_settings *s, fpt_dataset *d) {
  const char *dir = s->input;
  char gen[4200];
  if (!dir) {
    if (s->tsv_dir)
      snprintf(gen, sizeof gen, "%s", s->tsv_dir);
    else
      snprintf(gen, sizeof gen, "%s.tsv.d", s->out);
    FPT_ENSURE(mkdir(gen, 0777) == 0 || errno == EEXIST, "%s: cannot create directory", gen);
    FPT_TRY(fpt_listops_generate(gen, (uint64_t)s->seed, s->n_train < 0 ? 96000 : s->n_train,
                                 s->n_val < 0 ? 2000 : s->n_val, s->n_test < 0 ? 2000 : s->n_test,
                                 10, 10, 500, 2000));
    printf("fpt data: generated LRA ListOps TSV files in %s\n", gen);
    dir = gen;
  }
  FPT_TRY(fpt_listops_load(dir, 512, 2000, d));
  // Sources: the directory (file names are LRA's basic_{train,val,test}.tsv).
  int w = snprintf(d->sources, sizeof d->sources, "%.1000s/basic_{train,val,test}.tsv", dir);
  (void)w;
  return 0;
}

static int timed_load(int rc, double t0, const char *what) {
  if (rc == 0)
    printf("fpt data: read %s in %.2f s\n", what, now() - t0);
  return rc;
}

static int run(int argc, char **argv) {
  FPT_ENSURE(argc > 2 && argv[2][0] != '-',
             "fpt data: the task comes first (fpt data TASK [options] -o DATA.h5)");
  const char *task = argv[2];
  data_settings s = {NULL, NULL, NULL, 1, -1, -1, -1, 0, 0, 0, 0, 1024, 256, 0};
  FPT_TRY(fpt_opts_parse(argc, argv, 3, data_opts, n_data_opts, &s));
  FPT_ENSURE(s.out, "option -o/--out: an output file is required");
  fpt_dataset d;
  memset(&d, 0, sizeof d);
  int rc;
  double t0 = now();
  // Sources without a validation split get one carved out of train: this many.
  int64_t carve = 0;
  if (!strcmp(task, "bit-xor") || !strcmp(task, "bit-memory")) {
    s.n_train = s.n_train < 0 ? 10000 : s.n_train;
    s.n_val = s.n_val < 0 ? 1000 : s.n_val;
    s.n_test = s.n_test < 0 ? 1000 : s.n_test;
    rc = build_bits(task, &s, &d);
  } else if (!strcmp(task, "listops")) {
    rc = timed_load(build_listops(&s, &d), t0, "ListOps");
  } else if (!strcmp(task, "mnist") || !strcmp(task, "fashion-mnist")) {
    rc = timed_load(fpt_idx_load(s.input, task, s.pad32, &d), t0, "IDX files");
    carve = s.n_val < 0 ? 5000 : s.n_val;
  } else if (!strcmp(task, "cifar10") || !strcmp(task, "cifar10-lra")) {
    FPT_ENSURE(s.input,
               "fpt data %s: --input DIR (with data_batch_1..5.bin, test_batch.bin) "
               "is required",
               task);
    rc = timed_load(fpt_cifar_load(s.input, !strcmp(task, "cifar10-lra"), &d), t0,
                    "CIFAR-10 batches");
    carve = s.n_val < 0 ? 5000 : s.n_val;
  } else if (!strcmp(task, "text")) {
    rc = timed_load(load_text(&s, &d), t0, "text");
  } else if (!strcmp(task, "pfam")) {
    rc = timed_load(load_pfam(&s, &d), t0, "Stockholm files");
  } else {
    FPT_FAIL("fpt data: unknown task '%s' (bit-xor, bit-memory, listops, mnist, fashion-mnist, "
             "cifar10, cifar10-lra, pfam, text)",
             task);
  }
  d.seed = s.seed;
  if (rc == 0 && carve > 0) {
    FPT_ENSURE(carve < d.split[FPT_TRAIN].n,
               "option --n-val: %lld is not below the %lld "
               "training samples",
               (long long)carve, (long long)d.split[FPT_TRAIN].n);
    fpt_dataset_carve_val(&d, carve, (uint64_t)s.seed);
  }
  if (rc == 0) {
    snprintf(d.generator, sizeof d.generator, "fpt data %s --seed %lld%s", task, s.seed,
             s.pad32 ? " --pad32 true" : "");
    FPT_ENSURE(s.chunk_samples >= 0, "option --chunk-samples: must be >= 0");
    double tw = now();
    rc = fpt_dataset_write(s.out, &d, s.chunk_samples);
    if (rc == 0)
      printf("fpt data: wrote %s in %.2f s (total %.2f s)\n", s.out, now() - tw, now() - t0);
  }
  if (rc == 0)
    printf("fpt data %s: %lld train, %lld val, %lld test samples -> %s\n", task,
           (long long)d.split[0].n, (long long)d.split[1].n, (long long)d.split[2].n, s.out);
  fpt_dataset_free(&d);
  return rc;
}

int cmd_data(int argc, char **argv) {
  if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
    fpt_opts_help(
        "fpt data TASK [options] -o DATA.h5\n"
        "tasks: bit-xor bit-memory listops mnist fashion-mnist cifar10 cifar10-lra pfam text\n"
        "(fashion-mnist reads Debian's dataset-fashion-mnist when --input is not given)",
        data_opts, n_data_opts);
    return 0;
  }
  fpt_runtime rt;
  fpt_runtime_init(&rt, &argc, &argv);
  int rc = rt.rank == 0 ? run(argc, argv) : 0;
  return fpt_runtime_finish(&rt, fpt_runtime_agree(&rt, rc));
}
