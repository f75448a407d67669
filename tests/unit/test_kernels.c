// Each layer's backward against central finite differences of its forward,
// and the threaded GEMM against a plain-loop reference.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fd.h"
#include "fpt/check.h"
#include "fpt/fastmath.h"
#include "fpt/kernels.h"

#define H 1e-2f
#define TOL 5e-3

// Perturb x[i], evaluate f, for every i; compare with the analytic gradient.
typedef double (*scalar_fn)(void *ctx);
static double fd_check(float *x, size_t n, const float *grad, scalar_fn f, void *ctx) {
  double *fd = calloc(n, sizeof(double)), *an = calloc(n, sizeof(double));
  for (size_t i = 0; i < n; i++) {
    float keep = x[i];
    x[i] = keep + H;
    double lp = f(ctx);
    x[i] = keep - H;
    double lm = f(ctx);
    x[i] = keep;
    fd[i] = (lp - lm) / (2.0 * H);
    an[i] = grad[i];
  }
  double e = rel_err(an, fd, n, 1e-3);
  free(fd);
  free(an);
  return e;
}

// --- linear ---
typedef struct {
  int N, IC, OC;
  float *x, *w, *b, *y, *dy;
} lin_ctx;
static double lin_loss(void *c) {
  lin_ctx *k = c;
  linear_forward(k->y, k->x, k->w, k->b, k->N, k->IC, k->OC);
  return dot(k->y, k->dy, (size_t)k->N * k->OC);
}
static void test_linear_fd(void **state) {
  (void)state;
  lin_ctx k = {.N = 7, .IC = 5, .OC = 6};
  k.x = fpt_alloc_floats(35);
  k.w = fpt_alloc_floats(30);
  k.b = fpt_alloc_floats(6);
  k.y = fpt_alloc_floats(42);
  k.dy = fpt_alloc_floats(42);
  fill_normal(k.x, 35, 1, 1);
  fill_normal(k.w, 30, 2, 1);
  fill_normal(k.b, 6, 3, 1);
  fill_normal(k.dy, 42, 4, 1);
  float *dx = fpt_alloc_floats(35), *dw = fpt_alloc_floats(30), *db = fpt_alloc_floats(6);
  linear_backward(dx, dw, db, k.dy, k.x, k.w, k.N, k.IC, k.OC);
  assert_true(fd_check(k.x, 35, dx, lin_loss, &k) < TOL);
  assert_true(fd_check(k.w, 30, dw, lin_loss, &k) < TOL);
  assert_true(fd_check(k.b, 6, db, lin_loss, &k) < TOL);
  // Accumulation: a second backward adds the same amount again.
  linear_backward(NULL, dw, db, k.dy, k.x, k.w, k.N, k.IC, k.OC);
  float *dw1 = fpt_alloc_floats(30), *db1 = fpt_alloc_floats(6);
  linear_backward(NULL, dw1, db1, k.dy, k.x, k.w, k.N, k.IC, k.OC);
  for (int i = 0; i < 30; i++)
    assert_float_equal(dw[i], 2 * dw1[i], 1e-5 * (1 + fabsf(dw[i])));
  free(k.x);
  free(k.w);
  free(k.b);
  free(k.y);
  free(k.dy);
  free(dx);
  free(dw);
  free(db);
  free(dw1);
  free(db1);
}

// --- layernorm ---
typedef struct {
  int N, C;
  float *x, *w, *b, *y, *mean, *rstd, *dy;
} ln_ctx;
static double ln_loss(void *c) {
  ln_ctx *k = c;
  layernorm_forward(k->y, k->mean, k->rstd, k->x, k->w, k->b, k->N, k->C, 1e-5f);
  return dot(k->y, k->dy, (size_t)k->N * k->C);
}
static void test_layernorm_fd(void **state) {
  (void)state;
  ln_ctx k = {.N = 4, .C = 9};
  size_t n = 36;
  k.x = fpt_alloc_floats(n);
  k.y = fpt_alloc_floats(n);
  k.dy = fpt_alloc_floats(n);
  k.w = fpt_alloc_floats(9);
  k.b = fpt_alloc_floats(9);
  k.mean = fpt_alloc_floats(4);
  k.rstd = fpt_alloc_floats(4);
  fill_normal(k.x, n, 5, 2);
  fill_normal(k.w, 9, 6, 1);
  fill_normal(k.b, 9, 7, 1);
  fill_normal(k.dy, n, 8, 1);
  ln_loss(&k);
  float *dx = fpt_alloc_floats(n), *dw = fpt_alloc_floats(9), *db = fpt_alloc_floats(9);
  layernorm_backward(dx, dw, db, k.dy, k.x, k.w, k.mean, k.rstd, k.N, k.C);
  assert_true(fd_check(k.x, n, dx, ln_loss, &k) < TOL);
  assert_true(fd_check(k.w, 9, dw, ln_loss, &k) < TOL);
  assert_true(fd_check(k.b, 9, db, ln_loss, &k) < TOL);
  free(k.x);
  free(k.y);
  free(k.dy);
  free(k.w);
  free(k.b);
  free(k.mean);
  free(k.rstd);
  free(dx);
  free(dw);
  free(db);
}

