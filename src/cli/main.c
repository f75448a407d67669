// fpt: Frozen Pretrained Transformers on CPU clusters.
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "cpu.h"
#include "fpt/gemm_bf16.h"
#include "fpt/io.h"
#include "fpt_version.h"

static const struct {
  const char *name;
  int (*run)(int, char **);
  const char *help;
} commands[] = {
    {"train", cmd_train, "train an FPT model (the main job)"},
    {"pretrain", cmd_pretrain, "pretrain a byte-level GPT-2 language model (every weight)"},
    {"eval", cmd_eval, "score a checkpoint on the validation and test splits"},
    {"probe", cmd_probe, "the exact least-squares output layer over frozen features (ScaLAPACK)"},
    {"data", cmd_data, "build a dataset file for one of the paper's tasks"},
    {"init", cmd_init, "write a random or statistics-matched GPT-2 model file"},
    {"import", cmd_import, "convert a Hugging Face GPT-2 safetensors file"},
    {"forward", cmd_forward, "run the backbone on /inputs_embeds"},
    {"export", cmd_export, "a checkpoint (any kind, any stages) -> a frozen-backbone model file"},
    {"attention", cmd_attention, "dump a trained model's attention maps on a few samples"},
    {"bench", cmd_bench, "time FPT training steps against raw sgemm"},
};

// fpt --version: what a bug report needs to say which build ran on what.
static int print_version(void) {
  fpt_cpu c;
  fpt_cpu_detect(&c);
  char f[160];
  fpt_cpu_features(&c, f, sizeof f);
  const char *best = fpt_blas_best_kernel(&c);
  printf("fpt %s (git %s)\n", FPT_VERSION, FPT_GIT_REVISION);
  printf("cpu=%s\ncpu_features=%s\n", c.brand[0] ? c.brand : "unknown", f);
  printf("blas_kernel=%s\nblas_kernel_origin=%s\nblas_kernel_best=%s\nbf16_kernel=%s\n",
         fpt_blas_kernel(), fpt_blas_kernel_origin(), best ? best : fpt_blas_kernel(),
         fpt_bf16_kernel_name());
  return 0;
}

int main(int argc, char **argv) {
  int n = (int)(sizeof commands / sizeof *commands);
  // First, before MPI or any BLAS call: this may re-execute the program.
  if (fpt_blas_kernel_setup(&argc, argv) != 0)
    return 2;
  // A test switch: act as on a CPU without AVX512_BF16 (docs/TESTING.md).
  const char *no_bf16 = getenv("FPT_NO_BF16");
  fpt_bf16_disable = no_bf16 && !strcmp(no_bf16, "1");
  // bf16 GEMMs on AVX512_BF16 although the CPU has AMX: for comparisons.
  const char *no_amx = getenv("FPT_NO_AMX");
  fpt_amx_disable = no_amx && !strcmp(no_amx, "1");
  // fp32 frozen matrices through OpenBLAS instead of our packed panels
  // (docs/PERFORMANCE.md): for comparisons.
  const char *pack = getenv("FPT_FP32_PACK");
  fpt_f32_pack_disable = pack && !strcmp(pack, "0");
  if (argc >= 2 && !strcmp(argv[1], "--version"))
    return print_version();
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    printf("usage: fpt COMMAND [--key value ...]\n\ncommands:\n");
    for (int i = 0; i < n; i++)
      printf("  %-9s %s\n", commands[i].name, commands[i].help);
    printf("\n'fpt COMMAND --help' lists a command's options. Every command also takes\n"
           "--blas-kernel NAME|auto (the OpenBLAS kernel; default: the best for this CPU,\n"
           "unless OPENBLAS_CORETYPE is set). 'fpt --version' prints the build, CPU and kernel.\n");
    return argc < 2 ? 2 : 0;
  }
  for (int i = 0; i < n; i++)
    if (!strcmp(argv[1], commands[i].name)) {
      fpt_h5_quiet();
      return commands[i].run(argc, argv);
    }
  fprintf(stderr, "fpt: error: unknown command '%s' (try fpt --help)\n", argv[1]);
  return 2;
}
