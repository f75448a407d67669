// Image datasets: the patch-token layout (generic, IDX with and without the
// 32x32 padding, CIFAR-10 RGB and grey), normalisation, the loaders' checks of
// corrupt files, and the CIFAR-10 augmentation (identities, determinism in
// (seed, step, sample), value range, draw ranges).
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "fpt/check.h"
#include "fpt/dataset.h"
#include "fpt/images.h"

// ---------------------------------------------------------------------------
// Helpers: a scratch directory and files in the real formats.

static char tmpdir[256];
static char *files[64];
static int n_files;

static void track(const char *path) {
  for (int i = 0; i < n_files; i++)
    if (!strcmp(files[i], path))
      return;
  files[n_files++] = strdup(path);
}

// Remove the scratch files (and any error left by a failed test).
static void clean_dir(void) {
  fpt_error_clear();
  for (int i = 0; i < n_files; i++) {
    unlink(files[i]);
    free(files[i]);
  }
  n_files = 0;
}

static int setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/fpt_test_images_XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  clean_dir();
  return rmdir(tmpdir);
}

static void put_file(const char *name, const void *data, size_t n, int gz) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s%s", tmpdir, name, gz ? ".gz" : "");
  track(path);
  if (gz) {
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
    assert_int_equal(gzclose(f), Z_OK);
  } else {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
  }
}

static void del_file(const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  unlink(path);
}

static void be32(unsigned char *b, uint32_t v) {
  b[0] = (unsigned char)(v >> 24);
  b[1] = (unsigned char)(v >> 16);
  b[2] = (unsigned char)(v >> 8);
  b[3] = (unsigned char)v;
}

// Pixel (r, c) of IDX image i.
static unsigned char idx_pixel(int i, int r, int c) {
  return (unsigned char)((r * 28 + c) * 7 + 31 * i + 1);
}

// IDX image and label files of n images (labels (3i + 1) % 10), optionally
// with one field broken.
typedef struct {
  uint32_t img_magic, lbl_magic, rows, lbl_count;
  size_t cut_img; // bytes dropped from the end of the image file
  int bad_label;  // record given label 10 (or -1)
  int trailing;   // extra byte after the images
} idx_opts;

static void put_idx(const char *prefix, int n, int gz, idx_opts o) {
  size_t isz = 16 + (size_t)n * 784 + (o.trailing ? 1 : 0);
  unsigned char *im = calloc(isz, 1), *lb = calloc(8 + (size_t)n, 1);
  be32(im, o.img_magic ? o.img_magic : 2051);
  be32(im + 4, (uint32_t)n);
  be32(im + 8, o.rows ? o.rows : 28);
  be32(im + 12, 28);
  for (int i = 0; i < n; i++)
    for (int r = 0; r < 28; r++)
      for (int c = 0; c < 28; c++)
        im[16 + (size_t)i * 784 + r * 28 + c] = idx_pixel(i, r, c);
  be32(lb, o.lbl_magic ? o.lbl_magic : 2049);
  be32(lb + 4, o.lbl_count ? o.lbl_count : (uint32_t)n);
  for (int i = 0; i < n; i++)
    lb[8 + i] = (unsigned char)(i == o.bad_label ? 10 : (3 * i + 1) % 10);
  char name[128];
  snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
  put_file(name, im, isz - o.cut_img, gz);
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
  put_file(name, lb, 8 + (size_t)n, gz);
  free(im);
  free(lb);
}

static const idx_opts ok_opts = {0, 0, 0, 0, 0, -1, 0};

// CIFAR byte of record i: label, then planes.
static unsigned char cifar_byte(int i, int ch, int r, int c) {
  return (unsigned char)(ch * 85 + r * 32 + c * 5 + 13 * i);
}

static void put_cifar(const char *name, int n, int first, int extra_bytes, int bad_label) {
  size_t sz = (size_t)n * 3073 + (size_t)extra_bytes;
  unsigned char *b = calloc(sz, 1);
  for (int i = 0; i < n; i++) {
    unsigned char *rec = b + (size_t)i * 3073;
    rec[0] = (unsigned char)(i == bad_label ? 11 : (first + i) % 10);
    for (int ch = 0; ch < 3; ch++)
      for (int r = 0; r < 32; r++)
        for (int c = 0; c < 32; c++)
          rec[1 + ch * 1024 + r * 32 + c] = cifar_byte(first + i, ch, r, c);
  }
  put_file(name, b, sz, 0);
  free(b);
}

