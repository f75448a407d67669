#include "fpt/kernels.h"
#include "fpt/rng.h"

static fpt_stream stream_of(const fpt_dropout *d, uint32_t site,
                            int64_t sample) {
  fpt_stream s = {d->seed, site, d->step, (uint32_t)sample};
  return s;
}

int dropout_keep(const fpt_dropout *d, uint32_t site, int64_t sample,
                 uint64_t idx) {
  uint32_t thr = (uint32_t)((double)d->p * 4294967296.0);
  return fpt_stream_u32(stream_of(d, site, sample), idx) >= thr;
}

void dropout_apply(float *x, const fpt_dropout *d, uint32_t site, int B,
                   int rows, int row0, int cols) {
  if (!d || d->p <= 0.0f)
    return;
  uint32_t thr = (uint32_t)((double)d->p * 4294967296.0);
  float scale = 1.0f / (1.0f - d->p);
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; b++)
    for (int r = 0; r < rows; r++) {
      fpt_stream s = stream_of(d, site, d->sample[b]);
      float *xr = x + ((size_t)b * rows + r) * cols;
      uint64_t base = (uint64_t)(row0 + r) * cols;
      int c = 0;
      // Whole Philox blocks where aligned; the general path otherwise.
      for (; c < cols && ((base + c) & 3); c++)
        xr[c] = fpt_stream_u32(s, base + c) >= thr ? xr[c] * scale : 0.0f;
      for (; c + 4 <= cols; c += 4) {
        fpt_u32x4 u = fpt_stream_block(s, (uint32_t)((base + c) >> 2));
        for (int k = 0; k < 4; k++)
          xr[c + k] = u.v[k] >= thr ? xr[c + k] * scale : 0.0f;
      }
      for (; c < cols; c++)
        xr[c] = fpt_stream_u32(s, base + c) >= thr ? xr[c] * scale : 0.0f;
    }
}
