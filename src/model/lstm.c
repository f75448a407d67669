// The paper's layer-normalised LSTM layer (see fpt/lstm.h for the math).
// Only the h2h product is sequential: the input projection of every step, its
// LayerNorm, the weight gradients and dx are each one batched pass.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/fastmath.h"
#include "fpt/lstm.h"

// Below this many floats a loop stays on the calling thread: a fork/join
// would cost more than the work (the per-step loops run T times per layer).
// A step's row costs an exp or two per float, hence its lower threshold.
#define PAR(n) ((size_t)(n) >= 16384)
#define PAR_STEP(n) ((size_t)(n) >= 4096)

// ---- LayerNorm with the unbiased variance ----

// One row of n: y (= or += when acc) w (x - m) s + b, s = 1 / sqrt(var + eps).
static void lnu_row_forward(float *restrict y, float *mean, float *rstd, const float *restrict x,
                            const float *w, const float *b, int n, float eps, int acc) {
  float m = 0.0f;
#pragma omp simd reduction(+ : m)
  for (int k = 0; k < n; k++)
    m += x[k];
  m /= n;
  float v = 0.0f;
#pragma omp simd reduction(+ : v)
  for (int k = 0; k < n; k++) {
    float e = x[k] - m;
    v += e * e;
  }
  float s = 1.0f / sqrtf(v / (n - 1) + eps);
  if (acc) {
    for (int k = 0; k < n; k++)
      y[k] += (x[k] - m) * s * w[k] + b[k];
  } else {
    for (int k = 0; k < n; k++)
      y[k] = (x[k] - m) * s * w[k] + b[k];
  }
  *mean = m;
  *rstd = s;
}

// dx = s (dn - mean(dn)) - s xhat sum(dn xhat) / (n - 1) with dn = w dy: the
// variance's derivative carries the 1/(n-1) of the unbiased estimate. Both
// sums are taken before dx is written, so dx may alias dy.
static void lnu_row_backward(float *dx, const float *dy, const float *x, const float *w, float m,
                             float s, int n) {
  float sd = 0.0f, sdx = 0.0f;
#pragma omp simd reduction(+ : sd, sdx)
  for (int k = 0; k < n; k++) {
    float dn = w[k] * dy[k];
    sd += dn;
    sdx += dn * ((x[k] - m) * s);
  }
  sd /= n;
  sdx /= n - 1;
  for (int k = 0; k < n; k++)
    dx[k] = (w[k] * dy[k] - sd - (x[k] - m) * s * sdx) * s;
}

// dw += sum over rows of dy * xhat, db += sum of dy (x NULL: db only, a bias
// gradient). Rows in chunks of fixed size summed in chunk order, in double:
// the result does not depend on the number of threads.
static void row_sums(float *dw, float *db, const float *dy, const float *x, const float *mean,
                     const float *rstd, int N, int n) {
  enum { CH = 64 };
  int nch = (N + CH - 1) / CH;
  double *part = fpt_calloc((size_t)nch * 2 * n, sizeof(double));
#pragma omp parallel for schedule(static) if (PAR((size_t)N * n))
  for (int k = 0; k < nch; k++) {
    double *pw = part + (size_t)k * 2 * n, *pb = pw + n;
    int e = (k + 1) * CH < N ? (k + 1) * CH : N;
    for (int i = k * CH; i < e; i++) {
      const float *g = dy + (size_t)i * n;
      for (int c = 0; c < n; c++)
        pb[c] += g[c];
      if (x && dw) {
        const float *xi = x + (size_t)i * n;
        float m = mean[i], s = rstd[i];
        for (int c = 0; c < n; c++)
          pw[c] += (double)g[c] * ((xi[c] - m) * s);
      }
    }
  }
#pragma omp parallel for schedule(static) if (PAR((size_t)nch * n))
  for (int c = 0; c < n; c++) {
    double sw = 0, sb = 0;
    for (int k = 0; k < nch; k++) {
      sw += part[(size_t)k * 2 * n + c];
      sb += part[(size_t)k * 2 * n + n + c];
    }
    if (dw && x)
      dw[c] += (float)sw;
    if (db)
      db[c] += (float)sb;
  }
  free(part);
}

void layernorm_unbiased_forward(float *out, float *mean, float *rstd, const float *inp,
                                const float *w, const float *b, int N, int C, float eps) {
#pragma omp parallel for schedule(static) if (PAR((size_t)N * C))
  for (int i = 0; i < N; i++)
    lnu_row_forward(out + (size_t)i * C, mean + i, rstd + i, inp + (size_t)i * C, w, b, C, eps, 0);
}