// Train batches of 2, 1, 3, 1, 2 records (global indices 0..8), test 3.
static const int cifar_counts[5] = {2, 1, 3, 1, 2};

static void put_cifar_set(void) {
  int first = 0;
  for (int k = 0; k < 5; k++) {
    char name[64];
    snprintf(name, sizeof name, "data_batch_%d.bin", k + 1);
    put_cifar(name, cifar_counts[k], first, 0, -1);
    first += cifar_counts[k];
  }
  put_cifar("test_batch.bin", 3, 100, 0, -1);
}

static void expect_error(int rc, const fpt_dataset *d, const char *file, const char *what) {
  assert_int_not_equal(rc, 0);
  const char *msg = fpt_error_get();
  if (!strstr(msg, file) || !strstr(msg, what))
    fail_msg("error '%s' should name '%s' and say '%s'", msg, file, what);
  for (int s = 0; s < 3; s++) {
    assert_null(d->split[s].x);
    assert_null(d->split[s].y);
  }
  fpt_error_clear();
}

// ---------------------------------------------------------------------------
// Token layout

static void test_token_layout(void **state) {
  (void)state;
  enum { C = 3, H = 32, W = 32, P = 4 };
  static float img[C * H * W], tok[C * H * W], back[C * H * W];
  for (int ch = 0; ch < C; ch++)
    for (int r = 0; r < H; r++)
      for (int c = 0; c < W; c++)
        img[(ch * H + r) * W + c] = (float)(ch * 10000 + r * 100 + c);
  fpt_image_to_tokens(img, C, H, W, P, tok);
  for (int ch = 0; ch < C; ch++)
    for (int r = 0; r < H; r++)
      for (int c = 0; c < W; c++) {
        int t = (r / P) * (W / P) + c / P, k = ((r % P) * P + c % P) * C + ch;
        assert_float_equal(tok[t * P * P * C + k], ch * 10000 + r * 100 + c, 0);
      }
  // Token 9 = grid (1, 1): its first element is pixel (4, 4) of R, then G, B.
  assert_float_equal(tok[9 * 48 + 0], 404, 0);
  assert_float_equal(tok[9 * 48 + 1], 10404, 0);
  assert_float_equal(tok[9 * 48 + 3], 405, 0);
  assert_float_equal(tok[9 * 48 + 12], 504, 0);
  fpt_tokens_to_image(tok, C, H, W, P, back);
  assert_memory_equal(back, img, sizeof img);
}

static void check_idx_split(const fpt_dataset *d, int s, int n, int pad32) {
  const fpt_split *sp = &d->split[s];
  int off = pad32 ? 2 : 0, g = pad32 ? 8 : 7;
  assert_int_equal(sp->n, n);
  for (int i = 0; i < n; i++) {
    const float *x = sp->x + (size_t)i * d->seq * 16;
    assert_int_equal(sp->y[i], (3 * i + 1) % 10);
    int seen = 0;
    for (int r = 0; r < 28; r++)
      for (int c = 0; c < 28; c++) {
        int pr = r + off, pc = c + off;
        int t = (pr / 4) * g + pc / 4, k = (pr % 4) * 4 + pc % 4;
        assert_float_equal(x[t * 16 + k], idx_pixel(i, r, c) / 255.0f, 0);
        seen++;
      }
    assert_int_equal(seen, 784);
    if (pad32) // the 2-pixel border is zero
      for (int pr = 0; pr < 32; pr++)
        for (int pc = 0; pc < 32; pc++)
          if (pr < 2 || pr >= 30 || pc < 2 || pc >= 30)
            assert_float_equal(x[((pr / 4) * 8 + pc / 4) * 16 + (pr % 4) * 4 + pc % 4], 0, 0);
    for (int j = 0; j < d->seq * 16; j++)
      assert_true(x[j] >= 0.0f && x[j] <= 1.0f);
  }
}

