// Finite-difference helpers for the unit tests.
#ifndef FPT_TEST_FD_H
#define FPT_TEST_FD_H

#include <math.h>
#include <stddef.h>

#include "fpt/rng.h"

static inline void fill_normal(float *x, size_t n, uint64_t seed, float sd) {
  fpt_stream s = {seed, 99, 0, 0};
  for (size_t i = 0; i < n; i++)
    x[i] = (float)(sd * fpt_stream_normal(s, i));
}

static inline double dot(const float *a, const float *w, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++)
    s += (double)a[i] * w[i];
  return s;
}

// ||a - b|| / max(||b||, floor)
static inline double rel_err(const double *a, const double *b, size_t n, double floor) {
  double d = 0, nb = 0;
  for (size_t i = 0; i < n; i++) {
    d += (a[i] - b[i]) * (a[i] - b[i]);
    nb += b[i] * b[i];
  }
  nb = sqrt(nb);
  return sqrt(d) / (nb > floor ? nb : floor);
}

#endif
