// The rate of each Philox kernel of src/model/rng.c (fpt_stream_blocks_isa)
// that this CPU runs, in ns per 4 x 32-bit block: batches of 257 blocks
// (mask_row's span of 1024 elements) and of 13 (an attention row of 49 keys).
// One thread; the median of 7 rounds. Not built by CMake; from the build tree:
//   gcc -O3 -march=native -fopenmp -Iinclude tests/bench/philox_rate.c
//     build/libfpt_model.a -lm -o /tmp/philox_rate && /tmp/philox_rate
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fpt/rng.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

// Median ns per block of calls of n blocks, or -1 if the CPU cannot run isa.
static double rate(int isa, int n) {
  static uint32_t out[4 * 257];
  fpt_stream s = {0xfedcba9876543210ull, 17, 3, 5};
  int calls = 1000000 / n;
  double t[7];
  volatile uint32_t sink = 0;
  for (int r = 0; r < 7; r++) {
    double t0 = now();
    for (int i = 0; i < calls; i++) {
      if (fpt_stream_blocks_isa(s, (uint32_t)i * (uint32_t)n, n, out, isa) != 0)
        return -1;
      sink ^= out[i % n];
    }
    t[r] = (now() - t0) / ((double)calls * n) * 1e9;
  }
  qsort(t, 7, sizeof t[0], cmp);
  return t[3];
}

int main(void) {
  const char *names[] = {"portable", "avx2", "avx512"};
  printf("kernel    ns/block (257 a call)  ns/block (13 a call)\n");
  for (int isa = FPT_RNG_PORTABLE; isa <= FPT_RNG_AVX512; isa++) {
    double a = rate(isa, 257);
    if (a < 0) {
      printf("%-9s not supported by this CPU\n", names[isa]);
      continue;
    }
    printf("%-9s %8.2f %22.2f\n", names[isa], a, rate(isa, 13));
  }
  return 0;
}
