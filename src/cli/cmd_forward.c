// fpt forward: the backbone alone (no dropout) on /inputs_embeds, so that
// anyone can check fpt against another GPT-2 implementation.
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "fpt/check.h"
#include "fpt/config.h"
#include "fpt/io.h"
#include "fpt/run.h"
#include "runtime.h"

typedef struct {
  const char *model, *input, *out, *frozen_dtype;
} forward_settings;

#define O(k, t, h) FPT_OPTION(forward_settings, k, t, h)
static const fpt_opt fwd_opts[] = {
    O(model, STR, "backbone model file"),
    O(input, STR, "HDF5 file with /inputs_embeds [N, T, n_embd]"),
    O(out, STR, "output file for /last_hidden_state (-o)"),
    O(frozen_dtype, STR, FPT_FROZEN_DTYPE_HELP),
};
#undef O
static const int n_fwd_opts = (int)(sizeof fwd_opts / sizeof *fwd_opts);

static int run(int argc, char **argv) {
  forward_settings s = {NULL, NULL, NULL, "fp32"};
  FPT_TRY(fpt_opts_parse(argc, argv, 2, fwd_opts, n_fwd_opts, &s));
  int dtype;
  FPT_TRY(fpt_frozen_dtype_option(s.frozen_dtype, NULL, &dtype));
  FPT_ENSURE(s.model && s.input, "options --model and --input are both required");
  const char *in[] = {s.model, s.input};
  FPT_TRY(fpt_check_out(s.out, in, 2));
  fpt_run_desc desc;
  fpt_run_desc_init(&desc);
  snprintf(desc.model, sizeof desc.model, "%s", s.model);
  FPT_TRY(fpt_run_desc_read_model(&desc));
  FPT_TRY(fpt_frozen_dtype_option(s.frozen_dtype, desc.cfg.kind, &desc.frozen_dtype));
  const fpt_backbone_cfg cfg = desc.cfg;
  int max_t = cfg.n_positions ? cfg.n_positions : 1 << 20;
  int nd = 3;
  int64_t d[4];
  FPT_TRY(fpt_h5_file_shape(s.input, "/inputs_embeds", &nd, d));
  FPT_ENSURE(nd == 3 && d[2] == cfg.n_embd && d[1] >= 1 && d[1] <= max_t && d[0] >= 1 &&
                 d[0] <= INT_MAX / d[1],
             "%s: dataset /inputs_embeds must be [N, T<=%d, %d]", s.input, max_t, cfg.n_embd);
  float *x = fpt_alloc_floats((size_t)(d[0] * d[1] * d[2]));
  int rc = fpt_h5_file_read_floats(s.input, "/inputs_embeds", 3, d, x);
  if (rc == 0)
    rc = fpt_check_finite(s.input, "/inputs_embeds", x, (size_t)(d[0] * d[1] * d[2]));
  if (rc != 0) {
    free(x);
    return rc;
  }
  int N = (int)d[0], T = (int)d[1], C = (int)d[2];
  // Every position is read out (r = T): every layer runs on all T rows.
  fpt_task_shape shape = {C, 0, T, T, 2, 2, 0, FPT_READOUT_LAST};
  desc.task = shape;
  desc.dropout = 0;
  fpt_model m;
  rc = fpt_model_build(&m, &desc, NULL, NULL, 1);
  float *y = fpt_alloc_floats((size_t)N * T * C);
  if (rc == 0) {
    // In chunks, to bound the activation memory.
    int chunk = N < 8 ? N : 8;
    fpt_acts a;
    fpt_acts_create(&a, &m, chunk, 0, cfg.n_layer, 1, 1);
    for (int i = 0; i < N; i += chunk) {
      int n = N - i < chunk ? N - i : chunk;
      a.B = n;
      fpt_backbone_forward(&m, &a, x + (size_t)i * T * C, NULL, y + (size_t)i * T * C);
    }
    fpt_acts_free(&a);
    fpt_h5_out o;
    rc = fpt_h5_out_create(&o, s.out);
    if (rc == 0) {
      rc = fpt_h5_write_floats(o.file, "/last_hidden_state", 3, d, y);
      if (rc == 0)
        rc = fpt_h5_out_commit(&o);
      else
        fpt_h5_out_abort(&o);
    }
  }
  free(x);
  free(y);
  fpt_model_free(&m);
  return rc;
}

int cmd_forward(int argc, char **argv) {
  if (argc > 2 && !strcmp(argv[2], "--help")) {
    fpt_opts_help("fpt forward --model M.h5 --input X.h5 -o Y.h5", fwd_opts, n_fwd_opts);
    return 0;
  }
  fpt_runtime rt;
  fpt_runtime_init(&rt, &argc, &argv);
  int rc = run(argc, argv);
  return fpt_runtime_finish(&rt, fpt_runtime_agree(&rt, rc));
}
