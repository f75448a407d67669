// fpt bench: median time of FPT training steps (forward, backward, Adam) on a
// GPT-2-base-shaped random model at the CIFAR-10 shape, next to the raw
// cblas_sgemm rate on the same GEMM shapes, measured in the same process.
#include <cblas.h>
#include <limits.h>
#include <mpi.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "commands.h"
#include "cpu.h"
#include "fpt/batches.h"
#include "fpt/check.h"
#include "fpt/config.h"
#include "fpt/gemm_bf16.h"
#include "fpt/model.h"
#include "fpt/rng.h"
#include "fpt/run.h"
#include "runtime.h"

typedef struct {
  long long layers, d_model, heads, batch_size, seq, d_in, classes, steps, warmup, seed;
  long long full, eval_samples;
  double dropout;
  const char *data, *kind, *frozen_dtype, *attention;
} bench_settings;

#define O(k, t, h) FPT_OPTION(bench_settings, k, t, h)
#define R(k, t, lo, hi, h) FPT_OPTION_RANGE(bench_settings, k, t, lo, hi, h)
static const fpt_opt bench_opts[] = {
    R(layers, INT, 1, 4096, "blocks"),
    R(d_model, INT, 1, 1 << 16, "width"),
    R(heads, INT, 1, 4096, "heads"),
    R(batch_size, INT, 1, 1 << 20, "samples per step"),
    R(seq, INT, 1, 1 << 20, "tokens per sample"),
    R(d_in, INT, 1, 1 << 20, "input features per token"),
    R(classes, INT, 2, 1 << 20, "output classes"),
    R(steps, INT, 1, 1 << 20, "timed steps"),
    R(warmup, INT, 0, 1 << 20, "untimed steps first"),
    R(seed, INT, 0, 9007199254740991.0, "seed"),
    R(dropout, FLOAT, 0, 0.99, "dropout probability"),
    R(full, INT, 0, 1, "1: train every weight (full training), 0: the paper's FPT set"),
    R(eval_samples, INT, 0, 1 << 24,
      "also time evaluation (no dropout, no backward) of this many samples"),
    O(data, STR, "instead: time the parallel reader on this dataset file's train split"),
    O(kind, STR, "backbone: gpt2 (transformer) or lstm (the paper's LN-LSTM; --heads unused)"),
    O(frozen_dtype, STR, FPT_FROZEN_DTYPE_HELP),
    O(attention, STR,
      "gpt2: auto (fused from 1024 tokens, as fpt train), fused (never stores the "
      "T x T maps) or stored (keeps them)"),
};
#undef R
#undef O
static const int n_bench_opts = (int)(sizeof bench_opts / sizeof *bench_opts);

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// A GEMM of the step: C(M,N) = op(A) op(B) with inner dimension K.
typedef struct {
  const char *what;
  int ta, tb, M, N, K, count;
} gemm_shape;

// The big GEMMs one step performs (per block, forward and input-gradient).
// The LSTM's: every step's input projection at once, the recurrent one per
// step, the same for the input gradients, and (full training) two weight
// gradients per layer.
static int lstm_gemms(const fpt_model *m, int B, gemm_shape *g) {
  int T = m->task.seq, C = m->cfg.n_embd, L = m->cfg.n_layer, n = 0, BT = B * T;
  g[n++] = (gemm_shape){"i2h fwd NT", 0, 1, BT, 4 * C, C, L};
  g[n++] = (gemm_shape){"h2h fwd NT (per step)", 0, 1, B, 4 * C, C, L * T};
  g[n++] = (gemm_shape){"i2h dX NN", 0, 0, BT, C, 4 * C, L};
  g[n++] = (gemm_shape){"h2h dH NN (per step)", 0, 0, B, C, 4 * C, L * T};
  if (m->freeze.full)
    g[n++] = (gemm_shape){"i2h/h2h dW TN", 1, 0, 4 * C, C, BT, 2 * L};
  return n;
}

