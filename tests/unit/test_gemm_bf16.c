// The bf16 frozen-weight GEMMs (src/model/gemm_bf16.c):
// - rounding: fpt_bf16_from_float on ties, NaN, Inf, denormals and overflow
//   against hand-derived bits, and (with AVX512_BF16) against the hardware's
//   vcvtne2ps2bf16 / vcvtneps2bf16 on those and on random bit patterns;
// - packing: every element of both layouts reads back as the rounded weight;
// - the kernels against a double-precision GEMM of the bf16-ROUNDED inputs
//   (only fp32 accumulation may differ: |err| <= (K+2) 2^-24 sum|a w|), on odd
//   shapes (M, N, K not multiples of the blocks, K odd, K over several
//   panels, and on AMX CPUs both kernels), beta 0 (C not read: it holds NaN), 1 and 0.5, lda/ldc
//   wider than the matrix (the gaps and the row after C must stay untouched), column ranges, 1 and
//   2 threads;
// - against fp32 fpt_gemm (OpenBLAS) on the model's shapes: the bf16 bound
//   |err| <= (2^-8 + 2^-17 + 2 (K+2) 2^-24) sum|a w|; the max and typical
//   errors are printed;
// - the refusal path: without AVX512_BF16 (or with fpt_bf16_disable) packing
//   fails with a message. On such a CPU only that path and the portable
//   rounding run, and the test prints so.
// Not a test: `test_gemm_bf16 bench [REPS]` prints GFLOP/s (medians of REPS,
// default 7) of fpt_gemm_bf16_nn/_nt against fpt_gemm on the backbone and
// GPT-2 base shapes, 1 and 2 threads, with the CPU's name and its measured
// fp32 FMA and bf16 dot-product peaks per core.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fd.h"
#include "fpt/check.h"
#include "fpt/gemm_bf16.h"
#include "fpt/kernels.h"

#define TGT __attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl")))
#define U (1.0 / 16777216.0) // 2^-24

static int have_bf16, have_amx;

static uint32_t bits_of(float f) {
  uint32_t x;
  memcpy(&x, &f, sizeof x);
  return x;
}
static float float_of(uint32_t x) {
  float f;
  memcpy(&f, &x, sizeof f);
  return f;
}

// --- Rounding ---

static const struct {
  uint32_t in;
  uint16_t out;
} cases[] = {
    {0x00000000u, 0x0000}, // +0
    {0x80000000u, 0x8000}, // -0
    {0x3f800000u, 0x3f80}, // 1
    {0x3f808000u, 0x3f80}, // tie, even below: down
    {0x3f818000u, 0x3f82}, // tie, odd below: up
    {0x3f807fffu, 0x3f80}, // just under the tie
    {0x3f808001u, 0x3f81}, // just over the tie
    {0xbf808000u, 0xbf80}, // negative ties round the magnitude the same way
    {0xbf818000u, 0xbf82}, {0xbf80ffffu, 0xbf81}, {0x3fffffffu, 0x4000}, // carry into the exponent
    {0x7f7f7fffu, 0x7f7f}, // largest that stays finite
    {0x7f7f8000u, 0x7f80}, // tie at the top: odd below, up to +Inf
    {0x7f7fffffu, 0x7f80}, // FLT_MAX -> +Inf
    {0xff7fffffu, 0xff80}, // -FLT_MAX -> -Inf
    {0x7f800000u, 0x7f80}, // +Inf
    {0xff800000u, 0xff80}, // -Inf
    {0x7fc00000u, 0x7fc0}, // quiet NaN
    {0xffc00001u, 0xffc0}, // negative quiet NaN, low payload dropped
    {0x7f800001u, 0x7fc0}, // signalling NaN, payload only in the low bits: stays NaN, quiet
    {0x7f80ffffu, 0x7fc0}, // (rounding it as a number would give +Inf)
    {0x7fa00000u, 0x7fe0}, // signalling NaN with a high payload: kept, made quiet
    {0x7fffffffu, 0x7fff}, // NaN with all bits: no carry
    {0x00000001u, 0x0000}, // smallest denormal -> 0
    {0x007fffffu, 0x0000}, // largest denormal -> 0 (not up to the smallest normal)
    {0x807fffffu, 0x8000}, // negative denormal -> -0
    {0x00800000u, 0x0080}, // smallest normal
    {0x00808000u, 0x0080}, // tie at the smallest normal
    {0x00ffffffu, 0x0100}, // rounds up into the next binade
    {0x3eaaaaabu, 0x3eab}, // 1/3
    {0x40490fdbu, 0x4049}, // pi
};
enum { N_CASES = sizeof cases / sizeof *cases };

