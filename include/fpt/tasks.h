// Synthetic tasks generated on the fly: sample i of a split is a pure function
// of (key, split, i), so any rank can produce any sample without I/O. Which
// tasks are generated, their default sizes and samplers: the task table
// (fpt/task_registry.h, src/tasks/registry.c).
#ifndef FPT_TASKS_H
#define FPT_TASKS_H

#include <stdint.h>

#include "fpt/dataset.h"
#include "fpt/model.h"

// Splits are FPT_TRAIN, FPT_VAL, FPT_TEST (fpt/dataset.h): one enum.

struct fpt_task_def;
// A generated task with its sizes.
typedef struct {
  const struct fpt_task_def *def; // its row in the task table
  int n_bits;                     // bits per pattern
  int patterns;                   // stored patterns (bit-memory) or operands (bit-xor: 2)
  int patch;                      // bits per token
} fpt_bit_task;

// A generated task by name, with its row's defaults (bit-xor: 5 bits, 2
// patterns, patch 1; bit-memory: 1000 bits, 5 patterns, patch 50); nonzero
// n_bits/patterns/patch override them. Errors name the option (--task,
// --bit-length, --patterns).
int fpt_bit_task_make(fpt_bit_task *t, const char *name, int n_bits, int patterns, int patch);
fpt_task_shape fpt_bit_task_shape(const fpt_bit_task *t);
// Sample `index` of `split`: x (T, d_in) floats, y (K) int32.
void fpt_bit_task_sample(const fpt_bit_task *t, uint64_t key, int split, int64_t index, float *x,
                         int32_t *y);

#endif