// Train raw, test gzipped; 28x28 (49 tokens) and padded 32x32 (64 tokens).
static void test_idx_layout(void **state) {
  (void)state;
  clean_dir();
  put_idx("train", 5, 0, ok_opts);
  put_idx("t10k", 3, 1, ok_opts);
  for (int pad32 = 0; pad32 <= 1; pad32++) {
    fpt_dataset d;
    int rc = fpt_idx_load(tmpdir, "mnist", pad32, &d);
    if (rc)
      fail_msg("%s", fpt_error_get());
    assert_string_equal(d.task, "mnist");
    assert_int_equal(d.seq, pad32 ? 64 : 49);
    assert_int_equal(d.d_in, 16);
    assert_int_equal(d.vocab, 0);
    assert_int_equal(d.n_classes, 10);
    assert_int_equal(d.K, 1);
    assert_int_equal(d.r, 1);
    assert_int_equal(d.pad_id, -1);
    assert_int_equal(d.split[FPT_VAL].n, 0);
    assert_non_null(strstr(d.sources, "train-images-idx3-ubyte;"));
    assert_non_null(strstr(d.sources, "t10k-labels-idx1-ubyte.gz"));
    check_idx_split(&d, FPT_TRAIN, 5, pad32);
    check_idx_split(&d, FPT_TEST, 3, pad32);
    fpt_dataset_free(&d);
  }
  // The raw file wins over the .gz when both exist; gz alone works too.
  put_idx("train", 4, 1, ok_opts);
  fpt_dataset d;
  assert_int_equal(fpt_idx_load(tmpdir, "fashion-mnist", 0, &d), 0);
  assert_int_equal(d.split[FPT_TRAIN].n, 5);
  assert_string_equal(d.task, "fashion-mnist");
  fpt_dataset_free(&d);
  del_file("train-images-idx3-ubyte");
  del_file("train-labels-idx1-ubyte");
  assert_int_equal(fpt_idx_load(tmpdir, "mnist", 0, &d), 0);
  check_idx_split(&d, FPT_TRAIN, 4, 0);
  fpt_dataset_free(&d);
  clean_dir();
}

static void test_idx_errors(void **state) {
  (void)state;
  clean_dir();
  fpt_dataset d;
  char gzname[64];
  snprintf(gzname, sizeof gzname, "train-images-idx3-ubyte.gz");
  put_idx("t10k", 3, 0, ok_opts);

  idx_opts o = ok_opts;
  o.lbl_magic = 1234;
  put_idx("train", 4, 1, o);
  expect_error(fpt_idx_load(tmpdir, "mnist", 0, &d), &d, "train-labels-idx1-ubyte.gz",
               "magic number 1234, expected 2049");
  o = ok_opts;
  o.img_magic = 2049;
  put_idx("train", 4, 1, o);
  expect_error(fpt_idx_load(tmpdir, "mnist", 0, &d), &d, gzname,
               "magic number 2049, expected 2051");
  o = ok_opts;
  o.rows = 27;
  put_idx("train", 4, 1, o);
  expect_error(fpt_idx_load(tmpdir, "mnist", 0, &d), &d, gzname, "image size 27x28");
  o = ok_opts;
  o.cut_img = 100; // record 3 loses its last 100 bytes
  put_idx("train", 4, 1, o);
  expect_error(fpt_idx_load(tmpdir, "mnist", 1, &d), &d, gzname, "record 3: truncated");
  o.cut_img = 784 + 5; // records 2 and 3 incomplete: the first is named
  put_idx("train", 4, 1, o);
  expect_error(fpt_idx_load(tmpdir, "mnist", 0, &d), &d, gzname, "record 2: truncated");
  o.cut_img = 16 + 4 * 784 - 10; // inside the header
  put_idx("train", 4, 1, o);
  expect_error(fpt_idx_load(tmpdir, "mnist", 0, &d), &d, gzname, "truncated header");
  o = ok_opts;
  o.lbl_count = 3;
  put_idx("train", 4, 1, o);
  expect_error(fpt_idx_load(tmpdir, "mnist", 0, &d), &d, "train-labels-idx1-ubyte.gz",
               "3 labels, but");
  o = ok_opts;
  o.trailing = 1;
  put_idx("train", 4, 1, o);
  expect_error(fpt_idx_load(tmpdir, "mnist", 0, &d), &d, gzname, "data after the last record");
  o = ok_opts;
  o.bad_label = 2;
  put_idx("train", 4, 1, o);
  expect_error(fpt_idx_load(tmpdir, "mnist", 0, &d), &d, "train-labels-idx1-ubyte.gz",
               "record 2: label 10 > 9");
  // Raw files are checked the same way.
  o = ok_opts;
  o.cut_img = 1;
  put_idx("t10k", 3, 0, o);
  put_idx("train", 4, 1, ok_opts);
  expect_error(fpt_idx_load(tmpdir, "mnist", 0, &d), &d,
               "/t10k-images-idx3-ubyte:", "record 2: truncated");
  // A file that is not gzip but has a .gz name is read as raw (zlib's
  // transparent mode), so a missing file is the remaining case.
  del_file("t10k-labels-idx1-ubyte");
  expect_error(fpt_idx_load(tmpdir, "mnist", 0, &d), &d, "t10k-labels-idx1-ubyte", "not found");
  expect_error(fpt_idx_load(tmpdir, "cifar", 0, &d), &d, "cifar", "unknown");
  expect_error(fpt_idx_load(NULL, "mnist", 0, &d), &d, "mnist", "no data directory");
  clean_dir();
}

