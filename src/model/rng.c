#include "fpt/rng.h"

#include <math.h>

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
