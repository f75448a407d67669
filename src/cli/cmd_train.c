// fpt train: the main job. Data-parallel replicas (one per rank) shard the
// global batch; the trainable gradients are all-reduced once per step.
// fpt pretrain: the same loop, training every weight of a byte-level GPT-2
// language model (tied token table) on a text dataset file.
// fpt eval and fpt probe: the same set-up, then score a checkpoint, or fit
// the exact least-squares output layer (cmd_probe.c).
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "cpu.h"
#include "fpt/batches.h"
#include "fpt/check.h"
#include "fpt/checkpoint.h"
#include "fpt/config.h"
#include "fpt/io.h"
#include "fpt/model.h"
#include "fpt/parallel.h"
#include "fpt/stop.h"
#include "fpt/tasks.h"
#include "fpt_version.h"
#include "runtime.h"
#include "train.h"

#define O(k, t, h)                                                                                 \
  { #k, FPT_OPT_##t, offsetof(train_settings, k), h }
static const fpt_opt train_opts[] = {
    O(config, STR, "YAML file with any of these keys; options given here win"),
    O(model, STR, "backbone model file (HDF5)"),
    O(data, STR, "dataset file (HDF5); omit for generated bit tasks"),
    O(task, STR, "generated task when --data is not given: bit-xor or bit-memory"),
    O(tokens, STR, "which inputs of the dataset file: x, or x2 (ListOps: LRA tokens)"),
    O(steps, INT, "gradient steps"),
    O(stages, INT, "pipeline stages S (replicas R = ranks / S)"),
    O(micro_batches, INT, "micro-batches per step and replica"),
    O(schedule, STR, "pipeline schedule: 1f1b or gpipe"),
    O(shared_weights, BOOL, "hold a stage's frozen weights once per node (MPI shared memory)"),
    O(batch_size, INT, "global batch (split across ranks)"),
    O(lr, FLOAT, "Adam learning rate (the peak, with a schedule)"),
    O(lr_schedule, STR, "constant, or cosine (decay to lr/10 at --steps)"),
    O(warmup, INT, "steps of linear learning-rate warm-up (0: none)"),
    O(seed, INT, "seed: input/output init, dropout, training samples"),
    O(data_seed, INT, "seed of the generated validation and test sets"),
    O(log_every, INT, "steps between train-metric lines"),
    O(eval_every, INT, "steps between validation passes (0: only at the end)"),
    O(eval_test, BOOL, "score the test split at every evaluation too (select on val afterwards)"),
    O(eval_samples, INT, "samples in each generated val/test set (files: whole splits)"),
    O(eval_limit, INT, "files: score only the first N val and test samples (0: whole splits)"),
    O(train_limit, INT, "fit on the first N training samples only (0: the whole split)"),
    O(run_dir, STR, "directory for metrics.jsonl, config.yaml and checkpoints/"),
    O(checkpoint_every, INT, "steps between checkpoints (0: only at the end and on signals)"),
    O(keep_checkpoints, INT, "checkpoints kept (newest)"),
    O(resume, STR, "none, auto (newest complete checkpoint of --run-dir, if any), or a file"),
    O(time_limit, FLOAT, "seconds; checkpoint and exit 75 before running over (0: none)"),
    O(early_stop, INT, "stop after this many evaluations without a better val loss (0: off)"),
    O(init, STR, "backbone: pretrained, random, or stats (matched to --model)"),
    O(dropout, FLOAT, "dropout probability in training"),
    O(readout, STR,
      "what the output layer reads: last (the last r positions, the paper's), last-real (the "
      "last non-pad token), mean (over non-pad tokens), or auto (last-real for bidirectional "
      "models, else last)"),
    O(objective, STR,
      "pretrain: causal (the next byte, GPT-2's) or mlm (BERT's masked bytes: 15 % chosen, 80/10/10; "
      "needs a bidirectional model)"),
    O(lstm_state, STR,
      "LSTM initial state: zero, or random (N(0, sqrt(2/2C)) on every pass, as the paper's code)"),
    O(orth_gain, FLOAT, "gain of the orthogonal input-layer init"),
    O(clip, FLOAT, "global gradient-norm clip"),
    O(freeze_in, BOOL, "freeze the input layer"),
    O(freeze_out, BOOL, "freeze the output layer"),
    O(freeze_ln, BOOL, "freeze every LayerNorm"),
    O(freeze_pos, BOOL, "freeze the positional table"),
    O(freeze_attn, BOOL, "freeze attention weights and biases"),
    O(freeze_ff, BOOL, "freeze MLP weights and biases"),
    O(full_train, BOOL, "train the whole backbone"),
    O(augment, BOOL, "CIFAR-10 files: crop/flip/rotate training samples (the paper's)"),
    O(bit_length, INT, "bits per pattern (bit tasks; 0 = task default)"),
    O(patterns, INT, "patterns (bit-memory; 0 = default 5)"),
    O(patch, INT, "bits per token (bit tasks; 0 = task default)"),
    O(export, STR,
      "at the end, write the trained backbone (and a language model's wte) as a model file "
      "(fpt export of the last checkpoint)"),
    O(init_head_from, STR,
      "start from the input and output layers of this checkpoint (fpt probe's)"),
    O(checkpoint, STR, "the checkpoint to score"),
    O(lambda, STR, "ridge parameter (> 0) of the least-squares output layer"),
    O(lambdas, STR, "comma-separated ridge parameters; the best on the validation split is kept"),
    O(solver, STR, "posv (normal equations, Cholesky), gels (QR), or both (compare them)"),
    O(cache, STR, "feature cache file (default RUN_DIR/features.h5)"),
    O(block_size, INT, "ScaLAPACK block size"),
    O(recompute, BOOL, "recompute the features even if the cache matches"),
};
#undef O

// fpt pretrain: a causal language model over the whole sequence.
static int lm_mode = 0;
// fpt eval, fpt probe: the set-up of fpt train, then other work.
enum { SUB_TRAIN, SUB_EVAL, SUB_PROBE };
static int sub = SUB_TRAIN;
static const char *cmd_name = "train";

// The keys each command takes: fpt eval and fpt probe run the model, they do
// not train it; each has a few keys of its own.
static const char *const train_only =
    " steps lr lr_schedule warmup checkpoint_every keep_checkpoints resume time_limit early_stop "
    "export eval_every log_every eval_test dropout clip augment schedule freeze_in freeze_out "
    "freeze_ln freeze_pos freeze_attn freeze_ff full_train init_head_from ";
static const char *const eval_only = " checkpoint ";
static const char *const probe_only =
    " lambda lambdas solver cache block_size recompute train_limit ";
static const char *const generated = " task data_seed eval_samples bit_length patterns patch ";
static fpt_opt opts[sizeof train_opts / sizeof *train_opts];
static int n_opts;

static int listed(const char *list, const char *key) {
  char k[64];
  snprintf(k, sizeof k, " %s ", key);
  return strstr(list, k) != NULL;
}

static void select_opts(void) {
  n_opts = 0;
  for (size_t i = 0; i < sizeof train_opts / sizeof *train_opts; i++) {
    const char *k = train_opts[i].key;
    int ok = listed(train_only, k)   ? sub == SUB_TRAIN
             : listed(eval_only, k)  ? sub == SUB_EVAL
             : listed(probe_only, k) ? sub == SUB_PROBE
             : listed(generated, k)  ? sub != SUB_PROBE // a probe needs a dataset file
             : !strcmp(k, "run_dir") ? sub != SUB_EVAL
                                     : 1;
    if (ok)
      opts[n_opts++] = train_opts[i];
  }
}

static train_settings defaults(void) {
  train_settings s = {0};
  s.run_dir = "runs/latest";
  s.init = "pretrained";
  s.steps = 100;
  s.batch_size = 16;
  s.seed = 1;
  s.log_every = 10;
  s.eval_samples = 512;
  s.lr = 1e-3;
  s.dropout = 0.1;
  s.orth_gain = 1.41;
  s.clip = 1.0;
  s.freeze_attn = s.freeze_ff = 1;
  s.augment = 1;
  s.stages = 1;
  s.micro_batches = 1;
  s.schedule = "1f1b";
  s.shared_weights = 1;
  s.checkpoint_every = 1000;
  s.keep_checkpoints = 3;
  s.resume = "none";
  s.lr_schedule = "constant";
  s.readout = "auto";
  s.lstm_state = "zero";
  s.objective = "causal";
  if (lm_mode) {
    // Every weight trains from GPT-2's random init; --model gives the shape.
    // No dropout: a few hours of pretraining underfit the corpus.
    s.init = "random";
    s.full_train = 1;
    s.dropout = 0.0;
    s.lr = 1e-3;
    s.lr_schedule = "cosine";
    s.warmup = 100;
    s.batch_size = 32;
  }
  if (sub != SUB_TRAIN) {
    s.batch_size = 64; // forward only: larger GEMMs
    s.augment = 0;
  }
  if (sub == SUB_PROBE) {
    // Table 10's setting: only the output layer is fitted; the input layer
    // keeps its seeded (orthogonal) init, but it is written with the head.
    s.run_dir = "runs/probe";
    s.freeze_in = 0;
    s.freeze_ln = s.freeze_pos = 1;
    s.solver = "posv";
    s.block_size = 64;
  }
  return s;
}

static void emit_file(void *ctx, const char *line) { fprintf((FILE *)ctx, "%s\n", line); }
static void emit_stdout(void *ctx, const char *line) {
  (void)ctx;
  printf("  %s\n", line);
}

// The run directory, claimed by rank 0 before any work starts: created if
// need be, then locked for the whole run (a second run on it is refused).
static struct {
  int fd, created;
  const char *dir;
} claim = {-1, 0, NULL};

static int make_dir(const char *dir) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", dir);
  struct stat st;
  claim.created = stat(buf, &st) != 0;
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      mkdir(buf, 0777);
      *p = '/';
    }
  FPT_ENSURE(mkdir(buf, 0777) == 0 || errno == EEXIST, "option --run-dir: cannot create %s", dir);
  FPT_ENSURE(stat(buf, &st) == 0 && S_ISDIR(st.st_mode), "option --run-dir: %s is not a directory",
             dir);
  FPT_ENSURE(access(buf, W_OK) == 0, "option --run-dir: %s is not writable", dir);
  return 0;
}

