#include "cpu.h"

#include <cpuid.h>
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

char *openblas_get_corename(void);

// Kernels of Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH, x86_64) and the vector
// level each needs. Names that OPENBLAS_CORETYPE accepts and reports back.
static const struct {
  const char *name;
  int level;
} kernels[] = {
    {"Prescott", 1},  {"Core2", 1},       {"Penryn", 1},    {"Dunnington", 1},   {"Nehalem", 1},
    {"Atom", 1},      {"Nano", 1},        {"Opteron", 1},   {"Opteron_SSE3", 1}, {"Barcelona", 1},
    {"Bobcat", 1},    {"Sandybridge", 2}, {"Bulldozer", 2}, {"Piledriver", 2},   {"Steamroller", 2},
    {"Excavator", 2}, {"Haswell", 3},     {"Zen", 3},       {"SkylakeX", 4},     {"Cooperlake", 4},
};
enum { N_KERNELS = sizeof kernels / sizeof *kernels };

static int kernel_index(const char *name) {
  for (int i = 0; name && i < N_KERNELS; i++)
    if (!strcasecmp(name, kernels[i].name))
      return i;
  return -1;
}

int fpt_blas_kernel_known(const char *name) { return kernel_index(name) >= 0; }

int fpt_blas_kernel_level(const char *name) {
  int i = kernel_index(name);
  return i < 0 ? 1 : kernels[i].level;
}

static uint64_t xcr0(void) {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

void fpt_cpu_detect(fpt_cpu *c) {
  memset(c, 0, sizeof *c);
  unsigned a, b, cx, d, max = __get_cpuid_max(0, NULL);
  __cpuid(0, a, b, cx, d);
  memcpy(c->vendor, &b, 4);
  memcpy(c->vendor + 4, &d, 4);
  memcpy(c->vendor + 8, &cx, 4);
  __cpuid(1, a, b, cx, d);
  c->family = (int)((a >> 8) & 15) + ((((a >> 8) & 15) == 15) ? (int)((a >> 20) & 255) : 0);
  c->model = (int)((a >> 4) & 15) | (int)(((a >> 16) & 15) << 4);
  int osxsave = (cx >> 27) & 1;
  c->avx = (cx >> 28) & 1;
  c->fma = (cx >> 12) & 1;
  if (osxsave) {
    uint64_t x = xcr0();
    c->os_ymm = (x & 6) == 6;
    c->os_zmm = c->os_ymm && (x & 0xe0) == 0xe0;
  }
  if (max >= 7) {
    __cpuid_count(7, 0, a, b, cx, d);
    c->avx2 = (b >> 5) & 1;
    c->avx512f = (b >> 16) & 1;
    c->avx512dq = (b >> 17) & 1;
    c->avx512bw = (b >> 30) & 1;
    c->avx512vl = (b >> 31) & 1;
    __cpuid_count(7, 1, a, b, cx, d);
    c->avx512_bf16 = (a >> 5) & 1;
  }
  unsigned brand[12] = {0};
  if (__get_cpuid_max(0x80000000u, NULL) >= 0x80000004u)
    for (unsigned k = 0; k < 3; k++)
      __cpuid(0x80000002u + k, brand[4 * k], brand[4 * k + 1], brand[4 * k + 2], brand[4 * k + 3]);
  memcpy(c->brand, brand, 48);
  char *s = c->brand; // cpuid pads the brand string with spaces at either end
  while (*s == ' ')
    s++;
  memmove(c->brand, s, strlen(s) + 1);
  for (size_t n = strlen(c->brand); n > 0 && c->brand[n - 1] == ' '; n--)
    c->brand[n - 1] = '\0';
}

int fpt_cpu_level(const fpt_cpu *c) {
  if (c->os_zmm && c->avx512f && c->avx512dq && c->avx512bw && c->avx512vl)
    return 4;
  if (c->os_ymm && c->avx2 && c->fma)
    return 3;
  return c->os_ymm && c->avx ? 2 : 1;
}

void fpt_cpu_features(const fpt_cpu *c, char *buf, size_t n) {
  const struct {
    int on;
    const char *name;
  } f[] = {{c->avx, "avx"},           {c->avx2, "avx2"},
           {c->fma, "fma"},           {c->avx512f, "avx512f"},
           {c->avx512dq, "avx512dq"}, {c->avx512bw, "avx512bw"},
           {c->avx512vl, "avx512vl"}, {c->avx512_bf16, "avx512_bf16"}};
  size_t k = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < sizeof f / sizeof *f && k < n; i++)
    if (f[i].on)
      k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? " " : "", f[i].name);
  if (!buf[0])
    snprintf(buf, n, "sse only");
}

