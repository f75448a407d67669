// The layer-normalised LSTM layer (src/model/lstm.c): central finite
// differences of a two-layer stack for every input, weight and initial-state
// element (residual or not, dropout on or off); frozen gradients; layout
// independence of the dropout mask; the unbiased LayerNorm.
#include <cblas.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fd.h"
#include "fpt/check.h"
#include "fpt/lstm.h"

#define H 1e-2f
#define TOL 2e-3 // relative error of a whole gradient tensor
#define EPS 1e-6f

enum { NL = 2, NT = 10 }; // layers in the stack, tensors per layer

static const char *const tname[NT] = {"i2h_w",    "i2h_b",    "h2h_w",    "h2h_b",     "ln_i2h_w",
                                      "ln_i2h_b", "ln_h2h_w", "ln_h2h_b", "ln_cell_w", "ln_cell_b"};

static size_t tsize(int C, int k) {
  size_t G = 4 * (size_t)C;
  return k == 0 || k == 2 ? G * C : (k >= 8 ? (size_t)C : G);
}
static size_t layer_size(int C) {
  size_t s = 0;
  for (int k = 0; k < NT; k++)
    s += tsize(C, k);
  return s;
}
static size_t toff(int C, int k) {
  size_t s = 0;
  for (int j = 0; j < k; j++)
    s += tsize(C, j);
  return s;
}

static fpt_lstm_w wview(const float *p, int C) {
  const float *t[NT];
  for (int k = 0; k < NT; k++)
    t[k] = p + toff(C, k);
  fpt_lstm_w w = {t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9]};
  return w;
}
// Which gradients exist: every one, none (all frozen), or only the LayerNorms'
// (the paper's "random frozen LSTM", freeze_trans=True).
enum { TRAIN_ALL, TRAIN_NONE, TRAIN_LN };
static int trains(int mode, int k) { return mode == TRAIN_ALL || (mode == TRAIN_LN && k >= 4); }
static fpt_lstm_g gview(float *p, int C, int mode) {
  float *t[NT];
  for (int k = 0; k < NT; k++)
    t[k] = trains(mode, k) ? p + toff(C, k) : NULL;
  fpt_lstm_g g = {t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9]};
  return g;
}

// A stack of NL layers on (B,T,C); loss = sum(out * R).
typedef struct {
  int B, T, C, residual;
  int64_t sample[8];
  fpt_dropout d;
  float *x, *R, *h0[NL], *c0[NL];
  float *w[NL], *gw[NL];
  float *y[NL], *dy[NL], *dx, *dh0[NL], *dc0[NL];
  fpt_lstm_acts a[NL];
} net;

static uint32_t site_of(int l) { return 40 + 8 * (uint32_t)l; }

static void net_make(net *n, int B, int T, int C, int residual, float p, uint64_t seed) {
  memset(n, 0, sizeof *n);
  n->B = B;
  n->T = T;
  n->C = C;
  n->residual = residual;
  for (int b = 0; b < B; b++)
    n->sample[b] = 7 + 5 * b;
  n->d = (fpt_dropout){p, 1234, 3, n->sample};
  size_t BTC = (size_t)B * T * C, BC = (size_t)B * C, G = 4 * (size_t)C;
  n->x = fpt_alloc_floats(BTC);
  n->R = fpt_alloc_floats(BTC);
  n->dx = fpt_alloc_floats(BTC);
  fill_normal(n->x, BTC, seed, 1.0f);
  fill_normal(n->R, BTC, seed + 1, 1.0f);
  for (int l = 0; l < NL; l++) {
    uint64_t s = seed + 10 * (l + 1);
    n->w[l] = fpt_alloc_floats(layer_size(C));
    n->gw[l] = fpt_alloc_floats(layer_size(C));
    float *w = n->w[l];
    fill_normal(w, 2 * G * C + 2 * G, s, 0.5f); // i2h, h2h weights and biases
    fill_normal(w + toff(C, 4), layer_size(C) - toff(C, 4), s + 1, 0.3f);
    for (int k = 4; k < NT; k += 2) // LN gains around 1
      for (size_t i = 0; i < tsize(C, k); i++)
        w[toff(C, k) + i] += 1.0f;
    n->h0[l] = fpt_alloc_floats(BC);
    n->c0[l] = fpt_alloc_floats(BC);
    n->dh0[l] = fpt_alloc_floats(BC);
    n->dc0[l] = fpt_alloc_floats(BC);
    fill_normal(n->h0[l], BC, s + 2, 0.5f);
    fill_normal(n->c0[l], BC, s + 3, 0.5f);
    n->y[l] = fpt_alloc_floats(BTC);
    n->dy[l] = fpt_alloc_floats(BTC);
    assert_int_equal(fpt_lstm_acts_create(&n->a[l], B, T, C), 0);
  }
}

