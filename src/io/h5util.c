#define _GNU_SOURCE // fallocate, memfd_create
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fpt/check.h"
#include "fpt/io.h"

void fpt_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

const char *fpt_io_why(int e) {
  static char buf[160];
  buf[0] = '\0';
  if (e == ENOSPC || e == EDQUOT || e == EFBIG || e == EIO || e == EROFS || e == EACCES ||
      e == EPERM || e == ENOENT || e == ENOTDIR || e == EISDIR || e == ENAMETOOLONG || e == EXDEV)
    snprintf(buf, sizeof buf, ": %s", strerror(e));
  return buf;
}

void fpt_h5_file_label(hid_t obj, char *buf, size_t n) {
  if (n == 0)
    return;
  if (H5Fget_name(obj, buf, n) <= 0) {
    snprintf(buf, n, "(HDF5 file)");
    return;
  }
  // x.h5.tmp and x.h5.tmp.<pid> are written to become x.h5.
  char *t = NULL;
  for (char *p = strstr(buf, ".tmp"); p; p = strstr(p + 1, ".tmp"))
    t = p;
  if (t && (t[4] == '\0' || (t[4] == '.' && strspn(t + 5, "0123456789") == strlen(t + 5))))
    *t = '\0';
}

int fpt_io_agree(MPI_Comm comm, int rc) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  int me = rc != 0 ? rank : size, first = size;
  MPI_Allreduce(&me, &first, 1, MPI_INT, MPI_MIN, comm);
  if (first == size)
    return 0;
  // Every rank reports the cause, not "another rank failed".
  char msg[FPT_ERROR_MAX];
  snprintf(msg, sizeof msg, "%s", fpt_error_get());
  MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, first, comm);
  fpt_error_clear();
  fpt_error_set("%s", msg);
  return 1;
}

// A file opened with the MPI-IO driver: its metadata (attributes, groups,
// dataset creation) lives in a cache every rank holds a copy of, so an
// attribute write cannot fail on one rank alone; only flushes can.
static int is_parallel(hid_t obj) {
  hid_t fid = H5Iget_file_id(obj);
  if (fid < 0)
    return 0;
  hid_t fapl = H5Fget_access_plist(fid);
  int par = fapl >= 0 && H5Pget_driver(fapl) == H5FD_MPIO;
  if (fapl >= 0)
    H5Pclose(fapl);
  H5Fclose(fid); // drops the reference H5Iget_file_id took
  return par;
}

int fpt_h5_check_readable(const char *path) {
  FPT_ENSURE(access(path, R_OK) == 0, "%s: cannot open file for reading", path);
  htri_t is = H5Fis_hdf5(path);
  FPT_ENSURE(is > 0, "%s: not an HDF5 file (or truncated)", path);
  return 0;
}

int fpt_h5_open_read(const char *path, hid_t *file) {
  FPT_TRY(fpt_h5_check_readable(path));
  *file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  FPT_ENSURE(*file >= 0, "%s: HDF5 open failed (truncated or corrupt file?)", path);
  return 0;
}

// H5Lexists on every component, since it fails on a missing intermediate group.
int fpt_h5_exists(hid_t file, const char *name) {
  char buf[512];
  snprintf(buf, sizeof buf, "%s", name);
  for (char *p = buf + 1;; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      if (H5Lexists(file, buf, H5P_DEFAULT) <= 0)
        return 0;
      if (c == '\0')
        return 1;
      *p = c;
    }
  }
}

int fpt_h5_open_dataset(hid_t file, const char *path, const char *name, hid_t *ds) {
  FPT_ENSURE(fpt_h5_exists(file, name), "%s: dataset %s is missing", path, name);
  // No chunk cache: scattered sample reads then fetch only the selected bytes
  // instead of whole chunks (we never reread a chunk soon enough to profit).
  hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
  H5Pset_chunk_cache(dapl, 0, 0, 1.0);
  *ds = H5Dopen2(file, name, dapl);
  H5Pclose(dapl);
  FPT_ENSURE(*ds >= 0, "%s: %s is not a dataset", path, name);
  return 0;
}