static int step_gemms(const fpt_model *m, int B, gemm_shape *g) {
  if (!strcmp(m->cfg.kind, "lstm"))
    return lstm_gemms(m, B, g);
  int T = m->task.seq, C = m->cfg.n_embd, L = m->cfg.n_layer, n = 0;
  int BT = B * T, full = L - 1;
  g[n++] = (gemm_shape){"qkv fwd NN", 0, 0, BT, 3 * C, C, L};
  g[n++] = (gemm_shape){"attn_proj fwd NN", 0, 0, BT, C, C, full};
  g[n++] = (gemm_shape){"mlp_fc fwd NN", 0, 0, BT, 4 * C, C, full};
  g[n++] = (gemm_shape){"mlp_proj fwd NN", 0, 0, BT, C, 4 * C, full};
  g[n++] = (gemm_shape){"qkv dX NT", 0, 1, BT, C, 3 * C, L};
  g[n++] = (gemm_shape){"attn_proj dX NT", 0, 1, BT, C, C, full};
  g[n++] = (gemm_shape){"mlp_fc dX NT", 0, 1, BT, C, 4 * C, full};
  g[n++] = (gemm_shape){"mlp_proj dX NT", 0, 1, BT, 4 * C, C, full};
  if (m->freeze.full) { // weight gradients: (in, out) = X^T . dY
    g[n++] = (gemm_shape){"qkv dW TN", 1, 0, C, 3 * C, BT, L};
    g[n++] = (gemm_shape){"attn_proj dW TN", 1, 0, C, C, BT, full};
    g[n++] = (gemm_shape){"mlp_fc dW TN", 1, 0, C, 4 * C, BT, full};
    g[n++] = (gemm_shape){"mlp_proj dW TN", 1, 0, 4 * C, C, BT, full};
  }
  return n;
}

static double gemm_flops(const gemm_shape *g) { return 2.0 * g->M * g->N * g->K * g->count; }

// Median of 7 runs of one GEMM shape: raw cblas_sgemm with OpenBLAS's own
// `threads`, or (ours != 0) fpt_gemm, which splits it over our threads.
static double sgemm_seconds(const gemm_shape *g, int threads, int ours, float *A, float *Bm,
                            float *Cm) {
  openblas_set_num_threads(ours ? 1 : threads);
  double t[7];
  int lda = g->ta ? g->M : g->K, ldb = g->tb ? g->K : g->N;
  for (int r = 0; r < 7; r++) {
    double t0 = now();
    if (ours)
      fpt_gemm(g->ta, g->tb, g->M, g->N, g->K, 1.0f, A, lda, Bm, ldb, 0.0f, Cm, g->N);
    else
      cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans,
                  g->tb ? CblasTrans : CblasNoTrans, g->M, g->N, g->K, 1.0f, A, lda, Bm, ldb, 0.0f,
                  Cm, g->N);
    t[r] = now() - t0;
  }
  openblas_set_num_threads(1);
  return median(t, 7);
}

// Matmul FLOPs of one step as computed (readout-only last block included).
static double step_flops(const fpt_model *m, int B) {
  if (!strcmp(m->cfg.kind, "lstm")) {
    gemm_shape g[8];
    int n = lstm_gemms(m, B, g);
    double f = 2.0 * B * m->task.seq * m->task.d_in * m->cfg.n_embd * 2;
    for (int i = 0; i < n; i++)
      f += gemm_flops(&g[i]);
    return f;
  }
  int T = m->task.seq, C = m->cfg.n_embd, L = m->cfg.n_layer, NH = m->cfg.n_head;
  int hs = C / NH;
  double f = 2.0 * B * T * m->task.d_in * C * 2; // input layer fwd + dW
  for (int l = 0; l < L; l++) {
    double BT = (double)B * T, BQ = (double)B * fpt_layer_rows(m, l);
    double fwd = 2 * BQ * C * C                         /* q */
                 + 2 * BT * C * 2 * C                   /* k, v */
                 + 2.0 * 2 * B * NH * (BQ / B) * T * hs /* QK^T, PV */
                 + 2 * BQ * C * C + 2 * BQ * C * 4 * C * 2;
    double bwd = 2 * BT * C * 3 * C + 2.0 * 4 * B * NH * (BQ / B) * T * hs + 2 * BQ * C * C +
                 2 * BQ * C * 4 * C * 2;
    double dw = m->freeze.full ? 2 * BT * C * 3 * C + 2 * BQ * C * C + 2 * BQ * C * 4 * C * 2 : 0;
    f += fwd + bwd + dw;
  }
  return f;
}