static void net_free(net *n) {
  float *all[] = {n->x, n->R, n->dx};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    free(all[i]);
  for (int l = 0; l < NL; l++) {
    float *per[] = {n->w[l], n->gw[l], n->h0[l], n->c0[l], n->dh0[l], n->dc0[l], n->y[l], n->dy[l]};
    for (size_t i = 0; i < sizeof per / sizeof *per; i++)
      free(per[i]);
    fpt_lstm_acts_free(&n->a[l]);
  }
}

static void net_forward(net *n) {
  for (int l = 0; l < NL; l++) {
    fpt_lstm_w w = wview(n->w[l], n->C);
    lstm_layer_forward(n->y[l], &n->a[l], l == 0 ? n->x : n->y[l - 1], &w, n->h0[l], n->c0[l], n->B,
                       n->T, n->C, EPS, n->residual, &n->d, site_of(l));
  }
}

static double net_loss(void *ctx) {
  net *n = ctx;
  net_forward(n);
  return dot(n->y[NL - 1], n->R, (size_t)n->B * n->T * n->C);
}

// Gradients of the loss of the last forward (zeroed first unless accumulate);
// mode: which gradients exist (TRAIN_*).
static void net_backward(net *n, int mode, int accumulate) {
  for (int l = NL - 1; l >= 0; l--) {
    if (!accumulate)
      memset(n->gw[l], 0, sizeof(float) * layer_size(n->C));
    fpt_lstm_w w = wview(n->w[l], n->C);
    fpt_lstm_g g = gview(n->gw[l], n->C, mode);
    const float *dout = l == NL - 1 ? n->R : n->dy[l];
    float *dx = l == 0 ? n->dx : n->dy[l - 1];
    lstm_layer_backward(dx, &g, dout, &n->a[l], l == 0 ? n->x : n->y[l - 1], &w, n->h0[l], n->c0[l],
                        n->B, n->T, n->C, n->residual, &n->d, n->dh0[l], n->dc0[l]);
  }
}

// Fourth-order central differences, (8 (L(+h) - L(-h)) - (L(+2h) - L(-2h))) / 12h,
// for every element of p (n of them) against grad: the truncation error of the
// plain two-point formula (~2e-3 here) would otherwise hide small gradient
// errors; what is left is float32 rounding of the loss (~4e-4).
typedef double (*scalar_fn)(void *ctx);
static double fd_check(float *p, const float *grad, size_t n, scalar_fn f, void *ctx) {
  double *fd = calloc(n, sizeof(double)), *an = calloc(n, sizeof(double));
  for (size_t i = 0; i < n; i++) {
    float keep = p[i];
    double l[4];
    for (int j = 0; j < 4; j++) {
      p[i] = keep + (j == 0 ? H : j == 1 ? -H : j == 2 ? 2 * H : -2 * H);
      l[j] = f(ctx);
    }
    p[i] = keep;
    fd[i] = (8.0 * (l[0] - l[1]) - (l[2] - l[3])) / (12.0 * H);
    an[i] = grad[i];
  }
  double e = rel_err(an, fd, n, 1e-3);
  free(fd);
  free(an);
  return e;
}

static double worst_fd = 0;

