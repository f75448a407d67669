// libFuzzer target: the HDF5 attribute readers (fpt_h5_read_attr_i64/_f64/_str,
// src/io/h5util.c) and the model-file reader built on them
// (fpt_model_file_config, fpt_model_file_load, fpt_model_file_load_wte,
// src/io/model_file.c). HDF5 itself is not the target: the input is a recipe
// for a small, well-formed HDF5 file, written with the HDF5 API on tmpfs, whose
// attributes (name, type class, size, sign and byte order, string kind,
// character set and padding, dataspace rank and extent, values) and tensor
// datasets (present, shape, dtype, values) come from the fuzz bytes.
//
// Recipe (bytes past the end read as 0):
//   n_attr = 1 + b % 8, then per attribute:
//     name   b % 13: one of names[] below, or 12 = a name of b % 8 raw bytes
//     type   b % 11 (see make_type), with 1-2 parameter bytes
//     space  b % 6: 0-1 scalar, 2 null, 3-5 simple of rank 1..3, dims b % 4
//     values fixed types: npoints * size raw bytes; variable-length: per
//            element a length byte (% 32) and that many bytes
//   tensors b: 0 = none; else the tensors of a 1-layer, n_embd 4, n_positions
//            4, vocab 3 model, each with one mutation byte (see write_tensor).
#include "fuzz_common.h"

#include <hdf5.h>

#include "fpt/io.h"
#include "fpt/model.h"

typedef struct {
  const uint8_t *p;
  size_t n, at;
} reader;

static unsigned u8(reader *r) { return r->at < r->n ? r->p[r->at++] : 0; }

// Copy k bytes (zeros past the end).
static void take(reader *r, void *dst, size_t k) {
  uint8_t *d = dst;
  for (size_t i = 0; i < k; i++)
    d[i] = (uint8_t)u8(r);
}

static const char *const names[12] = {
    "n_layer", "n_head", "n_embd",     "n_positions", "layer_norm_epsilon", "kind",
    "causal",  "task",   "activation", "config",      "model_path",         "format_version"};
enum { N_NAMES = 12 };

// A file datatype from the recipe; *vlen: 1 vlen string, 2 vlen of int32.
static hid_t make_type(reader *r, int *vlen) {
  *vlen = 0;
  unsigned k = u8(r) % 11, a = u8(r);
  hid_t t = -1;
  switch (k) {
  case 0: { // integers of every size, sign and byte order
    hid_t ints[16] = {H5T_STD_I8LE, H5T_STD_I16LE, H5T_STD_I32LE, H5T_STD_I64LE,
                      H5T_STD_U8LE, H5T_STD_U16LE, H5T_STD_U32LE, H5T_STD_U64LE,
                      H5T_STD_I8BE, H5T_STD_I16BE, H5T_STD_I32BE, H5T_STD_I64BE,
                      H5T_STD_U8BE, H5T_STD_U16BE, H5T_STD_U32BE, H5T_STD_U64BE};
    t = H5Tcopy(ints[a % 16]);
    break;
  }
  case 1: { // floats
    hid_t fl[4] = {H5T_IEEE_F32LE, H5T_IEEE_F64LE, H5T_IEEE_F32BE, H5T_IEEE_F64BE};
    t = H5Tcopy(fl[a % 4]);
    break;
  }
  case 2:
  case 3: { // fixed-length string: size, character set, padding
    t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 1 + a % 64);
    unsigned b = u8(r);
    H5Tset_cset(t, b & 1 ? H5T_CSET_UTF8 : H5T_CSET_ASCII);
    H5Tset_strpad(t, (b >> 1) % 3 == 0   ? H5T_STR_NULLTERM
                     : (b >> 1) % 3 == 1 ? H5T_STR_NULLPAD
                                         : H5T_STR_SPACEPAD);
    break;
  }
  case 4: // variable-length string (h5py's str), ASCII or UTF-8
    t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, a & 1 ? H5T_CSET_UTF8 : H5T_CSET_ASCII);
    *vlen = 1;
    break;
  case 5: { // array of int64
    hsize_t d[1] = {1 + a % 3};
    t = H5Tarray_create2(H5T_STD_I64LE, 1, d);
    break;
  }
  case 6: // compound {int64 a; double b}
    t = H5Tcreate(H5T_COMPOUND, 16);
    H5Tinsert(t, "a", 0, H5T_STD_I64LE);
    H5Tinsert(t, "b", 8, H5T_IEEE_F64LE);
    break;
  case 7: { // enum over int8 (h5py's bool)
    t = H5Tenum_create(H5T_STD_I8LE);
    signed char v0 = 0, v1 = 1;
    H5Tenum_insert(t, "FALSE", &v0);
    H5Tenum_insert(t, "TRUE", &v1);
    break;
  }
  case 8: // opaque
    t = H5Tcreate(H5T_OPAQUE, 1 + a % 16);
    break;
  case 9: // bitfield
    t = H5Tcopy(a & 1 ? H5T_STD_B64LE : H5T_STD_B8LE);
    break;
  default: // variable-length sequence of int32
    t = H5Tvlen_create(H5T_STD_I32LE);
    *vlen = 2;
    break;
  }
  return t;
}

