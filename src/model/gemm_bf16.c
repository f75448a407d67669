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
// fp32 panels (the frozen matrices of fp32 runs on AVX-512 CPUs): the same
// tiles and row blocks, one K pass (K <= 512 at the 12 x 128 shape; the
// panel, at most K x 128 bytes, stays in L2), A read in place (a broadcast
// per row and k: no copy of A), vfmadd231ps in place of vdpbf16ps. Against
// OpenBLAS at the Fashion-MNIST step this saves packing W on every call and
// adds the bias as C is stored: 4.6 % of a single-threaded step on Zen 4
// (docs/PERFORMANCE.md). Its sums run in k order per element, OpenBLAS's in
// its own: the same numbers up to float rounding.
//
// The file builds on any x86-64 host: the AVX-512 code carries target
// attributes and runs only after fpt_bf16_supported() or
// fpt_f32_packed_supported() said yes (pack refuses otherwise).
#define _GNU_SOURCE // syscall (the AMX permission request)
#include "fpt/gemm_bf16.h"

#include <cpuid.h>
#include <immintrin.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

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
#define MC (MB * MR) // rows per block of A (112)
#define MCX 128      // rows per block of A with AMX (4 x 32); the A buffer holds MCX rows
#define ABUF_S                                                                                     \
  (KC / 2 + 16) // pairs per row of the A buffer (1600 B: rows fall in different L1 sets)

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
  int amx = ((d >> 22) & 1) && ((d >> 24) & 1); // AMX-BF16, AMX-TILE
  __cpuid_count(7, 1, a, b, c, d);
  int bf16 = f && bw && vl && ((a >> 5) & 1);
  // AMX needs the OS to save tile state (XCR0 bits 17, 18) and, on Linux,
  // this process's permission to use it (ARCH_REQ_XCOMP_PERM, XTILEDATA):
  // process-wide, asked once, before any thread touches a tile.
  amx = amx && bf16 && (lo & 0x60000u) == 0x60000u && syscall(SYS_arch_prctl, 0x1023, 18) == 0;
  return (f && bw && vl) | bf16 << 1 | amx << 2; // bit 0: fp32 panels; 1: bf16; 2: AMX
}

static int detected(void) {
  static atomic_int cached = -1; // cpuid traps to the hypervisor on a VM: ask once
  int v = atomic_load(&cached);
  if (v < 0) {
    v = detect();
    atomic_store(&cached, v);
  }
  return v;
}

int fpt_bf16_supported(void) { return ((detected() >> 1) & 1) && !fpt_bf16_disable; }

int fpt_amx_disable = 0;

int fpt_bf16_amx(void) {
  return fpt_bf16_supported() && ((detected() >> 2) & 1) && !fpt_amx_disable;
}

const char *fpt_bf16_kernel_name(void) {
  return fpt_bf16_amx() ? "amx" : fpt_bf16_supported() ? "avx512_bf16" : "none";
}

int fpt_f32_pack_disable = 0;

int fpt_f32_packed_supported(void) { return (detected() & 1) && !fpt_f32_pack_disable; }

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

// Panels are whole multiples of 64 bytes (NR elements of 2 or 4 bytes per row).
static void *panels_alloc(size_t bytes) {
  void *p = aligned_alloc(64, bytes);
  if (!p) {
    fprintf(stderr, "fpt: error: out of memory allocating %zu bytes\n", bytes);
    exit(2);
  }
  return p;
}

static size_t panel_f32(int kr) { return (size_t)kr * NR; }

// The logical B (kr, no), element (r, c) = src[r * sr + c * sc], into
// ceil(no / NR) fp32 panels of (kr, NR).
static void pack_panels_f32(float *dst, const float *src, int kr, int no, size_t sr, size_t sc) {
  int np = (no + NR - 1) / NR;
#pragma omp parallel for schedule(static)
  for (int p = 0; p < np; p++) {
    float *d = dst + (size_t)p * panel_f32(kr);
    for (int r = 0; r < kr; r++)
      for (int j = 0; j < NR; j++) {
        int c = p * NR + j;
        d[(size_t)r * NR + j] = c < no ? src[(size_t)r * sr + (size_t)c * sc] : 0.0f;
      }
  }
}

