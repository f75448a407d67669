// Uniform error handling (in the spirit of PETSc's PetscCall): every call that
// can fail returns int (0 = success). FPT_TRY propagates a failure; FPT_FAIL
// records one message and returns. The message names the file and the field.
#ifndef FPT_CHECK_H
#define FPT_CHECK_H

#include <stddef.h>

// Record an error message (printf-style). The first message wins: callers up
// the stack may add context with fpt_error_context but never overwrite it.
void fpt_error_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *fpt_error_get(void);
void fpt_error_clear(void);

#define FPT_TRY(call)                                                                              \
  do {                                                                                             \
    int fpt_rc_ = (call);                                                                          \
    if (fpt_rc_ != 0)                                                                              \
      return fpt_rc_;                                                                              \
  } while (0)

#define FPT_FAIL(...)                                                                              \
  do {                                                                                             \
    fpt_error_set(__VA_ARGS__);                                                                    \
    return 1;                                                                                      \
  } while (0)

#define FPT_ENSURE(cond, ...)                                                                      \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      FPT_FAIL(__VA_ARGS__);                                                                       \
  } while (0)

// Fault injection for tests: when the environment names this point
// (FPT_FAULT=where, and FPT_FAULT_AT=counter / FPT_FAULT_RANK=rank /
// FPT_FAULT_NTH=k-th match, if set), the process kills itself with SIGKILL,
// as a crashed or preempted node would.
void fpt_fault(const char *where, long long counter);

// Allocation that never returns NULL: out of memory is fatal (no sane recovery).
void *fpt_malloc(size_t n);
void *fpt_calloc(size_t n, size_t size);
// 64-byte aligned, zeroed; free with free().
float *fpt_alloc_floats(size_t n);

#endif
