// Process start-up and shutdown shared by the commands: MPI, thread set-up,
// and the rule that an error on any rank ends every rank with a nonzero exit.
#ifndef FPT_RUNTIME_H
#define FPT_RUNTIME_H

typedef struct {
  int rank, size;
} fpt_runtime;

int fpt_runtime_init(fpt_runtime *rt, int *argc, char ***argv);
// All ranks call this with their own rc; if any rank failed, the lowest
// failing rank prints its error and every rank gets a nonzero result.
int fpt_runtime_agree(const fpt_runtime *rt, int rc);
// Finalize MPI and return the process exit code.
int fpt_runtime_finish(fpt_runtime *rt, int failed);
// For single-process commands: print the pending error, return 1.
int fpt_report_error(void);
// The -o of a command that writes one file, checked before any work: given,
// a regular file or nothing yet, in a writable directory, and none of the
// command's n_inputs inputs (NULL entries: inputs not given).
int fpt_check_out(const char *out, const char *const *inputs, int n_inputs);
// --frozen-dtype VALUE -> FPT_FROZEN_* (fpt/model.h): fp32 or bf16, and bf16
// only where the CPU has AVX512_BF16 and (kind not NULL) for a gpt2 backbone
// (one error naming the option otherwise). FPT_NO_BF16=1 in the environment
// makes fpt act as on a CPU without it (a test switch: main() sets
// fpt_bf16_disable).
int fpt_frozen_dtype_option(const char *value, const char *kind, int *dtype);
// Help text of --frozen-dtype, shared by the commands that take it.
#define FPT_FROZEN_DTYPE_HELP                                                                      \
  "frozen GPT-2 block matrices: fp32, or bf16 (stored once in bf16; forward and input-gradient "   \
  "GEMMs with bf16 inputs, fp32 accumulation; needs AVX512_BF16. FPT_NO_BF16=1 in the "            \
  "environment acts as a CPU without it: a test switch)"

#endif