static int claim_run_dir(const train_settings *s) {
  claim.dir = s->run_dir;
  FPT_TRY(make_dir(s->run_dir));
  FPT_TRY(fpt_run_lock(s->run_dir, &claim.fd));
  char probe_file[4200];
  snprintf(probe_file, sizeof probe_file, "%s/probe.h5", s->run_dir);
  // fpt probe writes its own step-0 checkpoint: never into a training run.
  FPT_ENSURE(sub != SUB_PROBE || !fpt_run_has_checkpoints(s->run_dir) ||
                 access(probe_file, F_OK) == 0,
             "option --run-dir: %s holds a training run (checkpoints/); fpt probe writes its own "
             "checkpoint and config there: use another --run-dir",
             s->run_dir);
  return 0;
}

// On failure, a run directory this command created and left empty (but for
// its lock) is removed: a failing command leaves nothing behind.
static void release_run_dir(int failed) {
  if (!claim.dir || claim.fd < 0)
    return;
  if (failed && claim.created) {
    char lock[4200];
    snprintf(lock, sizeof lock, "%s/.fpt.lock", claim.dir);
    unlink(lock);
    rmdir(claim.dir); // fails, harmlessly, if anything else is in it
  }
  close(claim.fd);
  claim.fd = -1;
}

// Outputs are checked before any work, and never overwrite an input.
static int check_outputs(const train_settings *s) {
  if (sub == SUB_PROBE && s->cache) {
    FPT_TRY(fpt_output_ok("option --cache", s->cache));
    FPT_ENSURE(!fpt_same_file(s->cache, s->data) && !fpt_same_file(s->cache, s->model),
               "option --cache: %s is an input (--data or --model); the feature cache would "
               "overwrite it",
               s->cache);
  }
  if (!s->export)
    return 0;
  FPT_TRY(fpt_output_ok("option --export", s->export));
  FPT_ENSURE(!fpt_same_file(s->export, s->model),
             "option --export: %s is the backbone file (--model); the run's checkpoints would "
             "no longer match it",
             s->export);
  FPT_ENSURE(!fpt_same_file(s->export, s->data), "option --export: %s is the dataset file (--data)",
             s->export);
  return 0;
}

