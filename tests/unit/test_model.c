// The assembled model: whole-model finite differences (dropout on, the
// readout-only last block included), freezing, initialisers, RNG.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "fd.h"
#include "fpt/check.h"
#include "fpt/model.h"
#include "fpt/rng.h"
#include "fpt/tasks.h"

// Random123's known-answer vectors for Philox4x32-10.
static void test_philox_kat(void **state) {
  (void)state;
  fpt_u32x4 z = {{0, 0, 0, 0}};
  fpt_u32x4 r = fpt_philox(0, z);
  uint32_t e0[4] = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8};
  for (int i = 0; i < 4; i++)
    assert_int_equal(r.v[i], e0[i]);
  fpt_u32x4 pi = {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}};
  r = fpt_philox(0x299f31d0a4093822ull, pi);
  uint32_t e1[4] = {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1};
  for (int i = 0; i < 4; i++)
    assert_int_equal(r.v[i], e1[i]);
  // The vectorised batch equals the one-block function.
  fpt_stream s = {0x1234567890ull, 7, 8, 9};
  uint32_t out[4 * 37];
  fpt_stream_blocks(s, 5, 37, out);
  for (int j = 0; j < 37; j++) {
    fpt_u32x4 b = fpt_stream_block(s, 5 + (uint32_t)j);
    assert_memory_equal(out + 4 * j, b.v, sizeof b.v);
  }
}

// Every Philox kernel this CPU runs gives the one-block function's bits, for
// any count (wide batches, 16-block batches, vector and scalar tails), across
// the 32-bit counter's wrap, and writes nothing past the n blocks asked for.
static void test_philox_kernels(void **state) {
  (void)state;
  enum { MAXN = 150 };
  fpt_stream s = {0xfedcba9876543210ull, 17, 3, 5};
  static uint32_t ref[4 * MAXN], out[4 * MAXN + 4];
  int ran = 0;
  for (int isa = FPT_RNG_PORTABLE; isa <= FPT_RNG_AVX512; isa++) {
    for (int n = 0; n <= MAXN; n++)
      for (uint32_t f = 0xFFFFFF80u; f != 0x80u; f += 0x40u) {
        for (int j = 0; j < n; j++) {
          fpt_u32x4 b = fpt_stream_block(s, f + (uint32_t)j);
          memcpy(ref + 4 * j, b.v, sizeof b.v);
        }
        memset(out, 0xAB, sizeof out);
        if (fpt_stream_blocks_isa(s, f, n, out, isa) != 0)
          goto next_isa; // this CPU cannot run it
        assert_memory_equal(out, ref, sizeof(uint32_t) * 4 * (size_t)n);
        assert_int_equal(out[4 * n], 0xABABABABu);
      }
    ran++;
  next_isa:;
  }
  assert_true(ran >= 1);
  uint32_t a[4 * 40], b[4 * 40];
  fpt_stream_blocks(s, 3, 40, a);
  assert_int_equal(fpt_stream_blocks_isa(s, 3, 40, b, FPT_RNG_PORTABLE), 0);
  assert_memory_equal(a, b, sizeof a);
}

static void test_normal_moments(void **state) {
  (void)state;
  fpt_stream s = {5, 1, 2, 3};
  double sum = 0, sq = 0;
  int n = 200000;
  for (int i = 0; i < n; i++) {
    double x = fpt_stream_normal(s, (uint64_t)i);
    sum += x;
    sq += x * x;
  }
  assert_true(fabs(sum / n) < 0.01);
  assert_true(fabs(sq / n - 1.0) < 0.01);
}

static void test_dropout_mask(void **state) {
  (void)state;
  int64_t samples[3] = {10, 11, 12}, reordered[2] = {12, 10};
  fpt_dropout d = {0.1f, 99, 4, samples};
  int T = 5, C = 40;
  float *x = fpt_alloc_floats((size_t)3 * T * C), *y = fpt_alloc_floats((size_t)2 * T * C);
  for (int i = 0; i < 3 * T * C; i++)
    x[i] = 1.0f;
  for (int i = 0; i < 2 * T * C; i++)
    y[i] = 1.0f;
  dropout_apply(x, &d, 7, 3, T, 0, C);
  int kept = 0;
  for (int i = 0; i < 3 * T * C; i++) {
    assert_true(x[i] == 0.0f || fabsf(x[i] - 1.0f / 0.9f) < 1e-6);
    kept += x[i] != 0.0f;
  }
  assert_true(kept > 0.8 * 3 * T * C && kept < 0.98 * 3 * T * C);
  // The mask follows the global sample index, not the position in the batch.
  fpt_dropout d2 = d;
  d2.sample = reordered;
  dropout_apply(y, &d2, 7, 2, T, 0, C);
  assert_memory_equal(y, x + 2 * T * C, sizeof(float) * T * C);
  assert_memory_equal(y + T * C, x, sizeof(float) * T * C);
  // A window of rows has the same mask as those rows of the full tensor.
  float *w = fpt_alloc_floats((size_t)2 * C);
  for (int i = 0; i < 2 * C; i++)
    w[i] = 1.0f;
  dropout_apply(w, &d, 7, 1, 2, 3, C);
  assert_memory_equal(w, x + 3 * C, sizeof(float) * 2 * C);
  free(x);
  free(y);
  free(w);
}

