// The layers of the model as forward/backward pairs on plain float arrays.
// No MPI, no HDF5. Shapes are row-major; B = samples, T = positions, C = width.
// Backward functions ACCUMULATE (+=) into parameter gradients, which may be
// NULL for frozen tensors: then no weight-gradient work is done at all.
#ifndef FPT_KERNELS_H
#define FPT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "fpt/gemm_bf16.h"

// Row-major C = alpha * op(A) op(B) + beta * C, spread over the OpenMP threads
// (each calls single-threaded OpenBLAS on its own block of rows or columns).
void fpt_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);
// The same on the calling thread only (for use inside parallel regions).
void fpt_gemm1(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);
// Reference: the same with plain loops, in double. For tests only.
void fpt_gemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc);

// out (N,OC) = inp (N,IC) . w (IC,OC) + b (OC); b may be NULL.
void linear_forward(float *out, const float *inp, const float *w, const float *b, int N, int IC,
                    int OC);
// dinp (N,IC) = dout . w^T (skipped when dinp is NULL; overwritten);
// dw (IC,OC) += inp^T . dout; db (OC) += column sums of dout.
void linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                     const float *w, int N, int IC, int OC);
// The same with an optional bf16 copy of a FROZEN w (fpt/gemm_bf16.h): when
// bf is not NULL the product runs on it (forward: layout NN; the input
// gradient: layout NT), else on w in fp32. dw must be NULL when bf is set
// (a matrix with a gradient trains: it has no bf16 copy).
void linear_forward_bf(float *out, const float *inp, const float *w, const fpt_bf16_matrix *bf,
                       const float *b, int N, int IC, int OC);
void linear_backward_bf(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const fpt_bf16_matrix *bf, int N, int IC, int OC);

// out, mean, rstd: (N,C), (N), (N). Biased variance, as torch.
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                       const float *b, int N, int C, float eps);
// dinp (N,C) += d/dinp (skipped if NULL); dw, db (C) += (skipped if NULL).
void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const float *mean, const float *rstd, int N, int C);

// gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), n elements.
void gelu_forward(float *out, const float *inp, size_t n);
// dinp = gelu'(inp) * dout (overwrites).
void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);
// The exact GELU, x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), and its backward.
void gelu_erf_forward(float *out, const float *inp, size_t n);
void gelu_erf_backward(float *dinp, const float *inp, const float *dout, size_t n);
// The same with libm's erff and expf (the tests' reference).
void gelu_erf_forward_ref(float *out, const float *inp, size_t n);
void gelu_erf_backward_ref(float *dinp, const float *inp, const float *dout, size_t n);

// Dropout keyed by (seed, step, global sample, site): the mask of an element
// depends only on those and its position, never on the batch split.
typedef struct {
  float p; // drop probability; 0 = off
  uint64_t seed;
  uint32_t step;
  const int64_t *sample; // (B) global sample index of each local sample
} fpt_dropout;

// x (B, rows, cols) viewed as rows [row0, row0+rows) of a (T, cols) per-sample
// tensor: x *= mask / (1-p). Applying it to a gradient is its backward.
void dropout_apply(float *x, const fpt_dropout *d, uint32_t site, int B, int rows, int row0,
                   int cols);
// Keep bits of a row of `cols` elements: fpt_mask_words(cols) words, bit
// c % 32 of word c / 32. The forward stores them so that the backward need
// not draw the mask again.
static inline size_t fpt_mask_words(int cols) { return ((size_t)cols + 31) / 32; }
// out (B, rows, cols) = res + x * mask / (1-p), with the mask of dropout_apply,
// in one pass. res (B, res_rows, cols) contributes its last `rows` rows per
// sample; NULL adds nothing (a masked copy). Without dropout, out = res + x.
// bits (B * rows rows of keep bits), if not NULL, receives the mask.
void dropout_forward(float *out, const float *x, const float *res, int res_rows,
                     const fpt_dropout *d, uint32_t site, int B, int rows, int row0, int cols,
                     uint32_t *bits);
// Its backward: out (rows, cols) = x * mask / (1-p) from the stored bits
// (a copy without dropout).
void dropout_backward(float *out, const float *x, const uint32_t *bits, const fpt_dropout *d,
                      int rows, int cols);
// One row of a causal map: out[0, n) = x[0, n) * mask / (1-p), the mask of
// elements first.. of (sample, site) as dropout_apply draws them. out may
// alias x and is not written beyond n. bits (fpt_mask_words(n) words), if
// not NULL, receives the mask.
void dropout_row(float *out, const float *x, const fpt_dropout *d, uint32_t site, int64_t sample,
                 uint64_t first, int n, uint32_t *bits);
// The same mask again, from bits stored by dropout_row.
void dropout_row_bits(float *out, const float *x, const uint32_t *bits, const fpt_dropout *d,
                      int n);
// The keep decision for element idx of (sample, site); exposed for tests.
int dropout_keep(const fpt_dropout *d, uint32_t site, int64_t sample, uint64_t idx);

// Multi-head attention over qkv (B,T,3C) (Q|K|V along the last axis), head
// size hs = C/NH, scores scaled by 1/sqrt(hs). Only queries [q0, T) are
// computed (readout-only rows): row i of the output is query position q0+i.
// Which keys a query sees:
typedef struct {
  int causal;          // 1: query row q0+i sees keys [0, q0+i]; 0: every key
  const int32_t *klen; // (B) real keys per sample: keys >= klen[b] are never seen (NULL: all T)
} fpt_attn_mask;
// Row i of sample b sees keys [0, n) with n = min(causal ? q0+i+1 : T, klen ? klen[b] : T).
// Contract: 1 <= klen[b] <= T, so that n >= 1 (a row with no key has no softmax).
// Invisible keys get probability exactly 0 and, in the backward, exactly 0
// gradient from that row (keys no row sees: dk = dv = 0). Rows of padded
// queries (>= klen[b]) are computed like any other; the caller ignores them.
// Attention dropout: element (head h, query q0+i, key j) of (sample, site) has
// mask index (h*T + q0+i)*T + j, the same whatever causal and klen are.