static void check_fd(net *k, float *p, const float *grad, size_t n, const char *what, int l) {
  double e = fd_check(p, grad, n, net_loss, k);
  if (e > worst_fd)
    worst_fd = e;
  if (getenv("LSTM_FD_VERBOSE"))
    print_message("layer %d %s: %.3g\n", l, what, e);
  if (e >= TOL)
    print_error("layer %d %s: FD relative error %g\n", l, what, e);
  assert_true(e < TOL);
}

static void fd_case(int residual, float p, int T, int C) {
  net n;
  net_make(&n, 3, T, C, residual, p, 100 + 7 * residual + (p > 0));
  net_loss(&n);
  net_backward(&n, TRAIN_ALL, 0);
  // Copies: the FD loop overwrites the activations' scratch, not these.
  size_t BTC = (size_t)n.B * T * C, BC = (size_t)n.B * C;
  float *dx = fpt_alloc_floats(BTC), *g[NL], *dh0[NL], *dc0[NL];
  memcpy(dx, n.dx, sizeof(float) * BTC);
  for (int l = 0; l < NL; l++) {
    g[l] = fpt_alloc_floats(layer_size(C));
    dh0[l] = fpt_alloc_floats(BC);
    dc0[l] = fpt_alloc_floats(BC);
    memcpy(g[l], n.gw[l], sizeof(float) * layer_size(C));
    memcpy(dh0[l], n.dh0[l], sizeof(float) * BC);
    memcpy(dc0[l], n.dc0[l], sizeof(float) * BC);
  }
  check_fd(&n, n.x, dx, BTC, "x", 0);
  for (int l = 0; l < NL; l++) {
    for (int k = 0; k < NT; k++)
      check_fd(&n, n.w[l] + toff(C, k), g[l] + toff(C, k), tsize(C, k), tname[k], l);
    check_fd(&n, n.h0[l], dh0[l], BC, "h0", l);
    check_fd(&n, n.c0[l], dc0[l], BC, "c0", l);
    free(g[l]);
    free(dh0[l]);
    free(dc0[l]);
  }
  free(dx);
  net_free(&n);
}

static void test_lstm_fd(void **state) {
  (void)state;
  for (int residual = 0; residual < 2; residual++)
    for (int drop = 0; drop < 2; drop++)
      fd_case(residual, drop ? 0.3f : 0.0f, 5, 6);
  fd_case(1, 0.2f, 4, 9);
  print_message("lstm FD: worst relative error %.3g (tolerance %g)\n", worst_fd, TOL);
}

// The dropout mask is dropout_apply's for a (B,T,C) tensor at the layer's site,
// stored as keep bits; without residual the output is zero exactly there.
static void test_lstm_mask(void **state) {
  (void)state;
  net n;
  int B = 3, T = 5, C = 40; // C > 32: two words of keep bits per row
  net_make(&n, B, T, C, 0, 0.3f, 7);
  net_forward(&n);
  size_t BTC = (size_t)B * T * C, nw = fpt_mask_words(C);
  float *ones = fpt_alloc_floats(BTC);
  int dropped = 0;
  for (int l = 0; l < NL; l++) {
    for (size_t i = 0; i < BTC; i++)
      ones[i] = 1.0f;
    dropout_apply(ones, &n.d, site_of(l), B, T, 0, C);
    for (size_t r = 0; r < (size_t)B * T; r++)
      for (int c = 0; c < C; c++) {
        int keep = (n.a[l].bits[r * nw + c / 32] >> (c % 32)) & 1u;
        size_t i = r * C + c;
        assert_int_equal(keep, ones[i] != 0.0f);
        assert_int_equal(keep, dropout_keep(&n.d, site_of(l), n.sample[r / T], (r % T) * C + c));
        if (!keep)
          assert_true(n.y[l][i] == 0.0f);
        dropped += !keep;
      }
  }
  assert_true(dropped > 0.2 * NL * BTC && dropped < 0.4 * NL * BTC);
  free(ones);
  net_free(&n);
}

