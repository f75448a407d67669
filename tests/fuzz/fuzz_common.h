// Shared helpers of the libFuzzer targets in tests/fuzz (see README.md there).
//
// The parsers under test read files, so each target writes the fuzz input to
// files in a per-process scratch directory and calls the real entry point.
// The directory is $FPT_FUZZ_TMP/fpt-fuzz-<pid>-XXXXXX (tests/fuzz/run.sh sets
// FPT_FUZZ_TMP to a directory it removes afterwards), else under $TMPDIR, else
// /dev/shm, else /tmp; it is removed at exit.
//
// Inputs made of several files (IDX: four, CIFAR-10: six, ListOps: three, ...)
// are cut at the separator FUZZ_SEP; a file whose part is absent is not
// written (a "missing file" case). Many targets take one option byte first.
#ifndef FPT_FUZZ_COMMON_H
#define FPT_FUZZ_COMMON_H

#define _GNU_SOURCE 1 // memmem

#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fpt/check.h"

#define FUZZ_SEP "FPTSPLIT"
#define FUZZ_SEP_LEN 8
#define FUZZ_MAX_PARTS 8

static char fuzz_dir[512];

static inline void fuzz_clean_dir(void) {
  if (!fuzz_dir[0])
    return;
  DIR *d = opendir(fuzz_dir);
  if (d) {
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d)) != NULL) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
        continue;
      snprintf(p, sizeof p, "%s/%s", fuzz_dir, e->d_name);
      unlink(p);
    }
    closedir(d);
  }
}

static inline void fuzz_remove_dir(void) {
  fuzz_clean_dir();
  if (fuzz_dir[0])
    rmdir(fuzz_dir);
}

// The scratch directory, created on first use.
static inline const char *fuzz_tmpdir(void) {
  if (fuzz_dir[0])
    return fuzz_dir;
  const char *bases[3] = {getenv("FPT_FUZZ_TMP"), getenv("TMPDIR"), NULL};
  struct stat st;
  if (!bases[0] && !bases[1])
    bases[2] = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
  for (int i = 0; i < 3; i++) {
    if (!bases[i] || !*bases[i])
      continue;
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/fpt-fuzz-%ld-XXXXXX", bases[i], (long)getpid());
    if (mkdtemp(fuzz_dir)) {
      atexit(fuzz_remove_dir);
      return fuzz_dir;
    }
  }
  fprintf(stderr, "fuzz: cannot create a scratch directory\n");
  abort();
}

// dir/name, in a static buffer per call site's choice.
static inline void fuzz_path(char *out, size_t n, const char *name) {
  snprintf(out, n, "%s/%s", fuzz_tmpdir(), name);
}

// Write bytes to dir/name (replacing it); the full path goes to `path`.
static inline void fuzz_write(const char *name, const uint8_t *data, size_t size, char *path,
                              size_t pathn) {
  char p[1024];
  fuzz_path(p, sizeof p, name);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    perror(p);
    abort();
  }
  size_t at = 0;
  while (at < size) {
    ssize_t w = write(fd, data + at, size - at);
    if (w <= 0) {
      perror(p);
      abort();
    }
    at += (size_t)w;
  }
  close(fd);
  if (path)
    snprintf(path, pathn, "%s", p);
}

typedef struct {
  const uint8_t *p;
  size_t n;
} fuzz_part;

// Cut [data, data+size) at FUZZ_SEP into at most max parts; returns the count
// (>= 1; the last part takes the rest, separators included).
static inline int fuzz_split(const uint8_t *data, size_t size, fuzz_part *parts, int max) {
  int k = 0;
  const uint8_t *p = data, *end = data + size;
  while (k < max - 1) {
    const uint8_t *s = memmem(p, (size_t)(end - p), FUZZ_SEP, FUZZ_SEP_LEN);
    if (!s)
      break;
    parts[k].p = p;
    parts[k].n = (size_t)(s - p);
    k++;
    p = s + FUZZ_SEP_LEN;
  }
  parts[k].p = p;
  parts[k].n = (size_t)(end - p);
  return k + 1;
}

// A NUL-terminated copy (callers free it).
static inline char *fuzz_cstr(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s)
    abort();
  memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

// Each target ends an input with this: the error message must be a string.
// FPT_FUZZ_VERBOSE=1 prints each result (to see what the seeds exercise).
static inline void fuzz_check_error(int rc) {
  static int verbose = -1;
  if (verbose < 0)
    verbose = getenv("FPT_FUZZ_VERBOSE") != NULL;
  if (verbose)
    fprintf(stderr, "fuzz: rc %d: %s\n", rc, rc ? fpt_error_get() : "ok");
  if (rc != 0) {
    // fpt_error_get() says "unknown error" when no message was recorded.
    const char *m = fpt_error_get();
    if (!m || !*m || !strcmp(m, "unknown error")) {
      fprintf(stderr, "fuzz: nonzero return without an error message\n");
      abort();
    }
  }
  fpt_error_clear();
}

#endif
