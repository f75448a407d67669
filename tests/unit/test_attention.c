// Attention kernels: the masked stored-map kernel (src/model/attention.c:
// bidirectional, padded keys, readout rows) and the fused kernel that never
// stores the maps (src/model/attention_flash.c), against finite differences,
// a plain double reference, the kernel as it was before masks (bit for bit),
// padding and block-size invariance, and each other.
// Not tests: `test_attention bench T B C NH REPS [causal p qblock kblock]`
// prints the median time per call of each kernel's forward and backward
// (interleaved, after one warm-up round; FPT_BENCH_CPU=1: process CPU time
// instead of wall time), and `test_attention mem stored|flash T B C NH` the
// peak RSS of one forward and backward.
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cmocka.h>

#include "fd.h"
#include "fpt/check.h"
#include "fpt/fastmath.h"
#include "fpt/kernels.h"

// --- The causal kernel before fpt_attn_mask (src/model/attention.c at
// dc80950), renamed: the wrappers must reproduce it bit for bit. ---
// Zeros after a row's n visible keys, as far as a block's GEMM reads (at most
// QB - 1 keys further); keys beyond are never read.
static void old_zero_tail(float *row, int n, int T, int QB) {
  int end = n + QB < T ? n + QB : T;
  if (end > n)
    memset(row + n, 0, sizeof(float) * (end - n));
}

// out[j, :] = sum_i P[i, j] Y[i, :] for keys j of (T, hs) out (row stride
// ldo), P (Tq, T) zero after each row's visible keys (old_zero_tail), Y (Tq, hs) (row stride ldy):
// per block of QB keys only the query rows that can see them (i >= j0 - q0).
static void old_key_blocks_tn(float *out, const float *P, const float *Y, int ldy, int T, int q0,
                              int Tq, int hs, int ldo, int QB) {
  for (int j0 = 0; j0 < T; j0 += QB) {
    int nj = T - j0 < QB ? T - j0 : QB, i0 = j0 > q0 ? j0 - q0 : 0;
    fpt_gemm1(1, 0, nj, hs, Tq - i0, 1.0f, P + (size_t)i0 * T + j0, T, Y + (size_t)i0 * ldy, ldy,
              0.0f, out + (size_t)j0 * ldo, ldo);
  }
}

// Over query blocks of QB rows, row block [i0, i0+m) against the nk = q0+i0+m
// keys it can see: scores = alpha A B^T (trans_b: A (Tq,hs), B (T,hs), out
// (Tq,T)), or out = A B (A (Tq,T) zero after the visible keys, B (T,hs)).
static void old_query_blocks(int trans_b, int Tq, int q0, int hs, int QB, float alpha,
                             const float *A, int lda, const float *Bm, int ldb, float *out,
                             int ldo) {
  for (int i0 = 0; i0 < Tq; i0 += QB) {
    int m = Tq - i0 < QB ? Tq - i0 : QB, nk = q0 + i0 + m;
    fpt_gemm1(0, trans_b, m, trans_b ? nk : hs, trans_b ? hs : nk, alpha, A + (size_t)i0 * lda, lda,
              Bm, ldb, 0.0f, out + (size_t)i0 * ldo, ldo);
  }
}

// row[0, n) = softmax(row[0, n)); vector reductions and a vector exp.
static void old_softmax_row(float *row, int n) {
  float mx = row[0];
#pragma omp simd reduction(max : mx)
  for (int j = 1; j < n; j++)
    mx = row[j] > mx ? row[j] : mx;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int j = 0; j < n; j++) {
    row[j] = fpt_softmax_exp(row[j] - mx); // the kernel's e^-64 cut (2026-12-03)
    sum += row[j];
  }
  float inv = 1.0f / sum;
  for (int j = 0; j < n; j++)
    row[j] *= inv;
}

static void old_attention_forward(float *out, float *att, uint32_t *mask, const float *qkv, int B,
                                  int T, int q0, int C, int NH, const fpt_dropout *d, uint32_t site,
                                  float *work) {
  int hs = C / NH, Tq = T - q0, C3 = 3 * C, QB = fpt_attention_block;
  float scale = 1.0f / sqrtf((float)hs);
  int drop = d && d->p > 0.0f;
#pragma omp parallel num_threads(fpt_num_threads())
  {
    float *pd = work + (size_t)2 * omp_get_thread_num() * T * T;
#pragma omp for schedule(static)
    for (int bh = 0; bh < B * NH; bh++) {
      int b = bh / NH, h = bh % NH;
      const float *q = qkv + ((size_t)b * T + q0) * C3 + h * hs;
      const float *k = qkv + (size_t)b * T * C3 + C + h * hs;
      const float *v = k + C;
      float *p = att + (size_t)bh * Tq * T;
      old_query_blocks(1, Tq, q0, hs, QB, scale, q, C3, k, C3, p, T);
      size_t nw = fpt_mask_words(T);
      for (int i = 0; i < Tq; i++) {
        float *row = p + (size_t)i * T;
        int n = q0 + i + 1; // keys 0..q0+i are visible
        old_softmax_row(row, n);
        old_zero_tail(row, n, T, QB);
        if (drop) { // while the row is in cache
          // Element index of the mask: (head, query, key) of the full T x T map.
          float *pdr = pd + (size_t)i * T;
          dropout_row(pdr, row, d, site, d->sample[b], (uint64_t)(h * T + q0 + i) * T, n,
                      mask + ((size_t)bh * Tq + i) * nw);
          old_zero_tail(pdr, n, T, QB);
        }
      }
      const float *pv = drop ? pd : p;
      old_query_blocks(0, Tq, q0, hs, QB, 1.0f, pv, T, v, C3, out + (size_t)b * Tq * C + h * hs, C);
    }
  }
}

