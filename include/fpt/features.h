// The feature cache of `fpt probe`: for every split, the inputs of the output
// layer (ln_f at the r readout positions) and the labels, so that a sweep over
// the ridge parameter, or another solver, does not rerun the backbone. One
// HDF5 file, written collectively under a temporary name and renamed:
//   root attributes: format_version (1), model_checksum, data_checksum,
//     data_path, task, tokens, init (strings), seed, n_embd, r, K, n_out,
//     n_classes (int64), orth_gain (float64)
//   /train, /val, /test:
//     features  float32 [N * r, C]: row i * r + j is readout position j of
//               sample i (the N x (r * C) matrix, one row per position,
//               since the output layer is shared by the readout positions)
//     y         int32 [N, K], the labels, as in the dataset file
// The cache is reused only when every identifying attribute matches.
#ifndef FPT_FEATURES_H
#define FPT_FEATURES_H

#include <hdf5.h>
#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#define FPT_FEATURES_FORMAT_VERSION 1

// What the features depend on; a cache with other values is stale.
typedef struct {
  char model_checksum[17], data_checksum[17];
  char data_path[4096];
  char task[32], tokens[8], init[16];
  int64_t seed;     // input-layer init (and a random/stats backbone)
  double orth_gain; // input-layer init
  int64_t n_embd, r, K, n_out, n_cls;
  int64_t n[3]; // samples per split
} fpt_features_meta;

// Rows (or columns) first + k * stride + [0, block), k = 0, 1, ..., clipped
// to [0, total): a contiguous slice, a replica's share of an evaluation pass,
// or a process row's share of a block-cyclic matrix are all of this form.
typedef struct {
  int64_t first, stride, block, total;
} fpt_stripes;
int64_t fpt_stripes_count(const fpt_stripes *s);
// A contiguous slice [first, first + n) of total.
fpt_stripes fpt_stripes_range(int64_t first, int64_t n, int64_t total);

// Serial (call on one rank): *usable = 1 if path holds a complete cache with
// exactly `want`'s identity; otherwise 0 and a reason in why. A missing file
// is not an error; an unreadable one is reported as the reason.
void fpt_features_check(const char *path, const fpt_features_meta *want, int *usable, char *why,
                        size_t n);

typedef struct {
  char path[4096], tmp[4200];
  hid_t file;
  MPI_Comm comm;
  int writing;
} fpt_features_file;

// Collective: create path.tmp with the identity attributes and empty datasets.
int fpt_features_create(fpt_features_file *f, const char *path, const fpt_features_meta *meta,
                        MPI_Comm comm);
// Collective: this rank's feature rows (`rows` of [0, N * r), C floats each,
// row-major) and the labels of its samples (`samples` of [0, N), K each).
// A rank that holds nothing passes counts of zero.
int fpt_features_write(fpt_features_file *f, int split, const fpt_stripes *rows, const float *feat,
                       const fpt_stripes *samples, const int32_t *y);
// Collective: close, then rank 0 renames the file into place.
int fpt_features_commit(fpt_features_file *f);
void fpt_features_abort(fpt_features_file *f);

// Collective open for reading; meta gets the file's attributes.
int fpt_features_open(fpt_features_file *f, const char *path, fpt_features_meta *meta,
                      MPI_Comm comm);
// Collective: the features at rows x cols (row-major, count(rows) x count(cols)).
int fpt_features_read(fpt_features_file *f, int split, const fpt_stripes *rows,
                      const fpt_stripes *cols, float *out);
// Collective: the labels of `samples` (count x K).
int fpt_features_read_labels(fpt_features_file *f, int split, const fpt_stripes *samples, int K,
                             int32_t *y);
void fpt_features_close(fpt_features_file *f);

#endif