// The stored-map kernel: att (B,NH,Tq,T) holds the softmax probabilities
// before dropout. Row i is defined on its n visible keys and zero for
// fpt_attention_block keys after; later keys are not written.
// With dropout, mask (B*NH*Tq rows of fpt_mask_words(T) keep bits) receives
// the attention dropout mask for the backward. out (B,Tq,C).
// work: fpt_attention_work(T) floats, scratch (no allocation per call).
void attention_forward_masked(float *out, float *att, uint32_t *mask, const float *qkv, int B,
                              int T, int q0, int C, int NH, const fpt_attn_mask *am,
                              const fpt_dropout *d, uint32_t site, float *work);
// dqkv (B,T,3C) overwritten from dout (B,Tq,C), att and mask as the forward
// left them (dq of rows < q0 is 0).
void attention_backward_masked(float *dqkv, const float *dout, const float *qkv, const float *att,
                               const uint32_t *mask, int B, int T, int q0, int C, int NH,
                               const fpt_attn_mask *am, const fpt_dropout *d, float *work);
// Causal attention: the two above with am = {1, NULL}.
void attention_forward(float *out, float *att, uint32_t *mask, const float *qkv, int B, int T,
                       int q0, int C, int NH, const fpt_dropout *d, uint32_t site, float *work);
size_t fpt_attention_work(int T);
// The score and probability GEMMs run in blocks of fpt_attention_block query
// (or key) rows and skip the keys no row of the block sees (causal: above the
// diagonal, half the work at long T; any mode: keys >= klen[b]).
// T <= the block size is one block. Tests set it small.
extern int fpt_attention_block;
void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att,
                        const uint32_t *mask, int B, int T, int q0, int C, int NH,
                        const fpt_dropout *d, float *work);

// The fused kernel (src/model/attention_flash.c): the same attention, mask and
// dropout, but the (Tq, T) maps are never stored. Per (sample, head) and block
// of fpt_attention_flash_qblock query rows, the forward runs over blocks of
// fpt_attention_flash_kblock keys with a running max and sum (online softmax)
// and keeps only out (B,Tq,C) and lse (B,NH,Tq), each row's log-sum-exp of its
// scaled scores; the backward recomputes the scores tile by tile, P =
// exp(S - lse), and dS = P * (dP - rowsum(dO * O)). The dropout keep bits are
// drawn from the counter-based RNG with the indices of the stored-map kernel,
// so with dropout on both kernels give the same results up to float rounding.
// mask: NULL, and the backward draws the keep bits again (nothing of size
// T*T is kept); or, with dropout, B*NH*Tq rows of fpt_mask_words(T) words
// (1/32 of a map, the stored-map kernel's layout) that the forward fills and
// the backward reads instead of drawing again (one Philox pass fewer). The
// backward must get what the forward got.
// work: fpt_attention_flash_work(T) floats for all threads (a few tiles each,
// no T*T); compute it after changing the block sizes.
// Which kernel: the fused forward alone (evaluation) is never slower; forward
// plus backward with dropout, the stored-map kernel is faster below T ~ 1000
// and the fused one from there (about 0.75x the time at T = 2000 keeping its
// bits; `test_attention bench`, 2-core AMD EPYC, hs = 32). Memory decides
// sooner: the stored maps are B*NH*Tq*T floats per layer.
extern int fpt_attention_flash_qblock, fpt_attention_flash_kblock;
size_t fpt_attention_flash_work(int T);
void attention_flash_forward(float *out, float *lse, uint32_t *mask, const float *qkv, int B, int T,
                             int q0, int C, int NH, const fpt_attn_mask *am, const fpt_dropout *d,
                             uint32_t site, float *work);
// dqkv (B,T,3C) overwritten (dq of rows < q0 is 0) from dout (B,Tq,C) and the
// forward's out, lse and mask as it left them; d and site as in the forward.
void attention_flash_backward(float *dqkv, const float *dout, const float *out, const float *lse,
                              const uint32_t *mask, const float *qkv, int B, int T, int q0, int C,
                              int NH, const fpt_attn_mask *am, const fpt_dropout *d, uint32_t site,
                              float *work);
// The probabilities (before dropout) of sample b, head h, recomputed from lse:
// p (Tq, T), row i = query q0+i, exactly 0 on invisible keys (for `fpt
// attention`). Threaded when called outside a parallel region.
void attention_flash_probs(float *p, const float *qkv, const float *lse, int b, int h, int T,
                           int q0, int C, int NH, const fpt_attn_mask *am);

// Cross-entropy over rows of logits (N, n_cls) with targets (N). Returns the
// summed loss; *correct gets the number of argmax hits. If dlogits is not
// NULL it receives (softmax - onehot) * scale. A target < 0 is no target:
// no loss, no hit, a zero gradient row.
double crossentropy_forward_backward(float *dlogits, const float *logits, const int32_t *targets,
                                     int N, int n_cls, float scale, int64_t *correct);

// Adam (torch.optim.Adam semantics) over n floats, step t >= 1.
void adam_update(float *param, const float *grad, float *m, float *v, size_t n, float lr,
                 float beta1, float beta2, float eps, int64_t t);

// Threads the kernels use (the OpenMP team size).
int fpt_num_threads(void);

#endif
