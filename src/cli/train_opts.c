// The options of fpt train, pretrain, eval and probe: groups declared once,
// each command the set of groups it takes, its defaults and its usage; then
// the checks of values against each other. Ranges are in the tables: a value
// outside them is refused where it is parsed (src/cli/options.c).
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "fpt/check.h"
#include "train.h"

#define O(k, t, h) FPT_OPTION(train_settings, k, t, h)
#define R(k, t, lo, hi, h) FPT_OPTION_RANGE(train_settings, k, t, lo, hi, h)
#define A(k, t, lo, hi, h) FPT_OPTION_ABOVE(train_settings, k, t, lo, hi, h)
#define BIG 9007199254740991.0 // 2^53 - 1: exact in a double
#define GROUP(title, a)                                                                            \
  { title, a, (int)(sizeof a / sizeof *a) }

static const fpt_opt backbone[] = {
    O(config, STR, "YAML file with any of these keys; options given here win"),
    O(model, STR, "backbone model file (HDF5)"),
    O(init, STR, "backbone: pretrained, random, or stats (matched to --model)"),
    R(seed, INT, 0, BIG, "seed: input/output init, dropout, training samples"),
    A(orth_gain, FLOAT, 0, 1e6, "gain of the orthogonal input-layer init (> 0)"),
    O(readout, STR,
      "what the output layer reads: last (the last r positions, the paper's), last-real (the "
      "last non-pad token), mean (over non-pad tokens), or auto (last-real for bidirectional "
      "models, else last)"),
    O(lstm_state, STR,
      "LSTM initial state: zero, or random (N(0, sqrt(2/2C)) on every pass, as the paper's code)"),
    O(frozen_dtype, STR, FPT_FROZEN_DTYPE_HELP),
};
static const fpt_opt data[] = {
    O(data, STR, "dataset file (HDF5); omit for generated bit tasks"),
    O(tokens, STR, "which inputs of the dataset file: x, or x2 (ListOps: LRA tokens)"),
    R(eval_limit, INT, 0, BIG,
      "files: score only the first N val and test samples (0: whole splits)"),
};
static const fpt_opt generated[] = {
    O(task, STR, "generated task when --data is not given: bit-xor or bit-memory"),
    R(data_seed, INT, 0, BIG, "seed of the generated validation and test sets"),
    R(eval_samples, INT, 1, 1 << 30, "samples in each generated val/test set"),
    R(bit_length, INT, 0, 1 << 20, "bits per pattern (0: the task's default)"),
    R(patterns, INT, 0, 1 << 16, "patterns (bit-memory; 0: default 5)"),
    R(patch, INT, 0, 1 << 20, "bits per token (0: the task's default)"),
};
static const fpt_opt grid[] = {
    R(stages, INT, 1, 4096, "pipeline stages S (replicas R = ranks / S)"),
    R(micro_batches, INT, 1, 1 << 20, "micro-batches per step and replica"),
    R(batch_size, INT, 1, 1 << 24, "global batch (split across ranks)"),
    O(shared_weights, BOOL, "hold a stage's frozen weights once per node (MPI shared memory)"),
};
static const fpt_opt training[] = {
    R(steps, INT, 0, 1 << 30, "gradient steps"),
    O(schedule, STR, "pipeline schedule: 1f1b or gpipe"),
    A(lr, FLOAT, 0, 10, "Adam learning rate (the peak, with a schedule; > 0)"),
    O(lr_schedule, STR, "constant, or cosine (decay to lr/10 at --steps)"),
    R(warmup, INT, 0, 1 << 30, "steps of linear learning-rate warm-up (0: none)"),
    R(dropout, FLOAT, 0, 0.99, "dropout probability in training"),
    A(clip, FLOAT, 0, 1e9, "global gradient-norm clip (> 0)"),
    O(freeze_in, BOOL, "freeze the input layer"),
    O(freeze_out, BOOL, "freeze the output layer"),
    O(freeze_ln, BOOL, "freeze every LayerNorm"),
    O(freeze_pos, BOOL, "freeze the positional table"),
    O(freeze_attn, BOOL, "freeze attention weights and biases"),
    O(freeze_ff, BOOL, "freeze MLP weights and biases"),
    O(full_train, BOOL, "train the whole backbone"),
    O(augment, BOOL, "CIFAR-10 files: crop/flip/rotate training samples (the paper's)"),
    O(init_head_from, STR,
      "start from the input and output layers of this checkpoint (fpt probe's)"),
};
static const fpt_opt run_dir[] = {
    O(run_dir, STR, "directory for metrics.jsonl, config.yaml and checkpoints/"),
};
static const fpt_opt run[] = {
    R(log_every, INT, 1, 1 << 30, "steps between train-metric lines"),
    R(eval_every, INT, 0, 1 << 30, "steps between validation passes (0: only at the end)"),
    O(eval_test, BOOL, "score the test split at every evaluation too (select on val afterwards)"),
    O(eval_test_at, STR,
      "with --eval-test: every evaluation; best: only those whose val accuracy beats every "
      "earlier one (the evaluations --keep-best can select) and the final one; or end: the "
      "final one and, once, checkpoints/best.h5 at its step (needs --keep-best)"),
    R(early_stop, INT, 0, 1 << 30,
      "stop after this many evaluations without a better val loss or accuracy (0: off)"),
    O(early_stop_on, STR,
      "what --early-stop watches: loss (the val loss falls) or accuracy (the "
      "val accuracy rises: what --keep-best selects on)"),
    R(checkpoint_every, INT, 0, 1 << 30,
      "steps between checkpoints (0: only at the end and on signals)"),
    R(keep_checkpoints, INT, 1, 4096, "checkpoints kept (the newest)"),
    O(keep_best, BOOL,
      "also keep the checkpoint of the best validation accuracy (ties: the "
      "earlier) as checkpoints/best.h5, with best.json"),
    O(resume, STR,
      "none, auto (newest checkpoint of --run-dir that reads back, if any), or a file"),
    R(time_limit, FLOAT, 0, 1e9, "seconds; checkpoint and exit 75 before running over (0: none)"),
    O(export, STR,
      "at the end, write the trained backbone as a model file (fpt export of the last checkpoint)"),
};
static const fpt_opt pretraining[] = {
    O(objective, STR,
      "causal (the next byte, GPT-2's) or mlm (BERT's masked bytes: 15 % chosen, "
      "80/10/10; needs a bidirectional model)"),
};
static const fpt_opt scoring[] = {
    O(checkpoint, STR, "the checkpoint to score"),
};
static const fpt_opt probing[] = {
    O(lambda, STR, "ridge parameter (> 0) of the least-squares output layer"),
    O(lambdas, STR, "comma-separated ridge parameters; the best on the validation split is kept"),
    O(solver, STR, "posv (normal equations, Cholesky), gels (QR), or both (compare them)"),
    O(cache, STR, "feature cache file (default RUN_DIR/features.h5)"),
    R(block_size, INT, 1, 1 << 16, "ScaLAPACK block size"),
    O(recompute, BOOL, "recompute the features even if the cache matches"),
    R(train_limit, INT, 0, BIG, "fit on the first N training samples only (0: the whole split)"),
};
#undef O
#undef R
#undef A

