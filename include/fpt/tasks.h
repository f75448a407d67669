// Synthetic tasks generated on the fly: sample i of a split is a pure function
// of (key, split, i), so any rank can produce any sample without I/O.
#ifndef FPT_TASKS_H
#define FPT_TASKS_H

#include <stdint.h>

#include "fpt/model.h"

enum { FPT_SPLIT_TRAIN = 0, FPT_SPLIT_VAL = 1, FPT_SPLIT_TEST = 2 };

typedef struct {
  int kind;     // FPT_TASK_*
  int n_bits;   // bits per pattern
  int patterns; // stored patterns (bit-memory) or operands (bit-xor: 2)
  int patch;    // bits per token
} fpt_bit_task;
enum { FPT_TASK_BIT_XOR = 1, FPT_TASK_BIT_MEMORY = 2 };

// Parse a task name with its defaults (bit-xor: 5 bits, 2 x, patch 1;
// bit-memory: 1000 bits, 5 patterns, patch 50). Nonzero n_bits/patterns/patch
// override the defaults.
int fpt_bit_task_make(fpt_bit_task *t, const char *name, int n_bits, int patterns, int patch);
fpt_task_shape fpt_bit_task_shape(const fpt_bit_task *t);
// Sample `index` of `split`: x (T, d_in) floats, y (K) int32.
void fpt_bit_task_sample(const fpt_bit_task *t, uint64_t key, int split, int64_t index, float *x,
                         int32_t *y);

#endif
