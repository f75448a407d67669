// fpt export: a trained run's checkpoint (any backbone kind, any stage
// layout) -> a model file that `fpt train --model` takes as a frozen
// backbone; the file records its source run, task, step and val accuracy.
// This is how the paper's Table 2 rows are made: train a model fully on one
// task (bit memory, images), export it, freeze it on the others.
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "fpt/check.h"
#include "fpt/checkpoint.h"
#include "fpt/config.h"
#include "fpt/io.h"
#include "runtime.h"

typedef struct {
  const char *checkpoint, *run_dir, *model, *out;
} export_settings;

#define O(k, t, h) FPT_OPTION(export_settings, k, t, h)
static const fpt_opt export_opts[] = {
    O(checkpoint, STR, "checkpoint file (RUN/checkpoints/ckpt-*.h5)"),
    O(run_dir, STR, "training run: its newest complete checkpoint"),
    O(model, STR, "the backbone file the run started from (default: the path it recorded)"),
    O(out, STR, "output model file (-o)"),
};
#undef O
static const int n_export_opts = (int)(sizeof export_opts / sizeof *export_opts);

static int run(int argc, char **argv) {
  export_settings s = {0};
  FPT_TRY(fpt_opts_parse(argc, argv, 2, export_opts, n_export_opts, &s));
  FPT_ENSURE(s.out, "option -o/--out: an output file is required");
  FPT_ENSURE(!s.checkpoint != !s.run_dir, "options --checkpoint and --run-dir: give exactly one");
  char ckpt[4400], note[6000];
  if (s.run_dir) {
    int r = fpt_checkpoint_resume_point(s.run_dir, ckpt, sizeof ckpt, note, sizeof note);
    FPT_ENSURE(r != FPT_RESUME_FRESH, "option --run-dir: %s has no checkpoint", s.run_dir);
    FPT_TRY(r);
    if (note[0])
      printf("export: %s\n", note);
  } else {
    snprintf(ckpt, sizeof ckpt, "%s", s.checkpoint);
  }
  FPT_TRY(fpt_h5_check_readable(ckpt));
  FPT_TRY(fpt_output_ok("option -o", s.out));
  FPT_ENSURE(!fpt_same_file(s.out, ckpt), "option -o: %s is the checkpoint itself", s.out);
  static fpt_run_desc d;
  FPT_TRY(fpt_run_desc_read(ckpt, &d));
  const char *model = s.model ? s.model : d.model;
  FPT_ENSURE(!fpt_same_file(s.out, model), "option -o: %s is the backbone file %s", s.out, model);
  return fpt_export_checkpoint(ckpt, s.model, s.out);
}

int cmd_export(int argc, char **argv) {
  if (argc > 2 && !strcmp(argv[2], "--help")) {
    fpt_opts_help("fpt export (--checkpoint CKPT.h5 | --run-dir RUN) [--model M.h5] -o OUT.h5",
                  export_opts, n_export_opts);
    return 0;
  }
  fpt_runtime rt;
  fpt_runtime_init(&rt, &argc, &argv);
  int rc = rt.size == 1 ? run(argc, argv) : 1;
  if (rt.size != 1)
    fpt_error_set("fpt export runs in one process, not %d ranks", rt.size);
  return fpt_runtime_finish(&rt, fpt_runtime_agree(&rt, rc));
}
