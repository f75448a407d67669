// Masked-byte pretraining's batches (fpt_source_mlm): BERT's 15 % of
// positions with 80 % mask / 10 % random byte / 10 % kept, the original byte
// as the target there and no target elsewhere; a fresh masking per epoch
// position, the same at every evaluation, and the same whatever the batch
// split. One process (mpirun -np 1 or none). Exit 0 on success.
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/batches.h"
#include "fpt/check.h"
#include "fpt/dataset_file.h"
#include "fpt/io.h"

static int failures;
#define EXPECT(c, ...)                                                                             \
  do {                                                                                             \
    if (!(c)) {                                                                                    \
      failures++;                                                                                  \
      fprintf(stderr, "FAIL: ");                                                                   \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fprintf(stderr, "\n");                                                                       \
    } else {                                                                                       \
      printf("ok: ");                                                                              \
      printf(__VA_ARGS__);                                                                         \
      printf("\n");                                                                                \
    }                                                                                              \
  } while (0)

enum { T = 64, N = 200 };

// A text-like file: sample i's bytes are (64 i + t) % 251 (64 is invertible
// mod 251, so any byte and its position name the row), targets the next byte.
static int byte_of(int row, int t) { return (64 * row + t) % 251; }
static int row_of(int byte, int t) { // 64^-1 mod 251 = 51
  return (int)(((long)(byte - t + 251 * 64) % 251) * 51 % 251);
}
static void write_text(const char *path) {
  fpt_dataset d;
  memset(&d, 0, sizeof d);
  snprintf(d.task, sizeof d.task, "text");
  d.seq = T;
  d.vocab = d.n_classes = 256;
  d.K = d.r = T;
  d.pad_id = -1;
  for (int s = 0; s < 3; s++) {
    fpt_dataset_alloc(&d, s, N);
    for (int i = 0; i < N * T; i++) {
      d.split[s].ids[i] = byte_of(i / T, i % T);
      d.split[s].y[i] = (d.split[s].ids[i] + 3) % 256;
    }
  }
  if (fpt_dataset_write(path, &d, 0) != 0) {
    fprintf(stderr, "write: %s\n", fpt_error_get());
    exit(1);
  }
  fpt_dataset_free(&d);
}

static int64_t count[4]; // chosen, masked, random, kept

static void tally(const fpt_source_buf *b, int n, const int64_t *rows) {
  for (int i = 0; i < n; i++)
    for (int t = 0; t < T; t++) {
      int32_t x = b->ids[i * T + t], y = b->y[i * T + t], orig = byte_of((int)rows[i], t);
      if (y < 0) {
        failures += x != orig; // unchosen positions are untouched
        continue;
      }
      failures += y != orig; // the target is the original byte
      count[0]++;
      count[1] += x == FPT_MLM_MASK;
      count[2] += x != FPT_MLM_MASK && x != orig;
      count[3] += x == orig;
    }
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  fpt_h5_quiet();
  const char *path = argc > 1 ? argv[1] : "mlm_test.h5";
  write_text(path);
  fpt_source s;
  if (fpt_source_open_file(&s, path, NULL, 5, 0, MPI_COMM_WORLD) || fpt_source_mlm(&s, 5)) {
    fprintf(stderr, "open: %s\n", fpt_error_get());
    return 1;
  }
  EXPECT(s.shape.vocab == 257 && s.shape.n_cls == 257, "the token table gains the mask id (257)");
  fpt_source_buf b, c;
  fpt_source_buf_init(&b, &s, N);
  fpt_source_buf_init(&c, &s, N);
  // Evaluation: every val sample, twice; and the same split in two halves.
  fpt_source_eval(&s, FPT_VAL, 0, N, 1, 1, &b);
  int64_t rows[N];
  for (int i = 0; i < N; i++)
    rows[i] = i;
  tally(&b, N, rows);
  double n = (double)N * T;
  EXPECT(fabs(count[0] / n - 0.15) < 0.01, "chosen positions %.4f of %0.f (BERT: 0.15)",
         count[0] / n, n);
  EXPECT(fabs((double)count[1] / count[0] - 0.8) < 0.02 &&
             fabs((double)count[2] / count[0] - 0.1) < 0.015 &&
             fabs((double)count[3] / count[0] - 0.1) < 0.015,
         "of them: mask %.3f, random byte %.3f, kept %.3f (80/10/10; a random byte may equal the "
         "original)",
         (double)count[1] / count[0], (double)count[2] / count[0], (double)count[3] / count[0]);
  EXPECT(failures == 0, "targets are the original bytes, and only chosen positions change");
  fpt_source_eval(&s, FPT_VAL, 0, N / 2, 1, 1, &c);
  fpt_source_eval(&s, FPT_VAL, N / 2, N / 2, 1, 1, &c);
  fpt_source_buf d2;
  fpt_source_buf_init(&d2, &s, N);
  fpt_source_eval(&s, FPT_VAL, N / 2, N / 2, 1, 1, &d2);
  EXPECT(!memcmp(d2.ids, b.ids + (size_t)N / 2 * T, sizeof(int32_t) * N / 2 * T) &&
             !memcmp(d2.y, b.y + (size_t)N / 2 * T, sizeof(int32_t) * N / 2 * T),
         "evaluation masks depend on the sample, not on the batch");
  // Training: the same sample in two epochs gets another masking; the same
  // stream positions read again (or split otherwise) get the same one.
  fpt_source_train(&s, 0, N, 1, 1, &b);
  fpt_source_train(&s, N, N, 1, 1, &c);
  static int chosen[2][N][T];
  for (int e = 0; e < 2; e++) {
    const fpt_source_buf *x = e ? &c : &b;
    for (int i = 0; i < N; i++) {
      int row = -1;
      for (int t = 0; t < T && row < 0; t++)
        if (x->y[i * T + t] < 0)
          row = row_of(x->ids[i * T + t], t);
      failures += row < 0 || row >= N;
      for (int t = 0; t < T && row >= 0 && row < N; t++)
        chosen[e][row][t] = x->y[i * T + t] >= 0;
    }
  }
  int64_t both = 0, once = 0;
  for (int i = 0; i < N; i++)
    for (int t = 0; t < T; t++) {
      both += chosen[0][i][t] && chosen[1][i][t];
      once += chosen[0][i][t];
    }
  EXPECT(once > 0 && both < once / 3,
         "a fresh masking each epoch (%lld of the %lld positions chosen in epoch 1 chosen again "
         "for the same sample in epoch 2; independent: 15 %%)",
         (long long)both, (long long)once);
  fpt_source_train(&s, 0, N / 2, 1, 1, &d2);
  EXPECT(!memcmp(d2.ids, b.ids, sizeof(int32_t) * N / 2 * T) &&
             !memcmp(d2.y, b.y, sizeof(int32_t) * N / 2 * T),
         "training masks depend on the stream position, not on the batch");
  fpt_source_buf_free(&b);
  fpt_source_buf_free(&c);
  fpt_source_buf_free(&d2);
  fpt_source_close(&s);
  MPI_Finalize();
  return failures ? 1 : 0;
}