// A gzip stream cut short is a truncated record, not a zlib error.
static void test_idx_gzip_cut(void **state) {
  (void)state;
  clean_dir();
  put_idx("train", 6, 1, ok_opts);
  put_idx("t10k", 2, 1, ok_opts);
  char path[512];
  snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", tmpdir);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  static unsigned char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  put_file("train-images-idx3-ubyte.gz", buf, n / 2, 0);
  fpt_dataset d;
  expect_error(fpt_idx_load(tmpdir, "mnist", 0, &d), &d, "train-images-idx3-ubyte.gz",
               ": truncated");
  clean_dir();
}

// ---------------------------------------------------------------------------
// CIFAR-10

static void test_cifar_layout(void **state) {
  (void)state;
  clean_dir();
  put_cifar_set();
  fpt_dataset d;
  int rc = fpt_cifar_load(tmpdir, 0, &d);
  if (rc)
    fail_msg("%s", fpt_error_get());
  assert_string_equal(d.task, "cifar10");
  assert_int_equal(d.seq, 64);
  assert_int_equal(d.d_in, 48);
  assert_int_equal(d.n_classes, 10);
  assert_int_equal(d.K, 1);
  assert_int_equal(d.r, 1);
  assert_int_equal(d.pad_id, -1);
  assert_int_equal(d.split[FPT_TRAIN].n, 9);
  assert_int_equal(d.split[FPT_VAL].n, 0);
  assert_int_equal(d.split[FPT_TEST].n, 3);
  assert_non_null(strstr(d.sources, "data_batch_5.bin; "));
  assert_non_null(strstr(d.sources, "test_batch.bin"));
  for (int s = 0; s < 3; s += 2) {
    const fpt_split *sp = &d.split[s];
    for (int i = 0; i < sp->n; i++) {
      int g = s == FPT_TRAIN ? i : 100 + i; // batches concatenated in order
      assert_int_equal(sp->y[i], g % 10);
      const float *x = sp->x + (size_t)i * 64 * 48;
      for (int ch = 0; ch < 3; ch++)
        for (int r = 0; r < 32; r++)
          for (int c = 0; c < 32; c++) {
            float v =
                ((float)cifar_byte(g, ch, r, c) / 255.0f - fpt_cifar_mean[ch]) / fpt_cifar_std[ch];
            int t = (r / 4) * 8 + c / 4, k = ((r % 4) * 4 + c % 4) * 3 + ch;
            assert_float_equal(x[t * 48 + k], v, 0);
          }
    }
  }
  fpt_dataset_free(&d);

  rc = fpt_cifar_load(tmpdir, 1, &d);
  if (rc)
    fail_msg("%s", fpt_error_get());
  assert_string_equal(d.task, "cifar10-lra");
  assert_int_equal(d.seq, 1024);
  assert_int_equal(d.d_in, 1);
  assert_int_equal(d.split[FPT_TRAIN].n, 9);
  for (int i = 0; i < 9; i++)
    for (int r = 0; r < 32; r++)
      for (int c = 0; c < 32; c++) {
        double g = 0.2989 * cifar_byte(i, 0, r, c) / 255.0 +
                   0.587 * cifar_byte(i, 1, r, c) / 255.0 + 0.114 * cifar_byte(i, 2, r, c) / 255.0;
        float v = d.split[FPT_TRAIN].x[(size_t)i * 1024 + r * 32 + c];
        assert_float_equal(v, (g - 0.5) / 0.5, 1e-6);
        assert_true(v >= -1.0f && v <= 1.0f);
      }
  fpt_dataset_free(&d);
  clean_dir();
}