// The hardware's two conversions on 32 inputs.
static TGT void hw_round(const float *in, uint16_t *out2, uint16_t *out1) {
  __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(in + 16), _mm512_loadu_ps(in));
  _mm512_storeu_si512(out2, (__m512i)v);
  __m256bh a = _mm512_cvtneps_pbh(_mm512_loadu_ps(in)),
           b = _mm512_cvtneps_pbh(_mm512_loadu_ps(in + 16));
  _mm256_storeu_si256((__m256i *)out1, (__m256i)a);
  _mm256_storeu_si256((__m256i *)(out1 + 16), (__m256i)b);
}

static void test_rounding_values(void **state) {
  (void)state;
  for (int i = 0; i < N_CASES; i++) {
    uint16_t got = fpt_bf16_from_float(float_of(cases[i].in));
    if (got != cases[i].out)
      fail_msg("fpt_bf16_from_float(0x%08x) = 0x%04x, expected 0x%04x", cases[i].in, got,
               cases[i].out);
    // The way back is exact: the upper 16 bits.
    assert_int_equal(bits_of(fpt_bf16_to_float(cases[i].out)), (uint32_t)cases[i].out << 16);
  }
  float in[3] = {1.0f, float_of(0x3f818000u), float_of(0x00000001u)}, out[3];
  fpt_bf16_round_floats(out, in, 3);
  assert_true(out[0] == 1.0f && bits_of(out[1]) == 0x3f820000u && bits_of(out[2]) == 0);
}

static void test_rounding_hardware(void **state) {
  (void)state;
  if (!have_bf16) {
    printf("bf16 kernel not tested: CPU lacks AVX512_BF16 (rounding checked against fixed bits "
           "only)\n");
    assert_int_equal(fpt_bf16_supported(), 0);
    return;
  }
  float in[32];
  uint16_t h2[32], h1[32];
  for (int i = 0; i < N_CASES; i += 32) {
    int n = N_CASES - i < 32 ? N_CASES - i : 32;
    for (int j = 0; j < 32; j++)
      in[j] = float_of(cases[i + (j < n ? j : 0)].in);
    hw_round(in, h2, h1);
    for (int j = 0; j < n; j++)
      if (h2[j] != cases[i + j].out || h1[j] != cases[i + j].out)
        fail_msg("vcvtne2ps2bf16(0x%08x) = 0x%04x, vcvtneps2bf16 0x%04x, table 0x%04x",
                 cases[i + j].in, h2[j], h1[j], cases[i + j].out);
  }
  // Random bit patterns, every exponent (denormal, NaN and Inf included),
  // then exponents near the extremes and the ties of each.
  fpt_stream s = {7, 1, 0, 0};
  for (uint64_t r = 0; r < (1u << 21); r += 32) {
    for (int j = 0; j < 32; j++) {
      uint32_t x = fpt_stream_u32(s, r + (uint64_t)j);
      int kind = (int)((r / 32) % 4);
      if (kind == 1) // exponent 0, 1, 254 or 255
        x = (x & 0x807fffffu) | ((uint32_t)((int[]){0, 1, 254, 255}[x >> 29 & 3]) << 23);
      else if (kind == 2) // exact ties
        x = (x & 0xffff0000u) | 0x8000u;
      else if (kind == 3) // one away from a tie
        x = (x & 0xffff0000u) | ((x & 1) ? 0x8001u : 0x7fffu);
      in[j] = float_of(x);
    }
    hw_round(in, h2, h1);
    for (int j = 0; j < 32; j++) {
      uint16_t want = fpt_bf16_from_float(in[j]);
      if (h2[j] != want || h1[j] != want)
        fail_msg("0x%08x: hardware 0x%04x / 0x%04x, fpt_bf16_from_float 0x%04x", bits_of(in[j]),
                 h2[j], h1[j], want);
    }
  }
}

// --- Refusal ---

static void test_refusal(void **state) {
  (void)state;
  // The check agrees with the compiler's view of the CPU (OS support for zmm
  // state is assumed there).
  __builtin_cpu_init();
  int cpu = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
  assert_int_equal(fpt_bf16_supported(), cpu);
  float w[6] = {1, 2, 3, 4, 5, 6};
  fpt_bf16_matrix m;
  int keep = fpt_bf16_disable;
  fpt_bf16_disable = 1; // what a CPU without AVX512_BF16 sees
  assert_int_equal(fpt_bf16_supported(), 0);
  fpt_error_clear();
  assert_int_not_equal(fpt_bf16_pack(&m, w, 2, 3), 0);
  assert_non_null(strstr(fpt_error_get(), "AVX512_BF16"));
  assert_null(m.nn);
  assert_null(m.nt);
  fpt_bf16_free(&m);
  fpt_error_clear();
  fpt_bf16_disable = keep;
  assert_int_equal(fpt_bf16_supported(), cpu);
  if (cpu) { // bad shapes and layouts are refused too
    assert_int_not_equal(fpt_bf16_pack(&m, w, 0, 3), 0);
    assert_int_not_equal(fpt_bf16_pack_layouts(&m, w, 2, 3, 4), 0);
    fpt_error_clear();
    assert_int_equal(fpt_bf16_pack(&m, w, 2, 3), 0);
    assert_int_equal(m.bytes, (size_t)2 * (1 * 32 * 2 + 1 * 32 * 4));
    fpt_bf16_free(&m);
  } else {
    printf("bf16 kernel not tested: CPU lacks AVX512_BF16 (checked: the option is refused)\n");
  }
}

