#include <string.h>

#include "fpt/kernels.h"
#include "fpt/rng.h"

static fpt_stream stream_of(const fpt_dropout *d, uint32_t site, int64_t sample) {
  fpt_stream s = {d->seed, site, d->step, (uint32_t)sample};
  return s;
}

static int dropout_on(const fpt_dropout *d) { return d && d->p > 0.0f; }
static uint32_t threshold(const fpt_dropout *d) { return (uint32_t)((double)d->p * 4294967296.0); }
static float keep_scale(const fpt_dropout *d) { return 1.0f / (1.0f - d->p); }

int dropout_keep(const fpt_dropout *d, uint32_t site, int64_t sample, uint64_t idx) {
  return fpt_stream_u32(stream_of(d, site, sample), idx) >= threshold(d);
}

// out = res + mask(x) / (1-p) (res may be NULL) for the first n elements of
// a row, elements base.. of the mask stream; out may alias x. With bits, the
// keep decisions are also stored (bit c % 32 of word c / 32).
static void mask_row(float *out, const float *x, const float *res, fpt_stream s, uint64_t base,
                     int n, uint32_t thr, float scale, uint32_t *bits) {
  enum { SPAN = 1024 }; // elements per batch of mask bits (a multiple of 32)
  uint32_t u[SPAN + 8];
  for (int c0 = 0; c0 < n; c0 += SPAN) {
    int w = n - c0 < SPAN ? n - c0 : SPAN;
    uint64_t e0 = base + (uint64_t)c0;
    uint64_t first = e0 >> 2, last = (e0 + (uint64_t)w - 1) >> 2;
    fpt_stream_blocks(s, (uint32_t)first, (int)(last - first + 1), u);
    const uint32_t *m = u + (e0 & 3);
    const float *xc = x + c0;
    float *oc = out + c0;
    if (res) {
      const float *rc = res + c0;
      for (int c = 0; c < w; c++)
        oc[c] = rc[c] + (m[c] >= thr ? xc[c] * scale : 0.0f);
    } else {
      for (int c = 0; c < w; c++)
        oc[c] = m[c] >= thr ? xc[c] * scale : 0.0f;
    }
    if (bits)
      for (int k = 0; k < (w + 31) / 32; k++) {
        int e = w - 32 * k < 32 ? w - 32 * k : 32;
        uint32_t word = 0;
        for (int j = 0; j < e; j++)
          word |= (uint32_t)(m[32 * k + j] >= thr) << j;
        bits[c0 / 32 + k] = word;
      }
  }
}

// out = x * (stored keep bit) * scale for the first n elements of a row:
// whole words with a fixed trip count, so that the shifts vectorise.
static void bits_row(float *out, const float *x, const uint32_t *bits, int n, float scale) {
  int full = n / 32;
  for (int k = 0; k < full; k++) {
    uint32_t word = bits[k];
    const float *xw = x + 32 * k;
    float *ow = out + 32 * k;
#pragma omp simd
    for (int j = 0; j < 32; j++)
      ow[j] = (word >> j) & 1u ? xw[j] * scale : 0.0f;
  }
  for (int c = 32 * full; c < n; c++)
    out[c] = (bits[c >> 5] >> (c & 31)) & 1u ? x[c] * scale : 0.0f;
}

void dropout_forward(float *out, const float *x, const float *res, int res_rows,
                     const fpt_dropout *d, uint32_t site, int B, int rows, int row0, int cols,
                     uint32_t *bits) {
  int on = dropout_on(d);
  if (!on && !res) {
    if (out != x)
      memcpy(out, x, sizeof(float) * B * rows * cols);
    return;
  }
  uint32_t thr = on ? threshold(d) : 0;
  float scale = on ? keep_scale(d) : 1.0f;
  size_t nw = fpt_mask_words(cols);
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; b++)
    for (int r = 0; r < rows; r++) {
      size_t row = (size_t)b * rows + r, i = row * cols;
      const float *rr = res ? res + ((size_t)b * res_rows + res_rows - rows + r) * cols : NULL;
      if (on) {
        mask_row(out + i, x + i, rr, stream_of(d, site, d->sample[b]), (uint64_t)(row0 + r) * cols,
                 cols, thr, scale, bits ? bits + row * nw : NULL);
      } else {
        for (int c = 0; c < cols; c++)
          out[i + c] = rr[c] + x[i + c];
      }
    }
}

void dropout_apply(float *x, const fpt_dropout *d, uint32_t site, int B, int rows, int row0,
                   int cols) {
  if (dropout_on(d))
    dropout_forward(x, x, NULL, 0, d, site, B, rows, row0, cols, NULL);
}

void dropout_backward(float *out, const float *x, const uint32_t *bits, const fpt_dropout *d,
                      int rows, int cols) {
  if (!dropout_on(d)) {
    if (out != x)
      memcpy(out, x, sizeof(float) * rows * cols);
    return;
  }
  float scale = keep_scale(d);
  size_t nw = fpt_mask_words(cols);
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows; r++)
    bits_row(out + (size_t)r * cols, x + (size_t)r * cols, bits + r * nw, cols, scale);
}

void dropout_row(float *out, const float *x, const fpt_dropout *d, uint32_t site, int64_t sample,
                 uint64_t first, int n, uint32_t *bits) {
  if (dropout_on(d))
    mask_row(out, x, NULL, stream_of(d, site, sample), first, n, threshold(d), keep_scale(d), bits);
}

void dropout_row_bits(float *out, const float *x, const uint32_t *bits, const fpt_dropout *d,
                      int n) {
  if (dropout_on(d))
    bits_row(out, x, bits, n, keep_scale(d));
}