// dropout_forward (mask + residual in one pass, bits stored) and
// dropout_backward (mask from the bits) against dropout_apply, which draws it.
static void test_dropout_bits(void **state) {
  (void)state;
  int64_t samples[2] = {4, 9};
  fpt_dropout d = {0.3f, 5, 2, samples};
  int B = 2, T = 6, rows = 4, row0 = 2, C = 1100; // C > 1024: two batches of mask bits per row
  size_t n = (size_t)B * rows * C, nr = (size_t)B * T * C, nw = B * rows * fpt_mask_words(C);
  float *x = fpt_alloc_floats(n), *res = fpt_alloc_floats(nr), *want = fpt_alloc_floats(n);
  float *got = fpt_alloc_floats(n), *g = fpt_alloc_floats(n);
  uint32_t *bits = fpt_calloc(nw, sizeof(uint32_t));
  for (size_t i = 0; i < n; i++)
    x[i] = (float)(i % 97) - 40.0f;
  for (size_t i = 0; i < nr; i++)
    res[i] = 0.25f * (float)(i % 13);
  memcpy(want, x, sizeof(float) * n);
  dropout_apply(want, &d, 3, B, rows, row0, C);
  for (int b = 0; b < B; b++)
    for (int r = 0; r < rows; r++)
      for (int c = 0; c < C; c++)
        want[((size_t)b * rows + r) * C + c] += res[((size_t)b * T + T - rows + r) * C + c];
  dropout_forward(got, x, res, T, &d, 3, B, rows, row0, C, bits);
  assert_memory_equal(got, want, sizeof(float) * n);
  // The backward of the mask from the stored bits = the mask drawn again.
  memcpy(want, x, sizeof(float) * n);
  dropout_apply(want, &d, 3, B, rows, row0, C);
  dropout_backward(g, x, bits, &d, B * rows, C);
  assert_memory_equal(g, want, sizeof(float) * n);
  // Without dropout: a residual add, and a copy.
  fpt_dropout off = {0.0f, 5, 2, samples};
  dropout_forward(got, x, res, T, &off, 3, B, rows, row0, C, NULL);
  assert_float_equal(got[(size_t)rows * C + 7],
                     x[(size_t)rows * C + 7] + res[((size_t)T + T - rows) * C + 7], 0);
  dropout_backward(g, x, NULL, &off, B * rows, C);
  assert_memory_equal(g, x, sizeof(float) * n);
  free(x);
  free(res);
  free(want);
  free(got);
  free(g);
  free(bits);
}

static void test_orthogonal(void **state) {
  (void)state;
  int shapes[3][2] = {{5, 32}, {32, 5}, {16, 16}};
  for (int s = 0; s < 3; s++) {
    int R = shapes[s][0], Cc = shapes[s][1];
    float *w = fpt_alloc_floats((size_t)R * Cc);
    assert_int_equal(fpt_orthogonal(w, R, Cc, 1.41f, 3, 1), 0);
    // The smaller side is orthonormal (times the gain).
    int small = R < Cc ? R : Cc;
    for (int i = 0; i < small; i++)
      for (int j = 0; j < small; j++) {
        double d = 0;
        for (int k = 0; k < (R < Cc ? Cc : R); k++)
          d += R < Cc ? (double)w[i * Cc + k] * w[j * Cc + k]
                      : (double)w[k * Cc + i] * w[k * Cc + j];
        assert_float_equal(d, i == j ? 1.41 * 1.41 : 0.0, 1e-5);
      }
    free(w);
  }
}

// --- whole model ---
typedef struct {
  fpt_model m;
  fpt_acts a;
  fpt_batch b;
  fpt_pass p;
  float dscale;
} net;

// Block LayerNorm gains around 1 (random weights elsewhere): every path matters.
static void ln_gains_near_one(fpt_model *m) {
  char nm[48];
  for (int l = 0; l < m->cfg.n_layer; l++)
    for (int k = 1; k <= 2; k++) {
      snprintf(nm, sizeof nm, "h/%d/ln_%d/weight", l, k);
      float *w = fpt_model_find(m, nm)->data;
      for (int c = 0; c < m->cfg.n_embd; c++)
        w[c] += 1.0f;
    }
}

static void net_make(net *n, int discrete, const fpt_freeze *fr, float dropout) {
  fpt_backbone_cfg cfg = {"gpt2", 3, 16, 2, 12, 1e-5f, 1, FPT_ACT_GELU_NEW, 0};
  fpt_task_shape sh = {discrete ? 0 : 3, discrete ? 7 : 0, 6, 2, 4, 2, 0, FPT_READOUT_LAST};
  assert_int_equal(fpt_model_create(&n->m, &cfg, &sh, fr), 0);
  n->m.dropout = dropout;
  // Larger-than-GPT-2 weights so that every path matters numerically.
  for (int i = 0; i < n->m.n_tensors; i++)
    fill_normal(n->m.tensors[i].data, n->m.tensors[i].numel, 100 + i, 0.3f);
  ln_gains_near_one(&n->m);
  int B = 3, T = 6;
  static float x[3 * 6 * 3];
  static int32_t ids[18], y[3 * 4];
  static int64_t sample[3] = {5, 9, 2};
  fill_normal(x, sizeof x / sizeof *x, 7, 1);
  for (int i = 0; i < B * T; i++)
    ids[i] = (i * 5 + 3) % 7;
  for (int i = 0; i < B * n->m.K; i++)
    y[i] = (i * 7 + 1) % 2;
  n->b = (fpt_batch){B, discrete ? NULL : x, discrete ? ids : NULL, y, sample, NULL};
  n->p = (fpt_pass){1, 1234, 3};
  n->dscale = 1.0f / (B * n->m.K);
  fpt_acts_create(&n->a, &n->m, B, 0, 3, 1, 1);
}

static void net_free(net *n) {
  fpt_acts_free(&n->a);
  fpt_model_free(&n->m);
}

static double net_loss(net *n) {
  return fpt_forward_backward(&n->m, &n->a, &n->b, &n->p, 0.0f, NULL) * n->dscale;
}

// Central differences of the loss for elements of one tensor (every element
// when cap is 0, else up to cap spread over it) against its backward gradient;
// n's gradients must be fresh. Returns the relative error of the vector.
static double tensor_fd(net *n, fpt_tensor *tt, size_t cap) {
  size_t cnt = cap == 0 || tt->numel < cap ? tt->numel : cap;
  double *fd = calloc(cnt, sizeof(double)), *an = calloc(cnt, sizeof(double));
  for (size_t k = 0; k < cnt; k++) {
    size_t i = cnt == tt->numel ? k : (k * 7919) % tt->numel;
    float keep = tt->data[i];
    const float h = 1e-2f;
    tt->data[i] = keep + h;
    double lp = net_loss(n);
    tt->data[i] = keep - h;
    double lm = net_loss(n);
    tt->data[i] = keep;
    fd[k] = (lp - lm) / (2 * h);
    an[k] = tt->grad[i];
  }
  double e = rel_err(an, fd, cnt, 1e-4);
  free(fd);
  free(an);
  return e;
}