// --- Packing ---

static void test_pack(void **state) {
  (void)state;
  if (!have_bf16)
    return; // test_refusal covered this CPU
  int shapes[][2] = {{1, 1}, {7, 5}, {33, 65}, {128, 384}, {129, 31}};
  for (int s = 0; s < 5; s++)
    for (int lay = 1; lay <= 3; lay++) {
      int R = shapes[s][0], Cc = shapes[s][1];
      float *w = fpt_alloc_floats((size_t)R * Cc);
      fill_normal(w, (size_t)R * Cc, 11 + s, 1);
      fpt_bf16_matrix m;
      assert_int_equal(fpt_bf16_pack_layouts(&m, w, R, Cc, lay), 0);
      assert_int_equal(m.nn != NULL, (lay & FPT_BF16_NN) != 0);
      assert_int_equal(m.nt != NULL, (lay & FPT_BF16_NT) != 0);
      for (int k = 0; k < R; k++)
        for (int n = 0; n < Cc; n++) {
          float want = fpt_bf16_to_float(fpt_bf16_from_float(w[(size_t)k * Cc + n]));
          assert_true(bits_of(fpt_bf16_get(&m, k, n)) == bits_of(want));
          if (lay == 3) { // the nt layout, read directly
            fpt_bf16_matrix t = m;
            t.nn = NULL;
            assert_true(bits_of(fpt_bf16_get(&t, k, n)) == bits_of(want));
          }
        }
      fpt_bf16_free(&m);
      assert_null(m.nn);
      free(w);
    }
}

// --- Kernels against references ---

// The double-precision reference of C(M, No) = A . B + beta C0:
// C[i][j] = sum_r a(i, r) b(r, j), a(i, r) = A[i * lda + r], b(r, j) = B[r * sr + j * sc];
// sumabs = sum_r |a b| + |beta C0|. Callers pass bf16-rounded A and B.
static void ref(int M, int No, int Kr, const float *A, int lda, const float *B, size_t sr,
                size_t sc, float beta, const float *C0, int ldc, double *out, double *sumabs) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < No; j++) {
      double s = 0, sa = 0;
      for (int r = 0; r < Kr; r++) {
        double p = (double)A[(size_t)i * lda + r] * B[(size_t)r * sr + (size_t)j * sc];
        s += p;
        sa += fabs(p);
      }
      double c0 = beta == 0.0f ? 0.0 : (double)beta * C0[(size_t)i * ldc + j];
      out[(size_t)i * No + j] = s + c0;
      sumabs[(size_t)i * No + j] = sa + fabs(c0);
    }
}

typedef struct {
  int M, N, K; // the matrix W is (K, N); nn: C(M,N) = A(M,K) W, nt: C(M,K) = A(M,N) W^T
  int pad;     // extra columns in lda and ldc
} shape;

