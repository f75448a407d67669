// fpt data TASK ... -o DATA.h5: build a dataset file for one of the tasks of
// the task table (fpt/task_registry.h, src/tasks/registry.c), which gives
// each task's options, defaults and build function. Validation is carved out
// of train with a seeded split where the source has no validation split of
// its own (sizes in --n-val); an empty validation split is never written.
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
#include "fpt/task_registry.h"
#include "runtime.h"

typedef struct {
  fpt_task_args task; // first: fpt_task_opts' offsets are into it
  long long chunk_samples;
} data_settings;
_Static_assert(offsetof(data_settings, task) == 0, "fpt_task_opts offsets need task first");

static const fpt_opt data_opts[] = {
    {.key = "out",
     .type = FPT_OPT_STR,
     .offset = offsetof(data_settings, task) + offsetof(fpt_task_args, out),
     .help = "output dataset file (-o)"},
    FPT_OPTION(data_settings, chunk_samples, INT,
               "0: contiguous arrays (default); N: chunks of N samples"),
};
static const int n_data_opts = (int)(sizeof data_opts / sizeof *data_opts);

// The option groups: the command's own, then the tasks' (help texts with
// the tasks that take each option and their defaults, from the table).
static fpt_opt task_opts[FPT_N_TOPTS];
static char task_help[FPT_N_TOPTS][1024];
static fpt_opt_set option_set(void) {
  for (int o = 0; o < FPT_N_TOPTS; o++) {
    task_opts[o] = fpt_task_opts[o];
    fpt_task_option_help(o, task_help[o], sizeof task_help[o]);
    task_opts[o].help = task_help[o];
  }
  static fpt_opt_group groups[2];
  groups[0] = (fpt_opt_group){NULL, data_opts, n_data_opts};
  groups[1] =
      (fpt_opt_group){"task options [the tasks that take them, defaults]", task_opts, FPT_N_TOPTS};
  return (fpt_opt_set){.groups = groups, .n = 2};
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int run(int argc, char **argv) {
  FPT_ENSURE(argc > 2 && argv[2][0] != '-',
             "fpt data: the task comes first (fpt data TASK [options] -o DATA.h5)");
  const char *name = argv[2];
  char names[1024];
  const fpt_task_def *t = fpt_task_find(name);
  FPT_ENSURE(t, "fpt data: unknown task '%s' (known: %s)", name,
             fpt_task_names(names, sizeof names, 0));
  data_settings s;
  fpt_task_args_unset(&s.task);
  s.chunk_samples = 0;
  FPT_TRY(fpt_opts_parse_set(argc, argv, 3, option_set(), &s));
  fpt_task_args *a = &s.task;
  FPT_ENSURE(a->out, "option -o/--out: an output file is required");
  FPT_ENSURE(s.chunk_samples >= 0, "option --chunk-samples: must be >= 0");
  FPT_TRY(fpt_task_resolve(t, a));
  fpt_dataset d;
  memset(&d, 0, sizeof d);
  double t0 = now();
  int rc = t->build(t, a, &d);
  if (rc == 0 && t->reads)
    printf("fpt data: read %s in %.2f s\n", t->reads, now() - t0);
  d.seed = a->seed;
  if (rc == 0 && t->carve_val) {
    if (a->n_val < d.split[FPT_TRAIN].n) {
      fpt_dataset_carve_val(&d, a->n_val, (uint64_t)a->seed);
    } else {
      fpt_error_set("option --n-val: %lld is not below the %lld training samples", a->n_val,
                    (long long)d.split[FPT_TRAIN].n);
      rc = 1;
    }
  }
  if (rc == 0 && d.split[FPT_VAL].n < 1) {
    fpt_error_set("fpt data %s: the validation split is empty; not writing %s", name, a->out);
    rc = 1;
  }
  if (rc == 0) {
    snprintf(d.generator, sizeof d.generator, "fpt data %s --seed %lld%s", name, a->seed,
             a->pad32 == 1 ? " --pad32 true" : "");
    double tw = now();
    rc = fpt_dataset_write(a->out, &d, s.chunk_samples);
    if (rc == 0)
      printf("fpt data: wrote %s in %.2f s (total %.2f s)\n", a->out, now() - tw, now() - t0);
  }
  if (rc == 0)
    printf("fpt data %s: %lld train, %lld val, %lld test samples -> %s\n", name,
           (long long)d.split[0].n, (long long)d.split[1].n, (long long)d.split[2].n, a->out);
  fpt_dataset_free(&d);
  return rc;
}

static void help(void) {
  char usage[8192];
  size_t used = 0;
  used += (size_t)snprintf(usage, sizeof usage,
                           "fpt data TASK [options] -o DATA.h5\n\ntasks (an option a task does "
                           "not take is refused):");
  for (int i = 0; i < fpt_task_count && used < sizeof usage; i++)
    used += (size_t)snprintf(usage + used, sizeof usage - used, "\n  %-14s %s",
                             fpt_task_table[i].name, fpt_task_table[i].summary);
  fpt_opts_help_set(usage, option_set());
}

int cmd_data(int argc, char **argv) {
  for (int i = 2; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      help();
      return 0;
    }
  fpt_runtime rt;
  fpt_runtime_init(&rt, &argc, &argv);
  int rc = rt.rank == 0 ? run(argc, argv) : 0;
  return fpt_runtime_finish(&rt, fpt_runtime_agree(&rt, rc));
}
