// Runs the C model on a case written by tests/torch/make_case.py and writes
// the tensors that tests/torch/compare.py checks against the PyTorch reference.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/gemm_bf16.h"
#include "fpt/io.h"
#include "fpt/model.h"

static int64_t attr(hid_t f, const char *path, const char *name) {
  int64_t v = 0;
  if (fpt_h5_read_attr_i64(f, path, name, &v) != 0) {
    fprintf(stderr, "case_runner: %s\n", fpt_error_get());
    exit(1);
  }
  return v;
}

// An optional int attribute: 0 when absent (case files written before it existed).
static int64_t attr_or0(hid_t f, const char *path, const char *name) {
  htri_t has = H5Aexists(f, name);
  if (has < 0) {
    fprintf(stderr, "case_runner: %s: cannot look up attribute %s\n", path, name);
    exit(1);
  }
  return has ? attr(f, path, name) : 0;
}

// The case's readout (absent: the last r positions, as in every older case).
static int readout_of(hid_t f, const char *path) {
  if (H5Aexists(f, "readout") <= 0)
    return FPT_READOUT_LAST;
  char v[32];
  if (fpt_h5_read_attr_str(f, path, "readout", v, sizeof v) != 0) {
    fprintf(stderr, "case_runner: %s\n", fpt_error_get());
    exit(1);
  }
  return !strcmp(v, "last-real") ? FPT_READOUT_LAST_REAL
         : !strcmp(v, "mean")    ? FPT_READOUT_MEAN
                                 : FPT_READOUT_LAST;
}

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != 0) {                                                                             \
      fprintf(stderr, "case_runner: %s\n", fpt_error_get());                                       \
      return 1;                                                                                    \
    }                                                                                              \
  } while (0)