int fpt_h5_shape(hid_t file, const char *path, const char *name, int *ndim, int64_t *dims) {
  hid_t ds;
  FPT_TRY(fpt_h5_open_dataset(file, path, name, &ds));
  hid_t sp = H5Dget_space(ds);
  int nd = H5Sget_simple_extent_ndims(sp);
  hsize_t d[8] = {0};
  if (nd > 0 && nd <= 8)
    H5Sget_simple_extent_dims(sp, d, NULL);
  H5Sclose(sp);
  H5Dclose(ds);
  FPT_ENSURE(nd >= 0 && nd <= *ndim, "%s: dataset %s has rank %d (at most %d expected)", path, name,
             nd, *ndim);
  *ndim = nd;
  for (int i = 0; i < nd; i++)
    dims[i] = (int64_t)d[i];
  return 0;
}

void fpt_format_shape(char *buf, size_t n, int ndim, const int64_t *d) {
  size_t k = (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)d[i]);
  if (k < n)
    snprintf(buf + k, n - k, "]");
}

int fpt_h5_read_floats(hid_t file, const char *path, const char *name, int ndim,
                       const int64_t *dims, float *out) {
  hid_t ds;
  FPT_TRY(fpt_h5_open_dataset(file, path, name, &ds));
  hid_t ty = H5Dget_type(ds), sp = H5Dget_space(ds);
  int ok_type = H5Tget_class(ty) == H5T_FLOAT && H5Tget_size(ty) == 4;
  int nd = H5Sget_simple_extent_ndims(sp);
  hsize_t d[8] = {0};
  if (nd > 0 && nd <= 8)
    H5Sget_simple_extent_dims(sp, d, NULL);
  H5Tclose(ty);
  H5Sclose(sp);
  int ok_shape = nd == ndim;
  for (int i = 0; ok_shape && i < nd; i++)
    ok_shape = (int64_t)d[i] == dims[i];
  if (!ok_type || !ok_shape) {
    H5Dclose(ds);
    char want[128], got[128];
    int64_t g[8];
    for (int i = 0; i < nd && i < 8; i++)
      g[i] = (int64_t)d[i];
    fpt_format_shape(want, sizeof want, ndim, dims);
    fpt_format_shape(got, sizeof got, nd < 0 ? 0 : nd, g);
    FPT_ENSURE(ok_type, "%s: dataset %s must be float32", path, name);
    FPT_FAIL("%s: dataset %s has shape %s, expected %s", path, name, got, want);
  }
  herr_t rc = H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out);
  H5Dclose(ds);
  FPT_ENSURE(rc >= 0, "%s: reading dataset %s failed (truncated file?)", path, name);
  return 0;
}

static int read_attr(hid_t file, const char *path, const char *name, hid_t memtype, void *v) {
  FPT_ENSURE(H5Aexists(file, name) > 0, "%s: attribute %s is missing", path, name);
  hid_t a = H5Aopen(file, name, H5P_DEFAULT);
  hid_t sp = H5Aget_space(a);
  hssize_t n = H5Sget_simple_extent_npoints(sp);
  H5Sclose(sp);
  herr_t rc = n == 1 ? H5Aread(a, memtype, v) : -1;
  H5Aclose(a);
  FPT_ENSURE(rc >= 0, "%s: attribute %s must be one number", path, name);
  return 0;
}

int fpt_h5_read_attr_i64(hid_t file, const char *path, const char *name, int64_t *v) {
  return read_attr(file, path, name, H5T_NATIVE_INT64, v);
}

int fpt_h5_read_attr_int(hid_t file, const char *path, const char *name, int64_t *v) {
  FPT_ENSURE(H5Aexists(file, name) > 0, "%s: attribute %s is missing", path, name);
  hid_t a = H5Aopen(file, name, H5P_DEFAULT);
  hid_t ft = H5Aget_type(a);
  int is_int = H5Tget_class(ft) == H5T_INTEGER;
  H5Tclose(ft);
  H5Aclose(a);
  FPT_ENSURE(is_int, "%s: attribute %s must be an integer", path, name);
  return read_attr(file, path, name, H5T_NATIVE_INT64, v);
}

