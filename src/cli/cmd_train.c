// fpt train: the main job. Data-parallel replicas (one per rank) shard the
// global batch; the trainable gradients are all-reduced once per step.
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "commands.h"
#include "fpt/batches.h"
#include "fpt/check.h"
#include "fpt/config.h"
#include "fpt/io.h"
#include "fpt/model.h"
#include "fpt/tasks.h"
#include "runtime.h"

typedef struct {
  const char *model, *data, *task, *run_dir, *init, *tokens;
  long long steps, batch_size, seed, data_seed, log_every, eval_every,
      eval_samples, bit_length, patterns, patch;
  double lr, dropout, orth_gain, clip;
  int freeze_in, freeze_out, freeze_ln, freeze_pos, freeze_attn, freeze_ff,
      full_train, augment;
} train_settings;

#define O(k, t, h) {#k, FPT_OPT_##t, offsetof(train_settings, k), h}
static const fpt_opt train_opts[] = {
    O(model, STR, "backbone model file (HDF5)"),
    O(data, STR, "dataset file (HDF5); omit for generated bit tasks"),
    O(task, STR, "generated task when --data is not given: bit-xor or bit-memory"),
    O(tokens, STR, "which inputs of the dataset file: x, or x2 (ListOps: LRA tokens)"),
    O(steps, INT, "gradient steps"),
    O(batch_size, INT, "global batch (split across ranks)"),
    O(lr, FLOAT, "Adam learning rate"),
    O(seed, INT, "seed: input/output init, dropout, training samples"),
    O(data_seed, INT, "seed of the generated validation and test sets"),
    O(log_every, INT, "steps between train-metric lines"),
    O(eval_every, INT, "steps between validation passes (0: only at the end)"),
    O(eval_samples, INT, "samples in each generated val/test set (files: whole splits)"),
    O(run_dir, STR, "directory for metrics.jsonl and outputs"),
    O(init, STR, "backbone: pretrained, random, or stats (matched to --model)"),
    O(dropout, FLOAT, "dropout probability in training"),
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
};
#undef O
static const int n_train_opts = (int)(sizeof train_opts / sizeof *train_opts);

static train_settings defaults(void) {
  train_settings s = {0};
  s.task = "bit-xor";
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
  return s;
}

static void emit_file(void *ctx, const char *line) { fprintf((FILE *)ctx, "%s\n", line); }
static void emit_stdout(void *ctx, const char *line) {
  (void)ctx;
  printf("  %s\n", line);
}

static int make_dir(const char *dir) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", dir);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      mkdir(buf, 0777);
      *p = '/';
    }
  FPT_ENSURE(mkdir(buf, 0777) == 0 || errno == EEXIST,
             "option --run-dir: cannot create %s", dir);
  char probe[4200];
  snprintf(probe, sizeof probe, "%s/.write-test", dir);
  FILE *f = fopen(probe, "w");
  FPT_ENSURE(f, "option --run-dir: %s is not writable", dir);
  fclose(f);
  remove(probe);
  return 0;
}

// Loss and accuracy over a whole val or test split, sharded across ranks.
// Collective: every rank runs the same number of rounds.
static int evaluate(const fpt_model *m, fpt_acts *a, fpt_source *src, fpt_source_buf *bb,
                    int split, int rank, int R, double *loss, double *acc) {
  int64_t n = fpt_source_size(src, split);
  double sums[2] = {0, 0};
  fpt_pass p = {0, 0, 0};
  for (int64_t s0 = 0; s0 < n; s0 += (int64_t)bb->B * R) {
    int64_t mine = s0 + (int64_t)rank * bb->B;
    int cnt = (int)(mine >= n ? 0 : (n - mine < bb->B ? n - mine : bb->B));
    FPT_TRY(fpt_source_eval(src, split, mine, cnt, 1, 1, bb));
    if (cnt == 0)
      continue;
    fpt_batch b = {cnt, bb->x, bb->ids, bb->y, bb->sample};
    int64_t hits = 0;
    sums[0] += fpt_forward_backward(m, a, &b, &p, 0.0f, &hits);
    sums[1] += (double)hits;
  }
  MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  *loss = n > 0 ? sums[0] / ((double)n * m->K) : 0.0;
  *acc = n > 0 ? sums[1] / ((double)n * m->K) : 0.0;
  return 0;
}