// --readout: auto is last-real for a bidirectional model reading one position
// (padding must stay invisible), else the paper's last r positions.
static int readout_of(const char *name, const fpt_backbone_cfg *cfg, fpt_task_shape *t) {
  const char *names[] = {"last", "last-real", "mean"};
  t->readout = -1;
  for (int i = 0; i < 3; i++)
    if (!strcmp(name, names[i]))
      t->readout = i;
  if (!strcmp(name, "auto"))
    t->readout = cfg->n_head > 0 && !cfg->causal && t->r == 1 ? FPT_READOUT_LAST_REAL
                                                             : FPT_READOUT_LAST;
  FPT_ENSURE(t->readout >= 0, "option --readout: '%s' is not last, last-real, mean or auto", name);
  FPT_ENSURE(t->readout == FPT_READOUT_LAST || t->r == 1,
             "option --readout: %s reads one position, but the task reads the last %d", name, t->r);
  return 0;
}

// fpt pretrain --objective: causal (next byte) or mlm (masked bytes, on a
// bidirectional model: a causal one would see nothing to its right).
static int objective_of(const train_settings *s, fpt_source *src, fpt_run_desc *d) {
  d->objective = -1;
  for (int i = 0; fpt_objective_names[i]; i++)
    if (!strcmp(s->objective, fpt_objective_names[i]))
      d->objective = i;
  FPT_ENSURE(d->objective >= 0, "option --objective: '%s' is not causal or mlm", s->objective);
  FPT_ENSURE(lm_mode || d->objective == FPT_OBJ_CAUSAL,
             "option --objective: only fpt pretrain has one");
  if (d->objective != FPT_OBJ_MLM)
    return 0;
  FPT_ENSURE(d->cfg.n_head > 0 && !d->cfg.causal,
             "option --objective mlm: %s is a causal model; masked-byte pretraining needs a "
             "bidirectional one (fpt init --causal false)",
             s->model);
  return fpt_source_mlm(src, (uint64_t)s->seed);
}

// The run's typed description from the options and the data source; the
// backbone's shape from the model file.
static int describe(const train_settings *s, fpt_source *src, int init_mode, fpt_run_desc *d) {
  fpt_run_desc_init(d);
  snprintf(d->model, sizeof d->model, "%s", s->model);
  FPT_TRY(fpt_run_desc_read_model(d));
  d->init = init_mode;
  d->seed = s->seed;
  d->orth_gain = s->orth_gain;
  d->dropout = s->dropout;
  fpt_freeze fr = {
      {s->freeze_in, s->freeze_out, s->freeze_ln, s->freeze_pos, s->freeze_attn, s->freeze_ff, 0},
      s->full_train};
  d->freeze = fr;
  FPT_TRY(objective_of(s, src, d));
  d->task = src->shape;
  FPT_TRY(readout_of(s->readout, &d->cfg, &d->task));
  d->lstm_state = !strcmp(s->lstm_state, "random") ? FPT_STATE_RANDOM : FPT_STATE_ZERO;
  FPT_ENSURE(!strcmp(s->lstm_state, "zero") || !strcmp(s->lstm_state, "random"),
             "option --lstm-state: '%s' is not zero or random", s->lstm_state);
  FPT_ENSURE(d->lstm_state == FPT_STATE_ZERO || !strcmp(d->cfg.kind, "lstm"),
             "option --lstm-state: %s has a %s backbone, not an LSTM", s->model, d->cfg.kind);
  if (fpt_model_needs_lengths(&d->cfg, &d->task))
    fpt_source_want_lengths(src);
  if (lm_mode) {
    FPT_ENSURE(d->task.vocab > 0 && d->task.r == d->task.seq && d->task.n_out == d->task.vocab &&
                   s->data,
               "%s: fpt pretrain needs a text dataset (token ids, next-token targets at every "
               "position; fpt data text), but it has task %s",
               s->data ? s->data : "option --data", src->task);
    FPT_ENSURE(s->stages == 1,
               "option --stages: fpt pretrain ties the token table of the first and last layer, "
               "so it runs with --stages 1 (replicas only)");
    d->task.tied = 1;
    d->keep_wte = 1;
  }
  FPT_ENSURE(!d->cfg.n_positions || d->task.seq <= d->cfg.n_positions,
             "%s: the task %s has %d tokens but n_positions is %d", s->model, src->task,
             d->task.seq, d->cfg.n_positions);
  snprintf(d->task_name, sizeof d->task_name, "%s", src->task);
  snprintf(d->data, sizeof d->data, "%s", s->data ? s->data : "");
  snprintf(d->tokens, sizeof d->tokens, "%s", s->tokens ? s->tokens : "x");
  d->data_seed = s->data_seed;
  d->eval_samples = s->data ? 0 : s->eval_samples;
  d->eval_limit = s->eval_limit;
  d->train_limit = s->train_limit;
  d->bit_length = s->bit_length;
  d->patterns = s->patterns;
  d->patch = s->patch;
  d->augment = src->augment != 0;
  d->batch_size = s->batch_size;
  d->steps = s->steps;
  d->warmup = s->warmup;
  d->lr = s->lr;
  d->clip = s->clip;
  snprintf(d->lr_schedule, sizeof d->lr_schedule, "%s", s->lr_schedule);
  return 0;
}

