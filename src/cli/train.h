// fpt train's settings and set-up, shared with the commands that run the
// same model on the same grid: fpt eval (score a checkpoint) and fpt probe
// (the exact least-squares output layer, src/cli/cmd_probe.c).
#ifndef FPT_CLI_TRAIN_H
#define FPT_CLI_TRAIN_H

#include "fpt/batches.h"
#include "fpt/checkpoint.h"
#include "fpt/model.h"
#include "fpt/parallel.h"
#include "runtime.h"

typedef struct {
  const char *model, *data, *task, *run_dir, *init, *tokens, *schedule, *config, *resume, *export,
      *lr_schedule;
  long long checkpoint_every, keep_checkpoints, early_stop;
  double time_limit;
  long long stages, micro_batches, steps, batch_size, seed, data_seed, log_every, eval_every,
      eval_samples, eval_limit, train_limit, bit_length, patterns, patch, warmup;
  double lr, dropout, orth_gain, clip;
  int freeze_in, freeze_out, freeze_ln, freeze_pos, freeze_attn, freeze_ff, full_train, augment,
      shared_weights, eval_test;
  const char *readout, *lstm_state, *objective;
  const char *init_head_from; // fpt train
  const char *checkpoint;     // fpt eval
  // fpt probe
  const char *lambda, *lambdas, *solver, *cache;
  long long block_size;
  int recompute;
} train_settings;

// fpt probe's work after the set-up (st: the backbone's path and checksum,
// the resolved configuration). Returns the same value on every rank.
int fpt_probe_run(const train_settings *s, const fpt_runtime *rt, fpt_grid *g, fpt_model *m,
                  fpt_source *src, fpt_pipeline *pl, fpt_ckpt_state *st,
                  const fpt_run_desc *desc);

#endif