// Every trainable tensor (up to 24 elements each): FD vs the backward's gradient.
static void net_fd(net *n) {
  fpt_zero_grad(&n->m);
  fpt_forward_backward(&n->m, &n->a, &n->b, &n->p, n->dscale, NULL);
  for (int t = 0; t < n->m.n_tensors; t++) {
    fpt_tensor *tt = &n->m.tensors[t];
    if (!tt->trainable) {
      assert_null(tt->grad);
      continue;
    }
    double e = tensor_fd(n, tt, 24);
    if (e > 2e-2)
      print_error("tensor %s: FD relative error %g\n", tt->name, e);
    assert_true(e <= 2e-2);
  }
}

static void model_fd(int discrete, const fpt_freeze *fr, float dropout) {
  net n;
  net_make(&n, discrete, fr, dropout);
  net_fd(&n);
  net_free(&n);
}

static void test_model_fd_full(void **state) {
  (void)state;
  fpt_freeze fr = {{0}, 1};
  model_fd(0, &fr, 0.0f);
  model_fd(0, &fr, 0.2f);
  model_fd(1, &fr, 0.2f);
}

static void test_model_fd_default_freeze(void **state) {
  (void)state;
  fpt_freeze fr = fpt_freeze_default();
  model_fd(0, &fr, 0.1f);
  model_fd(1, &fr, 0.1f);
}

static void test_frozen_sets(void **state) {
  (void)state;
  net n;
  fpt_freeze fr = fpt_freeze_default();
  net_make(&n, 0, &fr, 0.0f);
  for (int t = 0; t < n.m.n_tensors; t++) {
    const fpt_tensor *tt = &n.m.tensors[t];
    int expect = tt->group == FPT_G_IN || tt->group == FPT_G_OUT || tt->group == FPT_G_LN ||
                 tt->group == FPT_G_POS;
    assert_int_equal(tt->trainable, expect);
  }
  assert_int_equal(n.m.grad_floor, 0);
  net_free(&n);
  // Output layer only: no block needs a backward pass at all.
  fpt_freeze only_out = {{1, 0, 1, 1, 1, 1}, 0};
  net_make(&n, 0, &only_out, 0.0f);
  assert_int_equal(n.m.grad_floor, 3);
  net_free(&n);
  // Only LayerNorms: backward stops at block 0 without an input gradient.
  fpt_freeze only_ln = {{1, 1, 0, 1, 1, 1}, 0};
  net_make(&n, 0, &only_ln, 0.0f);
  assert_int_equal(n.m.grad_floor, 0);
  net_free(&n);
}

// --frozen-dtype bf16 (fpt_model_set_frozen_dtype): every frozen block matrix
// and only those get a copy (both layouts where the backward runs, the forward
// one elsewhere); the loss moves by bf16 amounts, not more; dropping the
// copies gives the fp32 bits back; a repack after a weight changes follows
// it; a CPU without AVX512_BF16 (fpt_bf16_disable) and an LSTM are refused,
// leaving no copy. The width 16 is not a multiple of FPT_BF16_NR: the
// readout-only last block takes the full-width qkv product.
static double bf16_loss(net *n, int dtype) {
  assert_int_equal(fpt_model_set_frozen_dtype(&n->m, dtype), 0);
  fpt_zero_grad(&n->m);
  double l = fpt_forward_backward(&n->m, &n->a, &n->b, &n->p, n->dscale, NULL) * n->dscale;
  assert_true(fpt_grad_norm(&n->m) > 0 && fpt_grad_norm(&n->m) < 1e6);
  return l;
}

// Bytes of the copies of one block's four matrices (width C) in `layouts`,
// packed by pack (bf16 or fp32 panels).
static size_t block_bytes(int C, int layouts,
                          int (*pack)(fpt_bf16_matrix *, const float *, int, int, int)) {
  const int shape[4][2] = {{C, 3 * C}, {C, C}, {C, 4 * C}, {4 * C, C}};
  float *zero = calloc((size_t)16 * C * C, sizeof(float));
  size_t bytes = 0;
  for (int i = 0; i < 4; i++) {
    fpt_bf16_matrix b;
    assert_int_equal(pack(&b, zero, shape[i][0], shape[i][1], layouts), 0);
    bytes += b.bytes;
    fpt_bf16_free(&b);
  }
  free(zero);
  return bytes;
}

