// The probe's feature cache (layout in fpt/features.h): parallel HDF5, every
// rank writing or reading its own rows with one strided hyperslab selection.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fpt/check.h"
#include "fpt/dataset.h"
#include "fpt/features.h"
#include "fpt/io.h"

typedef struct {
  hsize_t start, stride, count, block;
} stripe_part;

// A stripes pattern as at most two regular hyperslabs: the whole blocks, and
// a last block cut short by the end.
static int stripe_parts(const fpt_stripes *s, stripe_part p[2]) {
  int n = 0;
  if (s->block <= 0 || s->first < 0 || s->first >= s->total)
    return 0;
  int64_t full =
      s->first + s->block > s->total ? 0 : (s->total - s->first - s->block) / s->stride + 1;
  if (full > 0)
    p[n++] = (stripe_part){(hsize_t)s->first, (hsize_t)s->stride, (hsize_t)full, (hsize_t)s->block};
  int64_t t = s->first + full * s->stride;
  if (t < s->total)
    p[n++] = (stripe_part){(hsize_t)t, 1, 1, (hsize_t)(s->total - t)};
  return n;
}

int64_t fpt_stripes_count(const fpt_stripes *s) {
  stripe_part p[2];
  int n = stripe_parts(s, p);
  int64_t c = 0;
  for (int i = 0; i < n; i++)
    c += (int64_t)(p[i].count * p[i].block);
  return c;
}

fpt_stripes fpt_stripes_range(int64_t first, int64_t n, int64_t total) {
  fpt_stripes s = {first, total > 0 ? total : 1, n, total};
  return s;
}

// Select rows x cols of a 2-D file space; returns the element count.
static hsize_t select_2d(hid_t space, const fpt_stripes *rows, const fpt_stripes *cols) {
  stripe_part pr[2], pc[2];
  int nr = stripe_parts(rows, pr), nc = stripe_parts(cols, pc);
  H5Sselect_none(space);
  hsize_t total = 0;
  for (int i = 0; i < nr; i++)
    for (int j = 0; j < nc; j++) {
      hsize_t start[2] = {pr[i].start, pc[j].start}, stride[2] = {pr[i].stride, pc[j].stride};
      hsize_t count[2] = {pr[i].count, pc[j].count}, block[2] = {pr[i].block, pc[j].block};
      H5Sselect_hyperslab(space, H5S_SELECT_OR, start, stride, count, block);
      total += count[0] * block[0] * count[1] * block[1];
    }
  return total;
}

// One collective transfer of a strided selection of a 2-D dataset. The ranks
// agree before it (a rank whose dataset does not fit must not leave the
// others waiting in it) and after it (a write can fail on one rank only: a
// full disk, an I/O error on its node), so all of them return the same result
// with the first failing rank's message.
static int transfer(fpt_features_file *f, const char *name, hid_t mtype, const fpt_stripes *rows,
                    const fpt_stripes *cols, void *buf, int write) {
  hid_t ds = H5Dopen2(f->file, name, H5P_DEFAULT);
  int rc = 0;
  if (ds < 0) {
    fpt_error_set("%s: dataset %s is missing", f->path, name);
    rc = 1;
  }
  hid_t fs = ds >= 0 ? H5Dget_space(ds) : -1;
  hsize_t dims[2] = {0, 0};
  int nd = fs >= 0 ? H5Sget_simple_extent_dims(fs, dims, NULL) : -1;
  if (rc == 0 && (nd != 2 || (int64_t)dims[0] != rows->total || (int64_t)dims[1] != cols->total)) {
    fpt_error_set("%s: %s is [%llu, %llu], expected [%lld, %lld]", f->path, name,
                  (unsigned long long)dims[0], (unsigned long long)dims[1], (long long)rows->total,
                  (long long)cols->total);
    rc = 1;
  }
  if (fpt_io_agree(f->comm, rc) != 0) {
    if (fs >= 0)
      H5Sclose(fs);
    if (ds >= 0)
      H5Dclose(ds);
    return 1;
  }
  hsize_t n = select_2d(fs, rows, cols);
  hid_t ms = H5Screate_simple(1, &n, NULL);
  if (n == 0)
    H5Sselect_none(ms);
  hid_t xfer = H5Pcreate(H5P_DATASET_XFER);
  H5Pset_dxpl_mpio(xfer, H5FD_MPIO_COLLECTIVE);
  char dummy[8];
  void *p = n > 0 ? buf : dummy;
  errno = 0;
  herr_t h = write ? H5Dwrite(ds, mtype, ms, fs, xfer, p) : H5Dread(ds, mtype, ms, fs, xfer, p);
  int e = errno;
  H5Pclose(xfer);
  H5Sclose(ms);
  H5Sclose(fs);
  if (H5Dclose(ds) < 0)
    h = -1;
  if (h >= 0 && write && fpt_fault_fail("features-write")) {
    h = -1;
    e = ENOSPC;
  }
  if (h < 0) {
    fpt_error_set("%s: %s %s failed%s", f->path, write ? "writing" : "reading", name,
                  fpt_io_why(e));
    rc = 1;
  }
  return fpt_io_agree(f->comm, rc);
}