static void old_attention_backward(float *dqkv, const float *dout, const float *qkv,
                                   const float *att, const uint32_t *mask, int B, int T, int q0,
                                   int C, int NH, const fpt_dropout *d, float *work) {
  int hs = C / NH, Tq = T - q0, C3 = 3 * C, QB = fpt_attention_block;
  float scale = 1.0f / sqrtf((float)hs);
  int drop = d && d->p > 0.0f;
#pragma omp parallel num_threads(fpt_num_threads())
  {
    float *dp = work + (size_t)2 * omp_get_thread_num() * T * T, *pd = dp + (size_t)T * T;
#pragma omp for schedule(static)
    for (int bh = 0; bh < B * NH; bh++) {
      int b = bh / NH, h = bh % NH;
      const float *q = qkv + ((size_t)b * T + q0) * C3 + h * hs;
      const float *k = qkv + (size_t)b * T * C3 + C + h * hs;
      const float *v = k + C;
      float *dq = dqkv + (size_t)b * T * C3 + h * hs;
      float *dk = dq + C, *dv = dq + 2 * C;
      const float *p = att + (size_t)bh * Tq * T;
      const float *dy = dout + (size_t)b * Tq * C + h * hs;
      const uint32_t *bits = drop ? mask + (size_t)bh * Tq * fpt_mask_words(T) : NULL;
      // dPd = dY V^T
      old_query_blocks(1, Tq, q0, hs, QB, 1.0f, dy, C, v, C3, dp, T);
      // Row by row, while the row is in cache: Pd = mask(P), dP = mask(dPd),
      // then the softmax backward in place (dp becomes dS, scaled scores).
      size_t nw = fpt_mask_words(T);
      for (int i = 0; i < Tq; i++) {
        const float *pr = p + (size_t)i * T;
        float *dr = dp + (size_t)i * T;
        int n = q0 + i + 1;
        if (drop) {
          dropout_row_bits(pd + (size_t)i * T, pr, bits + i * nw, d, n);
          old_zero_tail(pd + (size_t)i * T, n, T, QB);
          dropout_row_bits(dr, dr, bits + i * nw, d, n);
        }
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int j = 0; j < n; j++)
          s += pr[j] * dr[j];
        for (int j = 0; j < n; j++)
          dr[j] = pr[j] * (dr[j] - s) * scale;
        old_zero_tail(dr, n, T, QB);
      }
      // dV = Pd^T dY, by key blocks: query rows below a key block's first key see none of it.
      old_key_blocks_tn(dv, drop ? pd : p, dy, C, T, q0, Tq, hs, C3, QB);
      for (int t = 0; t < q0; t++)
        memset(dq + (size_t)t * C3, 0, sizeof(float) * hs);
      old_query_blocks(0, Tq, q0, hs, QB, 1.0f, dp, T, k, C3, dq + (size_t)q0 * C3, C3);
      old_key_blocks_tn(dk, dp, q, C3, T, q0, Tq, hs, C3, QB);
    }
  }
}

// --- A problem: inputs, mask, dropout; runs of either kernel ---
#define MAXB 4
typedef struct {
  int B, T, q0, C, NH;
  fpt_attn_mask am;
  int32_t klen[MAXB];
  int64_t sample[MAXB];
  fpt_dropout d;
  uint32_t site;
  float *qkv, *dy;
} problem;

typedef struct {
  float *out, *att, *lse, *dqkv;
  uint32_t *mask;
} result;

static size_t n_qkv(const problem *P) { return (size_t)P->B * P->T * 3 * P->C; }
static size_t n_out(const problem *P) { return (size_t)P->B * (P->T - P->q0) * P->C; }
static size_t n_att(const problem *P) { return (size_t)P->B * P->NH * (P->T - P->q0) * P->T; }

// klen: NULL for all keys, else copied. p: dropout probability.
static void problem_init(problem *P, int B, int T, int q0, int C, int NH, int causal,
                         const int32_t *klen, float p, uint64_t seed) {
  memset(P, 0, sizeof *P);
  P->B = B, P->T = T, P->q0 = q0, P->C = C, P->NH = NH;
  for (int b = 0; b < B; b++) {
    P->sample[b] = 3 + 7 * b;
    P->klen[b] = klen ? klen[b] : T;
  }
  P->am.causal = causal;
  P->am.klen = klen ? P->klen : NULL;
  P->d = (fpt_dropout){p, 7, 1, P->sample};
  P->site = 42;
  P->qkv = fpt_alloc_floats(n_qkv(P));
  P->dy = fpt_alloc_floats(n_out(P));
  fill_normal(P->qkv, n_qkv(P), seed, 1);
  fill_normal(P->dy, n_out(P), seed + 1, 1);
}
static void problem_free(problem *P) {
  free(P->qkv);
  free(P->dy);
}
static void result_free(result *r) {
  free(r->out);
  free(r->att);
  free(r->lse);
  free(r->dqkv);
  free(r->mask);
  memset(r, 0, sizeof *r);
}

static void run_stored(const problem *P, result *r, int backward) {
  size_t nw = fpt_attention_work(P->T);
  float *work = fpt_alloc_floats(nw);
  fill_normal(work, nw, 77, 1e3f); // stale scratch must not matter
  r->out = fpt_alloc_floats(n_out(P));
  r->att = fpt_alloc_floats(n_att(P));
  size_t nm = (size_t)P->B * P->NH * (P->T - P->q0) * fpt_mask_words(P->T);
  r->mask = fpt_calloc(nm, sizeof(uint32_t));
  attention_forward_masked(r->out, r->att, r->mask, P->qkv, P->B, P->T, P->q0, P->C, P->NH, &P->am,
                           &P->d, P->site, work);
  if (backward) {
    r->dqkv = fpt_alloc_floats(n_qkv(P));
    fill_normal(r->dqkv, n_qkv(P), 78, 1e3f); // overwritten, not accumulated
    attention_backward_masked(r->dqkv, P->dy, P->qkv, r->att, r->mask, P->B, P->T, P->q0, P->C,
                              P->NH, &P->am, &P->d, work);
  }
  free(work);
}

// keep_bits: the forward stores the dropout keep bits for the backward
// (else the backward draws them again).
static int keep_bits;
static void run_flash(const problem *P, result *r, int backward) {
  size_t nw = fpt_attention_flash_work(P->T);
  float *work = fpt_alloc_floats(nw);
  fill_normal(work, nw, 79, 1e3f);
  r->out = fpt_alloc_floats(n_out(P));
  fill_normal(r->out, n_out(P), 80, 1e3f);
  r->lse = fpt_alloc_floats((size_t)P->B * P->NH * (P->T - P->q0));
  if (keep_bits) {
    size_t nm = (size_t)P->B * P->NH * (P->T - P->q0) * fpt_mask_words(P->T);
    r->mask = fpt_calloc(nm, sizeof(uint32_t));
    for (size_t i = 0; i < nm; i++)
      r->mask[i] = 0xa5a5a5a5u; // the forward must clear what it does not set
  }
  attention_flash_forward(r->out, r->lse, r->mask, P->qkv, P->B, P->T, P->q0, P->C, P->NH, &P->am,
                          &P->d, P->site, work);
  if (backward) {
    r->dqkv = fpt_alloc_floats(n_qkv(P));
    fill_normal(r->dqkv, n_qkv(P), 81, 1e3f);
    attention_flash_backward(r->dqkv, P->dy, r->out, r->lse, r->mask, P->qkv, P->B, P->T, P->q0,
                             P->C, P->NH, &P->am, &P->d, P->site, work);
  }
  free(work);
}

