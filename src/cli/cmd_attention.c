// fpt attention: the softmax attention maps of a trained FPT model on a few
// samples (the paper's §3.5 figure). The model is rebuilt as `fpt train` built
// it, from the run's description stored in the checkpoint (fpt/run.h): freeze
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
#include "fpt/run.h"
#include "fpt/tasks.h"
#include "runtime.h"

#define ATT_FORMAT_VERSION 1
#define MAX_LAYERS 1024

typedef struct {
  const char *model, *checkpoint, *run_dir, *task, *data, *split, *layers, *out;
  long long samples, seed;
} att_settings;

#define O(k, t, h) FPT_OPTION(att_settings, k, t, h)
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
  fpt_run_desc desc; // the run, as its checkpoint describes it
  fpt_source src;
  fpt_model m;
  int r, K; // the task's readout and targets (the model runs every row: see run_samples)
} att_job;

static int open_source(att_job *j) {
  att_settings *s = &j->s;
  const fpt_run_desc *d = &j->desc;
  if (s->data) {
    FPT_ENSURE(s->seed == LLONG_MIN,
               "option --seed: only for generated tasks (a dataset file gives its split in order)");
    FPT_TRY(
        fpt_source_open_file(&j->src, s->data, d->tokens, (uint64_t)d->seed, 0, MPI_COMM_WORLD));
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
  int64_t bits = 0, patterns = 0, patch = 0;
  if (!d->data[0]) {
    FPT_ENSURE(!strcmp(d->task_name, s->task),
               "%s: trained on the generated task %s, not %s (option --task)", j->ckpt,
               d->task_name, s->task);
    bits = d->bit_length;
    patterns = d->patterns;
    patch = d->patch;
  }
  if (s->samples == LLONG_MIN)
    s->samples = 16;
  j->data_seed = s->seed != LLONG_MIN ? (uint64_t)s->seed : (uint64_t)d->data_seed;
  return fpt_source_open_generated(&j->src, s->task, (int)bits, (int)patterns, (int)patch,
                                   (uint64_t)d->seed, j->data_seed, s->samples);
}

// The model as `fpt train --init` built it, but reading out every row (so
// that every layer runs on all T rows and has a full T x T map): the output
// layer acts row by row, so the task's r readout rows give the same numbers.
// Then the checkpoint's trainable tensors.
static int build_model(att_job *j) {
  fpt_run_desc d = j->desc;
  snprintf(d.model, sizeof d.model, "%s", j->model);
  FPT_TRY(fpt_run_desc_read_model(&d));
  FPT_ENSURE(fpt_backbone_find(d.cfg.kind)->attention,
             "%s: a %s backbone has no attention maps (fpt attention needs a transformer)",
             j->model, d.cfg.kind);
  fpt_task_shape shape = j->src.shape;
  FPT_ENSURE(shape.seq <= d.cfg.n_positions, "%s: the task %s has %d tokens but n_positions is %d",
             j->model, j->src.task, shape.seq, d.cfg.n_positions);
  j->r = shape.r;
  j->K = j->src.K;
  shape.r = shape.seq;
  shape.readout = FPT_READOUT_LAST;
  d.task = shape;
  d.dropout = 0.0;
  fpt_gpt2_flash_min_seq = INT_MAX; // the stored-map kernel: its maps are the output
  if (d.frozen_dtype == FPT_FROZEN_BF16 && !fpt_bf16_supported()) {
    printf("note: %s ran with --frozen-dtype bf16, but this CPU has no AVX512_BF16: the maps "
           "are computed with fp32 frozen matrices\n",
           j->ckpt);
    d.frozen_dtype = FPT_FROZEN_FP32;
  }
  FPT_TRY(fpt_model_build(&j->m, &d, NULL, NULL, 1));
  // Shapes of the task against the checkpoint's input and output layers.
  FPT_TRY(fpt_checkpoint_read_state(j->ckpt, &j->m, &j->st));
  char sum[17];
  FPT_TRY(fpt_file_checksum(j->model, sum));
  FPT_ENSURE(!strcmp(sum, j->desc.model_checksum),
             "%s: made with backbone %s (checksum %s), but --model %s has checksum %s", j->ckpt,
             j->desc.model, j->desc.model_checksum, j->model, sum);
  FPT_TRY(fpt_checkpoint_load(j->ckpt, &j->m));
  FPT_TRY(parse_layers(j->s.layers, d.cfg.n_layer, j->layers, &j->n_layers));
  return 0;
}

static int setup(att_job *j, int argc, char **argv) {
  att_settings *s = &j->s;
  s->split = "test";
  s->samples = LLONG_MIN; // 16, or a smaller split's size
  s->seed = LLONG_MIN;
  FPT_TRY(fpt_opts_parse(argc, argv, 2, att_opts, n_att_opts, s));
  const char *in[] = {s->checkpoint, s->model, s->data};
  FPT_TRY(fpt_check_out(s->out, in, 3));
  FPT_ENSURE(!s->checkpoint != !s->run_dir, "options --checkpoint and --run-dir: give exactly one");
  FPT_ENSURE(!s->task != !s->data, "options --task and --data: give exactly one");
  FPT_ENSURE(s->samples >= 1 || s->samples == LLONG_MIN,
             "option --samples: must be >= 1 (got %lld)", s->samples);
  FPT_ENSURE(s->samples <= INT_MAX / 2, "option --samples: %lld is too many", s->samples);
  j->split = !strcmp(s->split, "val") ? FPT_VAL : !strcmp(s->split, "test") ? FPT_TEST : -1;
  FPT_ENSURE(j->split >= 0, "option --split: '%s' is not val or test", s->split);
  if (s->run_dir) {
    // A malformed tracker has set its own (first, so shown) message.
    FPT_ENSURE(fpt_checkpoint_latest(s->run_dir, j->ckpt, sizeof j->ckpt) == 0,
               "option --run-dir: %s has no complete checkpoint (%s/checkpoints/latest)",
               s->run_dir, s->run_dir);
  } else {
    snprintf(j->ckpt, sizeof j->ckpt, "%s", s->checkpoint);
  }
  FPT_TRY(fpt_run_desc_read(j->ckpt, &j->desc));
  j->model = s->model ? s->model : j->desc.model;
  FPT_TRY(open_source(j));
  if (fpt_model_needs_lengths(&j->desc.cfg, &j->desc.task))
    fpt_source_want_lengths(&j->src);
  return build_model(j);
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
  const fpt_model *m = &j->m;
  int N = (int)j->s.samples, T = m->task.seq, NH = m->cfg.n_head, L = m->cfg.n_layer;
  int no = m->task.n_out, nc = m->task.n_cls, din = m->task.d_in;
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
    fpt_batch b = {n, buf.x, buf.ids, no_targets, buf.sample, buf.len};
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
        // The kernel leaves keys a query cannot see undefined: write zeros there.
        float *dst = res->att + ((size_t)(i + bb) * j->n_layers + li) * map;
        const float *src = m->bb->attention(a.layer[j->layers[li]]) + (size_t)bb * map;
        int len = buf.len ? buf.len[bb] : T;
        for (int qi = 0; qi < NH * T; qi++) {
          int t = qi % T, n = m->cfg.causal ? t + 1 : len;
          memcpy(dst + (size_t)qi * T, src + (size_t)qi * T, sizeof(float) * n);
          memset(dst + (size_t)qi * T + n, 0, sizeof(float) * (T - n));
        }
      }
    }
  }
  free(no_targets);
  fpt_source_buf_free(&buf);
  fpt_acts_free(&a);
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
                      j->desc.model_checksum,
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