static void test_frozen_bf16(void **state) {
  (void)state;
  if (!fpt_bf16_supported())
    print_message("not a bf16 CPU: only the refusal is tested\n");
  net n;
  fpt_freeze fr = fpt_freeze_default();
  net_make(&n, 0, &fr, 0.1f);
  fpt_bf16_disable = 1;
  assert_int_not_equal(fpt_model_set_frozen_dtype(&n.m, FPT_FROZEN_BF16), 0);
  assert_int_equal(n.m.frozen_dtype, FPT_FROZEN_FP32);
  assert_int_equal(n.m.n_bf16, 0);
  fpt_bf16_disable = 0;
  if (!fpt_bf16_supported()) {
    net_free(&n);
    return;
  }
  double l32 = bf16_loss(&n, FPT_FROZEN_FP32), l16 = bf16_loss(&n, FPT_FROZEN_BF16);
  assert_int_equal(n.m.n_bf16, 12); // 3 blocks x (qkv, attn proj, fc, mlp proj)
  assert_int_equal(n.m.bf16_bytes, 3 * block_bytes(16, FPT_BF16_BOTH, fpt_bf16_pack_layouts));
  assert_true(l16 != l32 && fabs(l16 - l32) < 1e-2 * fabs(l32));
  assert_true(bf16_loss(&n, FPT_FROZEN_FP32) == l32 &&
              n.m.n_bf16 == (fpt_f32_packed_supported() ? 12 : 0)); // fp32 panels, see below
  assert_true(bf16_loss(&n, FPT_FROZEN_BF16) == l16);
  fpt_tensor *fc = fpt_model_find(&n.m, "h/1/mlp/c_fc/weight");
  for (size_t i = 0; i < fc->numel; i++)
    fc->data[i] *= 1.5f;
  assert_true(bf16_loss(&n, FPT_FROZEN_BF16) != l16);
  net_free(&n);
  fpt_freeze ff_only = {{0, 0, 0, 0, 0, 1}, 0}; // attention trains: its matrices stay fp32
  net_make(&n, 0, &ff_only, 0.0f);
  bf16_loss(&n, FPT_FROZEN_BF16);
  assert_int_equal(n.m.n_bf16, 6);
  net_free(&n);
  fpt_freeze out_only = {{1, 0, 1, 1, 1, 1}, 0}; // no backward through a block: forward layout only
  net_make(&n, 0, &out_only, 0.0f);
  bf16_loss(&n, FPT_FROZEN_BF16);
  assert_int_equal(n.m.bf16_bytes, 3 * block_bytes(16, FPT_BF16_NN, fpt_bf16_pack_layouts));
  net_free(&n);
  fpt_backbone_cfg lstm = {"lstm", 1, 8, 0, 0, 1e-6f, 0, 0, 0};
  fpt_task_shape sh = {3, 0, 4, 1, 2, 2, 0, FPT_READOUT_LAST};
  fpt_model m;
  assert_int_equal(fpt_model_create(&m, &lstm, &sh, &fr), 0);
  assert_int_not_equal(fpt_model_set_frozen_dtype(&m, FPT_FROZEN_BF16), 0);
  assert_int_equal(m.frozen_dtype, FPT_FROZEN_FP32);
  fpt_model_free(&m);
}

// fp32 runs keep their frozen matrices in fp32 panels on an AVX-512 CPU (the
// same layouts as bf16's, 4 bytes a weight): loss and gradients agree with
// OpenBLAS's (fpt_f32_pack_disable) to float rounding, a repack after a
// weight changes follows it, and a forward-only part keeps the forward layout.
static void test_frozen_f32_panels(void **state) {
  (void)state;
  if (!fpt_f32_packed_supported()) {
    print_message("not an AVX-512 CPU: fp32 frozen matrices go through OpenBLAS only\n");
    return;
  }
  net n;
  fpt_freeze fr = fpt_freeze_default();
  net_make(&n, 0, &fr, 0.1f);
  fpt_f32_pack_disable = 1;
  double lb = bf16_loss(&n, FPT_FROZEN_FP32);
  assert_int_equal(n.m.n_bf16, 0);
  float *gb = fpt_alloc_floats(n.m.n_train);
  memcpy(gb, n.m.grad_mem, sizeof(float) * n.m.n_train);
  fpt_f32_pack_disable = 0;
  double lp = bf16_loss(&n, FPT_FROZEN_FP32);
  assert_int_equal(n.m.n_bf16, 12);
  assert_int_equal(n.m.bf16_bytes, 3 * block_bytes(16, FPT_BF16_BOTH, fpt_f32_pack_layouts));
  assert_true(fabs(lp - lb) <= 1e-6 * fabs(lb));
  double num = 0, den = 0;
  for (size_t i = 0; i < n.m.n_train; i++) {
    num += ((double)n.m.grad_mem[i] - gb[i]) * ((double)n.m.grad_mem[i] - gb[i]);
    den += (double)gb[i] * gb[i];
  }
  print_message("fp32 panels vs OpenBLAS: loss %.3g relative, gradient %.3g relative\n",
                fabs(lp - lb) / fabs(lb), sqrt(num / den));
  assert_true(sqrt(num / den) < 1e-5);
  fpt_tensor *fc = fpt_model_find(&n.m, "h/1/mlp/c_fc/weight");
  for (size_t i = 0; i < fc->numel; i++)
    fc->data[i] *= 1.5f;
  double l2 = bf16_loss(&n, FPT_FROZEN_FP32);
  fpt_f32_pack_disable = 1;
  double l2b = bf16_loss(&n, FPT_FROZEN_FP32);
  fpt_f32_pack_disable = 0;
  assert_true(l2 != lp && fabs(l2 - l2b) <= 1e-6 * fabs(l2b));
  net_free(&n);
  free(gb);
  fpt_freeze out_only = {{1, 0, 1, 1, 1, 1}, 0};
  net_make(&n, 0, &out_only, 0.0f);
  bf16_loss(&n, FPT_FROZEN_FP32);
  assert_int_equal(n.m.bf16_bytes, 3 * block_bytes(16, FPT_BF16_NN, fpt_f32_pack_layouts));
  net_free(&n);
}

// Frozen tensors do not move in a training step; trainable ones do.
static void test_step_moves_only_trainable(void **state) {
  (void)state;
  net n;
  fpt_freeze fr = fpt_freeze_default();
  net_make(&n, 0, &fr, 0.1f);
  float *before = fpt_alloc_floats(n.m.n_frozen);
  memcpy(before, n.m.frozen_mem, sizeof(float) * n.m.n_frozen);
  float *tb = fpt_alloc_floats(n.m.n_train);
  memcpy(tb, n.m.train_mem, sizeof(float) * n.m.n_train);
  fpt_zero_grad(&n.m);
  fpt_forward_backward(&n.m, &n.a, &n.b, &n.p, n.dscale, NULL);
  fpt_clip_grad(&n.m, 1.0);
  fpt_adam_step(&n.m, 1e-3f);
  assert_memory_equal(before, n.m.frozen_mem, sizeof(float) * n.m.n_frozen);
  assert_memory_not_equal(tb, n.m.train_mem, sizeof(float) * n.m.n_train);
  free(before);
  free(tb);
  net_free(&n);
}