// Visible keys of row i (query q0+i) of sample b.
static int visible_of(const problem *P, int b, int i) {
  int n = P->am.causal ? P->q0 + i + 1 : P->T, kl = P->am.klen ? P->am.klen[b] : P->T;
  return n < kl ? n : kl;
}

// max |a - b| / max |b| (the error relative to the array's scale).
static double maxrel(const float *a, const float *b, size_t n) {
  double d = 0, s = 0;
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)a[i] - b[i]);
    d = e > d ? e : d;
    s = fabs((double)b[i]) > s ? fabs((double)b[i]) : s;
  }
  return s > 0 ? d / s : d;
}
// The same over the dq, dk or dv columns (part 0, 1, 2) of dqkv.
static double maxrel_part(const problem *P, const float *a, const float *b, int part) {
  double d = 0, s = 0;
  for (size_t r = 0; r < (size_t)P->B * P->T; r++)
    for (int c = 0; c < P->C; c++) {
      size_t i = r * 3 * P->C + (size_t)part * P->C + c;
      double e = fabs((double)a[i] - b[i]);
      d = e > d ? e : d;
      s = fabs((double)b[i]) > s ? fabs((double)b[i]) : s;
    }
  return s > 0 ? d / s : d;
}

static double worst[16]; // largest errors seen, by kind, printed at the end
enum {
  W_FD_STORED,
  W_FD_FLASH,
  W_REF_STORED,
  W_REF_FLASH,
  W_PAD,
  W_BLOCKS,
  W_FLASH_OUT,
  W_FLASH_DQ,
  W_FLASH_DK,
  W_FLASH_DV,
  W_PROBS,
  W_FLASH_BLOCKS,
  W_N
};
static const char *worst_name[W_N] = {"FD stored-map backward",
                                      "FD flash backward",
                                      "stored forward vs double reference",
                                      "flash forward vs double reference",
                                      "padding invariance",
                                      "stored small blocks vs one block",
                                      "flash vs stored: out",
                                      "flash vs stored: dq",
                                      "flash vs stored: dk",
                                      "flash vs stored: dv",
                                      "flash probs vs stored map",
                                      "flash block sizes vs 64x64"};
static void note(int kind, double e) {
  if (e > worst[kind])
    worst[kind] = e;
}

// --- Finite differences of either kernel's backward ---
#define H 1e-2f
#define TOL 5e-3
typedef struct {
  problem *P;
  int flash;
} fd_ctx;
static double fd_loss(fd_ctx *c) {
  result r = {0};
  if (c->flash)
    run_flash(c->P, &r, 0);
  else
    run_stored(c->P, &r, 0);
  double l = dot(r.out, c->P->dy, n_out(c->P));
  result_free(&r);
  return l;
}
static double fd_check(fd_ctx *c, const float *grad) {
  problem *P = c->P;
  size_t n = n_qkv(P);
  double *fd = calloc(n, sizeof(double)), *an = calloc(n, sizeof(double));
  for (size_t i = 0; i < n; i++) {
    float keep = P->qkv[i];
    P->qkv[i] = keep + H;
    double lp = fd_loss(c);
    P->qkv[i] = keep - H;
    double lm = fd_loss(c);
    P->qkv[i] = keep;
    fd[i] = (lp - lm) / (2.0 * H);
    an[i] = grad[i];
  }
  double e = rel_err(an, fd, n, 1e-3);
  free(fd);
  free(an);
  return e;
}

static void fd_case(int flash, int causal, const int32_t *klen, int q0, float p) {
  problem P;
  problem_init(&P, 2, 7, q0, 8, 2, causal, klen, p, 11);
  result r = {0};
  if (flash)
    run_flash(&P, &r, 1);
  else
    run_stored(&P, &r, 1);
  fd_ctx c = {&P, flash};
  double e = fd_check(&c, r.dqkv);
  note(flash ? W_FD_FLASH : W_FD_STORED, e);
  assert_true(e < TOL);
  result_free(&r);
  problem_free(&P);
}

static void fd_sweep(int flash) {
  static const int32_t klen[2] = {4, 6};
  for (int causal = 0; causal < 2; causal++)
    for (int kk = 0; kk < 2; kk++)
      for (int q0 = 0; q0 <= 3; q0 += 3)
        for (int drop = 0; drop < 2; drop++)
          fd_case(flash, causal, kk ? klen : NULL, q0, drop ? 0.3f : 0.0f);
}

// fpt_exp_fast: within a few ulp of expf over the clamp range, exact 1 at 0,
// NaN in gives NaN out (and no undefined int conversion; UBSan in the fuzz
// build), +-inf saturate to the clamp.
static void test_exp_fast(void **state) {
  (void)state;
  double worst = 0;
  for (float x = -80.0f; x <= 80.0f; x += 0.0137f) {
    double rel = fabs((double)fpt_exp_fast(x) - exp((double)x)) / exp((double)x);
    worst = rel > worst ? rel : worst;
  }
  assert_true(worst < 1e-6);
  assert_true(fpt_exp_fast(0.0f) == 1.0f);
  assert_true(isnan(fpt_exp_fast(NAN)));
  assert_true(isnan(fpt_exp_fast(-NAN)));
  assert_true(fpt_exp_fast(-INFINITY) >= 0.0f && fpt_exp_fast(-INFINITY) < 1e-34f);
  assert_true(isfinite(fpt_exp_fast(INFINITY)) && fpt_exp_fast(INFINITY) > 1e34f);
}

