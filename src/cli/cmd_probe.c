// fpt probe: the paper's "output layer only" question (Table 10) answered
// exactly. The frozen model (input layer at its seeded init) runs once over
// the three splits on fpt train's grid; the readout features go to an HDF5
// cache; the ridge least-squares output layer is solved with ScaLAPACK over
// all ranks for each lambda; the best on the validation split is scored and
// written as a checkpoint (docs/PROBE.md).
#define _POSIX_C_SOURCE 200809L
#include <float.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/checkpoint.h"
#include "fpt/features.h"
#include "fpt/io.h"
#include "fpt/readout.h"
#include "fpt/ridge.h"
#include "fpt/tasks.h"
#include "train.h"

#define MAX_LAMBDAS 64
static const char *const default_lambdas = "1e-4,1e-3,0.01,0.1,1,10,100,1000,10000";

static double now(void) { return MPI_Wtime(); }

// The largest CPU time of any rank since c0 (on a shared machine, wall time
// measures the neighbours too).
static double cpu_since(double c0) {
  double c = fpt_cpu_seconds() - c0;
  MPI_Allreduce(MPI_IN_PLACE, &c, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return c;
}

static const char *lambda_opt(const train_settings *s) {
  return s->lambda ? "--lambda" : s->lambdas ? "--lambdas" : "--lambdas (default)";
}

static int parse_lambdas(const train_settings *s, double *l, int *n) {
  FPT_ENSURE(!(s->lambda && s->lambdas), "options --lambda and --lambdas: give one, not both");
  const char *opt = lambda_opt(s);
  const char *text = s->lambda ? s->lambda : s->lambdas ? s->lambdas : default_lambdas;
  char buf[2048];
  FPT_ENSURE(strlen(text) < sizeof buf, "option %s: longer than %zu characters", opt,
             sizeof buf - 1);
  snprintf(buf, sizeof buf, "%s", text);
  *n = 0;
  // Every comma separates two values: "1,,2" or "1," is a typo, not two values.
  for (char *tok = buf, *next; tok; tok = next) {
    next = strchr(tok, ',');
    if (next)
      *next++ = '\0';
    FPT_ENSURE(*tok, "option %s: an empty value in '%s'", opt, text);
    FPT_ENSURE(*n < MAX_LAMBDAS, "option %s: at most %d values", opt, MAX_LAMBDAS);
    char *end = NULL;
    double v = strtod(tok, &end);
    FPT_ENSURE(end != tok && *end == '\0', "option %s: '%s' is not a number", opt, tok);
    FPT_ENSURE(isfinite(v) && v > 0,
               "option %s: lambda = %s must be > 0 (lambda = 0 is plain least squares, which is "
               "singular here: ln_f features with a bias column are rank-deficient; "
               "docs/PROBE.md)",
               opt, tok);
    l[(*n)++] = v;
  }
  FPT_ENSURE(*n > 0, "option %s: no value in '%s'", opt, text);
  FPT_ENSURE(!s->lambda || *n == 1, "option --lambda: one value (use --lambdas for a sweep)");
  return 0;
}

// --- the feature pass -----------------------------------------------------

typedef struct {
  float *rows;
  int32_t *y;
  int64_t n, cap; // samples
  int rc;         // row width (r * C), K
  int K;
} collector;

static void collect(void *ctx, int64_t first, int n, const float *lnf, const int32_t *y) {
  (void)first; // a replica's samples arrive in order: its stripes of the split
  collector *c = ctx;
  if (c->n + n > c->cap)
    return; // cannot happen; the count check below reports it
  memcpy(c->rows + (size_t)c->n * c->rc, lnf, sizeof(float) * (size_t)n * c->rc);
  memcpy(c->y + (size_t)c->n * c->K, y, sizeof(int32_t) * (size_t)n * c->K);
  c->n += n;
}

static int feature_pass(const fpt_runtime *rt, fpt_grid *g, fpt_model *m, fpt_pipeline *pl,
                        const char *path, const fpt_features_meta *meta, double *seconds,
                        double *cpu) {
  double t0 = now(), c0 = fpt_cpu_seconds();
  fpt_features_file f;
  int rc = fpt_features_create(&f, path, meta, MPI_COMM_WORLD);
  if (fpt_runtime_agree(rt, rc) != 0)
    return 1;
  int r = m->task.r, C = m->cfg.n_embd, per = pl->B / g->R, last = g->stage == g->S - 1;
  for (int split = 0; split < 3 && rc == 0; split++) {
    int64_t N = meta->n[split];
    fpt_stripes smp = {(int64_t)g->replica * per, pl->B, last ? per : 0, N};
    fpt_stripes rows = {smp.first * r, smp.stride * r, smp.block * r, N * r};
    collector c = {0};
    c.cap = fpt_stripes_count(&smp);
    c.rc = r * C;
    c.K = m->K;
    c.rows = fpt_malloc(sizeof(float) * (size_t)(c.cap > 0 ? c.cap : 1) * c.rc);
    c.y = fpt_malloc(sizeof(int32_t) * (size_t)(c.cap > 0 ? c.cap : 1) * c.K);
    double loss, acc;
    rc = fpt_pipeline_forward_split(pl, split, collect, &c, &loss, &acc);
    if (rc == 0 && c.n != c.cap) {
      fpt_error_set("feature pass: /%s gave %lld samples on this rank, expected %lld",
                    fpt_split_names[split], (long long)c.n, (long long)c.cap);
      rc = 1;
    }
    if (fpt_runtime_agree(rt, rc) == 0)
      rc = fpt_features_write(&f, split, &rows, c.rows, &smp, c.y);
    else
      rc = 1;
    free(c.rows);
    free(c.y);
    if (fpt_runtime_agree(rt, rc) != 0)
      rc = 1;
    if (rc == 0 && g->rank == 0) {
      printf("features: /%s, %lld samples, %.1f s so far\n", fpt_split_names[split], (long long)N,
             now() - t0);
      fflush(stdout);
    }
  }
  if (rc != 0) {
    fpt_features_abort(&f);
    return 1;
  }
  rc = fpt_features_commit(&f);
  *seconds = now() - t0;
  *cpu = cpu_since(c0);
  return fpt_runtime_agree(rt, rc);
}

// --- scoring --------------------------------------------------------------

// This rank's contiguous share of a split's features and labels.
typedef struct {
  int64_t N, first, n;
  float *feat;
  int32_t *y;
} slice;

static int read_slice(fpt_features_file *f, int split, int64_t N, int r, int C, int K, slice *s) {
  int rank, P;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &P);
  s->N = N;
  s->first = N * rank / P;
  s->n = N * (rank + 1) / P - s->first;
  s->feat = fpt_malloc(sizeof(float) * (size_t)(s->n > 0 ? s->n : 1) * r * C);
  s->y = fpt_malloc(sizeof(int32_t) * (size_t)(s->n > 0 ? s->n : 1) * K);
  fpt_stripes rows = fpt_stripes_range(s->first * r, s->n * r, N * r);
  fpt_stripes cols = fpt_stripes_range(0, C, C), smp = fpt_stripes_range(s->first, s->n, N);
  FPT_TRY(fpt_features_read(f, split, &rows, &cols, s->feat));
  return fpt_features_read_labels(f, split, &smp, K, s->y);
}

