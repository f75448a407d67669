// The set-up of a run of the family (train, pretrain, eval, probe): claim
// the run directory, open the data, describe the run (fpt/run.h), build the
// model over the grid, resume, and the teardown.
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fpt/check.h"
#include "fpt/schedule.h"
#include "fpt/tasks.h"
#include "train.h"

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

static int claim_run_dir(const fpt_run *r) {
  const train_settings *s = &r->s;
  claim.dir = s->run_dir;
  FPT_TRY(make_dir(s->run_dir));
  FPT_TRY(fpt_run_lock(s->run_dir, &claim.fd));
  char probe_file[4200];
  snprintf(probe_file, sizeof probe_file, "%s/probe.h5", s->run_dir);
  // fpt probe writes its own step-0 checkpoint: never into a training run.
  FPT_ENSURE(r->cmd->kind != FPT_RUN_PROBE || !fpt_run_has_checkpoints(s->run_dir) ||
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
static int check_outputs(const fpt_run *r) {
  const train_settings *s = &r->s;
  if (r->cmd->kind == FPT_RUN_PROBE && s->cache) {
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

// Rank 0 checks the outputs and claims the run directory; every rank agrees.
static int claim_outputs(fpt_run *r) {
  int bad = 0;
  if (r->g.rank == 0) {
    bad = check_outputs(r);
    if (bad == 0 && r->cmd->kind != FPT_RUN_EVAL)
      bad = claim_run_dir(r);
  }
  MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (bad && r->g.rank != 0)
    fpt_error_set("rank 0 could not claim the run directory");
  return bad;
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
    t->readout =
        cfg->n_head > 0 && !cfg->causal && t->r == 1 ? FPT_READOUT_LAST_REAL : FPT_READOUT_LAST;
  FPT_ENSURE(t->readout >= 0, "option --readout: '%s' is not last, last-real, mean or auto", name);
  FPT_ENSURE(t->readout == FPT_READOUT_LAST || t->r == 1,
             "option --readout: %s reads one position, but the task reads the last %d", name, t->r);
  return 0;
}

// fpt pretrain --objective: causal (next byte) or mlm (masked bytes, on a
// bidirectional model: a causal one would see nothing to its right).
static int objective_of(const fpt_run *r, fpt_source *src, fpt_run_desc *d) {
  const train_settings *s = &r->s;
  d->objective = !strcmp(s->objective, "mlm") ? FPT_OBJ_MLM : FPT_OBJ_CAUSAL;
  if (d->objective != FPT_OBJ_MLM)
    return 0;
  FPT_ENSURE(d->cfg.n_head > 0 && !d->cfg.causal,
             "option --objective mlm: %s is a causal model; masked-byte pretraining needs a "
             "bidirectional one (fpt init --causal false)",
             s->model);
  return fpt_source_mlm(src, (uint64_t)s->seed);
}

// A language model (fpt pretrain): a text file, one stage, the tied table.
static int language_model(const fpt_run *r, const fpt_source *src, fpt_run_desc *d) {
  const train_settings *s = &r->s;
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
  return 0;
}

static void describe_data(const train_settings *s, const fpt_source *src, fpt_run_desc *d) {
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
}

// The run's typed description from the options and the data source; the
// backbone's shape from the model file.
static int describe(fpt_run *r) {
  const train_settings *s = &r->s;
  fpt_run_desc *d = &r->desc;
  fpt_run_desc_init(d);
  snprintf(d->model, sizeof d->model, "%s", s->model);
  FPT_TRY(fpt_run_desc_read_model(d));
  for (int i = 0; fpt_init_names[i]; i++)
    if (!strcmp(s->init, fpt_init_names[i]))
      d->init = i;
  d->seed = s->seed;
  d->orth_gain = s->orth_gain;
  d->dropout = s->dropout;
  fpt_freeze fr = {
      {s->freeze_in, s->freeze_out, s->freeze_ln, s->freeze_pos, s->freeze_attn, s->freeze_ff, 0},
      s->full_train};
  d->freeze = fr;
  FPT_TRY(objective_of(r, &r->src, d));
  d->task = r->src.shape;
  FPT_TRY(readout_of(s->readout, &d->cfg, &d->task));
  d->lstm_state = !strcmp(s->lstm_state, "random") ? FPT_STATE_RANDOM : FPT_STATE_ZERO;
  FPT_ENSURE(d->lstm_state == FPT_STATE_ZERO || !strcmp(d->cfg.kind, "lstm"),
             "option --lstm-state: %s has a %s backbone, not an LSTM", s->model, d->cfg.kind);
  FPT_TRY(fpt_frozen_dtype_option(s->frozen_dtype, d->cfg.kind, &d->frozen_dtype));
  FPT_ENSURE(!train_option_given("augment") || r->src.augment || !s->augment,
             "option --augment: applies to CIFAR-10 files, not to task %s", r->src.task);
  if (fpt_model_needs_lengths(&d->cfg, &d->task))
    fpt_source_want_lengths(&r->src);
  if (r->cmd->kind == FPT_RUN_PRETRAIN)
    FPT_TRY(language_model(r, &r->src, d));
  FPT_ENSURE(!d->cfg.n_positions || d->task.seq <= d->cfg.n_positions,
             "%s: the task %s has %d tokens but n_positions is %d", s->model, r->src.task,
             d->task.seq, d->cfg.n_positions);
  describe_data(s, &r->src, d);
  return 0;
}

static int open_source(fpt_run *r) {
  const train_settings *s = &r->s;
  fpt_source *src = &r->src;
  if (s->data) {
    FPT_TRY(fpt_source_open_file(src, s->data, s->tokens, (uint64_t)s->seed, s->augment,
                                 MPI_COMM_WORLD));
    src->limit[FPT_TRAIN] = s->train_limit;
    src->limit[FPT_VAL] = src->limit[FPT_TEST] = s->eval_limit;
    return 0;
  }
  return fpt_source_open_generated(src, s->task, (int)s->bit_length, (int)s->patterns,
                                   (int)s->patch, (uint64_t)s->seed, (uint64_t)s->data_seed,
                                   s->eval_samples);
}

// The grid, this stage's part of the model (its frozen tensors once per node
// and stage, in shared memory, when asked) and the pipeline.
static int build(fpt_run *r) {
  const train_settings *s = &r->s;
  fpt_grid *g = &r->g;
  const fpt_backbone_cfg *cfg = &r->desc.cfg;
  char why[256];
  FPT_ENSURE(fpt_check_grid(g->world, (int)s->stages, cfg->n_layer, (int)s->micro_batches,
                            (int)s->batch_size, why, sizeof why) == 0,
             "%s", why);
  FPT_TRY(fpt_grid_create(g, (int)s->stages, MPI_COMM_WORLD));
  fpt_part part = {0, 0, g->stage == 0, g->stage == g->S - 1};
  fpt_stage_layers(cfg->n_layer, g->S, g->stage, &part.l0, &part.l1);
  float *shared = NULL;
  int leader = 1;
  if (s->shared_weights)
    FPT_TRY(fpt_grid_shared_frozen(
        g, fpt_model_frozen_size(cfg, &r->desc.task, &r->desc.freeze, &part), &shared, &leader));
  int rc = fpt_model_build(&r->m, &r->desc, &part, shared, leader);
  if (s->shared_weights)
    MPI_Barrier(g->node_stage); // the leader's writes are visible from here on
  FPT_TRY(rc);
  if (shared) // each rank's bf16 copies, from the filled shared tensors
    FPT_TRY(fpt_model_set_frozen_dtype(&r->m, r->desc.frozen_dtype));
  int kind = !strcmp(s->schedule, "gpipe") ? FPT_SCHED_GPIPE : FPT_SCHED_1F1B;
  return fpt_pipeline_create(&r->pl, g, &r->m, &r->src, (int)s->batch_size, (int)s->micro_batches,
                             kind);
}

// The backbone's (and a dataset file's) checksums complete the description.
// Collective; after train_setup has been agreed (a model file that fails to
// load may fail on one rank only: the node leader that reads it).
int train_checksums(fpt_run *r) {
  int rc = 0;
  if (r->g.rank == 0)
    rc = fpt_file_checksum(r->s.model, r->desc.model_checksum);
  if (r->g.rank == 0 && rc == 0 && r->s.data)
    rc = fpt_file_checksum(r->s.data, r->desc.data_checksum);
  MPI_Bcast(r->desc.model_checksum, sizeof r->desc.model_checksum, MPI_CHAR, 0, MPI_COMM_WORLD);
  MPI_Bcast(r->desc.data_checksum, sizeof r->desc.data_checksum, MPI_CHAR, 0, MPI_COMM_WORLD);
  return rc;
}

int train_setup(fpt_run *r, int argc, char **argv) {
  r->g.world = r->rt.size;
  r->g.rank = r->rt.rank;
  FPT_TRY(train_parse(r->cmd, &r->s, argc, argv));
  r->st.seed = r->s.seed;
  r->st.batch_size = r->s.batch_size;
  r->st.best_val = INFINITY;
  r->st.best_val_acc = -INFINITY;
  FPT_TRY(claim_outputs(r));
  FPT_TRY(open_source(r));
  FPT_TRY(describe(r));
  return build(r);
}

// --resume none: never train over a run that has checkpoints (it would be
// lost); metrics lines of an attempt that died before its first checkpoint
// are redone.
static int start_fresh(const fpt_run *r) {
  FPT_ENSURE(!fpt_run_has_checkpoints(r->s.run_dir),
             "option --run-dir: %s already holds checkpoints; use --resume auto, or another "
             "--run-dir",
             r->s.run_dir);
  return r->g.rank == 0 ? fpt_metrics_truncate(r->s.run_dir, -1) : 0;
}

// --resume auto: rank 0 finds the newest checkpoint that reads back; all
// follow. Returns FPT_RESUME_FRESH when there is none.
static int find_resume_point(const fpt_run *r, char *path, size_t size) {
  char note[6000] = "";
  int rc = 0;
  if (r->g.rank == 0)
    rc = fpt_checkpoint_resume_point(r->s.run_dir, path, size, note, sizeof note);
  MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
  MPI_Bcast(path, (int)size, MPI_CHAR, 0, MPI_COMM_WORLD);
  if (rc == 1 && r->g.rank != 0)
    fpt_error_set("rank 0 found no checkpoint to resume from");
  FPT_TRY(rc == 1);
  if (r->g.rank == 0 && rc == FPT_RESUME_FRESH)
    printf("resume: no checkpoint in %s/checkpoints: starting fresh\n", r->s.run_dir);
  else if (r->g.rank == 0 && note[0])
    printf("resume: %s\n", note);
  return rc;
}

// The checkpoint must be of this backbone, with every setting that changes
// the numbers unchanged; then its tensors and state replace the fresh ones.
static int resume_from(fpt_run *r, const char *path) {
  static fpt_run_desc was;
  fpt_ckpt_state saved;
  FPT_TRY(fpt_checkpoint_read_state(path, &r->m, &saved));
  FPT_TRY(fpt_run_desc_read(path, &was));
  FPT_ENSURE(!strcmp(was.model_checksum, r->desc.model_checksum),
             "%s: made with backbone %s (checksum %s), but --model %s has checksum %s", path,
             was.model, was.model_checksum, r->s.model, r->desc.model_checksum);
  char diff[2048];
  fpt_run_desc_diff(&was, &r->desc, diff, sizeof diff);
  FPT_ENSURE(!diff[0],
             "%s: this run's settings differ from the checkpoint's (checkpoint -> now): %s; resume "
             "with the checkpoint's settings, or use another --run-dir",
             path, diff);
  FPT_TRY(fpt_checkpoint_load(path, &r->m));
  r->m.adam_t = saved.adam_t;
  memcpy(r->st.window, saved.window, sizeof r->st.window);
  r->st.window_steps = saved.window_steps;
  r->st.best_val = saved.best_val;
  r->st.best_step = saved.best_step;
  r->st.evals_since_best = saved.evals_since_best;
  r->st.best_val_acc = saved.best_val_acc;
  r->st.best_acc_step = saved.best_acc_step;
  r->st.evals_since_best_acc = saved.evals_since_best_acc;
  r->start = saved.step;
  if (r->g.rank == 0) {
    printf("resume: %s (step %lld)\n", path, (long long)saved.step);
    FPT_TRY(fpt_metrics_truncate(r->s.run_dir, saved.step));
  }
  return 0;
}

int train_resume(fpt_run *r) {
  r->start = 0;
  if (!strcmp(r->s.resume, "none"))
    return start_fresh(r);
  char path[4400];
  if (strcmp(r->s.resume, "auto")) {
    snprintf(path, sizeof path, "%s", r->s.resume);
    return resume_from(r, path);
  }
  int rc = find_resume_point(r, path, sizeof path);
  if (rc == FPT_RESUME_FRESH)
    return r->g.rank == 0 ? fpt_metrics_truncate(r->s.run_dir, -1) : 0;
  return rc ? rc : resume_from(r, path);
}

// What of the run's description a checkpoint must share before its tensors
// are borrowed: the backbone always; --init and --tokens; the seed when it
// shapes the backbone (random or statistics-matched init).
static int borrowable(const char *opt, const char *path, const fpt_run_desc *saved,
                      const fpt_run_desc *desc) {
  FPT_ENSURE(!strcmp(saved->model_checksum, desc->model_checksum),
             "option --%s: %s was made with backbone %s (checksum %s), but --model %s has "
             "checksum %s",
             opt, path, saved->model, saved->model_checksum, desc->model, desc->model_checksum);
  char was[256] = "", now[256] = "";
  size_t a = 0, b = 0;
  if (saved->init != desc->init) {
    a += (size_t)snprintf(was + a, sizeof was - a, " --init %s", fpt_init_names[saved->init]);
    b += (size_t)snprintf(now + b, sizeof now - b, " --init %s", fpt_init_names[desc->init]);
  }
  if (strcmp(saved->tokens, desc->tokens)) {
    a += (size_t)snprintf(was + a, sizeof was - a, " --tokens %s", saved->tokens);
    b += (size_t)snprintf(now + b, sizeof now - b, " --tokens %s", desc->tokens);
  }
  if (desc->init != FPT_INIT_PRETRAINED && saved->seed != desc->seed) {
    snprintf(was + a, sizeof was - a, " --seed %lld", (long long)saved->seed);
    snprintf(now + b, sizeof now - b, " --seed %lld", (long long)desc->seed);
  }
  FPT_ENSURE(!was[0], "option --%s: %s was made with%s, but this run has%s", opt, path, was, now);
  return 0;
}

// Tensors from a checkpoint of the same backbone: those starting with
// `prefixes` (NULL: all it holds); out/* must be there. Collective.
int train_load_from(fpt_run *r, const char *opt, const char *path, const char *const *prefixes) {
  static fpt_run_desc saved;
  fpt_ckpt_state st; // its input and output layers must fit this task
  int rc = fpt_checkpoint_read_state(path, &r->m, &st), n = 0;
  if (rc == 0)
    rc = fpt_run_desc_read(path, &saved);
  if (rc == 0)
    rc = borrowable(opt, path, &saved, &r->desc);
  const char *need[] = {"out/weight", "out/bias", NULL};
  if (rc == 0)
    rc = fpt_checkpoint_load_params(path, &r->m, prefixes, need, &n);
  if (r->g.win != MPI_WIN_NULL)
    MPI_Barrier(r->g.node_stage); // the leader's writes to the shared frozen weights
  if (rc == 0) // never a stale packed copy (bf16, or fp32 panels) of a loaded matrix
    rc = fpt_model_set_frozen_dtype(&r->m, r->m.frozen_dtype);
  n = r->g.replica == 0 ? n : 0; // each stage's tensors once
  MPI_Allreduce(MPI_IN_PLACE, &n, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rc == 0 && r->g.rank == 0)
    printf("loaded %d tensors from %s\n", n, path);
  return rc;
}

int train_teardown(fpt_run *r, int failed) {
  fpt_metrics_close(&r->mt);
  release_run_dir(failed);
  fpt_pipeline_free(&r->pl);
  fpt_source_close(&r->src);
  fpt_model_free(&r->m);
  fpt_grid_free(&r->g);
  return fpt_runtime_finish(&r->rt, failed);
}