static void test_stored_fd(void **state) {
  (void)state;
  // One block, then blocks of 2 and 3 rows over T = 7.
  static const int blocks[3] = {64, 3, 2};
  for (int bi = 0; bi < 3; bi++) {
    fpt_attention_block = blocks[bi];
    fd_sweep(0);
  }
  fpt_attention_block = 64;
}

static void test_flash_fd(void **state) {
  (void)state;
  static const int blocks[3][2] = {{64, 64}, {2, 3}, {3, 2}};
  for (int bi = 0; bi < 3; bi++) {
    fpt_attention_flash_qblock = blocks[bi][0];
    fpt_attention_flash_kblock = blocks[bi][1];
    keep_bits = bi == 1; // keep bits stored by the forward, or drawn again
    fd_sweep(1);
  }
  keep_bits = 0;
  fpt_attention_flash_qblock = fpt_attention_flash_kblock = 64;
}

// --- Forward against a plain double computation of the definition ---
static void ref_forward(double *out, const problem *P) {
  int hs = P->C / P->NH, Tq = P->T - P->q0, C3 = 3 * P->C;
  double scale = 1.0 / sqrt((double)hs), keep = 1.0 / (1.0 - (double)P->d.p);
  double *s = calloc((size_t)P->T, sizeof(double));
  for (int b = 0; b < P->B; b++)
    for (int h = 0; h < P->NH; h++)
      for (int i = 0; i < Tq; i++) {
        int n = visible_of(P, b, i), t = P->q0 + i;
        const float *q = P->qkv + ((size_t)b * P->T + t) * C3 + h * hs;
        double mx = -1e300, sum = 0;
        for (int j = 0; j < n; j++) {
          const float *k = P->qkv + ((size_t)b * P->T + j) * C3 + P->C + h * hs;
          double a = 0;
          for (int e = 0; e < hs; e++)
            a += (double)q[e] * k[e];
          s[j] = a * scale;
          mx = s[j] > mx ? s[j] : mx;
        }
        for (int j = 0; j < n; j++)
          sum += (s[j] = exp(s[j] - mx));
        double *o = out + ((size_t)b * Tq + i) * P->C + h * hs;
        for (int e = 0; e < hs; e++)
          o[e] = 0;
        for (int j = 0; j < n; j++) {
          double pj = s[j] / sum;
          if (P->d.p > 0)
            pj = dropout_keep(&P->d, P->site, P->sample[b], ((uint64_t)h * P->T + t) * P->T + j)
                     ? pj * keep
                     : 0;
          const float *v = P->qkv + ((size_t)b * P->T + j) * C3 + 2 * P->C + h * hs;
          for (int e = 0; e < hs; e++)
            o[e] += pj * v[e];
        }
      }
  free(s);
}

// The double reference's output, rounded to float.
static float *ref_floats(const problem *P) {
  size_t n = n_out(P);
  double *ref = calloc(n, sizeof(double));
  ref_forward(ref, P);
  float *rf = fpt_alloc_floats(n);
  for (size_t i = 0; i < n; i++)
    rf[i] = (float)ref[i];
  free(ref);
  return rf;
}

static void run_kernel(const problem *P, result *r, int flash, int backward) {
  if (flash)
    run_flash(P, r, backward);
  else
    run_stored(P, r, backward);
}

static void test_reference(void **state) {
  (void)state;
  static const int Ts[4] = {1, 6, 33, 70};
  for (int ti = 0; ti < 4; ti++)
    for (int causal = 0; causal < 2; causal++)
      for (int kk = 0; kk < 2; kk++)
        for (int drop = 0; drop < 2; drop++) {
          int T = Ts[ti], q0 = T / 3;
          int32_t klen[2] = {T, T / 2 + 1};
          problem P;
          problem_init(&P, 2, T, q0, 12, 3, causal, kk ? klen : NULL, drop ? 0.25f : 0.0f, 5 + ti);
          size_t n = n_out(&P);
          float *rf = ref_floats(&P);
          for (int flash = 0; flash < 2; flash++) {
            result r = {0};
            run_kernel(&P, &r, flash, 0);
            double e = maxrel(r.out, rf, n);
            note(flash ? W_REF_FLASH : W_REF_STORED, e);
            assert_true(e < 1e-5);
            result_free(&r);
          }
          free(rf);
          problem_free(&P);
        }
}

// One row of probabilities pr (T) against its scores z in double: each is 0
// or at least e^-64 of the row's largest, and 0 exactly where z says. Counts
// the cut entries that the kernel kept before the cut (e^-87 < p < e^-64) and
// the small ones it keeps.
static void check_cut_row(const float *pr, const double *z, int T, int *cut, int *kept_small) {
  double mx = -1e300;
  float pmax = 0.0f;
  for (int j = 0; j < T; j++) {
    mx = z[j] > mx ? z[j] : mx;
    pmax = pr[j] > pmax ? pr[j] : pmax;
  }
  for (int j = 0; j < T; j++) {
    assert_true(pr[j] == 0.0f || pr[j] >= 1.5e-28f * pmax);
    if (z[j] - mx < -64.5)
      assert_true(pr[j] == 0.0f);
    if (z[j] - mx > -63.5)
      assert_true(pr[j] > 0.0f);
    *cut += z[j] - mx < -64.5 && z[j] - mx > -87.0;
    *kept_small += z[j] - mx > -63.5 && z[j] - mx < -40.0;
  }
}

