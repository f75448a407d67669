#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fpt/check.h"
#include "fpt/checkpoint.h"
#include "fpt/io.h"

int fpt_file_checksum(const char *path, char hex[17]) {
  FILE *f = fopen(path, "rb");
  FPT_ENSURE(f, "%s: cannot open file for reading", path);
  uint64_t h = 0xcbf29ce484222325ull;
  unsigned char buf[1 << 16];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    for (size_t i = 0; i < n; i++)
      h = (h ^ buf[i]) * 0x100000001b3ull;
  int err = ferror(f);
  fclose(f);
  FPT_ENSURE(!err, "%s: read error", path);
  snprintf(hex, 17, "%016llx", (unsigned long long)h);
  return 0;
}

static const char *const kinds[3] = {"params", "adam_m", "adam_v"};

static float *kind_data(const fpt_model *m, const fpt_tensor *t, int k) {
  if (k == 0)
    return t->data;
  size_t off = (size_t)(t->data - m->train_mem);
  return (k == 1 ? m->adam_m : m->adam_v) + off;
}

static int write_attrs(hid_t f, const fpt_ckpt_state *st, const fpt_run_desc *desc) {
  const char *in[] = {"format_version", "step",       "adam_t",
                      "seed",           "batch_size", "sample_offset",
                      "window_steps",   "best_step",  "evals_since_best"};
  int64_t iv[] = {FPT_CKPT_FORMAT_VERSION, st->step,          st->adam_t,       st->seed,
                  st->batch_size,          st->sample_offset, st->window_steps, st->best_step,
                  st->evals_since_best};
  for (size_t i = 0; i < sizeof iv / sizeof *iv; i++)
    FPT_TRY(fpt_h5_write_attr_i64(f, in[i], iv[i]));
  for (int i = 0; i < 7; i++) {
    char nm[16];
    snprintf(nm, sizeof nm, "window_%d", i);
    FPT_TRY(fpt_h5_write_attr_f64(f, nm, st->window[i]));
  }
  FPT_TRY(fpt_h5_write_attr_f64(f, "best_val", st->best_val));
  return fpt_run_desc_write(f, desc);
}

// Every rank creates every dataset (metadata is collective in parallel HDF5);
// only the owner (replica 0 of the owning stage) selects data to write.
static int write_tensors(hid_t f, const fpt_model *m, int writer, const char *path) {
  fpt_part all = {0, m->cfg.n_layer, 1, 1};
  fpt_tensor *tab;
  int n;
  FPT_TRY(fpt_model_table(&m->cfg, &m->task, &m->freeze, &all, &tab, &n));
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t xfer = H5Pcreate(H5P_DATASET_XFER);
  H5Pset_dxpl_mpio(xfer, H5FD_MPIO_COLLECTIVE);
  int rc = 0;
  long long written = 0; // datasets of this checkpoint, for fault injection
  for (int i = 0; i < n && rc == 0; i++) {
    if (!tab[i].trainable)
      continue;
    const fpt_tensor *mine = writer ? fpt_model_find((fpt_model *)m, tab[i].name) : NULL;
    hsize_t d[2] = {(hsize_t)tab[i].shape[0], (hsize_t)tab[i].shape[1]};
    for (int k = 0; k < 3 && rc == 0; k++) {
      char name[96];
      snprintf(name, sizeof name, "/%s/%s", kinds[k], tab[i].name);
      hid_t sp = H5Screate_simple(tab[i].ndim, d, NULL);
      hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
      H5Pset_chunk(dcpl, tab[i].ndim, d); // one chunk per tensor; Fletcher32 needs chunks
      H5Pset_fletcher32(dcpl);
      hid_t ds = H5Dcreate2(f, name, H5T_IEEE_F32LE, sp, lcpl, dcpl, H5P_DEFAULT);
      herr_t w = -1;
      if (ds >= 0) {
        hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(tab[i].ndim, d, NULL);
        if (!mine) {
          H5Sselect_none(fs);
          H5Sselect_none(ms);
        }
        w = H5Dwrite(ds, H5T_NATIVE_FLOAT, ms, fs, xfer, mine ? kind_data(m, mine, k) : NULL);
        H5Sclose(fs);
        H5Sclose(ms);
        H5Dclose(ds);
      }
      H5Pclose(dcpl);
      H5Sclose(sp);
      if (w < 0) {
        fpt_error_set("%s: writing %s failed", path, name);
        rc = 1;
      }
      fpt_fault("checkpoint-dataset", written++);
    }
  }
  H5Pclose(xfer);
  H5Pclose(lcpl);
  free(tab);
  return rc;
}