// --- gelu ---
typedef struct {
  size_t n;
  float *x, *y, *dy;
  void (*forward)(float *, const float *, size_t);
} gelu_ctx;
static double gelu_loss(void *c) {
  gelu_ctx *k = c;
  k->forward(k->y, k->x, k->n);
  return dot(k->y, k->dy, k->n);
}
// A backward against central differences of its forward, on 50 inputs.
static void gelu_fd_case(void (*fwd)(float *, const float *, size_t),
                         void (*bwd)(float *, const float *, const float *, size_t)) {
  gelu_ctx k = {.n = 50, .forward = fwd};
  k.x = fpt_alloc_floats(50);
  k.y = fpt_alloc_floats(50);
  k.dy = fpt_alloc_floats(50);
  fill_normal(k.x, 50, 9, 2);
  fill_normal(k.dy, 50, 10, 1);
  float *dx = fpt_alloc_floats(50);
  bwd(dx, k.x, k.dy, 50);
  assert_true(fd_check(k.x, 50, dx, gelu_loss, &k) < TOL);
  free(k.x);
  free(k.y);
  free(k.dy);
  free(dx);
}
static void test_gelu_fd(void **state) {
  (void)state;
  gelu_fd_case(gelu_forward, gelu_backward);
  // Known values of the tanh approximation.
  float xs[3] = {0.0f, 1.0f, -2.0f}, ys[3];
  gelu_forward(ys, xs, 3);
  assert_float_equal(ys[0], 0.0f, 1e-7);
  assert_float_equal(ys[1], 0.8411920f, 1e-6);
  assert_float_equal(ys[2], -0.0454023f, 1e-6);
  // Against the tanh formula in double, over the range activations take.
  float xr[4001], yr[4001], dr[4001], one[4001];
  for (int i = 0; i <= 4000; i++) {
    xr[i] = -20.0f + 0.01f * i;
    one[i] = 1.0f;
  }
  gelu_forward(yr, xr, 4001);
  gelu_backward(dr, xr, one, 4001);
  for (int i = 0; i <= 4000; i++) {
    double x = xr[i], u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
    double y = 0.5 * x * (1 + tanh(u)), th = tanh(u);
    double dy =
        0.5 * (1 + th) + 0.5 * x * (1 - th * th) * 0.7978845608028654 * (1 + 3 * 0.044715 * x * x);
    if (fabs(yr[i] - y) > 2e-6 * (fabs(y) + 1e-3) || fabs(dr[i] - dy) > 2e-6 * (fabs(dy) + 0.05))
      print_error("gelu at %g: %.9g vs %.9g, d %.9g vs %.9g\n", x, yr[i], y, dr[i], dy);
    assert_float_equal(yr[i], y, 2e-6 * (fabs(y) + 1e-3));
    assert_float_equal(dr[i], dy, 2e-6 * (fabs(dy) + 0.05));
  }
}

// --- the exact GELU and its erf ---
static double ulps(float y, double exact) {
  float r = fabsf((float)exact);
  double u = (double)nextafterf(r > 0 ? r : 1e-45f, INFINITY) - r;
  return fabs((double)y - exact) / u;
}

