// fpt import: convert a Hugging Face GPT-2 model.safetensors (with its
// config.json, if it sits beside it) into an fpt model file.
#include <stddef.h>
#include <string.h>

#include "commands.h"
#include "fpt/check.h"
#include "fpt/config.h"
#include "fpt/io.h"
#include "runtime.h"

typedef struct {
  const char *out;
  long long heads;
} import_settings;

#define O(k, t, h) FPT_OPTION(import_settings, k, t, h)
static const fpt_opt import_opts[] = {
    O(out, STR, "output model file (-o)"),
    O(heads, INT, "n_head (default: config.json beside the input, else n_embd/64)"),
};
#undef O
static const int n_import_opts = (int)(sizeof import_opts / sizeof *import_opts);

static int run(int argc, char **argv, int rank) {
  FPT_ENSURE(argc > 2 && strncmp(argv[2], "-", 1) != 0,
             "fpt import: the input .safetensors file comes first "
             "(fpt import MODEL.safetensors -o M.h5)");
  import_settings s = {NULL, 0};
  FPT_TRY(fpt_opts_parse(argc, argv, 3, import_opts, n_import_opts, &s));
  const char *in[] = {argv[2]};
  FPT_TRY(fpt_check_out(s.out, in, 1));
  FPT_ENSURE(s.heads >= 0 && s.heads < (1 << 20), "option --heads: %lld is out of range", s.heads);
  // One writer is enough: under mpirun the other ranks only wait for it.
  if (rank != 0)
    return 0;
  return fpt_import_safetensors_heads(argv[2], s.out, (int)s.heads);
}

int cmd_import(int argc, char **argv) {
  for (int i = 2; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fpt_opts_help("fpt import MODEL.safetensors -o M.h5 [--heads H]", import_opts, n_import_opts);
      return 0;
    }
  fpt_runtime rt;
  fpt_runtime_init(&rt, &argc, &argv);
  int rc = run(argc, argv, rt.rank);
  return fpt_runtime_finish(&rt, fpt_runtime_agree(&rt, rc));
}