static int setup(train_settings *s, int argc, char **argv, fpt_grid *g, fpt_model *m,
                 fpt_source *src, fpt_pipeline *pl, fpt_run_desc *d) {
  // YAML first (if --config is given anywhere), then the command line wins.
  for (int i = 2; i + 1 < argc; i++)
    if (!strcmp(argv[i], "--config"))
      FPT_TRY(fpt_opts_load_yaml(argv[i + 1], opts, n_opts, s));
  FPT_TRY(fpt_opts_parse(argc, argv, 2, opts, n_opts, s));
  FPT_ENSURE(s->model, "option --model: a backbone model file is required");
  FPT_ENSURE(sub != SUB_EVAL || s->checkpoint, "option --checkpoint: fpt eval needs a checkpoint");
  FPT_ENSURE(sub != SUB_PROBE || s->data,
             "option --data: fpt probe needs a dataset file (a finite training split)");
  FPT_ENSURE(s->checkpoint_every >= 0 && s->keep_checkpoints >= 1 && s->early_stop >= 0 &&
                 s->time_limit >= 0,
             "options --checkpoint-every, --early-stop, --time-limit must be >= 0 and "
             "--keep-checkpoints >= 1");
  FPT_ENSURE(s->steps >= 0, "option --steps: must be >= 0");
  FPT_ENSURE(s->batch_size >= 1, "option --batch-size: must be >= 1");
  FPT_ENSURE(s->stages >= 1 && s->micro_batches >= 1,
             "options --stages and --micro-batches must be >= 1");
  int kind = !strcmp(s->schedule, "1f1b")    ? FPT_SCHED_1F1B
             : !strcmp(s->schedule, "gpipe") ? FPT_SCHED_GPIPE
                                             : -1;
  FPT_ENSURE(kind >= 0, "option --schedule: '%s' is not 1f1b or gpipe", s->schedule);
  FPT_ENSURE(s->log_every >= 1, "option --log-every: must be >= 1");
  FPT_ENSURE(s->eval_samples >= 1, "option --eval-samples: must be >= 1");
  FPT_ENSURE(s->eval_limit >= 0, "option --eval-limit: must be >= 0");
  FPT_ENSURE(s->train_limit >= 0, "option --train-limit: must be >= 0");
  FPT_ENSURE(!(s->eval_limit && !s->data),
             "option --eval-limit: applies to dataset files (generated tasks: --eval-samples)");
  FPT_ENSURE(s->lr > 0, "option --lr: must be > 0");
  FPT_ENSURE(!strcmp(s->lr_schedule, "constant") || !strcmp(s->lr_schedule, "cosine"),
             "option --lr-schedule: '%s' is not constant or cosine", s->lr_schedule);
  FPT_ENSURE(s->warmup >= 0, "option --warmup: must be >= 0");
  FPT_ENSURE(s->dropout >= 0 && s->dropout < 1, "option --dropout: must be in [0,1)");
  int init_mode = -1;
  for (int i = 0; fpt_init_names[i]; i++)
    if (!strcmp(s->init, fpt_init_names[i]))
      init_mode = i;
  FPT_ENSURE(init_mode >= 0, "option --init: '%s' is not pretrained, random or stats", s->init);
  FPT_ENSURE(!(s->data && s->task), "options --data and --task: give one, not both");
  // Outputs before any work: rank 0 claims the run directory; all agree.
  int claimed = 0;
  if (g->rank == 0) {
    claimed = check_outputs(s);
    if (claimed == 0 && sub != SUB_EVAL)
      claimed = claim_run_dir(s);
  }
  MPI_Bcast(&claimed, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (claimed != 0) {
    if (g->rank != 0)
      fpt_error_set("rank 0 could not claim the run directory");
    return 1;
  }
  if (!s->data && !s->task)
    s->task = "bit-xor";
  if (s->data) {
    FPT_TRY(fpt_source_open_file(src, s->data, s->tokens, (uint64_t)s->seed, s->augment,
                                 MPI_COMM_WORLD));
    src->limit[FPT_TRAIN] = s->train_limit;
    src->limit[FPT_VAL] = src->limit[FPT_TEST] = s->eval_limit;
  } else {
    fpt_bit_task task;
    FPT_TRY(fpt_bit_task_make(&task, s->task, (int)s->bit_length, (int)s->patterns, (int)s->patch));
    FPT_TRY(fpt_source_open_task(src, &task, s->task, (uint64_t)s->seed, (uint64_t)s->data_seed,
                                 s->eval_samples));
  }
  FPT_TRY(describe(s, src, init_mode, d));
  fpt_backbone_cfg cfg = d->cfg;
  char why[256];
  FPT_ENSURE(fpt_check_grid(g->world, (int)s->stages, cfg.n_layer, (int)s->micro_batches,
                            (int)s->batch_size, why, sizeof why) == 0,
             "%s", why);
  FPT_TRY(fpt_grid_create(g, (int)s->stages, MPI_COMM_WORLD));
  fpt_part part = {0, 0, g->stage == 0, g->stage == g->S - 1};
  fpt_stage_layers(cfg.n_layer, g->S, g->stage, &part.l0, &part.l1);
  float *shared = NULL;
  int leader = 1;
  if (s->shared_weights)
    FPT_TRY(fpt_grid_shared_frozen(g, fpt_model_frozen_size(&cfg, &d->task, &d->freeze, &part),
                                   &shared, &leader));
  int rc = fpt_model_build(m, d, &part, shared, leader);
  if (s->shared_weights)
    MPI_Barrier(g->node_stage); // the leader's writes are visible from here on
  FPT_TRY(rc);
  return fpt_pipeline_create(pl, g, m, src, (int)s->batch_size, (int)s->micro_batches, kind);
}

// A function of the step alone, so that a resumed run follows the same curve.
static double lr_at(const train_settings *s, long long step) {
  double lr = s->lr;
  if (s->warmup > 0 && step < s->warmup)
    lr *= (double)(step + 1) / (double)s->warmup;
  if (!strcmp(s->lr_schedule, "cosine") && s->steps > 0)
    lr *= 0.1 + 0.9 * 0.5 * (1.0 + cos(acos(-1.0) * (double)step / (double)s->steps));
  return lr;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

// Resident and proportional (shared pages split among sharers) set size, MB.
static void memory_mb(double *rss, double *pss) {
  *rss = *pss = 0;
  FILE *f = fopen("/proc/self/smaps_rollup", "r");
  if (!f)
    return;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    long kb;
    if (sscanf(line, "Rss: %ld kB", &kb) == 1)
      *rss = kb / 1024.0;
    if (sscanf(line, "Pss: %ld kB", &kb) == 1)
      *pss = kb / 1024.0;
  }
  fclose(f);
}

static void print_startup(const train_settings *s, const fpt_grid *g, const fpt_model *m,
                          const fpt_source *src, const fpt_pipeline *pl) {
  // Totals over the whole model: each stage counts its part (replica 0).
  double cnt[2] = {0, 0}, mem[2];
  for (int i = 0; i < m->n_tensors; i++) {
    cnt[0] += (double)m->tensors[i].numel;
    cnt[1] += m->tensors[i].trainable ? (double)m->tensors[i].numel : 0;
  }
  MPI_Allreduce(MPI_IN_PLACE, cnt, 2, MPI_DOUBLE, MPI_SUM, g->pipe);
  memory_mb(&mem[0], &mem[1]);
  double tot[2] = {mem[0], mem[1]};
  MPI_Allreduce(MPI_IN_PLACE, tot, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  if (g->rank != 0)
    return;
  printf("fpt %s\n", cmd_name);
  fpt_opts_dump(opts, n_opts, s, emit_stdout, NULL);
  printf("grid: %d stage(s) x %d replica(s); %d micro-batch(es) of %d per replica; schedule %s\n",
         g->S, g->R, pl->M, pl->mbs, s->schedule);
  char cpu[512];
  fpt_cpu_summary(cpu, sizeof cpu);
  printf("threads per rank: %d (%s, 1 thread per call)\n%s\n", fpt_num_threads(),
         openblas_get_config(), cpu);
  printf("model: %s (%s%s), %d layers, %d wide, %d heads; %.0f parameters, %.0f trainable\n",
         m->cfg.kind, m->cfg.n_head ? (m->cfg.causal ? "causal" : "bidirectional") : "recurrent",
         m->random_state ? ", random initial state" : "", m->cfg.n_layer, m->cfg.n_embd,
         m->cfg.n_head, cnt[0], cnt[1]);
  printf("memory: %.0f MB resident in all ranks, %.0f MB proportional (frozen weights %s)\n",
         tot[0], tot[1], s->shared_weights ? "shared per node and stage" : "per rank");
  const char *how[] = {"last", "last-real", "mean"};
  printf("task: %s, %d tokens x %d%s, readout %d (%s%s), %d targets x %d classes\n", src->task,
         m->task.seq, m->task.d_in ? m->task.d_in : m->task.vocab, m->task.d_in ? "" : " ids",
         m->task.r, how[m->task.readout], src->lengths ? ", pad keys masked or skipped" : "", m->K,
         m->task.n_cls);

  if (src->from_file)
    printf("data: %s: %lld train, %lld val, %lld test samples%s\n", s->data,
           (long long)fpt_source_size(src, FPT_TRAIN), (long long)fpt_source_size(src, FPT_VAL),
           (long long)fpt_source_size(src, FPT_TEST),
           s->eval_limit || s->train_limit ? " (used: --eval-limit/--train-limit)" : "");
  fflush(stdout);
}

// metrics.jsonl says what ran each time the run starts or resumes, so that a
// slow segment explains itself (a CPU without the kernel, another grid).
static int write_run_line(fpt_metrics *mt, int64_t step, const fpt_grid *g) {
  fpt_cpu c;
  fpt_cpu_detect(&c);
  char feat[160], grid[64], thr[16];
  fpt_cpu_features(&c, feat, sizeof feat);
  snprintf(grid, sizeof grid, "%d stage(s) x %d replica(s)", g->S, g->R);
  snprintf(thr, sizeof thr, "%d", fpt_num_threads());
  const char *k[] = {"fpt",        "cpu",         "cpu_features", "blas_kernel",
                     "blas_kernel_origin", "grid", "threads_per_rank"};
  const char *v[] = {FPT_VERSION " (git " FPT_GIT_REVISION ")", c.brand, feat, fpt_blas_kernel(),
                     fpt_blas_kernel_origin(), grid, thr};
  return fpt_metrics_write_info(mt, step, (int)(sizeof k / sizeof *k), k, v);
}

static int write_config(const train_settings *s) {
  char path[4200];
  snprintf(path, sizeof path, "%s/config.yaml", s->run_dir);
  FILE *f = fopen(path, "w");
  FPT_ENSURE(f, "%s: cannot write", path);
  fpt_opts_dump(opts, n_opts, s, emit_file, f);
  FPT_ENSURE(fclose(f) == 0, "%s: write failed", path);
  return 0;
}

// Release everything that holds MPI or HDF5 resources, then finalize.
static int teardown(fpt_runtime *rt, fpt_pipeline *pl, fpt_source *src, fpt_model *m, fpt_grid *g,
                    fpt_metrics *mt, int failed) {
  if (mt)
    fpt_metrics_close(mt);
  release_run_dir(failed);
  fpt_pipeline_free(pl);
  fpt_source_close(src);
  fpt_model_free(m);
  fpt_grid_free(g);
  return fpt_runtime_finish(rt, failed);
}

// One line per logging interval; on a terminal, a live bar redrawn in place.
static void print_progress(long long done, long long total, double loss, double acc, double tps,
                           double eta) {
  // Open MPI gives ranks a pseudo-terminal even when mpirun's output goes to a
  // file, so under mpirun the bar is opt-in: FPT_PROGRESS=bar (or =lines).
  static int tty = -1;
  if (tty < 0) {
    const char *want = getenv("FPT_PROGRESS");
    tty = want ? !strcmp(want, "bar") : isatty(STDOUT_FILENO) && !getenv("OMPI_COMM_WORLD_SIZE");
  }
  char bar[24] = "";
  if (tty) {
    int w = 20, fill = total > 0 ? (int)(w * done / total) : w;
    for (int i = 0; i < w; i++)
      bar[i] = i < fill ? '#' : '.';
    bar[w] = '\0';
  }
  printf("%s%s%s%sstep %6lld/%lld  loss %.4f  acc %.4f  %.0f tok/s  eta %.0fs%s", tty ? "\r[" : "",
         bar, tty ? "] " : "", "", done, total, loss, acc, tps, eta,
         tty ? (done == total ? "\n" : "   ") : "\n");
  fflush(stdout);
}


// Resume from --resume (auto: the newest complete checkpoint, if any).
// Returns the first step to run through *start.
static int resume_run(const train_settings *s, fpt_grid *g, fpt_model *m, fpt_ckpt_state *st,
                      const fpt_run_desc *desc, int64_t *start) {
  *start = 0;
  char path[4400], note[6000] = "";
  int r = 0;
  if (!strcmp(s->resume, "none")) {
    // Never train over a run that has checkpoints: that would lose it.
    FPT_ENSURE(!fpt_run_has_checkpoints(s->run_dir),
               "option --run-dir: %s already holds checkpoints; use --resume auto, or another "
               "--run-dir",
               s->run_dir);
    return g->rank == 0 ? fpt_metrics_truncate(s->run_dir, -1) : 0;
  }
  if (!strcmp(s->resume, "auto")) {
    // Rank 0 finds the checkpoint (reading each candidate back); all follow.
    if (g->rank == 0)
      r = fpt_checkpoint_resume_point(s->run_dir, path, sizeof path, note, sizeof note);
    MPI_Bcast(&r, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Bcast(path, sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (r == 1 && g->rank != 0)
      fpt_error_set("rank 0 found no checkpoint to resume from");
    FPT_TRY(r == 1);
    if (r == FPT_RESUME_FRESH) {
      if (g->rank == 0)
        printf("resume: no checkpoint in %s/checkpoints: starting fresh\n", s->run_dir);
      // Lines of an attempt that died before its first checkpoint are redone.
      return g->rank == 0 ? fpt_metrics_truncate(s->run_dir, -1) : 0;
    }
    if (g->rank == 0 && note[0])
      printf("resume: %s\n", note);
  } else {
    snprintf(path, sizeof path, "%s", s->resume);
  }
  fpt_ckpt_state saved;
  static fpt_run_desc was;
  FPT_TRY(fpt_checkpoint_read_state(path, m, &saved));
  FPT_TRY(fpt_run_desc_read(path, &was));
  FPT_ENSURE(!strcmp(was.model_checksum, desc->model_checksum),
             "%s: made with backbone %s (checksum %s), but --model %s has checksum %s", path,
             was.model, was.model_checksum, s->model, desc->model_checksum);
  // Every setting that changes the numbers must be the checkpoint's.
  char diff[2048];
  fpt_run_desc_diff(&was, desc, diff, sizeof diff);
  FPT_ENSURE(!diff[0],
             "%s: this run's settings differ from the checkpoint's (checkpoint -> now): %s; resume "
             "with the checkpoint's settings, or use another --run-dir",
             path, diff);
  FPT_TRY(fpt_checkpoint_load(path, m));
  m->adam_t = saved.adam_t;
  memcpy(st->window, saved.window, sizeof st->window);
  st->window_steps = saved.window_steps;
  st->best_val = saved.best_val;
  st->best_step = saved.best_step;
  st->evals_since_best = saved.evals_since_best;
  *start = saved.step;
  if (g->rank == 0) {
    printf("resume: %s (step %lld)\n", path, (long long)saved.step);
    FPT_TRY(fpt_metrics_truncate(s->run_dir, saved.step));
  }
  return 0;
}

// Tensors from a checkpoint of the same backbone (init and tokens too):
// those starting with `prefixes` (NULL: all it holds); out/* must be there.
static int load_from(const char *opt, const char *path, fpt_grid *g, fpt_model *m,
                     const fpt_run_desc *desc, const char *const *prefixes) {
  static fpt_run_desc saved;
  fpt_ckpt_state st; // its input and output layers must fit this task
  int rc = fpt_checkpoint_read_state(path, m, &st), n = 0;
  if (rc == 0)
    rc = fpt_run_desc_read(path, &saved);
  if (rc == 0 && strcmp(saved.model_checksum, desc->model_checksum)) {
    fpt_error_set("option --%s: %s was made with backbone %s (checksum %s), but --model %s has "
                  "checksum %s",
                  opt, path, saved.model, saved.model_checksum, desc->model,
                  desc->model_checksum);
    rc = 1;
  }
  // The seed shapes the backbone only when it is random or statistics-matched.
  char was[256] = "", now[256] = "";
  size_t a = 0, b = 0;
  if (saved.init != desc->init) {
    a += (size_t)snprintf(was + a, sizeof was - a, " --init %s", fpt_init_names[saved.init]);
    b += (size_t)snprintf(now + b, sizeof now - b, " --init %s", fpt_init_names[desc->init]);
  }
  if (strcmp(saved.tokens, desc->tokens)) {
    a += (size_t)snprintf(was + a, sizeof was - a, " --tokens %s", saved.tokens);
    b += (size_t)snprintf(now + b, sizeof now - b, " --tokens %s", desc->tokens);
  }
  if (desc->init != FPT_INIT_PRETRAINED && saved.seed != desc->seed) {
    snprintf(was + a, sizeof was - a, " --seed %lld", (long long)saved.seed);
    snprintf(now + b, sizeof now - b, " --seed %lld", (long long)desc->seed);
  }
  if (rc == 0 && was[0]) {
    fpt_error_set("option --%s: %s was made with%s, but this run has%s", opt, path, was, now);
    rc = 1;
  }
  const char *need[] = {"out/weight", "out/bias", NULL};
  if (rc == 0)
    rc = fpt_checkpoint_load_params(path, m, prefixes, need, &n);
  if (g->win != MPI_WIN_NULL)
    MPI_Barrier(g->node_stage); // the leader's writes to the shared frozen weights
  n = g->replica == 0 ? n : 0;  // each stage's tensors once
  MPI_Allreduce(MPI_IN_PLACE, &n, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rc == 0 && g->rank == 0)
    printf("loaded %d tensors from %s\n", n, path);
  return rc;
}

// Val and test on the whole split: printed, and written to mt if given.
static int eval_splits(fpt_pipeline *pl, fpt_source *src, fpt_grid *g, fpt_metrics *mt,
                       int64_t step, const char *label, int digits) {
  const char *names[2] = {"val", "test"};
  int splits[2] = {FPT_SPLIT_VAL, FPT_SPLIT_TEST}, rc = 0;
  for (int k = 0; k < 2 && rc == 0; k++) {
    double l, a;
    rc = fpt_pipeline_evaluate(pl, splits[k], &l, &a);
    if (g->rank == 0 && rc == 0) {
      printf("%s%-4s loss %.*f  accuracy %.*f  (%lld samples)\n", label, names[k], digits, l,
             digits, a, (long long)fpt_source_size(src, splits[k]));
      const char *fin[1] = {"final"};
      double one[1] = {1};
      if (mt)
        rc = fpt_metrics_write(mt, step, names[k], l, a, 0, 1, fin, one);
    }
  }
  return rc;
}

// Validation (and test, with --eval-test) at `step`: metrics and the
// early-stopping state. FPT_STOPPED (a signal) leaves both untouched.
static int periodic_eval(const train_settings *s, fpt_pipeline *pl, const fpt_grid *g,
                         fpt_metrics *mt, fpt_ckpt_state *st, int64_t step) {
  double l, a, lt, at;
  FPT_TRY(fpt_pipeline_evaluate(pl, FPT_SPLIT_VAL, &l, &a));
  if (s->eval_test)
    FPT_TRY(fpt_pipeline_evaluate(pl, FPT_SPLIT_TEST, &lt, &at));
  if (g->rank == 0) {
    FPT_TRY(fpt_metrics_write(mt, step, "val", l, a, 0, 0, NULL, NULL));
    if (s->eval_test)
      FPT_TRY(fpt_metrics_write(mt, step, "test", lt, at, 0, 0, NULL, NULL));
  }
  if (l < st->best_val) {
    st->best_val = l;
    st->best_step = step;
    st->evals_since_best = 0;
  } else {
    st->evals_since_best++;
  }
  return 0;
}

// A run stopped during an evaluation checkpointed the step before it: the
// resume does that evaluation first (its metrics line is missing).
static int redo_eval(const train_settings *s, fpt_pipeline *pl, const fpt_grid *g,
                     fpt_metrics *mt, fpt_ckpt_state *st, int64_t start) {
  if (start == 0 || s->eval_every <= 0 || start % s->eval_every != 0 || start >= s->steps)
    return 0;
  int missing = 0;
  double acc;
  if (g->rank == 0)
    missing = fpt_metrics_find(s->run_dir, start, "val", &acc) != 0;
  MPI_Bcast(&missing, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (missing && g->rank == 0)
    printf("resume: the evaluation at step %lld was interrupted: doing it now\n", (long long)start);
  return missing ? periodic_eval(s, pl, g, mt, st, start) : 0;
}

// fpt eval: the checkpoint's tensors over the set-up's model, then val and test.
static int run_eval(const train_settings *s, fpt_runtime *rt, fpt_grid *g, fpt_model *m,
                    fpt_source *src, fpt_pipeline *pl, const fpt_run_desc *desc) {
  int rc = load_from("checkpoint", s->checkpoint, g, m, desc, NULL);
  if (fpt_runtime_agree(rt, rc) != 0)
    return 1;
  rc = eval_splits(pl, src, g, NULL, 0, "", 6);
  return fpt_runtime_agree(rt, rc);
}

static int run(int argc, char **argv) {
  select_opts();
  if (argc > 2 && !strcmp(argv[2], "--help")) {
    fpt_opts_help(lm_mode ? "fpt pretrain --model SHAPE.h5 --data TEXT.h5 [--key value ...]\n"
                            "(defaults differ from fpt train: init random, full_train true, "
                            "dropout 0, lr 1e-3 with warm-up 100 and cosine decay, batch_size 32)"
                  : sub == SUB_EVAL ? "fpt eval --model M.h5 --data D.h5 --checkpoint CKPT.h5 "
                                      "[--key value ...]\n(the same backbone, --init and "
                                      "--tokens as the checkpoint; prints val and test)"
                  : sub == SUB_PROBE
                      ? "fpt probe --model M.h5 --data D.h5 [--lambda L | --lambdas L1,L2,...] "
                        "[--key value ...]\n(the exact ridge least-squares output layer over "
                        "the frozen features; docs/PROBE.md)"
                      : "fpt train [--key value ...]",
                  opts, n_opts);
    return 0;
  }
  fpt_runtime rt;
  if (fpt_runtime_init(&rt, &argc, &argv) != 0)
    return 1;
  fpt_stop_install(); // before the (possibly long) set-up, so a signal is never lost
  int rc = fpt_grid_check_launch(rt.size);
  if (fpt_runtime_agree(&rt, rc) != 0)
    return fpt_runtime_finish(&rt, 1);
  train_settings s = defaults();
  fpt_model m;
  fpt_source src;
  fpt_grid g;
  fpt_pipeline pl;
  memset(&m, 0, sizeof m);
  memset(&src, 0, sizeof src);
  memset(&g, 0, sizeof g);
  memset(&pl, 0, sizeof pl);
  g.world = rt.size;
  g.rank = rt.rank;
  static fpt_run_desc desc;
  rc = setup(&s, argc, argv, &g, &m, &src, &pl, &desc);
  if (fpt_runtime_agree(&rt, rc) != 0)
    return teardown(&rt, &pl, &src, &m, &g, NULL, 1);

  // The checkpoint state; the backbone's (and a dataset file's) checksums
  // complete the run's description.
  static fpt_ckpt_state st;
  memset(&st, 0, sizeof st);
  st.seed = s.seed;
  st.batch_size = s.batch_size;
  st.best_val = INFINITY;
  if (g.rank == 0)
    rc = fpt_file_checksum(s.model, desc.model_checksum);
  if (g.rank == 0 && rc == 0 && s.data)
    rc = fpt_file_checksum(s.data, desc.data_checksum);
  MPI_Bcast(desc.model_checksum, sizeof desc.model_checksum, MPI_CHAR, 0, MPI_COMM_WORLD);
  MPI_Bcast(desc.data_checksum, sizeof desc.data_checksum, MPI_CHAR, 0, MPI_COMM_WORLD);
  if (sub != SUB_TRAIN) {
    if (fpt_runtime_agree(&rt, rc) == 0) {
      print_startup(&s, &g, &m, &src, &pl);
      rc = sub == SUB_EVAL ? run_eval(&s, &rt, &g, &m, &src, &pl, &desc)
                           : fpt_probe_run(&s, &rt, &g, &m, &src, &pl, &st, &desc);
    }
    return teardown(&rt, &pl, &src, &m, &g, NULL, rc != 0);
  }
  int64_t start = 0;
  if (fpt_runtime_agree(&rt, rc) == 0)
    rc = resume_run(&s, &g, &m, &st, &desc, &start);
  else
    rc = 1;
  const char *head[] = {"in/", "out/", NULL}; // a resumed run has its own head
  if (s.init_head_from && start == 0 && fpt_runtime_agree(&rt, rc) == 0)
    rc = load_from("init-head-from", s.init_head_from, &g, &m, &desc, head);
  fpt_metrics mt = {0};
  if (fpt_runtime_agree(&rt, rc) != 0)
    return teardown(&rt, &pl, &src, &m, &g, &mt, 1);
  if (g.rank == 0) {
    rc = fpt_metrics_open(&mt, s.run_dir);
    if (rc == 0)
      rc = write_run_line(&mt, start, &g);
    if (rc == 0)
      rc = write_config(&s);
  }
  if (fpt_runtime_agree(&rt, rc) != 0)
    return teardown(&rt, &pl, &src, &m, &g, &mt, 1);
  print_startup(&s, &g, &m, &src, &pl);
  if (s.init_head_from && start == 0) { // where training starts: the probe's val score
    double l, a;
    rc = fpt_pipeline_evaluate(&pl, FPT_SPLIT_VAL, &l, &a);
    if (g.rank == 0 && rc == 0) {
      printf("step 0 val  loss %.6f  accuracy %.6f  (head from %s)\n", l, a, s.init_head_from);
      rc = fpt_metrics_write(&mt, 0, "val", l, a, 0, 0, NULL, NULL);
    }
    if (fpt_runtime_agree(&rt, rc) != 0)
      return teardown(&rt, &pl, &src, &m, &g, &mt, 1);
  }

  rc = redo_eval(&s, &pl, &g, &mt, &st, start);
  if (fpt_runtime_agree(&rt, rc) != 0)
    return teardown(&rt, &pl, &src, &m, &g, &mt, 1);
  double *win = st.window; // loss, acc, seconds, compute, p2p, allreduce, io
  int64_t win_steps = st.window_steps;
  double t_start = now(), t_steps = 0;
  int exit_requeue = 0, stopped_early = 0;
  int64_t final_step = start;
  for (long long step = start; step < s.steps && rc == 0; step++) {
    final_step = step + 1;
    double t0 = now(), loss, acc, norm;
    fpt_fault("step", step);
    double lr = lr_at(&s, step);
    rc =
        fpt_pipeline_train_step(&pl, step, (uint64_t)s.seed, s.clip, (float)lr, &loss, &acc, &norm);
    if (fpt_runtime_agree(&rt, rc) != 0) {
      rc = 1;
      break;
    }
    if (!isfinite(loss) || !isfinite(norm)) {
      if (g.rank == 0)
        fprintf(stderr, "fpt: error: step %lld: training loss %g, gradient norm %g; stopping\n",
                step, loss, norm);
      rc = 1;
      break;
    }
    double part[7] = {loss, acc, now() - t0, pl.t.compute, pl.t.p2p_wait, pl.t.allreduce, pl.t.io};
    t_steps += part[2];
    for (int k = 0; k < 7; k++)
      win[k] += part[k];
    win_steps++;
    if ((step + 1) % s.log_every == 0 || step + 1 == s.steps) {
      // Time split: the slowest rank's, since it sets the pace.
      MPI_Allreduce(MPI_IN_PLACE, win + 2, 5, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      double tps = (double)win_steps * s.batch_size * m.task.seq / win[2];
      if (g.rank == 0) {
        double eta = (now() - t_start) / (step + 1 - start) * (s.steps - step - 1);
        print_progress(step + 1, s.steps, win[0] / win_steps, win[1] / win_steps, tps, eta);
        const char *names[6] = {"lr", "step_s", "compute_s", "p2p_wait_s", "allreduce_s", "io_s"};
        double vals[6] = {lr,
                          win[2] / win_steps,
                          win[3] / win_steps,
                          win[4] / win_steps,
                          win[5] / win_steps,
                          win[6] / win_steps};
        rc = fpt_metrics_write(&mt, step + 1, "train", win[0] / win_steps, win[1] / win_steps, tps,
                               6, names, vals);
      }
      memset(win, 0, sizeof st.window);
      win_steps = 0;
    }
    int stopped_eval = 0;
    if (rc == 0 && s.eval_every > 0 && (step + 1) % s.eval_every == 0 && step + 1 < s.steps) {
      rc = periodic_eval(&s, &pl, &g, &mt, &st, step + 1);
      stopped_eval = rc == FPT_STOPPED; // checkpoint below; a resume redoes the evaluation
      rc = stopped_eval ? 0 : rc;
      stopped_early = s.early_stop > 0 && st.evals_since_best >= s.early_stop;
    }
    if (fpt_runtime_agree(&rt, rc) != 0) {
      rc = 1;
      break;
    }
    // Stop requests: a signal on any rank, or the time budget (rank 0's clock).
    int64_t done = step + 1;
    int stop = fpt_stop_requested() != 0 || stopped_eval;
    if (g.rank == 0 && s.time_limit > 0 &&
        now() - t_start + 2.0 * t_steps / (double)(done - start) > s.time_limit)
      stop = 1;
    MPI_Allreduce(MPI_IN_PLACE, &stop, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    int periodic = s.checkpoint_every > 0 && done % s.checkpoint_every == 0;
    if (stop || periodic || stopped_early || done == s.steps) {
      st.step = done;
      st.adam_t = m.adam_t;
      st.sample_offset = done * s.batch_size;
      st.window_steps = win_steps;
      rc = fpt_checkpoint_write(s.run_dir, MPI_COMM_WORLD, &m, g.replica == 0, &st, &desc,
                                (int)s.keep_checkpoints);
      if (fpt_runtime_agree(&rt, rc) != 0) {
        rc = 1;
        break;
      }
    }
    if (stop && done < s.steps) {
      if (g.rank == 0)
        printf("stopping at step %lld (%s): checkpoint written; exit %d asks to be requeued\n",
               (long long)done, fpt_stop_requested() ? "signal" : "time limit", FPT_EXIT_REQUEUE);
      exit_requeue = 1;
      break;
    }
    if (stopped_early) {
      if (g.rank == 0)
        printf("early stop at step %lld: no better validation loss for %lld evaluations "
               "(best %.4f at step %lld)\n",
               (long long)done, s.early_stop, st.best_val, (long long)st.best_step);
      break;
    }
  }
  if (exit_requeue) {
    teardown(&rt, &pl, &src, &m, &g, &mt, 0);
    return FPT_EXIT_REQUEUE;
  }
  if (rc == 0) {
    // After training every rank has touched its weights: the fair memory figure.
    double mem[2];
    memory_mb(&mem[0], &mem[1]);
    MPI_Allreduce(MPI_IN_PLACE, mem, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    if (g.rank == 0)
      printf("memory after training: %.0f MB resident in all ranks, %.0f MB proportional\n", mem[0],
             mem[1]);
    rc = eval_splits(&pl, &src, &g, &mt, final_step, "final ", 4);
    if (rc == FPT_STOPPED) { // the last checkpoint is there: a resume evaluates again
      if (g.rank == 0)
        printf("stopped by a signal during the final evaluation; exit %d asks to be requeued\n",
               FPT_EXIT_REQUEUE);
      teardown(&rt, &pl, &src, &m, &g, &mt, 0);
      return FPT_EXIT_REQUEUE;
    }
    if (rc == 0 && s.export && g.rank == 0) {
      // From the last checkpoint, as `fpt export` would: any stage layout.
      char ckpt[4400], note[6000];
      rc = fpt_checkpoint_resume_point(s.run_dir, ckpt, sizeof ckpt, note, sizeof note) != 0;
      if (rc == 0)
        rc = fpt_export_checkpoint(ckpt, s.model, s.export);
    }
    if (rc != 0 && g.rank == 0)
      fprintf(stderr, "fpt: error: %s\n", fpt_error_get());
  }
  MPI_Allreduce(MPI_IN_PLACE, &rc, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return teardown(&rt, &pl, &src, &m, &g, &mt, rc != 0);
}

int cmd_train(int argc, char **argv) {
  lm_mode = 0;
  return run(argc, argv);
}

int cmd_pretrain(int argc, char **argv) {
  lm_mode = 1;
  cmd_name = "pretrain";
  return run(argc, argv);
}

int cmd_eval(int argc, char **argv) {
  sub = SUB_EVAL;
  cmd_name = "eval";
  return run(argc, argv);
}

int cmd_probe(int argc, char **argv) {
  sub = SUB_PROBE;
  cmd_name = "probe";
  return run(argc, argv);
}
