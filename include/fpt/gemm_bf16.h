// bf16 GEMMs for frozen weights (issue 14 §5): a frozen matrix W is rounded
// to bf16 once and packed; activations stay fp32 and are rounded to bf16 per
// block inside the kernel; products accumulate in fp32 (AVX512_BF16
// vdpbf16ps, or AMX tiles where the CPU has them). Only for CPUs with AVX512_BF16: fpt_bf16_pack
// refuses elsewhere, so a matrix exists only where the kernels run (no slow fallback).
//
// Numerics: each product is exact in fp32 (8-bit x 8-bit significands); the
// only differences from a double-precision GEMM of the bf16-ROUNDED inputs are
// fp32 accumulation rounding (|err| <= about K * 2^-24 * sum_k |a_k w_k|).
// Against fp32 inputs, each product carries the two roundings, relative error
// <= 2^-8 + 2^-18, so |C_bf16 - C_fp32| <= about 2^-8 * sum_k |a_k w_k|
// (typically far less: the roundings are unbiased and partly cancel).
// Rounding is round-to-nearest-even with the semantics of vcvtne2ps2bf16
// (fpt_bf16_from_float). Inputs that are fp32 denormals count as (signed)
// zero, NaN stays NaN, and +-Inf stays +-Inf. Finite values that round above
// the bf16 maximum become Inf.
//
// The kernels split their work over the OpenMP threads (rows of C, or panels of
// columns when there are few rows), or run on the calling thread inside a
// parallel region, like fpt_gemm. They never call BLAS. Each row of C depends
// only on its row of A: the same bits whatever the threads and the split.
// Each thread that runs them keeps a 175 KB buffer for its life (the rows of A
// in bf16), so that no call allocates.
#ifndef FPT_GEMM_BF16_H
#define FPT_GEMM_BF16_H

#include <stddef.h>
#include <stdint.h>

// Columns per packed panel. fpt_gemm_bf16_nn_cols's first column must be a
// multiple of it.
#define FPT_BF16_NR 32

// Which packed layouts a matrix keeps (each takes 2 bytes per weight).
enum {
  FPT_BF16_NN = 1,  // for fpt_gemm_bf16_nn: x . W (the forward)
  FPT_BF16_NT = 2,  // for fpt_gemm_bf16_nt: dY . W^T (the input gradient)
  FPT_BF16_BOTH = 3 // both: 4 bytes per weight, as much as the fp32 matrix
};

// A frozen weight matrix W (rows, cols), row-major in fp32 (our x . W layout:
// rows = in features, cols = out features), stored in bf16.
// Layouts: nn holds ceil(cols / NR) panels of NR columns; panel p is
// (ceil(rows / 2), NR, 2) bf16: element [k/2][n - p*NR][k % 2] = W[k, n], the
// pairs along k that vdpbf16ps reduces. nt holds the same for W^T (panels of NR
// rows of W, pairs along the columns of W). Padding (k >= rows, n >= cols) is 0.
//
// The same panels may hold fp32 instead (fpt_f32_pack_layouts: f32 = 1,
// nn32/nt32 in place of nn/nt, panel p (rows, NR) with element [k][n - p*NR]):
// no rounding, only the packing of W saved from every call, and the rows of A
// read in place (AVX-512F). The entry points below run either.
typedef struct {
  int rows, cols;
  int layouts;        // FPT_BF16_NN | FPT_BF16_NT as packed
  uint16_t *nn, *nt;  // NULL when not packed
  int f32;            // 1: fp32 panels in nn32/nt32 instead
  float *nn32, *nt32; // NULL when not packed
  size_t bytes;       // bytes held by the panels together
} fpt_bf16_matrix;

// 1 when the CPU has AVX512F, BW, VL and AVX512_BF16 and the OS saves zmm
// state (cpuid and xgetbv, checked once); 0 otherwise, or when
// fpt_bf16_disable is set.
int fpt_bf16_supported(void);
// Tests set this to 1 to take the path of a CPU without AVX512_BF16.
extern int fpt_bf16_disable;

