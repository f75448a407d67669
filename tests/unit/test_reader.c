// The parallel dataset reader under MPI: each rank asks for its own samples in
// any order (some ranks for none, or for labels only), and gets exactly them.
// Run with any number of ranks. Exit status 0 on success on every rank.
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fpt/check.h"
#include "fpt/dataset_file.h"
#include "fpt/io.h"

static int failures;
#define EXPECT(c, ...)                                                                             \
  do {                                                                                             \
    if (!(c)) {                                                                                    \
      failures++;                                                                                  \
      fprintf(stderr, "rank %d: FAIL: ", rank);                                                    \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fprintf(stderr, "\n");                                                                       \
    }                                                                                              \
  } while (0)

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  fpt_h5_quiet();
  const char *path = argc > 1 ? argv[1] : "reader_test.h5";
  // Sample i of split s has x[i, t, d] = 1000 s + i + 0.001 (t * 3 + d), y = (s, i).
  const int T = 5, D = 3;
  if (rank == 0) {
    fpt_dataset d;
    memset(&d, 0, sizeof d);
    snprintf(d.task, sizeof d.task, "reader-test");
    d.seq = T;
    d.d_in = D;
    d.n_classes = 10;
    d.K = 2;
    d.r = 1;
    d.pad_id = -1;
    int64_t n[3] = {1000, 37, 1};
    for (int s = 0; s < 3; s++) {
      fpt_dataset_alloc(&d, s, n[s]);
      for (int64_t i = 0; i < n[s]; i++) {
        for (int k = 0; k < T * D; k++)
          d.split[s].x[i * T * D + k] = (float)(1000 * s + i) + 0.001f * k;
        d.split[s].y[2 * i] = s;
        d.split[s].y[2 * i + 1] = (int32_t)i;
      }
    }
    if (fpt_dataset_write(path, &d, argc > 2 ? atoll(argv[2]) : 0) != 0) {
      fprintf(stderr, "write: %s\n", fpt_error_get());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    fpt_dataset_free(&d);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  fpt_data_reader r;
  if (fpt_data_open(&r, path, MPI_COMM_WORLD) != 0) {
    fprintf(stderr, "open: %s\n", fpt_error_get());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  EXPECT(r.n[0] == 1000 && r.n[1] == 37 && r.n[2] == 1, "split sizes");
  EXPECT(!strcmp(r.meta.task, "reader-test") && r.meta.seq == T && r.meta.d_in == D, "attributes");
  float *x = calloc(64 * T * D, sizeof(float));
  int32_t *y = calloc(64 * 2, sizeof(int32_t));
  for (int round = 0; round < 6; round++) {
    // Rank-dependent counts, descending scattered indices; rank 1 of round 2 reads nothing,
    // and odd ranks of round 3 read labels only.
    int n = (rank * 7 + round * 5) % 33;
    if (round == 2 && rank == 1)
      n = 0;
    int64_t idx[64];
    for (int i = 0; i < n; i++)
      idx[i] = (int64_t)((997 * (rank + 1) + 131 * round + 389 * (n - i)) % 1000);
    // No duplicates within one rank's request, except in round 4, which
    // repeats samples as a batch straddling two epochs does.
    for (int i = 0; i < n && round != 4; i++)
      for (int j = 0; j < i; j++)
        if (idx[j] == idx[i])
          idx[i] = (idx[i] + 1) % 1000, j = -1;
    if (round == 4)
      for (int i = 1; i < n; i += 3)
        idx[i] = idx[i - 1];
    int labels_only = round == 3 && rank % 2;
    memset(x, 0, 64 * T * D * sizeof(float));
    int rc = fpt_data_read(&r, 0, idx, n, 1, labels_only ? NULL : x, y);
    EXPECT(rc == 0, "read: %s", rc ? fpt_error_get() : "");
    for (int i = 0; i < n; i++) {
      EXPECT(y[2 * i] == 0 && y[2 * i + 1] == idx[i], "round %d: y of sample %lld", round,
             (long long)idx[i]);
      for (int k = 0; k < T * D && !labels_only; k++)
        EXPECT(x[i * T * D + k] == (float)idx[i] + 0.001f * k, "round %d: x of sample %lld", round,
               (long long)idx[i]);
      if (labels_only)
        EXPECT(x[i * T * D] == 0.0f, "labels-only read touched x");
    }
  }
  // The val split, contiguous.
  int64_t vidx[37];
  for (int i = 0; i < 37; i++)
    vidx[i] = i;
  int mine = rank == 0 ? 37 : 0;
  EXPECT(fpt_data_read(&r, 1, vidx, mine, 1, x, y) == 0, "val read");
  for (int i = 0; i < mine; i++)
    EXPECT(x[i * T * D] == 1000.0f + i && y[2 * i] == 1, "val sample %d", i);
  fpt_data_close(&r);
  free(x);
  free(y);
  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0)
    printf("reader test on %d ranks: %s\n", size, total ? "FAILED" : "passed");
  MPI_Finalize();
  return total ? 1 : 0;
}