// One call of nn (n0, nc: columns [n0, n0 + nc) of W; with a random bias of
// those columns when bias is set) or nt against the double reference of the
// rounded inputs (fp32 panels: of the inputs as they are); C0 random (beta !=
// 0) or NaN.
static void check_exact(const fpt_bf16_matrix *m, const float *w, int nt, int n0, int nc, int M,
                        int pad, float beta, int threads, uint64_t seed, int bias) {
  int K = m->rows, N = m->cols;
  float *bv = NULL;
  if (bias && !nt) {
    bv = fpt_alloc_floats((size_t)nc);
    fill_normal(bv, (size_t)nc, seed + 7, 1);
  }
  int Kr = nt ? N : K, No = nt ? K : nc;
  int lda = Kr + pad, ldc = No + pad;
  float *A = fpt_alloc_floats((size_t)M * lda), *C = fpt_alloc_floats((size_t)(M + 1) * ldc);
  float *C0 = fpt_alloc_floats((size_t)(M + 1) * ldc);
  double *want = malloc(sizeof(double) * (size_t)M * No),
         *sa = malloc(sizeof(double) * (size_t)M * No);
  fill_normal(A, (size_t)M * lda, seed, 1);
  for (int i = 0; i < M; i++) // past the K columns: never used (NaN would spread)
    for (int j = Kr; j < lda; j++)
      A[(size_t)i * lda + j] = NAN;
  // A few special inputs in A: a denormal (counts as 0) and values on ties.
  if (M * Kr > 3) {
    A[0] = float_of(0x00012345u);
    A[1] = float_of(0x3f818000u);
    A[lda > 2 ? 2 : 0] = float_of(0xbf808000u);
  }
  fill_normal(C0, (size_t)(M + 1) * ldc, seed + 1, 1);
  if (beta == 0.0f)
    for (int i = 0; i < M; i++)
      for (int j = 0; j < No; j++)
        C0[(size_t)i * ldc + j] = NAN; // must not be read
  memcpy(C, C0, sizeof(float) * (size_t)(M + 1) * ldc);
  omp_set_num_threads(threads);
  if (nt)
    fpt_gemm_bf16_nt(M, N, K, A, lda, m, beta, C, ldc);
  else if (n0 == 0 && nc == N && !bv)
    fpt_gemm_bf16_nn(M, N, K, A, lda, m, beta, C, ldc);
  else
    fpt_gemm_bf16_nn_cols(M, n0, nc, K, A, lda, m, bv, beta, C, ldc);
  omp_set_num_threads(2);
  float *Ar = fpt_alloc_floats((size_t)M * lda), *wr = fpt_alloc_floats((size_t)K * N);
  if (m->f32) {
    memcpy(Ar, A, sizeof(float) * (size_t)M * lda);
    memcpy(wr, w, sizeof(float) * (size_t)K * N);
  } else {
    fpt_bf16_round_floats(Ar, A, (size_t)M * lda);
    fpt_bf16_round_floats(wr, w, (size_t)K * N);
  }
  if (nt)
    ref(M, No, Kr, Ar, lda, wr, 1, (size_t)N, beta, C0, ldc, want, sa);
  else
    ref(M, No, Kr, Ar, lda, wr + n0, (size_t)N, 1, beta, C0, ldc, want, sa);
  for (int i = 0; bv && i < M; i++)
    for (int j = 0; j < No; j++) {
      want[(size_t)i * No + j] += bv[j];
      sa[(size_t)i * No + j] += fabs(bv[j]);
    }
  free(Ar);
  free(wr);
  free(bv);
  for (int i = 0; i < M + 1; i++)
    for (int j = 0; j < ldc; j++) {
      float c = C[(size_t)i * ldc + j];
      if (i == M || j >= No) { // outside C: untouched
        if (bits_of(c) != bits_of(C0[(size_t)i * ldc + j]))
          fail_msg("%s M%d N%d K%d pad%d: wrote outside C at (%d, %d)", nt ? "nt" : "nn", M, N, K,
                   pad, i, j);
        continue;
      }
      double r = want[(size_t)i * No + j], tol = (Kr + 2) * U * sa[(size_t)i * No + j] + 1e-30;
      if (!(fabs(c - r) <= tol))
        fail_msg("%s M%d N%d K%d n0 %d pad%d beta %g threads %d: C[%d][%d] = %.9g, reference "
                 "%.9g (tolerance %.3g)",
                 nt ? "nt" : "nn", M, N, K, n0, pad, beta, threads, i, j, c, r, tol);
    }
  free(A);
  free(C);
  free(C0);
  free(want);
  free(sa);
}

// Every shape, beta, thread count and layout, and column ranges with and
// without a bias, of a matrix packed by pack (bf16 or fp32 panels).
static void exact_shapes(int (*pack)(fpt_bf16_matrix *, const float *, int, int, int)) {
  // (M, N, K, pad): tiles are 14 rows x 32 columns, K panels of 768, row
  // blocks of 112; K odd; K over 1, 2 and 3 panels; few rows (split by
  // column panels); rows not a multiple of anything.
  shape sh[] = {{1, 1, 1, 0},
                {3, 5, 2, 1},
                {13, 31, 7, 3},
                {15, 33, 17, 0},
                {29, 65, 129, 5},
                {113, 97, 255, 0},
                {57, 40, 513, 2},
                {200, 64, 257, 1},
                {5, 300, 130, 0},
                {2, 700, 300, 3},
                {127, 129, 128, 16},
                {30, 32, 512, 0},
                {30, 33, 769, 0},
                {19, 45, 1601, 3},
                {230, 70, 1536, 1},
                // Reductions of a multiple of 32 both ways (the AMX tiles'
                // shapes: nn reduces K, nt N), over 1 to 3 panels, rows past
                // a block of 128.
                {45, 96, 64, 0},
                {100, 160, 800, 2},
                {31, 384, 128, 1},
                {250, 512, 128, 0},
                {33, 64, 1568, 0}};
  int n = sizeof sh / sizeof *sh;
  float betas[] = {0.0f, 1.0f, 0.5f};
  for (int s = 0; s < n; s++) {
    int M = sh[s].M, N = sh[s].N, K = sh[s].K;
    float *w = fpt_alloc_floats((size_t)K * N);
    fill_normal(w, (size_t)K * N, 100 + s, 0.5f);
    fpt_bf16_matrix m;
    assert_int_equal(pack(&m, w, K, N, FPT_BF16_BOTH), 0);
    for (int b = 0; b < 3; b++)
      for (int th = 1; th <= 2; th++)
        for (int nt = 0; nt < 2; nt++)
          check_exact(&m, w, nt, 0, N, M, sh[s].pad, betas[b], th, 1000 + s * 10 + b, 0);
    check_exact(&m, w, 0, 0, N, M, sh[s].pad, 0.0f, 2, 76, 1); // the forward with its bias
    // Column ranges (the qkv K|V and Q parts).
    if (N > 32) {
      check_exact(&m, w, 0, 32, N - 32, M, sh[s].pad, 1.0f, 2, 77, 0);
      check_exact(&m, w, 0, 0, 32, M, 1, 0.0f, 2, 78, 1);
      check_exact(&m, w, 0, 32, N > 64 ? 32 : N - 32, M, 0, 0.5f, 1, 79, 1);
    }
    fpt_bf16_free(&m);
    free(w);
  }
}

