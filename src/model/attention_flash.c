// Fused blocked attention (FlashAttention-2 style, on CPU): the T x T maps of
// attention.c are never stored. Per (sample, head) and block of query rows,
// the forward loops over blocks of keys with a running max and sum (online
// softmax) and keeps only the output and each row's log-sum-exp; the
// backward recomputes the scores of a (query block, key block) tile and
// P = exp(S - lse) from them, and forms dS = P * (dP - rowsum(dO * O)).
// The attention dropout mask of an element is drawn by the same index as in
// attention.c ((h*T + q0+i)*T + j of (sample, site), dropout_row), a whole
// tile row at a time, in the forward and, unless the forward stored the keep
// bits (mask), again in the backward.
#include <math.h>
#include <omp.h>
#include <string.h>

#include "fpt/fastmath.h"
#include "fpt/kernels.h"

int fpt_attention_flash_qblock = 64;
int fpt_attention_flash_kblock = 128;

// Block sizes of a call at T (never above T, at least 1).
static int clampb(int blk, int T) { return blk < 1 ? 1 : (blk < T ? blk : T); }

// Per-thread scratch: three tiles (scores/probabilities, masked
// probabilities, dP/dS), two per-row vectors, one tile row of keep bits;
// rounded to 64 bytes so that threads do not share cache lines.
static size_t per_thread(int T) {
  size_t QB = (size_t)clampb(fpt_attention_flash_qblock, T);
  size_t KB = (size_t)clampb(fpt_attention_flash_kblock, T);
  size_t n = 3 * QB * KB + 2 * QB + fpt_mask_words((int)KB);
  return (n + 15) / 16 * 16;
}

size_t fpt_attention_flash_work(int T) { return (size_t)fpt_num_threads() * per_thread(T); }

// Visible keys of absolute query position t in a sample with kl real keys.
static inline int visible(int causal, int t, int T, int kl) {
  int n = causal ? t + 1 : T;
  return n < kl ? n : kl;
}

// Bits [0, n) of src into bits [off, off+n) of dst (nw words, zero there
// before); src's bits from n on are 0 (as dropout_row leaves them).
static void put_bits(uint32_t *dst, int nw, const uint32_t *src, int off, int n) {
  int w0 = off >> 5, sh = off & 31;
  for (int w = 0; w < (n + 31) >> 5; w++) {
    dst[w0 + w] |= src[w] << sh;
    if (sh && w0 + w + 1 < nw)
      dst[w0 + w + 1] |= src[w] >> (32 - sh);
  }
}

// Bits [off, off+n) of src (nw words) into bits [0, n) of dst.
static void get_bits(uint32_t *dst, const uint32_t *src, int nw, int off, int n) {
  int w0 = off >> 5, sh = off & 31;
  for (int w = 0; w < (n + 31) >> 5; w++) {
    uint32_t x = src[w0 + w] >> sh;
    if (sh && w0 + w + 1 < nw)
      x |= src[w0 + w + 1] << (32 - sh);
    dst[w] = x;
  }
}

