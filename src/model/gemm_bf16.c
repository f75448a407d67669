// bf16 GEMMs for frozen weights (include/fpt/gemm_bf16.h).
//
// Blocking (GotoBLAS order, per thread): for row blocks of MC = 112 rows, for
// K panels of KC = 768: the block of A is rounded to bf16 (vcvtne2ps2bf16)
// into the thread's buffer (rows of ABUF_S 32-bit pairs: a fixed stride, so
// that the micro-kernel addresses every row from one pointer), then for each
// packed panel of NR = 32 columns (its KC x NR slice, up to 48 KB, comes from
// L2 and is reused by the block's 8 row tiles), for each tile of MR = 14 rows:
// the micro-kernel keeps the 14 x 32 tile of C in 28 zmm accumulators; per
// pair of k it loads the panel's 2 vectors and broadcasts each row's bf16 pair
// of A, one vdpbf16ps per accumulator (the loop runs at ~95 % of the
// instruction's peak on Zen 4). C is written once per K panel: once for
// K <= 768 (every shape of the 12x128 backbone and GPT-2 base but the
// 3072-long reductions). KC 768 measured faster than 256 or 512 on GPT-2
// base's shapes (fewer passes over C) and no slower than 1024.
// Each row of C depends only on its row of A: results are the same bits for
// any number of threads and any split.
//
// The file builds on any x86-64 host: the AVX-512 code carries target
// attributes and runs only after fpt_bf16_supported() said yes (pack refuses
// otherwise).
#include "fpt/gemm_bf16.h"

#include <cpuid.h>
#include <immintrin.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/check.h"

#define NR FPT_BF16_NR
#define NV (NR / 16) // zmm vectors per row of a tile
#ifndef MR
#define MR 14 // rows per tile: MR * NV = 28 accumulators of 32 zmm
#endif
#ifndef KC
#define KC 768 // k per panel (even)
#endif
#ifndef MB
#define MB 8
#endif
#define MC (MB * MR)         // rows per block of A (112)
#define ABUF_S (KC / 2 + 16) // pairs per row of the A buffer (1600 B: rows fall in different L1 sets)

#define TGT __attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl,avx512dq")))

int fpt_bf16_disable = 0;

// --- CPU check ---

static int detect(void) {
  unsigned a, b, c, d;
  if (__get_cpuid_max(0, NULL) < 7)
    return 0;
  __cpuid(1, a, b, c, d);
  if (!((c >> 27) & 1)) // OSXSAVE: xgetbv usable
    return 0;
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  (void)hi;
  if ((lo & 0xe6) != 0xe6) // SSE, AVX, opmask, zmm0-15 upper halves, zmm16-31
    return 0;
  __cpuid_count(7, 0, a, b, c, d);
  int f = (b >> 16) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
  __cpuid_count(7, 1, a, b, c, d);
  int bf16 = (a >> 5) & 1;
  return f && bw && vl && bf16;
}

int fpt_bf16_supported(void) {
  static atomic_int cached = -1; // cpuid traps to the hypervisor on a VM: ask once
  int v = atomic_load(&cached);
  if (v < 0) {
    v = detect();
    atomic_store(&cached, v);
  }
  return v && !fpt_bf16_disable;
}

// --- Rounding ---

uint16_t fpt_bf16_from_float(float f) {
  uint32_t x;
  memcpy(&x, &f, sizeof x);
  uint32_t e = x & 0x7f800000u;
  if (e == 0) // zero or denormal: signed zero
    return (uint16_t)((x >> 16) & 0x8000u);
  if (e == 0x7f800000u) // Inf stays; NaN keeps its top bits, made quiet
    return (uint16_t)((x >> 16) | ((x & 0x7fffffu) ? 0x0040u : 0));
  x += 0x7fffu + ((x >> 16) & 1u);
  return (uint16_t)(x >> 16);
}

float fpt_bf16_to_float(uint16_t h) {
  uint32_t x = (uint32_t)h << 16;
  float f;
  memcpy(&f, &x, sizeof f);
  return f;
}

void fpt_bf16_round_floats(float *out, const float *in, size_t n) {
  for (size_t i = 0; i < n; i++)
    out[i] = fpt_bf16_to_float(fpt_bf16_from_float(in[i]));
}