static void test_cifar_errors(void **state) {
  (void)state;
  clean_dir();
  fpt_dataset d;
  put_cifar_set();
  put_cifar("data_batch_3.bin", 3, 3, 7, -1);
  expect_error(fpt_cifar_load(tmpdir, 0, &d), &d, "/data_batch_3.bin",
               "not a multiple of the 3073-byte record (record 3 is truncated)");
  put_cifar("data_batch_3.bin", 3, 3, 0, -1);
  put_cifar("test_batch.bin", 4, 100, 0, 2);
  expect_error(fpt_cifar_load(tmpdir, 1, &d), &d, "/test_batch.bin", "record 2: label 11 > 9");
  put_cifar("test_batch.bin", 4, 100, 0, -1);
  put_cifar("data_batch_2.bin", 0, 0, 0, -1);
  expect_error(fpt_cifar_load(tmpdir, 0, &d), &d, "/data_batch_2.bin", "empty");
  put_cifar("data_batch_2.bin", 1, 2, 0, -1);
  del_file("data_batch_4.bin");
  expect_error(fpt_cifar_load(tmpdir, 0, &d), &d, "/data_batch_4.bin", "cannot open");
  expect_error(fpt_cifar_load(NULL, 0, &d), &d, "cifar10", "no data directory");
  clean_dir();
}

// ---------------------------------------------------------------------------
// Augmentation

static void random_tokens(float *x, int n, uint32_t seed) {
  for (int i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    x[i] = (float)(seed >> 8) / 16777216.0f * 4.0f - 2.0f;
  }
}

static void test_augment_identities(void **state) {
  (void)state;
  static float in[3072], a[3072], b[3072], c[3072];
  for (int lra = 0; lra <= 1; lra++) {
    int n = lra ? 1024 : 3072;
    random_tokens(in, n, 7 + lra);
    fpt_aug_params id = {4, 4, 0, 0.0f};
    fpt_cifar_augment_with(in, a, lra, id);
    assert_memory_equal(a, in, sizeof(float) * n);
    // Flip twice.
    fpt_aug_params fl = {4, 4, 1, 0.0f};
    fpt_cifar_augment_with(in, a, lra, fl);
    assert_memory_not_equal(a, in, sizeof(float) * n);
    fpt_cifar_augment_with(a, b, lra, fl);
    assert_memory_equal(b, in, sizeof(float) * n);
    // Four quarter turns.
    fpt_aug_params q = {4, 4, 0, 90.0f};
    memcpy(a, in, sizeof(float) * n);
    for (int k = 0; k < 4; k++) {
      fpt_cifar_augment_with(a, a, lra, q); // in place
      if (k < 3)
        assert_memory_not_equal(a, in, sizeof(float) * n);
    }
    assert_memory_equal(a, in, sizeof(float) * n);
    // Crop offsets dy=5, dx=4 move the image up one row, zero-padded below.
    fpt_aug_params up = {5, 4, 0, 0.0f};
    fpt_cifar_augment_with(in, a, lra, up);
    int C = lra ? 1 : 3;
    float img_in[3072], img_out[3072];
    if (lra) {
      memcpy(img_in, in, sizeof(float) * 1024);
      memcpy(img_out, a, sizeof(float) * 1024);
    } else {
      fpt_tokens_to_image(in, 3, 32, 32, 4, img_in);
      fpt_tokens_to_image(a, 3, 32, 32, 4, img_out);
    }
    for (int ch = 0; ch < C; ch++) {
      float fill = lra ? -1.0f : (0.0f - fpt_cifar_mean[ch]) / fpt_cifar_std[ch];
      for (int r = 0; r < 32; r++)
        for (int col = 0; col < 32; col++) {
          float v = img_out[ch * 1024 + r * 32 + col];
          if (r == 31)
            assert_float_equal(v, fill, 0);
          else
            assert_float_equal(v, img_in[ch * 1024 + (r + 1) * 32 + col], 0);
        }
    }
    // Extreme crop: dy = dx = 0 shifts right/down by 4 (4 fill rows/cols).
    fpt_aug_params corner = {0, 0, 0, 0.0f};
    fpt_cifar_augment_with(in, c, lra, corner);
    if (lra)
      memcpy(img_out, c, sizeof(float) * 1024);
    else
      fpt_tokens_to_image(c, 3, 32, 32, 4, img_out);
    assert_float_equal(img_out[4 * 32 + 4], img_in[0], 0);
    assert_float_equal(img_out[3 * 32 + 10], lra ? -1.0f : -fpt_cifar_mean[0] / fpt_cifar_std[0],
                       1e-6);
  }
}

