// HDF5 dataset files: a serial writer (for `fpt data`) and a parallel reader in
// which each rank reads only its own samples with one collective hyperslab-
// union read per array. The layout is documented in fpt/dataset.h.
#ifndef FPT_DATASET_FILE_H
#define FPT_DATASET_FILE_H

#include <hdf5.h>
#include <mpi.h>

#include "fpt/dataset.h"

// chunk_samples = 0: contiguous (fastest for shuffled reads with HDF5 1.10);
// > 0: chunked along the sample axis, that many samples per chunk.
int fpt_dataset_write(const char *path, const fpt_dataset *d, int64_t chunk_samples);

typedef struct {
  char path[4096];
  MPI_Comm comm;
  hid_t file;
  fpt_dataset meta; // attributes and shapes; split arrays unused
  int64_t n[3];     // samples per split
  hid_t x[3], x2[3], y[3];
  int64_t size, mtime_ns; // the file as opened: every read checks it is unchanged
  uint64_t ino;
} fpt_data_reader;

// Collective over comm. Validates the layout: one error naming file and dataset.
int fpt_data_open(fpt_data_reader *r, const char *path, MPI_Comm comm);
// Collective: every rank of comm calls it, each with its own samples (global
// indices into the split, any order, n may be 0). Pass NULL for what this
// rank does not need (inputs, labels): nothing is read for it. `which`
// selects the tokenisation: 1 = x, 2 = x2. Output rows follow idx's order.
int fpt_data_read(fpt_data_reader *r, int split, const int64_t *idx, int n, int which, void *x,
                  int32_t *y);
void fpt_data_close(fpt_data_reader *r);

#endif