int fpt_h5_read_attr_str(hid_t file, const char *path, const char *name, char *buf, size_t size) {
  FPT_ENSURE(H5Aexists(file, name) > 0, "%s: attribute %s is missing", path, name);
  hid_t a = H5Aopen(file, name, H5P_DEFAULT);
  hid_t ft = H5Aget_type(a);
  // Exactly one string (tests/fuzz/README.md): H5Aread writes every
  // element, so several would overflow `v` (fixed: n + 1 bytes; variable: one
  // pointer), and none would leave buf unset.
  hid_t sp = H5Aget_space(a);
  hssize_t np = H5Sget_simple_extent_npoints(sp);
  H5Sclose(sp);
  int ok = H5Tget_class(ft) == H5T_STRING, one = np == 1;
  herr_t rc = -1;
  if (ok && one && H5Tis_variable_str(ft) > 0) {
    char *v = NULL;
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(ft)); // HDF5 does not convert ASCII <-> UTF-8 (h5py writes UTF-8)
    rc = H5Aread(a, mt, &v);
    if (rc >= 0) {
      snprintf(buf, size, "%s", v ? v : ""); // a NULL string (h5py: None) reads as ""
      H5free_memory(v);
    }
    H5Tclose(mt);
  } else if (ok && one) {
    size_t n = H5Tget_size(ft);
    char *v = fpt_calloc(n + 1, 1);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, n + 1);
    H5Tset_cset(mt, H5Tget_cset(ft));
    rc = H5Aread(a, mt, v);
    snprintf(buf, size, "%s", v);
    free(v);
    H5Tclose(mt);
  }
  H5Tclose(ft);
  H5Aclose(a);
  FPT_ENSURE(!ok || one, "%s: attribute %s must be one string, not %lld", path, name,
             (long long)np);
  FPT_ENSURE(rc >= 0, "%s: attribute %s must be a string", path, name);
  return 0;
}

int fpt_h5_read_attr_f64(hid_t file, const char *path, const char *name, double *v) {
  return read_attr(file, path, name, H5T_NATIVE_DOUBLE, v);
}

// The outcome of writing dataset or attribute `name` of obj's file (rc < 0:
// failed, errno e), with the fault switch's "h5-dataset" / "h5-attr" points.
// In a parallel file, these writes are the same on every rank (see
// is_parallel); its writers have their own fault points.
static int write_result(hid_t obj, const char *what, const char *name, herr_t rc, int e) {
  const char *point = what[0] == 'd' ? "h5-dataset" : "h5-attr";
  if (rc >= 0 && !is_parallel(obj) && fpt_fault_fail(point)) {
    rc = -1;
    e = ENOSPC;
  }
  if (rc < 0) {
    char f[4096];
    fpt_h5_file_label(obj, f, sizeof f);
    FPT_FAIL("%s: writing %s %s failed%s", f, what, name, fpt_io_why(e));
  }
  return 0;
}

