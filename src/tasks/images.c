// Image datasets (MNIST / Fashion-MNIST IDX files, CIFAR-10 binary batches)
// into FPT patch tokens, and the reference's CIFAR-10 training augmentation.
// Layouts, normalisation and augmentation are documented in fpt/images.h.
//
// Every file is read and checked completely before the dataset is filled; a
// failure records one message naming the file (and the record) and leaves the
// dataset without allocations.
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#define _FILE_OFFSET_BITS 64

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "fpt/check.h"
#include "fpt/dataset.h"
#include "fpt/images.h"
#include "fpt/rng.h"
#include "fpt/task_registry.h"

const float fpt_cifar_mean[3] = {0.4914f, 0.4822f, 0.4465f};
const float fpt_cifar_std[3] = {0.2023f, 0.1994f, 0.2010f};

#define IMG_PATH_MAX 1024
#define IDX_IMAGE_MAGIC 2051u // 0x00000803: unsigned byte, 3 dimensions
#define IDX_LABEL_MAGIC 2049u // 0x00000801: unsigned byte, 1 dimension
#define IDX_SIDE 28
#define CIFAR_SIDE 32
#define CIFAR_PIXELS (CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD (1 + 3 * CIFAR_PIXELS)
#define PATCH 4

// ---------------------------------------------------------------------------
// Token layout

void fpt_image_to_tokens(const float *img, int C, int H, int W, int p, float *tokens) {
  int gw = W / p, tw = p * p * C;
  for (int r = 0; r < H; r++)
    for (int c = 0; c < W; c++) {
      float *t = tokens + (size_t)((r / p) * gw + c / p) * tw + ((r % p) * p + c % p) * C;
      for (int ch = 0; ch < C; ch++)
        t[ch] = img[((size_t)ch * H + r) * W + c];
    }
}

void fpt_tokens_to_image(const float *tokens, int C, int H, int W, int p, float *img) {
  int gw = W / p, tw = p * p * C;
  for (int r = 0; r < H; r++)
    for (int c = 0; c < W; c++) {
      const float *t = tokens + (size_t)((r / p) * gw + c / p) * tw + ((r % p) * p + c % p) * C;
      for (int ch = 0; ch < C; ch++)
        img[((size_t)ch * H + r) * W + c] = t[ch];
    }
}

// ---------------------------------------------------------------------------
// Files

static int join_path(char *out, const char *dir, const char *name, const char *ext) {
  int n = snprintf(out, IMG_PATH_MAX, "%s/%s%s", dir, name, ext);
  FPT_ENSURE(n > 0 && n < IMG_PATH_MAX, "%s/%s%s: path too long", dir, name, ext);
  return 0;
}

static void append_source(fpt_dataset *d, const char *path) {
  size_t used = strlen(d->sources);
  snprintf(d->sources + used, sizeof d->sources - used, "%s%s", used ? "; " : "", path);
}

// An IDX file being read: raw or gzipped (zlib reads both transparently).
typedef struct {
  char path[IMG_PATH_MAX];
  gzFile f;
} idx_file;

static int idx_open(const char *dir, const char *name, idx_file *x) {
  struct stat st;
  FPT_TRY(join_path(x->path, dir, name, ""));
  if (stat(x->path, &st) != 0) {
    FPT_TRY(join_path(x->path, dir, name, ".gz"));
    FPT_ENSURE(stat(x->path, &st) == 0, "%s/%s: not found (neither raw nor .gz)", dir, name);
  }
  FPT_ENSURE(!S_ISDIR(st.st_mode), "%s: is a directory", x->path);
  x->f = gzopen(x->path, "rb");
  FPT_ENSURE(x->f, "%s: cannot open: %s", x->path, strerror(errno ? errno : ENOMEM));
  gzbuffer(x->f, 1 << 18);
  return 0;
}

static void idx_close(idx_file *x) {
  if (x->f)
    gzclose(x->f);
  x->f = NULL;
}