// Read throughput of the parallel reader: one epoch of shuffled global
// batches, each rank reading its share with one collective read per array.
static int bench_reader(const bench_settings *s, int rank, int R) {
  fpt_source src;
  FPT_TRY(fpt_source_open_file(&src, s->data, NULL, (uint64_t)s->seed, 0, MPI_COMM_WORLD));
  FPT_ENSURE(s->batch_size % R == 0, "option --batch-size: %lld is not divisible by %d ranks",
             s->batch_size, R);
  int B = (int)(s->batch_size / R);
  fpt_source_buf bb;
  fpt_source_buf_init(&bb, &src, B);
  int64_t n = src.rd.n[0], steps = n / s->batch_size;
  size_t row =
      (size_t)src.shape.seq * (src.shape.d_in ? (size_t)src.shape.d_in * 4 : 4) + (size_t)src.K * 4;
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = now();
  int rc = 0;
  for (int64_t k = 0; k < steps && rc == 0; k++)
    rc = fpt_source_train(&src, k * s->batch_size + (int64_t)rank * B, B, 1, 1, &bb);
  MPI_Barrier(MPI_COMM_WORLD);
  double sec = now() - t0;
  if (rank == 0 && rc == 0)
    printf("reader: %s, %d rank(s), global batch %lld: %lld samples in %.3f s = %.0f samples/s, "
           "%.1f MB/s\nread_samples_per_s=%.0f\n",
           s->data, R, s->batch_size, (long long)(steps * s->batch_size), sec,
           steps * s->batch_size / sec, steps * s->batch_size * row / sec * 1e-6,
           steps * s->batch_size / sec);
  fpt_source_buf_free(&bb);
  fpt_source_close(&src);
  return rc;
}

// Evaluation: forward passes without dropout over n samples in batches of
// b->B, median of 3 passes.
static double eval_seconds(const fpt_model *m, fpt_acts *a, const fpt_batch *b, int n) {
  double t[3];
  for (int r = 0; r < 3; r++) {
    double t0 = now();
    for (int i = 0; i < n; i += b->B) {
      fpt_batch e = *b;
      e.B = n - i < b->B ? n - i : b->B;
      fpt_pass p = {0, 0, 0};
      fpt_forward_backward(m, a, &e, &p, 0.0f, NULL);
    }
    t[r] = now() - t0;
  }
  return median(t, 3);
}

// A random model of the requested shape, built as fpt train builds one.
static int bench_model(const bench_settings *s, fpt_model *m, fpt_backbone_cfg *cfg) {
  fpt_run_desc d;
  fpt_run_desc_init(&d);
  fpt_backbone_cfg c = {"gpt2",
                        (int)s->layers,
                        (int)s->d_model,
                        (int)s->heads,
                        (int)(s->seq > 1024 ? s->seq : 1024),
                        1e-5f,
                        1,
                        FPT_ACT_GELU_NEW,
                        0};
  if (!strcmp(s->kind, "lstm")) {
    fpt_backbone_cfg lstm = {"lstm", (int)s->layers, (int)s->d_model, 0, 0, 1e-6f, 0, 0, 0};
    c = lstm;
  } else {
    FPT_ENSURE(!strcmp(s->kind, "gpt2"), "option --kind: '%s' is not gpt2 or lstm", s->kind);
  }
  fpt_task_shape shape = {(int)s->d_in,    0, (int)s->seq,     1, (int)s->classes,
                          (int)s->classes, 0, FPT_READOUT_LAST};
  d.cfg = *cfg = c;
  d.task = shape;
  d.init = FPT_INIT_RANDOM;
  d.seed = s->seed;
  d.dropout = s->dropout;
  d.freeze.full = (int)s->full;
  FPT_TRY(fpt_frozen_dtype_option(s->frozen_dtype, c.kind, &d.frozen_dtype));
  return fpt_model_build(m, &d, NULL, NULL, 1);
}

