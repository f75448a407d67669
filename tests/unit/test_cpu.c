// The BLAS kernel decision (src/cli/cpu.c) on CPUs this machine may not be:
// the AVX2 and AVX-512 CPUs our users run on, with OpenBLAS falling back to
// Prescott as Debian's 0.3.21 does on Intel Xeon model 207.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cpu.h"

static fpt_cpu cpu(const char *vendor, int level, int bf16) {
  fpt_cpu c;
  memset(&c, 0, sizeof c);
  snprintf(c.vendor, sizeof c.vendor, "%s", vendor);
  c.os_ymm = level >= 2;
  c.os_zmm = level >= 4;
  c.avx = level >= 2;
  c.avx2 = c.fma = level >= 3;
  c.avx512f = c.avx512dq = c.avx512bw = c.avx512vl = level >= 4;
  c.avx512_bf16 = bf16;
  return c;
}

static void expect(fpt_blas_choice r, const char *kernel, const char *why) {
  if (kernel)
    assert_string_equal(r.kernel, kernel);
  else
    assert_null(r.kernel);
  assert_string_equal(r.why, why);
}

static void test_fallback_is_fixed(void **state) {
  (void)state;
  fpt_cpu xeon207 = cpu("GenuineIntel", 4, 1), skx = cpu("GenuineIntel", 4, 0);
  fpt_cpu zen3 = cpu("AuthenticAMD", 3, 0), hsw = cpu("GenuineIntel", 3, 0);
  expect(fpt_blas_decide(&xeon207, "Prescott", NULL, NULL), "Cooperlake", "set by fpt");
  expect(fpt_blas_decide(&skx, "Prescott", NULL, NULL), "SkylakeX", "set by fpt");
  expect(fpt_blas_decide(&skx, "Haswell", NULL, NULL), "SkylakeX", "set by fpt");
  expect(fpt_blas_decide(&zen3, "Prescott", NULL, NULL), "Zen", "set by fpt");
  expect(fpt_blas_decide(&hsw, "Core2", NULL, NULL), "Haswell", "set by fpt");
  // Never Prescott on a CPU with AVX2: every fallback name below AVX2 is lifted.
  const char *low[] = {"Prescott", "Core2", "Nehalem", "Sandybridge", "Barcelona", "Atom"};
  for (size_t i = 0; i < sizeof low / sizeof *low; i++) {
    fpt_blas_choice r = fpt_blas_decide(&zen3, low[i], NULL, NULL);
    assert_non_null(r.kernel);
    assert_true(fpt_blas_kernel_level(r.kernel) >= 3);
  }
}

static void test_good_choice_is_kept(void **state) {
  (void)state;
  fpt_cpu zen4 = cpu("AuthenticAMD", 4, 1), zen3 = cpu("AuthenticAMD", 3, 0);
  fpt_cpu old = cpu("GenuineIntel", 1, 0);
  expect(fpt_blas_decide(&zen4, "Cooperlake", NULL, NULL), NULL, "chosen by OpenBLAS");
  expect(fpt_blas_decide(&zen4, "SkylakeX", NULL, NULL), NULL, "chosen by OpenBLAS");
  expect(fpt_blas_decide(&zen3, "Zen", NULL, NULL), NULL, "chosen by OpenBLAS");
  expect(fpt_blas_decide(&zen3, "Haswell", NULL, NULL), NULL, "chosen by OpenBLAS");
  expect(fpt_blas_decide(&old, "Prescott", NULL, NULL), NULL, "chosen by OpenBLAS");
}

static void test_user_wins(void **state) {
  (void)state;
  fpt_cpu xeon207 = cpu("GenuineIntel", 4, 1);
  // The user's OPENBLAS_CORETYPE (here the slow one) is what runs.
  expect(fpt_blas_decide(&xeon207, "Prescott", "Prescott", NULL), NULL,
         "OPENBLAS_CORETYPE from the environment");
  // --blas-kernel beats the environment; auto means the best for the CPU.
  expect(fpt_blas_decide(&xeon207, "Prescott", "Prescott", "auto"), "Cooperlake", "--blas-kernel");
  expect(fpt_blas_decide(&xeon207, "Cooperlake", NULL, "Haswell"), "Haswell", "--blas-kernel");
  expect(fpt_blas_decide(&xeon207, "Haswell", NULL, "haswell"), NULL, "--blas-kernel");
}

static void test_names(void **state) {
  (void)state;
  assert_true(fpt_blas_kernel_known("SkylakeX"));
  assert_true(fpt_blas_kernel_known("zen"));
  assert_false(fpt_blas_kernel_known("SapphireRapids")); // 0.3.21 maps it to Cooperlake
  assert_false(fpt_blas_kernel_known("auto"));
  assert_int_equal(fpt_blas_kernel_level("Prescott"), 1);
  assert_int_equal(fpt_blas_kernel_level("Zen"), 3);
  assert_int_equal(fpt_blas_kernel_level("Cooperlake"), 4);
  fpt_cpu c = cpu("GenuineIntel", 4, 1);
  char f[160];
  fpt_cpu_features(&c, f, sizeof f);
  assert_string_equal(f, "avx avx2 fma avx512f avx512dq avx512bw avx512vl avx512_bf16");
}

// The real CPU: what cpuid says agrees with /proc/cpuinfo's flags.
static void test_this_cpu(void **state) {
  (void)state;
  fpt_cpu c;
  fpt_cpu_detect(&c);
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f)
    skip();
  char line[8192];
  int seen = 0;
  while (fgets(line, sizeof line, f) && !seen)
    if (!strncmp(line, "flags", 5)) {
      seen = 1;
      assert_int_equal(c.avx2, strstr(line, " avx2") != NULL);
      assert_int_equal(c.fma, strstr(line, " fma") != NULL);
      assert_int_equal(c.avx512f, strstr(line, " avx512f") != NULL);
      assert_int_equal(c.avx512_bf16, strstr(line, " avx512_bf16") != NULL);
    }
  fclose(f);
  assert_true(seen);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fallback_is_fixed), cmocka_unit_test(test_good_choice_is_kept),
      cmocka_unit_test(test_user_wins),         cmocka_unit_test(test_names),
      cmocka_unit_test(test_this_cpu),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
