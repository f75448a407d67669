// Runs a stack of L layer-normalised LSTM layers forward and backward on a
// case written by tests/torch/lstm_kernel_check.py, for its independent
// PyTorch check. Raw little-endian files, no HDF5:
//   in:  int32 magic 'LSTM', B, T, C, L, residual; float32 eps, p;
//        float32 x (B,T,C), dout (B,T,C), then per layer the 10 tensors in
//        fpt_lstm_w's order, h0 (B,C), c0 (B,C)
//   out: float32 out (B,T,C), dx (B,T,C), then per layer the 10 gradients,
//        dh0 (B,C), dc0 (B,C); with dropout (p > 0), then per layer its keep
//        mask (B,T,C) as 0/1, drawn by dropout_apply (not by the LSTM code)
//        for layer l's site 1 + l, seed 77, step 5, sample ids 1 + 3b.
// Usage: lstm_case IN OUT
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/lstm.h"

enum { NT = 10, MAGIC = 0x4d54534c }; // "LSTM" little-endian

static void die(const char *what) {
  fprintf(stderr, "lstm_case: %s\n", what);
  exit(1);
}

static float *read_floats(FILE *f, size_t n) {
  float *p = fpt_alloc_floats(n);
  if (fread(p, sizeof(float), n, f) != n)
    die("input file too short");
  return p;
}

static void write_floats(FILE *f, const float *p, size_t n) {
  if (fwrite(p, sizeof(float), n, f) != n)
    die("cannot write the output file");
}

static size_t tsize(int C, int k) {
  size_t G = 4 * (size_t)C;
  return k == 0 || k == 2 ? G * C : (k >= 8 ? (size_t)C : G);
}

typedef struct {
  float *t[NT], *g[NT], *h0, *c0, *dh0, *dc0, *y;
  fpt_lstm_acts a;
} layer;

int main(int argc, char **argv) {
  if (argc != 3)
    die("usage: lstm_case IN OUT");
  openblas_set_num_threads(1); // our OpenMP threads split the GEMMs (src/cli/runtime.c)
  FILE *f = fopen(argv[1], "rb");
  if (!f)
    die("cannot open the input file");
  int32_t hd[6];
  float eps, p;
  if (fread(hd, sizeof hd, 1, f) != 1 || fread(&eps, sizeof eps, 1, f) != 1 ||
      fread(&p, sizeof p, 1, f) != 1 || hd[0] != MAGIC)
    die("not an lstm case file");
  int B = hd[1], T = hd[2], C = hd[3], L = hd[4], residual = hd[5];
  if (B < 1 || T < 1 || C < 2 || L < 1 || L > 16 || !(p >= 0.0f && p < 1.0f))
    die("bad shape in the header");
  size_t BTC = (size_t)B * T * C, BC = (size_t)B * C;
  float *x = read_floats(f, BTC), *dout = read_floats(f, BTC), *dx = fpt_alloc_floats(BTC);
  layer *ly = fpt_calloc((size_t)L, sizeof(layer));
  for (int l = 0; l < L; l++) {
    for (int k = 0; k < NT; k++) {
      ly[l].t[k] = read_floats(f, tsize(C, k));
      ly[l].g[k] = fpt_alloc_floats(tsize(C, k)); // zeroed: backward accumulates
    }
    ly[l].h0 = read_floats(f, BC);
    ly[l].c0 = read_floats(f, BC);
    ly[l].dh0 = fpt_alloc_floats(BC);
    ly[l].dc0 = fpt_alloc_floats(BC);
    ly[l].y = fpt_alloc_floats(BTC);
    if (fpt_lstm_acts_create(&ly[l].a, B, T, C) != 0)
      die(fpt_error_get());
  }
  fclose(f);

  int64_t *sample = fpt_calloc((size_t)B, sizeof(int64_t));
  for (int b = 0; b < B; b++)
    sample[b] = 1 + 3 * b;
  fpt_dropout d = {p, 77, 5, sample};
  for (int l = 0; l < L; l++) {
    float **t = ly[l].t;
    fpt_lstm_w w = {t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9]};
    lstm_layer_forward(ly[l].y, &ly[l].a, l ? ly[l - 1].y : x, &w, ly[l].h0, ly[l].c0, B, T, C, eps,
                       residual, &d, 1 + l);
  }
  // Each layer's dx is the gradient of the layer below's output.
  float *dcur = fpt_alloc_floats(BTC), *dnext = fpt_alloc_floats(BTC);
  memcpy(dcur, dout, sizeof(float) * BTC);
  for (int l = L - 1; l >= 0; l--) {
    float **t = ly[l].t, **g = ly[l].g;
    fpt_lstm_w w = {t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9]};
    fpt_lstm_g gr = {g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9]};
    lstm_layer_backward(l ? dnext : dx, &gr, dcur, &ly[l].a, l ? ly[l - 1].y : x, &w, ly[l].h0,
                        ly[l].c0, B, T, C, residual, &d, ly[l].dh0, ly[l].dc0);
    float *s = dcur;
    dcur = dnext;
    dnext = s;
  }

  FILE *o = fopen(argv[2], "wb");
  if (!o)
    die("cannot create the output file");
  write_floats(o, ly[L - 1].y, BTC);
  write_floats(o, dx, BTC);
  for (int l = 0; l < L; l++) {
    for (int k = 0; k < NT; k++)
      write_floats(o, ly[l].g[k], tsize(C, k));
    write_floats(o, ly[l].dh0, BC);
    write_floats(o, ly[l].dc0, BC);
  }
  for (int l = 0; l < L && p > 0.0f; l++) {
    for (size_t i = 0; i < BTC; i++)
      dx[i] = 1.0f;
    dropout_apply(dx, &d, 1 + l, B, T, 0, C);
    for (size_t i = 0; i < BTC; i++)
      dx[i] = dx[i] != 0.0f;
    write_floats(o, dx, BTC);
  }
  if (fclose(o) != 0)
    die("cannot write the output file");

  for (int l = 0; l < L; l++) {
    for (int k = 0; k < NT; k++) {
      free(ly[l].t[k]);
      free(ly[l].g[k]);
    }
    float *per[] = {ly[l].h0, ly[l].c0, ly[l].dh0, ly[l].dc0, ly[l].y};
    for (size_t i = 0; i < sizeof per / sizeof *per; i++)
      free(per[i]);
    fpt_lstm_acts_free(&ly[l].a);
  }
  free(ly);
  free(sample);
  free(x);
  free(dout);
  free(dx);
  free(dcur);
  free(dnext);
  return 0;
}