// Two "stages" (blocks [0,1) and [1,3), each with its own activations) give
// exactly the loss and gradients of the whole model: a pipeline can split it.
static void test_stage_split(void **state) {
  (void)state;
  net n;
  fpt_freeze fr = {{0}, 1};
  net_make(&n, 0, &fr, 0.2f);
  fpt_zero_grad(&n.m);
  double whole = fpt_forward_backward(&n.m, &n.a, &n.b, &n.p, n.dscale, NULL);
  float *g_whole = fpt_alloc_floats(n.m.n_train);
  memcpy(g_whole, n.m.grad_mem, sizeof(float) * n.m.n_train);

  fpt_acts s0, s1;
  fpt_acts_create(&s0, &n.m, 3, 0, 1, 1, 0);
  fpt_acts_create(&s1, &n.m, 3, 1, 3, 0, 1);
  fpt_zero_grad(&n.m);
  fpt_input_forward(&n.m, &s0, &n.b, &n.p);
  fpt_layer_forward(&n.m, &s0, 0, NULL, &n.b, &n.p);
  const float *boundary = fpt_layer_output(&s0, 0); // what stage 0 would send
  fpt_layer_forward(&n.m, &s1, 1, boundary, &n.b, &n.p);
  fpt_layer_forward(&n.m, &s1, 2, NULL, &n.b, &n.p);
  double split =
      fpt_head_forward_backward(&n.m, &s1, fpt_layer_output(&s1, 2), &n.b, n.dscale, NULL);
  fpt_layer_backward(&n.m, &s1, 2, NULL, &n.b, &n.p, 1);
  fpt_layer_backward(&n.m, &s1, 1, boundary, &n.b, &n.p, 1);
  memcpy(s0.dres, s1.dres, sizeof(float) * 3 * 6 * 16); // what stage 1 would send back
  fpt_layer_backward(&n.m, &s0, 0, NULL, &n.b, &n.p, 1);
  fpt_input_backward(&n.m, &s0, &n.b, &n.p);
  assert_true(split == whole);
  assert_memory_equal(g_whole, n.m.grad_mem, sizeof(float) * n.m.n_train);
  fpt_acts_free(&s0);
  fpt_acts_free(&s1);
  free(g_whole);
  net_free(&n);
}

// A stage's part of the model holds only its tensors, initialised exactly as
// the same tensors of the whole model (init streams follow the tensor's uid).
static void test_model_part(void **state) {
  (void)state;
  fpt_backbone_cfg cfg = {"gpt2", 4, 16, 2, 12, 1e-5f, 1, FPT_ACT_GELU_NEW, 0};
  fpt_task_shape sh = {3, 0, 6, 2, 4, 2, 0, FPT_READOUT_LAST};
  fpt_freeze fr = fpt_freeze_default();
  fpt_model whole, mid;
  assert_int_equal(fpt_model_create(&whole, &cfg, &sh, &fr), 0);
  fpt_part p = {1, 3, 0, 0};
  size_t nf = fpt_model_frozen_size(&cfg, &sh, &fr, &p);
  float *ext = fpt_alloc_floats(nf);
  assert_int_equal(fpt_model_create_part(&mid, &cfg, &sh, &fr, &p, ext), 0);
  assert_ptr_equal(mid.frozen_mem, ext);
  assert_int_equal(mid.n_tensors, 24);
  assert_null(fpt_model_find(&mid, "in/weight"));
  assert_null(fpt_model_find(&mid, "h/0/ln_1/weight"));
  assert_null(fpt_model_find(&mid, "ln_f/weight"));
  fpt_init_backbone_random(&whole, 9);
  fpt_init_backbone_random(&mid, 9);
  assert_int_equal(fpt_init_wrapper(&whole, 9, 1.41f), 0);
  assert_int_equal(fpt_init_wrapper(&mid, 9, 1.41f), 0);
  for (int i = 0; i < mid.n_tensors; i++) {
    fpt_tensor *t = &mid.tensors[i], *u = fpt_model_find(&whole, t->name);
    assert_non_null(u);
    assert_int_equal(t->uid, u->uid);
    assert_memory_equal(t->data, u->data, sizeof(float) * t->numel);
  }
  fpt_part last = {3, 4, 0, 1};
  fpt_model tail;
  assert_int_equal(fpt_model_create_part(&tail, &cfg, &sh, &fr, &last, NULL), 0);
  assert_int_equal(fpt_init_wrapper(&tail, 9, 1.41f), 0);
  assert_memory_equal(tail.out_w.w, whole.out_w.w, sizeof(float) * 16 * 4);
  fpt_model_free(&tail);
  fpt_model_free(&mid);
  fpt_model_free(&whole);
  free(ext);
}

static void test_clip(void **state) {
  (void)state;
  net n;
  fpt_freeze fr = fpt_freeze_default();
  net_make(&n, 0, &fr, 0.0f);
  for (size_t i = 0; i < n.m.n_train; i++)
    n.m.grad_mem[i] = 1.0f;
  double norm = fpt_clip_grad(&n.m, 1.0);
  assert_true(norm > 1.0);
  assert_float_equal(fpt_grad_norm(&n.m), 1.0, 1e-5);
  net_free(&n);
}

// Bit tasks: targets follow from the inputs.
static void test_bit_tasks(void **state) {
  (void)state;
  fpt_bit_task t;
  assert_int_equal(fpt_bit_task_make(&t, "bit-xor", 0, 0, 0), 0);
  fpt_task_shape s = fpt_bit_task_shape(&t);
  assert_int_equal(s.seq, 10);
  assert_int_equal(s.r, 5);
  float x[10];
  int32_t y[5];
  fpt_bit_task_sample(&t, 1, 0, 17, x, y);
  for (int i = 0; i < 5; i++)
    assert_int_equal(y[i], (int)x[i] ^ (int)x[5 + i]);
  assert_int_equal(fpt_bit_task_make(&t, "bit-memory", 0, 0, 0), 0);
  s = fpt_bit_task_shape(&t);
  assert_int_equal(s.seq, 120);
  assert_int_equal(s.d_in, 50);
  assert_int_equal(s.r, 20);
  assert_int_equal(s.n_out, 100);
  float *xm = fpt_alloc_floats(6000);
  int32_t ym[1000];
  fpt_bit_task_sample(&t, 1, 0, 3, xm, ym);
  // The query agrees with exactly one stored pattern wherever it is unmasked.
  int matches = 0;
  for (int p = 0; p < 5; p++) {
    int ok = 1;
    for (int i = 0; i < 1000; i++)
      if (xm[5000 + i] != 0.0f && xm[5000 + i] != xm[p * 1000 + i])
        ok = 0;
    if (ok) {
      matches++;
      for (int i = 0; i < 1000; i++)
        assert_int_equal(ym[i], xm[p * 1000 + i] > 0);
    }
  }
  assert_int_equal(matches, 1);
  free(xm);
  assert_int_not_equal(fpt_bit_task_make(&t, "nope", 0, 0, 0), 0);
}