// 1 when the bf16 kernels run on AMX tiles (tdpbf16ps: Intel CPUs with
// AMX-BF16 and AMX-TILE whose OS grants this process tile state) where the
// reduction length is a multiple of 32; 0 otherwise (vdpbf16ps in zmm), or
// when fpt_amx_disable is set. Either way each row of C depends only on its
// row of A; the two differ by fp32 accumulation rounding.
int fpt_bf16_amx(void);
// "amx", "avx512_bf16" or "none" (no bf16 kernel on this CPU), as above.
const char *fpt_bf16_kernel_name(void);
// FPT_NO_AMX=1 sets this: the AVX512_BF16 kernels on an AMX CPU (comparisons).
extern int fpt_amx_disable;

// 1 when the CPU has AVX512F and the OS saves zmm state: the fp32 panels'
// kernel runs; 0 otherwise, or when fpt_f32_pack_disable is set.
int fpt_f32_packed_supported(void);
extern int fpt_f32_pack_disable;
// w (rows, cols), row-major, into fp32 panels of the layouts named; the same
// contract as fpt_bf16_pack_layouts (refused where the kernel cannot run).
int fpt_f32_pack_layouts(fpt_bf16_matrix *m, const float *w, int rows, int cols, int layouts);

// Round w (rows, cols), row-major, to bf16 and pack it into m (both layouts).
// Returns 0, or 1 with fpt_error_get() set: the CPU lacks AVX512_BF16
// (fpt_bf16_supported() == 0), or a dimension is < 1. m is zeroed first, so
// that fpt_bf16_free(m) is safe after a failure.
int fpt_bf16_pack(fpt_bf16_matrix *m, const float *w, int rows, int cols);
// The same with only the layouts named (FPT_BF16_NN, FPT_BF16_NT or both).
int fpt_bf16_pack_layouts(fpt_bf16_matrix *m, const float *w, int rows, int cols, int layouts);
void fpt_bf16_free(fpt_bf16_matrix *m);

// W[k, n] back in fp32 (the bf16-rounded value), from whichever layout m has.
float fpt_bf16_get(const fpt_bf16_matrix *m, int k, int n);

// The forward, row-major: C(M,N) = A(M,K) . W + beta * C, K = W->rows,
// N = W->cols. beta == 0: C is only written (may hold NaN before).
// Needs the FPT_BF16_NN layout. M may be 0.
void fpt_gemm_bf16_nn(int M, int N, int K, const float *A, int lda, const fpt_bf16_matrix *W,
                      float beta, float *C, int ldc);
// The same on the N columns [n0, n0 + N) of W, with a bias (N values, or
// NULL): C(M,N) = A . W[:, n0:n0+N] + bias + beta C. n0 % FPT_BF16_NR == 0,
// n0 + N <= W->cols (e.g. the K|V or the Q part of a qkv matrix when C is a
// multiple of 32).
void fpt_gemm_bf16_nn_cols(int M, int n0, int N, int K, const float *A, int lda,
                           const fpt_bf16_matrix *W, const float *bias, float beta, float *C,
                           int ldc);
// The input gradient: C(M,K) = A(M,N) . W^T + beta * C, with A = dY (M, N),
// K = W->rows, N = W->cols. Needs the FPT_BF16_NT layout.
void fpt_gemm_bf16_nt(int M, int N, int K, const float *A, int lda, const fpt_bf16_matrix *W,
                      float beta, float *C, int ldc);

// Scalar round-to-nearest-even fp32 -> bf16 bits, exactly vcvtne2ps2bf16:
// zero and denormal -> signed zero; +-Inf kept; NaN -> its upper 16 bits with
// the quiet bit (0x0040) set; otherwise (x + 0x7fff + bit 16 of x) >> 16.
uint16_t fpt_bf16_from_float(float f);
float fpt_bf16_to_float(uint16_t h);
// fp32 -> bf16 -> fp32 for n values (out may equal in): for error studies.
void fpt_bf16_round_floats(float *out, const float *in, size_t n);

#endif