// --- Packing ---

static size_t panel_elems(int kr) { return (size_t)((kr + 1) / 2) * NR * 2; }

// The logical B (kr, no), element (r, c) = src[r * sr + c * sc], into
// ceil(no / NR) panels of (ceil(kr / 2), NR, 2).
static void pack_panels(uint16_t *dst, const float *src, int kr, int no, size_t sr, size_t sc) {
  int np = (no + NR - 1) / NR, kp = (kr + 1) / 2;
#pragma omp parallel for schedule(static)
  for (int p = 0; p < np; p++) {
    uint16_t *d = dst + (size_t)p * panel_elems(kr);
    for (int q = 0; q < kp; q++)
      for (int j = 0; j < NR; j++)
        for (int e = 0; e < 2; e++) {
          int r = 2 * q + e, c = p * NR + j;
          d[((size_t)q * NR + j) * 2 + e] =
              r < kr && c < no ? fpt_bf16_from_float(src[(size_t)r * sr + (size_t)c * sc]) : 0;
        }
  }
}

int fpt_bf16_pack_layouts(fpt_bf16_matrix *m, const float *w, int rows, int cols, int layouts) {
  memset(m, 0, sizeof *m);
  FPT_ENSURE(fpt_bf16_supported(),
             "bf16 frozen weights need a CPU with AVX512_BF16 (and AVX512F/BW/VL, zmm state "
             "enabled by the OS); this one has not");
  FPT_ENSURE(rows > 0 && cols > 0, "bf16 pack: bad shape %d x %d", rows, cols);
  FPT_ENSURE(layouts >= 1 && layouts <= FPT_BF16_BOTH, "bf16 pack: bad layouts %d", layouts);
  size_t nn = (layouts & FPT_BF16_NN) ? (size_t)((cols + NR - 1) / NR) * panel_elems(rows) : 0;
  size_t nt = (layouts & FPT_BF16_NT) ? (size_t)((rows + NR - 1) / NR) * panel_elems(cols) : 0;
  m->rows = rows;
  m->cols = cols;
  m->layouts = layouts;
  m->bytes = (nn + nt) * sizeof(uint16_t);
  if (nn) {
    m->nn = aligned_alloc(64, nn * sizeof(uint16_t)); // nn * 2 is a multiple of 128
    if (!m->nn) {
      fprintf(stderr, "fpt: error: out of memory allocating %zu bytes\n", nn * sizeof(uint16_t));
      exit(2);
    }
    pack_panels(m->nn, w, rows, cols, (size_t)cols, 1);
  }
  if (nt) {
    m->nt = aligned_alloc(64, nt * sizeof(uint16_t));
    if (!m->nt) {
      fprintf(stderr, "fpt: error: out of memory allocating %zu bytes\n", nt * sizeof(uint16_t));
      exit(2);
    }
    pack_panels(m->nt, w, cols, rows, 1, (size_t)cols); // W^T (cols, rows)
  }
  return 0;
}

int fpt_bf16_pack(fpt_bf16_matrix *m, const float *w, int rows, int cols) {
  return fpt_bf16_pack_layouts(m, w, rows, cols, FPT_BF16_BOTH);
}

void fpt_bf16_free(fpt_bf16_matrix *m) {
  free(m->nn);
  free(m->nt);
  memset(m, 0, sizeof *m);
}

float fpt_bf16_get(const fpt_bf16_matrix *m, int k, int n) {
  if (m->nn)
    return fpt_bf16_to_float(
        m->nn[(size_t)(n / NR) * panel_elems(m->rows) + ((size_t)(k / 2) * NR + n % NR) * 2 + k % 2]);
  return fpt_bf16_to_float(
      m->nt[(size_t)(k / NR) * panel_elems(m->cols) + ((size_t)(n / 2) * NR + k % NR) * 2 + n % 2]);
}

// --- Kernels ---

