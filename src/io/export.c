// fpt export: the whole model of a checkpoint, rebuilt from the run's
// description (backbone file and init, then every tensor the checkpoint
// holds), written as a model file. Works for any stage layout: checkpoints
// hold every stage's tensors by name.
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/checkpoint.h"
#include "fpt/io.h"
#include "fpt/run.h"

int fpt_export_checkpoint(const char *ckpt, const char *model, const char *out) {
  static fpt_run_desc d;
  FPT_TRY(fpt_run_desc_read(ckpt, &d));
  FPT_ENSURE(d.task.seq > 0,
             "%s: a checkpoint of format 1 does not record its task's shape; resume the run for "
             "one step with this fpt to write a current checkpoint, then export that",
             ckpt);
  if (model)
    snprintf(d.model, sizeof d.model, "%s", model);
  char sum[17];
  FPT_TRY(fpt_file_checksum(d.model, sum));
  FPT_ENSURE(!strcmp(sum, d.model_checksum),
             "%s: made with backbone %s (checksum %s), but %s has checksum %s%s", ckpt, d.model,
             d.model_checksum, d.model, sum, model ? "" : " (option --model: the original file)");
  FPT_TRY(fpt_run_desc_read_model(&d));
  d.frozen_dtype = FPT_FROZEN_FP32; // weights are copied, never multiplied: any CPU exports
  fpt_model m;
  FPT_TRY(fpt_model_build(&m, &d, NULL, NULL, 1));
  fpt_ckpt_state st;
  int n = 0, rc = fpt_checkpoint_read_state(ckpt, &m, &st);
  if (rc == 0)
    rc = fpt_checkpoint_load_params(ckpt, &m, NULL, NULL, &n);
  char run[4400], cdir[4400];
  snprintf(cdir, sizeof cdir, "%s", ckpt);
  snprintf(run, sizeof run, "%s", dirname(dirname(cdir))); // RUN/checkpoints/ckpt-*.h5
  double acc = NAN;
  if (fpt_metrics_find(run, st.step, "val", &acc) != 0)
    acc = NAN;
  fpt_provenance p = {run, ckpt, d.task_name, st.step, acc};
  if (rc == 0)
    rc = fpt_model_file_write_from(out, &m, &p);
  if (rc == 0)
    printf("%s: a %s backbone, %d layers x %d, from %s (step %lld, task %s, val accuracy %.4f); "
           "%d tensors from the checkpoint\n",
           out, d.cfg.kind, d.cfg.n_layer, d.cfg.n_embd, ckpt, (long long)st.step, d.task_name, acc,
           n);
  fpt_model_free(&m);
  return rc;
}
