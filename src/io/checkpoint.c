#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
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
  FPT_TRY(fpt_h5_write_attr_f64(f, "best_val_acc", st->best_val_acc));
  FPT_TRY(fpt_h5_write_attr_i64(f, "best_acc_step", st->best_acc_step));
  FPT_TRY(fpt_h5_write_attr_i64(f, "evals_since_best_acc", st->evals_since_best_acc));
  return fpt_run_desc_write(f, desc);
}

// The most a checkpoint of m takes on disk: every trainable tensor three
// times, each a checksummed chunk (4 bytes more) with its metadata (object
// header, chunk index: at most ~9 KB), and the attributes and groups.
static int64_t checkpoint_bytes(const fpt_model *m) {
  fpt_part all = {0, m->cfg.n_layer, 1, 1};
  fpt_tensor *tab;
  int n;
  int64_t room = 320 << 10;
  if (fpt_model_table(&m->cfg, &m->task, &m->freeze, &all, &tab, &n) != 0)
    return room;
  for (int i = 0; i < n; i++)
    if (tab[i].trainable)
      room += 3 * ((int64_t)tab[i].shape[0] * (tab[i].ndim > 1 ? tab[i].shape[1] : 1) * 4 + 4 +
                   (12 << 10));
  free(tab);
  return room;
}

// Every rank creates every dataset (metadata is collective in parallel HDF5);
// only the owner (replica 0 of the owning stage) selects data to write. Only
// the owner's write can fail (a full disk, an I/O error on its node): the
// ranks agree after each dataset, before the next collective call, so that
// all of them stop at the same one with the owner's message.
static int write_tensors(hid_t f, MPI_Comm world, const fpt_model *m, int writer,
                         const char *path) {
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
      errno = 0;
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
        if (H5Dclose(ds) < 0)
          w = -1;
      }
      int e = errno;
      H5Pclose(dcpl);
      H5Sclose(sp);
      if (w >= 0 && fpt_fault_fail("checkpoint-dataset")) {
        w = -1;
        e = ENOSPC;
      }
      if (w < 0) {
        fpt_error_set("%s: writing %s failed%s", path, name, fpt_io_why(e));
        rc = 1;
      }
      fpt_fault("checkpoint-dataset", written++);
      rc = fpt_io_agree(world, rc);
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

// rank 0: point `latest` at name (through latest.tmp); 0, or 1 with a message.
static int update_latest(const char *dir, const char *name) {
  char lt[4300], ltmp[4400];
  snprintf(lt, sizeof lt, "%s/latest", dir);
  snprintf(ltmp, sizeof ltmp, "%s/latest.tmp", dir);
  errno = 0;
  FILE *lf = fopen(ltmp, "w");
  int ok = lf && fprintf(lf, "%s\n", name) > 0 && fflush(lf) == 0 && fsync(fileno(lf)) == 0;
  int e = errno;
  if (lf && fclose(lf) != 0 && ok) {
    ok = 0;
    e = errno;
  }
  if (ok && fpt_fault_fail("checkpoint-latest")) {
    ok = 0;
    e = ENOSPC;
  }
  if (ok && rename(ltmp, lt) != 0) {
    ok = 0;
    e = errno;
  }
  if (!ok) {
    unlink(ltmp);
    FPT_FAIL("%s: cannot record %s in it%s", lt, name, fpt_io_why(e));
  }
  return 0;
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
  errno = 0;
  if (rank == 0 && mkdir(dir, 0777) != 0 && errno != EEXIST) {
    fpt_error_set("%s: cannot create directory%s", dir, fpt_io_why(errno));
    rc = 1;
  }
  FPT_TRY(fpt_io_agree(world, rc));
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fapl_mpio(fapl, world, MPI_INFO_NULL);
  errno = 0;
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  int e = errno;
  H5Pclose(fapl);
  if (f < 0)
    fpt_error_set("%s: cannot create the checkpoint file%s", tmp, fpt_io_why(e));
  if (fpt_io_agree(world, f < 0) != 0) {
    // Every rank opens the file in one collective call: it fails on all of them.
    if (rank == 0)
      unlink(tmp);
    return 1;
  }
  fpt_fault("checkpoint-created", 0);
  // The disk space the file can take is reserved before HDF5 writes any of
  // it (fpt/io.h): a full disk then shows here, cleanly, on every rank, and
  // not inside a collective HDF5 call, where it would leave ranks waiting.
  rc = fpt_h5_reserve(tmp, path, world, checkpoint_bytes(m), "checkpoint-reserve");
  if (rc == 0) {
    // Attributes are metadata, the same on every rank: they fail everywhere or nowhere.
    rc = write_attrs(f, st, desc);
    if (rc == 0 && fpt_fault_fail("checkpoint-attrs")) {
      fpt_error_set("%s: writing the attributes failed%s", path, fpt_io_why(ENOSPC));
      rc = 1;
    }
    rc = fpt_io_agree(world, rc);
  }
  if (rc == 0)
    rc = write_tensors(f, world, m, writer, path);
  fpt_fault("checkpoint-before-close", 0);
  if (rc != 0) {
    fpt_h5_discard(f, tmp, world);
    return 1;
  }
  if (fpt_h5_close(f, tmp, path, world, "checkpoint-close") != 0) {
    if (rank == 0)
      unlink(tmp);
    return 1;
  }
  if (rank == 0) {
    fpt_fault("checkpoint-before-rename", 0);
    errno = 0;
    if (fpt_fault_fail("checkpoint-rename") || rename(tmp, path) != 0) {
      fpt_error_set("%s: cannot rename the checkpoint into place%s", path, fpt_io_why(errno));
      unlink(tmp);
      rc = 1;
    }
    fsync_path(dir);
    fpt_fault("checkpoint-before-latest", 0);
    if (rc == 0 && update_latest(dir, name) != 0) {
      // Not recorded, so not kept: `latest` still names the previous one
      // (unless that has this name: fpt probe rewrites step 0).
      char was[4400] = "";
      if (fpt_checkpoint_latest(run_dir, was, sizeof was) != 0 || strcmp(was, path) != 0)
        unlink(path);
      rc = 1;
    }
    fsync_path(dir);
    if (rc == 0 && keep > 0)
      prune(dir, keep, name);
  }
  return fpt_io_agree(world, rc);
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
  st->best_val_acc = -INFINITY; // absent before the accuracy was tracked
  if (rc == 0 && H5Aexists(f, "best_val_acc") > 0) {
    rc = fpt_h5_read_attr_f64(f, path, "best_val_acc", &st->best_val_acc);
    if (rc == 0)
      rc = fpt_h5_read_attr_i64(f, path, "best_acc_step", &st->best_acc_step);
    if (rc == 0)
      rc = fpt_h5_read_attr_i64(f, path, "evals_since_best_acc", &st->evals_since_best_acc);
  }
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
      if (rc == 0)
        rc = fpt_check_finite(path, name, kind_data(m, t, k), t->numel);
    }
  }
  H5Fclose(f);
  // A model built without gradients (eval, attention) packs its trainable
  // matrices too: pack them again from the values just read.
  if (rc == 0 && m->n_bf16 > 0)
    rc = fpt_model_set_frozen_dtype(m, m->frozen_dtype);
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
    if (rc == 0)
      rc = fpt_check_finite(path, name, t->data, t->numel);
    *loaded += rc == 0;
  }
  H5Fclose(f);
  return rc;
}