void layernorm_unbiased_backward(float *dinp, float *dw, float *db, const float *dout,
                                 const float *inp, const float *w, const float *mean,
                                 const float *rstd, int N, int C) {
  // Parameters first: dinp may overwrite dout.
  if (dw || db)
    row_sums(dw, db, dout, inp, mean, rstd, N, C);
  if (dinp) {
#pragma omp parallel for schedule(static) if (PAR((size_t)N * C))
    for (int i = 0; i < N; i++)
      lnu_row_backward(dinp + (size_t)i * C, dout + (size_t)i * C, inp + (size_t)i * C, w, mean[i],
                       rstd[i], C);
  }
}

// ---- activations ----

int fpt_lstm_acts_create(fpt_lstm_acts *a, int B, int T, int C) {
  memset(a, 0, sizeof *a);
  FPT_ENSURE(B > 0 && T > 0 && C > 1, "lstm: bad shape B=%d T=%d C=%d (C must be >= 2)", B, T, C);
  size_t BT = (size_t)B * T, G = 4 * (size_t)C;
  a->B = B;
  a->T = T;
  a->C = C;
  a->ui = fpt_alloc_floats(BT * G);
  a->uh = fpt_alloc_floats(BT * G);
  a->gates = fpt_alloc_floats(BT * G);
  a->da = fpt_alloc_floats(BT * G);
  a->duh = fpt_alloc_floats(BT * G);
  a->mean_i = fpt_alloc_floats(BT);
  a->rstd_i = fpt_alloc_floats(BT);
  a->mean_h = fpt_alloc_floats(BT);
  a->rstd_h = fpt_alloc_floats(BT);
  a->mean_c = fpt_alloc_floats(BT);
  a->rstd_c = fpt_alloc_floats(BT);
  a->craw = fpt_alloc_floats(BT * C);
  a->c = fpt_alloc_floats(BT * C);
  a->hprev = fpt_alloc_floats(BT * C);
  a->dc = fpt_alloc_floats(BT * C);
  a->dh = fpt_alloc_floats((size_t)B * C);
  a->dcn = fpt_alloc_floats((size_t)B * C);
  a->bits = fpt_calloc(BT * fpt_mask_words(C), sizeof(uint32_t));
  return 0;
}

void fpt_lstm_acts_free(fpt_lstm_acts *a) {
  float *all[] = {a->ui,     a->uh,     a->gates,  a->da,     a->duh,    a->mean_i,
                  a->rstd_i, a->mean_h, a->rstd_h, a->mean_c, a->rstd_c, a->craw,
                  a->c,      a->hprev,  a->dc,     a->dh,     a->dcn};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    free(all[i]);
  free(a->bits);
  memset(a, 0, sizeof *a);
}

// ---- forward ----

static inline float sigmoid_f(float x) { return 1.0f / (1.0f + fpt_exp_fast(-x)); }
// tanh(x) = 2 sigmoid(2x) - 1: one vectorisable exp, absolute error ~1e-7.
static inline float tanh_f(float x) { return 2.0f / (1.0f + fpt_exp_fast(-2.0f * x)) - 1.0f; }

static int drop_on(const fpt_dropout *d) { return d && d->p > 0.0f; }

// Row r = (b, t): gates (which hold LN_i2h) += LN_h2h, nonlinearities, the
// cell, and h = o tanh(c) into h (C). cprev NULL: a zero cell.
static void cell_forward(float *h, fpt_lstm_acts *a, const fpt_lstm_w *w, const float *cprev,
                         size_t r, int C, float eps) {
  int G = 4 * C;
  float *gt = a->gates + r * G, *cr = a->craw + r * C, *c = a->c + r * C;
  lnu_row_forward(gt, a->mean_h + r, a->rstd_h + r, a->uh + r * G, w->ln_h2h_w, w->ln_h2h_b, G, eps,
                  1);
  for (int k = 0; k < 3 * C; k++)
    gt[k] = sigmoid_f(gt[k]);
  for (int k = 3 * C; k < G; k++)
    gt[k] = tanh_f(gt[k]);
  for (int k = 0; k < C; k++)
    cr[k] = (cprev ? gt[C + k] * cprev[k] : 0.0f) + gt[k] * gt[3 * C + k];
  lnu_row_forward(c, a->mean_c + r, a->rstd_c + r, cr, w->ln_cell_w, w->ln_cell_b, C, eps, 0);
  for (int k = 0; k < C; k++)
    h[k] = gt[2 * C + k] * tanh_f(c[k]);
}

