#include <stdio.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/io.h"

// One root attribute as the kind's table declares it (fpt/backbone.h).
static int read_attr(hid_t f, const char *path, const fpt_attr_spec *a, fpt_backbone_cfg *cfg) {
  void *field = (char *)cfg + a->offset;
  if (H5Aexists(f, a->name) <= 0) {
    FPT_ENSURE(!a->required, "%s: attribute %s is missing", path, a->name);
    if (a->type == FPT_ATTR_FLOAT)
      *(float *)field = (float)a->def;
    else
      *(int *)field = (int)a->def;
    return 0;
  }
  if (a->type == FPT_ATTR_CHOICE) {
    char v[64];
    FPT_TRY(fpt_h5_read_attr_str(f, path, a->name, v, sizeof v));
    for (int i = 0; a->choices[i]; i++)
      if (!strcmp(v, a->choices[i])) {
        *(int *)field = i;
        return 0;
      }
    FPT_FAIL("%s: attribute %s = \"%s\" is not one of %s%s%s", path, a->name, v, a->choices[0],
             a->choices[1] ? ", " : "", a->choices[1] ? a->choices[1] : "");
  }
  if (a->type == FPT_ATTR_INT) {
    int64_t v;
    FPT_TRY(fpt_h5_read_attr_int(f, path, a->name, &v));
    FPT_ENSURE(v >= a->lo && v <= a->hi, "%s: attribute %s = %lld is out of range [%.0f, %.0f]",
               path, a->name, (long long)v, a->lo, a->hi);
    *(int *)field = (int)v;
    return 0;
  }
  double v;
  FPT_TRY(fpt_h5_read_attr_f64(f, path, a->name, &v));
  FPT_ENSURE(v >= a->lo && v <= a->hi, "%s: attribute %s = %g is out of range", path, a->name, v);
  *(float *)field = (float)v;
  return 0;
}

int fpt_model_cfg_read(hid_t f, const char *path, fpt_backbone_cfg *cfg) {
  memset(cfg, 0, sizeof *cfg);
  snprintf(cfg->kind, sizeof cfg->kind, "gpt2"); // files from before kinds existed
  if (H5Aexists(f, "kind") > 0)
    FPT_TRY(fpt_h5_read_attr_str(f, path, "kind", cfg->kind, sizeof cfg->kind));
  const fpt_backbone *bb = fpt_backbone_find(cfg->kind);
  FPT_ENSURE(bb, "%s: attribute kind = \"%s\" is not a backbone kind (%s)", path, cfg->kind,
             fpt_backbone_kinds());
  for (int i = 0; i < bb->n_attrs; i++)
    FPT_TRY(read_attr(f, path, &bb->attrs[i], cfg));
  return bb->check(cfg, path);
}

int fpt_model_file_config(const char *path, fpt_backbone_cfg *cfg) {
  hid_t f;
  FPT_TRY(fpt_h5_open_read(path, &f));
  int rc = fpt_model_cfg_read(f, path, cfg);
  H5Fclose(f);
  return rc;
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
    if (rc == 0)
      rc = fpt_check_finite(path, name, t->data, t->numel);
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

int fpt_model_file_write_config(hid_t f, const fpt_backbone_cfg *c) {
  const fpt_backbone *bb = fpt_backbone_find(c->kind);
  FPT_ENSURE(bb, "model: unknown backbone kind '%s'", c->kind);
  FPT_TRY(fpt_h5_write_attr_str(f, "kind", c->kind));
  for (int i = 0; i < bb->n_attrs; i++) {
    const fpt_attr_spec *a = &bb->attrs[i];
    const void *field = (const char *)c + a->offset;
    if (a->type == FPT_ATTR_INT)
      FPT_TRY(fpt_h5_write_attr_i64(f, a->name, *(const int *)field));
    else if (a->type == FPT_ATTR_FLOAT)
      FPT_TRY(fpt_h5_write_attr_f64(f, a->name, *(const float *)field));
    else
      FPT_TRY(fpt_h5_write_attr_str(f, a->name, a->choices[*(const int *)field]));
  }
  FPT_TRY(fpt_h5_write_attr_i64(f, "format_version", FPT_MODEL_FORMAT_VERSION));
  return 0;
}

int fpt_model_file_write(const char *path, const fpt_model *m) {
  return fpt_model_file_write_from(path, m, NULL);
}

static int write_provenance(hid_t f, const fpt_provenance *p) {
  FPT_TRY(fpt_h5_write_attr_str(f, "source_run", p->run));
  FPT_TRY(fpt_h5_write_attr_str(f, "source_checkpoint", p->checkpoint));
  FPT_TRY(fpt_h5_write_attr_str(f, "source_task", p->task));
  FPT_TRY(fpt_h5_write_attr_i64(f, "source_step", p->step));
  return fpt_h5_write_attr_f64(f, "source_val_accuracy", p->val_accuracy);
}

int fpt_model_file_write_from(const char *path, const fpt_model *m, const fpt_provenance *p) {
  fpt_h5_out o;
  FPT_TRY(fpt_h5_out_create(&o, path));
  int rc = fpt_model_file_write_config(o.file, &m->cfg);
  if (rc == 0 && p)
    rc = write_provenance(o.file, p);
  if (rc == 0)
    rc = fpt_h5_write_tensors(o.file, m, 1);
  if (rc != 0) {
    fpt_h5_out_abort(&o);
    return rc;
  }
  return fpt_h5_out_commit(&o);
}