// Long (about 90 lines): one OpenMP region over (sample, head, query block)
// whose body is the online-softmax recurrence over key blocks; split into
// calls, its dozen block pointers would travel as arguments and the
// recurrence would no longer read in one place.
void attention_flash_forward(float *out, float *lse, uint32_t *mask, const float *qkv, int B, int T,
                             int q0, int C, int NH, const fpt_attn_mask *am, const fpt_dropout *d,
                             uint32_t site, float *work) {
  int hs = C / NH, Tq = T - q0, C3 = 3 * C, causal = am->causal;
  int QB = clampb(fpt_attention_flash_qblock, T), KB = clampb(fpt_attention_flash_kblock, T);
  int nqb = (Tq + QB - 1) / QB;
  float scale = 1.0f / sqrtf((float)hs);
  int drop = d && d->p > 0.0f;
  size_t pt = per_thread(T);
#pragma omp parallel num_threads(fpt_num_threads())
  {
    float *s = work + pt * omp_get_thread_num(), *pd = s + (size_t)QB * KB;
    float *mx = pd + (size_t)QB * KB, *l = mx + QB;
    uint32_t *bits = (uint32_t *)(l + QB);
    int nw = (int)fpt_mask_words(T);
    // One task per (sample, head, query block): independent outputs.
#pragma omp for schedule(dynamic)
    for (int task = 0; task < B * NH * nqb; task++) {
      int bh = task / nqb, b = bh / NH, h = bh % NH, i0 = task % nqb * QB;
      int m = Tq - i0 < QB ? Tq - i0 : QB, t0 = q0 + i0;
      int kl = am->klen ? am->klen[b] : T;
      int nk = visible(causal, t0 + m - 1, T, kl); // the block's last row sees the most
      const float *q = qkv + ((size_t)b * T + t0) * C3 + h * hs;
      const float *k = qkv + (size_t)b * T * C3 + C + h * hs;
      const float *v = k + C;
      float *o = out + ((size_t)b * Tq + i0) * C + h * hs;
      uint32_t *mrows = drop && mask ? mask + ((size_t)bh * Tq + i0) * nw : NULL;
      if (mrows)
        memset(mrows, 0, sizeof(uint32_t) * nw * m);
      for (int j0 = 0; j0 < nk; j0 += KB) {
        int nj = nk - j0 < KB ? nk - j0 : KB;
        // Rows before r0 see none of these keys (causal); every row sees key 0.
        int r0 = causal && j0 > t0 ? j0 - t0 : 0, mr = m - r0;
        fpt_gemm1(0, 1, mr, nj, hs, scale, q + (size_t)r0 * C3, C3, k + (size_t)j0 * C3, C3, 0.0f,
                  s + (size_t)r0 * KB, KB);
        for (int r = r0; r < m; r++) {
          float *row = s + (size_t)r * KB, *pdr = pd + (size_t)r * KB;
          int nr = visible(causal, t0 + r, T, kl) - j0;
          nr = nr < nj ? nr : nj; // >= 1 from r0 on
          float bm = row[0];
#pragma omp simd reduction(max : bm)
          for (int c = 1; c < nr; c++)
            bm = row[c] > bm ? row[c] : bm;
          // Every row sees key 0, so the first key block sets max and sum.
          float old = mx[r], nm = j0 == 0 || bm > old ? bm : old;
          float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
          for (int c = 0; c < nr; c++) {
            row[c] = fpt_softmax_exp(row[c] - nm);
            sum += row[c];
          }
          if (nr < nj)
            memset(row + nr, 0, sizeof(float) * (nj - nr));
          if (j0 == 0) {
            l[r] = sum;
          } else {
            float corr = fpt_softmax_exp(old - nm);
            l[r] = l[r] * corr + sum;
            if (nm != old) {
              float *orow = o + (size_t)r * C;
              for (int c = 0; c < hs; c++)
                orow[c] *= corr;
            }
          }
          mx[r] = nm;
          if (drop) {
            dropout_row(pdr, row, d, site, d->sample[b], (uint64_t)(h * T + t0 + r) * T + j0, nr,
                        mrows ? bits : NULL);
            if (mrows)
              put_bits(mrows + (size_t)r * nw, nw, bits, j0, nr);
            if (nr < nj)
              memset(pdr + nr, 0, sizeof(float) * (nj - nr));
          }
        }
        fpt_gemm1(0, 0, mr, hs, nj, 1.0f, (drop ? pd : s) + (size_t)r0 * KB, KB,
                  v + (size_t)j0 * C3, C3, j0 == 0 ? 0.0f : 1.0f, o + (size_t)r0 * C, C);
      }
      float *lr = lse + (size_t)bh * Tq + i0;
      for (int r = 0; r < m; r++) {
        float inv = 1.0f / l[r], *orow = o + (size_t)r * C;
        for (int c = 0; c < hs; c++)
          orow[c] *= inv;
        lr[r] = mx[r] + logf(l[r]);
      }
    }
  }
}