static unsigned char given[128];

static const fpt_opt_group train_groups[] = {GROUP("backbone", backbone),
                                             GROUP("data file", data),
                                             GROUP("generated task", generated),
                                             GROUP("grid", grid),
                                             GROUP("training", training),
                                             GROUP("run directory", run_dir),
                                             GROUP("evaluations, checkpoints, stopping", run)};
static const fpt_opt_group pretrain_groups[] = {GROUP("backbone", backbone),
                                                GROUP("data file", data),
                                                GROUP("grid", grid),
                                                GROUP("training", training),
                                                GROUP("pretraining", pretraining),
                                                GROUP("run directory", run_dir),
                                                GROUP("evaluations, checkpoints, stopping", run)};
static const fpt_opt_group eval_groups[] = {GROUP("backbone", backbone), GROUP("data file", data),
                                            GROUP("generated task", generated), GROUP("grid", grid),
                                            GROUP("scoring", scoring)};
static const fpt_opt_group probe_groups[] = {GROUP("backbone", backbone), GROUP("data file", data),
                                             GROUP("grid", grid), GROUP("run directory", run_dir),
                                             GROUP("least squares", probing)};
#define SET(g)                                                                                     \
  { g, (int)(sizeof g / sizeof *g), given }

static void common(train_settings *s) {
  memset(s, 0, sizeof *s);
  s->run_dir = "runs/latest";
  s->init = "pretrained";
  s->steps = 100;
  s->batch_size = 16;
  s->seed = 1;
  s->log_every = 10;
  s->eval_samples = 512;
  s->lr = 1e-3;
  s->dropout = 0.1;
  s->orth_gain = 1.41;
  s->clip = 1.0;
  s->freeze_attn = s->freeze_ff = 1;
  s->augment = 1;
  s->stages = s->micro_batches = 1;
  s->schedule = "1f1b";
  s->shared_weights = 1;
  s->checkpoint_every = 1000;
  s->keep_checkpoints = 3;
  s->resume = "none";
  s->lr_schedule = "constant";
  s->early_stop_on = "loss";
  s->eval_test_at = "every";
  s->readout = "auto";
  s->lstm_state = "zero";
  s->objective = "causal";
  s->frozen_dtype = "fp32";
}