// Rows [0, mc) of A (row stride lda), columns [0, kc), to bf16 pairs: row i at
// buf + i * ABUF_S, pair q = (A[i][2q], A[i][2q+1]); zero past kc (an odd kc
// pairs its last element with 0), and rows [mc, round up to MR) are zero.
static TGT void pack_a(uint32_t *buf, const float *A, int lda, int mc, int kc) {
  int mpad = (mc + MR - 1) / MR * MR, kcp = (kc + 1) / 2;
  for (int i = 0; i < mc; i++) {
    const float *a = A + (size_t)i * lda;
    uint32_t *d = buf + (size_t)i * ABUF_S;
    int k = 0;
    for (; k + 32 <= kc; k += 32) {
      __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(a + k + 16), _mm512_loadu_ps(a + k));
      _mm512_storeu_si512(d + k / 2, (__m512i)v);
    }
    if (k < kc) {
      int r = kc - k;
      __mmask16 lo = r >= 16 ? 0xffff : (__mmask16)((1u << r) - 1);
      __mmask16 hi = r > 16 ? (__mmask16)((1u << (r - 16)) - 1) : 0;
      __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, a + k + 16),
                                       _mm512_maskz_loadu_ps(lo, a + k));
      _mm512_storeu_si512(d + k / 2, (__m512i)v); // within ABUF_S: kc <= KC
    }
  }
  for (int i = mc; i < mpad; i++)
    memset(buf + (size_t)i * ABUF_S, 0, sizeof(uint32_t) * (size_t)kcp);
}

// C tile (mr <= MR rows, nc <= NR columns) = or += the product of kcp pairs:
// a (MR rows of the A buffer) and b (kcp x NR x 2 of a panel). mode 0: C =
// acc + beta C (beta == 0: C not read); mode 1: C += acc.
static TGT void ukernel(int kcp, const uint32_t *a, const uint16_t *b, float *C, int ldc, int mr,
                        int nc, float beta, int mode) {
  __m512 acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++)
      acc[i][v] = _mm512_setzero_ps();
  for (int q = 0; q < kcp; q++) {
    __m512bh bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++)
      bv[v] = (__m512bh)_mm512_load_si512(b + ((size_t)q * NR + 16 * v) * 2);
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++) {
      __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[(size_t)i * ABUF_S + q]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++)
        acc[i][v] = _mm512_dpbf16_ps(acc[i][v], av, bv[v]);
    }
  }
  __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 32
  for (int i = 0; i < MR; i++) {
    if (i >= mr)
      break;
    float *c = C + (size_t)i * ldc;
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
      int left = nc - 16 * v;
      if (left <= 0)
        break;
      __mmask16 k = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
      __m512 r = acc[i][v];
      if (mode == 1)
        r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(k, c + 16 * v));
      else if (beta != 0.0f)
        r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(k, c + 16 * v), r);
      _mm512_mask_storeu_ps(c + 16 * v, k, r);
    }
  }
}

// Rows [m0, m1) x panels [p0, p1) of C = A . B + beta C, B = packed panels
// (kr reduction rows, each panel_elems(kr) long) with no real columns; C's
// column 0 is panel 0's. buf: the thread's A buffer (MC x ABUF_S pairs).
static TGT void gemm_part(int m0, int m1, int p0, int p1, int kr, int no, const float *A, int lda,
                          const uint16_t *B, float beta, float *C, int ldc, uint32_t *buf) {
  size_t pstride = panel_elems(kr);
  for (int i0 = m0; i0 < m1; i0 += MC) {
    int mc = m1 - i0 < MC ? m1 - i0 : MC;
    for (int k0 = 0; k0 < kr; k0 += KC) {
      int kc = kr - k0 < KC ? kr - k0 : KC, kcp = (kc + 1) / 2;
      pack_a(buf, A + (size_t)i0 * lda + k0, lda, mc, kc);
      for (int p = p0; p < p1; p++) {
        const uint16_t *bp = B + (size_t)p * pstride + (size_t)(k0 / 2) * NR * 2;
        int nc = no - p * NR < NR ? no - p * NR : NR;
        for (int ii = 0; ii < mc; ii += MR)
          ukernel(kcp, buf + (size_t)ii * ABUF_S, bp, C + (size_t)(i0 + ii) * ldc + (size_t)p * NR,
                  ldc, mc - ii < MR ? mc - ii : MR, nc, beta, k0 > 0);
      }
    }
  }
}