static hid_t make_space(reader *r, hssize_t *npoints) {
  unsigned k = u8(r) % 6;
  hid_t s;
  if (k <= 1) {
    s = H5Screate(H5S_SCALAR);
  } else if (k == 2) {
    s = H5Screate(H5S_NULL);
  } else {
    hsize_t d[3];
    int rank = (int)k - 2;
    for (int i = 0; i < rank; i++)
      d[i] = u8(r) % 4;
    s = H5Screate_simple(rank, d, NULL);
  }
  *npoints = H5Sget_simple_extent_npoints(s);
  return s;
}

static void write_attr(hid_t file, reader *r, char (*made)[32], int *n_made) {
  unsigned nk = u8(r) % 13;
  char name[32];
  if (nk < N_NAMES) {
    snprintf(name, sizeof name, "%s", names[nk]);
  } else {
    size_t k = u8(r) % 8;
    take(r, name, k);
    name[k] = '\0';
    for (size_t i = 0; i < k; i++) // HDF5 refuses "" and "." names; keep it short and printable
      name[i] = (char)('a' + (unsigned char)name[i] % 26);
    if (!k)
      snprintf(name, sizeof name, "x");
  }
  int vlen;
  hid_t t = make_type(r, &vlen);
  hssize_t np;
  hid_t s = make_space(r, &np);
  if (t < 0 || s < 0 || np < 0 || H5Aexists(file, name) > 0) {
    if (t >= 0)
      H5Tclose(t);
    if (s >= 0)
      H5Sclose(s);
    return;
  }
  hid_t a = H5Acreate2(file, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
  if (a >= 0) {
    size_t cnt = (size_t)np;
    if (vlen == 1) {
      char **v = calloc(cnt ? cnt : 1, sizeof *v);
      for (size_t i = 0; i < cnt; i++) {
        size_t k = u8(r) % 32;
        v[i] = calloc(k + 1, 1);
        take(r, v[i], k);
      }
      H5Awrite(a, t, v);
      for (size_t i = 0; i < cnt; i++)
        free(v[i]);
      free(v);
    } else if (vlen == 2) {
      hvl_t *v = calloc(cnt ? cnt : 1, sizeof *v);
      for (size_t i = 0; i < cnt; i++) {
        v[i].len = u8(r) % 8;
        v[i].p = calloc(v[i].len ? v[i].len : 1, sizeof(int32_t));
        take(r, v[i].p, v[i].len * sizeof(int32_t));
      }
      H5Awrite(a, t, v);
      for (size_t i = 0; i < cnt; i++)
        free(v[i].p);
      free(v);
    } else {
      size_t bytes = cnt * H5Tget_size(t);
      uint8_t *buf = calloc(bytes ? bytes : 1, 1);
      take(r, buf, bytes);
      H5Awrite(a, t, buf); // file type as memory type: the bytes go in unconverted
      free(buf);
    }
    H5Aclose(a);
    if (*n_made < 8)
      snprintf(made[(*n_made)++], 32, "%s", name);
  }
  H5Tclose(t);
  H5Sclose(s);
}

// One tensor of the fixed small model, mutated by one byte: 0-3 as it should
// be, 4 missing, 5 one dimension too many, 6 first dimension + 1, 7 float64,
// 8 int32, 9 a NaN, 10 an Inf, 11 a group instead of a dataset.
static void write_tensor(hid_t file, const fpt_tensor *t, unsigned m) {
  char name[64];
  snprintf(name, sizeof name, "/%s", t->name);
  m %= 12;
  if (m == 4)
    return;
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  if (m == 11) {
    hid_t g = H5Gcreate2(file, name, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (g >= 0)
      H5Gclose(g);
    H5Pclose(lcpl);
    return;
  }
  hsize_t d[3] = {(hsize_t)t->shape[0], (hsize_t)t->shape[1], 2};
  int nd = t->ndim + (m == 5);
  if (m == 5 && t->ndim == 1)
    d[1] = 2;
  if (m == 6)
    d[0]++;
  size_t n = 1;
  for (int i = 0; i < nd; i++)
    n *= d[i];
  double *v = calloc(n, sizeof *v);
  for (size_t i = 0; i < n; i++)
    v[i] = 0.01 * (double)(i % 7);
  if (m == 9)
    v[n - 1] = 0.0 / 0.0;
  if (m == 10)
    v[0] = 1.0 / 0.0;
  hid_t ft = m == 7 ? H5T_IEEE_F64LE : m == 8 ? H5T_STD_I32LE : H5T_IEEE_F32LE;
  hid_t s = H5Screate_simple(nd, d, NULL);
  hid_t ds = H5Dcreate2(file, name, ft, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  if (ds >= 0) {
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(ds);
  }
  H5Sclose(s);
  H5Pclose(lcpl);
  free(v);
}

static const fpt_backbone_cfg small_cfg = {.kind = "gpt2",
                                           .n_layer = 1,
                                           .n_embd = 4,
                                           .n_head = 1,
                                           .n_positions = 4,
                                           .ln_eps = 1e-5f,
                                           .causal = 1};
// A tied language model: its table has wte/weight as well as the backbone.
static const fpt_task_shape small_task = {
    .vocab = 3, .seq = 4, .r = 4, .n_out = 3, .n_cls = 3, .tied = 1};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int quiet = 0;
  if (!quiet) {
    fpt_h5_quiet();
    quiet = 1;
  }
  reader r = {data, size, 0};
  char path[1024];
  fuzz_clean_dir();
  fuzz_path(path, sizeof path, "model.h5");
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0)
    abort();
  char made[8][32];
  int n_made = 0, n_attr = 1 + (int)(u8(&r) % 8);
  for (int i = 0; i < n_attr; i++)
    write_attr(f, &r, made, &n_made);
  int tensors = (int)u8(&r);
  fpt_freeze fr = fpt_freeze_default();
  if (tensors) {
    fpt_model sm;
    if (fpt_model_create(&sm, &small_cfg, &small_task, &fr) != 0)
      abort();
    for (int i = 0; i < sm.n_tensors; i++)
      if (fpt_is_backbone(&sm.tensors[i]) || !strcmp(sm.tensors[i].name, "wte/weight"))
        write_tensor(f, &sm.tensors[i], u8(&r));
    fpt_model_free(&sm);
  }
  if (H5Fclose(f) < 0)
    abort();

  // The model-file reader, as every command calls it.
  fpt_backbone_cfg cfg;
  int rc = fpt_model_file_config(path, &cfg);
  if (rc == 0 && !(cfg.n_layer >= 1 && cfg.n_embd >= 1 && memchr(cfg.kind, 0, sizeof cfg.kind)))
    abort();
  fuzz_check_error(rc);
  // Then the tensors, for a model small enough to build (a config that fits
  // no model of this task is not the reader's business: skipped).
  fpt_model m;
  if (rc == 0 && (size_t)cfg.n_layer * cfg.n_embd * cfg.n_embd <= 4096 && cfg.n_positions <= 64 &&
      cfg.n_embd <= 64) {
    if (fpt_model_create(&m, &cfg, &small_task, &fr) == 0) {
      rc = fpt_model_file_load(path, &m);
      if (rc == 0) {
        int loaded = 0;
        rc = fpt_model_file_load_wte(path, &m, &loaded);
      }
      fpt_model_free(&m);
      fuzz_check_error(rc);
    }
    fpt_error_clear();
  }

  // Every attribute reader on every name written (and a missing one).
  hid_t h;
  if (fpt_h5_open_read(path, &h) != 0)
    abort();
  snprintf(made[n_made < 8 ? n_made++ : 7], 32, "absent");
  static const size_t sizes[3] = {1, 8, 4096};
  for (int i = 0; i < n_made; i++) {
    int64_t iv;
    double dv;
    fuzz_check_error(fpt_h5_read_attr_i64(h, path, made[i], &iv));
    fuzz_check_error(fpt_h5_read_attr_f64(h, path, made[i], &dv));
    for (int k = 0; k < 3; k++) {
      char *buf = malloc(sizes[k]);
      memset(buf, 'Q', sizes[k]);
      rc = fpt_h5_read_attr_str(h, path, made[i], buf, sizes[k]);
      if (rc == 0 && !memchr(buf, '\0', sizes[k]))
        abort(); // success must leave a terminated string
      fuzz_check_error(rc);
      free(buf);
    }
  }
  H5Fclose(h);
  return 0;
}
