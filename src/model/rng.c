#include "fpt/rng.h"

#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Philox4x32-10's multipliers and Weyl key increments.
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

fpt_u32x4 fpt_philox(uint64_t key, fpt_u32x4 ctr) {
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * ctr.v[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * ctr.v[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    fpt_u32x4 n = {{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    ctr = n;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  return ctr;
}

// The same rounds as fpt_philox, lane-parallel over 16 counters, in portable
// C (the reference for the two kernels below, and the path of other CPUs).
#define PHILOX_LANES 16
static void philox_lanes_ref(uint64_t key, const fpt_stream *s, uint32_t first, uint32_t *out) {
  uint32_t c0[PHILOX_LANES], c1[PHILOX_LANES], c2[PHILOX_LANES], c3[PHILOX_LANES];
  for (int j = 0; j < PHILOX_LANES; j++) {
    c0[j] = first + (uint32_t)j;
    c1[j] = s->site;
    c2[j] = s->a;
    c3[j] = s->b;
  }
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  for (int r = 0; r < 10; r++) {
#pragma omp simd
    for (int j = 0; j < PHILOX_LANES; j++) {
      uint64_t p0 = (uint64_t)PHILOX_M0 * c0[j];
      uint64_t p1 = (uint64_t)PHILOX_M1 * c2[j];
      uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[j] ^ k0;
      uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[j] ^ k1;
      c1[j] = (uint32_t)p1;
      c3[j] = (uint32_t)p0;
      c0[j] = n0;
      c2[j] = n2;
    }
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  for (int j = 0; j < PHILOX_LANES; j++) {
    out[4 * j] = c0[j];
    out[4 * j + 1] = c1[j];
    out[4 * j + 2] = c2[j];
    out[4 * j + 3] = c3[j];
  }
}

#if defined(__x86_64__)
// GCC vectorises the loop above with 64-bit lanes and repacks every round: 9 ns
// a block on the Intel Xeon of docs/PERFORMANCE.md, 6.5 % of the Fashion-MNIST
// step. These kernels keep 32-bit lanes and form the high and low halves of
// the 32x32 products from even and odd vpmuludq (same bits, fewer shuffles).
#define T512 __attribute__((target("avx512f")))
#define T256 __attribute__((target("avx2")))

T512 static inline void mulhilo16(__m512i x, __m512i m, __m512i *hi, __m512i *lo) {
  __m512i ev = _mm512_mul_epu32(x, m);                                      // lanes 0, 2, ...
  __m512i od = _mm512_mul_epu32(_mm512_shuffle_epi32(x, _MM_PERM_CDAB), m); // lanes 1, 3, ...
  // Swapping the halves of each 64-bit product is a shuffle (port 5), not a
  // shift (port 0, where the multiplies queue).
  *hi = _mm512_mask_shuffle_epi32(od, 0x5555, ev, _MM_PERM_CDAB);
  *lo = _mm512_mask_shuffle_epi32(ev, 0xAAAA, od, _MM_PERM_CDAB);
}

// G independent groups of 16 blocks (G a constant after inlining): a round
// is a chain of dependent multiplies, and several groups hide its latency.
T512 static inline __attribute__((always_inline)) void
philox_avx512_groups(uint64_t key, const fpt_stream *s, uint32_t first, uint32_t *out,
                     const int G) {
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i m0 = _mm512_set1_epi32((int)PHILOX_M0), m1 = _mm512_set1_epi32((int)PHILOX_M1);
  __m512i c0[4], c1[4], c2[4], c3[4];
  for (int g = 0; g < G; g++) {
    c0[g] = _mm512_add_epi32(_mm512_set1_epi32((int)(first + 16u * (uint32_t)g)), iota);
    c1[g] = _mm512_set1_epi32((int)s->site);
    c2[g] = _mm512_set1_epi32((int)s->a);
    c3[g] = _mm512_set1_epi32((int)s->b);
  }
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  for (int r = 0; r < 10; r++) {
    __m512i kk0 = _mm512_set1_epi32((int)k0), kk1 = _mm512_set1_epi32((int)k1);
    for (int g = 0; g < G; g++) {
      __m512i hi0, lo0, hi1, lo1;
      mulhilo16(c0[g], m0, &hi0, &lo0);
      mulhilo16(c2[g], m1, &hi1, &lo1);
      c0[g] = _mm512_ternarylogic_epi32(hi1, c1[g], kk0, 0x96); // a ^ b ^ c
      c2[g] = _mm512_ternarylogic_epi32(hi0, c3[g], kk1, 0x96);
      c1[g] = lo1;
      c3[g] = lo0;
    }
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  for (int g = 0; g < G; g++) {
    // 4 x 16 -> 16 x 4: u_i holds block 4l + i in 128-bit lane l.
    __m512i t0 = _mm512_unpacklo_epi32(c0[g], c1[g]), t1 = _mm512_unpackhi_epi32(c0[g], c1[g]);
    __m512i t2 = _mm512_unpacklo_epi32(c2[g], c3[g]), t3 = _mm512_unpackhi_epi32(c2[g], c3[g]);
    __m512i u0 = _mm512_unpacklo_epi64(t0, t2), u1 = _mm512_unpackhi_epi64(t0, t2);
    __m512i u2 = _mm512_unpacklo_epi64(t1, t3), u3 = _mm512_unpackhi_epi64(t1, t3);
    __m512i s0 = _mm512_shuffle_i32x4(u0, u1, _MM_SHUFFLE(1, 0, 1, 0));
    __m512i s1 = _mm512_shuffle_i32x4(u2, u3, _MM_SHUFFLE(1, 0, 1, 0));
    __m512i s2 = _mm512_shuffle_i32x4(u0, u1, _MM_SHUFFLE(3, 2, 3, 2));
    __m512i s3 = _mm512_shuffle_i32x4(u2, u3, _MM_SHUFFLE(3, 2, 3, 2));
    uint32_t *o = out + 64 * g;
    _mm512_storeu_si512(o, _mm512_shuffle_i32x4(s0, s1, _MM_SHUFFLE(2, 0, 2, 0)));
    _mm512_storeu_si512(o + 16, _mm512_shuffle_i32x4(s0, s1, _MM_SHUFFLE(3, 1, 3, 1)));
    _mm512_storeu_si512(o + 32, _mm512_shuffle_i32x4(s2, s3, _MM_SHUFFLE(2, 0, 2, 0)));
    _mm512_storeu_si512(o + 48, _mm512_shuffle_i32x4(s2, s3, _MM_SHUFFLE(3, 1, 3, 1)));
  }
}

T512 static void philox_lanes_avx512(uint64_t key, const fpt_stream *s, uint32_t first,
                                     uint32_t *out) {
  philox_avx512_groups(key, s, first, out, 1);
}

T512 static void philox_wide_avx512(uint64_t key, const fpt_stream *s, uint32_t first,
                                    uint32_t *out) {
  philox_avx512_groups(key, s, first, out, 4);
}

T256 static inline void mulhilo8(__m256i x, __m256i m, __m256i *hi, __m256i *lo) {
  __m256i ev = _mm256_mul_epu32(x, m);
  __m256i od = _mm256_mul_epu32(_mm256_shuffle_epi32(x, 0xB1), m);
  *hi = _mm256_blend_epi32(_mm256_shuffle_epi32(ev, 0xB1), od, 0xAA);
  *lo = _mm256_blend_epi32(ev, _mm256_shuffle_epi32(od, 0xB1), 0xAA);
}

// Two groups of 8 blocks, first.. into out (64 values).
T256 static void philox_lanes_avx2(uint64_t key, const fpt_stream *s, uint32_t first,
                                   uint32_t *out) {
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i m0 = _mm256_set1_epi32((int)PHILOX_M0), m1 = _mm256_set1_epi32((int)PHILOX_M1);
  __m256i c0[2], c1[2], c2[2], c3[2];
  for (int g = 0; g < 2; g++) {
    c0[g] = _mm256_add_epi32(_mm256_set1_epi32((int)(first + 8u * (uint32_t)g)), iota);
    c1[g] = _mm256_set1_epi32((int)s->site);
    c2[g] = _mm256_set1_epi32((int)s->a);
    c3[g] = _mm256_set1_epi32((int)s->b);
  }
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  for (int r = 0; r < 10; r++) {
    __m256i kk0 = _mm256_set1_epi32((int)k0), kk1 = _mm256_set1_epi32((int)k1);
    for (int g = 0; g < 2; g++) {
      __m256i hi0, lo0, hi1, lo1;
      mulhilo8(c0[g], m0, &hi0, &lo0);
      mulhilo8(c2[g], m1, &hi1, &lo1);
      c0[g] = _mm256_xor_si256(_mm256_xor_si256(hi1, c1[g]), kk0);
      c2[g] = _mm256_xor_si256(_mm256_xor_si256(hi0, c3[g]), kk1);
      c1[g] = lo1;
      c3[g] = lo0;
    }
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  for (int g = 0; g < 2; g++) {
    // 4 x 8 -> 8 x 4: u_i holds blocks i and 4 + i.
    __m256i t0 = _mm256_unpacklo_epi32(c0[g], c1[g]), t1 = _mm256_unpackhi_epi32(c0[g], c1[g]);
    __m256i t2 = _mm256_unpacklo_epi32(c2[g], c3[g]), t3 = _mm256_unpackhi_epi32(c2[g], c3[g]);
    __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
    __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
    __m256i *o = (__m256i *)(out + 32 * g);
    _mm256_storeu_si256(o, _mm256_permute2x128_si256(u0, u1, 0x20));
    _mm256_storeu_si256(o + 1, _mm256_permute2x128_si256(u2, u3, 0x20));
    _mm256_storeu_si256(o + 2, _mm256_permute2x128_si256(u0, u1, 0x31));
    _mm256_storeu_si256(o + 3, _mm256_permute2x128_si256(u2, u3, 0x31));
  }
}
#endif

// A kernel: blocks in wide batches (wide_n of them), then in batches of
// PHILOX_LANES, then one by one.
typedef void (*lanes_fn)(uint64_t key, const fpt_stream *s, uint32_t first, uint32_t *out);
typedef struct {
  lanes_fn wide, lanes;
  int wide_n;
} philox_kernel;

static int isa_supported(int isa) {
  switch (isa) {
  case FPT_RNG_PORTABLE:
    return 1;
#if defined(__x86_64__)
  case FPT_RNG_AVX2:
    return __builtin_cpu_supports("avx2");
  case FPT_RNG_AVX512:
    return __builtin_cpu_supports("avx512f");
#endif
  }
  return 0;
}

// The fastest kernel this CPU runs, once; FPT_RNG_KERNEL=portable|avx2|avx512
// in the environment picks one for A/B timing (same bits whichever runs).
static int best_isa(void) {
  static _Atomic int best = -2;
  int b = atomic_load(&best);
  if (b != -2)
    return b;
  const char *names[] = {"portable", "avx2", "avx512"};
  const char *want = getenv("FPT_RNG_KERNEL");
  b = FPT_RNG_PORTABLE;
  for (int i = FPT_RNG_AVX512; i > FPT_RNG_PORTABLE; i--)
    if (isa_supported(i)) {
      b = i;
      break;
    }
  if (want && *want) {
    int w = -1;
    for (int i = FPT_RNG_PORTABLE; i <= FPT_RNG_AVX512; i++)
      if (strcmp(want, names[i]) == 0 && isa_supported(i))
        w = i;
    if (w < 0)
      fprintf(stderr, "fpt: FPT_RNG_KERNEL=%s is not a Philox kernel this CPU runs: using %s\n",
              want, names[b]);
    else
      b = w;
  }
  atomic_store(&best, b);
  return b;
}

static int kernel_for(int isa, philox_kernel *k) {
  if (isa == FPT_RNG_BEST)
    isa = best_isa();
  if (!isa_supported(isa))
    return -1;
  *k = (philox_kernel){philox_lanes_ref, philox_lanes_ref, PHILOX_LANES};
#if defined(__x86_64__)
  if (isa == FPT_RNG_AVX2)
    *k = (philox_kernel){philox_lanes_avx2, philox_lanes_avx2, PHILOX_LANES};
  if (isa == FPT_RNG_AVX512)
    *k = (philox_kernel){philox_wide_avx512, philox_lanes_avx512, 4 * PHILOX_LANES};
#endif
  return 0;
}

int fpt_stream_blocks_isa(fpt_stream s, uint32_t first, int n, uint32_t *out, int isa) {
  philox_kernel k;
  if (kernel_for(isa, &k) != 0)
    return -1;
  int j = 0;
  for (; j + k.wide_n <= n; j += k.wide_n)
    k.wide(s.key, &s, first + (uint32_t)j, out + 4 * j);
  for (; j + PHILOX_LANES <= n; j += PHILOX_LANES)
    k.lanes(s.key, &s, first + (uint32_t)j, out + 4 * j);
  // A short tail (an attention row of 49 keys is 13 blocks) costs less as one
  // vector batch, of which only the first n - j blocks are kept.
  if (n - j >= 4) {
    uint32_t tail[4 * PHILOX_LANES];
    k.lanes(s.key, &s, first + (uint32_t)j, tail);
    memcpy(out + 4 * j, tail, sizeof(uint32_t) * 4 * (size_t)(n - j));
    j = n;
  }
  for (; j < n; j++) {
    fpt_u32x4 b = fpt_stream_block(s, first + (uint32_t)j);
    memcpy(out + 4 * j, b.v, sizeof b.v);
  }
  return 0;
}

void fpt_stream_blocks(fpt_stream s, uint32_t first, int n, uint32_t *out) {
  fpt_stream_blocks_isa(s, first, n, out, FPT_RNG_BEST);
}

uint32_t fpt_stream_u32(fpt_stream s, uint64_t i) {
  return fpt_stream_block(s, (uint32_t)(i >> 2)).v[i & 3];
}

float fpt_stream_uniform(fpt_stream s, uint64_t i) {
  return (float)(fpt_stream_u32(s, i) >> 8) * (1.0f / 16777216.0f);
}

double fpt_stream_normal(fpt_stream s, uint64_t i) {
  // One block gives one (u1, u2) pair, i.e. two normals: r cos(t) and r sin(t).
  fpt_u32x4 b = fpt_stream_block(s, (uint32_t)(i >> 1));
  const uint64_t m53 = (1ull << 53) - 1;
  uint64_t a = (((uint64_t)b.v[0] << 21) ^ b.v[1]) & m53;
  uint64_t c = (((uint64_t)b.v[2] << 21) ^ b.v[3]) & m53;
  double u1 = ((double)a + 0.5) / 9007199254740992.0;
  double u2 = (double)c / 9007199254740992.0;
  double r = sqrt(-2.0 * log(u1)), t = 6.283185307179586 * u2;
  return (i & 1) ? r * sin(t) : r * cos(t);
}

void fpt_shuffle(int64_t *v, int64_t n, fpt_stream s) {
  for (int64_t i = n - 1; i > 0; i--) {
    uint64_t r = ((uint64_t)fpt_stream_u32(s, 2 * (uint64_t)i) << 32) |
                 fpt_stream_u32(s, 2 * (uint64_t)i + 1);
    int64_t j = (int64_t)(r % (uint64_t)(i + 1));
    int64_t t = v[i];
    v[i] = v[j];
    v[j] = t;
  }
}