// The calling thread's A buffer, MC x ABUF_S pairs, allocated at its first
// call and kept for the thread's life (OpenMP's threads persist): no
// allocation per call.
static uint32_t *thread_buffer(void) {
  static _Thread_local uint32_t *buf;
  if (!buf) {
    buf = aligned_alloc(64, sizeof(uint32_t) * MC * ABUF_S);
    if (!buf) {
      fprintf(stderr, "fpt: error: out of memory in the bf16 GEMM\n");
      exit(2);
    }
  }
  return buf;
}

// C(M, no) = A(M, kr) . B + beta C over the threads.
static void gemm(int M, int kr, int no, const float *A, int lda, const uint16_t *B, float beta,
                 float *C, int ldc) {
  if (M <= 0 || no <= 0)
    return;
  int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
  if ((double)M * no * kr < 1e6)
    nt = 1;
  int tiles = (M + MR - 1) / MR, panels = (no + NR - 1) / NR;
  if (nt <= 1) {
    gemm_part(0, M, 0, panels, kr, no, A, lda, B, beta, C, ldc, thread_buffer());
    return;
  }
  // Rows when there are enough row tiles to share; otherwise panels.
  int by_rows = tiles >= 2 * nt || tiles >= panels;
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num(), n = omp_get_num_threads();
    int len = by_rows ? tiles : panels;
    int s = (int)((long)len * t / n), e = (int)((long)len * (t + 1) / n);
    if (s < e) {
      uint32_t *buf = thread_buffer();
      if (by_rows)
        gemm_part(s * MR, e * MR < M ? e * MR : M, 0, panels, kr, no, A, lda, B, beta, C, ldc, buf);
      else
        gemm_part(0, M, s, e, kr, no, A, lda, B, beta, C, ldc, buf);
    }
  }
}

// A packed matrix exists only where the CPU has AVX512_BF16 (pack refuses
// otherwise); the layout must have been asked for.
static void need_layout(const fpt_bf16_matrix *W, int layout, const char *fn) {
  if (!(layout == FPT_BF16_NN ? W->nn : W->nt)) {
    fprintf(stderr, "fpt: internal error: %s on a matrix packed without its layout\n", fn);
    abort();
  }
}

void fpt_gemm_bf16_nn_cols(int M, int n0, int N, int K, const float *A, int lda,
                           const fpt_bf16_matrix *W, float beta, float *C, int ldc) {
  need_layout(W, FPT_BF16_NN, "fpt_gemm_bf16_nn");
  if (K != W->rows || n0 < 0 || n0 % NR || N < 0 || n0 + N > W->cols) {
    fprintf(stderr, "fpt: internal error: fpt_gemm_bf16_nn shape (K %d, columns %d+%d) against "
                    "a %d x %d matrix\n", K, n0, N, W->rows, W->cols);
    abort();
  }
  gemm(M, K, N, A, lda, W->nn + (size_t)(n0 / NR) * panel_elems(K), beta, C, ldc);
}

void fpt_gemm_bf16_nn(int M, int N, int K, const float *A, int lda, const fpt_bf16_matrix *W,
                      float beta, float *C, int ldc) {
  if (N != W->cols) {
    fprintf(stderr, "fpt: internal error: fpt_gemm_bf16_nn N %d against %d columns\n", N, W->cols);
    abort();
  }
  fpt_gemm_bf16_nn_cols(M, 0, N, K, A, lda, W, beta, C, ldc);
}

void fpt_gemm_bf16_nt(int M, int N, int K, const float *A, int lda, const fpt_bf16_matrix *W,
                      float beta, float *C, int ldc) {
  need_layout(W, FPT_BF16_NT, "fpt_gemm_bf16_nt");
  if (K != W->rows || N != W->cols) {
    fprintf(stderr, "fpt: internal error: fpt_gemm_bf16_nt shape %d x %d against a %d x %d "
                    "matrix\n", K, N, W->rows, W->cols);
    abort();
  }
  gemm(M, N, K, A, lda, W->nt, beta, C, ldc);
}
