// fpt attention: the softmax attention maps of a trained FPT model on a few
// samples (the paper's §3.5 figure). The model is rebuilt as `fpt train` built
// it, from the run's resolved configuration stored in the checkpoint: freeze
// set, backbone init (pretrained / random / stats, seeded), input and output
// layer init, then every trainable tensor from the checkpoint. One process:
// under mpirun with more than one rank it stops with an error.
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "fpt/batches.h"
#include "fpt/check.h"
#include "fpt/checkpoint.h"
#include "fpt/config.h"
#include "fpt/io.h"
#include "fpt/model.h"
#include "fpt/tasks.h"
#include "runtime.h"

#define ATT_FORMAT_VERSION 1
#define MAX_LAYERS 1024

typedef struct {
  const char *model, *checkpoint, *run_dir, *task, *data, *split, *layers, *out;
  long long samples, seed;
} att_settings;

#define O(k, t, h)                                                                                 \
  { #k, FPT_OPT_##t, offsetof(att_settings, k), h }
static const fpt_opt att_opts[] = {
    O(model, STR, "backbone model file (default: the one the checkpoint names)"),
    O(checkpoint, STR, "checkpoint file (RUN/checkpoints/ckpt-*.h5)"),
    O(run_dir, STR, "training run: its newest complete checkpoint"),
    O(task, STR, "generated task: bit-xor or bit-memory (the run's sizes)"),
    O(data, STR, "dataset file (HDF5)"),
    O(split, STR, "val or test (generated tasks: the run's --data-seed stream)"),
    O(samples, INT, "samples N: the first N of the split (default 16, or the whole split)"),
    O(layers, STR, "blocks to dump, comma-separated, e.g. 0,1 (default: all)"),
    O(seed, INT, "generated tasks: data seed (default: the run's --data-seed)"),
    O(out, STR, "output file ATT.h5 (-o)"),
};
#undef O
static const int n_att_opts = (int)(sizeof att_opts / sizeof *att_opts);

// What `fpt train` resolved, from the checkpoint's `config` attribute (the
// "key: value" lines of fpt_opts_dump; strings quoted, unset ones null).
typedef struct {
  char config[16384];
  const char *path;
} run_config;

// 0 and the value, or 1 if the key is absent or null.
static int config_need(const run_config *rc, const char *key, char *out, size_t n) {
  FPT_ENSURE(fpt_opts_dump_value(rc->config, key, out, n) == 0,
             "%s: the stored run configuration has no %s", rc->path, key);
  return 0;
}

static int config_num(const run_config *rc, const char *key, double *v) {
  char buf[64], *end;
  FPT_TRY(config_need(rc, key, buf, sizeof buf));
  if (!strcmp(buf, "true") || !strcmp(buf, "false")) {
    *v = !strcmp(buf, "true");
    return 0;
  }
  *v = strtod(buf, &end);
  FPT_ENSURE(*buf && !*end, "%s: run configuration: %s: '%s' is not a number", rc->path, key, buf);
  return 0;
}

// The backbone as `fpt train --init` made it (the checkpoint then overwrites
// whatever of it trained).
static int init_backbone(fpt_model *m, const char *model, const char *init, uint64_t seed) {
  if (!strcmp(init, "random")) {
    fpt_init_backbone_random(m, seed);
    return 0;
  }
  FPT_TRY(fpt_model_file_load(model, m));
  if (!strcmp(init, "pretrained"))
    return 0;
  fpt_model like;
  FPT_TRY(fpt_model_create(&like, &m->cfg, &m->task, &m->freeze));
  int rc = fpt_model_file_load(model, &like);
  if (rc == 0)
    fpt_init_backbone_like(m, &like, seed);
  fpt_model_free(&like);
  return rc;
}

// "0,2,3" -> layers; each in 0..L-1, no repeats. NULL: all.
static int parse_layers(const char *spec, int L, int *layers, int *n) {
  *n = 0;
  if (!spec) {
    for (int l = 0; l < L && l < MAX_LAYERS; l++)
      layers[(*n)++] = l;
    return 0;
  }
  const char *p = spec;
  for (;;) {
    char *end;
    long l = strtol(p, &end, 10);
    FPT_ENSURE(end != p && (*end == ',' || *end == '\0'),
               "option --layers: '%s' is not a comma-separated list of block indices", spec);
    FPT_ENSURE(l >= 0 && l < L, "option --layers: block %ld is not in 0..%d (the model has %d)", l,
               L - 1, L);
    for (int i = 0; i < *n; i++)
      FPT_ENSURE(layers[i] != l, "option --layers: block %ld is given twice", l);
    layers[(*n)++] = (int)l;
    if (*end == '\0')
      return 0;
    p = end + 1;
  }
}

typedef struct {
  att_settings s;
  char ckpt[4400];
  const char *model;
  int split, layers[MAX_LAYERS], n_layers;
  uint64_t data_seed;
  fpt_ckpt_state st;
  fpt_source src;
  fpt_model m;
  int r, K; // the task's readout and targets (the model runs every row: see run_samples)
} att_job;

static int open_source(att_job *j, const run_config *rc) {
  att_settings *s = &j->s;
  double seed, data_seed;
  FPT_TRY(config_num(rc, "seed", &seed));
  FPT_TRY(config_num(rc, "data_seed", &data_seed));
  if (s->data) {
    FPT_ENSURE(s->seed == LLONG_MIN,
               "option --seed: only for generated tasks (a dataset file gives its split in order)");
    char tokens[16] = "x";
    fpt_opts_dump_value(rc->config, "tokens", tokens, sizeof tokens);
    FPT_TRY(fpt_source_open_file(&j->src, s->data, tokens, (uint64_t)seed, 0, MPI_COMM_WORLD));
    FPT_ENSURE(strcmp(j->src.task, "text") != 0,
               "%s: language-model (text) datasets are not supported by fpt attention", s->data);
    int64_t have = fpt_source_size(&j->src, j->split);
    FPT_ENSURE(have >= 1, "%s: the %s split is empty", s->data, s->split);
    if (s->samples == LLONG_MIN)
      s->samples = have < 16 ? have : 16;
    FPT_ENSURE(s->samples <= have, "option --samples: %lld, but %s has %lld %s samples", s->samples,
               s->data, (long long)have, s->split);
    return 0;
  }
  // The run's bit-task sizes, if the run generated this task; else the defaults.
  char task[32] = "";
  double bits = 0, patterns = 0, patch = 0;
  if (fpt_opts_dump_value(rc->config, "task", task, sizeof task) == 0 && !strcmp(task, s->task)) {
    FPT_TRY(config_num(rc, "bit_length", &bits));
    FPT_TRY(config_num(rc, "patterns", &patterns));
    FPT_TRY(config_num(rc, "patch", &patch));
  } else {
    FPT_ENSURE(!task[0], "%s: trained on the generated task %s, not %s (option --task)", j->ckpt,
               task, s->task);
  }
  if (s->samples == LLONG_MIN)
    s->samples = 16;
  fpt_bit_task t;
  FPT_TRY(fpt_bit_task_make(&t, s->task, (int)bits, (int)patterns, (int)patch));
  j->data_seed = s->seed != LLONG_MIN ? (uint64_t)s->seed : (uint64_t)data_seed;
  return fpt_source_open_task(&j->src, &t, s->task, (uint64_t)seed, j->data_seed, s->samples);
}

static int build_model(att_job *j, const run_config *rc) {
  double seed, gain, fl[7];
  const char *keys[7] = {"freeze_in",   "freeze_out", "freeze_ln", "freeze_pos",
                         "freeze_attn", "freeze_ff",  "full_train"};
  for (int i = 0; i < 7; i++)
    FPT_TRY(config_num(rc, keys[i], &fl[i]));
  FPT_TRY(config_num(rc, "seed", &seed));
  FPT_TRY(config_num(rc, "orth_gain", &gain));
  char init[32];
  FPT_TRY(config_need(rc, "init", init, sizeof init));
  FPT_ENSURE(!strcmp(init, "pretrained") || !strcmp(init, "random") || !strcmp(init, "stats"),
             "%s: run configuration: init '%s' is not pretrained, random or stats", j->ckpt, init);
  fpt_freeze fr = {{(int)fl[0], (int)fl[1], (int)fl[2], (int)fl[3], (int)fl[4], (int)fl[5]},
                   (int)fl[6]};
  fpt_gpt2_config cfg;
  FPT_TRY(fpt_model_file_config(j->model, &cfg));
  fpt_task_shape shape = j->src.shape;
  FPT_ENSURE(shape.seq <= cfg.n_positions, "%s: the task %s has %d tokens but n_positions is %d",
             j->model, j->src.task, shape.seq, cfg.n_positions);
  FPT_TRY(fpt_model_create(&j->m, &cfg, &shape, &fr));
  j->m.dropout = 0.0f;
  FPT_TRY(init_backbone(&j->m, j->model, init, (uint64_t)seed));
  FPT_TRY(fpt_init_wrapper(&j->m, (uint64_t)seed, (float)gain));
  // Shapes of the task against the checkpoint's input and output layers.
  FPT_TRY(fpt_checkpoint_read_state(j->ckpt, &j->m, &j->st));
  char sum[17];
  FPT_TRY(fpt_file_checksum(j->model, sum));
  FPT_ENSURE(!strcmp(sum, j->st.model_checksum),
             "%s: made with backbone %s (checksum %s), but --model %s has checksum %s", j->ckpt,
             j->st.model_path, j->st.model_checksum, j->model, sum);
  FPT_TRY(fpt_checkpoint_load(j->ckpt, &j->m));
  FPT_TRY(parse_layers(j->s.layers, cfg.n_layer, j->layers, &j->n_layers));
  return 0;
}

static int setup(att_job *j, int argc, char **argv) {
  att_settings *s = &j->s;
  s->split = "test";
  s->samples = LLONG_MIN; // 16, or a smaller split's size
  s->seed = LLONG_MIN;
  FPT_TRY(fpt_opts_parse(argc, argv, 2, att_opts, n_att_opts, s));
  FPT_ENSURE(s->out, "option -o/--out: an output file is required");
  FPT_ENSURE(!s->checkpoint != !s->run_dir, "options --checkpoint and --run-dir: give exactly one");
  FPT_ENSURE(!s->task != !s->data, "options --task and --data: give exactly one");
  FPT_ENSURE(s->samples >= 1 || s->samples == LLONG_MIN,
             "option --samples: must be >= 1 (got %lld)", s->samples);
  FPT_ENSURE(s->samples <= INT_MAX / 2, "option --samples: %lld is too many", s->samples);
  j->split = !strcmp(s->split, "val")    ? FPT_SPLIT_VAL
             : !strcmp(s->split, "test") ? FPT_SPLIT_TEST
                                         : -1;
  FPT_ENSURE(j->split >= 0, "option --split: '%s' is not val or test", s->split);
  if (s->run_dir) {
    // A malformed tracker has set its own (first, so shown) message.
    FPT_ENSURE(fpt_checkpoint_latest(s->run_dir, j->ckpt, sizeof j->ckpt) == 0,
               "option --run-dir: %s has no complete checkpoint (%s/checkpoints/latest)",
               s->run_dir, s->run_dir);
  } else {
    snprintf(j->ckpt, sizeof j->ckpt, "%s", s->checkpoint);
  }
  static run_config rc;
  rc.path = j->ckpt;
  hid_t f;
  FPT_TRY(fpt_h5_open_read(j->ckpt, &f));
  int r = fpt_h5_read_attr_str(f, j->ckpt, "config", rc.config, sizeof rc.config);
  H5Fclose(f);
  FPT_TRY(r);
  static char model[4096];
  if (!s->model)
    FPT_TRY(config_need(&rc, "model", model, sizeof model));
  j->model = s->model ? s->model : model;
  FPT_TRY(open_source(j, &rc));
  return build_model(j, &rc);
}

// Index of the largest of n values (the first on ties, as the loss's accuracy).
static int32_t argmax(const float *v, int n) {
  int32_t best = 0;
  for (int i = 1; i < n; i++)
    if (v[i] > v[best])
      best = i;
  return best;
}

typedef struct {
  float *att, *x;
  int32_t *ids, *y, *pred;
  int64_t hits;
} att_result;

// The training forward computes only the r readout rows in the model's last
// block. Here every block runs on all T rows, so that each requested layer has
// a full T x T map: the readout is widened to all T positions (ln_f and the
// output layer act row by row, so the readout rows' logits are unchanged) and
// the predictions are taken from the task's r readout rows.
static int run_samples(att_job *j, att_result *res) {
  fpt_model *m = &j->m;
  int N = (int)j->s.samples, T = m->task.seq, NH = m->cfg.n_head, L = m->cfg.n_layer;
  int no = m->task.n_out, nc = m->task.n_cls, din = m->task.d_in;
  j->r = m->task.r;
  j->K = m->K;
  m->task.r = T;
  m->K = T * no / nc;
  size_t map = (size_t)NH * T * T;
  res->att = fpt_alloc_floats((size_t)N * j->n_layers * map);
  res->x = din > 0 ? fpt_alloc_floats((size_t)N * T * din) : NULL;
  res->ids = din > 0 ? NULL : fpt_calloc((size_t)N * T, sizeof(int32_t));
  res->y = fpt_calloc((size_t)N * j->K, sizeof(int32_t));
  res->pred = fpt_calloc((size_t)N * j->K, sizeof(int32_t));
  res->hits = 0;
  int chunk = N < 8 ? N : 8;
  fpt_acts a;
  fpt_acts_create(&a, m, chunk, 0, L, 1, 1);
  fpt_source_buf buf;
  fpt_source_buf_init(&buf, &j->src, chunk);
  int32_t *no_targets = fpt_calloc((size_t)chunk * m->K, sizeof(int32_t)); // loss unused
  fpt_pass pass = {0, 0, 0};
  int rc = 0;
  for (int i = 0; i < N && rc == 0; i += chunk) {
    int n = N - i < chunk ? N - i : chunk;
    rc = fpt_source_eval(&j->src, j->split, i, n, 1, 1, &buf);
    if (rc != 0)
      break;
    fpt_batch b = {n, buf.x, buf.ids, no_targets, buf.sample};
    int64_t unused;
    fpt_part_forward(m, &a, &b, &pass, NULL, 0.0f, &unused);
    if (din > 0)
      memcpy(res->x + (size_t)i * T * din, buf.x, sizeof(float) * n * T * din);
    else
      memcpy(res->ids + (size_t)i * T, buf.ids, sizeof(int32_t) * n * T);
    memcpy(res->y + (size_t)i * j->K, buf.y, sizeof(int32_t) * n * j->K);
    for (int bb = 0; bb < n; bb++) {
      const float *lg = a.logits + ((size_t)bb * T + T - j->r) * no;
      int32_t *pr = res->pred + (size_t)(i + bb) * j->K;
      for (int k = 0; k < j->K; k++) {
        pr[k] = argmax(lg + (size_t)k * nc, nc);
        res->hits += pr[k] == buf.y[(size_t)bb * j->K + k];
      }
      for (int li = 0; li < j->n_layers; li++) {
        // The kernel leaves keys after a query's own undefined: write zeros there.
        float *dst = res->att + ((size_t)(i + bb) * j->n_layers + li) * map;
        const float *src = a.blk[j->layers[li]].att + (size_t)bb * map;
        for (int qi = 0; qi < NH * T; qi++) {
          int t = qi % T;
          memcpy(dst + (size_t)qi * T, src + (size_t)qi * T, sizeof(float) * (t + 1));
          memset(dst + (size_t)qi * T + t + 1, 0, sizeof(float) * (T - t - 1));
        }
      }
    }
  }
  free(no_targets);
  fpt_source_buf_free(&buf);
  fpt_acts_free(&a);
  m->task.r = j->r;
  m->K = j->K;
  return rc;
}

static int write_attrs(const att_job *j, hid_t f, double accuracy) {
  const fpt_model *m = &j->m;
  char layers[8 * MAX_LAYERS] = "";
  for (int i = 0; i < j->n_layers; i++)
    snprintf(layers + strlen(layers), sizeof layers - strlen(layers), "%s%d", i ? "," : "",
             j->layers[i]);
  const char *sn[] = {"model", "model_checksum", "checkpoint", "task",
                      "data",  "split",          "layers",     "query_rows"};
  const char *sv[] = {j->model,
                      j->st.model_checksum,
                      j->ckpt,
                      j->src.task,
                      j->s.data ? j->s.data : "",
                      j->s.split,
                      layers,
                      "all: every block runs on all T rows (training computes only the r readout "
                      "rows in the last block; those rows are the same numbers)"};
  for (size_t i = 0; i < sizeof sn / sizeof *sn; i++)
    FPT_TRY(fpt_h5_write_attr_str(f, sn[i], sv[i]));
  const char *in[] = {"format_version", "step",      "samples", "n_layer",  "n_head", "seq",
                      "readout",        "n_classes", "K",       "data_seed"};
  int64_t iv[] = {ATT_FORMAT_VERSION,
                  j->st.step,
                  j->s.samples,
                  m->cfg.n_layer,
                  m->cfg.n_head,
                  m->task.seq,
                  j->r,
                  m->task.n_cls,
                  j->K,
                  j->src.from_file ? -1 : (int64_t)j->data_seed};
  for (size_t i = 0; i < sizeof iv / sizeof *iv; i++)
    FPT_TRY(fpt_h5_write_attr_i64(f, in[i], iv[i]));
  return fpt_h5_write_attr_f64(f, "accuracy", accuracy);
}

static int write_output(const att_job *j, const att_result *res) {
  const fpt_model *m = &j->m;
  int64_t N = j->s.samples, T = m->task.seq;
  int64_t da[5] = {N, j->n_layers, m->cfg.n_head, T, T}, dl[1] = {j->n_layers};
  int64_t dx[3] = {N, T, m->task.d_in}, dy[2] = {N, j->K};
  double acc = (double)res->hits / (double)(N * j->K);
  fpt_h5_out o;
  FPT_TRY(fpt_h5_out_create(&o, j->s.out));
  int rc = fpt_h5_write_floats(o.file, "/attention", 5, da, res->att);
  if (rc == 0)
    rc = fpt_h5_write_ints(o.file, "/layers", 1, dl, j->layers);
  if (rc == 0)
    rc = res->x ? fpt_h5_write_floats(o.file, "/inputs", 3, dx, res->x)
                : fpt_h5_write_ints(o.file, "/inputs", 2, dx, res->ids);
  if (rc == 0)
    rc = fpt_h5_write_ints(o.file, "/targets", 2, dy, res->y);
  if (rc == 0)
    rc = fpt_h5_write_ints(o.file, "/predictions", 2, dy, res->pred);
  if (rc == 0)
    rc = write_attrs(j, o.file, acc);
  if (rc != 0) {
    fpt_h5_out_abort(&o);
    return rc;
  }
  FPT_TRY(fpt_h5_out_commit(&o));
  printf("%s: %lld samples of %s (%s), layers %d..%d of %d, %d heads; accuracy %.4f\n", j->s.out,
         (long long)N, j->src.task, j->s.split, j->layers[0], j->layers[j->n_layers - 1],
         m->cfg.n_layer, m->cfg.n_head, acc);
  return 0;
}

static int run(fpt_runtime *rt, int argc, char **argv) {
  FPT_ENSURE(rt->size == 1,
             "fpt attention runs in one process (no mpirun, or mpirun -np 1), not %d ranks",
             rt->size);
  static att_job j;
  memset(&j, 0, sizeof j);
  int rc = setup(&j, argc, argv);
  att_result res = {0};
  if (rc == 0)
    rc = run_samples(&j, &res);
  if (rc == 0)
    rc = write_output(&j, &res);
  free(res.att);
  free(res.x);
  free(res.ids);
  free(res.y);
  free(res.pred);
  fpt_source_close(&j.src);
  fpt_model_free(&j.m);
  return rc;
}

int cmd_attention(int argc, char **argv) {
  if (argc > 2 && !strcmp(argv[2], "--help")) {
    fpt_opts_help("fpt attention (--checkpoint CKPT.h5 | --run-dir RUN) (--task T | --data D.h5) "
                  "[--model M.h5] [--split test] [--samples 16] [--layers 0,1] -o ATT.h5",
                  att_opts, n_att_opts);
    return 0;
  }
  fpt_runtime rt;
  fpt_runtime_init(&rt, &argc, &argv);
  int rc = run(&rt, argc, argv);
  return fpt_runtime_finish(&rt, fpt_runtime_agree(&rt, rc));
}