// Every weight trains from the kind's random init; --model gives the shape.
// No dropout: a few hours of pretraining underfit the corpus.
static void pretrain_defaults(train_settings *s) {
  common(s);
  s->init = "random";
  s->full_train = 1;
  s->dropout = 0.0;
  s->lr_schedule = "cosine";
  s->warmup = 100;
  s->batch_size = 32;
}

static void eval_defaults(train_settings *s) {
  common(s);
  s->batch_size = 64; // forward only: larger GEMMs
  s->augment = 0;
}

// Table 10's setting: only the output layer is fitted; the input layer keeps
// its seeded (orthogonal) init, but it is written with the head.
static void probe_defaults(train_settings *s) {
  eval_defaults(s);
  s->run_dir = "runs/probe";
  s->freeze_ln = s->freeze_pos = 1;
  s->solver = "posv";
  s->block_size = 64;
}

const train_command fpt_cmd_train = {
    "train", FPT_RUN_TRAIN, SET(train_groups),
    "fpt train --model M.h5 (--data D.h5 | --task T) [--key value ...]", common};
const train_command fpt_cmd_pretrain = {
    "pretrain", FPT_RUN_PRETRAIN, SET(pretrain_groups),
    "fpt pretrain --model SHAPE.h5 --data TEXT.h5 [--key value ...]\n(defaults differ from fpt "
    "train: init random, full_train true, dropout 0, lr 1e-3 with warm-up 100 and cosine decay, "
    "batch_size 32)",
    pretrain_defaults};
const train_command fpt_cmd_eval = {
    "eval", FPT_RUN_EVAL, SET(eval_groups),
    "fpt eval --model M.h5 --data D.h5 --checkpoint CKPT.h5 [--key value ...]\n(the same backbone, "
    "--init and --tokens as the checkpoint; prints val and test)",
    eval_defaults};
const train_command fpt_cmd_probe = {
    "probe", FPT_RUN_PROBE, SET(probe_groups),
    "fpt probe --model M.h5 --data D.h5 [--lambda L | --lambdas L1,L2,...] [--key value ...]\n(the "
    "exact ridge least-squares output layer over the frozen features; docs/PROBE.md)",
    probe_defaults};

static const train_command *current;

int train_option_given(const char *key) {
  int i = current ? fpt_opts_index(current->opts, key) : -1;
  return i >= 0 && given[i];
}

// Options that apply only to something the user did not choose are refused.
static int check_applicable(const train_command *c, const train_settings *s) {
  if (s->data)
    for (size_t i = 0; c->kind != FPT_RUN_PROBE && i < sizeof generated / sizeof *generated; i++)
      FPT_ENSURE(!train_option_given(generated[i].key),
                 "option --%s: only for generated tasks (--task), not with --data %s",
                 generated[i].key, s->data);
  FPT_ENSURE(s->data || !train_option_given("eval_limit"),
             "option --eval-limit: applies to dataset files (generated tasks: --eval-samples)");
  FPT_ENSURE(s->data || !train_option_given("tokens"),
             "option --tokens: applies to dataset files, not to a generated task");
  FPT_ENSURE(!(s->data && s->task), "options --data and --task: give one, not both");
  return 0;
}

