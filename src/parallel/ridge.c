// The distributed ridge solve (fpt/ridge.h): block-cyclic matrices on a
// BLACS grid, PBLAS for the normal equations, ScaLAPACK for the solves.
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fpt/check.h"
#include "fpt/ridge.h"
#include "fpt/scalapack.h"

static const int one_i = 1, zero_i = 0;

double fpt_cpu_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int numroc(int n, int nb, int p, int np) { return numroc_(&n, &nb, &p, &zero_i, &np); }

// Global index of local index l on process p of np (blocks of nb, source 0).
static int64_t l2g(int64_t l, int nb, int p, int np) { return ((l / nb) * np + p) * nb + l % nb; }

static int desc(int *d, int m, int n, const fpt_ridge *R, int lld) {
  int info = 0, ld = lld > 1 ? lld : 1;
  descinit_(d, &m, &n, &R->nb, &R->nb, &zero_i, &zero_i, &R->ctxt, &ld, &info);
  FPT_ENSURE(info == 0, "ridge: descinit failed for a %d x %d matrix (info %d)", m, n, info);
  return 0;
}

int fpt_ridge_create(fpt_ridge *R, MPI_Comm comm, int64_t M, int C, int nout, int nb) {
  memset(R, 0, sizeof *R);
  FPT_ENSURE(M + C < 2147483647LL, "ridge: %lld rows exceed ScaLAPACK's 32-bit indices",
             (long long)M);
  int P;
  MPI_Comm_size(comm, &P);
  int pc = 1;
  for (int d = 1; d * d <= P; d++)
    if (P % d == 0)
      pc = d;
  R->comm = comm;
  R->nb = nb;
  R->M = (int)M;
  R->C = C;
  R->F = C + 1;
  R->nout = nout;
  R->handle = Csys2blacs_handle(comm);
  R->ctxt = R->handle;
  Cblacs_gridinit(&R->ctxt, "Row", P / pc, pc);
  R->live = 1;
  Cblacs_gridinfo(R->ctxt, &R->nprow, &R->npcol, &R->myrow, &R->mycol);
  FPT_ENSURE(R->nprow == P / pc && R->npcol == pc, "ridge: BLACS grid %d x %d not created", P / pc,
             pc);
  R->xr = numroc(R->M, nb, R->myrow, R->nprow);
  R->xc = numroc(R->F, nb, R->mycol, R->npcol);
  R->yc = numroc(nout, nb, R->mycol, R->npcol);
  FPT_TRY(desc(R->descX, R->M, R->F, R, R->xr));
  FPT_TRY(desc(R->descY, R->M, nout, R, R->xr));
  R->X =
      fpt_calloc((size_t)(R->xr > 0 ? R->xr : 1) * (size_t)(R->xc > 0 ? R->xc : 1), sizeof(double));
  R->Y =
      fpt_calloc((size_t)(R->xr > 0 ? R->xr : 1) * (size_t)(R->yc > 0 ? R->yc : 1), sizeof(double));
  return 0;
}

void fpt_ridge_free(fpt_ridge *R) {
  free(R->X);
  free(R->Y);
  free(R->G);
  free(R->XtY);
  if (R->live) {
    Cblacs_gridexit(R->ctxt);
    Cfree_blacs_system_handle(R->handle);
  }
  memset(R, 0, sizeof *R);
}

void fpt_ridge_local(const fpt_ridge *R, fpt_stripes *rows, fpt_stripes *cols) {
  *rows = (fpt_stripes){(int64_t)R->myrow * R->nb, (int64_t)R->nprow * R->nb, R->nb, R->M};
  *cols = (fpt_stripes){(int64_t)R->mycol * R->nb, (int64_t)R->npcol * R->nb, R->nb, R->C};
}

int64_t fpt_ridge_fill(fpt_ridge *R, const float *feat,
                       double (*target)(void *ctx, int64_t row, int out), void *ctx) {
  fpt_stripes rows, cols;
  fpt_ridge_local(R, &rows, &cols);
  int fc = (int)fpt_stripes_count(&cols); // feature columns; the bias, if mine, comes last
  size_t ld = (size_t)(R->xr > 0 ? R->xr : 1);
  int64_t bad = 0;
  for (int li = 0; li < R->xr; li++) {
    for (int lj = 0; lj < fc; lj++) {
      float v = feat[(size_t)li * fc + lj];
      bad += !isfinite(v);
      R->X[lj * ld + li] = v;
    }
    if (R->xc > fc)
      R->X[fc * ld + li] = 1.0;
    int64_t g = l2g(li, R->nb, R->myrow, R->nprow);
    for (int lj = 0; lj < R->yc; lj++)
      R->Y[lj * ld + li] = target(ctx, g, (int)l2g(lj, R->nb, R->mycol, R->npcol));
  }
  return bad;
}