// 1 and 2 threads, and inside a parallel region (where the kernels run on
// the calling thread): every row is computed the same way, same bits.
// K = 300, 320 and 1600 (the latter two on AMX tiles where the CPU has them;
// 1600 takes three K panels, the later ones adding to C).
static void same_bits_any_split_k(int (*pack)(fpt_bf16_matrix *, const float *, int, int, int),
                                  int K) {
  float *w = fpt_alloc_floats((size_t)K * 70);
  fill_normal(w, (size_t)K * 70, 5, 1);
  fpt_bf16_matrix m;
  assert_int_equal(pack(&m, w, K, 70, FPT_BF16_BOTH), 0);
  float *A = fpt_alloc_floats((size_t)2 * 50 * K), *C = fpt_alloc_floats(2 * 50 * 70);
  float *R = fpt_alloc_floats(2 * 50 * 70);
  fill_normal(A, (size_t)2 * 50 * K, 6, 1);
  omp_set_num_threads(1);
  fpt_gemm_bf16_nn(100, 70, K, A, K, &m, 0.0f, C, 70);
  omp_set_num_threads(2);
  fpt_gemm_bf16_nn(100, 70, K, A, K, &m, 0.0f, R, 70);
  assert_memory_equal(C, R, sizeof(float) * 100 * 70);
  memset(C, 0, sizeof(float) * 100 * 70);
#pragma omp parallel num_threads(2)
  {
    int t = omp_get_thread_num();
    fpt_gemm_bf16_nn(50, 70, K, A + (size_t)t * 50 * K, K, &m, 0.0f, C + (size_t)t * 50 * 70, 70);
  }
  assert_memory_equal(C, R, sizeof(float) * 100 * 70);
  fpt_bf16_free(&m);
  free(w);
  free(A);
  free(C);
  free(R);
}

static void same_bits_any_split(int (*pack)(fpt_bf16_matrix *, const float *, int, int, int)) {
  same_bits_any_split_k(pack, 300);
  same_bits_any_split_k(pack, 320);
  same_bits_any_split_k(pack, 1600);
}

// On a CPU with AMX both kernels: the tiles (reductions of a multiple of 32)
// and, with fpt_amx_disable, the zmm ones on the same shapes.
static void test_exact(void **state) {
  (void)state;
  if (!have_bf16)
    return;
  for (int off = 0; off <= have_amx; off++) {
    fpt_amx_disable = off;
    exact_shapes(fpt_bf16_pack_layouts);
    same_bits_any_split(fpt_bf16_pack_layouts);
  }
  fpt_amx_disable = 0;
}

// --- fp32 panels ---