// Positive angles turn the picture counter-clockwise on screen: a dot right
// of the centre ends up above it.
static void test_augment_direction(void **state) {
  (void)state;
  static float in[1024], out[1024];
  for (int i = 0; i < 1024; i++)
    in[i] = -1.0f;
  in[16 * 32 + 26] = 1.0f;
  fpt_aug_params q = {4, 4, 0, 90.0f};
  fpt_cifar_augment_with(in, out, 1, q);
  for (int i = 0; i < 1024; i++)
    assert_float_equal(out[i], i == 5 * 32 + 16 ? 1.0f : -1.0f, 0);
  // A 20-degree turn keeps a 3x3 blob at the same distance from the centre
  // and moves it 20 degrees counter-clockwise.
  for (int i = 0; i < 1024; i++)
    in[i] = -1.0f;
  for (int r = 15; r <= 17; r++)
    for (int c = 25; c <= 27; c++)
      in[r * 32 + c] = 1.0f;
  fpt_aug_params t = {4, 4, 0, 20.0f};
  fpt_cifar_augment_with(in, out, 1, t);
  double sx = 0, sy = 0;
  int cnt = 0;
  for (int i = 0; i < 1024; i++)
    if (out[i] == 1.0f) {
      sx += i % 32 - 15.5;
      sy += 15.5 - i / 32; // y up
      cnt++;
    }
  assert_true(cnt >= 6 && cnt <= 12);
  double ang = atan2(sy / cnt, sx / cnt) * 180.0 / 3.14159265358979;
  double rad = hypot(sx / cnt, sy / cnt);
  // Before: centre (10.5, -0.5), angle -2.7 degrees, radius 10.51.
  assert_true(fabs(ang - 17.3) < 3.0);
  assert_true(fabs(rad - 10.51) < 0.7);
}

static void test_augment_deterministic(void **state) {
  (void)state;
  static float in[3072], a[3072], b[3072];
  random_tokens(in, 3072, 3);
  for (int lra = 0; lra <= 1; lra++) {
    int n = lra ? 1024 : 3072;
    fpt_cifar_augment(in, a, lra, 42, 7, 123);
    fpt_cifar_augment(in, b, lra, 42, 7, 123);
    assert_memory_equal(a, b, sizeof(float) * n);
    memcpy(b, in, sizeof(float) * n);
    fpt_cifar_augment(b, b, lra, 42, 7, 123); // in place
    assert_memory_equal(a, b, sizeof(float) * n);
    // Other steps, samples, seeds: other transforms (compare the draws and the
    // images; a collision of all four draws is negligible).
    int diff_step = 0, diff_sample = 0, diff_seed = 0;
    for (uint32_t s = 8; s < 18; s++) {
      fpt_cifar_augment(in, b, lra, 42, s, 123);
      diff_step += memcmp(a, b, sizeof(float) * n) != 0;
    }
    for (int64_t i = 124; i < 134; i++) {
      fpt_cifar_augment(in, b, lra, 42, 7, i);
      diff_sample += memcmp(a, b, sizeof(float) * n) != 0;
    }
    fpt_cifar_augment(in, b, lra, 43, 7, 123);
    diff_seed = memcmp(a, b, sizeof(float) * n) != 0;
    assert_int_equal(diff_step, 10);
    assert_int_equal(diff_sample, 10);
    assert_int_equal(diff_seed, 1);
  }
  // The high half of a 64-bit sample index matters too.
  fpt_aug_params p0 = fpt_cifar_augment_params(1, 2, 5);
  fpt_aug_params p1 = fpt_cifar_augment_params(1, 2, 5 + ((int64_t)1 << 32));
  assert_true(p0.dy != p1.dy || p0.dx != p1.dx || p0.flip != p1.flip || p0.angle != p1.angle);
}

