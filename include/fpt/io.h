// File formats: HDF5 model files, safetensors import, metrics.jsonl.
// Every reader validates what it reads and fails with one message naming the
// file and the dataset; every writer writes to a temporary name and renames,
// so that a failure never leaves a partial file behind.
#ifndef FPT_IO_H
#define FPT_IO_H

#include <hdf5.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>

#include "fpt/model.h"
#include "fpt/run.h"

#define FPT_MODEL_FORMAT_VERSION 1

// --- HDF5 helpers (src/io/h5util.c) ---
void fpt_h5_quiet(void); // no HDF5 error-stack dumps; we report our own
// "[d0, d1, ...]" for error messages.
void fpt_format_shape(char *buf, size_t n, int ndim, const int64_t *d);
int fpt_h5_check_readable(const char *path); // exists, readable, HDF5
int fpt_h5_open_read(const char *path, hid_t *file);
int fpt_h5_open_dataset(hid_t file, const char *path, const char *name, hid_t *ds);
int fpt_h5_exists(hid_t file, const char *name); // 1 if the object exists (any depth)
int fpt_h5_read_attr_str(hid_t file, const char *path, const char *name, char *buf, size_t size);
// Read a float32 dataset of exactly the given shape.
int fpt_h5_read_floats(hid_t file, const char *path, const char *name, int ndim,
                       const int64_t *dims, float *out);
// The same on a file by name (opened and closed; src/cli holds no handles).
int fpt_h5_file_shape(const char *path, const char *name, int *ndim, int64_t *dims);
int fpt_h5_file_read_floats(const char *path, const char *name, int ndim, const int64_t *dims,
                            float *out);
// 1 with a message naming the file, the dataset and the element when x holds
// a NaN or an infinity (model files, checkpoints, inputs: never trained on).
int fpt_check_finite(const char *path, const char *name, const float *x, size_t n);
// Shape of a dataset (ndim in/out; at most 4 dims).
int fpt_h5_shape(hid_t file, const char *path, const char *name, int *ndim, int64_t *dims);
int fpt_h5_read_attr_i64(hid_t file, const char *path, const char *name, int64_t *v);
// An attribute that must be stored as an integer (a float such as 32.7 is refused).
int fpt_h5_read_attr_int(hid_t file, const char *path, const char *name, int64_t *v);
int fpt_h5_read_attr_f64(hid_t file, const char *path, const char *name, double *v);
int fpt_h5_write_floats(hid_t file, const char *name, int ndim, const int64_t *dims,
                        const float *data);
int fpt_h5_write_ints(hid_t file, const char *name, int ndim, const int64_t *dims,
                      const int32_t *data); // int32
int fpt_h5_write_doubles(hid_t file, const char *name, int ndim, const int64_t *dims,
                         const double *data);
int fpt_h5_write_attr_i64(hid_t obj, const char *name, int64_t v);
int fpt_h5_write_attr_f64(hid_t obj, const char *name, double v);
int fpt_h5_write_attr_str(hid_t obj, const char *name, const char *v);

// ": No space left on device" and the like when errno e says why a file
// operation failed; "" for an errno that says nothing about it.
const char *fpt_io_why(int e);
// The name of the file an HDF5 object belongs to, as its writer will call it:
// a temporary x.h5.tmp or x.h5.tmp.<pid> is named x.h5.
void fpt_h5_file_label(hid_t obj, char *buf, size_t n);
// Collective over comm: every rank passes its own rc. If any rank failed,
// every rank returns 1 and holds the message of the lowest failing rank (the
// real cause, on every rank). Call it before each collective HDF5 call that
// follows something that can fail on one rank only, so that all ranks leave
// together instead of some waiting in that call for ever.
int fpt_io_agree(MPI_Comm comm, int rc);
// Files being written and a full disk. In HDF5 1.10, a failed H5Fclose frees
// the file's structures but keeps its ID, on which the exit handler then
// crashes (exit 139), and after one failed flush every later close fails; with
// MPI-IO, a write that fails on one rank inside a collective call (H5Dcreate's
// chunk fill, a metadata flush) leaves the other ranks in it for ever. So:
// fpt_h5_reserve reserves the disk blocks of tmp (fallocate) up to `upto`
// bytes, before HDF5 writes into them: call it before each call that
// allocates file space, with upto at least the file's end of allocation after
// that call. comm: MPI_COMM_NULL for a serial file, else the ranks that opened
// it (collective: rank 0 reserves, all agree). point: the fault-switch name
// (fpt_fault_fail). 0, or 1 with a message naming path (every rank).
int fpt_h5_reserve(const char *tmp, const char *path, MPI_Comm comm, int64_t upto,
                   const char *point);