static const char *const str_keys[] = {"model_checksum", "data_checksum", "task", "tokens", "init"};
static const char *const int_keys[] = {"seed", "n_embd", "r", "K", "n_out", "n_classes"};

static char *str_field(fpt_features_meta *m, int i) {
  char *f[] = {m->model_checksum, m->data_checksum, m->task, m->tokens, m->init};
  return f[i];
}
static size_t str_size(int i) {
  const fpt_features_meta *m = NULL;
  size_t s[] = {sizeof m->model_checksum, sizeof m->data_checksum, sizeof m->task, sizeof m->tokens,
                sizeof m->init};
  return s[i];
}
static int64_t *int_field(fpt_features_meta *m, int i) {
  int64_t *f[] = {&m->seed, &m->n_embd, &m->r, &m->K, &m->n_out, &m->n_cls};
  return f[i];
}

static int read_meta(hid_t file, const char *path, fpt_features_meta *m) {
  memset(m, 0, sizeof *m);
  int64_t v;
  FPT_TRY(fpt_h5_read_attr_i64(file, path, "format_version", &v));
  FPT_ENSURE(v == FPT_FEATURES_FORMAT_VERSION, "%s: format_version %lld is not supported", path,
             (long long)v);
  for (int i = 0; i < 5; i++)
    FPT_TRY(fpt_h5_read_attr_str(file, path, str_keys[i], str_field(m, i), str_size(i)));
  FPT_TRY(fpt_h5_read_attr_str(file, path, "data_path", m->data_path, sizeof m->data_path));
  for (int i = 0; i < 6; i++)
    FPT_TRY(fpt_h5_read_attr_i64(file, path, int_keys[i], int_field(m, i)));
  FPT_TRY(fpt_h5_read_attr_f64(file, path, "orth_gain", &m->orth_gain));
  for (int s = 0; s < 3; s++) {
    char name[32];
    int nd = 2;
    int64_t d[4];
    snprintf(name, sizeof name, "/%s/y", fpt_split_names[s]);
    FPT_TRY(fpt_h5_shape(file, path, name, &nd, d));
    m->n[s] = d[0];
    snprintf(name, sizeof name, "/%s/features", fpt_split_names[s]);
    FPT_TRY(fpt_h5_shape(file, path, name, &nd, d));
    FPT_ENSURE(nd == 2 && d[0] == m->n[s] * m->r && d[1] == m->n_embd,
               "%s: %s does not match n_embd and r", path, name);
  }
  return 0;
}

void fpt_features_check(const char *path, const fpt_features_meta *want, int *usable, char *why,
                        size_t n) {
  *usable = 0;
  if (access(path, F_OK) != 0) {
    snprintf(why, n, "no cache at %s", path);
    return;
  }
  hid_t file;
  fpt_features_meta have;
  int rc = fpt_h5_open_read(path, &file);
  if (rc == 0) {
    rc = read_meta(file, path, &have);
    H5Fclose(file);
  }
  if (rc != 0) {
    snprintf(why, n, "%s", fpt_error_get());
    fpt_error_clear();
    return;
  }
  fpt_features_meta w = *want;
  for (int i = 0; i < 5; i++)
    if (strcmp(str_field(&have, i), str_field(&w, i))) {
      snprintf(why, n, "%s differs (cache %s, now %s)", str_keys[i], str_field(&have, i),
               str_field(&w, i));
      return;
    }
  for (int i = 0; i < 6; i++)
    if (*int_field(&have, i) != *int_field(&w, i)) {
      snprintf(why, n, "%s differs (cache %lld, now %lld)", int_keys[i],
               (long long)*int_field(&have, i), (long long)*int_field(&w, i));
      return;
    }
  if (have.orth_gain != w.orth_gain) {
    snprintf(why, n, "orth_gain differs (cache %g, now %g)", have.orth_gain, w.orth_gain);
    return;
  }
  for (int s = 0; s < 3; s++)
    if (have.n[s] != w.n[s]) {
      snprintf(why, n, "/%s has %lld samples, the data %lld", fpt_split_names[s],
               (long long)have.n[s], (long long)w.n[s]);
      return;
    }
  *usable = 1;
  snprintf(why, n, "matches");
}