// Read up to n bytes; *got = bytes read before end of file. A truncated gzip
// stream counts as end of file (the caller reports the truncated record);
// corrupt compressed data is an error.
static int gz_read(idx_file *x, void *buf, size_t n, size_t *got) {
  *got = 0;
  while (*got < n) {
    size_t want = n - *got;
    if (want > (1u << 30))
      want = 1u << 30;
    int r = gzread(x->f, (char *)buf + *got, (unsigned)want);
    if (r < 0) {
      int errnum = 0;
      const char *msg = gzerror(x->f, &errnum);
      if (errnum == Z_BUF_ERROR) // "unexpected end of file"
        break;
      FPT_FAIL("%s: read error after %zu bytes: %s", x->path, *got,
               errnum == Z_ERRNO ? strerror(errno) : msg);
    }
    if (r == 0)
      break;
    *got += (size_t)r;
  }
  // zlib may also report a truncated stream with a short read and no -1.
  if (*got < n) {
    int errnum = 0;
    const char *msg = gzerror(x->f, &errnum);
    FPT_ENSURE(errnum == Z_OK || errnum == Z_BUF_ERROR, "%s: read error: %s", x->path, msg);
  }
  return 0;
}

static uint32_t be32(const unsigned char *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

// Header: magic, then ndim big-endian uint32 dimensions.
static int idx_header(idx_file *x, uint32_t magic, int ndim, uint32_t *dims) {
  unsigned char h[16];
  size_t len = 4 * (size_t)(1 + ndim), got;
  FPT_TRY(gz_read(x, h, len, &got));
  FPT_ENSURE(got == len, "%s: truncated header (%zu of %zu bytes)", x->path, got, len);
  uint32_t m = be32(h);
  FPT_ENSURE(m == magic, "%s: magic number %u, expected %u", x->path, m, magic);
  for (int i = 0; i < ndim; i++)
    dims[i] = be32(h + 4 + 4 * i);
  FPT_ENSURE(dims[0] <= INT32_MAX, "%s: record count %u too large", x->path, dims[0]);
  if (ndim == 3)
    FPT_ENSURE(dims[1] == IDX_SIDE && dims[2] == IDX_SIDE, "%s: image size %ux%u, expected %dx%d",
               x->path, dims[1], dims[2], IDX_SIDE, IDX_SIDE);
  return 0;
}

// n records of rec bytes into *out (allocated here, grown as data arrive so
// that a corrupt count cannot demand memory the file does not back).
static int idx_records(idx_file *x, int64_t n, size_t rec, unsigned char **out) {
  size_t total = (size_t)n * rec, have = 0, cap = 0;
  unsigned char *buf = NULL;
  int rc = 0;
  while (have < total) {
    size_t want = total - have, got;
    if (want > ((size_t)64 << 20))
      want = (size_t)64 << 20;
    if (have + want > cap) {
      cap = have + want > 2 * cap ? have + want : 2 * cap;
      if (cap > total)
        cap = total;
      unsigned char *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        fprintf(stderr, "fpt: error: out of memory reading %s\n", x->path);
        exit(2);
      }
      buf = nb;
    }
    if ((rc = gz_read(x, buf + have, want, &got)) != 0)
      goto fail;
    have += got;
    if (got < want) {
      fpt_error_set("%s: record %lld: truncated (%lld of %lld records complete)", x->path,
                    (long long)(have / rec), (long long)(have / rec), (long long)n);
      rc = 1;
      goto fail;
    }
  }
  unsigned char extra;
  size_t got;
  if ((rc = gz_read(x, &extra, 1, &got)) != 0)
    goto fail;
  if (got) {
    fpt_error_set("%s: data after the last record (%lld records declared)", x->path, (long long)n);
    rc = 1;
    goto fail;
  }
  *out = buf ? buf : fpt_malloc(1);
  return 0;
fail:
  free(buf);
  return rc;
}

// One split: an image file and its label file, checked, as bytes.
typedef struct {
  int64_t n;
  unsigned char *pix; // n x 784
  unsigned char *lab; // n
} idx_split;

