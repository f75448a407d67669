// The tasks fpt knows, in one table (src/tasks/registry.c): per task its
// name, a one-line summary, the options of `fpt data` it takes and their
// defaults, how its dataset file is built (a generator, or a converter of
// outside files), whether `fpt train --task` generates it on the fly, and the
// transform applied to its training samples. `fpt data` and its --help,
// `fpt train --task` (fpt_bit_task_make) and the dataset reader's training
// transform (src/io/batches.c) all read this table; docs/TASKS.md shows how
// to add a task (one file under src/tasks, one row).
//
// No MPI, no HDF5: the table and every task's code live in fpt_model.
#ifndef FPT_TASK_REGISTRY_H
#define FPT_TASK_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "fpt/config.h"
#include "fpt/dataset.h"
#include "fpt/tasks.h"

// The options of `fpt data` that belong to tasks, by index into
// fpt_task_opts; a row's `options` is a mask of FPT_TAKES(...).
enum {
  FPT_TOPT_INPUT,
  FPT_TOPT_TSV_DIR,
  FPT_TOPT_SEED,
  FPT_TOPT_N_TRAIN,
  FPT_TOPT_N_VAL,
  FPT_TOPT_N_TEST,
  FPT_TOPT_BIT_LENGTH,
  FPT_TOPT_PATTERNS,
  FPT_TOPT_PATCH,
  FPT_TOPT_MAX_LEN,
  FPT_TOPT_SEQ,
  FPT_TOPT_PAD32,
  FPT_N_TOPTS
};
#define FPT_TAKES(opt) (1u << FPT_TOPT_##opt)

// The values of those options. Before fpt_task_resolve every field is
// "not given" (NULL, FPT_TASK_UNSET, pad32 -1: fpt_task_args_unset); after
// it, a given value or the task's default.
#define FPT_TASK_UNSET (-0x7fffffffffffffffLL - 1)
typedef struct {
  const char *input;   // source directory, or comma-separated files
  const char *tsv_dir; // listops: where generated TSV files go
  long long seed;      // generator and validation-split seed (default 1 for every task)
  long long n_train, n_val, n_test;
  long long bit_length, patterns, patch; // generated bit tasks
  long long max_len;                     // pfam
  long long seq;                         // text
  int pad32;                             // mnist, fashion-mnist
  const char *out; // the output file (not a task option; listops: default TSV dir OUT.tsv.d)
  unsigned given;  // FPT_TAKES(...) of the options that were given (set by fpt_task_resolve)
} fpt_task_args;

// `fpt data` options of the tasks, in FPT_TOPT_* order: keys, types and
// offsets into fpt_task_args (fpt/config.h), base help texts.
extern const fpt_opt fpt_task_opts[FPT_N_TOPTS];

// A training-time transform of the samples of a task's dataset files
// (`fpt train --data`, --augment true): x, one training sample in the file's
// token layout, is transformed in place, as a pure function of (x, seed,
// epoch, sample = its row in /train), so it does not depend on the ranks.
typedef struct {
  const char *what; // for messages and docs
  int seq, d_in;    // the token shape it acts on (a file of another shape is refused)
  void (*apply)(float *x, uint64_t seed, uint32_t epoch, int64_t sample);
} fpt_task_transform;

typedef struct fpt_task_def fpt_task_def;
struct fpt_task_def {
  const char *name;    // fpt data NAME; the dataset file's `task` attribute
  const char *summary; // one line for fpt data --help
  unsigned options;    // FPT_TAKES(...): the options it takes; any other is refused
  // Defaults of the options it takes (0 / NULL: none). n_val is the number
  // of samples carved out of train when carve_val is set.
  fpt_task_args defaults;
  int carve_val;     // the source has no validation split: move n_val samples out of train
  const char *reads; // converters: what they read, for "fpt data: read X in 1.2 s"
  // Build the dataset (a generator or a converter): d is zeroed on entry,
  // a resolved. d->seed and d->generator are set by the caller afterwards.
  int (*build)(const fpt_task_def *t, const fpt_task_args *a, fpt_dataset *d);
  // Generated on the fly (`fpt train --task NAME`): the shape and the
  // sampler for given sizes (NULL: the task comes from dataset files only).
  // Sample `index` of `split` is a pure function of (key, split, index).
  fpt_task_shape (*gen_shape)(const fpt_bit_task *t);
  void (*gen_sample)(const fpt_bit_task *t, uint64_t key, int split, int64_t index, float *x,
                     int32_t *y);
  const fpt_task_transform *transform; // training-time transform of its files, or NULL
};

extern const fpt_task_def fpt_task_table[];
extern const int fpt_task_count;

// The row of a task, or NULL.
const fpt_task_def *fpt_task_find(const char *name);
// Every task's name ("bit-xor, bit-memory, ..."), or only the generated ones.
const char *fpt_task_names(char *buf, size_t n, int generated_only);

// Mark every option "not given".
void fpt_task_args_unset(fpt_task_args *a);
// Refuse any given option that task t does not take (one error naming the
// option and the task), fill the others with t's defaults, set a->given,
// and check the split sizes (>= 1: an empty split is never written).
int fpt_task_resolve(const fpt_task_def *t, fpt_task_args *a);
// The help line of task option `opt` for fpt data --help: its base text and
// the tasks that take it, with their defaults.
void fpt_task_option_help(int opt, char *buf, size_t n);

// The build of every generated task: fpt_bit_task_make with the sizes in a,
// then n_train/n_val/n_test samples of splits 0/1/2 keyed by a->seed: the
// same streams as `fpt train --task NAME --data-seed SEED` evaluates.
int fpt_task_generate(const fpt_task_def *t, const fpt_task_args *a, fpt_dataset *d);

// Split a comma-separated list in place: *list gets the pieces (free it);
// returns their number.
int fpt_task_split_list(char *s, char ***list);

// ---------------------------------------------------------------------------
// The rows' hooks, defined next to each task's code in src/tasks/ (a new
// task declares its own here).

// bits.c: bit-xor and bit-memory.
fpt_task_shape fpt_bit_xor_shape(const fpt_bit_task *t);
void fpt_bit_xor_sample(const fpt_bit_task *t, uint64_t key, int split, int64_t index, float *x,
                        int32_t *y);
fpt_task_shape fpt_bit_memory_shape(const fpt_bit_task *t);
void fpt_bit_memory_sample(const fpt_bit_task *t, uint64_t key, int split, int64_t index, float *x,
                           int32_t *y);
// listops.c: generate LRA TSV files (unless --input), then read them.
int fpt_listops_build(const fpt_task_def *t, const fpt_task_args *a, fpt_dataset *d);
// images.c: IDX files (mnist, fashion-mnist), CIFAR-10 batches, and the
// CIFAR-10 training augmentation.
int fpt_idx_build(const fpt_task_def *t, const fpt_task_args *a, fpt_dataset *d);
int fpt_cifar10_build(const fpt_task_def *t, const fpt_task_args *a, fpt_dataset *d);
int fpt_cifar10_lra_build(const fpt_task_def *t, const fpt_task_args *a, fpt_dataset *d);
extern const fpt_task_transform fpt_cifar10_augmentation, fpt_cifar10_lra_augmentation;
// pfam.c: Stockholm files, one family each.
int fpt_pfam_build(const fpt_task_def *t, const fpt_task_args *a, fpt_dataset *d);
// text.c: byte windows of text files.
int fpt_text_build(const fpt_task_def *t, const fpt_task_args *a, fpt_dataset *d);

#endif
