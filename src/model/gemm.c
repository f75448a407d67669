#include <cblas.h>
#include <omp.h>

#include "fpt/kernels.h"

int fpt_num_threads(void) { return omp_get_max_threads(); }

void fpt_gemm1(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
              K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// Splitting ourselves keeps OpenBLAS single-threaded, so its thread pool and
// ours never compete for the same cores.
void fpt_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
  int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (M <= 0 || N <= 0)
    return;
  if (nt <= 1 || (double)M * N * K < 2e6) {
    fpt_gemm1(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  int by_rows = M >= N;
  int len = by_rows ? M : N, align = by_rows ? 8 : 16;
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num(), n = omp_get_num_threads();
    int chunk = ((len + n - 1) / n + align - 1) / align * align;
    int s = t * chunk, e = s + chunk < len ? s + chunk : len;
    if (s < e) {
      if (by_rows)
        fpt_gemm1(ta, tb, e - s, N, K, alpha, ta ? A + s : A + (size_t)s * lda, lda, B, ldb, beta,
                  C + (size_t)s * ldc, ldc);
      else
        fpt_gemm1(ta, tb, M, e - s, K, alpha, A, lda, tb ? B + (size_t)s * ldb : B + s, ldb, beta,
                  C + s, ldc);
    }
  }
}

void fpt_gemm_ref(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = 0;
      for (int k = 0; k < K; k++) {
        double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
        double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
        s += a * b;
      }
      float *c = &C[(size_t)i * ldc + j];
      *c = (float)(alpha * s + (beta == 0.0f ? 0.0 : (double)beta * *c));
    }
}