// Step t for all samples: one (B,C) x (C,4C) GEMM, then the rows.
static void step_forward(float *out, fpt_lstm_acts *a, const float *x, const fpt_lstm_w *w,
                         const float *c0, int B, int T, int C, float eps, int residual,
                         const fpt_dropout *d, uint32_t site, int t) {
  int G = 4 * C;
  size_t nw = fpt_mask_words(C);
  float *uh = a->uh + (size_t)t * G;
  for (int b = 0; b < B; b++)
    memcpy(uh + (size_t)b * T * G, w->h2h_b, sizeof(float) * G);
  fpt_gemm(0, 1, B, G, C, 1.0f, a->hprev + (size_t)t * C, T * C, w->h2h_w, C, 1.0f, uh, T * G);
#pragma omp parallel for schedule(static) if (PAR_STEP((size_t)B * G))
  for (int b = 0; b < B; b++) {
    size_t r = (size_t)b * T + t;
    const float *cprev = t > 0 ? a->c + (r - 1) * C : (c0 ? c0 + (size_t)b * C : NULL);
    float *h = out + r * C;
    cell_forward(h, a, w, cprev, r, C, eps);
    // In place, as the paper's F.dropout(h_t, inplace=True): the dropped h is
    // both the output and the state of step t+1.
    if (drop_on(d))
      dropout_row(h, h, d, site, d->sample[b], (uint64_t)t * C, C, a->bits + r * nw);
    if (t + 1 < T)
      memcpy(a->hprev + (r + 1) * C, h, sizeof(float) * C);
    if (residual)
      for (int k = 0; k < C; k++)
        h[k] += x[r * C + k];
  }
}

void lstm_layer_forward(float *out, fpt_lstm_acts *a, const float *x, const fpt_lstm_w *w,
                        const float *h0, const float *c0, int B, int T, int C, float eps,
                        int residual, const fpt_dropout *d, uint32_t site) {
  int G = 4 * C, BT = B * T;
  // The input projection of every step at once; its LN is written where the
  // gates will be, and each step adds LN_h2h to it.
#pragma omp parallel for schedule(static) if (PAR((size_t)BT * G))
  for (int i = 0; i < BT; i++)
    memcpy(a->ui + (size_t)i * G, w->i2h_b, sizeof(float) * G);
  fpt_gemm(0, 1, BT, G, C, 1.0f, x, C, w->i2h_w, C, 1.0f, a->ui, G);
  layernorm_unbiased_forward(a->gates, a->mean_i, a->rstd_i, a->ui, w->ln_i2h_w, w->ln_i2h_b, BT, G,
                             eps);
  // hprev holds h0 at t = 0, so that dW_h2h is one GEMM over every step.
  for (int b = 0; b < B; b++) {
    float *hp = a->hprev + (size_t)b * T * C;
    if (h0)
      memcpy(hp, h0 + (size_t)b * C, sizeof(float) * C);
    else
      memset(hp, 0, sizeof(float) * C);
  }
  for (int t = 0; t < T; t++)
    step_forward(out, a, x, w, c0, B, T, C, eps, residual, d, site, t);
}

// ---- backward ----

// Row r = (b, t): from dh (the carried h_t's gradient from step t+1) and dcn
// (c_t's from step t+1) to da, duh; leaves dcn = d c_{t-1}.
static void cell_backward(fpt_lstm_acts *a, const fpt_lstm_w *w, const float *dout,
                          const float *cprev, const fpt_dropout *d, int b, size_t r, int C) {
  int G = 4 * C;
  float *dh = a->dh + (size_t)b * C, *dcn = a->dcn + (size_t)b * C;
  const float *gt = a->gates + r * G, *c = a->c + r * C;
  float *da = a->da + r * G, *dc = a->dc + r * C;
  for (int k = 0; k < C; k++)
    dh[k] += dout[r * C + k];
  // The output and the next step both saw the dropped h: one mask for both.
  if (drop_on(d))
    dropout_row_bits(dh, dh, a->bits + r * fpt_mask_words(C), d, C);
  for (int k = 0; k < C; k++) {
    float th = tanh_f(c[k]), o = gt[2 * C + k];
    da[2 * C + k] = dh[k] * th * o * (1.0f - o);
    dc[k] = dcn[k] + dh[k] * o * (1.0f - th * th);
  }
  lnu_row_backward(dcn, dc, a->craw + r * C, w->ln_cell_w, a->mean_c[r], a->rstd_c[r], C);
  for (int k = 0; k < C; k++) {
    float i = gt[k], f = gt[C + k], g = gt[3 * C + k], dcr = dcn[k];
    float cp = cprev ? cprev[k] : 0.0f;
    da[k] = dcr * g * i * (1.0f - i);
    da[C + k] = dcr * cp * f * (1.0f - f);
    da[3 * C + k] = dcr * i * (1.0f - g * g);
    dcn[k] = dcr * f;
  }
  lnu_row_backward(a->duh + r * G, da, a->uh + r * G, w->ln_h2h_w, a->mean_h[r], a->rstd_h[r], G);
}

