// The output layer as a function of the readout features (ln_f at the last r
// positions): the one-hot targets a least-squares fit aims at, and the
// scores the model's head gives. Pure math, as in fpt/model.h.
#ifndef FPT_READOUT_H
#define FPT_READOUT_H

#include <stdint.h>

#include "fpt/model.h"

// One-hot target of output `out` at readout position `pos` of a sample with
// labels y (K of them): the n_out outputs of a position are n_out / n_cls
// groups of n_cls classes, target pos * (n_out / n_cls) + out / n_cls.
double fpt_readout_onehot(const fpt_task_shape *t, const int32_t *y, int pos, int out);

typedef struct {
  double loss;  // summed cross-entropy, as the model's head computes it
  double sqerr; // summed squared error of the outputs to the one-hot targets
  int64_t hits; // argmax hits
} fpt_readout_sums;

// Add the scores of a head (W: C x n_out, bias: n_out) on B samples'
// features (B * r rows of C) with labels y (B x K). logits: B * r * n_out scratch.
void fpt_readout_score(const fpt_task_shape *t, int C, const float *feat, const int32_t *y, int B,
                       const float *W, const float *bias, float *logits, fpt_readout_sums *s);

#endif