// The layouts of w asked for, in panels of bf16 pairs or of fp32: nn from W
// (rows, cols), nt from W^T (cols, rows). m was zeroed by the caller.
static int pack(fpt_bf16_matrix *m, const float *w, int rows, int cols, int layouts, int f32) {
  FPT_ENSURE(rows > 0 && cols > 0, "frozen matrix pack: bad shape %d x %d", rows, cols);
  FPT_ENSURE(layouts >= 1 && layouts <= FPT_BF16_BOTH, "frozen matrix pack: bad layouts %d",
             layouts);
  m->rows = rows;
  m->cols = cols;
  m->layouts = layouts;
  m->f32 = f32;
  size_t es = f32 ? sizeof(float) : sizeof(uint16_t);
  for (int t = 0; t < 2; t++) {
    if (!(layouts & (t ? FPT_BF16_NT : FPT_BF16_NN)))
      continue;
    int kr = t ? cols : rows, no = t ? rows : cols;
    size_t sr = t ? 1 : (size_t)cols, sc = t ? (size_t)cols : 1;
    size_t n = (size_t)((no + NR - 1) / NR) * (f32 ? panel_f32(kr) : panel_elems(kr));
    void *d = panels_alloc(n * es);
    if (f32)
      pack_panels_f32(d, w, kr, no, sr, sc);
    else
      pack_panels(d, w, kr, no, sr, sc);
    if (f32)
      *(t ? &m->nt32 : &m->nn32) = d;
    else
      *(t ? &m->nt : &m->nn) = d;
    m->bytes += n * es;
  }
  return 0;
}

int fpt_bf16_pack_layouts(fpt_bf16_matrix *m, const float *w, int rows, int cols, int layouts) {
  memset(m, 0, sizeof *m);
  FPT_ENSURE(fpt_bf16_supported(),
             "bf16 frozen weights need a CPU with AVX512_BF16 (and AVX512F/BW/VL, zmm state "
             "enabled by the OS); this one has not");
  return pack(m, w, rows, cols, layouts, 0);
}

int fpt_f32_pack_layouts(fpt_bf16_matrix *m, const float *w, int rows, int cols, int layouts) {
  memset(m, 0, sizeof *m);
  FPT_ENSURE(fpt_f32_packed_supported(),
             "fp32 packed frozen weights need a CPU with AVX-512F/BW/VL (zmm state enabled by "
             "the OS); this one has not");
  return pack(m, w, rows, cols, layouts, 1);
}

int fpt_bf16_pack(fpt_bf16_matrix *m, const float *w, int rows, int cols) {
  return fpt_bf16_pack_layouts(m, w, rows, cols, FPT_BF16_BOTH);
}

void fpt_bf16_free(fpt_bf16_matrix *m) {
  free(m->nn);
  free(m->nt);
  free(m->nn32);
  free(m->nt32);
  memset(m, 0, sizeof *m);
}

float fpt_bf16_get(const fpt_bf16_matrix *m, int k, int n) {
  if (m->nn32)
    return m->nn32[(size_t)(n / NR) * panel_f32(m->rows) + (size_t)k * NR + n % NR];
  if (m->nt32)
    return m->nt32[(size_t)(k / NR) * panel_f32(m->cols) + (size_t)n * NR + k % NR];
  if (m->nn)
    return fpt_bf16_to_float(m->nn[(size_t)(n / NR) * panel_elems(m->rows) +
                                   ((size_t)(k / 2) * NR + n % NR) * 2 + k % 2]);
  return fpt_bf16_to_float(
      m->nt[(size_t)(k / NR) * panel_elems(m->cols) + ((size_t)(n / 2) * NR + k % NR) * 2 + n % 2]);
}

// --- Kernels ---

// Rows [0, mc) of A (row stride lda), columns [0, kc), to bf16 pairs: row i at
// buf + i * ABUF_S, pair q = (A[i][2q], A[i][2q+1]); zero past kc (an odd kc
// pairs its last element with 0), and rows [mc, mpad) are zero.
static TGT void pack_a(uint32_t *buf, const float *A, int lda, int mc, int mpad, int kc) {
  int kcp = (kc + 1) / 2;
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

#define TGT512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

// What a GEMM does with its product (C = A . B + bias + beta C): the bias of
// C's columns (from the call's column 0; NULL: none) and beta (0: C not read).
typedef struct {
  const float *bias;
  float beta;
} epi;

// The epilogue of every kernel, on one row c of C, columns [0, nc): mode 0:
// c = acc + bias + beta c; mode 1 (a later K panel): c += acc. acc + bias
// rounds once, as fmadd(1, bias, acc) did when the bias was copied into C
// first: the same bits.
static inline __attribute__((always_inline)) TGT512 void store_row(const __m512 acc[NV], float *c,
                                                                   int nc, const epi *e, int mode) {
#pragma GCC unroll 8
  for (int v = 0; v < NV; v++) {
    int left = nc - 16 * v;
    if (left <= 0)
      break;
    __mmask16 k = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
    __m512 r = acc[v];
    if (mode == 1) {
      r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(k, c + 16 * v));
    } else {
      if (e->bias)
        r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(k, e->bias + 16 * v));
      if (e->beta != 0.0f)
        r = _mm512_fmadd_ps(_mm512_set1_ps(e->beta), _mm512_maskz_loadu_ps(k, c + 16 * v), r);
    }
    _mm512_mask_storeu_ps(c + 16 * v, k, r);
  }
}