static int setup(train_settings *s, int argc, char **argv, int rank, int R,
                 fpt_model *m, fpt_source *src) {
  FPT_TRY(fpt_opts_parse(argc, argv, 2, train_opts, n_train_opts, s));
  FPT_ENSURE(s->model, "option --model: a backbone model file is required");
  FPT_ENSURE(s->steps >= 0, "option --steps: must be >= 0");
  FPT_ENSURE(s->batch_size >= 1, "option --batch-size: must be >= 1");
  FPT_ENSURE(s->batch_size % R == 0,
             "option --batch-size: %lld is not divisible by the %d ranks",
             s->batch_size, R);
  FPT_ENSURE(s->log_every >= 1, "option --log-every: must be >= 1");
  FPT_ENSURE(s->eval_samples >= 1, "option --eval-samples: must be >= 1");
  FPT_ENSURE(s->lr > 0, "option --lr: must be > 0");
  FPT_ENSURE(s->dropout >= 0 && s->dropout < 1, "option --dropout: must be in [0,1)");
  int init_mode = !strcmp(s->init, "pretrained") ? 0
                  : !strcmp(s->init, "random")   ? 1
                  : !strcmp(s->init, "stats")    ? 2
                                                 : -1;
  FPT_ENSURE(init_mode >= 0, "option --init: '%s' is not pretrained, random or stats",
             s->init);
  if (s->data) {
    FPT_TRY(fpt_source_open_file(src, s->data, s->tokens, (uint64_t)s->seed, s->augment,
                                 MPI_COMM_WORLD));
  } else {
    fpt_bit_task task;
    FPT_TRY(fpt_bit_task_make(&task, s->task, (int)s->bit_length, (int)s->patterns,
                              (int)s->patch));
    FPT_TRY(fpt_source_open_task(src, &task, s->task, (uint64_t)s->seed,
                                 (uint64_t)s->data_seed, s->eval_samples));
  }
  fpt_gpt2_config cfg;
  FPT_TRY(fpt_model_file_config(s->model, &cfg));
  fpt_task_shape shape = src->shape;
  fpt_freeze fr = {{s->freeze_in, s->freeze_out, s->freeze_ln, s->freeze_pos,
                    s->freeze_attn, s->freeze_ff},
                   s->full_train};
  FPT_ENSURE(shape.seq <= cfg.n_positions, "%s: the task %s has %d tokens but n_positions is %d",
             s->model, src->task, shape.seq, cfg.n_positions);
  FPT_TRY(fpt_model_create(m, &cfg, &shape, &fr));
  m->dropout = (float)s->dropout;
  if (init_mode == 1) {
    fpt_init_backbone_random(m, (uint64_t)s->seed);
  } else {
    FPT_TRY(fpt_model_file_load(s->model, m));
    if (init_mode == 2) {
      fpt_model like;
      FPT_TRY(fpt_model_create(&like, &cfg, &shape, &fr));
      memcpy(like.frozen_mem, m->frozen_mem, sizeof(float) * m->n_frozen);
      memcpy(like.train_mem, m->train_mem, sizeof(float) * m->n_train);
      fpt_init_backbone_like(m, &like, (uint64_t)s->seed);
      fpt_model_free(&like);
    }
  }
  FPT_TRY(fpt_init_wrapper(m, (uint64_t)s->seed, (float)s->orth_gain));
  if (rank == 0)
    FPT_TRY(make_dir(s->run_dir));
  (void)R;
  return 0;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

int cmd_train(int argc, char **argv) {
  if (argc > 2 && !strcmp(argv[2], "--help")) {
    fpt_opts_help("fpt train [--key value ...]", train_opts, n_train_opts);
    return 0;
  }
  fpt_runtime rt;
  if (fpt_runtime_init(&rt, &argc, &argv) != 0)
    return 1;
  int rank = rt.rank, R = rt.size;
  train_settings s = defaults();
  fpt_model m;
  fpt_source src;
  memset(&m, 0, sizeof m);
  memset(&src, 0, sizeof src);
  int rc = setup(&s, argc, argv, rank, R, &m, &src);
  if (fpt_runtime_agree(&rt, rc) != 0)
    return fpt_runtime_finish(&rt, 1);

  int B = (int)(s.batch_size / R);
  fpt_acts a;
  fpt_acts_create(&a, &m, B, 0, m.cfg.n_layer, 1, 1);
  fpt_source_buf bb;
  fpt_source_buf_init(&bb, &src, B);
  fpt_metrics mt = {0};
  rc = 0;
  if (rank == 0) {
    rc = fpt_metrics_open(&mt, s.run_dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.yaml", s.run_dir);
    FILE *f = fopen(path, "w");
    if (f) {
      fpt_opts_dump(train_opts, n_train_opts, &s, emit_file, f);
      fclose(f);
    }
  }
  if (fpt_runtime_agree(&rt, rc) != 0)
    return fpt_runtime_finish(&rt, 1);

  size_t n_params = 0, n_trainable = 0;
  for (int i = 0; i < m.n_tensors; i++) {
    n_params += m.tensors[i].numel;
    n_trainable += m.tensors[i].trainable ? m.tensors[i].numel : 0;
  }
  if (rank == 0) {
    printf("fpt train\n");
    fpt_opts_dump(train_opts, n_train_opts, &s, emit_stdout, NULL);
    printf("grid: %d replica(s) x 1 stage, %d sample(s) per replica\n", R, B);
    printf("threads per rank: %d (OpenBLAS %s, core %s, 1 thread per call)\n",
           fpt_num_threads(), openblas_get_config(), openblas_get_corename());
    printf("model: %d layers, %d wide, %d heads; %zu parameters, %zu trainable\n",
           m.cfg.n_layer, m.cfg.n_embd, m.cfg.n_head, n_params, n_trainable);
    printf("task: %s, %d tokens x %d%s, readout %d, %d targets x %d classes\n", src.task,
           m.task.seq, m.task.d_in ? m.task.d_in : m.task.vocab, m.task.d_in ? "" : " ids",
           m.task.r, m.K, m.task.n_cls);
    if (src.from_file)
      printf("data: %s: %lld train, %lld val, %lld test samples\n", s.data,
             (long long)src.rd.n[0], (long long)src.rd.n[1], (long long)src.rd.n[2]);
    fflush(stdout);
  }

  const double inv_targets = 1.0 / ((double)s.batch_size * m.K);
  double win_loss = 0, win_hits = 0, win_time = 0;
  int win_steps = 0;
  double t_start = now();
  for (long long step = 0; step < s.steps && rc == 0; step++) {
    double t0 = now();
    rc = fpt_source_train(&src, step * s.batch_size + (int64_t)rank * B, B, 1, 1, &bb);
    if (fpt_runtime_agree(&rt, rc) != 0) {
      rc = 1;
      break;
    }
    fpt_batch b = {B, bb.x, bb.ids, bb.y, bb.sample};
    fpt_pass p = {1, (uint64_t)s.seed, (uint32_t)step};
    fpt_zero_grad(&m);
    int64_t hits = 0;
    double sums[2];
    sums[0] = fpt_forward_backward(&m, &a, &b, &p, (float)inv_targets, &hits);
    sums[1] = (double)hits;
    if (R > 1) {
      MPI_Allreduce(MPI_IN_PLACE, m.grad_mem, (int)m.n_train, MPI_FLOAT,
                    MPI_SUM, MPI_COMM_WORLD);
      MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    }
    double loss = sums[0] * inv_targets;
    if (!isfinite(loss)) {
      if (rank == 0)
        fprintf(stderr, "fpt: error: step %lld: training loss is %g; stopping\n",
                step, loss);
      rc = 1;
      break;
    }
    fpt_clip_grad(&m, s.clip);
    fpt_adam_step(&m, (float)s.lr);
    win_loss += loss;
    win_hits += sums[1] * inv_targets;
    win_time += now() - t0;
    win_steps++;
    if ((step + 1) % s.log_every == 0 || step + 1 == s.steps) {
      double tps = (double)win_steps * s.batch_size * m.task.seq / win_time;
      if (rank == 0) {
        double eta = (now() - t_start) / (step + 1) * (s.steps - step - 1);
        printf("step %6lld/%lld  loss %.4f  acc %.4f  %.0f tok/s  eta %.0fs\n",
               step + 1, s.steps, win_loss / win_steps, win_hits / win_steps,
               tps, eta);
        fflush(stdout);
        rc = fpt_metrics_write(&mt, step + 1, "train", win_loss / win_steps,
                               win_hits / win_steps, tps, 0, NULL, NULL);
      }
      win_loss = win_hits = win_time = 0;
      win_steps = 0;
    }
    if (s.eval_every > 0 && (step + 1) % s.eval_every == 0 && step + 1 < s.steps) {
      double l, acc;
      rc = evaluate(&m, &a, &src, &bb, FPT_SPLIT_VAL, rank, R, &l, &acc);
      if (rank == 0 && rc == 0)
        rc = fpt_metrics_write(&mt, step + 1, "val", l, acc, 0, 0, NULL, NULL);
    }
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
  }
  if (rc == 0) {
    const char *names[2] = {"val", "test"};
    int splits[2] = {FPT_SPLIT_VAL, FPT_SPLIT_TEST};
    for (int k = 0; k < 2; k++) {
      double l, acc;
      rc = evaluate(&m, &a, &src, &bb, splits[k], rank, R, &l, &acc);
      if (rank == 0 && rc == 0) {
        printf("final %-4s loss %.4f  accuracy %.4f  (%lld samples)\n", names[k], l, acc,
               (long long)fpt_source_size(&src, splits[k]));
        if (rc == 0)
          rc = fpt_metrics_write(&mt, s.steps, names[k], l, acc, 0, 0, NULL, NULL);
      }
    }
    if (rc != 0 && rank == 0)
      fprintf(stderr, "fpt: error: %s\n", fpt_error_get());
  }
  fpt_metrics_close(&mt);
  fpt_source_buf_free(&bb);
  fpt_source_close(&src);
  fpt_acts_free(&a);
  fpt_model_free(&m);
  MPI_Allreduce(MPI_IN_PLACE, &rc, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return fpt_runtime_finish(&rt, rc != 0);
}
