#include <string.h>

#include "fpt/check.h"
#include "fpt/rng.h"
#include "fpt/tasks.h"

int fpt_bit_task_make(fpt_bit_task *t, const char *name, int n_bits, int patterns, int patch) {
  if (!strcmp(name, "bit-xor"))
    *t = (fpt_bit_task){FPT_TASK_BIT_XOR, 5, 2, 1};
  else if (!strcmp(name, "bit-memory"))
    *t = (fpt_bit_task){FPT_TASK_BIT_MEMORY, 1000, 5, 50};
  else
    FPT_FAIL("option --task: unknown task '%s' (bit-xor, bit-memory)", name);
  if (n_bits > 0)
    t->n_bits = n_bits;
  if (patterns > 0)
    t->patterns = patterns;
  if (patch > 0)
    t->patch = patch;
  FPT_ENSURE(t->n_bits % t->patch == 0,
             "option --bit-length: %d bits is not a multiple of --patch %d", t->n_bits, t->patch);
  FPT_ENSURE(t->kind != FPT_TASK_BIT_XOR || t->patterns == 2,
             "option --patterns: bit-xor takes exactly 2 patterns");
  return 0;
}

fpt_task_shape fpt_bit_task_shape(const fpt_bit_task *t) {
  int rows = t->kind == FPT_TASK_BIT_XOR ? 2 : t->patterns + 1;
  fpt_task_shape s = {0};
  s.d_in = t->patch;
  s.seq = rows * t->n_bits / t->patch;
  s.r = t->n_bits / t->patch;
  s.n_out = 2 * t->patch;
  s.n_cls = 2;
  return s;
}

void fpt_bit_task_sample(const fpt_bit_task *t, uint64_t key, int split, int64_t index, float *x,
                         int32_t *y) {
  fpt_stream s = {key, FPT_SITE_DATA, (uint32_t)split, (uint32_t)index};
  int n = t->n_bits;
  uint64_t c = 0;
  if (t->kind == FPT_TASK_BIT_XOR) {
    // Two strings of {0,1} bits, one bit per element; target = XOR.
    for (int i = 0; i < 2 * n; i++)
      x[i] = (float)(fpt_stream_u32(s, c++) >> 31);
    for (int i = 0; i < n; i++)
      y[i] = (int32_t)x[i] ^ (int32_t)x[n + i];
    return;
  }
  // bit-memory: `patterns` strings of +-1, then a copy of one of them with
  // each bit masked (0) with probability 1/2; target = the unmasked bits.
  int P = t->patterns;
  for (int i = 0; i < P * n; i++)
    x[i] = (fpt_stream_u32(s, c++) >> 31) ? 1.0f : -1.0f;
  int q = (int)(((uint64_t)fpt_stream_u32(s, c++) * (uint64_t)P) >> 32);
  for (int i = 0; i < n; i++) {
    float v = x[q * n + i];
    int keep = (int)(fpt_stream_u32(s, c++) >> 31);
    x[P * n + i] = keep ? v : 0.0f;
    y[i] = v > 0 ? 1 : 0;
  }
}