static hid_t open_mpio(const char *path, MPI_Comm comm, int create) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
  hid_t f = create ? H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)
                   : H5Fopen(path, H5F_ACC_RDONLY, fapl);
  H5Pclose(fapl);
  return f;
}

static int create_2d(hid_t file, const char *name, hid_t type, int64_t d0, int64_t d1) {
  hsize_t d[2] = {(hsize_t)d0, (hsize_t)d1};
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t sp = H5Screate_simple(2, d, NULL);
  hid_t ds = H5Dcreate2(file, name, type, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  H5Sclose(sp);
  H5Pclose(lcpl);
  if (ds < 0)
    return 1;
  H5Dclose(ds);
  return 0;
}

int fpt_features_create(fpt_features_file *f, const char *path, const fpt_features_meta *meta,
                        MPI_Comm comm) {
  memset(f, 0, sizeof *f);
  snprintf(f->path, sizeof f->path, "%s", path);
  snprintf(f->tmp, sizeof f->tmp, "%s.tmp", path);
  f->comm = comm;
  f->writing = 1;
  int rank;
  MPI_Comm_rank(comm, &rank);
  errno = 0;
  f->file = open_mpio(f->tmp, comm, 1);
  int e = errno;
  if (f->file < 0)
    fpt_error_set("%s: cannot create the feature cache%s", f->tmp, fpt_io_why(e));
  if (fpt_io_agree(comm, f->file < 0) != 0) {
    // One collective open: it failed on every rank.
    if (rank == 0)
      unlink(f->tmp);
    f->file = -1;
    return 1;
  }
  // Attributes and empty datasets: metadata, the same on every rank. The
  // datasets' space is allocated now (contiguous, at creation): room first,
  // so that no later write can fail for space on one rank alone.
  fpt_features_meta m = *meta;
  int64_t room = 320 << 10; // the attributes, the groups, the datasets' object headers
  for (int s = 0; s < 3; s++)
    room += 4 * (m.n[s] * m.r * m.n_embd + m.n[s] * m.K);
  if (fpt_h5_reserve(f->tmp, f->path, comm, room, "features-reserve") != 0) {
    fpt_h5_discard(f->file, f->tmp, comm);
    f->file = -1;
    return 1;
  }
  int rc = fpt_h5_write_attr_i64(f->file, "format_version", FPT_FEATURES_FORMAT_VERSION);
  for (int i = 0; i < 5 && rc == 0; i++)
    rc = fpt_h5_write_attr_str(f->file, str_keys[i], str_field(&m, i));
  if (rc == 0)
    rc = fpt_h5_write_attr_str(f->file, "data_path", m.data_path);
  for (int i = 0; i < 6 && rc == 0; i++)
    rc = fpt_h5_write_attr_i64(f->file, int_keys[i], *int_field(&m, i));
  if (rc == 0)
    rc = fpt_h5_write_attr_f64(f->file, "orth_gain", m.orth_gain);
  for (int s = 0; s < 3 && rc == 0; s++) {
    char name[32];
    snprintf(name, sizeof name, "/%s/features", fpt_split_names[s]);
    rc = create_2d(f->file, name, H5T_IEEE_F32LE, m.n[s] * m.r, m.n_embd);
    snprintf(name, sizeof name, "/%s/y", fpt_split_names[s]);
    if (rc == 0)
      rc = create_2d(f->file, name, H5T_STD_I32LE, m.n[s], m.K);
    if (rc != 0)
      fpt_error_set("%s: cannot create %s in the feature cache", f->path, name);
  }
  if (rc == 0 && fpt_fault_fail("features-attrs")) {
    fpt_error_set("%s: writing the attributes failed%s", f->path, fpt_io_why(ENOSPC));
    rc = 1;
  }
  if (fpt_io_agree(comm, rc) != 0) {
    fpt_h5_discard(f->file, f->tmp, comm);
    f->file = -1;
    return 1;
  }
  return 0;
}

int fpt_features_write(fpt_features_file *f, int split, const fpt_stripes *rows, const float *feat,
                       const fpt_stripes *samples, const int32_t *y) {
  char name[32];
  hid_t ds;
  hsize_t d[2] = {0, 0};
  snprintf(name, sizeof name, "/%s/features", fpt_split_names[split]);
  ds = H5Dopen2(f->file, name, H5P_DEFAULT);
  if (ds >= 0) {
    hid_t sp = H5Dget_space(ds);
    H5Sget_simple_extent_dims(sp, d, NULL);
    H5Sclose(sp);
    H5Dclose(ds);
  }
  fpt_stripes cols = fpt_stripes_range(0, (int64_t)d[1], (int64_t)d[1]);
  FPT_TRY(transfer(f, name, H5T_NATIVE_FLOAT, rows, &cols, (void *)feat, 1));
  snprintf(name, sizeof name, "/%s/y", fpt_split_names[split]);
  d[0] = d[1] = 0;
  ds = H5Dopen2(f->file, name, H5P_DEFAULT);
  if (ds >= 0) {
    hid_t sp = H5Dget_space(ds);
    H5Sget_simple_extent_dims(sp, d, NULL);
    H5Sclose(sp);
    H5Dclose(ds);
  }
  cols = fpt_stripes_range(0, (int64_t)d[1], (int64_t)d[1]);
  return transfer(f, name, H5T_NATIVE_INT32, samples, &cols, (void *)y, 1);
}

int fpt_features_commit(fpt_features_file *f) {
  int rank;
  MPI_Comm_rank(f->comm, &rank);
  // Its space was reserved at creation: the close cannot fail for space.
  int rc = fpt_h5_close(f->file, f->tmp, f->path, f->comm, "features-close");
  f->file = -1;
  if (rc == 0 && rank == 0) {
    errno = 0;
    if (fpt_fault_fail("features-rename") || rename(f->tmp, f->path) != 0) {
      fpt_error_set("%s: cannot rename the cache into place%s", f->path, fpt_io_why(errno));
      rc = 1;
    }
  }
  if (rc != 0 && rank == 0)
    unlink(f->tmp);
  return fpt_io_agree(f->comm, rc);
}

void fpt_features_abort(fpt_features_file *f) {
  fpt_h5_discard(f->file, f->tmp, f->comm);
  f->file = -1;
}

int fpt_features_open(fpt_features_file *f, const char *path, fpt_features_meta *meta,
                      MPI_Comm comm) {
  memset(f, 0, sizeof *f);
  snprintf(f->path, sizeof f->path, "%s", path);
  f->comm = comm;
  FPT_TRY(fpt_h5_check_readable(path));
  f->file = open_mpio(path, comm, 0);
  FPT_ENSURE(f->file >= 0, "%s: HDF5 open failed (truncated or corrupt file?)", path);
  return read_meta(f->file, path, meta);
}

int fpt_features_read(fpt_features_file *f, int split, const fpt_stripes *rows,
                      const fpt_stripes *cols, float *out) {
  char name[32];
  snprintf(name, sizeof name, "/%s/features", fpt_split_names[split]);
  return transfer(f, name, H5T_NATIVE_FLOAT, rows, cols, out, 0);
}

int fpt_features_read_labels(fpt_features_file *f, int split, const fpt_stripes *samples, int K,
                             int32_t *y) {
  char name[32];
  snprintf(name, sizeof name, "/%s/y", fpt_split_names[split]);
  fpt_stripes cols = fpt_stripes_range(0, K, K);
  return transfer(f, name, H5T_NATIVE_INT32, samples, &cols, y, 0);
}

void fpt_features_close(fpt_features_file *f) {
  if (f->file > 0)
    H5Fclose(f->file);
  f->file = -1;
}