// The GEMMs of one step, each timed alone: raw cblas_sgemm and fpt_gemm;
// the step's rate against theirs and against the measured FMA peak.
static void gemm_report(const fpt_model *m, int B, double med, double flops, uint64_t seed) {
  gemm_shape g[16];
  int ng = step_gemms(m, B, g);
  size_t maxa = 0, maxb = 0, maxc = 0;
  for (int i = 0; i < ng; i++) {
    size_t ea = (size_t)g[i].M * g[i].K, eb = (size_t)g[i].K * g[i].N, ec = (size_t)g[i].M * g[i].N;
    maxa = ea > maxa ? ea : maxa;
    maxb = eb > maxb ? eb : maxb;
    maxc = ec > maxc ? ec : maxc;
  }
  fpt_stream st = {seed, FPT_SITE_DATA, 9, 0};
  float *A = fpt_alloc_floats(maxa), *Bm = fpt_alloc_floats(maxb), *Cm = fpt_alloc_floats(maxc);
  for (size_t i = 0; i < maxa; i++)
    A[i] = fpt_stream_uniform(st, i) - 0.5f;
  for (size_t i = 0; i < maxb; i++)
    Bm[i] = fpt_stream_uniform(st, i + maxa) - 0.5f;
  double gflops = 0, gsec = 0, osec = 0;
  int threads = fpt_num_threads();
  printf("GEMMs of the step: raw cblas_sgemm (%d OpenBLAS threads) | fpt_gemm (split over %d of "
         "ours)\n",
         threads, threads);
  for (int i = 0; i < ng; i++) {
    double sec = sgemm_seconds(&g[i], threads, 0, A, Bm, Cm);
    double our = sgemm_seconds(&g[i], threads, 1, A, Bm, Cm);
    double one = 2.0 * g[i].M * g[i].N * g[i].K;
    printf("  %-18s %5d x %5d x %5d  %6.1f | %6.1f GFLOP/s\n", g[i].what, g[i].M, g[i].N, g[i].K,
           one / sec * 1e-9, one / our * 1e-9);
    gflops += gemm_flops(&g[i]);
    gsec += sec * g[i].count;
    osec += our * g[i].count;
  }
  free(A);
  free(Bm);
  free(Cm);
  double sgemm_rate = gflops / gsec, step_rate = flops / med;
  printf("fpt_gemm rate (weighted by the step's GEMMs): %.1f GFLOP/s\n", gflops / osec * 1e-9);
  printf("sgemm rate (weighted by the step's GEMMs): %.1f GFLOP/s\n", sgemm_rate * 1e-9);
  printf("step rate / sgemm rate: %.3f\n", step_rate / sgemm_rate);
  const char *unit;
  double peak = fpt_cpu_fma_peak(threads, &unit) * 1e9;
  if (peak > 0)
    printf("FMA peak (%s, %d threads, measured): %.1f GFLOP/s; step %.3f of peak, sgemm %.3f of "
           "peak\n",
           unit, threads, peak * 1e-9, step_rate / peak, sgemm_rate / peak);
  else
    printf("FMA peak: n/a (no FMA unit)\n");
}

// Seeded inputs and labels of the benchmark batch.
typedef struct {
  float *x;
  int32_t *y;
  int64_t *ids;
} bench_batch;

static fpt_batch bench_inputs(const bench_settings *s, bench_batch *d) {
  int B = (int)s->batch_size, T = (int)s->seq;
  d->x = fpt_alloc_floats((size_t)B * T * s->d_in);
  d->y = fpt_calloc((size_t)B, sizeof(int32_t));
  d->ids = fpt_calloc((size_t)B, sizeof(int64_t));
  fpt_stream st = {(uint64_t)s->seed, FPT_SITE_DATA, 9, 0};
  for (size_t i = 0; i < (size_t)B * T * s->d_in; i++)
    d->x[i] = fpt_stream_uniform(st, i);
  for (int i = 0; i < B; i++) {
    d->y[i] = (int32_t)(fpt_stream_u32(st, (uint64_t)1 << 40 | (uint64_t)i) % s->classes);
    d->ids[i] = i;
  }
  fpt_batch b = {B, d->x, NULL, d->y, d->ids, NULL};
  return b;
}

// Warm-up plus timed training steps (forward, backward, clip, Adam): the
// seconds of each in times[]; returns the last loss.
static double time_steps(const bench_settings *s, fpt_model *m, fpt_acts *a, const fpt_batch *b,
                         double *times) {
  double loss = 0;
  int B = b->B;
  for (int i = 0; i < (int)(s->warmup + s->steps); i++) {
    fpt_pass p = {1, (uint64_t)s->seed, (uint32_t)i};
    double t0 = now();
    fpt_zero_grad(m);
    loss = fpt_forward_backward(m, a, b, &p, 1.0f / (B * m->K), NULL) / (B * m->K);
    fpt_clip_grad(m, 1.0);
    fpt_adam_step(m, 1e-3f);
    times[i] = now() - t0;
  }
  return loss;
}