// Long (about 95 lines), for the forward's reason: one parallel region, the
// recomputed scores and their gradient read as one recurrence.
void attention_flash_backward(float *dqkv, const float *dout, const float *out, const float *lse,
                              const uint32_t *mask, const float *qkv, int B, int T, int q0, int C,
                              int NH, const fpt_attn_mask *am, const fpt_dropout *d, uint32_t site,
                              float *work) {
  int hs = C / NH, Tq = T - q0, C3 = 3 * C, causal = am->causal;
  int QB = clampb(fpt_attention_flash_qblock, T), KB = clampb(fpt_attention_flash_kblock, T);
  float scale = 1.0f / sqrtf((float)hs);
  int drop = d && d->p > 0.0f;
  size_t pt = per_thread(T);
#pragma omp parallel num_threads(fpt_num_threads())
  {
    float *p = work + pt * omp_get_thread_num(), *pd = p + (size_t)QB * KB;
    float *ds = pd + (size_t)QB * KB, *dd = ds + (size_t)QB * KB;
    uint32_t *bits = (uint32_t *)(dd + 2 * QB);
    int nw = (int)fpt_mask_words(T);
    // One task per (sample, head): dq, dk and dv of the head accumulate over
    // the tiles in a fixed order, whichever thread runs it.
#pragma omp for schedule(dynamic)
    for (int bh = 0; bh < B * NH; bh++) {
      int b = bh / NH, h = bh % NH;
      int kl = am->klen ? am->klen[b] : T;
      const float *k = qkv + (size_t)b * T * C3 + C + h * hs;
      const float *v = k + C;
      float *dq = dqkv + (size_t)b * T * C3 + h * hs;
      float *dk = dq + C, *dv = dq + 2 * C;
      for (int t = 0; t < T; t++) {
        memset(dq + (size_t)t * C3, 0, sizeof(float) * hs);
        memset(dk + (size_t)t * C3, 0, sizeof(float) * hs);
        memset(dv + (size_t)t * C3, 0, sizeof(float) * hs);
      }
      for (int i0 = 0; i0 < Tq; i0 += QB) {
        int m = Tq - i0 < QB ? Tq - i0 : QB, t0 = q0 + i0;
        int nk = visible(causal, t0 + m - 1, T, kl);
        const float *q = qkv + ((size_t)b * T + t0) * C3 + h * hs;
        const float *dy = dout + ((size_t)b * Tq + i0) * C + h * hs;
        const float *o = out + ((size_t)b * Tq + i0) * C + h * hs;
        const float *lr = lse + (size_t)bh * Tq + i0;
        float *dqi = dq + (size_t)t0 * C3;
        // D = rowsum(dO * O) = sum_j P_ij dP_ij, also with dropout (O = Pd V).
        for (int r = 0; r < m; r++) {
          float acc = 0.0f;
          const float *a = dy + (size_t)r * C, *c = o + (size_t)r * C;
#pragma omp simd reduction(+ : acc)
          for (int e = 0; e < hs; e++)
            acc += a[e] * c[e];
          dd[r] = acc;
        }
        for (int j0 = 0; j0 < nk; j0 += KB) {
          int nj = nk - j0 < KB ? nk - j0 : KB;
          // Rows before r0 see none of these keys (causal): no work for them.
          int r0 = causal && j0 > t0 ? j0 - t0 : 0, mr = m - r0;
          fpt_gemm1(0, 1, mr, nj, hs, scale, q + (size_t)r0 * C3, C3, k + (size_t)j0 * C3, C3, 0.0f,
                    p + (size_t)r0 * KB, KB);
          fpt_gemm1(0, 1, mr, nj, hs, 1.0f, dy + (size_t)r0 * C, C, v + (size_t)j0 * C3, C3, 0.0f,
                    ds + (size_t)r0 * KB, KB);
          for (int r = r0; r < m; r++) {
            float *pr = p + (size_t)r * KB, *dr = ds + (size_t)r * KB, *pdr = pd + (size_t)r * KB;
            int nr = visible(causal, t0 + r, T, kl) - j0;
            nr = nr < nj ? nr : nj; // >= 1 from r0 on
            float lse_r = lr[r], D = dd[r];
#pragma omp simd
            for (int c = 0; c < nr; c++)
              pr[c] = fpt_softmax_exp(pr[c] - lse_r);
            if (drop) {
              if (mask) { // the forward's keep bits
                get_bits(bits, mask + ((size_t)bh * Tq + i0 + r) * nw, nw, j0, nr);
                dropout_row_bits(pdr, pr, bits, d, nr);
              } else { // drawn again, as the forward drew them
                dropout_row(pdr, pr, d, site, d->sample[b], (uint64_t)(h * T + t0 + r) * T + j0, nr,
                            bits);
              }
              dropout_row_bits(dr, dr, bits, d, nr);
            }
#pragma omp simd
            for (int c = 0; c < nr; c++)
              dr[c] = pr[c] * (dr[c] - D) * scale;
            if (nr < nj) {
              memset(pr + nr, 0, sizeof(float) * (nj - nr));
              memset(dr + nr, 0, sizeof(float) * (nj - nr));
              if (drop)
                memset(pdr + nr, 0, sizeof(float) * (nj - nr));
            }
          }
          // dV_j += Pd^T dO, dK_j += dS^T Q, dQ_i += dS K_j.
          fpt_gemm1(1, 0, nj, hs, mr, 1.0f, (drop ? pd : p) + (size_t)r0 * KB, KB,
                    dy + (size_t)r0 * C, C, 1.0f, dv + (size_t)j0 * C3, C3);
          fpt_gemm1(1, 0, nj, hs, mr, 1.0f, ds + (size_t)r0 * KB, KB, q + (size_t)r0 * C3, C3, 1.0f,
                    dk + (size_t)j0 * C3, C3);
          fpt_gemm1(0, 0, mr, hs, nj, 1.0f, ds + (size_t)r0 * KB, KB, k + (size_t)j0 * C3, C3, 1.0f,
                    dqi + (size_t)r0 * C3, C3);
        }
      }
    }
  }
}

void attention_flash_probs(float *p, const float *qkv, const float *lse, int b, int h, int T,
                           int q0, int C, int NH, const fpt_attn_mask *am) {
  int hs = C / NH, Tq = T - q0, C3 = 3 * C;
  int kl = am->klen ? am->klen[b] : T;
  float scale = 1.0f / sqrtf((float)hs);
  const float *q = qkv + ((size_t)b * T + q0) * C3 + h * hs;
  const float *k = qkv + (size_t)b * T * C3 + C + h * hs;
  const float *lr = lse + ((size_t)b * NH + h) * Tq;
  fpt_gemm(0, 1, Tq, T, hs, scale, q, C3, k, C3, 0.0f, p, T);
#pragma omp parallel for schedule(static)
  for (int i = 0; i < Tq; i++) {
    float *row = p + (size_t)i * T, lse_r = lr[i];
    int n = visible(am->causal, q0 + i, T, kl);
#pragma omp simd
    for (int c = 0; c < n; c++)
      row[c] = fpt_softmax_exp(row[c] - lse_r);
    if (n < T)
      memset(row + n, 0, sizeof(float) * (T - n));
  }
}