// --- tied language-model head (fpt pretrain) ---
// GPT-2's LM: the token table wte (V, C) is the input lookup and the output
// projection, logits = ln_f(h) . wte^T at every position. The inputs use
// tokens 0..5 only, so row 6 of wte gets its gradient from the head alone.
enum { LM_V = 7, LM_T = 6, LM_B = 3, LM_C = 16 };
static const int32_t lm_ids[LM_B * LM_T] = {1, 4, 0, 3, 5, 2, 2, 2, 5, 0, 1, 4, 3, 0, 0, 5, 4, 1};
static const int32_t lm_y[LM_B * LM_T] = {4, 0, 3, 5, 2, 6, 2, 5, 0, 1, 4, 6, 0, 0, 5, 4, 1, 3};

static void lm_make(net *n, int tied, const fpt_freeze *fr, float dropout) {
  fpt_backbone_cfg cfg = {"gpt2", 2, LM_C, 2, 12, 1e-5f, 1, FPT_ACT_GELU_NEW, 0};
  // Untied: the same model with its own lookup (in/weight) and head (out/*).
  fpt_task_shape sh = {0, LM_V, LM_T, LM_T, LM_V, LM_V, tied, FPT_READOUT_LAST};
  assert_int_equal(fpt_model_create(&n->m, &cfg, &sh, fr), 0);
  assert_int_equal(n->m.K, LM_T);
  n->m.dropout = dropout;
  // The same values for the same names in the tied and untied models.
  for (int i = 0; i < n->m.n_tensors; i++) {
    fpt_tensor *t = &n->m.tensors[i];
    uint64_t seed = 100;
    for (const char *c = t->name; *c; c++)
      seed = seed * 31 + (unsigned char)*c;
    fill_normal(t->data, t->numel, seed, 0.3f);
  }
  ln_gains_near_one(&n->m);
  static int64_t sample[LM_B] = {4, 0, 7};
  n->b = (fpt_batch){LM_B, NULL, lm_ids, lm_y, sample, NULL};
  n->p = (fpt_pass){1, 77, 2};
  n->dscale = 1.0f / (LM_B * LM_T);
  fpt_acts_create(&n->a, &n->m, LM_B, 0, 2, 1, 1);
}

static void test_lm_tensors(void **state) {
  (void)state;
  net n;
  fpt_freeze fr = {{0}, 1};
  lm_make(&n, 1, &fr, 0.0f);
  fpt_tensor *wte = fpt_model_find(&n.m, "wte/weight");
  assert_non_null(wte);
  assert_int_equal(wte->shape[0], LM_V);
  assert_int_equal(wte->shape[1], LM_C);
  assert_int_equal(wte->group, FPT_G_IN);
  assert_true(wte->trainable);
  assert_ptr_equal(n.m.in_w.w, wte->data);
  assert_null(fpt_model_find(&n.m, "in/weight"));
  assert_null(fpt_model_find(&n.m, "out/weight"));
  assert_null(fpt_model_find(&n.m, "out/bias"));
  assert_null(n.m.out_w.w);
  assert_int_equal(n.m.n_tensors, 2 + 12 * 2 + 2);
  // Only the last stage holds the head, but it needs wte too; a middle stage does not.
  fpt_tensor *tab;
  int cnt;
  fpt_part head = {1, 2, 0, 1}, mid = {1, 2, 0, 0};
  assert_int_equal(fpt_model_table(&n.m.cfg, &n.m.task, &fr, &head, &tab, &cnt), 0);
  int found = 0;
  for (int i = 0; i < cnt; i++)
    found += !strcmp(tab[i].name, "wte/weight");
  assert_int_equal(found, 1);
  free(tab);
  assert_int_equal(fpt_model_table(&n.m.cfg, &n.m.task, &fr, &mid, &tab, &cnt), 0);
  for (int i = 0; i < cnt; i++)
    assert_string_not_equal(tab[i].name, "wte/weight");
  free(tab);
  net_free(&n);
  // A tied head needs n_out == vocab and discrete tokens.
  fpt_model bad;
  fpt_backbone_cfg cfg = {"gpt2", 2, LM_C, 2, 12, 1e-5f, 1, FPT_ACT_GELU_NEW, 0};
  fpt_task_shape wrong_out = {0, LM_V, LM_T, LM_T, LM_V + 1, LM_V + 1, 1, FPT_READOUT_LAST};
  assert_int_not_equal(fpt_model_create(&bad, &cfg, &wrong_out, &fr), 0);
  fpt_task_shape continuous = {5, 0, LM_T, LM_T, LM_V, LM_V, 1, FPT_READOUT_LAST};
  assert_int_not_equal(fpt_model_create(&bad, &cfg, &continuous, &fr), 0);
}

// d loss / d wte, every element, against central differences: rows 0..5 get
// both the lookup and the head path, row 6 the head path only. Then every
// other trainable tensor (24 elements each). Dropout on and off.
static void lm_fd(const fpt_freeze *fr, float dropout) {
  net n;
  lm_make(&n, 1, fr, dropout);
  net_fd(&n);
  fpt_tensor *wte = fpt_model_find(&n.m, "wte/weight");
  if (wte->trainable) {
    fpt_zero_grad(&n.m);
    fpt_forward_backward(&n.m, &n.a, &n.b, &n.p, n.dscale, NULL);
    double e = tensor_fd(&n, wte, 0);
    print_message("wte/weight, all %zu elements: FD relative error %.2e\n", wte->numel, e);
    if (e > 5e-3)
      print_error("wte/weight (all %zu elements): FD relative error %g\n", wte->numel, e);
    assert_true(e <= 5e-3);
    // Row 6 (never an input) still has a gradient: the head's.
    double row6 = 0;
    for (int c = 0; c < LM_C; c++)
      row6 += fabs(wte->grad[6 * LM_C + c]);
    assert_true(row6 > 1e-3);
  } else {
    assert_null(wte->grad);
  }
  net_free(&n);
}

