// Checkpoints: one HDF5 file per checkpoint, written collectively by all
// ranks (each stage writes its own tensors; replica 0 supplies the data),
// with Fletcher32 checksums on every dataset. A checkpoint is written under a
// temporary name, closed, renamed, and only then recorded in RUN/checkpoints/
// latest, so a process killed at any moment leaves the previous one loadable.
// The frozen backbone is not copied: its path and checksum identify it.
#ifndef FPT_CHECKPOINT_H
#define FPT_CHECKPOINT_H

#include <mpi.h>
#include <stdint.h>

#include "fpt/model.h"
#include "fpt/run.h"

// 2: the run's description as typed attributes of /run (fpt/run.h); 1 kept
// it as YAML text in the root attribute `config` (still read).
#define FPT_CKPT_FORMAT_VERSION 2
#define FPT_EXIT_REQUEUE 75 // EX_TEMPFAIL: checkpointed after a signal or time limit

typedef struct {
  int64_t step; // completed training steps
  int64_t adam_t;
  int64_t seed, batch_size;
  int64_t sample_offset; // position in the training stream (= step * batch_size)
  double window[7];      // metric accumulators of the current logging window
  int64_t window_steps;
  double best_val; // early stopping: best validation loss so far
  int64_t best_step, evals_since_best;
  // The same for the validation accuracy (--early-stop-on accuracy); a
  // checkpoint written before it was kept reads back -inf, 0, 0.
  double best_val_acc;
  int64_t best_acc_step, evals_since_best_acc;
} fpt_ckpt_state;

// FNV-1a 64 of a file's bytes, as 16 hex digits.
int fpt_file_checksum(const char *path, char hex[17]);

// Collective over world. writer: this rank's tensors are written (replica 0).
// desc: the run's description, stored in /run.
int fpt_checkpoint_write(const char *run_dir, MPI_Comm world, const fpt_model *m, int writer,
                         const fpt_ckpt_state *st, const fpt_run_desc *desc, int keep);
// The newest complete checkpoint of a run (from `latest`): 0 and path, or 1 if none.
int fpt_checkpoint_latest(const char *run_dir, char *path, size_t n);
// Read the state, and check that the checkpoint fits this model/task.
int fpt_checkpoint_read_state(const char *path, const fpt_model *m, fpt_ckpt_state *st);
// Load this rank's trainable tensors and their Adam moments.
int fpt_checkpoint_load(const char *path, fpt_model *m);
// Load /params/<name> into every tensor of m, trainable or frozen, whose name
// starts with one of `prefixes` (NULL-terminated; NULL = any) and that the
// file holds; the names in `need` (NULL-terminated) must be there when m
// owns them. Frozen tensors that another rank fills (m->frozen_readonly) are
// skipped. *loaded counts the tensors read. No Adam moments.
int fpt_checkpoint_load_params(const char *path, fpt_model *m, const char *const *prefixes,
                               const char *const *need, int *loaded);

// --- A run directory belongs to one run (src/io/run_dir.c) ---
// Lock RUN/.fpt.lock (flock, held until the process ends; fd stays open),
// recording "host H pid P" for the message another run gets.
int fpt_run_lock(const char *run_dir, int *fd);
// Opens the checkpoint and reads every dataset back (Fletcher32 checksums).
int fpt_checkpoint_verify(const char *path);
// The checkpoint a resume starts from: `latest` if it names one that
// verifies, else the newest ckpt-*.h5 that does (*note says why).
// FPT_RESUME_FRESH: the run has no checkpoint at all. An error (1) if it has
// checkpoints and none verifies: a run is never restarted over them.
#define FPT_RESUME_FRESH 2
int fpt_checkpoint_resume_point(const char *run_dir, char *path, size_t size, char *note,
                                size_t note_size);
// RUN/checkpoints holds a checkpoint file or a tracker.
int fpt_run_has_checkpoints(const char *run_dir);
// The two paths name the same existing file (an output must never be an input).
int fpt_same_file(const char *a, const char *b);
// An output path can be written: its directory exists and is writable, and it
// is not a directory or another non-regular file. `what` names the option.
int fpt_output_ok(const char *what, const char *path);

// --keep-best (rank 0): the latest checkpoint becomes RUN/checkpoints/best.h5
// (a hard link: pruning keeps it; renamed into place, never half there), then
// best.json records {"step", "val_accuracy", "val_loss"}. The checkpoint's own
// step attribute is the truth should a crash fall between the two renames.
int fpt_checkpoint_keep_best(const char *run_dir, int64_t step, double val_acc, double val_loss);
// The validation accuracy best.json records; -INFINITY when there is none.
// An error when best.json is there but best.h5 is not (the run's best weights
// are lost: its test at the best val evaluation could not be scored).
int fpt_checkpoint_best_accuracy(const char *run_dir, double *val_acc);

#endif
