// The exact ridge least-squares output layer over frozen features, solved
// with ScaLAPACK in double precision on a BLACS grid of every rank of comm.
//
// Unknowns W: F = C + 1 rows (C feature weights, then the bias) by n_out.
// Rows: M = N * r readout rows x_i (C features each) with targets y_i:
//     minimise  sum_i || [x_i 1] W - y_i ||^2 + lambda || W[0:C] ||^2
// (the bias is not penalised). Two solvers:
//   FPT_RIDGE_POSV  normal equations (X1^T X1 + lambda D) W = X1^T Y by
//                   Cholesky (PDPOSV); X1^T X1 and X1^T Y are formed once
//                   (PDSYRK, PDGEMM), so each further lambda costs O(F^3).
//   FPT_RIDGE_GELS  QR least squares (PDGELS) on the augmented system
//                   [X 1; sqrt(lambda) I 0] W = [Y; 0], per lambda O(M F^2).
// Both estimate the reciprocal condition number of the regularised normal
// matrix (PDPOCON on its Cholesky factor; PDTRCON on R, squared).
#ifndef FPT_RIDGE_H
#define FPT_RIDGE_H

#include <mpi.h>
#include <stdint.h>

#include "fpt/features.h"

enum { FPT_RIDGE_POSV = 1, FPT_RIDGE_GELS = 2 };
#define FPT_RIDGE_SINGULAR 2 // return code: the regularised system is singular in double

typedef struct {
  MPI_Comm comm;
  int live; // the BLACS grid exists
  int handle, ctxt, nprow, npcol, myrow, mycol, nb;
  int M, C, F, nout;
  int xr, xc, yc; // local rows of X and Y; local columns of [X 1] and of Y
  double *X, *Y;  // local pieces, column-major, leading dimension max(1, xr)
  int descX[9], descY[9];
  // Normal equations (POSV), formed on first use.
  int have_gram;
  int gr, gc, bc; // local rows/cols of G (F x F), local cols of X1^T Y (F x nout)
  double *G, *XtY;
  int descG[9], descB[9];
  double gram_s, gram_cpu_s; // seconds spent forming them (wall; this process's CPU)
} fpt_ridge;

// CPU seconds of this process (all its threads).
double fpt_cpu_seconds(void);

// Collective. A grid of P = nprow x npcol ranks, as square as P allows with
// nprow >= npcol (the matrix is tall); nb x nb blocks.
int fpt_ridge_create(fpt_ridge *R, MPI_Comm comm, int64_t M, int C, int nout, int nb);
void fpt_ridge_free(fpt_ridge *R);
// The rows of [0, M) and feature columns of [0, C) this rank holds.
void fpt_ridge_local(const fpt_ridge *R, fpt_stripes *rows, fpt_stripes *cols);
// Fill the local piece: feat holds the local rows x local feature columns
// (row-major, as fpt_features_read returns them); target(ctx, row, out)
// gives Y's entries. The bias column is set here. Returns the number of
// non-finite features found (on this rank).
int64_t fpt_ridge_fill(fpt_ridge *R, const float *feat,
                       double (*target)(void *ctx, int64_t row, int out), void *ctx);

typedef struct {
  int info;                    // ScaLAPACK's INFO (> 0: Cholesky found a non-positive pivot)
  double rcond;                // reciprocal condition number of X1^T X1 + lambda D (estimate)
  double seconds, cpu_seconds; // wall; this process's CPU (robust on a shared machine)
} fpt_ridge_stats;

// Collective: solve for one lambda > 0. W (F x nout, row-major) is the same
// on every rank. Returns FPT_RIDGE_SINGULAR when the regularised system is
// singular to double precision (rcond < F * eps, or Cholesky fails); the
// caller reports it.
int fpt_ridge_solve(fpt_ridge *R, int method, double lambda, double *W, fpt_ridge_stats *st);

#endif