// fpt_softmax_exp cuts at e^-64. On scores that span hundreds, every stored
// or fused probability is 0 or at least e^-64 of its row's largest (so no
// product with it goes subnormal), the cut is where the scores in double say,
// and the output still matches the double reference.
static void test_softmax_cut(void **state) {
  (void)state;
  assert_true(fpt_softmax_exp(-64.01f) == 0.0f && fpt_softmax_exp(-1e30f) == 0.0f);
  assert_true(fpt_softmax_exp(-63.99f) == fpt_exp_fast(-63.99f) && fpt_softmax_exp(0.0f) == 1.0f);
  assert_true(isnan(fpt_softmax_exp(NAN)));
  enum { B = 2, T = 40, C = 8, NH = 2, C3 = 3 * C, hs = C / NH };
  problem P;
  problem_init(&P, B, T, 0, C, NH, 0, NULL, 0.0f, 91);
  for (size_t i = 0; i < n_qkv(&P); i++)
    if (i % C3 < (size_t)2 * C)
      P.qkv[i] *= 12.0f; // q and k: scores with a spread of hundreds
  float *rf = ref_floats(&P), *pm = fpt_alloc_floats((size_t)T * T);
  int cut = 0, kept_small = 0;
  for (int flash = 0; flash < 2; flash++) {
    result r = {0};
    run_kernel(&P, &r, flash, 1);
    assert_true(maxrel(r.out, rf, n_out(&P)) < 1e-5);
    for (int b = 0; b < B; b++)
      for (int h = 0; h < NH; h++) {
        if (flash)
          attention_flash_probs(pm, P.qkv, r.lse, b, h, T, 0, C, NH, &P.am);
        const float *pb = flash ? pm : r.att + ((size_t)b * NH + h) * T * T;
        for (int i = 0; i < T; i++) {
          const float *q = P.qkv + ((size_t)b * T + i) * C3 + h * hs;
          double z[T];
          for (int j = 0; j < T; j++) {
            const float *k = P.qkv + ((size_t)b * T + j) * C3 + C + h * hs;
            z[j] = 0;
            for (int e = 0; e < hs; e++)
              z[j] += (double)q[e] * k[e] / sqrt((double)hs);
          }
          check_cut_row(pb + (size_t)i * T, z, T, &cut, &kept_small);
        }
      }
    result_free(&r);
  }
  assert_true(cut > 20 && kept_small > 20); // the scores exercise both sides
  free(rf);
  free(pm);
  problem_free(&P);
}

// --- causal = 1, klen = NULL: the old kernel, bit for bit ---
static void test_old_kernel_bitwise(void **state) {
  (void)state;
  static const int Ts[3] = {13, 64, 150};
  static const int blocks[3] = {64, 3, 5};
  for (int ti = 0; ti < 3; ti++)
    for (int bi = 0; bi < 3; bi++)
      for (int q0i = 0; q0i < 2; q0i++)
        for (int drop = 0; drop < 2; drop++) {
          fpt_attention_block = blocks[bi];
          int T = Ts[ti], q0 = q0i ? T - 5 : 0, Tq = T - q0;
          problem P;
          problem_init(&P, 2, T, q0, 12, 3, 1, NULL, drop ? 0.2f : 0.0f, 31 + ti);
          result r = {0};
          run_stored(&P, &r, 1); // the masked kernel with {1, NULL}
          size_t nw = fpt_attention_work(T), na = n_att(&P);
          size_t nm = (size_t)P.B * P.NH * Tq * fpt_mask_words(T);
          float *work = fpt_alloc_floats(nw), *out = fpt_alloc_floats(n_out(&P));
          float *att = fpt_alloc_floats(na), *dqkv = fpt_alloc_floats(n_qkv(&P));
          float *out2 = fpt_alloc_floats(n_out(&P)), *dqkv2 = fpt_alloc_floats(n_qkv(&P));
          uint32_t *mask = fpt_calloc(nm, sizeof(uint32_t)),
                   *mask2 = fpt_calloc(nm, sizeof(uint32_t));
          old_attention_forward(out, att, mask, P.qkv, P.B, T, q0, P.C, P.NH, &P.d, P.site, work);
          old_attention_backward(dqkv, P.dy, P.qkv, att, mask, P.B, T, q0, P.C, P.NH, &P.d, work);
          // The public wrappers too.
          float *att2 = fpt_alloc_floats(na);
          attention_forward(out2, att2, mask2, P.qkv, P.B, T, q0, P.C, P.NH, &P.d, P.site, work);
          attention_backward(dqkv2, P.dy, P.qkv, att2, mask2, P.B, T, q0, P.C, P.NH, &P.d, work);
          assert_memory_equal(r.out, out, sizeof(float) * n_out(&P));
          assert_memory_equal(out2, out, sizeof(float) * n_out(&P));
          assert_memory_equal(r.dqkv, dqkv, sizeof(float) * n_qkv(&P));
          assert_memory_equal(dqkv2, dqkv, sizeof(float) * n_qkv(&P));
          if (drop) {
            assert_memory_equal(r.mask, mask, sizeof(uint32_t) * nm);
            assert_memory_equal(mask2, mask, sizeof(uint32_t) * nm);
          }
          for (size_t i = 0; i < na; i++) // the defined part of the maps
            if ((int)(i % T) <= q0 + (int)(i / T % Tq)) {
              assert_memory_equal(&r.att[i], &att[i], sizeof(float));
              assert_memory_equal(&att2[i], &att[i], sizeof(float));
            }
          free(work), free(out), free(att), free(dqkv), free(out2), free(att2), free(dqkv2);
          free(mask), free(mask2);
          result_free(&r);
          problem_free(&P);
        }
  fpt_attention_block = 64;
}

// --- Small blocks = one block (stored-map kernel, every mask) ---
static void test_stored_blocks(void **state) {
  (void)state;
  static const int blocks[5] = {1, 2, 3, 4, 5};
  for (int causal = 0; causal < 2; causal++)
    for (int kk = 0; kk < 2; kk++)
      for (int q0 = 0; q0 <= 8; q0 += 8)
        for (int drop = 0; drop < 2; drop++) {
          int32_t klen[2] = {9, 4};
          problem P;
          problem_init(&P, 2, 13, q0, 12, 3, causal, kk ? klen : NULL, drop ? 0.25f : 0.0f, 21);
          fpt_attention_block = 64;
          result ref = {0};
          run_stored(&P, &ref, 1);
          for (int bi = 0; bi < 5; bi++) {
            fpt_attention_block = blocks[bi];
            result r = {0};
            run_stored(&P, &r, 1);
            double e = fmax(maxrel(r.out, ref.out, n_out(&P)), maxrel(r.dqkv, ref.dqkv, n_qkv(&P)));
            int Tq = P.T - q0;
            for (size_t i = 0; i < n_att(&P); i++) {
              int b = (int)(i / ((size_t)P.NH * Tq * P.T)), row = (int)(i / P.T % Tq);
              if ((int)(i % P.T) < visible_of(&P, b, row))
                e = fmax(e, fabs(r.att[i] - ref.att[i]));
            }
            note(W_BLOCKS, e);
            assert_true(e < 1e-5);
            result_free(&r);
          }
          result_free(&ref);
          problem_free(&P);
        }
  fpt_attention_block = 64;
}