// Packing reads back bit for bit; the kernels against the double reference
// of the fp32 inputs (only the fp32 accumulation may differ) on every shape;
// any split gives the same bits; fpt_f32_pack_disable refuses.
static void test_f32_panels(void **state) {
  (void)state;
  __builtin_cpu_init();
  int cpu = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl");
  assert_int_equal(fpt_f32_packed_supported(), cpu);
  float w6[6] = {1, 2, 3, 4, 5, 6};
  fpt_bf16_matrix m;
  fpt_f32_pack_disable = 1;
  fpt_error_clear();
  assert_int_not_equal(fpt_f32_pack_layouts(&m, w6, 2, 3, FPT_BF16_BOTH), 0);
  assert_non_null(strstr(fpt_error_get(), "AVX-512F"));
  assert_null(m.nn32);
  fpt_error_clear();
  fpt_f32_pack_disable = 0;
  if (!cpu) {
    printf("fp32 panels not tested: CPU lacks AVX-512F/BW/VL (checked: packing is refused)\n");
    return;
  }
  int shapes[][2] = {{1, 1}, {7, 5}, {33, 65}, {129, 31}};
  for (int s = 0; s < 4; s++)
    for (int lay = 1; lay <= 3; lay++) {
      int R = shapes[s][0], Cc = shapes[s][1];
      float *w = fpt_alloc_floats((size_t)R * Cc);
      fill_normal(w, (size_t)R * Cc, 21 + s, 1);
      assert_int_equal(fpt_f32_pack_layouts(&m, w, R, Cc, lay), 0);
      assert_int_equal(m.nn32 != NULL, (lay & FPT_BF16_NN) != 0);
      assert_int_equal(m.nt32 != NULL, (lay & FPT_BF16_NT) != 0);
      for (int k = 0; k < R; k++)
        for (int n = 0; n < Cc; n++)
          assert_true(bits_of(fpt_bf16_get(&m, k, n)) == bits_of(w[(size_t)k * Cc + n]));
      fpt_bf16_free(&m);
      free(w);
    }
  exact_shapes(fpt_f32_pack_layouts);
  same_bits_any_split(fpt_f32_pack_layouts);
}

// --- Against fp32 (the error bf16 brings) ---

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef struct {
  double max_rel, med_rel, fro; // |d| / sum|a w|: max, median; ||d||_F / ||C||_F
  double worst_ratio;           // max |d| / bound
} fp32_err;

// bf16 nn or nt against fpt_gemm on fp32 inputs, A (M, Kr) ~ N(0,1), W given.
static fp32_err vs_fp32(const fpt_bf16_matrix *m, const float *w, int nt, int M, uint64_t seed) {
  int K = m->rows, N = m->cols, Kr = nt ? N : K, No = nt ? K : N;
  float *A = fpt_alloc_floats((size_t)M * Kr), *Cb = fpt_alloc_floats((size_t)M * No);
  float *Cf = fpt_alloc_floats((size_t)M * No), *S = fpt_alloc_floats((size_t)M * No);
  float *Aa = fpt_alloc_floats((size_t)M * Kr), *Wa = fpt_alloc_floats((size_t)K * N);
  fill_normal(A, (size_t)M * Kr, seed, 1);
  for (size_t i = 0; i < (size_t)M * Kr; i++)
    Aa[i] = fabsf(A[i]);
  for (size_t i = 0; i < (size_t)K * N; i++)
    Wa[i] = fabsf(w[i]);
  if (nt) {
    fpt_gemm_bf16_nt(M, N, K, A, N, m, 0.0f, Cb, K);
    fpt_gemm(0, 1, M, K, N, 1.0f, A, N, w, N, 0.0f, Cf, K);
    fpt_gemm(0, 1, M, K, N, 1.0f, Aa, N, Wa, N, 0.0f, S, K); // sum |a w| (fp32 is plenty)
  } else {
    fpt_gemm_bf16_nn(M, N, K, A, K, m, 0.0f, Cb, N);
    fpt_gemm(0, 0, M, N, K, 1.0f, A, K, w, N, 0.0f, Cf, N);
    fpt_gemm(0, 0, M, N, K, 1.0f, Aa, K, Wa, N, 0.0f, S, N);
  }
  size_t n = (size_t)M * No;
  double *rel = malloc(sizeof(double) * n), d2 = 0, c2 = 0;
  fp32_err e = {0, 0, 0, 0};
  double bound = ldexp(1, -8) + ldexp(1, -17) + 2.0 * (Kr + 2) * U;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)Cb[i] - Cf[i]), s = (double)S[i] * (1 + 1e-5) + 1e-30;
    rel[i] = d / s;
    e.max_rel = rel[i] > e.max_rel ? rel[i] : e.max_rel;
    e.worst_ratio = d / (bound * s) > e.worst_ratio ? d / (bound * s) : e.worst_ratio;
    d2 += d * d;
    c2 += (double)Cf[i] * Cf[i];
  }
  size_t step = n / 65536 + 1, ns = 0; // the median of a sample of up to 65536
  for (size_t i = 0; i < n; i += step)
    rel[ns++] = rel[i];
  qsort(rel, ns, sizeof(double), cmp_double);
  e.med_rel = rel[ns / 2];
  e.fro = sqrt(d2 / c2);
  free(rel);
  free(A);
  free(Cb);
  free(Cf);
  free(S);
  free(Aa);
  free(Wa);
  return e;
}