static void test_augment_range(void **state) {
  (void)state;
  static float in[3072], out[3072], img_in[3072], img_out[3072];
  random_tokens(in, 3072, 11);
  int seen_dy[9] = {0}, seen_dx[9] = {0}, flips = 0, N = 4000;
  float amin = 1e9f, amax = -1e9f;
  for (int i = 0; i < N; i++) {
    fpt_aug_params p = fpt_cifar_augment_params(99, (uint32_t)(i % 13), i);
    assert_true(p.dy >= 0 && p.dy <= 8 && p.dx >= 0 && p.dx <= 8);
    assert_true(p.angle >= -20.0f && p.angle < 20.0f);
    seen_dy[p.dy]++;
    seen_dx[p.dx]++;
    flips += p.flip;
    amin = p.angle < amin ? p.angle : amin;
    amax = p.angle > amax ? p.angle : amax;
  }
  for (int k = 0; k < 9; k++) {
    assert_true(seen_dy[k] > N / 9 - 150 && seen_dy[k] < N / 9 + 150);
    assert_true(seen_dx[k] > N / 9 - 150 && seen_dx[k] < N / 9 + 150);
  }
  assert_true(flips > N / 2 - 200 && flips < N / 2 + 200);
  assert_true(amin < -19.5f && amax > 19.5f);
  // Every output value is an input value of the same channel, or the fill.
  for (int lra = 0; lra <= 1; lra++) {
    int C = lra ? 1 : 3;
    for (int i = 0; i < 50; i++) {
      fpt_cifar_augment(in, out, lra, 5, 1, i);
      if (lra) {
        memcpy(img_in, in, sizeof(float) * 1024);
        memcpy(img_out, out, sizeof(float) * 1024);
      } else {
        fpt_tokens_to_image(in, 3, 32, 32, 4, img_in);
        fpt_tokens_to_image(out, 3, 32, 32, 4, img_out);
      }
      for (int ch = 0; ch < C; ch++) {
        float fill = lra ? -1.0f : (0.0f - fpt_cifar_mean[ch]) / fpt_cifar_std[ch];
        for (int j = 0; j < 1024; j++) {
          float v = img_out[ch * 1024 + j];
          int ok = v == fill;
          for (int k = 0; k < 1024 && !ok; k++)
            ok = v == img_in[ch * 1024 + k];
          assert_true(ok);
        }
      }
    }
  }
  // On real-range data (pixels in [0,1], normalised) the output stays in range.
  static float lo[3072];
  for (int j = 0; j < 3072; j++) {
    int ch = j % 3;
    lo[j] = ((float)(j % 256) / 255.0f - fpt_cifar_mean[ch]) / fpt_cifar_std[ch];
  }
  for (int i = 0; i < 20; i++) {
    fpt_cifar_augment(lo, out, 0, 8, 3, i);
    for (int j = 0; j < 3072; j++) {
      int ch = j % 3;
      assert_true(out[j] >= -fpt_cifar_mean[ch] / fpt_cifar_std[ch] - 1e-6f);
      assert_true(out[j] <= (1.0f - fpt_cifar_mean[ch]) / fpt_cifar_std[ch] + 1e-6f);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_token_layout),
      cmocka_unit_test(test_idx_layout),
      cmocka_unit_test(test_idx_errors),
      cmocka_unit_test(test_idx_gzip_cut),
      cmocka_unit_test(test_cifar_layout),
      cmocka_unit_test(test_cifar_errors),
      cmocka_unit_test(test_augment_identities),
      cmocka_unit_test(test_augment_direction),
      cmocka_unit_test(test_augment_deterministic),
      cmocka_unit_test(test_augment_range),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