// fpt_erf_fast against erf in double on every 61st float from 0 to 4.5 and
// their negatives (1.1e9 / 61), and on the values that have to come out exact.
static void test_erf_fast(void **state) {
  (void)state;
  double worst = 0;
  for (uint32_t b = 0; b < 0x40900000u; b += 61) {
    float x;
    memcpy(&x, &b, sizeof x);
    double u = fmax(ulps(fpt_erf_fast(x), erf(x)), ulps(fpt_erf_fast(-x), erf(-(double)x)));
    if (u > worst)
      worst = u;
    if (u > 2.0)
      print_error("erf at %.9g: %.9g vs %.17g (%.2f ulp)\n", x, fpt_erf_fast(x), erf(x), u);
    assert_true(u <= 2.0);
  }
  print_message("fpt_erf_fast: at most %.2f ulp from erf\n", worst);
  assert_true(isnan(fpt_erf_fast(NAN)));
  assert_true(fpt_erf_fast(INFINITY) == 1.0f && fpt_erf_fast(-INFINITY) == -1.0f);
  assert_true(fpt_erf_fast(5.0f) == 1.0f && fpt_erf_fast(-1e30f) == -1.0f);
  assert_true(fpt_erf_fast(0.0f) == 0.0f && signbit(fpt_erf_fast(-0.0f)));
  assert_true(fpt_erf_fast(1e-40f) > 0.0f);
}

// The kernels against x Phi(x) and Phi(x) + x phi(x) in double. Both compute
// 1 + erf in float, as torch does, so the error allowed is a few ulp of 1
// times |x| / 2 beside a few ulp of the result; libm's twin meets the same.
static void check_gelu_erf(const float *xs, size_t n, void (*fwd)(float *, const float *, size_t),
                           void (*bwd)(float *, const float *, const float *, size_t)) {
  float *y = fpt_alloc_floats(n), *d = fpt_alloc_floats(n), *one = fpt_alloc_floats(n);
  for (size_t i = 0; i < n; i++)
    one[i] = 1.0f;
  fwd(y, xs, n);
  bwd(d, xs, one, n);
  for (size_t i = 0; i < n; i++) {
    double x = xs[i], cdf = 0.5 * (1 + erf(x / sqrt(2.0)));
    double ye = x * cdf, de = cdf + x * exp(-0.5 * x * x) / 2.5066282746310002;
    double ty = 2.4e-7 * 0.5 * fabs(x) + 3e-7 * fabs(ye),
           td = 2.4e-7 * (1 + fabs(x)) + 3e-7 * fabs(de);
    if (fabs(y[i] - ye) > ty || fabs(d[i] - de) > td)
      print_error("gelu_erf at %.9g: %.9g vs %.9g, d %.9g vs %.9g\n", x, y[i], ye, d[i], de);
    assert_true(fabs(y[i] - ye) <= ty && fabs(d[i] - de) <= td);
  }
  free(y);
  free(d);
  free(one);
}

static void test_gelu_erf(void **state) {
  (void)state;
  enum { N = 40001 };
  float *xs = fpt_alloc_floats(N);
  for (int i = 0; i < N; i++)
    xs[i] = -20.0f + 0.001f * (float)i;
  check_gelu_erf(xs, N, gelu_erf_forward, gelu_erf_backward);
  check_gelu_erf(xs, N, gelu_erf_forward_ref, gelu_erf_backward_ref);
  // NaN in, NaN out; a large x passes through.
  float sp[2] = {NAN, 30.0f}, ys[2];
  gelu_erf_forward(ys, sp, 2);
  assert_true(isnan(ys[0]) && ys[1] == 30.0f);
  free(xs);
  gelu_fd_case(gelu_erf_forward, gelu_erf_backward);
}

