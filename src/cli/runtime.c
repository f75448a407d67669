#include <cblas.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "fpt/check.h"
#include "fpt/checkpoint.h"
#include "fpt/gemm_bf16.h"
#include "fpt/run.h"
#include "runtime.h"

int fpt_runtime_init(fpt_runtime *rt, int *argc, char ***argv) {
  // Open MPI's collective I/O: a shuffled batch is a few KB per rank spread
  // over the file, where two-phase aggregation costs more than it saves (here
  // 22k vs 65k samples/s on 2 ranks, docs/DATA.md). Users can override it.
  setenv("OMPI_MCA_fcoll", "individual", 0);
  MPI_Init(argc, argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rt->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &rt->size);
  // Our OpenMP threads split every GEMM; OpenBLAS must not add its own.
  openblas_set_num_threads(1);
  return 0;
}

int fpt_runtime_agree(const fpt_runtime *rt, int rc) {
  int bad = rc != 0 ? rt->rank : rt->size, first = rt->size;
  MPI_Allreduce(&bad, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (first == rt->size)
    return 0;
  if (rt->rank == first) {
    if (rt->size > 1 && rt->rank != 0)
      fprintf(stderr, "fpt: error (rank %d): %s\n", rt->rank, fpt_error_get());
    else
      fprintf(stderr, "fpt: error: %s\n", fpt_error_get());
    fflush(stderr);
  }
  return 1;
}

int fpt_runtime_finish(fpt_runtime *rt, int failed) {
  (void)rt;
  MPI_Finalize();
  return failed ? 1 : 0;
}

int fpt_report_error(void) {
  fprintf(stderr, "fpt: error: %s\n", fpt_error_get());
  return 1;
}

int fpt_frozen_dtype_option(const char *value, const char *kind, int *dtype) {
  *dtype = -1;
  for (int i = 0; fpt_frozen_dtype_names[i]; i++)
    if (!strcmp(value, fpt_frozen_dtype_names[i]))
      *dtype = i;
  FPT_ENSURE(*dtype >= 0, "option --frozen-dtype: '%s' is not one of fp32, bf16", value);
  FPT_ENSURE(*dtype == FPT_FROZEN_FP32 || !kind || !strcmp(kind, "gpt2"),
             "option --frozen-dtype bf16: the backbone is %s; bf16 frozen matrices are for gpt2 "
             "backbones (use fp32)",
             kind);
  if (*dtype != FPT_FROZEN_BF16 || fpt_bf16_supported())
    return 0;
  FPT_ENSURE(!fpt_bf16_disable,
             "option --frozen-dtype bf16: this CPU has no AVX512_BF16 (FPT_NO_BF16=1 in the "
             "environment hides it); use --frozen-dtype fp32");
  fpt_cpu c;
  fpt_cpu_detect(&c);
  char feat[160];
  fpt_cpu_features(&c, feat, sizeof feat);
  FPT_FAIL("option --frozen-dtype bf16: this CPU has no AVX512_BF16 (%s: %s); use --frozen-dtype "
           "fp32",
           c.brand[0] ? c.brand : "unknown CPU", feat[0] ? feat : "no AVX");
}

int fpt_check_out(const char *out, const char *const *inputs, int n_inputs) {
  FPT_ENSURE(out, "option -o/--out: an output file is required");
  FPT_TRY(fpt_output_ok("option -o", out));
  for (int i = 0; i < n_inputs; i++)
    FPT_ENSURE(!inputs[i] || !fpt_same_file(out, inputs[i]),
               "option -o: %s is an input of this command; writing it would destroy it", out);
  return 0;
}