static void test_lm_fd(void **state) {
  (void)state;
  fpt_freeze full = {{0}, 1};
  lm_fd(&full, 0.0f);
  lm_fd(&full, 0.2f);
  fpt_freeze def = fpt_freeze_default();
  lm_fd(&def, 0.1f);
  fpt_freeze frozen_wte = {{1, 0, 0, 0, 0, 0}, 1}; // a frozen table still feeds the head
  lm_fd(&frozen_wte, 0.0f);
}

// The tied model equals an untied one whose lookup is wte and whose head is
// wte^T (bias 0): same loss, and d/d wte = d/d lookup + (d/d head)^T. Each
// path alone is far from the tied gradient.
static void test_lm_untied_equivalent(void **state) {
  (void)state;
  fpt_freeze fr = {{0}, 1};
  net t, u;
  lm_make(&t, 1, &fr, 0.1f);
  lm_make(&u, 0, &fr, 0.1f);
  for (int i = 0; i < t.m.n_tensors; i++)
    if (fpt_is_backbone(&t.m.tensors[i]))
      assert_memory_equal(t.m.tensors[i].data, fpt_model_find(&u.m, t.m.tensors[i].name)->data,
                          sizeof(float) * t.m.tensors[i].numel);
  memcpy(u.m.in_w.w, t.m.in_w.w, sizeof(float) * LM_V * LM_C);
  for (int v = 0; v < LM_V; v++) {
    u.m.out_b.w[v] = 0.0f;
    for (int c = 0; c < LM_C; c++)
      u.m.out_w.w[c * LM_V + v] = t.m.in_w.w[v * LM_C + c];
  }
  fpt_zero_grad(&t.m);
  fpt_zero_grad(&u.m);
  double lt = fpt_forward_backward(&t.m, &t.a, &t.b, &t.p, t.dscale, NULL);
  double lu = fpt_forward_backward(&u.m, &u.a, &u.b, &u.p, u.dscale, NULL);
  assert_float_equal(lt, lu, 1e-5 * fabs(lu));
  size_t nw = LM_V * LM_C;
  double *g = calloc(nw, sizeof(double)), *sum = calloc(nw, sizeof(double)),
         *in = calloc(nw, sizeof(double)), *out = calloc(nw, sizeof(double));
  for (int v = 0; v < LM_V; v++)
    for (int c = 0; c < LM_C; c++) {
      size_t i = (size_t)v * LM_C + c;
      g[i] = t.m.in_w.g[i];
      in[i] = u.m.in_w.g[i];
      out[i] = u.m.out_w.g[c * LM_V + v];
      sum[i] = in[i] + out[i];
    }
  double e = rel_err(sum, g, nw, 1e-6);
  print_message("tied wte gradient vs lookup + head (untied model): %.2e; lookup alone %.2f, head "
                "alone %.2f\n",
                e, rel_err(in, g, nw, 1e-6), rel_err(out, g, nw, 1e-6));
  if (e > 1e-5)
    print_error("tied wte gradient vs lookup + head of the untied model: %g\n", e);
  assert_true(e <= 1e-5);
  assert_true(rel_err(in, g, nw, 1e-6) > 0.1);
  assert_true(rel_err(out, g, nw, 1e-6) > 0.1);
  // The backbone's gradients agree too.
  for (int i = 0; i < t.m.n_tensors; i++) {
    fpt_tensor *a = &t.m.tensors[i];
    if (!fpt_is_backbone(a))
      continue;
    fpt_tensor *b = fpt_model_find(&u.m, a->name);
    double *ga = calloc(a->numel, sizeof(double)), *gb = calloc(a->numel, sizeof(double));
    for (size_t j = 0; j < a->numel; j++) {
      ga[j] = a->grad[j];
      gb[j] = b->grad[j];
    }
    assert_true(rel_err(ga, gb, a->numel, 1e-6) <= 1e-5);
    free(ga);
    free(gb);
  }
  free(g);
  free(sum);
  free(in);
  free(out);
  net_free(&t);
  net_free(&u);
}

// The table starts as GPT-2's: N(0, 0.02), from the table's own stream (the
// backbone init leaves it alone).
static void test_lm_init(void **state) {
  (void)state;
  fpt_backbone_cfg cfg = {"gpt2", 2, 32, 2, 16, 1e-5f, 1, FPT_ACT_GELU_NEW, 0};
  fpt_task_shape sh = {0, 256, 8, 8, 256, 256, 1, FPT_READOUT_LAST};
  fpt_freeze fr = {{0}, 1};
  fpt_model m, m2;
  assert_int_equal(fpt_model_create(&m, &cfg, &sh, &fr), 0);
  assert_int_equal(fpt_model_create(&m2, &cfg, &sh, &fr), 0);
  fpt_init_backbone_random(&m, 5);
  for (size_t j = 0; j < 256 * 32; j++)
    assert_true(m.in_w.w[j] == 0.0f);
  assert_int_equal(fpt_init_wrapper(&m, 5, 1.41f), 0);
  assert_int_equal(fpt_init_wrapper(&m2, 5, 1.41f), 0);
  assert_memory_equal(m.in_w.w, m2.in_w.w, sizeof(float) * 256 * 32);
  double sum = 0, sq = 0;
  size_t n = 256 * 32;
  for (size_t j = 0; j < n; j++) {
    sum += m.in_w.w[j];
    sq += (double)m.in_w.w[j] * m.in_w.w[j];
  }
  double mean = sum / n, sd = sqrt(sq / n - mean * mean);
  // 5 sampling sigmas: mean 0.02/sqrt(n), sd 0.02/sqrt(2n).
  assert_true(fabs(mean) < 5 * 0.02 / sqrt((double)n));
  assert_true(fabs(sd - 0.02) < 5 * 0.02 / sqrt(2.0 * n));
  fpt_model_free(&m2);
  fpt_model_free(&m);
}