const char *fpt_blas_best_kernel(const fpt_cpu *c) {
  switch (fpt_cpu_level(c)) {
  case 4: // Cooperlake = SkylakeX's sgemm kernels plus bf16 ones; what OpenBLAS picks on Zen 4
    return c->avx512_bf16 ? "Cooperlake" : "SkylakeX";
  case 3:
    return strcmp(c->vendor, "AuthenticAMD") ? "Haswell" : "Zen";
  case 2:
    return "Sandybridge";
  default:
    return NULL;
  }
}

static char origin[160];

const char *fpt_blas_kernel(void) { return openblas_get_corename(); }
const char *fpt_blas_kernel_origin(void) { return origin[0] ? origin : "chosen by OpenBLAS"; }

// Re-execute this program with OPENBLAS_CORETYPE = name. FPT_BLAS_REEXEC
// carries the reason across, and stops a second re-execution.
static int reexec(char **argv, const char *name, const char *why) {
  setenv("OPENBLAS_CORETYPE", name, 1);
  setenv("FPT_BLAS_REEXEC", why, 1);
  execv("/proc/self/exe", argv);
  fprintf(stderr, "fpt: warning: could not re-execute with OPENBLAS_CORETYPE=%s; running on %s\n",
          name, openblas_get_corename());
  return 0;
}

// Removes `--blas-kernel NAME` (or --blas-kernel=NAME) from argv; *name gets NAME.
static int take_option(int *argc, char **argv, const char **name) {
  *name = NULL;
  for (int i = 1; i < *argc; i++) {
    int n = 0;
    if (!strcmp(argv[i], "--blas-kernel") || !strcmp(argv[i], "--blas_kernel")) {
      if (i + 1 >= *argc) {
        fprintf(stderr, "fpt: error: option --blas-kernel needs a value\n");
        return 2;
      }
      *name = argv[i + 1];
      n = 2;
    } else if (!strncmp(argv[i], "--blas-kernel=", 14)) {
      *name = argv[i] + 14;
      n = 1;
    }
    if (n) {
      memmove(argv + i, argv + i + n, sizeof(char *) * (size_t)(*argc - i - n + 1));
      *argc -= n;
      i--;
    }
  }
  return 0;
}

fpt_blas_choice fpt_blas_decide(const fpt_cpu *c, const char *now, const char *user_env,
                                const char *want) {
  fpt_blas_choice r = {NULL, "chosen by OpenBLAS"};
  const char *best = fpt_blas_best_kernel(c);
  if (want && !strcasecmp(want, "auto"))
    want = best ? best : now;
  if (want) {
    r.why = "--blas-kernel";
    r.kernel = strcasecmp(want, now) ? want : NULL;
  } else if (user_env) {
    r.why = "OPENBLAS_CORETYPE from the environment";
  } else if (best && fpt_blas_kernel_level(now) < fpt_blas_kernel_level(best)) {
    r.why = "set by fpt";
    r.kernel = best;
  }
  return r;
}

