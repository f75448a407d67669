#include <math.h>

#include "fpt/kernels.h"

void adam_update(float *param, const float *grad, float *m, float *v, size_t n, float lr,
                 float beta1, float beta2, float eps, int64_t t) {
  // The same operation order as torch.optim.Adam (non-foreach, PyTorch 1.13).
  float bc1 = 1.0f - powf(beta1, (float)t);
  float bc2 = 1.0f - powf(beta2, (float)t);
  float step_size = lr / bc1;
  float bc2_sqrt = sqrtf(bc2);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) {
    float g = grad[i];
    m[i] = m[i] * beta1 + (1.0f - beta1) * g;
    v[i] = v[i] * beta2 + (1.0f - beta2) * g * g;
    float denom = sqrtf(v[i]) / bc2_sqrt + eps;
    param[i] -= step_size * m[i] / denom;
  }
}