// --- Padded keys: a sample with klen = L and junk at positions >= L gives,
// on rows < L, what the same sample gives at T = L. Gradients too, when the
// loss ignores the padded rows: dk = dv = 0 exactly at keys >= L. ---
static void pad_case(int flash, int causal, int q0) {
  int T = 11, L = 6, C = 12, NH = 3, C3 = 3 * C;
  int32_t klen[2] = {L, T};
  problem A, S;
  problem_init(&A, 2, T, q0, C, NH, causal, klen, 0.0f, 51);
  problem_init(&S, 1, L, q0, C, NH, causal, NULL, 0.0f, 52);
  for (int t = L; t < T; t++) // junk beyond the real keys of sample 0
    fill_normal(A.qkv + (size_t)t * C3, C3, 60 + t, 30.0f);
  memcpy(S.qkv, A.qkv, sizeof(float) * L * C3);
  for (int i = 0; i < T - q0; i++)
    for (int c = 0; c < C; c++) {
      float *y = A.dy + (size_t)i * C + c;
      if (q0 + i >= L)
        *y = 0.0f; // the loss ignores padded rows
      else
        S.dy[(size_t)i * C + c] = *y;
    }
  result ra = {0}, rs = {0};
  if (flash) {
    run_flash(&A, &ra, 1);
    run_flash(&S, &rs, 1);
  } else {
    run_stored(&A, &ra, 1);
    run_stored(&S, &rs, 1);
  }
  double e = maxrel(ra.out, rs.out, (size_t)(L - q0) * C);
  e = fmax(e, maxrel(ra.dqkv, rs.dqkv, (size_t)L * C3));
  note(W_PAD, e);
  assert_true(e < 1e-6);
  for (int t = L; t < T; t++)
    for (int c = C; c < C3; c++)
      assert_true(ra.dqkv[(size_t)t * C3 + c] == 0.0f);
  result_free(&ra);
  result_free(&rs);
  problem_free(&A);
  problem_free(&S);
}

static void test_padding(void **state) {
  (void)state;
  for (int flash = 0; flash < 2; flash++)
    for (int causal = 0; causal < 2; causal++)
      for (int q0 = 0; q0 <= 2; q0 += 2) {
        pad_case(flash, causal, q0);
        fpt_attention_block = 2;
        fpt_attention_flash_qblock = 3, fpt_attention_flash_kblock = 2;
        keep_bits = 1;
        pad_case(flash, causal, q0);
        keep_bits = 0;
        fpt_attention_block = 64;
        fpt_attention_flash_qblock = fpt_attention_flash_kblock = 64;
      }
}

// --- Invisible keys: probability exactly 0, and exactly 0 gradient to their
// k and v from that row (dout nonzero in one row only). ---
static void test_invisible_exact_zero(void **state) {
  (void)state;
  for (int flash = 0; flash < 3; flash++) // stored map; flash; flash keeping the bits
    for (int causal = 0; causal < 2; causal++)
      for (int drop = 0; drop < 2; drop++) {
        keep_bits = flash == 2;
        int T = 9, q0 = 2, Tq = T - q0, C = 8, NH = 2, C3 = 3 * C, hs = C / NH;
        int32_t klen[2] = {5, 9};
        problem P;
        problem_init(&P, 2, T, q0, C, NH, causal, klen, drop ? 0.3f : 0.0f, 71);
        for (int b = 0; b < 2; b++)
          for (int row = 0; row < Tq; row++) {
            memset(P.dy, 0, sizeof(float) * n_out(&P));
            fill_normal(P.dy + ((size_t)b * Tq + row) * C, C, 72 + row, 1);
            result r = {0};
            if (flash)
              run_flash(&P, &r, 1);
            else
              run_stored(&P, &r, 1);
            int n = visible_of(&P, b, row);
            for (int t = 0; t < T; t++)
              for (int c = 0; c < C; c++) {
                const float *g = r.dqkv + ((size_t)b * T + t) * C3;
                if (t >= n) {
                  assert_true(g[C + c] == 0.0f);
                  assert_true(g[2 * C + c] == 0.0f);
                }
                if (t != q0 + row)
                  assert_true(g[c] == 0.0f);
              }
            // Probabilities of the invisible keys of every row are 0.
            float *pm = flash ? fpt_alloc_floats((size_t)Tq * T) : NULL;
            for (int h = 0; h < NH; h++) {
              if (flash)
                attention_flash_probs(pm, P.qkv, r.lse, b, h, T, q0, C, NH, &P.am);
              for (int i = 0; i < Tq; i++) {
                int ni = visible_of(&P, b, i);
                const float *pr =
                    flash ? pm + (size_t)i * T : r.att + (((size_t)b * NH + h) * Tq + i) * T;
                int end = flash ? T : (ni + fpt_attention_block < T ? ni + fpt_attention_block : T);
                for (int j = ni; j < end; j++)
                  assert_true(pr[j] == 0.0f);
                for (int j = 0; j < ni; j++)
                  assert_true(pr[j] > 0.0f);
              }
            }
            (void)hs;
            free(pm);
            result_free(&r);
          }
        problem_free(&P);
      }
  keep_bits = 0;
}

