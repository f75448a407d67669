// The rate of Intel AMX's bf16 tile product on the machine it runs on, as a
// ceiling for src/model/gemm_bf16.c's ukernel_amx (docs/PERFORMANCE.md): the
// kernel's loop (2 A and 2 B tiles loaded, 4 tdpbf16ps into 4 C tiles) with
// its operands in L1, and the products alone. One thread; prints the median
// of 7 rounds. Not built by CMake (it needs an AMX CPU to run at all):
//   gcc -O2 -o /tmp/amx_ceiling tests/bench/amx_ceiling.c && /tmp/amx_ceiling
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define TLOAD(t, p) __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #t ::"r"(p), "r"(64L) : "memory")
#define TDP(c, a, b) __asm__ volatile("tdpbf16ps %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::)
#define TZERO(t) __asm__ volatile("tilezero %%tmm" #t ::)
#define FLOPS_PER_TDP (2.0 * 16 * 16 * 32)

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

// GFLOP/s of n iterations of 4 products, with (loads 1) or without the 4 tile loads.
static double rate(long n, int loads, const uint16_t (*buf)[512]) {
  double t = now();
  for (long i = 0; i < n; i++) {
    if (loads) {
      TLOAD(4, buf[0]);
      TLOAD(5, buf[1]);
      TLOAD(6, buf[2]);
      TLOAD(7, buf[3]);
    }
    TDP(0, 4, 6);
    TDP(1, 4, 7);
    TDP(2, 5, 6);
    TDP(3, 5, 7);
  }
  return n * 4 * FLOPS_PER_TDP / (now() - t) * 1e-9;
}

int main(void) {
  if (syscall(SYS_arch_prctl, 0x1023, 18)) { // ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA
    fprintf(stderr, "amx_ceiling: the kernel refused AMX tile state (no AMX on this CPU?)\n");
    return 1;
  }
  _Alignas(64) uint8_t cfg[64] = {1}; // palette 1: 8 tiles of 16 rows x 64 bytes
  for (int t = 0; t < 8; t++) {
    cfg[16 + 2 * t] = 64;
    cfg[48 + t] = 16;
  }
  __asm__ volatile("ldtilecfg %0" ::"m"(cfg));
  static _Alignas(64) uint16_t buf[4][512];
  memset(buf, 0, sizeof buf);
  TZERO(0);
  TZERO(1);
  TZERO(2);
  TZERO(3);
  double r[2][7];
  for (int k = 0; k < 7; k++)
    for (int loads = 0; loads < 2; loads++)
      r[loads][k] = rate(1000000, loads, buf);
  __asm__ volatile("tilerelease");
  for (int loads = 0; loads < 2; loads++) {
    qsort(r[loads], 7, sizeof(double), cmp);
    printf("%-34s median %6.0f GFLOP/s (min %.0f, max %.0f), 1 thread\n",
           loads ? "4 tile loads (L1) + 4 tdpbf16ps:" : "4 tdpbf16ps, no loads:", r[loads][3],
           r[loads][0], r[loads][6]);
  }
  return 0;
}