// Fused attention in the model (what T >= fpt_gpt2_flash_min_seq runs): the
// loss and every gradient equal the stored-map kernel's within float rounding,
// with dropout on, for the default freeze set and full training.
static void test_flash_layers(void **state) {
  (void)state;
  fpt_freeze sets[2] = {fpt_freeze_default(), {{0}, 1}};
  for (int k = 0; k < 2; k++) {
    net a, b;
    net_make(&a, k, &sets[k], 0.2f);
    fpt_zero_grad(&a.m);
    double la = fpt_forward_backward(&a.m, &a.a, &a.b, &a.p, a.dscale, NULL);
    int keep = fpt_gpt2_flash_min_seq;
    fpt_gpt2_flash_min_seq = 1;
    net_make(&b, k, &sets[k], 0.2f);
    fpt_zero_grad(&b.m);
    double lb = fpt_forward_backward(&b.m, &b.a, &b.b, &b.p, b.dscale, NULL);
    fpt_gpt2_flash_min_seq = keep;
    assert_true(fabs(la - lb) <= 1e-5 * fabs(la));
    double d = 0, n = 0;
    for (size_t i = 0; i < a.m.n_train; i++) {
      d = fmax(d, fabs(a.m.grad_mem[i] - b.m.grad_mem[i]));
      n = fmax(n, fabs(a.m.grad_mem[i]));
    }
    assert_true(n > 0 && d <= 1e-4 * n);
    net_free(&a);
    net_free(&b);
  }
}

// Padding stays invisible to a bidirectional encoder: a sample of 5 real
// tokens padded with junk to 8 gives the same logits as the same 5 tokens
// alone, for the last-real and mean readouts (and in a batch with an
// unpadded sample). With readout "last" the pad positions would be read.
static double padded_vs_alone(int readout) {
  fpt_backbone_cfg cfg = {"gpt2", 2, 16, 2, 12, 1e-6f, 0, FPT_ACT_GELU, 0};
  fpt_task_shape t8 = {3, 0, 8, 1, 4, 2, 0, readout}, t5 = t8;
  t5.seq = 5;
  fpt_freeze fr = fpt_freeze_default();
  fpt_model m8, m5;
  assert_int_equal(fpt_model_create(&m8, &cfg, &t8, &fr), 0);
  assert_int_equal(fpt_model_create(&m5, &cfg, &t5, &fr), 0);
  for (int i = 0; i < m8.n_tensors; i++) {
    fpt_tensor *a = &m8.tensors[i], *b = fpt_model_find(&m5, a->name);
    fill_normal(a->data, a->numel, 300 + i, 0.3f);
    memcpy(b->data, a->data, sizeof(float) * a->numel);
  }
  ln_gains_near_one(&m8);
  ln_gains_near_one(&m5);
  m8.dropout = m5.dropout = 0.0f;
  float x8[2 * 8 * 3], x5[5 * 3];
  fill_normal(x8, sizeof x8 / sizeof *x8, 5, 3.0f); // rows 5..7 of sample 0 are junk
  memcpy(x5, x8, sizeof x5);
  int32_t y[4] = {0, 1, 1, 0}, len[2] = {5, 8}; // K = 2 targets per sample
  int64_t sample[2] = {0, 1};
  fpt_batch b8 = {2, x8, NULL, y, sample, len}, b5 = {1, x5, NULL, y, sample, NULL};
  fpt_pass p = {0, 0, 0};
  fpt_acts a8, a5;
  fpt_acts_create(&a8, &m8, 2, 0, 2, 1, 1);
  fpt_acts_create(&a5, &m5, 1, 0, 2, 1, 1);
  fpt_forward_backward(&m8, &a8, &b8, &p, 0.0f, NULL);
  fpt_forward_backward(&m5, &a5, &b5, &p, 0.0f, NULL);
  double d = 0;
  for (int o = 0; o < 4; o++)
    d = fmax(d, fabs(a8.logits[o] - a5.logits[o]) / fmax(fabs(a5.logits[o]), 1e-3));
  fpt_acts_free(&a8);
  fpt_acts_free(&a5);
  fpt_model_free(&m8);
  fpt_model_free(&m5);
  return d;
}

static void test_pad_invisible(void **state) {
  (void)state;
  assert_true(padded_vs_alone(FPT_READOUT_LAST_REAL) < 1e-5);
  assert_true(padded_vs_alone(FPT_READOUT_MEAN) < 1e-5);
  // The junk is really there: the paper's readout of the last position sees it.
  assert_true(padded_vs_alone(FPT_READOUT_LAST) > 1e-3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_philox_kat),
      cmocka_unit_test(test_philox_kernels),
      cmocka_unit_test(test_normal_moments),
      cmocka_unit_test(test_dropout_mask),
      cmocka_unit_test(test_dropout_bits),
      cmocka_unit_test(test_orthogonal),
      cmocka_unit_test(test_model_fd_full),
      cmocka_unit_test(test_model_fd_default_freeze),
      cmocka_unit_test(test_frozen_sets),
      cmocka_unit_test(test_step_moves_only_trainable),
      cmocka_unit_test(test_stage_split),
      cmocka_unit_test(test_model_part),
      cmocka_unit_test(test_clip),
      cmocka_unit_test(test_bit_tasks),
      cmocka_unit_test(test_lm_tensors),
      cmocka_unit_test(test_lm_fd),
      cmocka_unit_test(test_lm_untied_equivalent),
      cmocka_unit_test(test_lm_init),
      cmocka_unit_test(test_pad_invisible),
      cmocka_unit_test(test_flash_layers),
      cmocka_unit_test(test_frozen_bf16),
      cmocka_unit_test(test_frozen_f32_panels),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