// X1^T X1 (upper triangle) and X1^T Y, once.
static int gram(fpt_ridge *R) {
  if (R->have_gram)
    return 0;
  double t0 = MPI_Wtime(), c0 = fpt_cpu_seconds();
  R->gr = numroc(R->F, R->nb, R->myrow, R->nprow);
  R->gc = numroc(R->F, R->nb, R->mycol, R->npcol);
  R->bc = R->yc;
  FPT_TRY(desc(R->descG, R->F, R->F, R, R->gr));
  FPT_TRY(desc(R->descB, R->F, R->nout, R, R->gr));
  size_t gr = (size_t)(R->gr > 0 ? R->gr : 1);
  R->G = fpt_calloc(gr * (size_t)(R->gc > 0 ? R->gc : 1), sizeof(double));
  R->XtY = fpt_calloc(gr * (size_t)(R->bc > 0 ? R->bc : 1), sizeof(double));
  const double one = 1.0, zero = 0.0;
  pdsyrk_("U", "T", &R->F, &R->M, &one, R->X, &one_i, &one_i, R->descX, &zero, R->G, &one_i, &one_i,
          R->descG, 1, 1);
  pdgemm_("T", "N", &R->F, &R->nout, &R->M, &one, R->X, &one_i, &one_i, R->descX, R->Y, &one_i,
          &one_i, R->descY, &zero, R->XtY, &one_i, &one_i, R->descB, 1, 1);
  R->have_gram = 1;
  R->gram_s = MPI_Wtime() - t0;
  R->gram_cpu_s = fpt_cpu_seconds() - c0;
  return 0;
}

// Rows [0, F) of a distributed F' x nout matrix (local rows lr, ld) into W on every rank.
static void gather_solution(const fpt_ridge *R, const double *B, int lr, int ld, double *W) {
  memset(W, 0, sizeof(double) * R->F * R->nout);
  for (int li = 0; li < lr; li++) {
    int64_t g = l2g(li, R->nb, R->myrow, R->nprow);
    if (g >= R->F)
      break;
    for (int lj = 0; lj < R->yc; lj++)
      W[g * R->nout + l2g(lj, R->nb, R->mycol, R->npcol)] = B[(size_t)lj * ld + li];
  }
  MPI_Allreduce(MPI_IN_PLACE, W, R->F * R->nout, MPI_DOUBLE, MPI_SUM, R->comm);
}

// Add v to the diagonal entries [0, n) of a distributed matrix (local ld).
static void add_diag(const fpt_ridge *R, double *A, int ld, int lr, int64_t row0, int n, double v) {
  for (int li = 0; li < lr; li++) {
    int64_t g = l2g(li, R->nb, R->myrow, R->nprow) - row0;
    if (g < 0 || g >= n || (int)((g / R->nb) % R->npcol) != R->mycol)
      continue;
    int64_t lj = (g / ((int64_t)R->nb * R->npcol)) * R->nb + g % R->nb;
    A[(size_t)lj * ld + li] += v;
  }
}

static int solve_posv(fpt_ridge *R, double lambda, double *W, fpt_ridge_stats *st) {
  FPT_TRY(gram(R));
  double t0 = MPI_Wtime(), c0 = fpt_cpu_seconds();
  int gr = R->gr > 0 ? R->gr : 1;
  size_t na = (size_t)gr * (R->gc > 0 ? R->gc : 1), nb = (size_t)gr * (R->bc > 0 ? R->bc : 1);
  double *A = fpt_malloc(na * sizeof(double)), *B = fpt_malloc(nb * sizeof(double));
  memcpy(A, R->G, na * sizeof(double));
  memcpy(B, R->XtY, nb * sizeof(double));
  add_diag(R, A, gr, R->gr, 0, R->C, lambda);
  // 1-norm of the symmetric matrix (for the condition estimate), generous workspace.
  size_t lw = 4 * (size_t)(R->gr + R->gc + 2 * R->nb) + 64;
  double *work = fpt_malloc(lw * sizeof(double));
  double anorm = pdlansy_("1", "U", &R->F, A, &one_i, &one_i, R->descG, work, 1, 1);
  free(work);
  int info = 0;
  pdposv_("U", &R->F, &R->nout, A, &one_i, &one_i, R->descG, B, &one_i, &one_i, R->descB, &info, 1);
  st->info = info;
  st->rcond = 0.0;
  int rc = 0;
  if (info < 0) {
    fpt_error_set("ridge: PDPOSV rejected argument %d", -info);
    rc = 1;
  } else if (info == 0) {
    double q;
    int iq, lwork = -1, liwork = -1, qi = 0;
    pdpocon_("U", &R->F, A, &one_i, &one_i, R->descG, &anorm, &st->rcond, &q, &lwork, &iq, &liwork,
             &qi, 1);
    lwork = (int)q + 1;
    liwork = iq > 1 ? iq : 1;
    double *wk = fpt_malloc((size_t)lwork * sizeof(double));
    int *iwk = fpt_malloc((size_t)liwork * sizeof(int));
    pdpocon_("U", &R->F, A, &one_i, &one_i, R->descG, &anorm, &st->rcond, wk, &lwork, iwk, &liwork,
             &qi, 1);
    free(wk);
    free(iwk);
    gather_solution(R, B, R->gr, gr, W);
  }
  free(A);
  free(B);
  st->seconds = MPI_Wtime() - t0;
  st->cpu_seconds = fpt_cpu_seconds() - c0;
  return rc;
}