// The same on rows [0, mr) of a tile held in zmm registers.
static inline __attribute__((always_inline)) TGT512 void
store_tile(__m512 acc[MR][NV], float *C, int ldc, int mr, int nc, const epi *e, int mode) {
#pragma GCC unroll 32
  for (int i = 0; i < MR; i++) {
    if (i >= mr)
      break;
    store_row(acc[i], C + (size_t)i * ldc, nc, e, mode);
  }
}

// C tile (mr <= MR rows, nc <= NR columns) = or += the product of kcp pairs:
// a (MR rows of the A buffer) and b (kcp x NR x 2 of a panel); the tile's
// epilogue e (its bias from the tile's column 0), mode as store_tile's.
static TGT void ukernel(int kcp, const uint32_t *a, const uint16_t *b, float *C, int ldc, int mr,
                        int nc, const epi *e, int mode) {
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
  store_tile(acc, C, ldc, mr, nc, e, mode);
}

// --- AMX (Intel CPUs with AMX-BF16: the same panels, 16 x 16 tiles) ---
//
// A tile is 16 rows of 16 bf16 pairs (64 bytes); tdpbf16ps multiplies a tile
// of A by a tile of 16 pairs x 16 columns of B, which is exactly 16 rows of
// half a packed panel (row stride NR x 2 x 2 = 128 bytes). Each call makes a
// 32 x 32 block of C in tiles 0-3 from A in tiles 4-5 and B in 6-7. The
// gcc 12 intrinsics' asm has no memory operands for the data they touch, so
// these wrappers declare "memory".
#define AMXTGT __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq")))
#define TLOAD(t, p, stride)                                                                        \
  __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #t ::"r"(p), "r"((long)(stride)) : "memory")