// --- attention ---
typedef struct {
  int B, T, q0, C, NH;
  float *qkv, *y, *att, *dy, *work;
  uint32_t *mask;
  fpt_dropout d;
} att_ctx;
static double att_loss(void *c) {
  att_ctx *k = c;
  attention_forward(k->y, k->att, k->mask, k->qkv, k->B, k->T, k->q0, k->C, k->NH, &k->d, 42,
                    k->work);
  return dot(k->y, k->dy, (size_t)k->B * (k->T - k->q0) * k->C);
}
static void attention_case(int q0, float p) {
  int64_t sample[2] = {3, 11};
  att_ctx k = {.B = 2, .T = 6, .q0 = q0, .C = 8, .NH = 2};
  k.d = (fpt_dropout){p, 7, 1, sample};
  size_t nq = (size_t)k.B * k.T * 3 * k.C, ny = (size_t)k.B * (k.T - q0) * k.C;
  k.qkv = fpt_alloc_floats(nq);
  k.y = fpt_alloc_floats(ny);
  k.dy = fpt_alloc_floats(ny);
  k.att = fpt_alloc_floats((size_t)k.B * k.NH * (k.T - q0) * k.T);
  k.work = fpt_alloc_floats(fpt_attention_work(k.T));
  k.mask = fpt_calloc((size_t)k.B * k.NH * (k.T - q0) * fpt_mask_words(k.T), sizeof(uint32_t));
  fill_normal(k.qkv, nq, 11, 1);
  fill_normal(k.dy, ny, 12, 1);
  att_loss(&k);
  float *dqkv = fpt_alloc_floats(nq);
  attention_backward(dqkv, k.dy, k.qkv, k.att, k.mask, k.B, k.T, q0, k.C, k.NH, &k.d, k.work);
  assert_true(fd_check(k.qkv, nq, dqkv, att_loss, &k) < TOL);
  // Causality: the output of query i must not depend on keys/values j > i.
  float *y0 = fpt_alloc_floats(ny);
  memcpy(y0, k.y, sizeof(float) * ny);
  k.qkv[(size_t)(k.T - 1) * 3 * k.C + k.C] += 1.0f; // key of the last position
  att_loss(&k);
  for (int t = 0; t < k.T - q0 - 1; t++)
    for (int c = 0; c < k.C; c++)
      assert_float_equal(k.y[(size_t)t * k.C + c], y0[(size_t)t * k.C + c], 0);
  free(k.qkv);
  free(k.y);
  free(k.dy);
  free(k.att);
  free(k.work);
  free(k.mask);
  free(dqkv);
  free(y0);
}
static void test_attention_fd(void **state) {
  (void)state;
  // One block (T <= block), then blocks of 2 and 4 rows over T = 6.
  for (int blk = 64; blk >= 2; blk = blk == 64 ? 4 : blk / 2) {
    fpt_attention_block = blk;
    attention_case(0, 0.0f);
    attention_case(4, 0.0f);
    attention_case(0, 0.3f);
    attention_case(3, 0.3f);
  }
  fpt_attention_block = 64;
}

// Blocked attention (keys above the diagonal skipped) = one block over all T.
static void test_attention_blocks(void **state) {
  (void)state;
  int B = 2, T = 13, C = 12, NH = 3;
  int64_t sample[2] = {5, 9};
  size_t nq = (size_t)B * T * 3 * C;
  float *qkv = fpt_alloc_floats(nq), *dy = fpt_alloc_floats((size_t)B * T * C);
  fill_normal(qkv, nq, 21, 1);
  fill_normal(dy, (size_t)B * T * C, 22, 1);
  for (int q0 = 0; q0 <= 8; q0 += 8)
    for (int drop = 0; drop < 2; drop++) {
      fpt_dropout d = {drop ? 0.25f : 0.0f, 3, 1, sample};
      int Tq = T - q0;
      size_t ny = (size_t)B * Tq * C, na = (size_t)B * NH * Tq * T;
      float *ref[3], *got[3];
      for (int run = 0; run < 5; run++) {
        static const int blocks[5] = {64, 1, 3, 4, 5};
        fpt_attention_block = blocks[run];
        float *y = fpt_alloc_floats(ny), *att = fpt_alloc_floats(na), *dq = fpt_alloc_floats(nq);
        size_t nw = fpt_attention_work(T);
        float *work = fpt_alloc_floats(nw);
        // Stale values where the kernel must not read: the results may not change.
        fill_normal(work, nw, 30 + run, 1e3f);
        fill_normal(att, na, 40 + run, 1e3f);
        size_t nm = (size_t)B * NH * Tq * fpt_mask_words(T);
        uint32_t *mask = fpt_calloc(nm, sizeof(uint32_t));
        for (size_t i = 0; i < nm; i++)
          mask[i] = 0x5a5a5a5au;
        attention_forward(y, att, mask, qkv, B, T, q0, C, NH, &d, 7, work);
        attention_backward(dq, dy, qkv, att, mask, B, T, q0, C, NH, &d, work);
        free(work);
        free(mask);
        float **dst = run == 0 ? ref : got;
        dst[0] = y, dst[1] = att, dst[2] = dq;
        if (run == 0)
          continue;
        size_t n[3] = {ny, na, nq};
        for (int t = 0; t < 3; t++)
          for (size_t i = 0; i < n[t]; i++) {
            if (t == 1 && (int)(i % T) > q0 + (int)(i / T % Tq)) // att: keys after the query's own
              continue;
            assert_float_equal(got[t][i], ref[t][i], 1e-5 * (fabsf(ref[t][i]) + 1));
          }
        for (int t = 0; t < 3; t++)
          free(got[t]);
      }
      for (int t = 0; t < 3; t++)
        free(ref[t]);
    }
  fpt_attention_block = 64;
  free(qkv);
  free(dy);
}