// --- Flash against the stored-map kernel: out, dq, dk, dv, probabilities ---
static void flash_vs_stored(int T, int q0, int causal, const int32_t *klen, float p, int C, int NH,
                            uint64_t seed) {
  problem P;
  problem_init(&P, 2, T, q0, C, NH, causal, klen, p, seed);
  result rs = {0}, rf = {0};
  run_stored(&P, &rs, 1);
  run_flash(&P, &rf, 1);
  double e[4] = {maxrel(rf.out, rs.out, n_out(&P)), maxrel_part(&P, rf.dqkv, rs.dqkv, 0),
                 maxrel_part(&P, rf.dqkv, rs.dqkv, 1), maxrel_part(&P, rf.dqkv, rs.dqkv, 2)};
  for (int i = 0; i < 4; i++) {
    note(W_FLASH_OUT + i, e[i]);
    if (e[i] >= 2e-5)
      print_message("T=%d q0=%d causal=%d klen=%s p=%g blocks %dx%d: error %d = %g\n", T, q0,
                    causal, klen ? "yes" : "no", p, fpt_attention_flash_qblock,
                    fpt_attention_flash_kblock, i, e[i]);
    assert_true(e[i] < 2e-5);
  }
  // Probabilities, recomputed from lse, against the stored map (visible keys).
  int Tq = T - q0;
  float *pm = fpt_alloc_floats((size_t)Tq * T);
  double ep = 0;
  for (int b = 0; b < P.B; b++)
    for (int h = 0; h < NH; h++) {
      attention_flash_probs(pm, P.qkv, rf.lse, b, h, T, q0, C, NH, &P.am);
      for (int i = 0; i < Tq; i++)
        for (int j = 0; j < visible_of(&P, b, i); j++) {
          float a = pm[(size_t)i * T + j], s = rs.att[(((size_t)b * NH + h) * Tq + i) * T + j];
          ep = fmax(ep, fabs(a - s));
        }
    }
  note(W_PROBS, ep);
  assert_true(ep < 1e-6);
  if (keep_bits && p > 0) { // the same keep bits of every visible element
    size_t nw = fpt_mask_words(T);
    for (int b = 0; b < P.B; b++)
      for (int h = 0; h < NH; h++)
        for (int i = 0; i < Tq; i++) {
          size_t row = ((size_t)b * NH + h) * Tq + i;
          for (int j = 0; j < visible_of(&P, b, i); j++)
            assert_int_equal((rf.mask[row * nw + j / 32] >> (j % 32)) & 1u,
                             (rs.mask[row * nw + j / 32] >> (j % 32)) & 1u);
          for (int j = visible_of(&P, b, i); j < T; j++) // the flash kernel clears the rest
            assert_int_equal((rf.mask[row * nw + j / 32] >> (j % 32)) & 1u, 0);
        }
  }
  free(pm);
  result_free(&rs);
  result_free(&rf);
  problem_free(&P);
}

static void test_flash_vs_stored(void **state) {
  (void)state;
  static const int Ts[] = {1, 2, 3, 5, 17, 49, 63, 64, 65, 100, 129, 300};
  static const int blocks[3][2] = {{64, 64}, {16, 48}, {7, 5}};
  int nT = (int)(sizeof Ts / sizeof Ts[0]), combo = 0;
  for (int ti = 0; ti < nT; ti++)
    for (int qi = 0; qi < 3; qi++)
      for (int causal = 0; causal < 2; causal++)
        for (int kk = 0; kk < 2; kk++)
          for (int drop = 0; drop < 2; drop++, combo++) {
            int T = Ts[ti], q0 = qi == 0 ? 0 : (qi == 1 ? T / 3 : T - 1);
            int32_t klen[2] = {T / 2 + 1, 1 + combo % T};
            fpt_attention_flash_qblock = blocks[combo % 3][0];
            fpt_attention_flash_kblock = blocks[combo % 3][1];
            keep_bits = combo / 3 % 2;
            flash_vs_stored(T, q0, causal, kk ? klen : NULL, drop ? 0.2f : 0.0f, 16, 2,
                            100 + combo);
          }
  keep_bits = 0;
  // The backbone's head size (32), long enough for several blocks of both kinds.
  fpt_attention_flash_qblock = fpt_attention_flash_kblock = 64;
  for (int causal = 0; causal < 2; causal++)
    for (int drop = 0; drop < 2; drop++) {
      int32_t klen[2] = {300, 211};
      for (keep_bits = 0; keep_bits < 2; keep_bits++) {
        flash_vs_stored(300, 0, causal, klen, drop ? 0.1f : 0.0f, 128, 4, 500 + causal);
        flash_vs_stored(300, 0, causal, NULL, drop ? 0.1f : 0.0f, 128, 4, 510 + causal);
        flash_vs_stored(300, 250, causal, klen, drop ? 0.1f : 0.0f, 128, 4, 520 + causal);
      }
    }
  keep_bits = 0;
}

// --- Flash block sizes change rounding only ---
static void test_flash_blocks(void **state) {
  (void)state;
  static const int blocks[6][2] = {{1, 1}, {2, 3}, {5, 4}, {3, 64}, {64, 7}, {200, 200}};
  for (int causal = 0; causal < 2; causal++)
    for (int drop = 0; drop < 2; drop++)
      for (int q0 = 0; q0 <= 40; q0 += 40) {
        int32_t klen[2] = {71, 30};
        problem P;
        problem_init(&P, 2, 71, q0, 12, 3, causal, klen, drop ? 0.25f : 0.0f, 91);
        fpt_attention_flash_qblock = fpt_attention_flash_kblock = 64;
        result ref = {0};
        run_flash(&P, &ref, 1);
        for (int bi = 0; bi < 6; bi++) {
          fpt_attention_flash_qblock = blocks[bi][0];
          fpt_attention_flash_kblock = blocks[bi][1];
          keep_bits = bi % 2;
          result r = {0};
          run_flash(&P, &r, 1);
          keep_bits = 0;
          double e = fmax(maxrel(r.out, ref.out, n_out(&P)), maxrel(r.dqkv, ref.dqkv, n_qkv(&P)));
          note(W_FLASH_BLOCKS, e);
          assert_true(e < 1e-5);
          result_free(&r);
        }
        result_free(&ref);
        problem_free(&P);
      }
  fpt_attention_flash_qblock = fpt_attention_flash_kblock = 64;
}

static void test_report(void **state) {
  (void)state;
  for (int k = 0; k < W_N; k++)
    print_message("max error, %-36s %.3g\n", worst_name[k], worst[k]);
}

