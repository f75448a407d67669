#define _POSIX_C_SOURCE 200809L
#include "fpt/check.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char fpt_errbuf[1024];
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

void *fpt_malloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fprintf(stderr, "fpt: error: out of memory allocating %zu bytes\n", n);
    exit(2);
  }
  return p;
}

void *fpt_calloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) {
    fprintf(stderr, "fpt: error: out of memory allocating %zu x %zu bytes\n", n, size);
    exit(2);
  }
  return p;
}

float *fpt_alloc_floats(size_t n) {
  void *p = NULL;
  size_t bytes = (n ? n : 1) * sizeof(float);
  bytes = (bytes + 63) & ~(size_t)63;
  if (posix_memalign(&p, 64, bytes) != 0) {
    fprintf(stderr, "fpt: error: out of memory allocating %zu floats\n", n);
    exit(2);
  }
  memset(p, 0, bytes);
  return p;
}

void fpt_fault(const char *where, long long counter) {
  const char *f = getenv("FPT_FAULT");
  if (!f || strcmp(f, where) != 0)
    return;
  const char *at = getenv("FPT_FAULT_AT"), *r = getenv("FPT_FAULT_RANK");
  const char *me = getenv("OMPI_COMM_WORLD_RANK");
  if (at && atoll(at) != counter)
    return;
  if (r && atoi(r) != (me ? atoi(me) : 0))
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