static int solve_gels(fpt_ridge *R, double lambda, double *W, fpt_ridge_stats *st) {
  double t0 = MPI_Wtime(), c0 = fpt_cpu_seconds();
  int Ma = R->M + R->C;
  int ar = numroc(Ma, R->nb, R->myrow, R->nprow), ld = ar > 0 ? ar : 1;
  int descA[9], descBa[9];
  FPT_TRY(desc(descA, Ma, R->F, R, ar));
  FPT_TRY(desc(descBa, Ma, R->nout, R, ar));
  double *A = fpt_calloc((size_t)ld * (R->xc > 0 ? R->xc : 1), sizeof(double));
  double *B = fpt_calloc((size_t)ld * (R->yc > 0 ? R->yc : 1), sizeof(double));
  // Rows [0, M) have the same local positions in both layouts: copy X and Y.
  size_t ldx = (size_t)(R->xr > 0 ? R->xr : 1);
  for (int lj = 0; lj < R->xc; lj++)
    memcpy(A + (size_t)lj * ld, R->X + lj * ldx, sizeof(double) * R->xr);
  for (int lj = 0; lj < R->yc; lj++)
    memcpy(B + (size_t)lj * ld, R->Y + lj * ldx, sizeof(double) * R->xr);
  add_diag(R, A, ld, ar, R->M, R->C, sqrt(lambda)); // rows M + k: sqrt(lambda) e_k
  double q;
  int lwork = -1, info = 0;
  pdgels_("N", &Ma, &R->F, &R->nout, A, &one_i, &one_i, descA, B, &one_i, &one_i, descBa, &q,
          &lwork, &info, 1);
  lwork = (int)q + 1;
  double *work = fpt_malloc((size_t)lwork * sizeof(double));
  pdgels_("N", &Ma, &R->F, &R->nout, A, &one_i, &one_i, descA, B, &one_i, &one_i, descBa, work,
          &lwork, &info, 1);
  free(work);
  st->info = info;
  st->rcond = 0.0;
  int rc = 0;
  if (info != 0) {
    fpt_error_set("ridge: PDGELS failed (info %d)", info);
    rc = 1;
  } else {
    // R (upper triangle of the top F x F block): X1^T X1 + lambda D = R^T R.
    int iq, liwork = -1, qi = 0;
    double rc_r = 0.0;
    lwork = -1;
    pdtrcon_("1", "U", "N", &R->F, A, &one_i, &one_i, descA, &rc_r, &q, &lwork, &iq, &liwork, &qi,
             1, 1, 1);
    lwork = (int)q + 1;
    liwork = iq > 1 ? iq : 1;
    double *wk = fpt_malloc((size_t)lwork * sizeof(double));
    int *iwk = fpt_malloc((size_t)liwork * sizeof(int));
    pdtrcon_("1", "U", "N", &R->F, A, &one_i, &one_i, descA, &rc_r, wk, &lwork, iwk, &liwork, &qi,
             1, 1, 1);
    free(wk);
    free(iwk);
    st->rcond = rc_r * rc_r;
    gather_solution(R, B, ar, ld, W);
  }
  free(A);
  free(B);
  st->seconds = MPI_Wtime() - t0;
  st->cpu_seconds = fpt_cpu_seconds() - c0;
  return rc;
}

int fpt_ridge_solve(fpt_ridge *R, int method, double lambda, double *W, fpt_ridge_stats *st) {
  memset(st, 0, sizeof *st);
  FPT_ENSURE(lambda > 0 && isfinite(lambda), "ridge: lambda must be positive and finite");
  FPT_TRY(method == FPT_RIDGE_POSV ? solve_posv(R, lambda, W, st) : solve_gels(R, lambda, W, st));
  if (st->info > 0 || !(st->rcond >= R->F * DBL_EPSILON))
    return FPT_RIDGE_SINGULAR;
  for (size_t i = 0; i < (size_t)R->F * R->nout; i++)
    if (!isfinite(W[i]))
      return FPT_RIDGE_SINGULAR;
  return 0;
}