static int idx_read_split(const char *dir, const char *img_name, const char *lbl_name,
                          fpt_dataset *d, idx_split *s) {
  idx_file im = {{0}, NULL}, lb = {{0}, NULL};
  uint32_t di[3], dl[1];
  int rc;
  if ((rc = idx_open(dir, img_name, &im)) || (rc = idx_open(dir, lbl_name, &lb)))
    goto done;
  append_source(d, im.path);
  append_source(d, lb.path);
  if ((rc = idx_header(&im, IDX_IMAGE_MAGIC, 3, di)) ||
      (rc = idx_header(&lb, IDX_LABEL_MAGIC, 1, dl)))
    goto done;
  if (dl[0] != di[0]) {
    fpt_error_set("%s: %u labels, but %s holds %u images", lb.path, dl[0], im.path, di[0]);
    rc = 1;
    goto done;
  }
  s->n = di[0];
  if ((rc = idx_records(&im, s->n, IDX_SIDE * IDX_SIDE, &s->pix)) ||
      (rc = idx_records(&lb, s->n, 1, &s->lab)))
    goto done;
  for (int64_t i = 0; i < s->n; i++)
    if (s->lab[i] > 9) {
      fpt_error_set("%s: record %lld: label %u > 9", lb.path, (long long)i, s->lab[i]);
      rc = 1;
      goto done;
    }
done:
  idx_close(&im);
  idx_close(&lb);
  return rc;
}

// Token element j -> source pixel index, or -1 for padding.
static void idx_token_map(int pad32, int *map) {
  int side = pad32 ? 32 : IDX_SIDE, off = pad32 ? 2 : 0;
  float *img = fpt_malloc(sizeof(float) * side * side);
  float *tok = fpt_malloc(sizeof(float) * side * side);
  for (int r = 0; r < side; r++)
    for (int c = 0; c < side; c++) {
      int sr = r - off, sc = c - off;
      int in = sr >= 0 && sr < IDX_SIDE && sc >= 0 && sc < IDX_SIDE;
      img[r * side + c] = in ? (float)(sr * IDX_SIDE + sc) : -1.0f;
    }
  fpt_image_to_tokens(img, 1, side, side, PATCH, tok);
  for (int j = 0; j < side * side; j++)
    map[j] = (int)tok[j];
  free(img);
  free(tok);
}

