#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fpt/check.h"
#include "fpt/io.h"

void fpt_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

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

static int write_dataset(hid_t file, const char *name, hid_t filetype, hid_t memtype, int ndim,
                         const int64_t *dims, const void *data) {
  hsize_t d[8];
  for (int i = 0; i < ndim; i++)
    d[i] = (hsize_t)dims[i];
  hid_t sp = H5Screate_simple(ndim, d, NULL);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t ds = H5Dcreate2(file, name, filetype, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = ds >= 0 ? H5Dwrite(ds, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : -1;
  if (ds >= 0)
    H5Dclose(ds);
  H5Pclose(lcpl);
  H5Sclose(sp);
  FPT_ENSURE(rc >= 0, "writing dataset %s failed", name);
  return 0;
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
  hid_t a = H5Acreate2(obj, name, filetype, sp, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = a >= 0 ? H5Awrite(a, memtype, v) : -1;
  if (a >= 0)
    H5Aclose(a);
  H5Sclose(sp);
  FPT_ENSURE(rc >= 0, "writing attribute %s failed", name);
  return 0;
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

int fpt_h5_out_create(fpt_h5_out *o, const char *path) {
  snprintf(o->path, sizeof o->path, "%s", path);
  snprintf(o->tmp, sizeof o->tmp, "%s.tmp.%ld", path, (long)getpid());
  o->file = H5Fcreate(o->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  FPT_ENSURE(o->file >= 0, "%s: cannot create output file", path);
  return 0;
}

int fpt_h5_out_commit(fpt_h5_out *o) {
  herr_t rc = H5Fclose(o->file);
  o->file = -1;
  if (rc < 0) {
    unlink(o->tmp);
    FPT_FAIL("%s: closing output file failed", o->path);
  }
  if (rename(o->tmp, o->path) != 0) {
    unlink(o->tmp);
    FPT_FAIL("%s: cannot rename temporary output into place", o->path);
  }
  return 0;
}

void fpt_h5_out_abort(fpt_h5_out *o) {
  if (o->file >= 0)
    H5Fclose(o->file);
  o->file = -1;
  unlink(o->tmp);
}
