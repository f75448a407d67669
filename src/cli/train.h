// The run family of commands (fpt train, pretrain, eval, probe): one set-up
// (src/cli/train_setup.c), one training loop and its policy
// (src/cli/train_loop.c), one report (src/cli/train_report.c); each command
// is a descriptor (src/cli/train_opts.c: its options, defaults and usage)
// plus its own work (fpt probe: src/cli/cmd_probe.c).
#ifndef FPT_CLI_TRAIN_H
#define FPT_CLI_TRAIN_H

#include "fpt/batches.h"
#include "fpt/checkpoint.h"
#include "fpt/config.h"
#include "fpt/io.h"
#include "fpt/model.h"
#include "fpt/parallel.h"
#include "fpt/run.h"
#include "runtime.h"

typedef struct {
  const char *model, *data, *task, *run_dir, *init, *tokens, *schedule, *config, *resume, *export,
      *lr_schedule;
  long long checkpoint_every, keep_checkpoints, early_stop;
  const char *early_stop_on; // "loss" or "accuracy"
  const char *eval_test_at;  // "every", "best" or "end" (evaluation, with eval_test)
  double time_limit;
  long long stages, micro_batches, steps, batch_size, seed, data_seed, log_every, eval_every,
      eval_samples, eval_limit, train_limit, bit_length, patterns, patch, warmup;
  double lr, dropout, orth_gain, clip;
  int freeze_in, freeze_out, freeze_ln, freeze_pos, freeze_attn, freeze_ff, full_train, augment,
      shared_weights, eval_test, keep_best;
  const char *readout, *lstm_state, *objective, *frozen_dtype;
  const char *init_head_from; // fpt train
  const char *checkpoint;     // fpt eval
  // fpt probe
  const char *lambda, *lambdas, *solver, *cache;
  long long block_size;
  int recompute;
} train_settings;

// What sets a command of the family apart.
enum { FPT_RUN_TRAIN, FPT_RUN_PRETRAIN, FPT_RUN_EVAL, FPT_RUN_PROBE };
typedef struct {
  const char *name; // "train", ...
  int kind;         // FPT_RUN_*
  fpt_opt_set opts; // the options it takes, in titled groups
  const char *usage;
  void (*defaults)(train_settings *s);
} train_command;
extern const train_command fpt_cmd_train, fpt_cmd_pretrain, fpt_cmd_eval, fpt_cmd_probe;
// Which options the user gave (command line or YAML): options that do not
// apply to what was chosen are refused, not ignored.
int train_option_given(const char *key);
// Parse: YAML (--config) first, then the command line, then the checks of
// the values against each other.
int train_parse(const train_command *c, train_settings *s, int argc, char **argv);

// Everything a run of the family holds.
typedef struct {
  const train_command *cmd;
  train_settings s;
  fpt_runtime rt;
  fpt_grid g;
  fpt_model m;
  fpt_source src;
  fpt_pipeline pl;
  fpt_run_desc desc;
  fpt_ckpt_state st;
  fpt_metrics mt;
  int64_t start;            // the first step to run (after a resume)
  double val_loss, val_acc; // of the last validation pass
  double best_acc;          // --keep-best: of checkpoints/best.h5, or -INFINITY
} fpt_run;

// src/cli/train_setup.c
int train_setup(fpt_run *r, int argc, char **argv);
int train_checksums(fpt_run *r);
int train_resume(fpt_run *r);
int train_load_from(fpt_run *r, const char *opt, const char *path, const char *const *prefixes);
// Release MPI and HDF5 resources, then finalize; returns the exit code.
int train_teardown(fpt_run *r, int failed);

// src/cli/train_report.c
double train_now(void);
void train_memory_mb(double *rss, double *pss);
void train_print_startup(const fpt_run *r);
int train_write_run_line(fpt_run *r);
int train_write_config(const fpt_run *r);
void train_print_progress(long long done, long long total, double loss, double acc, double tps,
                          double eta);

// src/cli/train_loop.c
int train_main(const train_command *c, int argc, char **argv);

// fpt probe's work after the set-up (src/cli/cmd_probe.c). Returns the same
// value on every rank.
int fpt_probe_run(const train_settings *s, const fpt_runtime *rt, fpt_grid *g, fpt_model *m,
                  fpt_source *src, fpt_pipeline *pl, fpt_ckpt_state *st, const fpt_run_desc *desc);

#endif
