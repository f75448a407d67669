// fpt init: a backbone model file at random (GPT-2: Hugging Face's default
// init; an encoder with --causal false; the paper's LSTM with --kind lstm),
// or statistics-matched to a given model (--like).
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "fpt/check.h"
#include "fpt/config.h"
#include "fpt/io.h"
#include "fpt/run.h"
#include "runtime.h"

typedef struct {
  long long layers, d_model, heads, positions, seed;
  const char *out, *like, *kind, *activation;
  int causal, residual;
  double layer_norm_eps;
} init_settings;

#define O(k, t, h) FPT_OPTION(init_settings, k, t, h)
static const fpt_opt init_opts[] = {
    O(layers, INT, "blocks (n_layer)"),
    O(d_model, INT, "width (n_embd)"),
    O(heads, INT, "attention heads (n_head)"),
    O(positions, INT, "positional table rows (n_positions)"),
    O(seed, INT, "random seed"),
    O(out, STR, "output model file (-o)"),
    O(like, STR, "draw each tensor with the mean and std of this model's"),
    O(kind, STR, "backbone kind: gpt2 (transformer) or lstm (the paper's LN-LSTM)"),
    O(causal, BOOL, "gpt2: causal attention (false: a bidirectional ViT/BERT-style encoder)"),
    O(activation, STR, "gpt2: gelu_new (GPT-2's tanh form) or gelu (exact; ViT, BERT)"),
    O(layer_norm_eps, FLOAT, "LayerNorm epsilon (0: 1e-5 for causal gpt2, 1e-6 otherwise)"),
    O(residual, BOOL, "lstm: add each layer's input to its output"),
};
#undef O
static const int n_init_opts = (int)(sizeof init_opts / sizeof *init_opts);

// The shape from the options (every option that does not apply is refused:
// a flag silently ignored would write a model the user did not ask for).
static int shape_of(const init_settings *s, int argc, char **argv, fpt_backbone_cfg *c) {
  memset(c, 0, sizeof *c);
  snprintf(c->kind, sizeof c->kind, "%s", s->kind);
  FPT_ENSURE(fpt_backbone_find(c->kind), "option --kind: '%s' is not a backbone kind (%s)", s->kind,
             fpt_backbone_kinds());
  int lstm = !strcmp(c->kind, "lstm");
  const char *only_gpt2[] = {"--heads", "--positions", "--causal", "--activation"};
  for (int i = 2; i < argc; i++)
    for (size_t k = 0; k < sizeof only_gpt2 / sizeof *only_gpt2; k++)
      FPT_ENSURE(!lstm || strcmp(argv[i], only_gpt2[k]), "option %s: does not apply to --kind lstm",
                 only_gpt2[k]);
  for (int i = 2; i < argc; i++)
    FPT_ENSURE(lstm || strcmp(argv[i], "--residual"), "option --residual: only for --kind lstm");
  c->n_layer = (int)s->layers;
  c->n_embd = (int)s->d_model;
  c->n_head = lstm ? 0 : (int)s->heads;
  c->n_positions = lstm ? 0 : (int)s->positions;
  c->causal = lstm ? 0 : s->causal;
  c->residual = s->residual;
  c->activation = FPT_ACT_GELU_NEW;
  if (!strcmp(s->activation, "gelu"))
    c->activation = FPT_ACT_GELU;
  else
    FPT_ENSURE(!strcmp(s->activation, "gelu_new"),
               "option --activation: '%s' is not gelu_new or gelu", s->activation);
  c->ln_eps = (float)(s->layer_norm_eps > 0 ? s->layer_norm_eps : !lstm && c->causal ? 1e-5 : 1e-6);
  FPT_ENSURE(s->layer_norm_eps >= 0 && s->layer_norm_eps < 1,
             "option --layer-norm-eps: %g is not in [0, 1)", s->layer_norm_eps);
  FPT_ENSURE(c->n_layer >= 1 && c->n_embd >= 1 && (lstm || (c->n_head >= 1 && c->n_positions >= 1)),
             "options --layers, --d-model, --heads, --positions: must be >= 1");
  fpt_task_shape none = {1, 0, 1, 1, 2, 2, 0, 0};
  return fpt_model_check(c, &none);
}

static int run(int argc, char **argv, int rank) {
  init_settings s = {12, 768, 12, 1024, 0, NULL, NULL, "gpt2", "gelu_new", 1, 0, 0.0};
  FPT_TRY(fpt_opts_parse(argc, argv, 2, init_opts, n_init_opts, &s));
  const char *in[] = {s.like};
  FPT_TRY(fpt_check_out(s.out, in, 1));
  fpt_run_desc d;
  fpt_run_desc_init(&d);
  d.seed = s.seed;
  // The input and output layers are irrelevant here; only the backbone is written.
  fpt_task_shape none = {1, 0, 1, 1, 2, 2, 0, 0};
  d.task = none;
  if (s.like) {
    for (int i = 2; i < argc; i++)
      FPT_ENSURE(strncmp(argv[i], "--", 2) != 0 || !strcmp(argv[i], "--like") ||
                     !strcmp(argv[i], "--seed") || !strcmp(argv[i], "--out"),
                 "option %s: the shape comes from --like %s; give only --like, --seed and -o",
                 argv[i], s.like);
    snprintf(d.model, sizeof d.model, "%s", s.like);
    FPT_TRY(fpt_run_desc_read_model(&d));
    d.init = FPT_INIT_STATS;
  } else {
    FPT_TRY(shape_of(&s, argc, argv, &d.cfg));
    d.init = FPT_INIT_RANDOM;
  }
  fpt_model m;
  int rc = fpt_model_build(&m, &d, NULL, NULL, 1);
  if (rc == 0 && rank == 0) // one writer: under mpirun the others only check
    rc = fpt_model_file_write(s.out, &m);
  fpt_model_free(&m);
  return rc;
}

int cmd_init(int argc, char **argv) {
  if (argc > 2 && !strcmp(argv[2], "--help")) {
    fpt_opts_help("fpt init [--kind gpt2|lstm] [--layers L --d-model D --heads H --positions P "
                  "--causal true|false --activation gelu_new|gelu --seed S | --like BASE.h5] "
                  "-o M.h5",
                  init_opts, n_init_opts);
    return 0;
  }
  fpt_runtime rt;
  fpt_runtime_init(&rt, &argc, &argv);
  int rc = run(argc, argv, rt.rank);
  return fpt_runtime_finish(&rt, fpt_runtime_agree(&rt, rc));
}