// Frozen tensors (NULL gradients: all of them, or all but the LayerNorms') leave
// dx, dh0, dc0 and the other gradients bit-identical and are not written; a
// second backward accumulates the same weight gradients again.
static void frozen_case(int residual, int mode) {
  net n;
  int B = 3, T = 6, C = 10;
  net_make(&n, B, T, C, residual, 0.25f, 21);
  net_forward(&n);
  net_backward(&n, TRAIN_ALL, 0);
  size_t BTC = (size_t)B * T * C, BC = (size_t)B * C, LS = layer_size(C);
  float *dx = fpt_alloc_floats(BTC), *dh = fpt_alloc_floats(NL * BC);
  float *dc = fpt_alloc_floats(NL * BC), *g = fpt_alloc_floats(NL * LS);
  memcpy(dx, n.dx, sizeof(float) * BTC);
  for (int l = 0; l < NL; l++) {
    memcpy(dh + l * BC, n.dh0[l], sizeof(float) * BC);
    memcpy(dc + l * BC, n.dc0[l], sizeof(float) * BC);
    memcpy(g + l * LS, n.gw[l], sizeof(float) * LS);
    memset(n.gw[l], 0x7f, sizeof(float) * LS); // frozen ones must stay so
    for (int k = 0; k < NT; k++)
      if (trains(mode, k))
        memset(n.gw[l] + toff(C, k), 0, sizeof(float) * tsize(C, k));
  }
  net_backward(&n, mode, 1);
  assert_memory_equal(dx, n.dx, sizeof(float) * BTC);
  for (int l = 0; l < NL; l++) {
    assert_memory_equal(dh + l * BC, n.dh0[l], sizeof(float) * BC);
    assert_memory_equal(dc + l * BC, n.dc0[l], sizeof(float) * BC);
    for (int k = 0; k < NT; k++) {
      const float *got = n.gw[l] + toff(C, k);
      if (trains(mode, k)) {
        assert_memory_equal(got, g + l * LS + toff(C, k), sizeof(float) * tsize(C, k));
        continue;
      }
      for (size_t i = 0; i < tsize(C, k); i++) {
        uint32_t u;
        memcpy(&u, &got[i], sizeof u);
        assert_int_equal(u, 0x7f7f7f7fu);
      }
    }
    memcpy(n.gw[l], g + l * LS, sizeof(float) * LS);
  }
  // Trainable again, accumulating: twice the gradients, same dx.
  net_backward(&n, TRAIN_ALL, 1);
  assert_memory_equal(dx, n.dx, sizeof(float) * BTC);
  for (int l = 0; l < NL; l++)
    for (size_t i = 0; i < LS; i++)
      assert_float_equal(n.gw[l][i], 2.0f * g[l * LS + i], 1e-6 * (1.0 + fabs(g[l * LS + i])));
  free(dx);
  free(dh);
  free(dc);
  free(g);
  net_free(&n);
}

static void test_lstm_frozen(void **state) {
  (void)state;
  for (int residual = 0; residual < 2; residual++) {
    frozen_case(residual, TRAIN_NONE);
    frozen_case(residual, TRAIN_LN);
  }
}

// A sub-batch of whole's samples [b0, b0 + B): same weights and global sample
// ids; its activations are made for more samples and steps than it uses.
static void net_slice(net *s, const net *whole, int b0, int B) {
  net_make(s, B, whole->T, whole->C, whole->residual, whole->d.p, 1);
  for (int l = 0; l < NL; l++) {
    fpt_lstm_acts_free(&s->a[l]);
    assert_int_equal(fpt_lstm_acts_create(&s->a[l], whole->B, whole->T + 2, whole->C), 0);
  }
  size_t TC = (size_t)whole->T * whole->C, C = whole->C;
  memcpy(s->x, whole->x + b0 * TC, sizeof(float) * B * TC);
  memcpy(s->R, whole->R + b0 * TC, sizeof(float) * B * TC);
  for (int b = 0; b < B; b++)
    s->sample[b] = whole->sample[b0 + b];
  for (int l = 0; l < NL; l++) {
    memcpy(s->w[l], whole->w[l], sizeof(float) * layer_size(whole->C));
    memcpy(s->h0[l], whole->h0[l] + b0 * C, sizeof(float) * B * C);
    memcpy(s->c0[l], whole->c0[l] + b0 * C, sizeof(float) * B * C);
  }
}

