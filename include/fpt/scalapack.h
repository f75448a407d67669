// ScaLAPACK, PBLAS and BLACS as Debian's libscalapack-openmpi exports them:
// it ships no C header. Fortran calling convention: every argument by
// reference, and a hidden length (size_t, after all other arguments) for
// each CHARACTER argument, which we pass explicitly (gfortran >= 8 may rely
// on it; leaving it out is the classic cause of stack corruption).
#ifndef FPT_SCALAPACK_H
#define FPT_SCALAPACK_H

#include <mpi.h>
#include <stddef.h>

// BLACS (C interface).
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);
void Cblacs_gridinit(int *ctxt, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int ctxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int ctxt);

// Tools.
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc, const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb,
               const int *irsrc, const int *icsrc, const int *ictxt, const int *lld, int *info);

// PBLAS.
void pdsyrk_(const char *uplo, const char *trans, const int *n, const int *k, const double *alpha,
             const double *a, const int *ia, const int *ja, const int *desca, const double *beta,
             double *c, const int *ic, const int *jc, const int *descc, size_t l_uplo,
             size_t l_trans);
void pdgemm_(const char *transa, const char *transb, const int *m, const int *n, const int *k,
             const double *alpha, const double *a, const int *ia, const int *ja, const int *desca,
             const double *b, const int *ib, const int *jb, const int *descb, const double *beta,
             double *c, const int *ic, const int *jc, const int *descc, size_t l_ta, size_t l_tb);

// ScaLAPACK.
void pdgels_(const char *trans, const int *m, const int *n, const int *nrhs, double *a,
             const int *ia, const int *ja, const int *desca, double *b, const int *ib,
             const int *jb, const int *descb, double *work, const int *lwork, int *info,
             size_t l_trans);
void pdposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *ia,
             const int *ja, const int *desca, double *b, const int *ib, const int *jb,
             const int *descb, int *info, size_t l_uplo);
double pdlansy_(const char *norm, const char *uplo, const int *n, const double *a, const int *ia,
                const int *ja, const int *desca, double *work, size_t l_norm, size_t l_uplo);
void pdpocon_(const char *uplo, const int *n, const double *a, const int *ia, const int *ja,
              const int *desca, const double *anorm, double *rcond, double *work, const int *lwork,
              int *iwork, const int *liwork, int *info, size_t l_uplo);
void pdtrcon_(const char *norm, const char *uplo, const char *diag, const int *n, const double *a,
              const int *ia, const int *ja, const int *desca, double *rcond, double *work,
              const int *lwork, int *iwork, const int *liwork, int *info, size_t l_norm,
              size_t l_uplo, size_t l_diag);

#endif
