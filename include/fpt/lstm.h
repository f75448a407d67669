// The paper's layer-normalised LSTM layer (universal_computation/models/lstm.py,
// LayerNormLSTM with cln=False, unidirectional, dropout_method='pytorch') as a
// forward/backward pair on plain float arrays. No MPI, no HDF5.
//
// Per step t, with carried state (h, c) and width C (input width = C):
//   a = LN_i2h(x_t i2h_w^T + i2h_b) + LN_h2h(h h2h_w^T + h2h_b)      (B, 4C)
//   i, f, o = sigmoid(a[0:C], a[C:2C], a[2C:3C]); g = tanh(a[3C:4C])
//   c = LN_cell(f * c + i * g)         the normalised cell is carried on
//   h = dropout(o * tanh(c))           the dropped h is both output and state
// LN(x) = w (x - mean) / sqrt(var + eps) + b with the unbiased variance.
// Weights are in PyTorch Linear layout (out, in). Backward ACCUMULATES (+=)
// into gradients, which are NULL for frozen tensors: then no work for them.
#ifndef FPT_LSTM_H
#define FPT_LSTM_H

#include <stddef.h>
#include <stdint.h>

#include "fpt/kernels.h"

typedef struct {
  const float *i2h_w, *i2h_b;         // (4C, C), (4C)
  const float *h2h_w, *h2h_b;         // (4C, C), (4C)
  const float *ln_i2h_w, *ln_i2h_b;   // (4C)
  const float *ln_h2h_w, *ln_h2h_b;   // (4C)
  const float *ln_cell_w, *ln_cell_b; // (C)
} fpt_lstm_w;

// The same tensors' gradients; each NULL when that tensor is frozen.
typedef struct {
  float *i2h_w, *i2h_b;
  float *h2h_w, *h2h_b;
  float *ln_i2h_w, *ln_i2h_b;
  float *ln_h2h_w, *ln_h2h_b;
  float *ln_cell_w, *ln_cell_b;
} fpt_lstm_g;

// One layer's activations for up to B samples x T steps (batch-first), and
// the backward's scratch. A call with b <= B samples and t <= T steps (same C)
// packs its arrays densely as (b, t, ...).
typedef struct {
  int B, T, C;                   // capacity
  float *ui, *uh;                // (B,T,4C) raw i2h and h2h pre-activations
  float *mean_i, *rstd_i;        // (B,T) LN_i2h statistics
  float *mean_h, *rstd_h;        // (B,T) LN_h2h statistics
  float *gates;                  // (B,T,4C) i, f, o, g after the nonlinearities
  float *craw, *mean_c, *rstd_c; // (B,T,C), (B,T), (B,T): the cell before LN_cell
  float *c;                      // (B,T,C) LN_cell output: the carried cell
  float *hprev;                  // (B,T,C) h entering step t (h0 at t = 0), after dropout
  uint32_t *bits;                // (B*T rows of fpt_mask_words(C)) keep bits of h
  // Backward scratch.
  float *da, *duh; // (B,T,4C) d(gate pre-activation), d(raw h2h pre-activation)
  float *dc;       // (B,T,C) d(normalised cell) through the step
  float *dh, *dcn; // (B,C) gradients carried back into h_{t-1}, c_{t-1}
} fpt_lstm_acts;

int fpt_lstm_acts_create(fpt_lstm_acts *a, int B, int T, int C);
void fpt_lstm_acts_free(fpt_lstm_acts *a);

// x (B,T,C) -> out (B,T,C): h at every step, plus x when residual is set (the
// recurrence still carries h alone). h0, c0 (B,C) are the initial state
// (NULL: zeros). d: dropout on h (p may be 0, d may be NULL); its mask for
// element (b,t,c) is dropout_apply's for a (B,T,C) tensor at `site`, and
// its keep bits are stored in a. Every tensor of w is needed; out must not
// alias x.
void lstm_layer_forward(float *out, fpt_lstm_acts *a, const float *x, const fpt_lstm_w *w,
                        const float *h0, const float *c0, int B, int T, int C, float eps,
                        int residual, const fpt_dropout *d, uint32_t site);

// dout (B,T,C): gradient of the layer's output. dx (B,T,C) is overwritten
// (NULL: not needed). dh0, dc0 (B,C), if not NULL, are overwritten with the
// gradients of the initial state. x, w, c0, d, a as the forward left them
// (h0 is not read: the forward kept a copy; d's mask comes from the stored
// bits). a's activations are not consumed: backward may run again.
void lstm_layer_backward(float *dx, const fpt_lstm_g *g, const float *dout, fpt_lstm_acts *a,
                         const float *x, const fpt_lstm_w *w, const float *h0, const float *c0,
                         int B, int T, int C, int residual, const fpt_dropout *d, float *dh0,
                         float *dc0);

// LayerNorm with the unbiased variance (torch.var's default), as the paper's
// LSTM uses: out, mean, rstd (N,C), (N), (N).
void layernorm_unbiased_forward(float *out, float *mean, float *rstd, const float *inp,
                                const float *w, const float *b, int N, int C, float eps);
// dinp (N,C) overwritten (skipped if NULL; may alias dout); dw, db (C) += (skipped if NULL).
void layernorm_unbiased_backward(float *dinp, float *dw, float *db, const float *dout,
                                 const float *inp, const float *w, const float *mean,
                                 const float *rstd, int N, int C);

#endif