static void fsync_path(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

// Keep the newest `keep` complete checkpoints (names sort by step).
static void prune(const char *dir, int keep, const char *newest) {
  DIR *d = opendir(dir);
  if (!d)
    return;
  char names[4096][32];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < 4096) {
    size_t L = strlen(e->d_name);
    if (!strncmp(e->d_name, "ckpt-", 5) && L > 3 && L < 32 && !strcmp(e->d_name + L - 3, ".h5"))
      snprintf(names[n++], 32, "%.31s", e->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n, 32, (int (*)(const void *, const void *))strcmp);
  for (int i = 0; i + keep < n; i++) {
    if (!strcmp(names[i], newest))
      continue;
    char p[4200];
    snprintf(p, sizeof p, "%.4000s/%.31s", dir, names[i]);
    unlink(p);
  }
}

int fpt_checkpoint_write(const char *run_dir, MPI_Comm world, const fpt_model *m, int writer,
                         const fpt_ckpt_state *st, const fpt_run_desc *desc, int keep) {
  int rank;
  MPI_Comm_rank(world, &rank);
  char dir[4200], name[32], path[4300], tmp[4400];
  snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
  snprintf(name, sizeof name, "ckpt-%09lld.h5", (long long)st->step);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int rc = 0;
  if (rank == 0 && mkdir(dir, 0777) != 0 && errno != EEXIST) {
    fpt_error_set("%s: cannot create directory", dir);
    rc = 1;
  }
  MPI_Allreduce(MPI_IN_PLACE, &rc, 1, MPI_INT, MPI_MAX, world);
  FPT_ENSURE(rc == 0, "%s: cannot create directory", dir);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fapl_mpio(fapl, world, MPI_INFO_NULL);
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  FPT_ENSURE(f >= 0, "%s: cannot create checkpoint file", tmp);
  fpt_fault("checkpoint-created", 0);
  rc = write_attrs(f, st, desc);
  if (rc == 0)
    rc = write_tensors(f, m, writer, tmp);
  fpt_fault("checkpoint-before-close", 0);
  if (H5Fclose(f) < 0 && rc == 0) {
    fpt_error_set("%s: closing the checkpoint failed", tmp);
    rc = 1;
  }
  MPI_Allreduce(MPI_IN_PLACE, &rc, 1, MPI_INT, MPI_MAX, world);
  if (rc != 0) {
    if (rank == 0)
      unlink(tmp);
    return 1;
  }
  if (rank == 0) {
    fsync_path(tmp);
    fpt_fault("checkpoint-before-rename", 0);
    if (rename(tmp, path) != 0) {
      fpt_error_set("%s: cannot rename the checkpoint into place", path);
      rc = 1;
    }
    fsync_path(dir);
    fpt_fault("checkpoint-before-latest", 0);
    char lt[4300], ltmp[4400];
    snprintf(lt, sizeof lt, "%s/latest", dir);
    snprintf(ltmp, sizeof ltmp, "%s/latest.tmp", dir);
    FILE *lf = rc == 0 ? fopen(ltmp, "w") : NULL;
    if (rc == 0 &&
        (!lf || fprintf(lf, "%s\n", name) < 0 || fflush(lf) != 0 || fsync(fileno(lf)) != 0)) {
      fpt_error_set("%s: cannot write", ltmp);
      rc = 1;
    }
    if (lf)
      fclose(lf);
    if (rc == 0 && rename(ltmp, lt) != 0) {
      fpt_error_set("%s: cannot update", lt);
      rc = 1;
    }
    fsync_path(dir);
    if (rc == 0 && keep > 0)
      prune(dir, keep, name);
  }
  MPI_Allreduce(MPI_IN_PLACE, &rc, 1, MPI_INT, MPI_MAX, world);
  FPT_ENSURE(rc == 0, "%s: checkpoint could not be committed", path);
  return 0;
}

int fpt_checkpoint_latest(const char *run_dir, char *path, size_t n) {
  char lt[4300];
  snprintf(lt, sizeof lt, "%s/checkpoints/latest", run_dir);
  FILE *f = fopen(lt, "r");
  if (!f)
    return 1;
  char name[64] = "";
  int ok = fscanf(f, "%63s", name) == 1;
  fclose(f);
  FPT_ENSURE(ok && !strncmp(name, "ckpt-", 5), "%s: not a checkpoint tracker", lt);
  snprintf(path, n, "%s/checkpoints/%s", run_dir, name);
  return 0;
}

int fpt_checkpoint_read_state(const char *path, const fpt_model *m, fpt_ckpt_state *st) {
  memset(st, 0, sizeof *st);
  hid_t f;
  FPT_TRY(fpt_h5_open_read(path, &f));
  int64_t v[9];
  const char *in[] = {"format_version", "step",       "adam_t",
                      "seed",           "batch_size", "sample_offset",
                      "window_steps",   "best_step",  "evals_since_best"};
  int rc = 0;
  for (int i = 0; i < 9 && rc == 0; i++)
    rc = fpt_h5_read_attr_i64(f, path, in[i], &v[i]);
  for (int i = 0; i < 7 && rc == 0; i++) {
    char nm[16];
    snprintf(nm, sizeof nm, "window_%d", i);
    rc = fpt_h5_read_attr_f64(f, path, nm, &st->window[i]);
  }
  if (rc == 0)
    rc = fpt_h5_read_attr_f64(f, path, "best_val", &st->best_val);
  // The task shapes must match: the output layer and input layer are in here.
  int nd = 2;
  int64_t d[4];
  if (rc == 0 && fpt_model_find((fpt_model *)m, "out/weight") &&
      (rc = fpt_h5_shape(f, path, "/params/out/weight", &nd, d)) == 0 &&
      (nd != 2 || d[0] != m->cfg.n_embd || d[1] != m->task.n_out)) {
    fpt_error_set("%s: /params/out/weight is [%lld, %lld] but the task needs [%d, %d]", path,
                  (long long)d[0], (long long)(nd > 1 ? d[1] : 0), m->cfg.n_embd, m->task.n_out);
    rc = 1;
  }
  nd = 2;
  const fpt_tensor *tin = fpt_model_find((fpt_model *)m, "in/weight");
  if (rc == 0 && tin && tin->trainable &&
      (rc = fpt_h5_shape(f, path, "/params/in/weight", &nd, d)) == 0 &&
      (nd != 2 || d[0] != tin->shape[0])) {
    fpt_error_set("%s: /params/in/weight has %lld rows but the data has %d-wide tokens", path,
                  (long long)d[0], tin->shape[0]);
    rc = 1;
  }
  H5Fclose(f);
  FPT_TRY(rc);
  FPT_ENSURE(v[0] == 1 || v[0] == FPT_CKPT_FORMAT_VERSION,
             "%s: format_version %lld is not supported", path, (long long)v[0]);
  st->step = v[1];
  st->adam_t = v[2];
  st->seed = v[3];
  st->batch_size = v[4];
  st->sample_offset = v[5];
  st->window_steps = v[6];
  st->best_step = v[7];
  st->evals_since_best = v[8];
  return 0;
}

int fpt_checkpoint_load(const char *path, fpt_model *m) {
  hid_t f;
  FPT_TRY(fpt_h5_open_read(path, &f));
  int rc = 0;
  for (int i = 0; i < m->n_tensors && rc == 0; i++) {
    fpt_tensor *t = &m->tensors[i];
    if (!t->trainable)
      continue;
    for (int k = 0; k < 3 && rc == 0; k++) {
      char name[96];
      snprintf(name, sizeof name, "/%s/%s", kinds[k], t->name);
      int64_t dims[2] = {t->shape[0], t->shape[1]};
      // Fletcher32 makes a corrupted chunk fail this read.
      rc = fpt_h5_read_floats(f, path, name, t->ndim, dims, kind_data(m, t, k));
    }
  }
  H5Fclose(f);
  return rc;
}

static int name_in(const char *name, const char *const *list, int prefix) {
  for (; *list; list++)
    if (prefix ? !strncmp(name, *list, strlen(*list)) : !strcmp(name, *list))
      return 1;
  return 0;
}

int fpt_checkpoint_load_params(const char *path, fpt_model *m, const char *const *prefixes,
                               const char *const *need, int *loaded) {
  *loaded = 0;
  hid_t f;
  FPT_TRY(fpt_h5_open_read(path, &f));
  int rc = 0;
  for (int i = 0; i < m->n_tensors && rc == 0; i++) {
    fpt_tensor *t = &m->tensors[i];
    if (prefixes && !name_in(t->name, prefixes, 1))
      continue;
    char name[96];
    snprintf(name, sizeof name, "/params/%s", t->name);
    if (!fpt_h5_exists(f, name)) {
      if (need && name_in(t->name, need, 0)) {
        fpt_error_set("%s: dataset %s is missing", path, name);
        rc = 1;
      }
      continue;
    }
    if (!t->trainable && m->frozen_readonly)
      continue;
    int64_t dims[2] = {t->shape[0], t->shape[1]};
    rc = fpt_h5_read_floats(f, path, name, t->ndim, dims, t->data);
    *loaded += rc == 0;
  }
  H5Fclose(f);
  return rc;
}