// --- Timing and memory (not a test) ---
static int use_cpu_time; // FPT_BENCH_CPU=1: process CPU time instead of wall time
static double now(void) {
  struct timespec ts;
  clock_gettime(use_cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(double), cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Bytes a kernel keeps between forward and backward plus its scratch.
static double mem_stored(int B, int T, int q0, int NH) {
  size_t Tq = (size_t)(T - q0);
  return 4.0 * ((double)B * NH * Tq * T + (double)B * NH * Tq * fpt_mask_words(T) +
                (double)fpt_attention_work(T));
}
static double mem_flash(int B, int T, int q0, int NH) {
  return 4.0 * ((double)B * NH * (T - q0) + (double)fpt_attention_flash_work(T));
}

// bench T B C NH REPS [causal] [p] [qblock kblock] [which]: median ms of forward and backward of
// each kernel.
static int bench(int argc, char **argv) {
  int T = atoi(argv[2]), B = atoi(argv[3]), C = atoi(argv[4]), NH = atoi(argv[5]);
  int reps = atoi(argv[6]), causal = argc > 7 ? atoi(argv[7]) : 1;
  float p = argc > 8 ? (float)atof(argv[8]) : 0.1f;
  use_cpu_time = getenv("FPT_BENCH_CPU") && atoi(getenv("FPT_BENCH_CPU"));
  int which = argc > 11 ? atoi(argv[11]) : 0; // 1: stored only, 2: flash only (profiling)
  if (argc > 10) {
    fpt_attention_flash_qblock = atoi(argv[9]);
    fpt_attention_flash_kblock = atoi(argv[10]);
  }
  problem P;
  problem_init(&P, B, T, 0, C, NH, causal, NULL, p, 1);
  size_t Tq = (size_t)T, nm = (size_t)B * NH * Tq * fpt_mask_words(T);
  float *out = fpt_alloc_floats(n_out(&P)), *dqkv = fpt_alloc_floats(n_qkv(&P));
  float *att = fpt_alloc_floats(n_att(&P)), *ws = fpt_alloc_floats(fpt_attention_work(T));
  float *lse = fpt_alloc_floats((size_t)B * NH * T),
        *wf = fpt_alloc_floats(fpt_attention_flash_work(T));
  uint32_t *mask = fpt_calloc(nm, sizeof(uint32_t));
  double *t[6];
  for (int i = 0; i < 6; i++)
    t[i] = calloc((size_t)reps, sizeof(double));
  for (int r = -1; r < reps; r++) { // one warm-up round; kernels interleaved
    double a = now();
    if (which != 2)
      attention_forward_masked(out, att, mask, P.qkv, B, T, 0, C, NH, &P.am, &P.d, P.site, ws);
    double b = now();
    if (which != 2)
      attention_backward_masked(dqkv, P.dy, P.qkv, att, mask, B, T, 0, C, NH, &P.am, &P.d, ws);
    double c = now();
    if (which != 1)
      attention_flash_forward(out, lse, NULL, P.qkv, B, T, 0, C, NH, &P.am, &P.d, P.site, wf);
    double e = now();
    if (which != 1)
      attention_flash_backward(dqkv, P.dy, out, lse, NULL, P.qkv, B, T, 0, C, NH, &P.am, &P.d,
                               P.site, wf);
    double f = now();
    if (which != 1)
      attention_flash_forward(out, lse, mask, P.qkv, B, T, 0, C, NH, &P.am, &P.d, P.site, wf);
    double g = now();
    if (which != 1)
      attention_flash_backward(dqkv, P.dy, out, lse, mask, P.qkv, B, T, 0, C, NH, &P.am, &P.d,
                               P.site, wf);
    double h = now();
    if (r >= 0) {
      t[0][r] = b - a, t[1][r] = c - b, t[2][r] = e - c, t[3][r] = f - e;
      t[4][r] = g - f, t[5][r] = h - g;
    }
  }
  double m[6];
  for (int i = 0; i < 6; i++)
    m[i] = 1e3 * median(t[i], reps);
  printf("T=%d B=%d C=%d NH=%d causal=%d p=%g threads=%d blocks: stored %d, flash %dx%d, reps %d, "
         "median %s time\n",
         T, B, C, NH, causal, p, fpt_num_threads(), fpt_attention_block, fpt_attention_flash_qblock,
         fpt_attention_flash_kblock, reps, use_cpu_time ? "CPU" : "wall");
  printf("stored: fwd %.2f ms bwd %.2f ms total %.2f ms  mem %.1f MB\n", m[0], m[1], m[0] + m[1],
         mem_stored(B, T, 0, NH) / 1048576.0);
  printf("flash:  fwd %.2f ms bwd %.2f ms total %.2f ms  mem %.3f MB\n", m[2], m[3], m[2] + m[3],
         mem_flash(B, T, 0, NH) / 1048576.0);
  printf("flash+bits: fwd %.2f ms bwd %.2f ms total %.2f ms  mem %.3f MB\n", m[4], m[5],
         m[4] + m[5], (mem_flash(B, T, 0, NH) + 4.0 * nm) / 1048576.0);
  printf("ratio flash/stored (total): %.3f, flash+bits/stored: %.3f\n",
         (m[2] + m[3]) / (m[0] + m[1]), (m[4] + m[5]) / (m[0] + m[1]));
  return 0;
}

// mem stored|flash T B C NH: one forward + backward, then the peak RSS.
static int mem(char **argv) {
  int flash = strcmp(argv[2], "flash") == 0;
  int T = atoi(argv[3]), B = atoi(argv[4]), C = atoi(argv[5]), NH = atoi(argv[6]);
  problem P;
  problem_init(&P, B, T, 0, C, NH, 1, NULL, 0.1f, 1);
  result r = {0};
  if (flash)
    run_flash(&P, &r, 1);
  else
    run_stored(&P, &r, 1);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("%s T=%d B=%d: peak RSS %.1f MB (inputs/outputs %.1f MB)\n", argv[2], T, B,
         ru.ru_maxrss / 1024.0, 4.0 * (2.0 * n_qkv(&P) + 2.0 * n_out(&P)) / 1048576.0);
  return 0;
}

int main(int argc, char **argv) {
  // Our OpenMP threads run the attention tasks; OpenBLAS must not add its own
  // (as fpt does at start-up, src/cli/runtime.c).
  openblas_set_num_threads(1);
  if (argc > 6 && strcmp(argv[1], "bench") == 0)
    return bench(argc, argv);
  if (argc > 6 && strcmp(argv[1], "mem") == 0)
    return mem(argv);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exp_fast),
      cmocka_unit_test(test_softmax_cut),
      cmocka_unit_test(test_old_kernel_bitwise),
      cmocka_unit_test(test_stored_fd),
      cmocka_unit_test(test_flash_fd),
      cmocka_unit_test(test_reference),
      cmocka_unit_test(test_stored_blocks),
      cmocka_unit_test(test_padding),
      cmocka_unit_test(test_invisible_exact_zero),
      cmocka_unit_test(test_flash_vs_stored),
      cmocka_unit_test(test_flash_blocks),
      cmocka_unit_test(test_report),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
