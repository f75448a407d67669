#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/fastmath.h"
#include "fpt/kernels.h"

// Each (sample, head) pair is one task; OpenBLAS does not thread these small
// GEMMs, so the pairs are spread over the OpenMP threads instead.

int fpt_attention_block = 64;

// Two (T, T) maps per OpenMP thread; the parallel regions below use at most
// fpt_num_threads() threads.
size_t fpt_attention_work(int T) { return (size_t)2 * fpt_num_threads() * T * T; }

// Real keys of sample b: klen[b], or all T.
static int keys_of(const fpt_attn_mask *am, int b, int T) { return am->klen ? am->klen[b] : T; }

// Zeros after a row's n visible keys, as far as a block's GEMM reads (at most
// QB - 1 keys further); keys beyond are never read.
static void zero_tail(float *row, int n, int T, int QB) {
  int end = n + QB < T ? n + QB : T;
  if (end > n)
    memset(row + n, 0, sizeof(float) * (end - n));
}

// out[j, :] = sum_i P[i, j] Y[i, :] for keys j < K of (T, hs) out (row
// stride ldo), P (Tq, T) zero after each row's visible keys (zero_tail), Y
// (Tq, hs) (row stride ldy): per block of QB keys only the query rows that
// can see them (causal: i >= j0 - q0; otherwise all). K is the number of keys
// any row sees; rows [K, T) of out are zeroed.
static void key_blocks_tn(float *out, const float *P, const float *Y, int ldy, int T, int q0,
                          int Tq, int hs, int ldo, int QB, int causal, int K) {
  for (int j0 = 0; j0 < K; j0 += QB) {
    int nj = K - j0 < QB ? K - j0 : QB, i0 = causal && j0 > q0 ? j0 - q0 : 0;
    fpt_gemm1(1, 0, nj, hs, Tq - i0, 1.0f, P + (size_t)i0 * T + j0, T, Y + (size_t)i0 * ldy, ldy,
              0.0f, out + (size_t)j0 * ldo, ldo);
  }
  for (int j = K; j < T; j++)
    memset(out + (size_t)j * ldo, 0, sizeof(float) * hs);
}

// Over query blocks of QB rows, row block [i0, i0+m) against the nk keys it
// can see (causal: q0+i0+m; otherwise T; at most kl): scores = alpha A B^T
// (trans_b: A (Tq,hs), B (T,hs), out (Tq,T)), or out = A B (A (Tq,T) zero
// after the visible keys, B (T,hs)).
static void query_blocks(int trans_b, int Tq, int q0, int T, int causal, int kl, int hs, int QB,
                         float alpha, const float *A, int lda, const float *Bm, int ldb, float *out,
                         int ldo) {
  for (int i0 = 0; i0 < Tq; i0 += QB) {
    int m = Tq - i0 < QB ? Tq - i0 : QB, nk = causal ? q0 + i0 + m : T;
    nk = nk < kl ? nk : kl;
    fpt_gemm1(0, trans_b, m, trans_b ? nk : hs, trans_b ? hs : nk, alpha, A + (size_t)i0 * lda, lda,
              Bm, ldb, 0.0f, out + (size_t)i0 * ldo, ldo);
  }
}

// row[0, n) = softmax(row[0, n)); vector reductions and a vector exp.
static void softmax_row(float *row, int n) {
  float mx = row[0];
#pragma omp simd reduction(max : mx)
  for (int j = 1; j < n; j++)
    mx = row[j] > mx ? row[j] : mx;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int j = 0; j < n; j++) {
    row[j] = fpt_softmax_exp(row[j] - mx);
    sum += row[j];
  }
  float inv = 1.0f / sum;
  for (int j = 0; j < n; j++)
    row[j] *= inv;
}

void attention_forward_masked(float *out, float *att, uint32_t *mask, const float *qkv, int B,
                              int T, int q0, int C, int NH, const fpt_attn_mask *am,
                              const fpt_dropout *d, uint32_t site, float *work) {
  int hs = C / NH, Tq = T - q0, C3 = 3 * C, QB = fpt_attention_block, causal = am->causal;
  float scale = 1.0f / sqrtf((float)hs);
  int drop = d && d->p > 0.0f;
#pragma omp parallel num_threads(fpt_num_threads())
  {
    float *pd = work + (size_t)2 * omp_get_thread_num() * T * T;
#pragma omp for schedule(static)
    for (int bh = 0; bh < B * NH; bh++) {
      int b = bh / NH, h = bh % NH, kl = keys_of(am, b, T);
      const float *q = qkv + ((size_t)b * T + q0) * C3 + h * hs;
      const float *k = qkv + (size_t)b * T * C3 + C + h * hs;
      const float *v = k + C;
      float *p = att + (size_t)bh * Tq * T;
      query_blocks(1, Tq, q0, T, causal, kl, hs, QB, scale, q, C3, k, C3, p, T);
      size_t nw = fpt_mask_words(T);
      for (int i = 0; i < Tq; i++) {
        float *row = p + (size_t)i * T;
        int n = causal ? q0 + i + 1 : T; // keys 0..n-1 are visible
        n = n < kl ? n : kl;
        softmax_row(row, n);
        zero_tail(row, n, T, QB);
        if (drop) { // while the row is in cache
          // Element index of the mask: (head, query, key) of the full T x T map.
          float *pdr = pd + (size_t)i * T;
          dropout_row(pdr, row, d, site, d->sample[b], (uint64_t)(h * T + q0 + i) * T, n,
                      mask + ((size_t)bh * Tq + i) * nw);
          zero_tail(pdr, n, T, QB);
        }
      }
      const float *pv = drop ? pd : p;
      query_blocks(0, Tq, q0, T, causal, kl, hs, QB, 1.0f, pv, T, v, C3,
                   out + (size_t)b * Tq * C + h * hs, C);
    }
  }
}

