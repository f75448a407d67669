#define _POSIX_C_SOURCE 200809L
#include "fpt/check.h"

#include <errno.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char fpt_errbuf[FPT_ERROR_MAX];
static int fpt_errset;

void fpt_error_set(const char *fmt, ...) {
  if (fpt_errset)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(fpt_errbuf, sizeof fpt_errbuf, fmt, ap);
  va_end(ap);
  fpt_errset = 1;
}

const char *fpt_error_get(void) { return fpt_errset ? fpt_errbuf : "unknown error"; }

void fpt_error_clear(void) {
  fpt_errset = 0;
  fpt_errbuf[0] = '\0';
}

static size_t alloc_count;
void fpt_alloc_count_start(void) { alloc_count = 0; }
size_t fpt_alloc_count(void) { return alloc_count; }

double fpt_mem_available(void) {
  FILE *f = fopen("/proc/meminfo", "r");
  if (!f)
    return 0;
  char line[256];
  double kb = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1)
      break;
  fclose(f);
  const char *vars[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"};
  long ranks = 1;
  for (size_t i = 0; i < sizeof vars / sizeof *vars && ranks == 1; i++)
    if (getenv(vars[i]) && atol(getenv(vars[i])) > 1)
      ranks = atol(getenv(vars[i]));
  return kb * 1024.0 / (double)ranks;
}

void *fpt_malloc(size_t n) {
  alloc_count += n;
  void *p = malloc(n ? n : 1);
  if (!p) {
    fprintf(stderr, "fpt: error: out of memory allocating %zu bytes\n", n);
    exit(2);
  }
  return p;
}

void *fpt_calloc(size_t n, size_t size) {
  alloc_count += n * size;
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) {
    fprintf(stderr, "fpt: error: out of memory allocating %zu x %zu bytes\n", n, size);
    exit(2);
  }
  return p;
}

void *fpt_realloc(void *old, size_t n) {
  void *p = realloc(old, n ? n : 1);
  if (!p) {
    fprintf(stderr, "fpt: error: out of memory growing a buffer to %zu bytes\n", n);
    exit(2);
  }
  return p;
}

float *fpt_alloc_floats(size_t n) {
  void *p = NULL;
  size_t bytes = (n ? n : 1) * sizeof(float);
  alloc_count += bytes;
  bytes = (bytes + 63) & ~(size_t)63;
  if (posix_memalign(&p, 64, bytes) != 0) {
    fprintf(stderr, "fpt: error: out of memory allocating %zu floats\n", n);
    exit(2);
  }
  memset(p, 0, bytes);
  return p;
}

// This process's MPI rank as the launcher states it (no MPI in this library).
static int launcher_rank(void) {
  const char *v[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"};
  for (int i = 0; i < 3; i++) {
    const char *r = getenv(v[i]);
    if (r && *r)
      return atoi(r);
  }
  return 0;
}

void fpt_fault(const char *where, long long counter) {
  const char *f = getenv("FPT_FAULT");
  if (!f || strcmp(f, where) != 0)
    return;
  const char *at = getenv("FPT_FAULT_AT"), *r = getenv("FPT_FAULT_RANK");
  if (at && atoll(at) != counter)
    return;
  if (r && atoi(r) != launcher_rank())
    return;
  // FPT_FAULT_NTH=k: only the k-th match (e.g. the second checkpoint).
  static int matches;
  const char *nth = getenv("FPT_FAULT_NTH");
  if (++matches < (nth ? atoi(nth) : 1))
    return;
  fprintf(stderr, "fpt: fault injection: killed at %s %lld\n", where, counter);
  fflush(stderr);
  raise(SIGKILL);
}

int fpt_fault_fail(const char *where) {
  const char *pat = getenv("FPT_FAIL_WRITE");
  if (!pat || !*pat || fnmatch(pat, where, 0) != 0)
    return 0;
  const char *r = getenv("FPT_FAIL_RANK");
  if (r && *r && atoi(r) != launcher_rank())
    return 0;
  static long long matches;
  const char *nth = getenv("FPT_FAIL_NTH");
  long long n = nth && *nth ? atoll(nth) : 1;
  int and_later = nth && strchr(nth, '+') != NULL;
  matches++;
  if (matches < n || (matches > n && !and_later))
    return 0;
  fprintf(stderr, "fpt: fault injection: failing write %lld at %s on rank %d\n", matches, where,
          launcher_rank());
  fflush(stderr);
  errno = ENOSPC;
  return 1;
}
