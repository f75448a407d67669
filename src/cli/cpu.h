// The CPU under the process and the OpenBLAS kernel that runs on it.
//
// Debian's OpenBLAS picks its kernel when the library loads. On CPUs it does
// not know (Intel Xeon model 207, say) it falls back to SSE3 "Prescott", three
// times slower than the AVX-512 kernel the CPU can run. fpt_blas_kernel_setup()
// runs first thing in main(), before MPI_Init: if OpenBLAS chose a kernel below
// what the CPU supports, it sets OPENBLAS_CORETYPE and re-executes the program
// once. A user's own OPENBLAS_CORETYPE always wins; `--blas-kernel NAME` (any
// command) overrides both for one run, `--blas-kernel auto` picks the best.
#ifndef FPT_CPU_H
#define FPT_CPU_H

#include <stddef.h>

typedef struct {
  char vendor[13];
  char brand[49]; // the CPU's model name, as lscpu shows it
  int family, model;
  int avx, fma, avx2, avx512f, avx512dq, avx512bw, avx512vl, avx512_bf16;
  int os_ymm, os_zmm; // the OS saves ymm / zmm state (XCR0)
} fpt_cpu;

void fpt_cpu_detect(fpt_cpu *c);
// Vector level: 1 = SSE only, 2 = AVX, 3 = AVX2 + FMA, 4 = AVX-512 F/DQ/BW/VL
// (each counted only where the OS enables the registers).
int fpt_cpu_level(const fpt_cpu *c);
// "avx avx2 fma avx512f ..." of the features above that are present.
void fpt_cpu_features(const fpt_cpu *c, char *buf, size_t n);
// The best kernel of OpenBLAS 0.3.21 for this CPU, or NULL when no kernel
// beats what OpenBLAS picks by itself (SSE-only CPUs).
const char *fpt_blas_best_kernel(const fpt_cpu *c);
// The vector level an OpenBLAS kernel name needs (1 for names not listed).
int fpt_blas_kernel_level(const char *name);
// 1 if NAME is a kernel name this OpenBLAS accepts in OPENBLAS_CORETYPE.
int fpt_blas_kernel_known(const char *name);

// The decision, as a pure function: `now` is the kernel OpenBLAS loaded,
// user_env the user's OPENBLAS_CORETYPE (NULL if unset), want the value of
// --blas-kernel (NULL if absent; "auto" = the best for c). kernel is the one
// to re-execute with, NULL to keep `now`; why says who decided.
typedef struct {
  const char *kernel, *why;
} fpt_blas_choice;
fpt_blas_choice fpt_blas_decide(const fpt_cpu *c, const char *now, const char *user_env,
                                const char *want);

// Before MPI_Init: remove `--blas-kernel NAME` from argv, choose the kernel,
// and re-execute with OPENBLAS_CORETYPE set when needed. Returns 0, or 2 after
// printing one error line (an unknown NAME).
int fpt_blas_kernel_setup(int *argc, char **argv);
// What runs now and why: the kernel name and a short reason ("chosen by
// OpenBLAS", "OPENBLAS_CORETYPE from the environment", "set by fpt: OpenBLAS
// chose Prescott", "--blas-kernel").
const char *fpt_blas_kernel(void);
const char *fpt_blas_kernel_origin(void);
// One line for start-up tables and logs: CPU, features, kernel and origin.
void fpt_cpu_summary(char *buf, size_t n);

// FMA peak of the widest vector unit, GFLOP/s, over `threads` OpenMP threads
// (independent fused multiply-add chains, best of a few trials). *unit gets
// "zmm", "ymm" or "xmm".
double fpt_cpu_fma_peak(int threads, const char **unit);

#endif