// The model's shapes: the shipped 12x128 backbone (784 rows = 16 samples x
// 49 tokens) and GPT-2 base (1024 rows). Weights N(0, 0.02) as GPT-2's init.
static const struct {
  const char *name;
  int M, K, N; // W (K, N)
} model_shapes[] = {
    {"12x128 qkv", 784, 128, 384},    {"12x128 attn_proj", 784, 128, 128},
    {"12x128 mlp_fc", 784, 128, 512}, {"12x128 mlp_proj", 784, 512, 128},
    {"base qkv", 1024, 768, 2304},    {"base attn_proj", 1024, 768, 768},
    {"base mlp_fc", 1024, 768, 3072}, {"base mlp_proj", 1024, 3072, 768},
};
enum { N_MODEL = sizeof model_shapes / sizeof *model_shapes };

static void test_vs_fp32(void **state) {
  (void)state;
  if (!have_bf16)
    return;
  printf("bf16 against fp32 (fpt_gemm), A ~ N(0,1), W ~ N(0,0.02); |d| / sum|a w|: max, median; "
         "||d||_F / ||C||_F; max |d| / bound\n");
  for (int s = 0; s < N_MODEL; s++) {
    // 256 rows are enough for the statistics (each row is independent).
    int M = model_shapes[s].M < 256 ? model_shapes[s].M : 256;
    int K = model_shapes[s].K, N = model_shapes[s].N;
    float *w = fpt_alloc_floats((size_t)K * N);
    fill_normal(w, (size_t)K * N, 300 + s, 0.02f);
    fpt_bf16_matrix m;
    assert_int_equal(fpt_bf16_pack(&m, w, K, N), 0);
    for (int nt = 0; nt < 2; nt++) {
      fp32_err e = vs_fp32(&m, w, nt, M, 400 + s);
      printf("  %-17s %s M %4d K %4d N %4d: max %.2e  median %.2e  fro %.2e  worst/bound %.3f\n",
             model_shapes[s].name, nt ? "nt" : "nn", M, K, N, e.max_rel, e.med_rel, e.fro,
             e.worst_ratio);
      if (!(e.worst_ratio <= 1.0))
        fail_msg("%s %s: bf16 error above its bound (%.3f of it)", model_shapes[s].name,
                 nt ? "nt" : "nn", e.worst_ratio);
      // Unbiased roundings: typically far below the worst case.
      if (!(e.fro < 0.01))
        fail_msg("%s %s: relative Frobenius error %.3g", model_shapes[s].name, nt ? "nt" : "nn",
                 e.fro);
    }
    // A sample of rows against the exact reference of the rounded inputs,
    // full shapes (several K panels, both threads).
    check_exact(&m, w, 0, 0, N, 17, 0, 1.0f, 2, 500 + s, 0);
    check_exact(&m, w, 1, 0, N, 17, 0, 0.0f, 2, 600 + s, 0);
    fpt_bf16_free(&m);
    free(w);
  }
}

// --- Timing (not a test) ---

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void cpu_name(char *out, size_t n) {
  snprintf(out, n, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f)
    return;
  char line[512];
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "model name", 10)) {
      char *p = strchr(line, ':');
      if (p) {
        p += 1 + (p[1] == ' ');
        p[strcspn(p, "\n")] = 0;
        snprintf(out, n, "%s", p);
      }
      break;
    }
  fclose(f);
}

// Peak of independent accumulator chains: fp32 FMA (zmm) and vdpbf16ps.
static __attribute__((target("avx512f"))) double peak_fma(long n) {
  __m512 acc[12], a = _mm512_set1_ps(1.0f), b = _mm512_set1_ps(0.0f);
  for (int i = 0; i < 12; i++)
    acc[i] = _mm512_set1_ps((float)i);
  double t = now();
  for (long i = 0; i < n; i++) {
#pragma GCC unroll 12
    for (int j = 0; j < 12; j++)
      acc[j] = _mm512_fmadd_ps(acc[j], a, b);
    __asm__ volatile("" : "+v"(a), "+v"(b));
  }
  t = now() - t;
  for (int j = 1; j < 12; j++) // every chain is live
    acc[0] = _mm512_add_ps(acc[0], acc[j]);
  volatile float sink = _mm512_reduce_add_ps(acc[0]);
  (void)sink;
  return (double)n * 12 * 32 / t / 1e9;
}
static TGT double peak_bf16(long n) {
  __m512 acc[12];
  __m512bh a = (__m512bh)_mm512_set1_epi32(0), b = (__m512bh)_mm512_set1_epi32(0);
  for (int i = 0; i < 12; i++)
    acc[i] = _mm512_set1_ps((float)i);
  double t = now();
  for (long i = 0; i < n; i++) {
#pragma GCC unroll 12
    for (int j = 0; j < 12; j++)
      acc[j] = _mm512_dpbf16_ps(acc[j], a, b);
    __asm__ volatile("" : "+v"(a), "+v"(b));
  }
  t = now() - t;
  for (int j = 1; j < 12; j++) // every chain is live
    acc[0] = _mm512_add_ps(acc[0], acc[j]);
  volatile float sink = _mm512_reduce_add_ps(acc[0]);
  (void)sink;
  return (double)n * 12 * 64 / t / 1e9;
}

