// The layers of the model as forward/backward pairs on plain float arrays.
// No MPI, no HDF5. Shapes are row-major; B = samples, T = positions, C = width.
// Backward functions ACCUMULATE (+=) into parameter gradients, which may be
// NULL for frozen tensors: then no weight-gradient work is done at all.
#ifndef FPT_KERNELS_H
#define FPT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

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

// Causal multi-head attention over qkv (B,T,3C) (Q|K|V along the last axis).
// Only queries [q0, T) are computed: out (B,Tq,C), att (B,NH,Tq,T) holds the
// softmax probabilities before dropout. Row i is defined on keys [0, q0+i]
// and zero for fpt_attention_block keys after; later keys are not written.
// With dropout, mask (B*NH*Tq rows of fpt_mask_words(T) keep bits) receives
// the attention dropout mask for the backward.
// work: fpt_attention_work(T) floats, scratch (no allocation per call).
void attention_forward(float *out, float *att, uint32_t *mask, const float *qkv, int B, int T,
                       int q0, int C, int NH, const fpt_dropout *d, uint32_t site, float *work);
size_t fpt_attention_work(int T);
// dqkv (B,T,3C) overwritten from dout (B,Tq,C), att and mask as the forward
// left them.
// The score and probability GEMMs run in blocks of fpt_attention_block query
// (or key) rows and skip the keys above the diagonal: half the work at long T.
// T <= the block size is one block. Tests set it small.
extern int fpt_attention_block;
void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att,
                        const uint32_t *mask, int B, int T, int q0, int C, int NH,
                        const fpt_dropout *d, float *work);

// Cross-entropy over rows of logits (N, n_cls) with targets (N). Returns the
// summed loss; *correct gets the number of argmax hits. If dlogits is not
// NULL it receives (softmax - onehot) * scale.
double crossentropy_forward_backward(float *dlogits, const float *logits, const int32_t *targets,
                                     int N, int n_cls, float scale, int64_t *correct);

// Adam (torch.optim.Adam semantics) over n floats, step t >= 1.
void adam_update(float *param, const float *grad, float *m, float *v, size_t n, float lr,
                 float beta1, float beta2, float eps, int64_t t);

// Threads the kernels use (the OpenMP team size).
int fpt_num_threads(void);

#endif
