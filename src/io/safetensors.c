// Import a Hugging Face GPT-2 checkpoint (model.safetensors) into the fpt
// model-file layout. Everything about the input is checked before the output
// is created; the data are then converted tensor by tensor (a gpt2-xl file is
// 6 GB), and any failure removes the partial output.
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#define _FILE_OFFSET_BITS 64 // fseeko past 2 GB on 32-bit hosts too

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fpt/check.h"
#include "fpt/io.h"

// The reference reader refuses larger headers, and so do we.
#define ST_MAX_HEADER 100000000ull
#define ST_MAX_DIMS 8
#define ST_MAX_LAYERS 4096

typedef struct {
  const char *name; // as in the file (points into the cJSON tree)
  const char *dtype;
  int esize; // bytes per element, 0 for a dtype we do not know
  int ndim;
  int64_t shape[ST_MAX_DIMS];
  uint64_t numel, begin, end; // offsets relative to the data buffer
} st_entry;

typedef struct {
  const char *path;
  FILE *f;
  uint64_t data_start, data_len; // the data buffer, in file bytes
  char *header;
  cJSON *json;
  st_entry *e;
  int n;
} st_file;

// Per-block tensors, in the order they are written; shapes in units of C.
static const struct {
  const char *name;
  int ndim, d0, d1;
} block_tensors[] = {
    {"ln_1.weight", 1, 1, 0},      {"ln_1.bias", 1, 1, 0},          {"attn.c_attn.weight", 2, 1, 3},
    {"attn.c_attn.bias", 1, 3, 0}, {"attn.c_proj.weight", 2, 1, 1}, {"attn.c_proj.bias", 1, 1, 0},
    {"ln_2.weight", 1, 1, 0},      {"ln_2.bias", 1, 1, 0},          {"mlp.c_fc.weight", 2, 1, 4},
    {"mlp.c_fc.bias", 1, 4, 0},    {"mlp.c_proj.weight", 2, 4, 1},  {"mlp.c_proj.bias", 1, 1, 0},
};
enum { N_BLOCK = (int)(sizeof block_tensors / sizeof *block_tensors) };
// Causal-mask buffers of older checkpoints: not parameters.
static const char *const block_skipped[] = {"attn.bias", "attn.masked_bias"};
// Non-block tensors: slots 0..3 of the table below.
enum { G_WTE, G_WPE, G_LNF_W, G_LNF_B, N_GLOBAL };
static const char *const global_names[N_GLOBAL] = {"wte.weight", "wpe.weight", "ln_f.weight",
                                                   "ln_f.bias"};