int fpt_blas_kernel_setup(int *argc, char **argv) {
  const char *want = NULL;
  char *argv0[*argc + 1]; // argv as given: the re-executed process sees the option again
  memcpy(argv0, argv, sizeof(char *) * (size_t)(*argc + 1));
  if (take_option(argc, argv, &want) != 0)
    return 2;
  if (want && strcasecmp(want, "auto") && !fpt_blas_kernel_known(want)) {
    fprintf(stderr,
            "fpt: error: option --blas-kernel: '%s' is not a kernel of this OpenBLAS "
            "(try auto, Haswell, Zen, SkylakeX, Cooperlake, Sandybridge, Prescott)\n",
            want);
    return 2;
  }
  const char *done = getenv("FPT_BLAS_REEXEC");
  if (done) { // we re-executed: say why, never loop
    snprintf(origin, sizeof origin, "%s", done);
    return 0;
  }
  fpt_cpu c;
  fpt_cpu_detect(&c);
  const char *now = openblas_get_corename();
  fpt_blas_choice r = fpt_blas_decide(&c, now, getenv("OPENBLAS_CORETYPE"), want);
  if (!strcmp(r.why, "set by fpt"))
    snprintf(origin, sizeof origin, "set by fpt: OpenBLAS alone chose %s", now);
  else
    snprintf(origin, sizeof origin, "%s", r.why);
  return r.kernel ? reexec(argv0, r.kernel, origin) : 0;
}

void fpt_cpu_summary(char *buf, size_t n) {
  fpt_cpu c;
  fpt_cpu_detect(&c);
  char f[160];
  fpt_cpu_features(&c, f, sizeof f);
  snprintf(buf, n, "cpu %s (%s family %d model %d; %s); BLAS kernel %s (%s)",
           c.brand[0] ? c.brand : "unknown", c.vendor, c.family, c.model, f, fpt_blas_kernel(),
           fpt_blas_kernel_origin());
}

// ---------------------------------------------------------------- FMA peak
// Ten independent accumulator chains hide the FMA latency (4 cycles, 2 ports).
#define FMA_CHAINS(type, set1, fma)                                                                \
  type acc[10], m = set1(1.0000001f), a = set1(1e-7f);                                             \
  for (int k = 0; k < 10; k++)                                                                     \
    acc[k] = set1((float)k);                                                                       \
  for (long i = 0; i < iters; i++)                                                                 \
    for (int k = 0; k < 10; k++)                                                                   \
      acc[k] = fma(acc[k], m, a);                                                                  \
  for (int k = 1; k < 10; k++)                                                                     \
    acc[0] = fma(acc[k], m, acc[0]);

__attribute__((target("avx512f"))) static float chains_zmm(long iters) {
  FMA_CHAINS(__m512, _mm512_set1_ps, _mm512_fmadd_ps)
  return _mm512_reduce_add_ps(acc[0]);
}

__attribute__((target("avx2,fma"))) static float chains_ymm(long iters) {
  FMA_CHAINS(__m256, _mm256_set1_ps, _mm256_fmadd_ps)
  float out[8];
  _mm256_storeu_ps(out, acc[0]);
  return out[0];
}

static double wall(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

double fpt_cpu_fma_peak(int threads, const char **unit) {
  fpt_cpu c;
  fpt_cpu_detect(&c);
  int level = fpt_cpu_level(&c), lanes = level >= 4 ? 16 : 8;
  *unit = level >= 4 ? "zmm" : level >= 3 ? "ymm" : "xmm";
  if (level < 3)
    return 0.0;                        // no FMA unit to measure: callers print "n/a"
  const long iters = 50 * 1000 * 1000; // about 0.1 s per trial
  volatile float sink = 0;
  double best = 0;
  for (int trial = 0; trial < 3; trial++) {
    double t0 = wall();
#pragma omp parallel num_threads(threads)
    {
      float r = level >= 4 ? chains_zmm(iters) : chains_ymm(iters);
#pragma omp atomic
      sink += r;
    }
    double rate = (double)threads * iters * 10 * lanes * 2 / (wall() - t0) * 1e-9;
    best = rate > best ? rate : best;
  }
  (void)sink;
  return best;
}