// Which attention kernel the model's layers take (both are exact to float
// rounding; docs/PERFORMANCE.md compares them at 2000 tokens).
static int attention_kernel(const char *v) {
  if (!strcmp(v, "fused"))
    fpt_gpt2_flash_min_seq = 1;
  else if (!strcmp(v, "stored"))
    fpt_gpt2_flash_min_seq = INT_MAX;
  else
    FPT_ENSURE(!strcmp(v, "auto"), "option --attention: '%s' is not auto, fused or stored", v);
  return 0;
}

static int run(int argc, char **argv, int rank, int R) {
  bench_settings s = {12, 768, 12, 16,  64,   48,     10,     10,    2,
                      0,  0,   0,  0.1, NULL, "gpt2", "fp32", "auto"};
  FPT_TRY(fpt_opts_parse(argc, argv, 2, bench_opts, n_bench_opts, &s));
  FPT_TRY(attention_kernel(s.attention));
  if (s.data)
    return bench_reader(&s, rank, R);
  fpt_model m;
  fpt_backbone_cfg cfg;
  FPT_TRY(bench_model(&s, &m, &cfg));
  int B = (int)s.batch_size, T = (int)s.seq, nt = (int)(s.warmup + s.steps);
  bench_batch data;
  fpt_batch b = bench_inputs(&s, &data);
  fpt_acts a;
  fpt_acts_create(&a, &m, B, 0, cfg.n_layer, 1, 1);
  double *times = fpt_calloc((size_t)nt, sizeof(double));
  double loss = time_steps(&s, &m, &a, &b, times);
  double med = median(times + s.warmup, (int)s.steps);
  double flops = step_flops(&m, B);
  double ev = s.eval_samples > 0 ? eval_seconds(&m, &a, &b, (int)s.eval_samples) : 0;
  printf("fpt bench: %s, %lld layers x %lld wide, %lld heads; batch %d x %d tokens x %lld "
         "features; %lld classes; %s\n",
         s.kind, s.layers, s.d_model, s.heads, B, T, s.d_in, s.classes,
         s.full ? "full training" : "FPT (the paper's trainable set)");
  char cpu[512];
  fpt_cpu_summary(cpu, sizeof cpu);
  printf("%s\n", cpu);
  printf("frozen matrices: %s (%d packed copies, %.1f MB)\nfrozen_dtype=%s\nbf16_kernel=%s\n",
         fpt_frozen_dtype_names[m.frozen_dtype], m.n_bf16, m.bf16_bytes / 1048576.0,
         fpt_frozen_dtype_names[m.frozen_dtype], fpt_bf16_kernel_name());
  printf("threads %d (ours; OpenBLAS 1 per call), dropout %.2f, last loss %.4f\n",
         fpt_num_threads(), s.dropout, loss);
  printf("step: median %.1f ms over %lld steps (min %.1f, max %.1f)\n", med * 1e3, s.steps,
         times[s.warmup] * 1e3, times[nt - 1] * 1e3);
  printf("throughput: %.1f tokens/s, %.2f samples/s, %.1f GFLOP/s (%.1f GFLOP per step)\n",
         B * T / med, B / med, flops / med * 1e-9, flops * 1e-9);
  if (s.eval_samples > 0)
    printf(
        "eval: %lld samples in batches of %d: median %.1f ms (%.2f ms per sample)\neval_ms=%.3f\n",
        s.eval_samples, B, ev * 1e3, ev * 1e3 / s.eval_samples, ev * 1e3);
  gemm_report(&m, B, med, flops, (uint64_t)s.seed);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("attention=%s\npeak_rss_mb=%.1f\n", s.attention, ru.ru_maxrss / 1024.0);
  printf("median_ms_per_step=%.3f\n", med * 1e3);
  free(times);
  free(data.x);
  free(data.y);
  free(data.ids);
  fpt_acts_free(&a);
  fpt_model_free(&m);
  return 0;
}

int cmd_bench(int argc, char **argv) {
  if (argc > 2 && !strcmp(argv[2], "--help")) {
    fpt_opts_help("fpt bench [--key value ...]", bench_opts, n_bench_opts);
    return 0;
  }
  fpt_runtime rt;
  fpt_runtime_init(&rt, &argc, &argv);
  int rc = run(argc, argv, rt.rank, rt.size);
  return fpt_runtime_finish(&rt, fpt_runtime_agree(&rt, rc));
}
