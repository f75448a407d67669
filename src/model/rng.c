#include "fpt/rng.h"

#include <math.h>
#include <string.h>

fpt_u32x4 fpt_philox(uint64_t key, fpt_u32x4 ctr) {
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * ctr.v[0];
    uint64_t p1 = (uint64_t)0xCD9E8D57u * ctr.v[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    fpt_u32x4 n = {{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    ctr = n;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return ctr;
}

// The same rounds as fpt_philox, lane-parallel over 16 counters, so that the
// compiler can use vector 32x32->64 multiplies.
#define PHILOX_LANES 16
static void philox_lanes(uint64_t key, const fpt_stream *s, uint32_t first, uint32_t *out) {
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
      uint64_t p0 = (uint64_t)0xD2511F53u * c0[j];
      uint64_t p1 = (uint64_t)0xCD9E8D57u * c2[j];
      uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[j] ^ k0;
      uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[j] ^ k1;
      c1[j] = (uint32_t)p1;
      c3[j] = (uint32_t)p0;
      c0[j] = n0;
      c2[j] = n2;
    }
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  for (int j = 0; j < PHILOX_LANES; j++) {
    out[4 * j] = c0[j];
    out[4 * j + 1] = c1[j];
    out[4 * j + 2] = c2[j];
    out[4 * j + 3] = c3[j];
  }
}

void fpt_stream_blocks(fpt_stream s, uint32_t first, int n, uint32_t *out) {
  int j = 0;
  for (; j + PHILOX_LANES <= n; j += PHILOX_LANES)
    philox_lanes(s.key, &s, first + (uint32_t)j, out + 4 * j);
  for (; j < n; j++) {
    fpt_u32x4 b = fpt_stream_block(s, first + (uint32_t)j);
    memcpy(out + 4 * j, b.v, sizeof b.v);
  }
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