// Close a file written in full (after fpt_h5_reserve with nothing left to
// allocate); rank 0 then cuts tmp to the end of allocation and fsyncs it.
// Collective like fpt_h5_reserve. 0, or 1 with a message naming path.
int fpt_h5_close(hid_t f, const char *tmp, const char *path, MPI_Comm comm, const char *point);
// Throw away a file being written after a failure (f < 0: only remove tmp):
// closed without anything that can fail (a serial file's last writes go to
// memory; a parallel one's into its reserved blocks), then tmp removed by
// rank 0. Collective when comm is not MPI_COMM_NULL.
void fpt_h5_discard(hid_t f, const char *tmp, MPI_Comm comm);

// Atomic output: create `path`.tmp.<pid>, and commit by rename.
// On a full disk: one message naming path, the temporary removed, no crash.
typedef struct {
  char path[4096], tmp[4200];
  hid_t file;
} fpt_h5_out;
int fpt_h5_out_create(fpt_h5_out *o, const char *path);
int fpt_h5_out_commit(fpt_h5_out *o);
void fpt_h5_out_abort(fpt_h5_out *o);

// --- model files (src/io/model_file.c) ---
// The backbone's configuration from the file's root attributes: `kind`
// ("gpt2" when absent) and the attributes its table declares (fpt/backbone.h),
// checked; one message naming the file and the attribute otherwise.
int fpt_model_file_config(const char *path, fpt_backbone_cfg *cfg);
// The same from the attributes of any HDF5 object (a checkpoint's /run group).
int fpt_model_cfg_read(hid_t obj, const char *path, fpt_backbone_cfg *cfg);
// Write cfg as root attributes (kind, the kind's attributes, format_version).
int fpt_model_file_write_config(hid_t file, const fpt_backbone_cfg *cfg);
// Load every backbone tensor of m from the file (shapes checked).
int fpt_model_file_load(const char *path, fpt_model *m);
// A language model's token table: load /wte/weight into m's "wte/weight" when
// both exist (*loaded = 1); nothing otherwise.
int fpt_model_file_load_wte(const char *path, fpt_model *m, int *loaded);
// Write m's backbone in the model-file layout.
int fpt_model_file_write(const char *path, const fpt_model *m);
// Where an exported backbone came from, as root attributes source_*.
typedef struct {
  const char *run, *checkpoint, *task;
  int64_t step;
  double val_accuracy; // NaN when the run logged none at that step
} fpt_provenance;
// The same, with its provenance.
int fpt_model_file_write_from(const char *path, const fpt_model *m, const fpt_provenance *p);
// fpt export: a checkpoint of any kind and stage layout -> a model file that
// `fpt train --model` takes as a frozen backbone. model: the backbone file
// the run was built from (NULL: the path the checkpoint names; its checksum
// must match).
int fpt_export_checkpoint(const char *ckpt, const char *model, const char *out);
// Write all tensors of m whose names pass `filter` (NULL = all) to an open file.
int fpt_h5_write_tensors(hid_t file, const fpt_model *m, int backbone_only);

// --- safetensors import (src/io/safetensors.c) ---
int fpt_import_safetensors(const char *in_path, const char *out_path);
// n_head > 0 overrides config.json and the n_embd/64 default.
int fpt_import_safetensors_heads(const char *in_path, const char *out_path, int n_head);

// --- metrics.jsonl (src/io/metrics.c) ---
typedef struct {
  FILE *f;
  char path[4096];
} fpt_metrics;
int fpt_metrics_open(fpt_metrics *mt, const char *run_dir);
// One JSON object per line; `extra` pairs (name, value) may be appended.
int fpt_metrics_write(fpt_metrics *mt, int64_t step, const char *split, double loss,
                      double accuracy, double tokens_per_s, int n_extra,
                      const char *const *extra_names, const double *extra_values);
// A line {"step": step, "split": "run", keys[i]: values[i], ...} that says
// what ran (CPU, BLAS kernel, grid): written when a run starts or resumes.
int fpt_metrics_write_info(fpt_metrics *mt, int64_t step, int n, const char *const *keys,
                           const char *const *values);
void fpt_metrics_close(fpt_metrics *mt);
// The accuracy of the last `split` line at `step` of RUN_DIR/metrics.jsonl:
// 0, or 1 if there is none.
int fpt_metrics_find(const char *run_dir, int64_t step, const char *split, double *accuracy);
// On resume: keep only the lines of steps <= step (written before the
// checkpoint), minus final-evaluation lines (marked "final"), which the run redoes.
int fpt_metrics_truncate(const char *run_dir, int64_t step);

// The /run group of a checkpoint (fpt/run.h): d as typed attributes of
// the open file's /run.
int fpt_run_desc_write(hid_t file, const fpt_run_desc *d);

#endif