typedef struct {
  double loss, acc, mse;
} scores;

// The float32 head (as the checkpoint holds it) on a split; same on every rank.
static scores score(const fpt_task_shape *t, int C, int K, const slice *s, const float *W,
                    const float *b) {
  fpt_readout_sums sum = {0, 0, 0};
  int chunk = 1024;
  float *logits = fpt_malloc(sizeof(float) * (size_t)chunk * t->r * t->n_out);
  for (int64_t i = 0; i < s->n; i += chunk) {
    int B = (int)(s->n - i < chunk ? s->n - i : chunk);
    fpt_readout_score(t, C, s->feat + (size_t)i * t->r * C, s->y + (size_t)i * K, B, W, b, logits,
                      &sum);
  }
  free(logits);
  double v[3] = {sum.loss, (double)sum.hits, sum.sqerr};
  MPI_Allreduce(MPI_IN_PLACE, v, 3, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  scores sc = {0, 0, 0};
  if (s->N > 0) {
    sc.loss = v[0] / ((double)s->N * K);
    sc.acc = v[1] / ((double)s->N * K);
    sc.mse = v[2] / ((double)s->N * t->r * t->n_out);
  }
  return sc;
}

static void to_head(const double *W, int C, int nout, float *Wf, float *bf) {
  for (int i = 0; i < C * nout; i++)
    Wf[i] = (float)W[i];
  for (int o = 0; o < nout; o++)
    bf[o] = (float)W[(size_t)C * nout + o];
}

typedef struct {
  const fpt_task_shape *t;
  const int32_t *y; // all training labels
  int K;
} targets;

static double target(void *ctx, int64_t row, int out) {
  const targets *tg = ctx;
  int64_t i = row / tg->t->r;
  return fpt_readout_onehot(tg->t, tg->y + (size_t)i * tg->K, (int)(row % tg->t->r), out);
}

// --- the command ----------------------------------------------------------

typedef struct {
  double lambda;
  int method;
  scores val;
  fpt_ridge_stats st;
  int singular; // skipped: singular to double precision at this lambda
} sweep_row;

static int write_solution(const char *dir, const double *W, const double *W2, int F, int nout,
                          const sweep_row *rows, int n, double lambda, const char *solver) {
  char path[4200];
  snprintf(path, sizeof path, "%s/probe.h5", dir);
  fpt_h5_out o;
  FPT_TRY(fpt_h5_out_create(&o, path));
  int64_t d[2] = {F, nout}, nl = 0;
  double *l = fpt_malloc(sizeof(double) * (size_t)n), *a = fpt_malloc(sizeof(double) * (size_t)n);
  for (int i = 0; i < n; i++)
    if (rows[i].method == rows[0].method) { // the primary solver's rows
      l[nl] = rows[i].lambda;
      a[nl++] = rows[i].singular ? NAN : rows[i].val.acc;
    }
  int rc = fpt_h5_write_doubles(o.file, "/W", 2, d, W);
  if (rc == 0 && W2)
    rc = fpt_h5_write_doubles(o.file, "/W_gels", 2, d, W2);
  if (rc == 0)
    rc = fpt_h5_write_doubles(o.file, "/lambdas", 1, &nl, l);
  if (rc == 0)
    rc = fpt_h5_write_doubles(o.file, "/val_accuracy", 1, &nl, a);
  if (rc == 0)
    rc = fpt_h5_write_attr_f64(o.file, "lambda", lambda);
  if (rc == 0)
    rc = fpt_h5_write_attr_str(o.file, "solver", solver);
  free(l);
  free(a);
  if (rc != 0) {
    fpt_h5_out_abort(&o);
    FPT_FAIL("%s: %s", path, fpt_error_get());
  }
  return fpt_h5_out_commit(&o);
}

static int solve_error(const train_settings *s, double lambda, int method, const fpt_ridge *R,
                       const fpt_ridge_stats *st, int n_lambdas) {
  char how[128];
  if (st->info > 0)
    snprintf(how, sizeof how, "PDPOSV: Cholesky pivot %d is not positive", st->info);
  else
    snprintf(how, sizeof how, "%s: reciprocal condition number %.1e < F * eps = %.1e",
             method == FPT_RIDGE_POSV ? "PDPOCON" : "PDTRCON", st->rcond, R->F * DBL_EPSILON);
  FPT_FAIL("option %s: %slambda = %g leaves the regularised system singular in double precision "
           "(%s): the features of %s are rank-deficient and lambda is too small to fix that; use "
           "a larger lambda",
           lambda_opt(s), n_lambdas > 1 ? "every value is too small; the last, " : "", lambda, how,
           s->data);
}

// One run's state: fpt_probe_run's arguments and what its steps hand on.
typedef struct {
  const train_settings *s;
  const fpt_runtime *rt;
  fpt_grid *g;
  fpt_model *m;
  fpt_source *src;
  fpt_pipeline *pl;
  fpt_ckpt_state *st;
  const fpt_run_desc *desc;
  const fpt_task_shape *t;
  int C, K, nout, r;
  double lams[MAX_LAMBDAS];
  int nl, both, method;
  int64_t N, M; // training samples, readout rows
  fpt_features_meta meta;
  char cache[4200];
  int usable;
  int64_t tokens;
  fpt_ridge R;
  slice sl[3];
  double *W, *W2, *Wbest, *Wbest2;
  float *Wf, *bf;
  sweep_row *sw;
  int nsw, best;
  double feature_s, feature_cpu, read_s, solve_s, solve_cpu, gram_cpu;
} probe;

static int check_args(probe *p) {
  const train_settings *s = p->s;
  int rc = parse_lambdas(s, p->lams, &p->nl);
  p->both = !strcmp(s->solver, "both");
  p->method = !strcmp(s->solver, "gels") ? FPT_RIDGE_GELS : FPT_RIDGE_POSV;
  if (rc == 0 && !p->both && strcmp(s->solver, "posv") && strcmp(s->solver, "gels")) {
    fpt_error_set("option --solver: '%s' is not posv, gels or both", s->solver);
    rc = 1;
  }
  int C = p->C, r = p->r;
  p->N = fpt_source_size(p->src, FPT_TRAIN);
  p->M = p->N * r;
  if (rc == 0 && p->M < C + 1) {
    fpt_error_set("%s: /train has %lld samples%s (%lld readout rows) but the output layer has "
                  "%d unknowns per output (n_embd %d + bias): more unknowns than equations, the "
                  "fit would only reflect lambda; use at least %d training samples",
                  s->data, (long long)p->N, s->train_limit ? " used (--train-limit)" : "",
                  (long long)p->M, C + 1, C, (C + r) / r);
    rc = 1;
  }
  return fpt_runtime_agree(p->rt, rc);
}

// The cache's identity: it is reused when it was made from the same backbone,
// data and input layer.
static void fill_meta(probe *p) {
  const train_settings *s = p->s;
  fpt_features_meta *meta = &p->meta;
  memcpy(meta->model_checksum, p->desc->model_checksum, sizeof meta->model_checksum);
  snprintf(meta->data_path, sizeof meta->data_path, "%s", s->data);
  snprintf(meta->task, sizeof meta->task, "%s", p->src->task);
  snprintf(meta->tokens, sizeof meta->tokens, "%s", s->tokens ? s->tokens : "x");
  snprintf(meta->init, sizeof meta->init, "%s", s->init);
  meta->seed = s->seed;
  meta->orth_gain = s->orth_gain;
  meta->n_embd = p->C;
  meta->r = p->r;
  meta->K = p->K;
  meta->n_out = p->nout;
  meta->n_cls = p->t->n_cls;
  for (int i = 0; i < 3; i++)
    meta->n[i] = fpt_source_size(p->src, i);
}

// Rank 0 alone reads the data file (its checksum) and the cache's identity;
// every rank learns the verdict.
static int check_cache(probe *p) {
  const train_settings *s = p->s;
  char why[4400] = "";
  if (s->cache)
    snprintf(p->cache, sizeof p->cache, "%s", s->cache);
  else
    snprintf(p->cache, sizeof p->cache, "%s/features.h5", s->run_dir);
  int rc = 0;
  double t0 = now();
  if (p->g->rank == 0) {
    rc = fpt_file_checksum(s->data, p->meta.data_checksum);
    if (rc == 0)
      fpt_features_check(p->cache, &p->meta, &p->usable, why, sizeof why);
    if (s->recompute && p->usable) {
      p->usable = 0;
      snprintf(why, sizeof why, "--recompute true");
    }
  }
  if (fpt_runtime_agree(p->rt, rc) != 0)
    return 1;
  MPI_Bcast(p->meta.data_checksum, sizeof p->meta.data_checksum, MPI_CHAR, 0, MPI_COMM_WORLD);
  MPI_Bcast(&p->usable, 1, MPI_INT, 0, MPI_COMM_WORLD);
  double checksum_s = now() - t0;
  if (p->g->rank == 0)
    printf("features: %s %s (%s; data checksum %.2f s)\n", p->usable ? "reusing" : "computing",
           p->cache, why, checksum_s);
  return 0;
}

static int compute_features(probe *p) {
  if (!p->usable && feature_pass(p->rt, p->g, p->m, p->pl, p->cache, &p->meta, &p->feature_s,
                                 &p->feature_cpu) != 0)
    return 1;
  const int64_t *n = p->meta.n;
  for (int i = 0; i < 3; i++)
    p->tokens += n[i] * p->t->seq;
  if (!p->usable && p->g->rank == 0)
    printf("features: %lld samples in %.2f s, %.2f CPU s per rank (%.0f samples/s, %.0f "
           "tokens/s)\n",
           (long long)(n[0] + n[1] + n[2]), p->feature_s, p->feature_cpu,
           (n[0] + n[1] + n[2]) / p->feature_s, p->tokens / p->feature_s);
  return 0;
}

static int open_cache(probe *p, fpt_features_file *fc) {
  fpt_features_meta have;
  int rc = fpt_features_open(fc, p->cache, &have, MPI_COMM_WORLD);
  if (fpt_runtime_agree(p->rt, rc) != 0) {
    fpt_features_close(fc);
    return 1;
  }
  return 0;
}

// The distributed system, read from the cache block-cyclically, and this
// rank's slices of the three splits for scoring; closes fc.
static int read_system(probe *p, fpt_features_file *fc) {
  int C = p->C, K = p->K, r = p->r;
  int rc = fpt_ridge_create(&p->R, MPI_COMM_WORLD, p->M, C, p->nout, (int)p->s->block_size);
  fpt_stripes rows, cols;
  fpt_ridge_local(&p->R, &rows, &cols);
  int64_t nr = fpt_stripes_count(&rows), ncl = fpt_stripes_count(&cols);
  float *feat = fpt_malloc(sizeof(float) * (size_t)(nr > 0 ? nr : 1) * (ncl > 0 ? ncl : 1));
  int32_t *yall = fpt_malloc(sizeof(int32_t) * (size_t)p->N * K);
  fpt_stripes all = fpt_stripes_range(0, p->N, p->N);
  if (rc == 0)
    rc = fpt_features_read(fc, FPT_TRAIN, &rows, &cols, feat);
  if (rc == 0)
    rc = fpt_features_read_labels(fc, FPT_TRAIN, &all, K, yall);
  for (int i = 0; i < 3 && rc == 0; i++)
    rc = read_slice(fc, i, p->meta.n[i], r, C, K, &p->sl[i]);
  fpt_features_close(fc);
  long long bad = 0;
  if (rc == 0) {
    targets tg = {p->t, yall, K};
    bad = fpt_ridge_fill(&p->R, feat, target, &tg);
  }
  free(feat);
  free(yall);
  MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
  if (rc == 0 && bad > 0) {
    fpt_error_set("%s: %lld training features are NaN or Inf: the backbone %s diverges on %s",
                  p->cache, bad, p->s->model, p->s->data);
    rc = 1;
  }
  return rc;
}

static void alloc_solutions(probe *p) {
  int F = p->R.F > 0 ? p->R.F : 1, nout = p->nout;
  p->W = fpt_malloc(sizeof(double) * F * nout);
  p->W2 = fpt_malloc(sizeof(double) * F * nout);
  p->Wbest = fpt_calloc((size_t)F * nout, sizeof(double));
  p->Wbest2 = p->both ? fpt_calloc((size_t)F * nout, sizeof(double)) : NULL;
  p->Wf = fpt_malloc(sizeof(float) * (size_t)p->C * nout);
  p->bf = fpt_malloc(sizeof(float) * nout);
  p->sw = fpt_calloc((size_t)p->nl * 2, sizeof(sweep_row));
  p->nsw = 0;
  p->best = -1;
}

// Solver k of lambda i (posv, then gels with --solver both). A singular row
// is kept too, so that sweep_lambda finds the primary row at nsw - 1 - both.
static int solve_row(probe *p, int i, int k) {
  int meth = p->both ? (k == 0 ? FPT_RIDGE_POSV : FPT_RIDGE_GELS) : p->method;
  int rank0 = p->g->rank == 0;
  double lam = p->lams[i];
  sweep_row *row = &p->sw[p->nsw];
  row->lambda = lam;
  row->method = meth;
  double *Wk = k == 0 ? p->W : p->W2;
  int rc = fpt_ridge_solve(&p->R, meth, lam, Wk, &row->st);
  MPI_Allreduce(MPI_IN_PLACE, &row->st.cpu_seconds, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  // One lambda: an error. In a sweep: reported, skipped; an error if all are.
  if (rc == FPT_RIDGE_SINGULAR && p->nl == 1)
    rc = solve_error(p->s, lam, meth, &p->R, &row->st, 1);
  if (rc == FPT_RIDGE_SINGULAR) {
    row->singular = 1;
    if (rank0 && row->st.info > 0)
      printf("%-10g %-6s singular in double precision (Cholesky pivot %d): skipped\n", lam, "posv",
             row->st.info);
    else if (rank0)
      printf("%-10g %-6s singular in double precision (rcond %.1e): skipped\n", lam,
             meth == FPT_RIDGE_POSV ? "posv" : "gels", row->st.rcond);
    p->nsw++;
    return 0;
  }
  if (rc != 0)
    return rc;
  to_head(Wk, p->C, p->nout, p->Wf, p->bf);
  row->val = score(p->t, p->C, p->K, &p->sl[FPT_VAL], p->Wf, p->bf);
  if (rank0)
    printf("%-10g %-6s %10.6f %10.6f %10.2e %9.4f %9.4f\n", lam,
           meth == FPT_RIDGE_POSV ? "posv" : "gels", row->val.acc, row->val.mse, row->st.rcond,
           row->st.seconds, row->st.cpu_seconds);
  p->nsw++;
  return 0;
}

static void print_solver_gap(const probe *p) {
  double dmax = 0, wmax = 0;
  for (int j = 0; j < p->R.F * p->nout; j++) {
    dmax = fmax(dmax, fabs(p->W[j] - p->W2[j]));
    wmax = fmax(wmax, fabs(p->W2[j]));
  }
  printf("%-10s posv vs gels: max |dW| / max |W| = %.2e\n", "", dmax / (wmax > 0 ? wmax : 1));
}

static int sweep_lambda(probe *p, int i) {
  int rc = 0, both = p->both;
  for (int k = 0; k < 1 + both && rc == 0; k++)
    rc = solve_row(p, i, k);
  if (rc != 0)
    return rc;
  sweep_row *sw = p->sw, *pr = &sw[p->nsw - 1 - both]; // the primary solver's row
  if (pr->singular)
    return 0;
  // Best validation accuracy; ties go to the larger lambda (the smoother fit).
  if (p->best < 0 || pr->val.acc > sw[p->best].val.acc ||
      (pr->val.acc == sw[p->best].val.acc && pr->lambda > sw[p->best].lambda)) {
    p->best = p->nsw - 1 - both;
    memcpy(p->Wbest, p->W, sizeof(double) * p->R.F * p->nout);
    if (both)
      memcpy(p->Wbest2, p->W2, sizeof(double) * p->R.F * p->nout);
  }
  if (both && !sw[p->nsw - 1].singular && p->g->rank == 0)
    print_solver_gap(p);
  return 0;
}

static int sweep(probe *p) {
  if (p->g->rank == 0) {
    printf("system: %lld rows x %d unknowns x %d outputs, %d x %d BLACS grid, %d x %d blocks; "
           "read in %.2f s\n",
           (long long)p->M, p->R.F, p->nout, p->R.nprow, p->R.npcol, p->R.nb, p->R.nb, p->read_s);
    printf("%-10s %-6s %10s %10s %10s %9s %9s\n", "lambda", "solver", "val acc", "val mse", "rcond",
           "solve s", "CPU s");
  }
  int rc = 0;
  for (int i = 0; i < p->nl && rc == 0; i++)
    rc = sweep_lambda(p, i);
  return rc;
}

static int write_metrics(const probe *p, const scores *sc) {
  const sweep_row *sw = p->sw, *b = &sw[p->best];
  fpt_metrics mt = {0};
  int rc = fpt_metrics_open(&mt, p->s->run_dir);
  for (int i = 0; i < p->nsw && rc == 0; i++) {
    if (sw[i].singular)
      continue;
    const char *nm[5] = {"lambda", "mse", "rcond", "solve_s", "sweep"};
    double v[5] = {sw[i].lambda, sw[i].val.mse, sw[i].st.rcond, sw[i].st.seconds,
                   sw[i].method == FPT_RIDGE_POSV ? 1 : 2};
    rc = fpt_metrics_write(&mt, 0, "val", sw[i].val.loss, sw[i].val.acc, 0, 5, nm, v);
  }
  for (int i = 0; i < 3 && rc == 0; i++) {
    printf("probe %-5s loss %.6f  accuracy %.6f  mse %.6f  (%lld samples)\n", fpt_split_names[i],
           sc[i].loss, sc[i].acc, sc[i].mse, (long long)p->meta.n[i]);
    const char *nm[9] = {"lambda", "mse",           "feature_s",  "gram_s",     "solve_s",
                         "final",  "feature_cpu_s", "gram_cpu_s", "solve_cpu_s"};
    double v[9] = {b->lambda, sc[i].mse,      p->feature_s, p->R.gram_s, p->solve_s,
                   1,         p->feature_cpu, p->gram_cpu,  p->solve_cpu};
    double tps = i == 0 && !p->usable && p->feature_s > 0 ? p->tokens / p->feature_s : 0;
    rc = fpt_metrics_write(&mt, 0, fpt_split_names[i], sc[i].loss, sc[i].acc, tps, 9, nm, v);
  }
  fpt_metrics_close(&mt);
  return rc;
}

// Rank 0's share of the report: the summary, metrics.jsonl and probe.h5.
static int write_report(const probe *p, const scores *sc) {
  const sweep_row *b = &p->sw[p->best];
  printf("chosen lambda %g (%s; best validation accuracy of %d)\n", b->lambda,
         b->method == FPT_RIDGE_POSV ? "posv" : "gels", p->nl);
  printf("time: features %.2f s%s, cache read %.2f s, X^T X %.3f s, solves %.3f s; CPU per "
         "rank: features %.2f s, X^T X %.3f s, solves %.3f s\n",
         p->feature_s, p->usable ? " (cached)" : "", p->read_s, p->R.gram_s, p->solve_s,
         p->feature_cpu, p->gram_cpu, p->solve_cpu);
  int rc = write_metrics(p, sc);
  if (rc == 0)
    rc = write_solution(p->s->run_dir, p->Wbest, p->Wbest2, p->R.F, p->nout, p->sw, p->nsw,
                        b->lambda, p->s->solver);
  return rc;
}

// The head into the model (last stage), then a step-0 checkpoint of the
// trainable tensors: the input layer and the output layer.
static int write_checkpoint(probe *p) {
  const train_settings *s = p->s;
  fpt_model *m = p->m;
  if (m->part.has_head) {
    memcpy(m->out_w.w, p->Wf, sizeof(float) * (size_t)p->C * p->nout);
    memcpy(m->out_b.w, p->bf, sizeof(float) * p->nout);
  }
  fpt_ckpt_state *st = p->st;
  st->step = st->adam_t = st->sample_offset = 0;
  int rc = fpt_checkpoint_write(s->run_dir, MPI_COMM_WORLD, m, p->g->replica == 0, st, p->desc, 1);
  if (rc == 0 && p->g->rank == 0)
    printf("checkpoint: %s/checkpoints/ckpt-000000000.h5 (fpt eval --checkpoint, fpt train "
           "--init-head-from); solution in double: %s/probe.h5\n",
           s->run_dir, s->run_dir);
  return fpt_runtime_agree(p->rt, rc);
}

// The chosen head: scores, metrics, the solution file, the checkpoint.
static int finish(probe *p) {
  sweep_row *b = &p->sw[p->best];
  to_head(p->Wbest, p->C, p->nout, p->Wf, p->bf);
  scores sc[3];
  for (int i = 0; i < 3; i++)
    sc[i] = i == FPT_VAL ? b->val : score(p->t, p->C, p->K, &p->sl[i], p->Wf, p->bf);
  p->gram_cpu = p->R.gram_cpu_s;
  for (int i = 0; i < p->nsw; i++) {
    p->solve_s += p->sw[i].st.seconds;
    p->solve_cpu += p->sw[i].st.cpu_seconds;
  }
  MPI_Allreduce(MPI_IN_PLACE, &p->gram_cpu, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  int rc = 0;
  if (p->g->rank == 0)
    rc = write_report(p, sc);
  if (fpt_runtime_agree(p->rt, rc) != 0)
    return 1;
  return write_checkpoint(p);
}

static void probe_free(probe *p) {
  for (int i = 0; i < 3; i++) {
    free(p->sl[i].feat);
    free(p->sl[i].y);
  }
  free(p->W);
  free(p->W2);
  free(p->Wbest);
  free(p->Wbest2);
  free(p->Wf);
  free(p->bf);
  free(p->sw);
  fpt_ridge_free(&p->R);
}

int fpt_probe_run(const train_settings *s, const fpt_runtime *rt, fpt_grid *g, fpt_model *m,
                  fpt_source *src, fpt_pipeline *pl, fpt_ckpt_state *st, const fpt_run_desc *desc) {
  probe p;
  memset(&p, 0, sizeof p);
  p.s = s;
  p.rt = rt;
  p.g = g;
  p.m = m;
  p.src = src;
  p.pl = pl;
  p.st = st;
  p.desc = desc;
  p.t = &m->task;
  p.C = m->cfg.n_embd;
  p.K = m->K;
  p.nout = p.t->n_out;
  p.r = p.t->r;
  if (check_args(&p) != 0)
    return 1;
  fill_meta(&p);
  if (check_cache(&p) != 0 || compute_features(&p) != 0)
    return 1;
  double t0 = now();
  fpt_features_file fc;
  if (open_cache(&p, &fc) != 0)
    return 1;
  int rc = read_system(&p, &fc);
  p.read_s = now() - t0;
  alloc_solutions(&p);
  // A read that failed on one rank fails every rank here, once.
  if (fpt_runtime_agree(rt, rc) != 0) {
    probe_free(&p);
    return 1;
  }
  rc = sweep(&p);
  if (rc == 0 && p.best < 0) { // every lambda of the sweep was singular
    const sweep_row *last = &p.sw[p.nsw - 1];
    rc = solve_error(s, last->lambda, last->method, &p.R, &last->st, p.nl);
  }
  if (fpt_runtime_agree(rt, rc) != 0)
    rc = 1;
  if (rc == 0)
    rc = finish(&p);
  probe_free(&p);
  return rc;
}
