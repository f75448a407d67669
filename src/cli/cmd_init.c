// fpt init: a GPT-2 model file with Hugging Face's default random init, or
// statistics-matched to a given model (--like).
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "fpt/check.h"
#include "fpt/config.h"
#include "fpt/io.h"
#include "runtime.h"

typedef struct {
  long long layers, d_model, heads, positions, seed;
  const char *out, *like;
} init_settings;

#define O(k, t, h)                                                                                 \
  { #k, FPT_OPT_##t, offsetof(init_settings, k), h }
static const fpt_opt init_opts[] = {
    O(layers, INT, "blocks (n_layer)"),
    O(d_model, INT, "width (n_embd)"),
    O(heads, INT, "attention heads (n_head)"),
    O(positions, INT, "positional table rows (n_positions)"),
    O(seed, INT, "random seed"),
    O(out, STR, "output model file (-o)"),
    O(like, STR, "draw each tensor with the mean and std of this model's"),
};
#undef O
static const int n_init_opts = (int)(sizeof init_opts / sizeof *init_opts);

static int run(int argc, char **argv) {
  init_settings s = {12, 768, 12, 1024, 0, NULL, NULL};
  FPT_TRY(fpt_opts_parse(argc, argv, 2, init_opts, n_init_opts, &s));
  FPT_ENSURE(s.out, "option -o/--out: an output file is required");
  fpt_gpt2_config cfg = {(int)s.layers, (int)s.heads, (int)s.d_model, (int)s.positions, 1e-5f};
  if (s.like)
    FPT_TRY(fpt_model_file_config(s.like, &cfg));
  // The wrapper shape is irrelevant here; only the backbone is written.
  fpt_task_shape shape = {1, 0, 1, 1, 2, 2, 0};
  fpt_freeze fr = fpt_freeze_default();
  fpt_model m;
  FPT_TRY(fpt_model_create(&m, &cfg, &shape, &fr));
  int rc = 0;
  if (s.like) {
    fpt_model base;
    rc = fpt_model_create(&base, &cfg, &shape, &fr);
    if (rc == 0)
      rc = fpt_model_file_load(s.like, &base);
    if (rc == 0)
      fpt_init_backbone_like(&m, &base, (uint64_t)s.seed);
    fpt_model_free(&base);
  } else {
    fpt_init_backbone_random(&m, (uint64_t)s.seed);
  }
  if (rc == 0)
    rc = fpt_model_file_write(s.out, &m);
  fpt_model_free(&m);
  return rc;
}

int cmd_init(int argc, char **argv) {
  if (argc > 2 && !strcmp(argv[2], "--help")) {
    fpt_opts_help("fpt init [--layers L --d-model D --heads H --positions P "
                  "--seed S | --like BASE.h5] -o M.h5",
                  init_opts, n_init_opts);
    return 0;
  }
  fpt_runtime rt;
  fpt_runtime_init(&rt, &argc, &argv);
  int rc = run(argc, argv);
  return fpt_runtime_finish(&rt, fpt_runtime_agree(&rt, rc));
}
