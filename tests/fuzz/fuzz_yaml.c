// libFuzzer target: the YAML config reader (fpt_opts_load_yaml, src/cli/options.c,
// libyaml), as `fpt train --config run.yaml` calls it. The input is the file.
// The option table has every option type, with keys of fpt train's table.
#include "fuzz_common.h"

#include <stdint.h>
#include <stdlib.h>

#include "fpt/config.h"

typedef struct {
  const char *model, *data, *schedule, *run_dir;
  long long steps, batch_size, seed;
  double lr, dropout;
  int full_train, shared_weights;
} settings;

#define O(k, t)                                                                                    \
  { #k, FPT_OPT_##t, offsetof(settings, k), "" }
static const fpt_opt table[] = {
    O(model, STR),           O(data, STR), O(schedule, STR), O(run_dir, STR),   O(steps, INT),
    O(batch_size, INT),      O(seed, INT), O(lr, FLOAT),     O(dropout, FLOAT), O(full_train, BOOL),
    O(shared_weights, BOOL),
};
#undef O
enum { N_OPTS = (int)(sizeof table / sizeof *table) };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[1024];
  fuzz_write("run.yaml", data, size, path, sizeof path);
  // A default that is a string literal, as the commands' defaults are.
  static const char default_schedule[] = "1f1b";
  settings s = {NULL, NULL, default_schedule, NULL, 0, 0, 0, 0.0, 0.0, 0, 0};
  int rc = fpt_opts_load_yaml(path, table, N_OPTS, &s);
  fuzz_check_error(rc);
  // String values belong to the caller (strdup'ed by the reader).
  const char **strs[4] = {&s.model, &s.data, &s.schedule, &s.run_dir};
  for (int i = 0; i < 4; i++)
    if (*strs[i] != default_schedule)
      free((void *)*strs[i]);
  return 0;
}
