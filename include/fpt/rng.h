// Counter-based random numbers (Philox4x32-10, Salmon et al. SC'11). A draw is a
// pure function of (key, counter), so any rank can reproduce any sample's
// dropout mask or data without communicating, whatever the batch split.
#ifndef FPT_RNG_H
#define FPT_RNG_H

#include <stdint.h>

typedef struct {
  uint32_t v[4];
} fpt_u32x4;

fpt_u32x4 fpt_philox(uint64_t key, fpt_u32x4 ctr);

// Stream: everything that identifies a family of draws except the element index.
typedef struct {
  uint64_t key;  // the run's seed
  uint32_t site; // what the draws are for (see FPT_SITE_*)
  uint32_t a, b; // e.g. (step, global sample index)
} fpt_stream;

// Four independent uint32 for element block i of the stream.
static inline fpt_u32x4 fpt_stream_block(fpt_stream s, uint32_t i) {
  fpt_u32x4 c = {{i, s.site, s.a, s.b}};
  return fpt_philox(s.key, c);
}
// Blocks first..first+n-1 of the stream into out (4n values); vectorised.
void fpt_stream_blocks(fpt_stream s, uint32_t first, int n, uint32_t *out);
// Its kernels, which give the same bits: BEST is the fastest this CPU runs.
enum { FPT_RNG_BEST = -1, FPT_RNG_PORTABLE = 0, FPT_RNG_AVX2 = 1, FPT_RNG_AVX512 = 2 };
// fpt_stream_blocks on the given kernel; -1 (and nothing written) if this CPU cannot run it.
int fpt_stream_blocks_isa(fpt_stream s, uint32_t first, int n, uint32_t *out, int isa);
// The i-th uint32 of the stream.
uint32_t fpt_stream_u32(fpt_stream s, uint64_t i);
// Uniform in [0,1) with 24 random bits.
float fpt_stream_uniform(fpt_stream s, uint64_t i);
// Standard normal, i-th value (Box-Muller on a pair of blocks), in double.
double fpt_stream_normal(fpt_stream s, uint64_t i);

// Seeded Fisher-Yates shuffle of v[0..n) driven by stream s.
void fpt_shuffle(int64_t *v, int64_t n, fpt_stream s);

// Sites: one per purpose, so that streams never overlap.
enum {
  FPT_SITE_INIT = 1,       // parameter initialisation (a = tensor id)
  FPT_SITE_DATA = 2,       // synthetic task samples (a = split, b = sample)
  FPT_SITE_AUGMENT = 3,    // image augmentation (a = step, b = sample)
  FPT_SITE_LSTM_STATE = 4, // LSTM random initial state (a = step, b = sample)
  FPT_SITE_MLM = 5,        // masked-LM masking (a = split, b = stream position / sample)
  FPT_SITE_DROPOUT = 16,   // + 8 * layer + kind; a = step, b = global sample
};
enum {
  FPT_DROP_INPUT = 0,    // after the input Linear
  FPT_DROP_EMBD = 1,     // after adding positions (GPT-2 embd_pdrop)
  FPT_DROP_ATTN = 2,     // attention probabilities (attn_pdrop)
  FPT_DROP_ATTN_OUT = 3, // after attention c_proj (resid_pdrop)
  FPT_DROP_MLP_OUT = 4,  // after MLP c_proj (resid_pdrop)
  FPT_DROP_LSTM_OUT = 5, // an LSTM layer's h (output and carried state)
};
// Dropout site for a layer (-1 for the embedding stage).
static inline uint32_t fpt_dropout_site(int layer, int kind) {
  return (uint32_t)(FPT_SITE_DROPOUT + 8 * (layer + 1) + kind);
}

#endif