static int write_dataset(hid_t file, const char *name, hid_t filetype, hid_t memtype, int ndim,
                         const int64_t *dims, const void *data) {
  hsize_t d[8];
  for (int i = 0; i < ndim; i++)
    d[i] = (hsize_t)dims[i];
  hid_t sp = H5Screate_simple(ndim, d, NULL);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  H5Pset_obj_track_times(dcpl, 0); // no clock in the file: the same content gives the same bytes
  errno = 0;
  hid_t ds = H5Dcreate2(file, name, filetype, sp, lcpl, dcpl, H5P_DEFAULT);
  herr_t rc = ds >= 0 ? H5Dwrite(ds, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : -1;
  if (ds >= 0 && H5Dclose(ds) < 0) // a contiguous dataset's last bytes are written here
    rc = -1;
  int e = errno;
  H5Pclose(dcpl);
  H5Pclose(lcpl);
  H5Sclose(sp);
  return write_result(file, "dataset", name, rc, e);
}

int fpt_h5_write_floats(hid_t file, const char *name, int ndim, const int64_t *dims,
                        const float *data) {
  return write_dataset(file, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, ndim, dims, data);
}

int fpt_h5_write_doubles(hid_t file, const char *name, int ndim, const int64_t *dims,
                         const double *data) {
  return write_dataset(file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, ndim, dims, data);
}

int fpt_h5_write_ints(hid_t file, const char *name, int ndim, const int64_t *dims,
                      const int32_t *data) {
  return write_dataset(file, name, H5T_STD_I32LE, H5T_NATIVE_INT32, ndim, dims, data);
}

static int write_attr(hid_t obj, const char *name, hid_t filetype, hid_t memtype, const void *v) {
  hid_t sp = H5Screate(H5S_SCALAR);
  errno = 0;
  hid_t a = H5Acreate2(obj, name, filetype, sp, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = a >= 0 ? H5Awrite(a, memtype, v) : -1;
  if (a >= 0 && H5Aclose(a) < 0)
    rc = -1;
  int e = errno;
  H5Sclose(sp);
  return write_result(obj, "attribute", name, rc, e);
}

int fpt_h5_write_attr_i64(hid_t obj, const char *name, int64_t v) {
  return write_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

int fpt_h5_write_attr_f64(hid_t obj, const char *name, double v) {
  return write_attr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

int fpt_h5_write_attr_str(hid_t obj, const char *name, const char *v) {
  hid_t ty = H5Tcopy(H5T_C_S1);
  H5Tset_size(ty, strlen(v) + 1);
  int rc = write_attr(obj, name, ty, ty, v);
  H5Tclose(ty);
  return rc;
}

// ---- files being written: reservation, close, discard ----
// Two HDF5 1.10.8 behaviours make a full disk dangerous (docs in fpt/io.h):
// when H5Fclose fails, HDF5 frees the file's structures but keeps its ID,
// and its exit handler closes that ID again and crashes (exit 139); after
// one failed flush, every later flush and close of that file fails too. And
// with the MPI-IO driver, a write that fails on one rank inside a collective
// call (the chunk fill of H5Dcreate, a metadata flush) leaves the other ranks
// waiting in that call for ever, where no agreement of ours can reach them.
// So the disk blocks a file needs are reserved before HDF5 writes into them,
// and a file that failed is closed with nothing that can fail left to do.

int fpt_h5_reserve(const char *tmp, const char *path, MPI_Comm comm, int64_t upto,
                   const char *point) {
  int rank = 0;
  if (comm != MPI_COMM_NULL)
    MPI_Comm_rank(comm, &rank);
  int rc = 0, e = 0;
  if (rank == 0) {
    errno = 0;
    int fd = open(tmp, O_WRONLY);
    if (fd < 0) {
      rc = 1;
      e = errno;
    }
    // fallocate, not posix_fallocate: where a filesystem cannot reserve
    // (EOPNOTSUPP), glibc would write zeros to "reserve", which could race
    // with HDF5's own writes; there the reservation is skipped.
    if (fd >= 0 && upto > 0 && fallocate(fd, 0, 0, (off_t)upto) != 0 && errno != EOPNOTSUPP &&
        errno != ENOSYS) {
      rc = 1;
      e = errno;
    }
    if (fd >= 0)
      close(fd);
    if (rc == 0 && fpt_fault_fail(point)) {
      rc = 1;
      e = ENOSPC;
    }
    if (rc && e == ENOSPC && upto >= (1 << 20))
      fpt_error_set("%s: writing the file failed%s (it needs up to %.1f MB)", path, fpt_io_why(e),
                    (double)upto / (1 << 20));
    else if (rc && e == ENOSPC)
      fpt_error_set("%s: writing the file failed%s (it needs up to %lld KB)", path, fpt_io_why(e),
                    (long long)(upto + 1023) / 1024);
    else if (rc)
      fpt_error_set("%s: writing the file failed%s", path, fpt_io_why(e));
  }
  return comm == MPI_COMM_NULL ? rc : fpt_io_agree(comm, rc);
}

// rank 0, after the close: the file cut to the end of allocation HDF5
// recorded (a reservation may reach past it), and written to disk.
static int settle(const char *tmp, const char *path) {
  hid_t f = H5Fopen(tmp, H5F_ACC_RDONLY, H5P_DEFAULT);
  haddr_t eoa = 0;
  int have = f >= 0 && H5Fget_eoa(f, &eoa) >= 0 && eoa > 0;
  if (f >= 0)
    H5Fclose(f);
  errno = 0;
  int fd = open(tmp, O_WRONLY);
  int ok = fd >= 0;
  struct stat st;
  if (ok && have && fstat(fd, &st) == 0 && st.st_size > (off_t)eoa)
    ok = ftruncate(fd, (off_t)eoa) == 0;
  if (ok)
    ok = fsync(fd) == 0;
  int e = errno;
  if (fd >= 0)
    close(fd);
  FPT_ENSURE(ok, "%s: writing the file failed%s", path, fpt_io_why(e));
  return 0;
}

int fpt_h5_close(hid_t f, const char *tmp, const char *path, MPI_Comm comm, const char *point) {
  int rank = 0;
  if (comm != MPI_COMM_NULL)
    MPI_Comm_rank(comm, &rank);
  errno = 0;
  int rc = H5Fclose(f) < 0;
  int e = errno;
  if (rc == 0 && fpt_fault_fail(point)) {
    rc = 1;
    e = ENOSPC;
  }
  if (rc)
    fpt_error_set("%s: closing the file failed%s", path, fpt_io_why(e));
  if (comm != MPI_COMM_NULL)
    rc = fpt_io_agree(comm, rc);
  if (rc == 0 && rank == 0)
    rc = settle(tmp, path);
  if (comm != MPI_COMM_NULL)
    rc = fpt_io_agree(comm, rc);
  return rc;
}

void fpt_h5_discard(hid_t f, const char *tmp, MPI_Comm comm) {
  int rank = 0;
  if (comm != MPI_COMM_NULL)
    MPI_Comm_rank(comm, &rank);
  if (f >= 0 && comm == MPI_COMM_NULL) {
    // What HDF5 still writes while closing goes to an anonymous memory file
    // instead of the (full) disk, so the close cannot fail. (Before any
    // flush: a failed one would make the close fail anyway.)
    int *fd = NULL;
    hid_t fapl = H5Fget_access_plist(f);
    if (fapl >= 0 && H5Pget_driver(fapl) == H5FD_SEC2 &&
        H5Fget_vfd_handle(f, fapl, (void **)&fd) >= 0 && fd && *fd >= 0) {
      int m = memfd_create("fpt-discarded", MFD_CLOEXEC);
      if (m >= 0) {
        dup2(m, *fd);
        close(m);
      }
    }
    if (fapl >= 0)
      H5Pclose(fapl);
    H5Fclose(f);
  } else if (f >= 0) {
    // Parallel: every failure is agreed on before HDF5 writes past the
    // reserved blocks, so the (collective) close finds its room.
    H5Fclose(f);
  }
  if (rank == 0)
    unlink(tmp);
}

int fpt_h5_out_create(fpt_h5_out *o, const char *path) {
  snprintf(o->path, sizeof o->path, "%s", path);
  snprintf(o->tmp, sizeof o->tmp, "%s.tmp.%ld", path, (long)getpid());
  errno = 0;
  o->file = H5Fcreate(o->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (o->file < 0) {
    int e = errno;
    unlink(o->tmp); // created, but not as an HDF5 file (a full disk)
    FPT_FAIL("%s: cannot create output file%s", path, fpt_io_why(e));
  }
  return 0;
}

int fpt_h5_out_commit(fpt_h5_out *o) {
  // Reserve what is still to be written (metadata, below the end of
  // allocation), so that the close cannot fail for space; if there is no room,
  // the file is discarded before any flush is tried.
  haddr_t eoa = 0;
  if (H5Fget_eoa(o->file, &eoa) < 0)
    eoa = 0; // not the default driver: no reservation
  if (fpt_h5_reserve(o->tmp, o->path, MPI_COMM_NULL, (int64_t)eoa, "h5-reserve") != 0) {
    fpt_h5_out_abort(o);
    return 1;
  }
  int rc = fpt_h5_close(o->file, o->tmp, o->path, MPI_COMM_NULL, "h5-close");
  o->file = -1;
  if (rc != 0) {
    unlink(o->tmp);
    return 1;
  }
  errno = 0;
  rc = fpt_fault_fail("h5-rename") || rename(o->tmp, o->path) != 0;
  int e = errno;
  if (rc != 0) {
    unlink(o->tmp);
    FPT_FAIL("%s: cannot rename the temporary output into place%s", o->path, fpt_io_why(e));
  }
  return 0;
}

void fpt_h5_out_abort(fpt_h5_out *o) {
  fpt_h5_discard(o->file, o->tmp, MPI_COMM_NULL);
  o->file = -1;
}

// A float32 array of a file whose shape the caller checks first (so that a
// bogus shape is refused before anything is allocated): two calls, each
// opening and closing the file, for commands that hold no HDF5 handles.
int fpt_h5_file_shape(const char *path, const char *name, int *ndim, int64_t *dims) {
  hid_t f;
  FPT_TRY(fpt_h5_open_read(path, &f));
  int rc = fpt_h5_shape(f, path, name, ndim, dims);
  H5Fclose(f);
  return rc;
}

int fpt_h5_file_read_floats(const char *path, const char *name, int ndim, const int64_t *dims,
                            float *out) {
  hid_t f;
  FPT_TRY(fpt_h5_open_read(path, &f));
  int rc = fpt_h5_read_floats(f, path, name, ndim, dims, out);
  H5Fclose(f);
  return rc;
}

int fpt_check_finite(const char *path, const char *name, const float *x, size_t n) {
  for (size_t j = 0; j < n; j++)
    FPT_ENSURE(x[j] - x[j] == 0.0f, "%s: dataset %s holds a NaN or Inf (%g) at element %zu", path,
               name, x[j], j);
  return 0;
}
