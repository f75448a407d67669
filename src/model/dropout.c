#include "fpt/kernels.h"
#include "fpt/rng.h"

static fpt_stream stream_of(const fpt_dropout *d, uint32_t site, int64_t sample) {
  fpt_stream s = {d->seed, site, d->step, (uint32_t)sample};
  return s;
}

int dropout_keep(const fpt_dropout *d, uint32_t site, int64_t sample, uint64_t idx) {
  uint32_t thr = (uint32_t)((double)d->p * 4294967296.0);
  return fpt_stream_u32(stream_of(d, site, sample), idx) >= thr;
}

// Row xr (elements base.. of the mask stream), its first n columns.
static void mask_row(float *xr, fpt_stream s, uint64_t base, int n, uint32_t thr, float scale) {
  enum { SPAN = 1024 }; // elements per batch of mask bits
  uint32_t u[SPAN + 8];
  for (int c0 = 0; c0 < n; c0 += SPAN) {
    int w = n - c0 < SPAN ? n - c0 : SPAN;
    uint64_t e0 = base + (uint64_t)c0;
    uint64_t first = e0 >> 2, last = (e0 + (uint64_t)w - 1) >> 2;
    fpt_stream_blocks(s, (uint32_t)first, (int)(last - first + 1), u);
    const uint32_t *m = u + (e0 & 3);
    float *xc = xr + c0;
    for (int c = 0; c < w; c++)
      xc[c] = m[c] >= thr ? xc[c] * scale : 0.0f;
  }
}

void dropout_apply(float *x, const fpt_dropout *d, uint32_t site, int B, int rows, int row0,
                   int cols) {
  if (!d || d->p <= 0.0f)
    return;
  uint32_t thr = (uint32_t)((double)d->p * 4294967296.0);
  float scale = 1.0f / (1.0f - d->p);
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; b++)
    for (int r = 0; r < rows; r++)
      mask_row(x + ((size_t)b * rows + r) * cols, stream_of(d, site, d->sample[b]),
               (uint64_t)(row0 + r) * cols, cols, thr, scale);
}

void dropout_apply_causal(float *x, const fpt_dropout *d, uint32_t site, int rows, int row0,
                          int cols, int n0) {
  if (!d || d->p <= 0.0f)
    return;
  uint32_t thr = (uint32_t)((double)d->p * 4294967296.0);
  float scale = 1.0f / (1.0f - d->p);
  fpt_stream s = stream_of(d, site, d->sample[0]);
  for (int r = 0; r < rows; r++)
    mask_row(x + (size_t)r * cols, s, (uint64_t)(row0 + r) * cols, n0 + r < cols ? n0 + r : cols,
             thr, scale);
}