int fpt_idx_load(const char *dir, const char *task, int pad32, fpt_dataset *d) {
  memset(d, 0, sizeof *d);
  FPT_ENSURE(task && (!strcmp(task, "mnist") || !strcmp(task, "fashion-mnist")),
             "unknown IDX image task '%s' (mnist, fashion-mnist)", task ? task : "(null)");
  if (!dir) {
    FPT_ENSURE(!strcmp(task, "fashion-mnist"), "%s: no data directory given", task);
    dir = FPT_FASHION_MNIST_DIR;
  }
  snprintf(d->task, sizeof d->task, "%s", task);
  int side = pad32 ? 32 : IDX_SIDE;
  d->seq = (side / PATCH) * (side / PATCH);
  d->d_in = PATCH * PATCH;
  d->vocab = 0;
  d->n_classes = 10;
  d->K = 1;
  d->r = 1;
  d->pad_id = -1;

  idx_split tr = {0, NULL, NULL}, te = {0, NULL, NULL};
  int rc = idx_read_split(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", d, &tr);
  if (!rc)
    rc = idx_read_split(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", d, &te);
  if (!rc) {
    int map[32 * 32], len = side * side;
    float lut[256];
    idx_token_map(pad32, map);
    for (int b = 0; b < 256; b++)
      lut[b] = (float)b / 255.0f;
    idx_split *src[2] = {&tr, &te};
    int dst[2] = {FPT_TRAIN, FPT_TEST};
    for (int k = 0; k < 2; k++) {
      fpt_dataset_alloc(d, dst[k], src[k]->n);
      fpt_split *sp = &d->split[dst[k]];
      for (int64_t i = 0; i < src[k]->n; i++) {
        const unsigned char *px = src[k]->pix + i * IDX_SIDE * IDX_SIDE;
        float *x = sp->x + i * len;
        for (int j = 0; j < len; j++)
          x[j] = map[j] < 0 ? 0.0f : lut[px[map[j]]];
        sp->y[i] = src[k]->lab[i];
      }
    }
  }
  free(tr.pix);
  free(tr.lab);
  free(te.pix);
  free(te.lab);
  if (rc)
    fpt_dataset_free(d);
  return rc;
}

// ---------------------------------------------------------------------------
// CIFAR-10

static const char *const cifar_train_files[5] = {"data_batch_1.bin", "data_batch_2.bin",
                                                 "data_batch_3.bin", "data_batch_4.bin",
                                                 "data_batch_5.bin"};

typedef struct {
  int64_t n;
  unsigned char *rec; // n x 3073
} cifar_file;

static int cifar_read(const char *dir, const char *name, fpt_dataset *d, cifar_file *cf) {
  char path[IMG_PATH_MAX];
  FPT_TRY(join_path(path, dir, name, ""));
  append_source(d, path);
  FILE *f = fopen(path, "rb");
  FPT_ENSURE(f, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
    fclose(f);
    FPT_FAIL("%s: not a readable file", path);
  }
  long long size = (long long)st.st_size;
  if (size == 0 || size % CIFAR_RECORD) {
    fclose(f);
    if (size == 0)
      FPT_FAIL("%s: empty file", path);
    FPT_FAIL("%s: size %lld bytes is not a multiple of the %d-byte record (record %lld is "
             "truncated)",
             path, size, CIFAR_RECORD, size / CIFAR_RECORD);
  }
  cf->n = size / CIFAR_RECORD;
  cf->rec = fpt_malloc((size_t)size);
  size_t got = fread(cf->rec, 1, (size_t)size, f);
  int err = ferror(f);
  fclose(f);
  if (got != (size_t)size) {
    free(cf->rec);
    cf->rec = NULL;
    FPT_FAIL("%s: record %lld: read error%s%s", path, (long long)(got / CIFAR_RECORD),
             err ? ": " : " (file shrank?)", err ? strerror(errno) : "");
  }
  for (int64_t i = 0; i < cf->n; i++) {
    unsigned lab = cf->rec[i * CIFAR_RECORD];
    if (lab > 9) {
      free(cf->rec);
      cf->rec = NULL;
      FPT_FAIL("%s: record %lld: label %u > 9", path, (long long)i, lab);
    }
  }
  return 0;
}

// One 3073-byte record -> tokens.
static void cifar_tokens(const unsigned char *rec, int lra, const int *map, const float *lut,
                         float *x) {
  const unsigned char *px = rec + 1;
  if (lra) {
    // lut[b] = b / 255 (ToTensor).
    // torchvision rgb_to_grayscale on float tensors, then Normalize(0.5, 0.5).
    for (int j = 0; j < CIFAR_PIXELS; j++) {
      float r = lut[px[j]], g = lut[px[CIFAR_PIXELS + j]], b = lut[px[2 * CIFAR_PIXELS + j]];
      float y = 0.2989f * r + 0.587f * g + 0.114f * b;
      x[j] = (y - 0.5f) / 0.5f;
    }
  } else {
    // lut holds (b/255 - mean[ch]) / std[ch] for channel ch at lut[256 * ch + b],
    // computed exactly as Normalize does it; the channel is fastest in a token.
    for (int j = 0; j < 3 * CIFAR_PIXELS; j += 3) {
      x[j] = lut[px[map[j]]];
      x[j + 1] = lut[256 + px[map[j + 1]]];
      x[j + 2] = lut[512 + px[map[j + 2]]];
    }
  }
}

int fpt_cifar_load(const char *dir, int lra, fpt_dataset *d) {
  memset(d, 0, sizeof *d);
  FPT_ENSURE(dir, "cifar10: no data directory given");
  snprintf(d->task, sizeof d->task, "%s", lra ? "cifar10-lra" : "cifar10");
  d->seq = lra ? CIFAR_PIXELS : (CIFAR_SIDE / PATCH) * (CIFAR_SIDE / PATCH);
  d->d_in = lra ? 1 : PATCH * PATCH * 3;
  d->vocab = 0;
  d->n_classes = 10;
  d->K = 1;
  d->r = 1;
  d->pad_id = -1;

  cifar_file files[6];
  memset(files, 0, sizeof files);
  int rc = 0;
  for (int k = 0; k < 6 && !rc; k++)
    rc = cifar_read(dir, k < 5 ? cifar_train_files[k] : "test_batch.bin", d, &files[k]);
  if (!rc) {
    // Token element j -> byte offset of its pixel in the record's planes.
    int map[3 * CIFAR_PIXELS];
    float lut[3 * 256];
    {
      float *img = fpt_malloc(sizeof(float) * 3 * CIFAR_PIXELS);
      float *tok = fpt_malloc(sizeof(float) * 3 * CIFAR_PIXELS);
      for (int j = 0; j < 3 * CIFAR_PIXELS; j++)
        img[j] = (float)j; // planar R, G, B as in the file
      fpt_image_to_tokens(img, 3, CIFAR_SIDE, CIFAR_SIDE, PATCH, tok);
      for (int j = 0; j < 3 * CIFAR_PIXELS; j++)
        map[j] = (int)tok[j];
      free(img);
      free(tok);
    }
    for (int b = 0; b < 256; b++)
      for (int ch = 0; ch < 3; ch++)
        lut[256 * ch + b] =
            lra ? (float)b / 255.0f : ((float)b / 255.0f - fpt_cifar_mean[ch]) / fpt_cifar_std[ch];
    int64_t ntrain = 0;
    for (int k = 0; k < 5; k++)
      ntrain += files[k].n;
    fpt_dataset_alloc(d, FPT_TRAIN, ntrain);
    fpt_dataset_alloc(d, FPT_TEST, files[5].n);
    size_t w = (size_t)d->seq * d->d_in;
    int64_t i = 0;
    for (int k = 0; k < 6; k++) {
      fpt_split *sp = &d->split[k < 5 ? FPT_TRAIN : FPT_TEST];
      if (k == 5)
        i = 0;
      for (int64_t r = 0; r < files[k].n; r++, i++) {
        const unsigned char *rec = files[k].rec + r * CIFAR_RECORD;
        cifar_tokens(rec, lra, map, lut, sp->x + i * w);
        sp->y[i] = rec[0];
      }
    }
  }
  for (int k = 0; k < 6; k++)
    free(files[k].rec);
  if (rc)
    fpt_dataset_free(d);
  return rc;
}

// ---------------------------------------------------------------------------
// Augmentation

fpt_aug_params fpt_cifar_augment_params(uint64_t seed, uint32_t step, int64_t sample) {
  uint64_t s = (uint64_t)sample;
  fpt_stream st = {seed, FPT_SITE_AUGMENT, step, (uint32_t)s};
  fpt_u32x4 b = fpt_stream_block(st, (uint32_t)(s >> 32));
  fpt_aug_params p;
  p.dy = (int)(((uint64_t)b.v[0] * 9) >> 32); // uniform in 0..8
  p.dx = (int)(((uint64_t)b.v[1] * 9) >> 32);
  p.flip = (int)(b.v[2] >> 31);
  p.angle = -20.0f + 40.0f * ((float)(b.v[3] >> 8) * (1.0f / 16777216.0f));
  return p;
}

void fpt_cifar_augment_with(const float *tokens_in, float *tokens_out, int lra, fpt_aug_params p) {
  enum { S = CIFAR_SIDE };
  int C = lra ? 1 : 3;
  float img[3 * CIFAR_PIXELS], fill[3];
  if (lra) {
    memcpy(img, tokens_in, sizeof(float) * CIFAR_PIXELS);
    fill[0] = (0.0f - 0.5f) / 0.5f;
  } else {
    fpt_tokens_to_image(tokens_in, 3, S, S, PATCH, img);
    for (int ch = 0; ch < 3; ch++)
      fill[ch] = (0.0f - fpt_cifar_mean[ch]) / fpt_cifar_std[ch];
  }
  // Output pixel -> source pixel index (or -1 = fill), composing the three
  // steps backwards: rotation samples the flipped crop, which reads the
  // zero-padded original.
  double th = (double)p.angle * 3.14159265358979323846 / 180.0;
  float cs = (float)cos(th), sn = (float)sin(th);
  int src[CIFAR_PIXELS];
  for (int r = 0; r < S; r++)
    for (int c = 0; c < S; c++) {
      // Pixel centres relative to the image centre (torchvision's affine grid),
      // inverse rotation, back to pixel indices (grid_sample, align_corners
      // false), nearest with ties to even.
      float x = (float)c - 15.5f, y = (float)r - 15.5f;
      float fx = (x * cs - y * sn) + 15.5f;
      float fy = (x * sn + y * cs) + 15.5f;
      int ix = (int)nearbyintf(fx), iy = (int)nearbyintf(fy);
      int s = -1;
      if (ix >= 0 && ix < S && iy >= 0 && iy < S) {
        int cx = p.flip ? S - 1 - ix : ix;
        int sy = iy + p.dy - 4, sx = cx + p.dx - 4;
        if (sy >= 0 && sy < S && sx >= 0 && sx < S)
          s = sy * S + sx;
      }
      src[r * S + c] = s;
    }
  float out[3 * CIFAR_PIXELS];
  for (int ch = 0; ch < C; ch++)
    for (int j = 0; j < CIFAR_PIXELS; j++)
      out[ch * CIFAR_PIXELS + j] = src[j] < 0 ? fill[ch] : img[ch * CIFAR_PIXELS + src[j]];
  if (lra)
    memcpy(tokens_out, out, sizeof(float) * CIFAR_PIXELS);
  else
    fpt_image_to_tokens(out, 3, S, S, PATCH, tokens_out);
}

void fpt_cifar_augment(const float *tokens_in, float *tokens_out, int lra, uint64_t seed,
                       uint32_t step, int64_t sample) {
  fpt_cifar_augment_with(tokens_in, tokens_out, lra, fpt_cifar_augment_params(seed, step, sample));
}

// ---------------------------------------------------------------------------
// Task table hooks (fpt/task_registry.h): the mnist, fashion-mnist, cifar10
// and cifar10-lra rows.

int fpt_idx_build(const fpt_task_def *t, const fpt_task_args *a, fpt_dataset *d) {
  return fpt_idx_load(a->input, t->name, a->pad32, d);
}

static int cifar_build(const fpt_task_def *t, const fpt_task_args *a, int lra, fpt_dataset *d) {
  FPT_ENSURE(a->input,
             "fpt data %s: --input DIR (with data_batch_1..5.bin, test_batch.bin) is required",
             t->name);
  return fpt_cifar_load(a->input, lra, d);
}

int fpt_cifar10_build(const fpt_task_def *t, const fpt_task_args *a, fpt_dataset *d) {
  return cifar_build(t, a, 0, d);
}

int fpt_cifar10_lra_build(const fpt_task_def *t, const fpt_task_args *a, fpt_dataset *d) {
  return cifar_build(t, a, 1, d);
}

static void augment_rgb(float *x, uint64_t seed, uint32_t epoch, int64_t sample) {
  fpt_cifar_augment(x, x, 0, seed, epoch, sample);
}

static void augment_grey(float *x, uint64_t seed, uint32_t epoch, int64_t sample) {
  fpt_cifar_augment(x, x, 1, seed, epoch, sample);
}

const fpt_task_transform fpt_cifar10_augmentation = {
    "the paper's CIFAR-10 augmentation (crop, flip, rotation)", 64, 48, augment_rgb};
const fpt_task_transform fpt_cifar10_lra_augmentation = {
    "the paper's CIFAR-10 augmentation (crop, flip, rotation)", CIFAR_PIXELS, 1, augment_grey};
