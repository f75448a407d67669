#include <math.h>
#include <string.h>

#include "fpt/kernels.h"

double crossentropy_forward_backward(float *dlogits, const float *logits, const int32_t *targets,
                                     int N, int n_cls, float scale, int64_t *correct) {
  double loss = 0.0;
  int64_t hits = 0;
  for (int i = 0; i < N; i++) {
    const float *z = logits + (size_t)i * n_cls;
    if (targets[i] < 0) { // not a target (masked-LM positions that were not masked)
      if (dlogits)
        memset(dlogits + (size_t)i * n_cls, 0, sizeof(float) * n_cls);
      continue;
    }
    int am = 0;
    for (int c = 1; c < n_cls; c++)
      am = z[c] > z[am] ? c : am;
    double sum = 0.0;
    for (int c = 0; c < n_cls; c++)
      sum += exp((double)z[c] - z[am]);
    int y = targets[i];
    loss += log(sum) - ((double)z[y] - z[am]);
    hits += am == y;
    if (dlogits) {
      float *dz = dlogits + (size_t)i * n_cls;
      for (int c = 0; c < n_cls; c++)
        dz[c] = (float)((exp((double)z[c] - z[am]) / sum - (c == y)) * scale);
    }
  }
  if (correct)
    *correct = hits;
  return loss;
}
