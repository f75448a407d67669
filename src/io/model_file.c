#include <stdio.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/io.h"

int fpt_model_file_config(const char *path, fpt_gpt2_config *cfg) {
  hid_t f;
  FPT_TRY(fpt_h5_open_read(path, &f));
  int64_t v[4];
  const char *names[4] = {"n_layer", "n_head", "n_embd", "n_positions"};
  double eps = 1e-5;
  int rc = 0;
  for (int i = 0; i < 4 && rc == 0; i++)
    rc = fpt_h5_read_attr_i64(f, path, names[i], &v[i]);
  if (rc == 0)
    rc = fpt_h5_read_attr_f64(f, path, "layer_norm_epsilon", &eps);
  H5Fclose(f);
  FPT_TRY(rc);
  for (int i = 0; i < 4; i++)
    FPT_ENSURE(v[i] >= 1 && v[i] < (1 << 20), "%s: attribute %s = %lld is out of range", path,
               names[i], (long long)v[i]);
  FPT_ENSURE(v[2] % v[1] == 0, "%s: n_embd (%lld) is not divisible by n_head (%lld)", path,
             (long long)v[2], (long long)v[1]);
  FPT_ENSURE(eps > 0 && eps < 1, "%s: attribute layer_norm_epsilon = %g is out of range", path,
             eps);
  cfg->n_layer = (int)v[0];
  cfg->n_head = (int)v[1];
  cfg->n_embd = (int)v[2];
  cfg->n_positions = (int)v[3];
  cfg->ln_eps = (float)eps;
  return 0;
}

int fpt_model_file_load(const char *path, fpt_model *m) {
  hid_t f;
  FPT_TRY(fpt_h5_open_read(path, &f));
  int rc = 0;
  for (int i = 0; i < m->n_tensors && rc == 0; i++) {
    fpt_tensor *t = &m->tensors[i];
    if (!fpt_is_backbone(t) || (m->frozen_readonly && !t->trainable))
      continue;
    char name[64];
    snprintf(name, sizeof name, "/%s", t->name);
    int64_t dims[2] = {t->shape[0], t->shape[1]};
    rc = fpt_h5_read_floats(f, path, name, t->ndim, dims, t->data);
    for (size_t j = 0; rc == 0 && j < t->numel; j++)
      if (!(t->data[j] == t->data[j]) || t->data[j] - t->data[j] != 0.0f) {
        fpt_error_set("%s: dataset %s holds a NaN or Inf at element %zu", path, name, j);
        rc = 1;
      }
  }
  H5Fclose(f);
  return rc;
}

int fpt_model_file_load_wte(const char *path, fpt_model *m, int *loaded) {
  *loaded = 0;
  fpt_tensor *t = fpt_model_find(m, "wte/weight");
  if (!t)
    return 0;
  hid_t f;
  FPT_TRY(fpt_h5_open_read(path, &f));
  int rc = 0;
  if (fpt_h5_exists(f, "/wte/weight") == 1) {
    int64_t dims[2] = {t->shape[0], t->shape[1]};
    rc = fpt_h5_read_floats(f, path, "/wte/weight", 2, dims, t->data);
    *loaded = rc == 0;
  }
  H5Fclose(f);
  return rc;
}

int fpt_h5_write_tensors(hid_t file, const fpt_model *m, int backbone_only) {
  for (int i = 0; i < m->n_tensors; i++) {
    const fpt_tensor *t = &m->tensors[i];
    // A language model's token table belongs in the model file too (GPT-2's wte).
    if (backbone_only && !fpt_is_backbone(t) && strcmp(t->name, "wte/weight") != 0)
      continue;
    char name[64];
    snprintf(name, sizeof name, "/%s", t->name);
    int64_t dims[2] = {t->shape[0], t->shape[1]};
    FPT_TRY(fpt_h5_write_floats(file, name, t->ndim, dims, t->data));
  }
  return 0;
}

static int write_config(hid_t f, const fpt_gpt2_config *c) {
  FPT_TRY(fpt_h5_write_attr_i64(f, "n_layer", c->n_layer));
  FPT_TRY(fpt_h5_write_attr_i64(f, "n_head", c->n_head));
  FPT_TRY(fpt_h5_write_attr_i64(f, "n_embd", c->n_embd));
  FPT_TRY(fpt_h5_write_attr_i64(f, "n_positions", c->n_positions));
  FPT_TRY(fpt_h5_write_attr_f64(f, "layer_norm_epsilon", c->ln_eps));
  FPT_TRY(fpt_h5_write_attr_i64(f, "format_version", FPT_MODEL_FORMAT_VERSION));
  return 0;
}

int fpt_model_file_write(const char *path, const fpt_model *m) {
  fpt_h5_out o;
  FPT_TRY(fpt_h5_out_create(&o, path));
  int rc = write_config(o.file, &m->cfg);
  if (rc == 0)
    rc = fpt_h5_write_tensors(o.file, m, 1);
  if (rc != 0) {
    fpt_h5_out_abort(&o);
    return rc;
  }
  return fpt_h5_out_commit(&o);
}
