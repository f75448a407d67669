// The typed run description (fpt/run.h): its fields as a table, written to
// and read from a checkpoint's /run group, compared on resume, and the one
// model builder.
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/config.h"
#include "fpt/io.h"
#include "fpt/run.h"

const char *const fpt_init_names[] = {"pretrained", "random", "stats", NULL};
const char *const fpt_state_names[] = {"zero", "random", NULL};
const char *const fpt_objective_names[] = {"causal", "mlm", NULL};
const char *const fpt_frozen_dtype_names[] = {"fp32", "bf16", NULL};

void fpt_run_desc_init(fpt_run_desc *d) {
  memset(d, 0, sizeof *d);
  d->init = FPT_INIT_PRETRAINED;
  d->seed = 1;
  d->orth_gain = 1.41;
  d->dropout = 0.1;
  d->freeze = fpt_freeze_default();
  snprintf(d->tokens, sizeof d->tokens, "x");
  snprintf(d->lr_schedule, sizeof d->lr_schedule, "constant");
}

// A value of fpt_opts_dump's "key: value" lines (our own writer's format,
// not general YAML): 0 and the unquoted text, or 1 if absent or null.
int fpt_opts_dump_value(const char *dump, const char *key, char *out, size_t n) {
  size_t k = strlen(key);
  for (const char *l = dump; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    if (strncmp(l, key, k) || l[k] != ':' || l[k + 1] != ' ')
      continue;
    const char *v = l + k + 2;
    int len = (int)strcspn(v, "\n");
    if (len == 4 && !strncmp(v, "null", 4))
      return 1;
    int q = len >= 2 && v[0] == '"' && v[len - 1] == '"';
    snprintf(out, n, "%.*s", len - 2 * q, v + q);
    return 0;
  }
  return 1;
}

// ---------------------------------------------------------------- fields
// One row per field: the attribute (and option) name, its type, where it is,
// and whether a resume must match it. CHOICE fields are ints stored as the
// name of their value. The backbone's shape is written by the model-file
// code (its own attributes, in the same group).
enum { I64, INT, F64, STR, CHOICE };
typedef struct {
  const char *key;
  int type;
  size_t offset, size;
  int numbers;
  const char *const *choices;
} field;