static int cmp_d(const void *a, const void *b) { return cmp_double(a, b); }

static int bench(int reps) {
  char name[256];
  cpu_name(name, sizeof name);
  printf("cpu: %s; threads available %d; AVX512_BF16 %s\n", name, omp_get_max_threads(),
         have_bf16 ? "yes" : "no");
  if (!have_bf16) {
    printf("bf16 kernel not tested: CPU lacks AVX512_BF16\n");
    return 0;
  }
  double pf = 0, pb = 0;
  for (int r = 0; r < 3; r++) {
    double f = peak_fma(20000000), b = peak_bf16(20000000);
    pf = f > pf ? f : pf;
    pb = b > pb ? b : pb;
  }
  printf("peak per core (best of 3): fp32 FMA zmm %.1f GFLOP/s, vdpbf16ps %.1f GFLOP/s\n", pf, pb);
  printf("GFLOP/s, median of %d (fp32 = fpt_gemm with OpenBLAS; nn = x.W forward, nt = dY.W^T)\n",
         reps);
  printf("%-17s %5s %5s %5s %3s | %8s %8s %6s | %8s %8s %6s\n", "shape", "M", "K", "N", "thr",
         "fp32 nn", "bf16 nn", "x", "fp32 nt", "bf16 nt", "x");
  for (int s = 0; s < N_MODEL; s++) {
    int M = model_shapes[s].M, K = model_shapes[s].K, N = model_shapes[s].N;
    float *w = fpt_alloc_floats((size_t)K * N), *A = fpt_alloc_floats((size_t)M * (K > N ? K : N));
    float *C = fpt_alloc_floats((size_t)M * (K > N ? K : N));
    fill_normal(w, (size_t)K * N, 1, 0.02f);
    fill_normal(A, (size_t)M * (K > N ? K : N), 2, 1);
    fpt_bf16_matrix m;
    if (fpt_bf16_pack(&m, w, K, N))
      return 1;
    double flops = 2.0 * M * K * N;
    for (int th = 1; th <= 2; th++) {
      omp_set_num_threads(th);
      double t[4][64];
      int R = reps < 64 ? reps : 64;
      for (int r = -1; r < R; r++) // r = -1: warm-up
        for (int v = 0; v < 4; v++) {
          double t0 = now();
          if (v == 0)
            fpt_gemm(0, 0, M, N, K, 1.0f, A, K, w, N, 0.0f, C, N);
          else if (v == 1)
            fpt_gemm_bf16_nn(M, N, K, A, K, &m, 0.0f, C, N);
          else if (v == 2)
            fpt_gemm(0, 1, M, K, N, 1.0f, A, N, w, N, 0.0f, C, K);
          else
            fpt_gemm_bf16_nt(M, N, K, A, N, &m, 0.0f, C, K);
          if (r >= 0)
            t[v][r] = now() - t0;
        }
      double g[4];
      for (int v = 0; v < 4; v++) {
        qsort(t[v], (size_t)R, sizeof(double), cmp_d);
        g[v] = flops / t[v][R / 2] / 1e9;
      }
      printf("%-17s %5d %5d %5d %3d | %8.1f %8.1f %6.2f | %8.1f %8.1f %6.2f\n",
             model_shapes[s].name, M, K, N, th, g[0], g[1], g[1] / g[0], g[2], g[3], g[3] / g[2]);
      fflush(stdout);
    }
    omp_set_num_threads(2);
    fpt_bf16_free(&m);
    free(w);
    free(A);
    free(C);
  }
  return 0;
}

int main(int argc, char **argv) {
  have_bf16 = fpt_bf16_supported();
  have_amx = fpt_bf16_amx();
  if (argc > 1 && !strcmp(argv[1], "bench"))
    return bench(argc > 2 ? atoi(argv[2]) : 7);
  if (!have_bf16)
    printf("bf16 kernel not tested: CPU lacks AVX512_BF16 (only the refusal path and the "
           "portable rounding run)\n");
  else
    printf(have_amx ? "bf16 kernels tested: AMX tiles and AVX512_BF16\n"
                    : "bf16 kernels tested: AVX512_BF16 (AMX kernel not tested: CPU lacks "
                      "AMX-BF16)\n");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rounding_values), cmocka_unit_test(test_rounding_hardware),
      cmocka_unit_test(test_refusal),         cmocka_unit_test(test_pack),
      cmocka_unit_test(test_exact),           cmocka_unit_test(test_vs_fp32),
      cmocka_unit_test(test_f32_panels),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