static int write_named(hid_t out, const char *prefix, fpt_model *m, int grads) {
  for (int i = 0; i < m->n_tensors; i++) {
    fpt_tensor *t = &m->tensors[i];
    if (!t->trainable)
      continue;
    char name[96];
    snprintf(name, sizeof name, "/%s/%s", prefix, t->name);
    int64_t d[2] = {t->shape[0], t->shape[1]};
    FPT_TRY(fpt_h5_write_floats(out, name, t->ndim, d, grads ? t->grad : t->data));
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: case_runner CASE.h5 MODEL.h5 OUT.h5\n");
    return 2;
  }
  const char *cpath = argv[1], *mpath = argv[2];
  const char *no_amx = getenv("FPT_NO_AMX"); // as fpt: the AVX512_BF16 kernels on an AMX CPU
  fpt_amx_disable = no_amx && !strcmp(no_amx, "1");
  fpt_h5_quiet();
  hid_t f;
  CHECK(fpt_h5_open_read(cpath, &f));
  int S = (int)attr(f, cpath, "steps"), B = (int)attr(f, cpath, "batch");
  fpt_task_shape shape = {(int)attr(f, cpath, "d_in"),     (int)attr(f, cpath, "vocab"),
                          (int)attr(f, cpath, "seq"),      (int)attr(f, cpath, "r"),
                          (int)attr(f, cpath, "n_out"),    (int)attr(f, cpath, "n_cls"),
                          (int)attr_or0(f, cpath, "tied"), readout_of(f, cpath)};
  fpt_freeze fr = {{(int)attr(f, cpath, "freeze_in"), (int)attr(f, cpath, "freeze_out"),
                    (int)attr(f, cpath, "freeze_ln"), (int)attr(f, cpath, "freeze_pos"),
                    (int)attr(f, cpath, "freeze_attn"), (int)attr(f, cpath, "freeze_ff"), 0},
                   (int)attr(f, cpath, "full")};
  double lr;
  CHECK(fpt_h5_read_attr_f64(f, cpath, "lr", &lr));
  fpt_backbone_cfg cfg;
  CHECK(fpt_model_file_config(mpath, &cfg));
  // fpt --frozen-dtype bf16: the frozen block matrices multiply in bf16.
  int dtype = attr_or0(f, cpath, "frozen_bf16") ? FPT_FROZEN_BF16 : FPT_FROZEN_FP32;
  fpt_model m;
  CHECK(fpt_model_create(&m, &cfg, &shape, &fr));
  m.dropout = 0.0f;
  CHECK(fpt_model_file_load(mpath, &m));
  CHECK(fpt_model_set_frozen_dtype(&m, dtype));
  int T = shape.seq, C = cfg.n_embd, K = m.K;
  // A tied language model has the token table wte/weight and no in/* or out/*.
  const char *plain[4] = {"in/weight", "in/bias", "out/weight", "out/bias"};
  const char *tied[1] = {"wte/weight"};
  const char **init_names = shape.tied ? tied : plain;
  int n_init = shape.tied ? 1 : 4;
  for (int i = 0; i < n_init; i++) {
    fpt_tensor *t = fpt_model_find(&m, init_names[i]);
    if (!t) {
      if (shape.tied) {
        fprintf(stderr, "case_runner: the tied model has no %s\n", init_names[i]);
        return 1;
      }
      continue;
    }
    char name[64];
    snprintf(name, sizeof name, "/init/%s", init_names[i]);
    int64_t d[2] = {t->shape[0], t->shape[1]};
    CHECK(fpt_h5_read_floats(f, cpath, name, t->ndim, d, t->data));
  }
  size_t nx = (size_t)S * B * T * (shape.vocab ? 1 : shape.d_in);
  float *x = shape.vocab ? NULL : fpt_alloc_floats(nx);
  int32_t *ids = shape.vocab ? fpt_calloc(nx, sizeof(int32_t)) : NULL;
  int32_t *y = fpt_calloc((size_t)S * B * K, sizeof(int32_t));
  hid_t ds = H5Dopen2(f, "/x", H5P_DEFAULT);
  H5Dread(ds, shape.vocab ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
          shape.vocab ? (void *)ids : (void *)x);
  H5Dclose(ds);
  ds = H5Dopen2(f, "/y", H5P_DEFAULT);
  H5Dread(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, y);
  H5Dclose(ds);
  // Right-padded samples: their real lengths (absent: every position is real).
  int32_t *len = NULL;
  if (fpt_h5_exists(f, "/lengths")) {
    len = fpt_calloc((size_t)S * B, sizeof(int32_t));
    ds = H5Dopen2(f, "/lengths", H5P_DEFAULT);
    H5Dread(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, len);
    H5Dclose(ds);
  }
  H5Fclose(f);

  fpt_h5_out o;
  CHECK(fpt_h5_out_create(&o, argv[3]));
  // Backbone output for step 0's batch, all positions.
  {
    fpt_task_shape full = shape;
    full.r = T;
    full.n_out = full.n_cls;
    full.readout = FPT_READOUT_LAST;
    fpt_model m2;
    CHECK(fpt_model_create(&m2, &cfg, &full, &fr));
    for (int i = 0; i < m2.n_tensors; i++)
      if (fpt_is_backbone(&m2.tensors[i]))
        memcpy(m2.tensors[i].data, fpt_model_find(&m, m2.tensors[i].name)->data,
               sizeof(float) * m2.tensors[i].numel);
    CHECK(fpt_model_set_frozen_dtype(&m2, dtype));
    float *e = fpt_alloc_floats((size_t)B * T * C), *h = fpt_alloc_floats((size_t)B * T * C);
    if (shape.vocab)
      for (int i = 0; i < B * T; i++)
        memcpy(e + (size_t)i * C, m.in_w.w + (size_t)ids[i] * C, sizeof(float) * C);
    else
      linear_forward(e, x, m.in_w.w, m.in_b.w, B * T, shape.d_in, C);
    fpt_acts a2;
    fpt_acts_create(&a2, &m2, B, 0, cfg.n_layer, 1, 1);
    fpt_backbone_forward(&m2, &a2, e, len, h);
    int64_t d[3] = {B, T, C};
    CHECK(fpt_h5_write_floats(o.file, "/hidden", 3, d, h));
    fpt_acts_free(&a2);
    fpt_model_free(&m2);
    free(e);
    free(h);
  }
  fpt_acts a;
  fpt_acts_create(&a, &m, B, 0, cfg.n_layer, 1, 1);
  int64_t *sample = fpt_calloc((size_t)B, sizeof(int64_t));
  double *losses = fpt_calloc((size_t)S, sizeof(double));
  float dscale = 1.0f / (float)(B * K);
  for (int s = 0; s < S; s++) {
    size_t xo = (size_t)s * B * T * (shape.vocab ? 1 : shape.d_in);
    fpt_batch b = {B,
                   x ? x + xo : NULL,
                   ids ? ids + xo : NULL,
                   y + (size_t)s * B * K,
                   sample,
                   len ? len + (size_t)s * B : NULL};
    fpt_pass p = {1, 0, (uint32_t)s};
    fpt_zero_grad(&m);
    int64_t hits = 0;
    losses[s] = fpt_forward_backward(&m, &a, &b, &p, dscale, &hits) / (B * K);
    if (s == 0) {
      int64_t d[2] = {B, shape.r * shape.n_out};
      CHECK(fpt_h5_write_floats(o.file, "/logits", 2, d, a.logits));
      CHECK(write_named(o.file, "grads", &m, 1));
      hid_t sp = H5Screate(H5S_SCALAR);
      double acc = (double)hits / (B * K);
      hid_t d1 =
          H5Dcreate2(o.file, "/loss", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      H5Dwrite(d1, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &losses[0]);
      H5Dclose(d1);
      d1 = H5Dcreate2(o.file, "/accuracy", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                      H5P_DEFAULT);
      H5Dwrite(d1, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &acc);
      H5Dclose(d1);
      H5Sclose(sp);
    }
    fpt_clip_grad(&m, 1.0);
    fpt_adam_step(&m, (float)lr);
  }
  hsize_t ns = (hsize_t)S;
  hid_t sp = H5Screate_simple(1, &ns, NULL);
  hid_t d1 =
      H5Dcreate2(o.file, "/losses", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d1, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, losses);
  H5Dclose(d1);
  H5Sclose(sp);
  CHECK(write_named(o.file, "params", &m, 0));
  CHECK(fpt_h5_out_commit(&o));
  printf("case_runner: %d steps, loss %.6f -> %.6f\n", S, losses[0], losses[S - 1]);
  return 0;
}