// --- cross-entropy ---
static void test_crossentropy(void **state) {
  (void)state;
  float z[6] = {1, 2, 3, -1, 0, 4};
  int32_t y[2] = {2, 0};
  float dz[6];
  int64_t hits = 0;
  double loss = crossentropy_forward_backward(dz, z, y, 2, 3, 0.5f, &hits);
  double l0 = log(exp(1) + exp(2) + exp(3)) - 3, l1 = log(exp(-1) + 1 + exp(4)) + 1;
  assert_float_equal(loss, l0 + l1, 1e-9);
  assert_int_equal(hits, 1);
  double s = exp(-1) + 1 + exp(4);
  assert_float_equal(dz[3], 0.5 * (exp(-1) / s - 1), 1e-7);
  assert_float_equal(dz[5], 0.5 * (exp(4) / s), 1e-7);
}

// --- GEMM split across threads vs reference ---
static void test_gemm(void **state) {
  (void)state;
  int shapes[][3] = {{37, 129, 65}, {5, 700, 300}, {300, 7, 200}, {64, 64, 64}};
  for (int s = 0; s < 4; s++)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = fpt_alloc_floats((size_t)M * K), *B = fpt_alloc_floats((size_t)K * N);
        float *C1 = fpt_alloc_floats((size_t)M * N), *C2 = fpt_alloc_floats((size_t)M * N);
        fill_normal(A, (size_t)M * K, 20 + s, 1);
        fill_normal(B, (size_t)K * N, 30 + s, 1);
        fill_normal(C1, (size_t)M * N, 40 + s, 1);
        memcpy(C2, C1, sizeof(float) * M * N);
        fpt_gemm(ta, tb, M, N, K, 0.7f, A, ta ? M : K, B, tb ? K : N, 0.5f, C1, N);
        fpt_gemm_ref(ta, tb, M, N, K, 0.7f, A, ta ? M : K, B, tb ? K : N, 0.5f, C2, N);
        for (int i = 0; i < M * N; i++)
          assert_float_equal(C1[i], C2[i], 1e-4 * (1 + fabsf(C2[i])) * sqrt(K));
        free(A);
        free(B);
        free(C1);
        free(C2);
      }
}

// --- Adam against a hand-computed torch.optim.Adam step ---
static void test_adam(void **state) {
  (void)state;
  float p[2] = {1.0f, -2.0f}, g[2] = {0.5f, -0.1f}, m[2] = {0}, v[2] = {0};
  adam_update(p, g, m, v, 2, 0.1f, 0.9f, 0.999f, 1e-8f, 1);
  // First step: m/(1-b1) = g, sqrt(v/(1-b2)) = |g| => p -= lr * sign(g).
  assert_float_equal(p[0], 0.9f, 1e-6);
  assert_float_equal(p[1], -1.9f, 1e-6);
  adam_update(p, g, m, v, 2, 0.1f, 0.9f, 0.999f, 1e-8f, 2);
  assert_float_equal(p[0], 0.8f, 1e-6);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_linear_fd),
      cmocka_unit_test(test_layernorm_fd),
      cmocka_unit_test(test_gelu_fd),
      cmocka_unit_test(test_erf_fast),
      cmocka_unit_test(test_gelu_erf),
      cmocka_unit_test(test_attention_fd),
      cmocka_unit_test(test_attention_blocks),
      cmocka_unit_test(test_crossentropy),
      cmocka_unit_test(test_gemm),
      cmocka_unit_test(test_adam),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