#define D(f) offsetof(fpt_run_desc, f)
#define S(f) D(f), sizeof(((fpt_run_desc *)0)->f)
static const field fields[] = {
    {"model", STR, S(model), 0, NULL},
    {"model_checksum", STR, S(model_checksum), 1, NULL},
    {"init", CHOICE, D(init), 0, 1, fpt_init_names},
    {"seed", I64, D(seed), 0, 1, NULL},
    {"orth_gain", F64, D(orth_gain), 0, 1, NULL},
    {"dropout", F64, D(dropout), 0, 1, NULL},
    {"lstm_state", CHOICE, D(lstm_state), 0, 1, fpt_state_names},
    {"freeze_in", INT, D(freeze.frozen[FPT_G_IN]), 0, 1, NULL},
    {"freeze_out", INT, D(freeze.frozen[FPT_G_OUT]), 0, 1, NULL},
    {"freeze_ln", INT, D(freeze.frozen[FPT_G_LN]), 0, 1, NULL},
    {"freeze_pos", INT, D(freeze.frozen[FPT_G_POS]), 0, 1, NULL},
    {"freeze_attn", INT, D(freeze.frozen[FPT_G_ATTN]), 0, 1, NULL},
    {"freeze_ff", INT, D(freeze.frozen[FPT_G_FF]), 0, 1, NULL},
    {"full_train", INT, D(freeze.full), 0, 1, NULL},
    {"frozen_dtype", CHOICE, D(frozen_dtype), 0, 1, fpt_frozen_dtype_names},
    {"d_in", INT, D(task.d_in), 0, 1, NULL},
    {"vocab", INT, D(task.vocab), 0, 1, NULL},
    {"seq", INT, D(task.seq), 0, 1, NULL},
    {"readout_positions", INT, D(task.r), 0, 1, NULL},
    {"n_out", INT, D(task.n_out), 0, 1, NULL},
    {"n_classes", INT, D(task.n_cls), 0, 1, NULL},
    {"tied", INT, D(task.tied), 0, 1, NULL},
    {"readout", INT, D(task.readout), 0, 1, NULL},
    {"keep_wte", INT, D(keep_wte), 0, 1, NULL},
    {"objective", CHOICE, D(objective), 0, 1, fpt_objective_names},
    {"task", STR, S(task_name), 1, NULL},
    {"data", STR, S(data), 0, NULL},
    {"data_checksum", STR, S(data_checksum), 1, NULL},
    {"tokens", STR, S(tokens), 1, NULL},
    {"data_seed", I64, D(data_seed), 0, 1, NULL},
    {"eval_samples", I64, D(eval_samples), 0, 1, NULL},
    {"eval_limit", I64, D(eval_limit), 0, 1, NULL},
    {"train_limit", I64, D(train_limit), 0, 1, NULL},
    {"bit_length", I64, D(bit_length), 0, 1, NULL},
    {"patterns", I64, D(patterns), 0, 1, NULL},
    {"patch", I64, D(patch), 0, 1, NULL},
    {"augment", INT, D(augment), 0, 1, NULL},
    {"batch_size", I64, D(batch_size), 0, 1, NULL},
    {"warmup", I64, D(warmup), 0, 1, NULL},
    {"lr", F64, D(lr), 0, 1, NULL},
    {"clip", F64, D(clip), 0, 1, NULL},
    {"lr_schedule", STR, S(lr_schedule), 1, NULL},
    // The schedule's length shapes a decaying learning rate only: compared below.
    {"steps", I64, D(steps), 0, 0, NULL},
};
#undef S
#undef D
enum { N_FIELDS = sizeof fields / sizeof *fields };
_Static_assert(N_FIELDS <= 64, "fpt_run_desc.known has a bit per field");

// Fields added after checkpoints were written without them: the value those
// checkpoints ran with (so a resume compares with it).
static const struct { const char *key, *value; } absent_values[] = {{"frozen_dtype", "fp32"}};

static const char *absent(const field *f) {
  for (size_t i = 0; i < sizeof absent_values / sizeof *absent_values; i++)
    if (!strcmp(f->key, absent_values[i].key))
      return absent_values[i].value;
  return NULL;
}

static void *at(fpt_run_desc *d, const field *f) { return (char *)d + f->offset; }
static const void *cat(const fpt_run_desc *d, const field *f) {
  return (const char *)d + f->offset;
}

// The value as text, for messages and for format-1 checkpoints.
static void format(const fpt_run_desc *d, const field *f, char *buf, size_t n) {
  const void *v = cat(d, f);
  switch (f->type) {
  case I64:
    snprintf(buf, n, "%lld", (long long)*(const int64_t *)v);
    break;
  case INT:
    snprintf(buf, n, "%d", *(const int *)v);
    break;
  case F64:
    snprintf(buf, n, "%.17g", *(const double *)v);
    break;
  case STR:
    snprintf(buf, n, "%s", (const char *)v);
    break;
  default:
    snprintf(buf, n, "%s", f->choices[*(const int *)v]);
  }
}

static int parse(fpt_run_desc *d, const field *f, const char *text, const char *where) {
  void *v = at(d, f);
  char *end = NULL;
  switch (f->type) {
  case I64:
    *(int64_t *)v = strtoll(text, &end, 10);
    break;
  case INT:
    *(int *)v = !strcmp(text, "true")    ? 1
                : !strcmp(text, "false") ? 0
                                         : (int)strtol(text, &end, 10);
    if (!end)
      return 0;
    break;
  case F64:
    *(double *)v = strtod(text, &end);
    break;
  case STR:
    snprintf((char *)v, f->size, "%s", text);
    return 0;
  default:
    for (int i = 0; f->choices[i]; i++)
      if (!strcmp(text, f->choices[i])) {
        *(int *)v = i;
        return 0;
      }
    FPT_FAIL("%s: %s = '%s' is not a known value", where, f->key, text);
  }
  FPT_ENSURE(end && end != text && !*end, "%s: %s = '%s' is not a number", where, f->key, text);
  return 0;
}