static int dtype_size(const char *d) {
  static const struct {
    const char *name;
    int size;
  } t[] = {{"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
           {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
           {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8}};
  for (size_t i = 0; i < sizeof t / sizeof *t; i++)
    if (!strcmp(d, t[i].name))
      return t[i].size;
  return 0;
}

// A JSON number that is a non-negative integer exactly representable (< 2^53).
static int json_uint(const cJSON *v, uint64_t *out) {
  if (!cJSON_IsNumber(v))
    return 0;
  double x = v->valuedouble;
  if (!(x >= 0 && x < 9007199254740992.0 && x == floor(x)))
    return 0;
  *out = (uint64_t)x;
  return 1;
}

static int parse_entry(const st_file *s, const cJSON *item, st_entry *e) {
  const char *p = s->path, *nm = item->string;
  e->name = nm;
  FPT_ENSURE(cJSON_IsObject(item), "%s: tensor %s: header entry is not a JSON object", p, nm);
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
  const cJSON *sh = cJSON_GetObjectItemCaseSensitive(item, "shape");
  const cJSON *off = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
  FPT_ENSURE(cJSON_IsString(dt), "%s: tensor %s: \"dtype\" is missing or not a string", p, nm);
  FPT_ENSURE(cJSON_IsArray(sh), "%s: tensor %s: \"shape\" is missing or not an array", p, nm);
  FPT_ENSURE(cJSON_IsArray(off) && cJSON_GetArraySize(off) == 2,
             "%s: tensor %s: \"data_offsets\" is missing or not [begin, end]", p, nm);
  e->dtype = dt->valuestring;
  e->esize = dtype_size(e->dtype);
  e->ndim = cJSON_GetArraySize(sh);
  FPT_ENSURE(e->ndim <= ST_MAX_DIMS, "%s: tensor %s: rank %d is too large", p, nm, e->ndim);
  e->numel = 1;
  for (int i = 0; i < e->ndim; i++) {
    uint64_t d;
    FPT_ENSURE(json_uint(cJSON_GetArrayItem(sh, i), &d) && d < (1ull << 40),
               "%s: tensor %s: \"shape\" holds something other than a dimension", p, nm);
    // Bound the product so that numel * 8 cannot overflow.
    FPT_ENSURE(d == 0 || e->numel <= (1ull << 59) / d, "%s: tensor %s: shape is too large", p, nm);
    e->shape[i] = (int64_t)d;
    e->numel *= d;
  }
  FPT_ENSURE(json_uint(cJSON_GetArrayItem(off, 0), &e->begin) &&
                 json_uint(cJSON_GetArrayItem(off, 1), &e->end) && e->begin <= e->end,
             "%s: tensor %s: \"data_offsets\" is not a pair of integers begin <= end", p, nm);
  FPT_ENSURE(e->end <= s->data_len,
             "%s: tensor %s: data_offsets [%llu, %llu] run past the end of the data "
             "(%llu bytes; file truncated?)",
             p, nm, (unsigned long long)e->begin, (unsigned long long)e->end,
             (unsigned long long)s->data_len);
  // An unknown dtype is an error only if we need the tensor (plan_tensors checks it).
  FPT_ENSURE(e->esize == 0 || e->end - e->begin == e->numel * (uint64_t)e->esize,
             "%s: tensor %s: data_offsets [%llu, %llu] hold %llu bytes, but dtype %s "
             "and shape need %llu",
             p, nm, (unsigned long long)e->begin, (unsigned long long)e->end,
             (unsigned long long)(e->end - e->begin), e->dtype,
             (unsigned long long)(e->numel * (uint64_t)e->esize));
  return 0;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_begin(const void *a, const void *b) {
  const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
  return (x->begin > y->begin) - (x->begin < y->begin);
}

// Tensors' byte ranges must not overlap (else one tensor silently reads
// another's bytes): sorted by start, each must end before the next begins.
static int check_overlap(const st_file *s) {
  const st_entry **by = fpt_calloc((size_t)s->n + 1, sizeof *by);
  for (int j = 0; j < s->n; j++)
    by[j] = &s->e[j];
  qsort(by, (size_t)s->n, sizeof *by, cmp_begin);
  const st_entry *a = NULL, *b = NULL;
  for (int j = 1; j < s->n && !a; j++)
    if (by[j]->begin < by[j - 1]->end && by[j]->end > by[j]->begin) {
      a = by[j - 1];
      b = by[j];
    }
  free(by);
  FPT_ENSURE(!a,
             "%s: tensors %s [%llu, %llu] and %s [%llu, %llu] overlap in the data (data_offsets)",
             s->path, a->name, (unsigned long long)a->begin, (unsigned long long)a->end, b->name,
             (unsigned long long)b->begin, (unsigned long long)b->end);
  return 0;
}

// Read and validate the header and every entry in it.
static int st_open(st_file *s, const char *path) {
  s->path = path;
  s->f = fopen(path, "rb");
  FPT_ENSURE(s->f, "%s: cannot open file for reading (%s)", path, strerror(errno));
  struct stat st;
  FPT_ENSURE(fstat(fileno(s->f), &st) == 0 && S_ISREG(st.st_mode), "%s: not a regular file", path);
  off_t size = st.st_size;
  unsigned char b[8];
  FPT_ENSURE(size >= 8 && fread(b, 1, 8, s->f) == 8,
             "%s: file too short for a safetensors header (%lld bytes)", path, (long long)size);
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--)
    n = n << 8 | b[i];
  FPT_ENSURE(n <= (uint64_t)size - 8,
             "%s: header length %llu is larger than the file (%lld bytes): not a "
             "safetensors file, or truncated",
             path, (unsigned long long)n, (long long)size);
  FPT_ENSURE(n <= ST_MAX_HEADER, "%s: header length %llu exceeds the 100 MB limit", path,
             (unsigned long long)n);
  s->data_start = 8 + n;
  s->data_len = (uint64_t)size - 8 - n;
  s->header = fpt_malloc(n + 1);
  FPT_ENSURE(fread(s->header, 1, n, s->f) == n, "%s: reading the header failed", path);
  s->header[n] = '\0';

  const char *end = NULL;
  s->json = cJSON_ParseWithLengthOpts(s->header, n, &end, 0);
  size_t at = end ? (size_t)(end - s->header) : 0;
  FPT_ENSURE(s->json, "%s: header is not valid JSON (error at header byte %zu)", path, at);
  // The writer pads the header with spaces to a multiple of 8 bytes.
  for (size_t i = at; i < n; i++)
    FPT_ENSURE(strchr(" \t\r\n", s->header[i]) && s->header[i] != '\0',
               "%s: header has trailing bytes after the JSON (at header byte %zu)", path, i);
  FPT_ENSURE(cJSON_IsObject(s->json), "%s: header is not a JSON object", path);

  int count = cJSON_GetArraySize(s->json);
  s->e = fpt_calloc((size_t)count + 1, sizeof *s->e);
  for (const cJSON *it = s->json->child; it; it = it->next) {
    if (!strcmp(it->string, "__metadata__")) {
      FPT_ENSURE(cJSON_IsObject(it), "%s: header field __metadata__ is not an object", path);
      continue;
    }
    FPT_TRY(parse_entry(s, it, &s->e[s->n]));
    s->n++;
  }
  // Names appear once: sorted, then neighbours compared. (Comparing every pair
  // was quadratic: a 1 MB header of 20000 names took 13 s under the fuzzer,
  // tests/fuzz; the 100 MB limit allows millions.)
  const char **names = fpt_calloc((size_t)s->n + 1, sizeof *names);
  for (int j = 0; j < s->n; j++)
    names[j] = s->e[j].name;
  qsort(names, (size_t)s->n, sizeof *names, cmp_name);
  const char *dup = NULL;
  for (int j = 1; j < s->n && !dup; j++)
    if (!strcmp(names[j - 1], names[j]))
      dup = names[j];
  free(names);
  FPT_ENSURE(!dup, "%s: tensor %s appears twice in the header", path, dup);
  return check_overlap(s);
}

static void st_close(st_file *s) {
  if (s->f)
    fclose(s->f);
  cJSON_Delete(s->json);
  free(s->header);
  free(s->e);
}

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, ex = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  uint32_t bits;
  if (ex == 0x1f) // Inf or NaN
    bits = sign | 0x7f800000u | man << 13;
  else if (ex != 0) // normal: rebias the exponent from 15 to 127
    bits = sign | (ex + 112) << 23 | man << 13;
  else { // zero or subnormal: man * 2^-24, exact in float
    float f = (float)man / 16777216.0f;
    return sign ? -f : f;
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

// Read one tensor into `out` (numel floats), converting to float32. The
// bytes are decoded explicitly as little-endian, so the host order is moot.
static int read_tensor(st_file *s, const st_entry *e, float *out) {
  FPT_ENSURE(fseeko(s->f, (off_t)(s->data_start + e->begin), SEEK_SET) == 0,
             "%s: tensor %s: cannot seek to its data", s->path, e->name);
  enum { CHUNK = 1 << 20 }; // elements per read, to bound the staging buffer
  unsigned char *buf = fpt_malloc((size_t)CHUNK * (size_t)e->esize);
  int rc = 0;
  for (uint64_t i0 = 0; i0 < e->numel && rc == 0; i0 += CHUNK) {
    size_t k = e->numel - i0 < CHUNK ? (size_t)(e->numel - i0) : CHUNK;
    if (fread(buf, (size_t)e->esize, k, s->f) != k) {
      fpt_error_set("%s: tensor %s: reading its data failed (file truncated?)", s->path, e->name);
      rc = 1;
      break;
    }
    float *o = out + i0;
    for (size_t j = 0; j < k; j++) {
      const unsigned char *q = buf + j * (size_t)e->esize;
      if (e->esize == 4) {
        uint32_t u =
            (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
        memcpy(&o[j], &u, sizeof u);
      } else {
        uint16_t u = (uint16_t)(q[0] | q[1] << 8);
        if (!strcmp(e->dtype, "F16")) {
          o[j] = half_to_float(u);
        } else { // BF16 is the top half of a float32
          uint32_t w = (uint32_t)u << 16;
          memcpy(&o[j], &w, sizeof w);
        }
      }
    }
    for (size_t j = 0; j < k && rc == 0; j++)
      if (!isfinite(o[j])) {
        fpt_error_set("%s: tensor %s holds %s at element %llu", s->path, e->name,
                      isnan(o[j]) ? "a NaN" : "an Inf", (unsigned long long)(i0 + j));
        rc = 1;
      }
  }
  free(buf);
  return rc;
}

// "h.<i>.<rest>": the block index, and *rest; -1 if the name is not of that form.
static int block_index(const char *rel, const char **rest) {
  if (strncmp(rel, "h.", 2) != 0)
    return -1;
  const char *p = rel + 2;
  int i = 0, nd = 0;
  for (; *p >= '0' && *p <= '9'; p++, nd++) {
    if (nd > 0 && i == 0) // no leading zeros: "h.01" is not block 1
      return -1;
    i = i * 10 + (*p - '0');
    if (i >= ST_MAX_LAYERS)
      return -1;
  }
  if (nd == 0 || *p != '.')
    return -1;
  *rest = p + 1;
  return i;
}

// Everything the import needs, found and checked before writing.
typedef struct {
  const char *prefix; // "" or "transformer."
  int n_layer, C, P;
  const st_entry **slot; // N_GLOBAL + n_layer * N_BLOCK; wte may be NULL
} st_plan;

static const st_entry *find_entry(const st_file *s, const char *prefix, const char *rel) {
  size_t lp = strlen(prefix);
  for (int i = 0; i < s->n; i++)
    if (!strncmp(s->e[i].name, prefix, lp) && !strcmp(s->e[i].name + lp, rel))
      return &s->e[i];
  return NULL;
}

// The name prefix, n_positions and n_embd (from wpe), and n_layer (one more
// than the largest block index seen).
static int plan_shape(const st_file *s, st_plan *pl) {
  const char *p = s->path;
  int plain = find_entry(s, "", "wpe.weight") != NULL;
  int pref = find_entry(s, "transformer.", "wpe.weight") != NULL;
  FPT_ENSURE(!(plain && pref),
             "%s: tensor wpe.weight appears both with and without the \"transformer.\" prefix", p);
  FPT_ENSURE(plain || pref,
             "%s: tensor wpe.weight is missing (not a Hugging Face GPT-2 checkpoint?)", p);
  pl->prefix = pref ? "transformer." : "";
  size_t lp = strlen(pl->prefix);

  const st_entry *wpe = find_entry(s, pl->prefix, "wpe.weight");
  char got[160];
  fpt_format_shape(got, sizeof got, wpe->ndim, wpe->shape);
  FPT_ENSURE(wpe->ndim == 2 && wpe->shape[0] >= 1 && wpe->shape[1] >= 1 &&
                 wpe->shape[0] < (1 << 20) && wpe->shape[1] < (1 << 20),
             "%s: tensor %s has shape %s, expected [n_positions, n_embd]", p, wpe->name, got);
  pl->P = (int)wpe->shape[0];
  pl->C = (int)wpe->shape[1];

  // Blocks: n_layer is one more than the largest index seen.
  pl->n_layer = 0;
  for (int i = 0; i < s->n; i++) {
    const char *rest, *nm = s->e[i].name;
    int l = strncmp(nm, pl->prefix, lp) ? -1 : block_index(nm + lp, &rest);
    if (l + 1 > pl->n_layer)
      pl->n_layer = l + 1;
  }
  FPT_ENSURE(pl->n_layer >= 1, "%s: tensor %sh.0.ln_1.weight is missing (no blocks found)", p,
             pl->prefix);
  return 0;
}

// Every tensor name of the file to its slot; heads and mask buffers skipped.
static int plan_slots(const st_file *s, st_plan *pl) {
  const char *p = s->path;
  size_t lp = strlen(pl->prefix);
  int n_slots = N_GLOBAL + pl->n_layer * N_BLOCK;
  pl->slot = fpt_calloc((size_t)n_slots, sizeof *pl->slot);
  for (int i = 0; i < s->n; i++) {
    const st_entry *e = &s->e[i];
    if (strncmp(e->name, pl->prefix, lp) != 0)
      continue; // outside the GPT2Model, e.g. lm_head.weight
    const char *rel = e->name + lp, *rest;
    int k = -1;
    for (int g = 0; g < N_GLOBAL; g++)
      if (!strcmp(rel, global_names[g]))
        k = g;
    int l = block_index(rel, &rest);
    FPT_ENSURE(l >= 0 || strncmp(rel, "h.", 2) != 0, "%s: tensor %s is not part of a GPT-2 block",
               p, e->name);
    if (l >= 0) {
      int skipped = 0;
      for (size_t j = 0; j < sizeof block_skipped / sizeof *block_skipped; j++)
        skipped |= !strcmp(rest, block_skipped[j]);
      if (skipped)
        continue;
      for (int j = 0; j < N_BLOCK; j++)
        if (!strcmp(rest, block_tensors[j].name))
          k = N_GLOBAL + l * N_BLOCK + j;
      // Inside a block every tensor must be one we know: a stray one means
      // an architecture we would silently get wrong.
      FPT_ENSURE(k >= 0, "%s: tensor %s is not part of a GPT-2 block", p, e->name);
    }
    if (k >= 0)
      pl->slot[k] = e; // names are unique (checked in st_open)
  }
  return 0;
}

// Presence, shape and dtype of everything we will read.
static int plan_check(const st_file *s, const st_plan *pl) {
  const char *p = s->path;
  char got[160];
  for (int k = 0; k < N_GLOBAL + pl->n_layer * N_BLOCK; k++) {
    char want_name[96];
    int ndim;
    int64_t want[2];
    if (k < N_GLOBAL) {
      snprintf(want_name, sizeof want_name, "%s%s", pl->prefix, global_names[k]);
      ndim = k <= G_WPE ? 2 : 1;
      want[0] = k == G_WTE ? (pl->slot[k] ? pl->slot[k]->shape[0] : 1) : k == G_WPE ? pl->P : pl->C;
      want[1] = pl->C;
    } else {
      int l = (k - N_GLOBAL) / N_BLOCK, j = (k - N_GLOBAL) % N_BLOCK;
      snprintf(want_name, sizeof want_name, "%sh.%d.%s", pl->prefix, l, block_tensors[j].name);
      ndim = block_tensors[j].ndim;
      want[0] = (int64_t)block_tensors[j].d0 * pl->C;
      want[1] = (int64_t)block_tensors[j].d1 * pl->C;
    }
    const st_entry *e = pl->slot[k];
    if (!e) {
      if (k == G_WTE)
        continue; // the token embedding is optional: training does not use it
      FPT_FAIL("%s: tensor %s is missing", p, want_name);
    }
    int ok = e->ndim == ndim && e->shape[0] == want[0] && (ndim == 1 || e->shape[1] == want[1]);
    if (k == G_WTE)
      ok = ok && e->shape[0] >= 1 && e->shape[0] < (1 << 30);
    char w[96];
    fpt_format_shape(got, sizeof got, e->ndim, e->shape);
    fpt_format_shape(w, sizeof w, ndim, want);
    FPT_ENSURE(ok, "%s: tensor %s has shape %s, expected %s%s", p, e->name, got,
               k == G_WTE ? "[vocab, n_embd] = " : "", w);
    FPT_ENSURE(!strcmp(e->dtype, "F32") || !strcmp(e->dtype, "F16") || !strcmp(e->dtype, "BF16"),
               "%s: tensor %s has dtype %s (only F32, F16 and BF16 are supported)", p, e->name,
               e->dtype);
  }
  return 0;
}

// Map every tensor name of the file to its slot, and check what will be read.
static int plan_tensors(const st_file *s, st_plan *pl) {
  FPT_TRY(plan_shape(s, pl));
  FPT_TRY(plan_slots(s, pl));
  return plan_check(s, pl);
}

// config.json next to the model file (as the hub stores it), if there is one.
static int read_hf_config(const char *model_path, const st_plan *pl, int *n_head, double *eps) {
  char path[4200];
  const char *slash = strrchr(model_path, '/');
  int dl = slash ? (int)(slash - model_path + 1) : 0;
  snprintf(path, sizeof path, "%.*sconfig.json", dl, model_path);
  FILE *f = fopen(path, "rb");
  if (!f) {
    FPT_ENSURE(errno == ENOENT, "%s: cannot open file for reading (%s)", path, strerror(errno));
    return 0;
  }
  enum { MAX_CONFIG = 1 << 20 };
  char *text = fpt_malloc(MAX_CONFIG + 1);
  size_t len = fread(text, 1, MAX_CONFIG + 1, f);
  int err = ferror(f);
  fclose(f);
  if (err || len > MAX_CONFIG) {
    free(text);
    FPT_FAIL("%s: %s", path, err ? "reading failed" : "larger than 1 MB: not a model config");
  }
  const char *end = NULL;
  cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  size_t at = end ? (size_t)(end - text) : 0;
  free(text);
  if (!cJSON_IsObject(j)) {
    cJSON_Delete(j);
    FPT_FAIL("%s: not a JSON object (error at byte %zu)", path, at);
  }
  // Fields we take, and fields that must agree with the tensors.
  const struct {
    const char *key;
    int want; // -1: take it
  } fields[] = {
      {"n_head", -1}, {"n_embd", pl->C}, {"n_layer", pl->n_layer}, {"n_positions", pl->P}};
  int rc = 0;
  for (size_t i = 0; i < sizeof fields / sizeof *fields && rc == 0; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, fields[i].key);
    uint64_t x;
    if (!v)
      continue;
    if (!json_uint(v, &x) || x < 1 || x >= (1u << 20)) {
      fpt_error_set("%s: field %s is not a positive integer", path, fields[i].key);
      rc = 1;
    } else if (fields[i].want < 0) {
      *n_head = (int)x;
    } else if ((int)x != fields[i].want) {
      fpt_error_set("%s: field %s = %d disagrees with the model file's tensors (%d)", path,
                    fields[i].key, (int)x, fields[i].want);
      rc = 1;
    }
  }
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "layer_norm_epsilon");
  if (rc == 0 && e) {
    if (cJSON_IsNumber(e) && e->valuedouble > 0 && e->valuedouble < 1) {
      *eps = e->valuedouble;
    } else {
      fpt_error_set("%s: field layer_norm_epsilon is not a number in (0, 1)", path);
      rc = 1;
    }
  }
  cJSON_Delete(j);
  return rc;
}

static int write_model(st_file *s, const st_plan *pl, int n_head, double eps,
                       const char *out_path) {
  fpt_h5_out o;
  FPT_TRY(fpt_h5_out_create(&o, out_path));
  int rc = fpt_h5_write_attr_i64(o.file, "n_layer", pl->n_layer) ||
           fpt_h5_write_attr_i64(o.file, "n_head", n_head) ||
           fpt_h5_write_attr_i64(o.file, "n_embd", pl->C) ||
           fpt_h5_write_attr_i64(o.file, "n_positions", pl->P) ||
           fpt_h5_write_attr_f64(o.file, "layer_norm_epsilon", eps) ||
           fpt_h5_write_attr_i64(o.file, "format_version", FPT_MODEL_FORMAT_VERSION);
  int n_slots = N_GLOBAL + pl->n_layer * N_BLOCK;
  for (int k = 0; k < n_slots && rc == 0; k++) {
    const st_entry *e = pl->slot[k];
    if (!e)
      continue; // absent wte
    // The model-file name is the state-dict name with '.' -> '/'.
    char h5name[128];
    snprintf(h5name, sizeof h5name, "/%s", e->name + strlen(pl->prefix));
    for (char *c = h5name; *c; c++)
      if (*c == '.')
        *c = '/';
    float *data = fpt_malloc(e->numel ? e->numel * sizeof(float) : 1);
    rc = read_tensor(s, e, data);
    if (rc == 0) // the helper's message names the file and the cause
      rc = fpt_h5_write_floats(o.file, h5name, e->ndim, e->shape, data);
    free(data);
  }
  if (rc != 0) {
    fpt_h5_out_abort(&o);
    return rc;
  }
  return fpt_h5_out_commit(&o);
}

int fpt_import_safetensors_heads(const char *in_path, const char *out_path, int n_head) {
  st_file s = {0};
  st_plan pl = {0};
  int rc = st_open(&s, in_path);
  if (rc == 0)
    rc = plan_tensors(&s, &pl);
  int heads = 0;
  double eps = 1e-5;
  if (rc == 0)
    rc = read_hf_config(in_path, &pl, &heads, &eps);
  if (rc == 0) {
    if (n_head > 0) // the caller's override beats config.json
      heads = n_head;
    if (heads == 0 && pl.C % 64 == 0)
      heads = pl.C / 64; // head size 64 in all four GPT-2 sizes
    if (heads == 0) {
      fpt_error_set("%s: n_head is unknown (no config.json beside it and n_embd = %d is "
                    "not a multiple of 64): give --heads",
                    in_path, pl.C);
      rc = 1;
    } else if (pl.C % heads != 0) {
      fpt_error_set("%s: n_embd = %d is not divisible by n_head = %d", in_path, pl.C, heads);
      rc = 1;
    }
  }
  if (rc == 0)
    rc = write_model(&s, &pl, heads, eps, out_path);
  free(pl.slot);
  st_close(&s);
  return rc;
}

int fpt_import_safetensors(const char *in_path, const char *out_path) {
  return fpt_import_safetensors_heads(in_path, out_path, 0);
}
