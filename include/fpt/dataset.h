// Datasets in memory, as the converters build them and the HDF5 dataset file
// stores them (src/io/dataset_file.c). A dataset has three splits; each split
// holds inputs x, either float tokens (N, T, D) or int32 token ids (N, T), and
// int32 targets y (N, K). Converters fill an fpt_dataset; `fpt data` writes it.
//
// The HDF5 dataset file (written by fpt_dataset_write, read in parallel by
// src/io/dataset_file.c; Python converters write the same layout):
//   root attributes: task (string), format_version (int64 = 1), seq, d_in,
//     vocab, seq2, vocab2, n_classes, K, r, pad_id, seed (all int64),
//     sources, generator (strings)
//   /train, /val, /test groups, each with
//     x   float32 (N, seq, d_in) if d_in > 0, else int32 (N, seq)
//     x2  int32 (N, seq2), only if seq2 > 0 (a second tokenisation)
//     y   int32 (N, K)
//     index  int64 (N), optional: each sample's index in the source split
//   every dataset chunked along the sample axis only.
#ifndef FPT_DATASET_H
#define FPT_DATASET_H

#include <stdint.h>

#define FPT_DATASET_FORMAT_VERSION 1

enum { FPT_TRAIN = 0, FPT_VAL = 1, FPT_TEST = 2 };
extern const char *const fpt_split_names[3];

typedef struct {
  int64_t n;      // samples
  float *x;       // (n, T, D) continuous tokens, or NULL
  int32_t *ids;   // (n, T) token ids, or NULL
  int32_t *ids2;  // (n, T2) second tokenisation (ListOps: corrected LRA), or NULL
  int32_t *y;     // (n, K)
  int64_t *index; // (n) index of each sample in its source split, or NULL
} fpt_split;

typedef struct {
  char task[32];       // e.g. "fashion-mnist"
  int seq;             // T
  int d_in;            // continuous token width (0 for ids)
  int vocab;           // id vocabulary, ids in [0, vocab) (0 for floats)
  int seq2, vocab2;    // second tokenisation (0 if none)
  int n_classes;       // classes per target
  int K;               // targets per sample
  int r;               // readout: the last r positions feed the output layer
  char sources[2048];  // source files, "; "-separated
  char generator[256]; // how it was made, e.g. "fpt data listops --seed 1"
  int64_t seed;        // generator / split seed
  int pad_id;          // padding id for variable-length sequences (-1: none)
  fpt_split split[3];  // train, val, test
} fpt_dataset;

void fpt_dataset_free(fpt_dataset *d);
// Allocate split s for n samples with the dataset's shapes (zeroed).
void fpt_dataset_alloc(fpt_dataset *d, int s, int64_t n);
// Move a seeded random n_val samples of train into val (the rest stays in
// train, in its original order). Deterministic in seed.
void fpt_dataset_carve_val(fpt_dataset *d, int64_t n_val, uint64_t seed);

#endif