#define TSTORE(t, p, stride)                                                                       \
  __asm__ volatile("tilestored %%tmm" #t ", (%0,%1,1)" ::"r"(p), "r"((long)(stride)) : "memory")
#define TZERO(t) __asm__ volatile("tilezero %%tmm" #t ::)
#define TDP(c, a, b) __asm__ volatile("tdpbf16ps %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::)

// Eight tiles of 16 rows x 64 bytes (palette 1), loaded per thread per call
// and released after it, so that an idle thread carries no tile state.
static AMXTGT void amx_begin(void) {
  _Alignas(64) uint8_t cfg[64] = {1};
  for (int t = 0; t < 8; t++) {
    cfg[16 + 2 * t] = 64; // bytes per row (little-endian uint16)
    cfg[48 + t] = 16;     // rows
  }
  __asm__ volatile("ldtilecfg %0" ::"m"(cfg) : "memory");
}
static AMXTGT void amx_end(void) { __asm__ volatile("tilerelease" ::: "memory"); }

// The 32 x 32 block (rows [0, mr) and columns [0, nc) kept) of C = or += the
// product of kcp pairs (a multiple of 16): a (32 rows of the A buffer) and b
// (a panel's kcp x NR x 2), with the epilogue e and mode of store_row.
static AMXTGT void ukernel_amx(int kcp, const uint32_t *a, const uint16_t *b, float *C, int ldc,
                               int mr, int nc, const epi *e, int mode) {
  _Alignas(64) float t[32][NR];
  const long as = ABUF_S * 4, bs = NR * 2 * 2;
  TZERO(0);
  TZERO(1);
  TZERO(2);
  TZERO(3);
  for (int q = 0; q < kcp; q += 16) {
    TLOAD(4, a + q, as);
    TLOAD(5, a + 16 * ABUF_S + q, as);
    TLOAD(6, b + (size_t)q * NR * 2, bs);
    TLOAD(7, b + (size_t)q * NR * 2 + 32, bs);
    TDP(0, 4, 6);
    TDP(1, 4, 7);
    TDP(2, 5, 6);
    TDP(3, 5, 7);
  }
  TSTORE(0, &t[0][0], sizeof t[0]);
  TSTORE(1, &t[0][16], sizeof t[0]);
  TSTORE(2, &t[16][0], sizeof t[0]);
  TSTORE(3, &t[16][16], sizeof t[0]);
  for (int i = 0; i < mr && i < 32; i++) {
    __m512 r[NV];
    for (int v = 0; v < NV; v++)
      r[v] = _mm512_load_ps(&t[i][16 * v]);
    store_row(r, C + (size_t)i * ldc, nc, e, mode);
  }
}

// Rows [m0, m1) x panels [p0, p1) of C = A . B + bias + beta C, B = packed
// panels (kr reduction rows, each panel_elems(kr) long) with no real columns;
// C's column 0 is panel 0's. buf: the thread's A buffer (MCX x ABUF_S pairs).
// amx: 32 x 32 blocks by tiles (kr a multiple of 32); otherwise 14 x 32 tiles
// in zmm registers.
static TGT void gemm_part(int m0, int m1, int p0, int p1, int kr, int no, const float *A, int lda,
                          const uint16_t *B, const epi *e, float *C, int ldc, uint32_t *buf,
                          int amx) {
  size_t pstride = panel_elems(kr);
  int mb = amx ? MCX : MC, mt = amx ? 32 : MR;
  if (amx)
    amx_begin();
  for (int i0 = m0; i0 < m1; i0 += mb) {
    int mc = m1 - i0 < mb ? m1 - i0 : mb;
    for (int k0 = 0; k0 < kr; k0 += KC) {
      int kc = kr - k0 < KC ? kr - k0 : KC, kcp = (kc + 1) / 2;
      pack_a(buf, A + (size_t)i0 * lda + k0, lda, mc, (mc + mt - 1) / mt * mt, kc);
      for (int p = p0; p < p1; p++) {
        const uint16_t *bp = B + (size_t)p * pstride + (size_t)(k0 / 2) * NR * 2;
        int nc = no - p * NR < NR ? no - p * NR : NR;
        epi ep = {e->bias ? e->bias + (size_t)p * NR : NULL, e->beta};
        for (int ii = 0; ii < mc; ii += mt) {
          const uint32_t *a = buf + (size_t)ii * ABUF_S;
          float *c = C + (size_t)(i0 + ii) * ldc + (size_t)p * NR;
          if (amx)
            ukernel_amx(kcp, a, bp, c, ldc, mc - ii, nc, &ep, k0 > 0);
          else
            ukernel(kcp, a, bp, c, ldc, mc - ii < MR ? mc - ii : MR, nc, &ep, k0 > 0);
        }
      }
    }
  }
  if (amx)
    amx_end();
}

// fp32 panels: C tile (mr <= MR rows, nc <= NR columns) = acc + bias + beta
// C (store_tile), acc = rows [0, mr) of A (stride lda, kc long) . a panel
// (kc, NR). A is read in place, one broadcast per row and k; rows past mr read
// row mr - 1 again, so that the loop keeps its fixed shape (their sums are
// dropped).
static TGT512 void ukernel_f32(int kc, const float *a, int lda, const float *b, float *C, int ldc,
                               int mr, int nc, const epi *e) {
  __m512 acc[MR][NV];
  const float *ar[MR];
#pragma GCC unroll 32
  for (int i = 0; i < MR; i++) {
    ar[i] = a + (size_t)(i < mr ? i : mr - 1) * lda;
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++)
      acc[i][v] = _mm512_setzero_ps();
  }
  for (int k = 0; k < kc; k++) {
    __m512 bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++)
      bv[v] = _mm512_load_ps(b + (size_t)k * NR + 16 * v);
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++) {
      __m512 av = _mm512_set1_ps(ar[i][k]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++)
        acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
    }
  }
  store_tile(acc, C, ldc, mr, nc, e, 0);
}

// Rows [m0, m1) x panels [p0, p1) of C = A . B + bias + beta C, B = fp32
// panels of kr rows: blocks of MC rows of A (from L2) against each panel (L1).
static void gemm_part_f32(int m0, int m1, int p0, int p1, int kr, int no, const float *A, int lda,
                          const float *B, const epi *e, float *C, int ldc) {
  for (int i0 = m0; i0 < m1; i0 += MC) {
    int mc = m1 - i0 < MC ? m1 - i0 : MC;
    for (int p = p0; p < p1; p++) {
      int nc = no - p * NR < NR ? no - p * NR : NR;
      epi ep = {e->bias ? e->bias + (size_t)p * NR : NULL, e->beta};
      for (int ii = 0; ii < mc; ii += MR)
        ukernel_f32(kr, A + (size_t)(i0 + ii) * lda, lda, B + (size_t)p * panel_f32(kr),
                    C + (size_t)(i0 + ii) * ldc + (size_t)p * NR, ldc, mc - ii < MR ? mc - ii : MR,
                    nc, &ep);
    }
  }
}

