// The bit tasks of the paper (generated on the fly): bit-xor and bit-memory.
// Their names, default sizes and options are rows of the task table
// (src/tasks/registry.c); fpt_bit_task_make resolves any generated task there.
#include <stdio.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/rng.h"
#include "fpt/task_registry.h"
#include "fpt/tasks.h"

int fpt_bit_task_make(fpt_bit_task *t, const char *name, int n_bits, int patterns, int patch) {
  const fpt_task_def *def = fpt_task_find(name);
  char names[512];
  if (!def)
    FPT_FAIL("option --task: unknown task '%s' (%s)", name, fpt_task_names(names, sizeof names, 1));
  FPT_ENSURE(def->gen_sample,
             "option --task: %s is not generated on the fly (%s are); make its "
             "file with fpt data %s and pass --data",
             name, fpt_task_names(names, sizeof names, 1), name);
  const fpt_task_args *dflt = &def->defaults;
  *t = (fpt_bit_task){def, (int)dflt->bit_length, (int)dflt->patterns, (int)dflt->patch};
  if (n_bits > 0)
    t->n_bits = n_bits;
  if (patterns > 0)
    t->patterns = patterns;
  if (patch > 0)
    t->patch = patch;
  FPT_ENSURE(t->n_bits % t->patch == 0,
             "option --bit-length: %d bits is not a multiple of --patch %d", t->n_bits, t->patch);
  // A task that does not take --patterns has exactly its default number.
  FPT_ENSURE((def->options & FPT_TAKES(PATTERNS)) || t->patterns == dflt->patterns,
             "option --patterns: %s takes exactly %d patterns", name, (int)dflt->patterns);
  return 0;
}

fpt_task_shape fpt_bit_task_shape(const fpt_bit_task *t) { return t->def->gen_shape(t); }

void fpt_bit_task_sample(const fpt_bit_task *t, uint64_t key, int split, int64_t index, float *x,
                         int32_t *y) {
  t->def->gen_sample(t, key, split, index, x, y);
}

// Rows of n_bits / patch tokens of patch bits; the last row is read out, a
// 2-way class per bit.
static fpt_task_shape bit_shape(const fpt_bit_task *t, int rows) {
  fpt_task_shape s = {0};
  s.d_in = t->patch;
  s.seq = rows * t->n_bits / t->patch;
  s.r = t->n_bits / t->patch;
  s.n_out = 2 * t->patch;
  s.n_cls = 2;
  return s;
}

fpt_task_shape fpt_bit_xor_shape(const fpt_bit_task *t) { return bit_shape(t, 2); }

// Two strings of {0,1} bits, one bit per element; target = XOR.
void fpt_bit_xor_sample(const fpt_bit_task *t, uint64_t key, int split, int64_t index, float *x,
                        int32_t *y) {
  fpt_stream s = {key, FPT_SITE_DATA, (uint32_t)split, (uint32_t)index};
  int n = t->n_bits;
  uint64_t c = 0;
  for (int i = 0; i < 2 * n; i++)
    x[i] = (float)(fpt_stream_u32(s, c++) >> 31);
  for (int i = 0; i < n; i++)
    y[i] = (int32_t)x[i] ^ (int32_t)x[n + i];
}

fpt_task_shape fpt_bit_memory_shape(const fpt_bit_task *t) { return bit_shape(t, t->patterns + 1); }

// `patterns` strings of +-1, then a copy of one of them with each bit masked
// (0) with probability 1/2; target = the unmasked bits.
void fpt_bit_memory_sample(const fpt_bit_task *t, uint64_t key, int split, int64_t index, float *x,
                           int32_t *y) {
  fpt_stream s = {key, FPT_SITE_DATA, (uint32_t)split, (uint32_t)index};
  int n = t->n_bits;
  uint64_t c = 0;
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