// Elements of a and b (n) equal within tol relative to b's largest, or bit
// for bit when tol is 0.
static void assert_close(const float *a, const float *b, size_t n, double tol) {
  if (tol == 0) {
    assert_memory_equal(a, b, sizeof(float) * n);
    return;
  }
  double m = 0, d = 0;
  for (size_t i = 0; i < n; i++) {
    m = fmax(m, fabs(b[i]));
    d = fmax(d, fabs((double)a[i] - b[i]));
  }
  if (d > tol * m)
    print_error("max difference %g (scale %g)\n", d, m);
  assert_true(d <= tol * m);
}

// 5 samples at once = 3 + 2 run apart (masks keyed by the global sample index,
// activations packed by the call's shape): the same keep bits, and the same
// outputs and gradients, bit for bit when tol is 0. (OpenBLAS rounds a row of
// a product differently with the number of rows at larger K, hence a
// tolerance for the wide case; a wrong mask would be O(1) off.) Weight
// gradients add up.
static void split_case(int residual, int T, int C, double tol) {
  net w, p[2];
  int B0 = 3;
  net_make(&w, 5, T, C, residual, 0.3f, 31);
  net_forward(&w);
  net_backward(&w, TRAIN_ALL, 0);
  size_t TC = (size_t)T * C, nw = fpt_mask_words(C);
  for (int k = 0; k < 2; k++) {
    int b0 = k ? B0 : 0, B = k ? 5 - B0 : B0;
    net_slice(&p[k], &w, b0, B);
    net_forward(&p[k]);
    net_backward(&p[k], TRAIN_ALL, 0);
    for (int l = 0; l < NL; l++) {
      assert_memory_equal(p[k].a[l].bits, w.a[l].bits + b0 * T * nw, sizeof(uint32_t) * B * T * nw);
      assert_close(p[k].y[l], w.y[l] + b0 * TC, B * TC, tol);
      assert_close(p[k].dh0[l], w.dh0[l] + b0 * C, B * C, tol);
      assert_close(p[k].dc0[l], w.dc0[l] + b0 * C, B * C, tol);
    }
    assert_close(p[k].dx, w.dx + b0 * TC, B * TC, tol);
  }
  for (int l = 0; l < NL; l++)
    for (size_t i = 0; i < layer_size(C); i++) {
      float sum = p[0].gw[l][i] + p[1].gw[l][i];
      assert_float_equal(sum, w.gw[l][i], 1e-5 * (1.0 + fabsf(w.gw[l][i])));
    }
  net_free(&p[0]);
  net_free(&p[1]);
  net_free(&w);
}

static void test_lstm_batch_split(void **state) {
  (void)state;
  for (int residual = 0; residual < 2; residual++) {
    split_case(residual, 7, 12, 0);
    // Wide enough that the 5-sample steps run their rows on OpenMP threads
    // and the 3-sample ones do not.
    split_case(residual, 3, 256, 1e-5);
  }
}

// NULL initial state = explicit zeros, bit for bit.
static void test_lstm_zero_state(void **state) {
  (void)state;
  net n;
  int B = 2, T = 4, C = 8;
  net_make(&n, B, T, C, 0, 0.2f, 41);
  size_t BC = (size_t)B * C, BTC = BC * T;
  for (int l = 0; l < NL; l++) {
    memset(n.h0[l], 0, sizeof(float) * BC);
    memset(n.c0[l], 0, sizeof(float) * BC);
  }
  net_forward(&n);
  net_backward(&n, TRAIN_ALL, 0);
  float *y = fpt_alloc_floats(BTC), *dx = fpt_alloc_floats(BTC);
  float *g = fpt_alloc_floats(layer_size(C));
  memcpy(y, n.y[NL - 1], sizeof(float) * BTC);
  memcpy(dx, n.dx, sizeof(float) * BTC);
  memcpy(g, n.gw[0], sizeof(float) * layer_size(C));
  for (int l = 0; l < NL; l++) {
    free(n.h0[l]);
    free(n.c0[l]);
    n.h0[l] = n.c0[l] = NULL;
  }
  net_forward(&n);
  net_backward(&n, TRAIN_ALL, 0);
  assert_memory_equal(y, n.y[NL - 1], sizeof(float) * BTC);
  assert_memory_equal(dx, n.dx, sizeof(float) * BTC);
  assert_memory_equal(g, n.gw[0], sizeof(float) * layer_size(C));
  free(y);
  free(dx);
  free(g);
  net_free(&n);
}