int fpt_run_desc_write(hid_t file, const fpt_run_desc *d) {
  hid_t g = H5Gcreate2(file, "run", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  FPT_ENSURE(g >= 0, "checkpoint: cannot create the /run group");
  int rc = fpt_model_file_write_config(g, &d->cfg);
  for (int i = 0; i < N_FIELDS && rc == 0; i++) {
    const field *f = &fields[i];
    const void *v = cat(d, f);
    if (f->type == I64)
      rc = fpt_h5_write_attr_i64(g, f->key, *(const int64_t *)v);
    else if (f->type == INT)
      rc = fpt_h5_write_attr_i64(g, f->key, *(const int *)v);
    else if (f->type == F64)
      rc = fpt_h5_write_attr_f64(g, f->key, *(const double *)v);
    else if (f->type == STR)
      rc = fpt_h5_write_attr_str(g, f->key, (const char *)v);
    else
      rc = fpt_h5_write_attr_str(g, f->key, f->choices[*(const int *)v]);
  }
  H5Gclose(g);
  return rc;
}

static int read_group(hid_t g, const char *where, fpt_run_desc *d) {
  FPT_TRY(fpt_model_cfg_read(g, where, &d->cfg));
  for (int i = 0; i < N_FIELDS; i++) {
    const field *f = &fields[i];
    void *v = at(d, f);
    int64_t x;
    if (absent(f) && H5Aexists(g, f->key) <= 0) {
      FPT_TRY(parse(d, f, absent(f), where));
    } else if (f->type == I64 || f->type == INT) {
      FPT_TRY(fpt_h5_read_attr_int(g, where, f->key, &x));
      if (f->type == I64)
        *(int64_t *)v = x;
      else
        *(int *)v = (int)x;
    } else if (f->type == F64) {
      FPT_TRY(fpt_h5_read_attr_f64(g, where, f->key, (double *)v));
    } else {
      char s[4096];
      FPT_TRY(fpt_h5_read_attr_str(g, where, f->key, s, sizeof s));
      FPT_TRY(parse(d, f, s, where));
    }
    d->known |= (uint64_t)1 << i;
  }
  return 0;
}

// Format 1 kept the options as "key: value" text; the backbone's shape comes
// from its file, the task's from the data (task.seq stays 0: unknown).
static int read_v1(hid_t f, const char *path, fpt_run_desc *d) {
  static char text[1 << 16];
  FPT_TRY(fpt_h5_read_attr_str(f, path, "config", text, sizeof text));
  FPT_TRY(
      fpt_h5_read_attr_str(f, path, "model_checksum", d->model_checksum, sizeof d->model_checksum));
  char v[4096], where[4200];
  snprintf(where, sizeof where, "%s: stored configuration", path);
  for (int i = 0; i < N_FIELDS; i++) {
    int is_sum = !strcmp(fields[i].key, "model_checksum");
    if (!is_sum && fpt_opts_dump_value(text, fields[i].key, v, sizeof v) == 0) {
      FPT_TRY(parse(d, &fields[i], v, where));
      d->known |= (uint64_t)1 << i;
    } else if (absent(&fields[i])) {
      FPT_TRY(parse(d, &fields[i], absent(&fields[i]), where));
      d->known |= (uint64_t)1 << i;
    }
    if (is_sum)
      d->known |= (uint64_t)1 << i;
  }
  if (fpt_opts_dump_value(text, "data", v, sizeof v) != 0)
    d->data[0] = '\0'; // null: a generated task
  return fpt_run_desc_read_model(d);
}

int fpt_run_desc_read(const char *path, fpt_run_desc *d) {
  fpt_run_desc_init(d);
  hid_t f;
  FPT_TRY(fpt_h5_open_read(path, &f));
  int rc;
  char where[4200];
  snprintf(where, sizeof where, "%s: /run", path);
  if (fpt_h5_exists(f, "/run")) {
    hid_t g = H5Gopen2(f, "/run", H5P_DEFAULT);
    rc = read_group(g, where, d);
    H5Gclose(g);
  } else {
    rc = read_v1(f, path, d);
  }
  H5Fclose(f);
  return rc;
}

void fpt_run_desc_diff(const fpt_run_desc *was, const fpt_run_desc *now, char *buf, size_t n) {
  size_t k = 0;
  buf[0] = '\0';
  char a[256], b[256];
  if (strcmp(was->cfg.kind, now->cfg.kind) && k < n)
    k += (size_t)snprintf(buf + k, n - k, "%skind %s -> %s", k ? ", " : "", was->cfg.kind,
                          now->cfg.kind);
  for (int i = 0; i < N_FIELDS && k < n; i++) {
    const field *f = &fields[i];
    int cosine = !strcmp(now->lr_schedule, "cosine");
    if ((!f->numbers && !(cosine && !strcmp(f->key, "steps"))) || !(was->known >> i & 1))
      continue;
    format(was, f, a, sizeof a);
    format(now, f, b, sizeof b);
    if (strcmp(a, b))
      k += (size_t)snprintf(buf + k, n - k, "%s%s %s -> %s", k ? ", " : "", f->key, a, b);
  }
}

// ---------------------------------------------------------------- builder

int fpt_run_desc_read_model(fpt_run_desc *d) {
  FPT_ENSURE(d->model[0], "option --model: a backbone model file is required");
  return fpt_model_file_config(d->model, &d->cfg);
}

static int init_backbone(fpt_model *m, const fpt_run_desc *d, const fpt_part *part) {
  if (d->init == FPT_INIT_RANDOM) {
    fpt_init_backbone_random(m, (uint64_t)d->seed);
    return 0;
  }
  FPT_TRY(fpt_model_file_load(d->model, m));
  if (d->init != FPT_INIT_STATS)
    return 0;
  fpt_model like;
  FPT_TRY(fpt_model_create_part(&like, &d->cfg, &d->task, &d->freeze, part, NULL));
  int rc = fpt_model_file_load(d->model, &like);
  if (rc == 0)
    fpt_init_backbone_like(m, &like, (uint64_t)d->seed);
  fpt_model_free(&like);
  return rc;
}

int fpt_model_build(fpt_model *m, const fpt_run_desc *d, const fpt_part *part, float *frozen_ext,
                    int fill_frozen) {
  fpt_part all = {0, d->cfg.n_layer, 1, 1};
  const fpt_part *p = part ? part : &all;
  FPT_TRY(fpt_model_create_part(m, &d->cfg, &d->task, &d->freeze, p, frozen_ext));
  m->frozen_readonly = !fill_frozen;
  m->dropout = (float)d->dropout;
  m->random_state = d->lstm_state == FPT_STATE_RANDOM;
  FPT_ENSURE(d->init == FPT_INIT_RANDOM || d->model[0],
             "model: a pretrained or statistics-matched backbone needs a model file");
  FPT_TRY(init_backbone(m, d, p));
  FPT_TRY(fpt_init_wrapper(m, (uint64_t)d->seed, (float)d->orth_gain));
  if (d->keep_wte && d->init == FPT_INIT_PRETRAINED) {
    int loaded;
    FPT_TRY(fpt_model_file_load_wte(d->model, m, &loaded));
  }
  return frozen_ext ? 0 : fpt_model_set_frozen_dtype(m, d->frozen_dtype);
}
