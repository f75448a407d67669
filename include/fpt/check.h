// Uniform error handling (in the spirit of PETSc's PetscCall): every call that
// can fail returns int (0 = success). FPT_TRY propagates a failure; FPT_FAIL
// records one message and returns. The message names the file and the field.
#ifndef FPT_CHECK_H
#define FPT_CHECK_H

#include <stddef.h>

// The longest error message kept: room for three full paths (PATH_MAX 4096)
// and the reason after them (a message used to lose its reason past 1023).
#define FPT_ERROR_MAX 16384

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

// Write-failure injection for tests (a full disk, a quota, an I/O error on one
// node): writers call fpt_fault_fail(point) right after each write they make
// (before a rename or a disk reservation, which leave HDF5 alone), and treat
// a nonzero result as that write having failed, with errno ENOSPC. The real
// HDF5 call has been made, so HDF5's state stays the same on every rank; only
// the caller's view of the result changes. Environment:
//   FPT_FAIL_WRITE=pattern  the points to fail, an fnmatch(3) pattern
//                           ("checkpoint-dataset", "h5-*", "*")
//   FPT_FAIL_RANK=k         only on MPI rank k (default: every rank)
//   FPT_FAIL_NTH=n          the n-th matching call on this rank (default 1);
//                           "n+": the n-th and every later one (a disk that stays full)
// Points: h5-attr, h5-dataset, h5-reserve, h5-close, h5-rename (every serial
// file: fpt_h5_out and the fpt_h5_write_* helpers: model files of init,
// import, export and pretrain --export, dataset files, probe.h5, attention
// and forward outputs); dataset-array (fpt data's arrays); checkpoint-reserve,
// checkpoint-attrs, checkpoint-dataset, checkpoint-close, checkpoint-rename,
// checkpoint-latest (fpt train, fpt probe); features-reserve, features-attrs,
// features-write, features-close, features-rename (fpt probe's cache).
// "reserve" is the disk space a file needs (fpt_h5_reserve); it, "rename"
// and "latest" happen on rank 0 only. In a parallel file, attributes are
// metadata every rank holds the same copy of, so there they fail only as a
// whole (checkpoint-attrs, features-attrs).
// A firing point prints one "fpt: fault injection:" line on stderr.
int fpt_fault_fail(const char *where);

// Allocation that never returns NULL: out of memory is fatal (no sane recovery).
void *fpt_malloc(size_t n);
void *fpt_calloc(size_t n, size_t size);
void *fpt_realloc(void *old, size_t n);
// 64-byte aligned, zeroed; free with free().
float *fpt_alloc_floats(size_t n);
// Bytes requested through the three allocators above since the last
// fpt_alloc_count_start (to size a structure by building a small one).
void fpt_alloc_count_start(void);
size_t fpt_alloc_count(void);
// Memory this process may use: MemAvailable (/proc/meminfo) shared among
// the launcher's ranks on this node; 0 when unknown.
double fpt_mem_available(void);

#endif