// --- the unbiased LayerNorm alone: against the formula in double, and FD ---
typedef struct {
  int N, C;
  float *x, *w, *b, *y, *mean, *rstd, *dy;
} ln_ctx;
static double ln_loss(void *ctx) {
  ln_ctx *k = ctx;
  layernorm_unbiased_forward(k->y, k->mean, k->rstd, k->x, k->w, k->b, k->N, k->C, EPS);
  return dot(k->y, k->dy, (size_t)k->N * k->C);
}
static void test_layernorm_unbiased(void **state) {
  (void)state;
  ln_ctx k = {.N = 4, .C = 7};
  size_t n = 28;
  k.x = fpt_alloc_floats(n);
  k.y = fpt_alloc_floats(n);
  k.dy = fpt_alloc_floats(n);
  k.w = fpt_alloc_floats(7);
  k.b = fpt_alloc_floats(7);
  k.mean = fpt_alloc_floats(4);
  k.rstd = fpt_alloc_floats(4);
  fill_normal(k.x, n, 51, 2);
  fill_normal(k.w, 7, 52, 1);
  fill_normal(k.b, 7, 53, 1);
  fill_normal(k.dy, n, 54, 1);
  ln_loss(&k);
  for (int i = 0; i < k.N; i++) {
    const float *x = k.x + i * k.C;
    double m = 0, v = 0;
    for (int c = 0; c < k.C; c++)
      m += x[c];
    m /= k.C;
    for (int c = 0; c < k.C; c++)
      v += (x[c] - m) * (x[c] - m);
    v /= k.C - 1;
    for (int c = 0; c < k.C; c++) {
      double y = k.w[c] * (x[c] - m) / sqrt(v + EPS) + k.b[c];
      assert_float_equal(k.y[i * k.C + c], y, 1e-5 * (1 + fabs(y)));
    }
  }
  float *dx = fpt_alloc_floats(n), *dw = fpt_alloc_floats(7), *db = fpt_alloc_floats(7);
  layernorm_unbiased_backward(dx, dw, db, k.dy, k.x, k.w, k.mean, k.rstd, k.N, k.C);
  assert_true(fd_check(k.x, dx, n, ln_loss, &k) < TOL);
  assert_true(fd_check(k.w, dw, 7, ln_loss, &k) < TOL);
  assert_true(fd_check(k.b, db, 7, ln_loss, &k) < TOL);
  // In place (dinp = dout) gives the same dx.
  float *dd = fpt_alloc_floats(n);
  memcpy(dd, k.dy, sizeof(float) * n);
  layernorm_unbiased_backward(dd, NULL, NULL, dd, k.x, k.w, k.mean, k.rstd, k.N, k.C);
  assert_memory_equal(dd, dx, sizeof(float) * n);
  float *all[] = {k.x, k.y, k.dy, k.w, k.b, k.mean, k.rstd, dx, dw, db, dd};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    free(all[i]);
}

int main(void) {
  // Our OpenMP threads split the GEMMs; OpenBLAS must not add its own (as fpt
  // does at start-up, src/cli/runtime.c).
  openblas_set_num_threads(1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_layernorm_unbiased), cmocka_unit_test(test_lstm_fd),
      cmocka_unit_test(test_lstm_mask),          cmocka_unit_test(test_lstm_frozen),
      cmocka_unit_test(test_lstm_batch_split),   cmocka_unit_test(test_lstm_zero_state),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
