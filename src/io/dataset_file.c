#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fpt/check.h"
#include "fpt/dataset_file.h"
#include "fpt/io.h"

// ---- writer ----

// Samples are rows, each one contiguous in the file. The default layout is
// contiguous: HDF5 1.10 maps an irregular selection (a shuffled batch) onto
// chunks element by element, which made chunked reads 25-90x slower here
// (docs/DATA.md). chunk > 0 chunks along the sample axis only, chunk samples each.
static int write_array(hid_t g, const char *name, hid_t ftype, hid_t mtype, int ndim,
                       const int64_t *dims, const void *data, const char *path, int64_t chunk) {
  hsize_t d[3], c[3];
  size_t row = H5Tget_size(mtype);
  for (int i = 0; i < ndim; i++) {
    d[i] = (hsize_t)dims[i];
    c[i] = d[i] > 0 ? d[i] : 1;
    if (i > 0)
      row *= (size_t)d[i];
  }
  (void)row;
  c[0] = (hsize_t)chunk;
  if (d[0] > 0 && c[0] > d[0])
    c[0] = d[0];
  hid_t sp = H5Screate_simple(ndim, d, NULL);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  // No clock in the file: made again (a new machine's data job), it has the
  // same bytes, so its checksum still matches the runs' checkpoints.
  H5Pset_obj_track_times(dcpl, 0);
  if (chunk > 0 && d[0] > 0)
    H5Pset_chunk(dcpl, ndim, c);
  errno = 0;
  hid_t ds = H5Dcreate2(g, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  herr_t rc = ds < 0 ? -1 : 0;
  if (rc == 0 && d[0] > 0)
    rc = H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  if (ds >= 0 && H5Dclose(ds) < 0) // a contiguous array's last bytes are written here
    rc = -1;
  int e = errno;
  H5Pclose(dcpl);
  H5Sclose(sp);
  if (rc >= 0 && fpt_fault_fail("dataset-array")) {
    rc = -1;
    e = ENOSPC;
  }
  if (rc < 0) {
    char g_name[64] = "";
    H5Iget_name(g, g_name, sizeof g_name);
    FPT_FAIL("%s: writing dataset %s/%s failed%s", path, g_name, name, fpt_io_why(e));
  }
  return 0;
}

static int write_all(hid_t f, const fpt_dataset *d, const char *path, int64_t chunk) {
  FPT_TRY(fpt_h5_write_attr_str(f, "task", d->task));
  FPT_TRY(fpt_h5_write_attr_i64(f, "format_version", FPT_DATASET_FORMAT_VERSION));
  const char *names[] = {"seq",       "d_in", "vocab", "seq2",   "vocab2",
                         "n_classes", "K",    "r",     "pad_id", "seed"};
  int64_t vals[] = {d->seq,       d->d_in, d->vocab, d->seq2,   d->vocab2,
                    d->n_classes, d->K,    d->r,     d->pad_id, d->seed};
  for (int i = 0; i < 10; i++)
    FPT_TRY(fpt_h5_write_attr_i64(f, names[i], vals[i]));
  FPT_TRY(fpt_h5_write_attr_str(f, "sources", d->sources));
  FPT_TRY(fpt_h5_write_attr_str(f, "generator", d->generator));
  for (int s = 0; s < 3; s++) {
    const fpt_split *p = &d->split[s];
    char g[16];
    snprintf(g, sizeof g, "/%s", fpt_split_names[s]);
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_obj_track_times(gcpl, 0);
    hid_t grp = H5Gcreate2(f, g, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    FPT_ENSURE(grp >= 0, "%s: cannot create group %s", path, g);
    int rc = 0;
    int64_t dx[3] = {p->n, d->seq, d->d_in};
    if (d->d_in > 0)
      rc = write_array(grp, "x", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3, dx, p->x, path, chunk);
    else
      rc = write_array(grp, "x", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, dx, p->ids, path, chunk);
    int64_t dx2[2] = {p->n, d->seq2};
    if (rc == 0 && d->seq2 > 0)
      rc = write_array(grp, "x2", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, dx2, p->ids2, path, chunk);
    int64_t dy[2] = {p->n, d->K};
    if (rc == 0)
      rc = write_array(grp, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, dy, p->y, path, chunk);
    if (rc == 0 && p->index)
      rc = write_array(grp, "index", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, dy, p->index, path, chunk);
    H5Gclose(grp);
    FPT_TRY(rc);
  }
  return 0;
}

int fpt_dataset_write(const char *path, const fpt_dataset *d, int64_t chunk_samples) {
  fpt_h5_out o;
  FPT_TRY(fpt_h5_out_create(&o, path));
  int rc = write_all(o.file, d, path, chunk_samples);
  if (rc != 0) {
    fpt_h5_out_abort(&o);
    return rc;
  }
  return fpt_h5_out_commit(&o);
}

// ---- parallel reader ----

static int check_array(fpt_data_reader *r, int split, hid_t ds, const char *name, hid_t want,
                       int ndim, const int64_t *tail, int64_t *n) {
  hid_t ty = H5Dget_type(ds), sp = H5Dget_space(ds);
  int ok_type = H5Tget_class(ty) == H5Tget_class(want) && H5Tget_size(ty) == H5Tget_size(want);
  int nd = H5Sget_simple_extent_ndims(sp);
  hsize_t d[4] = {0};
  if (nd > 0 && nd <= 4)
    H5Sget_simple_extent_dims(sp, d, NULL);
  H5Tclose(ty);
  H5Sclose(sp);
  FPT_ENSURE(ok_type, "%s: dataset %s has the wrong type (%s expected)", r->path, name,
             H5Tget_class(want) == H5T_FLOAT ? "float32" : "int32");
  int ok = nd == ndim;
  for (int i = 1; ok && i < nd; i++)
    ok = (int64_t)d[i] == tail[i - 1];
  if (!ok) {
    char want_s[64] = "[N", *p = want_s + 2;
    for (int i = 1; i < ndim; i++)
      p += snprintf(p, sizeof want_s - (size_t)(p - want_s), ", %lld", (long long)tail[i - 1]);
    snprintf(p, sizeof want_s - (size_t)(p - want_s), "]");
    FPT_FAIL("%s: dataset %s has the wrong shape (expected %s from the file's attributes)", r->path,
             name, want_s);
  }
  if (*n >= 0)
    FPT_ENSURE((int64_t)d[0] == *n, "%s: dataset %s has %lld samples, but /%s/y has %lld", r->path,
               name, (long long)d[0], fpt_split_names[split], (long long)*n);
  *n = (int64_t)d[0];
  return 0;
}

static int read_attrs(fpt_data_reader *r) {
  fpt_dataset *m = &r->meta;
  int64_t v[11];
  const char *names[] = {"format_version", "seq", "d_in", "vocab",  "seq2", "vocab2",
                         "n_classes",      "K",   "r",    "pad_id", "seed"};
  for (int i = 0; i < 11; i++)
    FPT_TRY(fpt_h5_read_attr_i64(r->file, r->path, names[i], &v[i]));
  FPT_ENSURE(v[0] == FPT_DATASET_FORMAT_VERSION, "%s: format_version %lld is not supported (%d)",
             r->path, (long long)v[0], FPT_DATASET_FORMAT_VERSION);
  m->seq = (int)v[1];
  m->d_in = (int)v[2];
  m->vocab = (int)v[3];
  m->seq2 = (int)v[4];
  m->vocab2 = (int)v[5];
  m->n_classes = (int)v[6];
  m->K = (int)v[7];
  m->r = (int)v[8];
  m->pad_id = (int)v[9];
  m->seed = v[10];
  FPT_ENSURE(m->seq >= 1 && m->K >= 1 && m->n_classes >= 2 && m->r >= 1 && m->r <= m->seq,
             "%s: attributes seq/K/n_classes/r are inconsistent", r->path);
  FPT_ENSURE((m->d_in > 0) != (m->vocab > 0), "%s: exactly one of d_in and vocab must be > 0",
             r->path);
  FPT_TRY(fpt_h5_read_attr_str(r->file, r->path, "task", m->task, sizeof m->task));
  return 0;
}

int fpt_data_open(fpt_data_reader *r, const char *path, MPI_Comm comm) {
  memset(r, 0, sizeof *r);
  for (int s = 0; s < 3; s++)
    r->x[s] = r->x2[s] = r->y[s] = -1;
  snprintf(r->path, sizeof r->path, "%s", path);
  r->comm = comm;
  // Before any open: a FIFO or device would block the open for ever.
  struct stat st;
  FPT_ENSURE(stat(path, &st) == 0, "%s: cannot open (%s)", path, strerror(errno));
  FPT_ENSURE(S_ISREG(st.st_mode), "%s: not a regular file (a FIFO, device or directory)", path);
  r->size = (int64_t)st.st_size;
  r->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
  r->ino = (uint64_t)st.st_ino;
  FPT_TRY(fpt_h5_check_readable(path));
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
  r->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  H5Pclose(fapl);
  FPT_ENSURE(r->file >= 0, "%s: HDF5 open failed (truncated or corrupt file?)", path);
  FPT_TRY(read_attrs(r));
  for (int s = 0; s < 3; s++) {
    char name[32];
    int64_t n = -1;
    snprintf(name, sizeof name, "/%s/y", fpt_split_names[s]);
    FPT_TRY(fpt_h5_open_dataset(r->file, path, name, &r->y[s]));
    int64_t ty[1] = {r->meta.K};
    FPT_TRY(check_array(r, s, r->y[s], name, H5T_NATIVE_INT32, 2, ty, &n));
    snprintf(name, sizeof name, "/%s/x", fpt_split_names[s]);
    FPT_TRY(fpt_h5_open_dataset(r->file, path, name, &r->x[s]));
    int64_t tx[2] = {r->meta.seq, r->meta.d_in};
    FPT_TRY(check_array(r, s, r->x[s], name, r->meta.d_in > 0 ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT32,
                        r->meta.d_in > 0 ? 3 : 2, tx, &n));
    if (r->meta.seq2 > 0) {
      snprintf(name, sizeof name, "/%s/x2", fpt_split_names[s]);
      FPT_TRY(fpt_h5_open_dataset(r->file, path, name, &r->x2[s]));
      int64_t t2[1] = {r->meta.seq2};
      FPT_TRY(check_array(r, s, r->x2[s], name, H5T_NATIVE_INT32, 2, t2, &n));
    }
    r->n[s] = n;
  }
  return 0;
}

static int cmp_pair(const void *a, const void *b) {
  const int64_t *x = a, *y = b;
  return (x[0] > y[0]) - (x[0] < y[0]);
}

// One collective read of rows idx (sorted internally) of ds into out, in idx order.
static int read_rows(fpt_data_reader *r, hid_t ds, const int64_t *idx, int n, hid_t mtype,
                     size_t row_elems, void *out, const char *what) {
  hid_t fs = H5Dget_space(ds);
  int nd = H5Sget_simple_extent_ndims(fs);
  hsize_t dims[4];
  H5Sget_simple_extent_dims(fs, dims, NULL);
  size_t esize = H5Tget_size(mtype);
  int64_t *pairs = fpt_calloc((size_t)(n > 0 ? 2 * n : 2), sizeof(int64_t));
  for (int i = 0; i < n; i++) {
    pairs[2 * i] = idx[i];
    pairs[2 * i + 1] = i;
  }
  qsort(pairs, (size_t)n, 2 * sizeof(int64_t), cmp_pair);
  // A batch that straddles two epochs may hold a sample twice: select each row
  // once (a union selects it once anyway) and copy it to every slot that wants it.
  int nu = 0;
  H5Sselect_none(fs);
  for (int i = 0; i < n; i++) {
    if (i > 0 && pairs[2 * i] == pairs[2 * i - 2])
      continue;
    nu++;
    hsize_t start[4] = {(hsize_t)pairs[2 * i], 0, 0, 0}, count[4] = {1, dims[1], 0, 0};
    if (nd == 3)
      count[2] = dims[2];
    H5Sselect_hyperslab(fs, H5S_SELECT_OR, start, NULL, count, NULL);
  }
  hsize_t mcount = (hsize_t)nu * row_elems;
  hid_t ms = H5Screate_simple(1, &mcount, NULL);
  if (nu == 0)
    H5Sselect_none(ms);
  char *tmp = fpt_malloc((size_t)(nu > 0 ? nu : 1) * row_elems * esize);
  hid_t xfer = H5Pcreate(H5P_DATASET_XFER);
  H5Pset_dxpl_mpio(xfer, H5FD_MPIO_COLLECTIVE);
  herr_t rc = H5Dread(ds, mtype, ms, fs, xfer, tmp);
  H5Pclose(xfer);
  H5Sclose(ms);
  H5Sclose(fs);
  for (int i = 0, u = -1; rc >= 0 && i < n; i++) {
    if (i == 0 || pairs[2 * i] != pairs[2 * i - 2])
      u++;
    memcpy((char *)out + (size_t)pairs[2 * i + 1] * row_elems * esize,
           tmp + (size_t)u * row_elems * esize, row_elems * esize);
  }
  free(tmp);
  free(pairs);
  FPT_ENSURE(rc >= 0, "%s: reading %s failed (truncated file?)", r->path, what);
  return 0;
}

// The file as it was opened: same inode, size and modification time. A file
// truncated or copied over while a run reads it reads back zeros, silently;
// every rank checks, and all agree before the collective read.
static int unchanged(fpt_data_reader *r) {
  struct stat st;
  int same = stat(r->path, &st) == 0 && (uint64_t)st.st_ino == r->ino &&
             (int64_t)st.st_size == r->size &&
             (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec == r->mtime_ns;
  int all = same;
  MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_MIN, r->comm);
  FPT_ENSURE(all,
             "%s: the file changed while this run reads it (%s); give a new dataset a new "
             "name, and resume the run",
             r->path,
             !same ? (stat(r->path, &st) != 0          ? "it is gone"
                      : (int64_t)st.st_size != r->size ? "its size changed"
                                                       : "it was rewritten")
                   : "seen by another rank");
  return 0;
}

int fpt_data_read(fpt_data_reader *r, int split, const int64_t *idx, int n, int which, void *x,
                  int32_t *y) {
  FPT_TRY(unchanged(r));
  for (int i = 0; i < n; i++)
    FPT_ENSURE(idx[i] >= 0 && idx[i] < r->n[split], "%s: sample %lld is outside /%s (%lld)",
               r->path, (long long)idx[i], fpt_split_names[split], (long long)r->n[split]);
  const fpt_dataset *m = &r->meta;
  hid_t xd = which == 2 ? r->x2[split] : r->x[split];
  FPT_ENSURE(xd >= 0, "%s: the file has no second tokenisation x2", r->path);
  size_t xrow = which == 2 ? (size_t)m->seq2 : (size_t)m->seq * (m->d_in > 0 ? m->d_in : 1);
  hid_t xt = which == 1 && m->d_in > 0 ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT32;
  char what[64];
  snprintf(what, sizeof what, "/%s/%s", fpt_split_names[split], which == 2 ? "x2" : "x");
  // Collective: ranks that need nothing still take part, with empty selections.
  FPT_TRY(read_rows(r, xd, idx, x ? n : 0, xt, xrow, x, what));
  snprintf(what, sizeof what, "/%s/y", fpt_split_names[split]);
  FPT_TRY(read_rows(r, r->y[split], idx, y ? n : 0, H5T_NATIVE_INT32, (size_t)m->K, y, what));
  return 0;
}

void fpt_data_close(fpt_data_reader *r) {
  for (int s = 0; s < 3; s++) {
    if (r->x[s] >= 0)
      H5Dclose(r->x[s]);
    if (r->x2[s] >= 0)
      H5Dclose(r->x2[s]);
    if (r->y[s] >= 0)
      H5Dclose(r->y[s]);
  }
  if (r->file >= 0)
    H5Fclose(r->file);
  r->file = -1;
}
