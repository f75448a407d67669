// Runs the attention kernels forward and backward on a case written by
// tests/torch/attention_kernel_check.py, for its independent PyTorch check.
// Raw little-endian files, no HDF5:
//   in:  int32 magic 'ATTN', B, T, q0, C, NH, causal, has_klen, qblock, kblock;
//        float32 p; int32 klen (B) (only if has_klen); float32 qkv (B,T,3C),
//        dout (B,T-q0,C)
//   out: for each of the stored-map kernel, the fused kernel, and the fused
//        kernel keeping its dropout bits: float32 out (B,T-q0,C), dqkv
//        (B,T,3C); then, with dropout (p > 0), the keep mask of the whole
//        (B,NH,T-q0,T) map as 0/1, drawn element by element by dropout_keep
//        (not by the attention code) at index (h*T + q0+i)*T + j of
//        (sample 1 + 3b, site 9), seed 77, step 5.
// qblock, kblock: the fused kernel's block sizes (0: the defaults).
// Usage: attention_case IN OUT
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/kernels.h"

enum { MAGIC = 0x4e545441, SITE = 9 }; // "ATTN" little-endian

static void die(const char *what) {
  fprintf(stderr, "attention_case: %s\n", what);
  exit(1);
}

static void read_exact(FILE *f, void *p, size_t size, size_t n) {
  if (fread(p, size, n, f) != n)
    die("input file too short");
}

static void write_floats(FILE *f, const float *p, size_t n) {
  if (fwrite(p, sizeof(float), n, f) != n)
    die("cannot write the output file");
}

int main(int argc, char **argv) {
  if (argc != 3)
    die("usage: attention_case IN OUT");
  openblas_set_num_threads(1); // our OpenMP threads only, as fpt runs
  FILE *f = fopen(argv[1], "rb");
  if (!f)
    die("cannot open the input file");
  int32_t h[10];
  float p;
  read_exact(f, h, sizeof(int32_t), 10);
  read_exact(f, &p, sizeof(float), 1);
  if (h[0] != MAGIC)
    die("not an attention case file");
  int B = h[1], T = h[2], q0 = h[3], C = h[4], NH = h[5], Tq = T - q0;
  if (B < 1 || T < 1 || q0 < 0 || q0 >= T || NH < 1 || C % NH)
    die("bad shape");
  if (h[8] > 0)
    fpt_attention_flash_qblock = h[8];
  if (h[9] > 0)
    fpt_attention_flash_kblock = h[9];
  int32_t *klen = fpt_calloc((size_t)B, sizeof(int32_t));
  if (h[7])
    read_exact(f, klen, sizeof(int32_t), (size_t)B);
  fpt_attn_mask am = {h[6], h[7] ? klen : NULL};
  size_t nq = (size_t)B * T * 3 * C, ny = (size_t)B * Tq * C;
  size_t nm = (size_t)B * NH * Tq * fpt_mask_words(T), na = (size_t)B * NH * Tq * T;
  float *qkv = fpt_alloc_floats(nq), *dy = fpt_alloc_floats(ny);
  read_exact(f, qkv, sizeof(float), nq);
  read_exact(f, dy, sizeof(float), ny);
  fclose(f);

  int64_t *sample = fpt_calloc((size_t)B, sizeof(int64_t));
  for (int b = 0; b < B; b++)
    sample[b] = 1 + 3 * b;
  fpt_dropout d = {p, 77, 5, sample};
  float *y = fpt_alloc_floats(ny), *dq = fpt_alloc_floats(nq), *att = fpt_alloc_floats(na);
  float *lse = fpt_alloc_floats((size_t)B * NH * Tq);
  uint32_t *mask = fpt_calloc(nm, sizeof(uint32_t));
  FILE *o = fopen(argv[2], "wb");
  if (!o)
    die("cannot create the output file");

  float *work = fpt_alloc_floats(fpt_attention_work(T));
  attention_forward_masked(y, att, mask, qkv, B, T, q0, C, NH, &am, &d, SITE, work);
  attention_backward_masked(dq, dy, qkv, att, mask, B, T, q0, C, NH, &am, &d, work);
  write_floats(o, y, ny);
  write_floats(o, dq, nq);
  free(work);

  work = fpt_alloc_floats(fpt_attention_flash_work(T));
  for (int keep = 0; keep < 2; keep++) {
    uint32_t *m = keep ? mask : NULL;
    attention_flash_forward(y, lse, m, qkv, B, T, q0, C, NH, &am, &d, SITE, work);
    attention_flash_backward(dq, dy, y, lse, m, qkv, B, T, q0, C, NH, &am, &d, SITE, work);
    write_floats(o, y, ny);
    write_floats(o, dq, nq);
  }
  free(work);

  if (p > 0.0f) {
    float *keep = att; // (B,NH,Tq,T)
    for (int b = 0; b < B; b++)
      for (int hh = 0; hh < NH; hh++)
        for (int i = 0; i < Tq; i++)
          for (int j = 0; j < T; j++)
            keep[(((size_t)b * NH + hh) * Tq + i) * T + j] =
                (float)dropout_keep(&d, SITE, sample[b], ((uint64_t)hh * T + q0 + i) * T + j);
    write_floats(o, keep, na);
  }
  if (fclose(o) != 0)
    die("cannot write the output file");
  free(qkv), free(dy), free(y), free(dq), free(att), free(lse), free(mask), free(klen),
      free(sample);
  return 0;
}