// The calling thread's A buffer, MCX x ABUF_S pairs, allocated at its first
// call and kept for the thread's life (OpenMP's threads persist): no
// allocation per call.
static uint32_t *thread_buffer(void) {
  static _Thread_local uint32_t *buf;
  if (!buf) {
    buf = aligned_alloc(64, sizeof(uint32_t) * MCX * ABUF_S);
    if (!buf) {
      fprintf(stderr, "fpt: error: out of memory in the bf16 GEMM\n");
      exit(2);
    }
  }
  return buf;
}

// Rows [m0, m1) x panels [p0, p1) of either kind of panels.
static void part(int m0, int m1, int p0, int p1, int kr, int no, const float *A, int lda,
                 const void *B, int f32, const epi *e, float *C, int ldc) {
  if (f32)
    gemm_part_f32(m0, m1, p0, p1, kr, no, A, lda, B, e, C, ldc);
  else
    gemm_part(m0, m1, p0, p1, kr, no, A, lda, B, e, C, ldc, thread_buffer(),
              kr % 32 == 0 && fpt_bf16_amx());
}

// C(M, no) = A(M, kr) . B + bias + beta C over the threads (B: bf16 or fp32
// panels).
static void gemm(int M, int kr, int no, const float *A, int lda, const void *B, int f32,
                 const epi *ep, float *C, int ldc) {
  if (M <= 0 || no <= 0)
    return;
  int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
  if ((double)M * no * kr < 1e6)
    nt = 1;
  int tiles = (M + MR - 1) / MR, panels = (no + NR - 1) / NR;
  if (nt <= 1) {
    part(0, M, 0, panels, kr, no, A, lda, B, f32, ep, C, ldc);
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
      if (by_rows)
        part(s * MR, e * MR < M ? e * MR : M, 0, panels, kr, no, A, lda, B, f32, ep, C, ldc);
      else
        part(0, M, s, e, kr, no, A, lda, B, f32, ep, C, ldc);
    }
  }
}

// A packed matrix exists only where the CPU has AVX512_BF16 (pack refuses
// otherwise); the layout must have been asked for.
static void need_layout(const fpt_bf16_matrix *W, int layout, const char *fn) {
  if (!(layout == FPT_BF16_NN ? W->nn || W->nn32 : W->nt || W->nt32)) {
    fprintf(stderr, "fpt: internal error: %s on a matrix packed without its layout\n", fn);
    abort();
  }
}

void fpt_gemm_bf16_nn_cols(int M, int n0, int N, int K, const float *A, int lda,
                           const fpt_bf16_matrix *W, const float *bias, float beta, float *C,
                           int ldc) {
  need_layout(W, FPT_BF16_NN, "fpt_gemm_bf16_nn");
  if (K != W->rows || n0 < 0 || n0 % NR || N < 0 || n0 + N > W->cols) {
    fprintf(stderr,
            "fpt: internal error: fpt_gemm_bf16_nn shape (K %d, columns %d+%d) against "
            "a %d x %d matrix\n",
            K, n0, N, W->rows, W->cols);
    abort();
  }
  epi e = {bias, beta};
  if (W->f32)
    gemm(M, K, N, A, lda, W->nn32 + (size_t)(n0 / NR) * panel_f32(K), 1, &e, C, ldc);
  else
    gemm(M, K, N, A, lda, W->nn + (size_t)(n0 / NR) * panel_elems(K), 0, &e, C, ldc);
}

void fpt_gemm_bf16_nn(int M, int N, int K, const float *A, int lda, const fpt_bf16_matrix *W,
                      float beta, float *C, int ldc) {
  if (N != W->cols) {
    fprintf(stderr, "fpt: internal error: fpt_gemm_bf16_nn N %d against %d columns\n", N, W->cols);
    abort();
  }
  fpt_gemm_bf16_nn_cols(M, 0, N, K, A, lda, W, NULL, beta, C, ldc);
}

void fpt_gemm_bf16_nt(int M, int N, int K, const float *A, int lda, const fpt_bf16_matrix *W,
                      float beta, float *C, int ldc) {
  need_layout(W, FPT_BF16_NT, "fpt_gemm_bf16_nt");
  if (K != W->rows || N != W->cols) {
    fprintf(stderr,
            "fpt: internal error: fpt_gemm_bf16_nt shape %d x %d against a %d x %d "
            "matrix\n",
            K, N, W->rows, W->cols);
    abort();
  }
  epi e = {NULL, beta};
  gemm(M, N, K, A, lda, W->f32 ? (const void *)W->nt32 : W->nt, W->f32, &e, C, ldc);
}