// Weight gradients over every step at once, from da, duh, dc left by the
// time loop; then da becomes d(raw i2h) and gives dx. NULL gradients: no work.
static void weights_backward(float *dx, const fpt_lstm_g *g, const float *dout, fpt_lstm_acts *a,
                             const float *x, const fpt_lstm_w *w, int BT, int C, int residual) {
  int G = 4 * C;
  if (g->ln_h2h_w || g->ln_h2h_b)
    row_sums(g->ln_h2h_w, g->ln_h2h_b, a->da, a->uh, a->mean_h, a->rstd_h, BT, G);
  if (g->ln_cell_w || g->ln_cell_b)
    row_sums(g->ln_cell_w, g->ln_cell_b, a->dc, a->craw, a->mean_c, a->rstd_c, BT, C);
  if (g->h2h_w)
    fpt_gemm(1, 0, G, C, BT, 1.0f, a->duh, G, a->hprev, C, 1.0f, g->h2h_w, C);
  if (g->h2h_b)
    row_sums(NULL, g->h2h_b, a->duh, NULL, NULL, NULL, BT, G);
  if (!dx && !g->i2h_w && !g->i2h_b) {
    if (g->ln_i2h_w || g->ln_i2h_b)
      row_sums(g->ln_i2h_w, g->ln_i2h_b, a->da, a->ui, a->mean_i, a->rstd_i, BT, G);
    return;
  }
  layernorm_unbiased_backward(a->da, g->ln_i2h_w, g->ln_i2h_b, a->da, a->ui, w->ln_i2h_w, a->mean_i,
                              a->rstd_i, BT, G);
  if (g->i2h_w)
    fpt_gemm(1, 0, G, C, BT, 1.0f, a->da, G, x, C, 1.0f, g->i2h_w, C);
  if (g->i2h_b)
    row_sums(NULL, g->i2h_b, a->da, NULL, NULL, NULL, BT, G);
  if (dx) {
    fpt_gemm(0, 0, BT, C, G, 1.0f, a->da, G, w->i2h_w, C, 0.0f, dx, C);
    if (residual) {
#pragma omp parallel for schedule(static) if (PAR((size_t)BT * C))
      for (int i = 0; i < BT; i++)
        for (int k = 0; k < C; k++)
          dx[(size_t)i * C + k] += dout[(size_t)i * C + k];
    }
  }
}

void lstm_layer_backward(float *dx, const fpt_lstm_g *g, const float *dout, fpt_lstm_acts *a,
                         const float *x, const fpt_lstm_w *w, const float *h0, const float *c0,
                         int B, int T, int C, int residual, const fpt_dropout *d, float *dh0,
                         float *dc0) {
  (void)h0;
  int G = 4 * C;
  memset(a->dh, 0, sizeof(float) * B * C);
  memset(a->dcn, 0, sizeof(float) * B * C);
  for (int t = T - 1; t >= 0; t--) {
#pragma omp parallel for schedule(static) if (PAR_STEP((size_t)B * G))
    for (int b = 0; b < B; b++) {
      size_t r = (size_t)b * T + t;
      const float *cprev = t > 0 ? a->c + (r - 1) * C : (c0 ? c0 + (size_t)b * C : NULL);
      cell_backward(a, w, dout, cprev, d, b, r, C);
    }
    // d h_{t-1} = d(h2h pre-activation) . h2h_w: the only sequential GEMM.
    if (t > 0 || dh0)
      fpt_gemm(0, 0, B, C, G, 1.0f, a->duh + (size_t)t * G, T * G, w->h2h_w, C, 0.0f, a->dh, C);
  }
  if (dh0)
    memcpy(dh0, a->dh, sizeof(float) * B * C);
  if (dc0)
    memcpy(dc0, a->dcn, sizeof(float) * B * C);
  weights_backward(dx, g, dout, a, x, w, B * T, C, residual);
}
