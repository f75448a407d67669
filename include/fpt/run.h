// The typed description of a run: everything that decides its numbers (the
// backbone and how it was initialised, the freeze set, the task and its data,
// the training hyperparameters). Commands fill it from their options; the
// checkpoint stores it as typed attributes of its /run group; fpt eval,
// attention and export rebuild the model from it; a resume compares it field
// by field with the checkpoint's. One model builder makes a model from it.
#ifndef FPT_RUN_H
#define FPT_RUN_H

#include <stdint.h>

#include "fpt/model.h"

enum { FPT_INIT_PRETRAINED, FPT_INIT_RANDOM, FPT_INIT_STATS };
extern const char *const fpt_init_names[]; // "pretrained", "random", "stats", NULL
enum { FPT_STATE_ZERO, FPT_STATE_RANDOM };
enum { FPT_OBJ_CAUSAL, FPT_OBJ_MLM };
extern const char *const fpt_objective_names[];    // "causal", "mlm", NULL
extern const char *const fpt_state_names[];        // "zero", "random", NULL
extern const char *const fpt_frozen_dtype_names[]; // "fp32", "bf16", NULL (FPT_FROZEN_*)

typedef struct {
  // The backbone: its file (checksum: what identifies it), its shape (read
  // from the file, or given: fpt init, fpt bench), how it is initialised.
  char model[4096];
  char model_checksum[17];
  fpt_backbone_cfg cfg;
  int init;         // FPT_INIT_*
  int64_t seed;     // input/output init, random backbones, dropout, sample order
  double orth_gain; // input layer: orthogonal init gain
  double dropout;
  int lstm_state; // FPT_STATE_*
  fpt_freeze freeze;
  int frozen_dtype; // FPT_FROZEN_*: how the frozen matrices multiply (fpt/model.h)
  fpt_task_shape task;
  int keep_wte;  // a language model continuing from an exported one keeps /wte/weight
  int objective; // language models: FPT_OBJ_CAUSAL (next byte) or FPT_OBJ_MLM (masked bytes)
  // The data.
  char task_name[32]; // generated task, or the dataset file's task
  char data[4096];    // dataset file ("" for generated tasks)
  char data_checksum[17];
  char tokens[16];
  int64_t data_seed, eval_samples, eval_limit, train_limit, bit_length, patterns, patch;
  int augment;
  // Training.
  int64_t batch_size, steps, warmup;
  double lr, clip;
  char lr_schedule[16];
  // Fields a checkpoint held (bit i: field i of src/io/run_desc.c's table);
  // a format-1 checkpoint lacks some, and a resume compares only these.
  uint64_t known;
} fpt_run_desc;

// Defaults of a description (the paper's FPT settings, pretrained init).
void fpt_run_desc_init(fpt_run_desc *d);

// Build the model of a run: the part of the whole model (NULL: all of it),
// frozen tensors in `frozen_ext` when given (shared memory; only a rank with
// fill_frozen writes them), initialised as d says (the backbone from d->model
// or at random, the input and output layers from d->seed), its frozen
// matrices held as d->frozen_dtype says. With frozen_ext (shared memory
// that other ranks fill) the bf16 copies are not made here: the caller calls
// fpt_model_set_frozen_dtype once the tensors are filled. The description's
// cfg must be filled (fpt_run_desc_read_model).
int fpt_model_build(fpt_model *m, const fpt_run_desc *d, const fpt_part *part, float *frozen_ext,
                    int fill_frozen);
// d->cfg (and checks) from d->model's file.
int fpt_run_desc_read_model(fpt_run_desc *d);

// The /run group of a checkpoint, read back (written by fpt_run_desc_write,
// fpt/io.h). A checkpoint of format 1 (a YAML text) is read from that text
// and the backbone file.
int fpt_run_desc_read(const char *path, fpt_run_desc *d);
// The fields in which two descriptions differ that change a run's numbers:
// "init pretrained -> random, freeze_ln false -> true" (empty: none).
void fpt_run_desc_diff(const fpt_run_desc *was, const fpt_run_desc *now, char *buf, size_t n);

#endif
