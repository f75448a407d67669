// Where training and evaluation samples come from: a task generated on the
// fly (bit-xor, bit-memory) or a dataset file read in parallel. Which samples
// make up global batch k never depends on the number of ranks: the training
// stream is position p = k * B + j, taken from a seeded per-epoch permutation.
#ifndef FPT_BATCHES_H
#define FPT_BATCHES_H

#include <mpi.h>

#include "fpt/dataset_file.h"
#include "fpt/model.h"
#include "fpt/task_registry.h"
#include "fpt/tasks.h"

typedef struct {
  int from_file;
  char task[32];
  fpt_task_shape shape;
  int K;
  // generated tasks
  fpt_bit_task bits;
  uint64_t train_key, eval_key;
  int64_t eval_samples;
  // dataset files
  fpt_data_reader rd;
  int which; // 1 = x, 2 = x2
  // Files: evaluations and the probe use the first limit[split] samples (0:
  // all); training draws from the whole train split whatever limit[FPT_TRAIN].
  int64_t limit[3];
  uint64_t shuffle_seed;
  int64_t perm_epoch; // epoch whose permutation is cached (-1: none)
  int64_t *perm;
  // The task's training-time transform (the task table: the CIFAR-10
  // augmentation of cifar10 and cifar10-lra files): augment 1 and transform
  // set when it is applied, else 0 and NULL.
  int augment;
  const fpt_task_transform *transform;
  // Right-padded token files (pad_id >= 0): with `lengths` set, every rank
  // reads the tokens and each sample's real length (fpt_source_buf.len).
  int pad_id, lengths;
  // Masked-byte pretraining (fpt pretrain --objective mlm) on a text file:
  // BERT's 15 % of positions chosen (80 % -> the mask id, 10 % a random byte,
  // 10 % kept) by the counter-based RNG of (seed, step or split, sample,
  // position); y holds the original byte there and -1 (no target) elsewhere.
  // The token table gains the mask id: vocab = n_cls = 257.
  int mlm;
  uint64_t mlm_seed;
  // A read found an id or class out of range, or a NaN: the message is set
  // (fpt_error_set), the values were zeroed so the step runs safely, and the
  // executor stops every rank at its next agreement point.
  int bad_values;
} fpt_source;

int fpt_source_open_task(fpt_source *s, const fpt_bit_task *t, const char *name, uint64_t seed,
                         uint64_t data_seed, int64_t eval_samples);
// The same for a task named in the task table that is generated on the fly
// (fpt train --task NAME; sizes 0 = the task's defaults): fpt_bit_task_make,
// then fpt_source_open_task.
int fpt_source_open_generated(fpt_source *s, const char *name, int n_bits, int patterns, int patch,
                              uint64_t seed, uint64_t data_seed, int64_t eval_samples);
// augment: apply the file's task's training-time transform (the task table;
// the paper's CIFAR-10 augmentation for cifar10 and cifar10-lra), keyed by
// (seed, epoch, training row), so that it does not depend on the rank layout.
int fpt_source_open_file(fpt_source *s, const char *path, const char *tokens, uint64_t seed,
                         int augment, MPI_Comm comm);
void fpt_source_close(fpt_source *s);
// Samples in a split: val/test sizes (train: the file's, or -1 if infinite).
int64_t fpt_source_size(const fpt_source *s, int split);

// A buffer for up to B samples.
typedef struct {
  int B;
  float *x;
  int32_t *ids, *y;
  int64_t *sample; // global stream position (dropout key)
  int32_t *len;    // real positions of each sample (source->lengths), else NULL
} fpt_source_buf;
// The model masks or reads by real length (bidirectional attention, the
// last-real and mean readouts): have batches carry lengths. No-op for
// sources without padding.
void fpt_source_want_lengths(fpt_source *s);
// Turn a text source into a masked-language-model source (see `mlm`).
int fpt_source_mlm(fpt_source *s, uint64_t seed);
#define FPT_MLM_MASK 256 // the mask token id of byte-level MLM
void fpt_source_buf_init(fpt_source_buf *b, const fpt_source *s, int B);
void fpt_source_buf_free(fpt_source_buf *b);

// Training positions [first, first+n) into b (collective for files: every
// rank calls, n may be 0). need_x / need_y: what this rank uses.
int fpt_source_train(fpt_source *s, int64_t first, int n, int need_x, int need_y,
                     fpt_source_buf *b);
// Samples [first, first+n) of val or test, in order (collective likewise).
int fpt_source_eval(fpt_source *s, int split, int64_t first, int n, int need_x, int need_y,
                    fpt_source_buf *b);

#endif