static int one_of(const char *opt, const char *v, const char *const *names) {
  for (int i = 0; names[i]; i++)
    if (!strcmp(v, names[i]))
      return 0;
  FPT_FAIL("option --%s: '%s' is not one of %s%s%s%s%s", opt, v, names[0], names[1] ? ", " : "",
           names[1] ? names[1] : "", names[1] && names[2] ? ", " : "",
           names[1] && names[2] ? names[2] : "");
}

// An option of another command of this family gets a message that says so,
// not "unknown option".
static int refuse_foreign(const train_command *c, int argc, char **argv) {
  static const train_command *const all[] = {&fpt_cmd_train, &fpt_cmd_pretrain, &fpt_cmd_eval,
                                             &fpt_cmd_probe};
  for (int i = 2; i < argc; i++) {
    if (strncmp(argv[i], "--", 2) || fpt_opts_find(c->opts, argv[i] + 2))
      continue;
    for (size_t k = 0; k < sizeof all / sizeof *all; k++)
      FPT_ENSURE(!fpt_opts_find(all[k]->opts, argv[i] + 2),
                 "option %s: fpt %s does not take it (fpt %s does)", argv[i], c->name,
                 all[k]->name);
  }
  return 0;
}

int train_parse(const train_command *c, train_settings *s, int argc, char **argv) {
  FPT_TRY(refuse_foreign(c, argc, argv));
  current = c;
  memset(given, 0, sizeof given);
  c->defaults(s);
  // YAML first (if --config is given anywhere), then the command line wins.
  for (int i = 2; i + 1 < argc; i++)
    if (!strcmp(argv[i], "--config"))
      FPT_TRY(fpt_opts_load_yaml_set(argv[i + 1], c->opts, s));
  FPT_TRY(fpt_opts_parse_set(argc, argv, 2, c->opts, s));
  FPT_ENSURE(s->model, "option --model: a backbone model file is required");
  FPT_ENSURE(c->kind != FPT_RUN_EVAL || s->checkpoint,
             "option --checkpoint: fpt eval needs a checkpoint");
  FPT_ENSURE(c->kind != FPT_RUN_PROBE || s->data,
             "option --data: fpt probe needs a dataset file (a finite training split)");
  const char *const schedules[] = {"1f1b", "gpipe", NULL}, *const lrs[] = {"constant", "cosine",
                                                                           NULL};
  FPT_TRY(one_of("schedule", s->schedule, schedules));
  FPT_TRY(one_of("lr-schedule", s->lr_schedule, lrs));
  const char *const monitors[] = {"loss", "accuracy", NULL};
  FPT_TRY(one_of("early-stop-on", s->early_stop_on, monitors));
  const char *const test_at[] = {"every", "best", "end", NULL};
  FPT_TRY(one_of("eval-test-at", s->eval_test_at, test_at));
  FPT_ENSURE(!s->eval_test || strcmp(s->eval_test_at, "end") || s->keep_best,
             "option --eval-test-at: end scores the test split on checkpoints/best.h5, which "
             "needs --keep-best true");
  FPT_TRY(one_of("init", s->init, fpt_init_names));
  FPT_TRY(one_of("lstm-state", s->lstm_state, fpt_state_names));
  FPT_TRY(one_of("objective", s->objective, fpt_objective_names));
  int dtype; // before anything is created: a CPU without bf16 leaves nothing behind
  FPT_TRY(fpt_frozen_dtype_option(s->frozen_dtype, NULL, &dtype));
  if (strcmp(s->resume, "none") && strcmp(s->resume, "auto"))
    FPT_TRY(fpt_h5_check_readable(s->resume)); // a checkpoint file
  FPT_TRY(check_applicable(c, s));
  if (!s->data && !s->task)
    s->task = "bit-xor";
  return 0;
}