void attention_backward_masked(float *dqkv, const float *dout, const float *qkv, const float *att,
                               const uint32_t *mask, int B, int T, int q0, int C, int NH,
                               const fpt_attn_mask *am, const fpt_dropout *d, float *work) {
  int hs = C / NH, Tq = T - q0, C3 = 3 * C, QB = fpt_attention_block, causal = am->causal;
  float scale = 1.0f / sqrtf((float)hs);
  int drop = d && d->p > 0.0f;
#pragma omp parallel num_threads(fpt_num_threads())
  {
    float *dp = work + (size_t)2 * omp_get_thread_num() * T * T, *pd = dp + (size_t)T * T;
#pragma omp for schedule(static)
    for (int bh = 0; bh < B * NH; bh++) {
      int b = bh / NH, h = bh % NH, kl = keys_of(am, b, T);
      const float *q = qkv + ((size_t)b * T + q0) * C3 + h * hs;
      const float *k = qkv + (size_t)b * T * C3 + C + h * hs;
      const float *v = k + C;
      float *dq = dqkv + (size_t)b * T * C3 + h * hs;
      float *dk = dq + C, *dv = dq + 2 * C;
      const float *p = att + (size_t)bh * Tq * T;
      const float *dy = dout + (size_t)b * Tq * C + h * hs;
      const uint32_t *bits = drop ? mask + (size_t)bh * Tq * fpt_mask_words(T) : NULL;
      // dPd = dY V^T
      query_blocks(1, Tq, q0, T, causal, kl, hs, QB, 1.0f, dy, C, v, C3, dp, T);
      // Row by row, while the row is in cache: Pd = mask(P), dP = mask(dPd),
      // then the softmax backward in place (dp becomes dS, scaled scores).
      size_t nw = fpt_mask_words(T);
      for (int i = 0; i < Tq; i++) {
        const float *pr = p + (size_t)i * T;
        float *dr = dp + (size_t)i * T;
        int n = causal ? q0 + i + 1 : T;
        n = n < kl ? n : kl;
        if (drop) {
          dropout_row_bits(pd + (size_t)i * T, pr, bits + i * nw, d, n);
          zero_tail(pd + (size_t)i * T, n, T, QB);
          dropout_row_bits(dr, dr, bits + i * nw, d, n);
        }
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int j = 0; j < n; j++)
          s += pr[j] * dr[j];
        for (int j = 0; j < n; j++)
          dr[j] = pr[j] * (dr[j] - s) * scale;
        zero_tail(dr, n, T, QB);
      }
      // Keys any row sees: the last row sees min(T, kl) in both modes.
      int K = kl < T ? kl : T;
      // dV = Pd^T dY, by key blocks: query rows below a key block's first key see none of it.
      key_blocks_tn(dv, drop ? pd : p, dy, C, T, q0, Tq, hs, C3, QB, causal, K);
      for (int t = 0; t < q0; t++)
        memset(dq + (size_t)t * C3, 0, sizeof(float) * hs);
      query_blocks(0, Tq, q0, T, causal, kl, hs, QB, 1.0f, dp, T, k, C3, dq + (size_t)q0 * C3, C3);
      key_blocks_tn(dk, dp, q, C3, T, q0, Tq, hs, C3, QB, causal, K);
    }
  }
}

static const fpt_attn_mask causal_all = {1, NULL};

void attention_forward(float *out, float *att, uint32_t *mask, const float *qkv, int B, int T,
                       int q0, int C, int NH, const fpt_dropout *d, uint32_t site, float *work) {
  attention_forward_masked(out, att, mask, qkv, B, T, q0, C, NH, &causal_all, d, site, work);
}

void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att,
                        const uint32_t *mask, int B, int T, int q0, int C, int NH,
                        const fpt_dropout *d, float *work) {
  attention_backward_masked(dqkv, dout, qkv, att, mask, B, T, q0, C, NH, &causal_all, d, work);
}
