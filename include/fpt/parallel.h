// The MPI side of training: the process grid (pipeline stages x data-parallel
// replicas) and the executor that runs the pure schedule (fpt/schedule.h) on
// it. Model math stays in fpt/model.h; this file only moves data and sums.
#ifndef FPT_PARALLEL_H
#define FPT_PARALLEL_H

#include <mpi.h>

#include "fpt/batches.h"
#include "fpt/model.h"
#include "fpt/schedule.h"

// World = S stages x R replicas. rank = replica * S + stage: the stages of a
// replica are neighbours, so on a cluster a pipeline stays inside a node.
typedef struct {
  int world, rank, S, R, stage, replica;
  MPI_Comm pipe;       // my replica's S stages (rank in it = stage)
  MPI_Comm stage_comm; // my stage's R replicas: gradient all-reduce
  MPI_Comm node_stage; // my stage's replicas on my node: shared frozen weights
  int node_rank;       // rank in node_stage (0 owns the shared window)
  MPI_Win win;         // shared window of the frozen weights, or MPI_WIN_NULL
} fpt_grid;

// Checks the world against what the launcher intended (so that `srun`
// without PMIx, where every process is a lone rank 0, is caught).
int fpt_grid_check_launch(int world);
int fpt_grid_create(fpt_grid *g, int S, MPI_Comm world);
// Storage for n floats of frozen weights shared by node_stage (leader
// allocates, the others map it). *leader tells whether this rank fills it.
int fpt_grid_shared_frozen(fpt_grid *g, size_t n, float **mem, int *leader);
void fpt_grid_free(fpt_grid *g);

// Seconds of one step by kind.
typedef struct {
  double compute, p2p_wait, allreduce, io;
} fpt_step_times;

typedef struct {
  fpt_grid *g;
  fpt_model *m;
  fpt_source *src;
  int B, M, mbs; // global batch, micro-batches, samples per micro-batch
  int kind;      // FPT_SCHED_*
  fpt_op *ops;
  int n_ops;
  // Activations: one slot per micro-batch that can be live at once on this
  // stage (1F1B: min(S - stage, M); GPipe: M); micro-batch k uses slot k % n_slots.
  int n_slots;
  fpt_acts *acts;      // n_slots
  fpt_source_buf *buf; // M
  float **h_in;        // M activations from the previous stage (stage > 0)
  float **g_in;        // M output gradients from the next stage (stage < S-1)
  fpt_step_times t;
} fpt_pipeline;

int fpt_pipeline_create(fpt_pipeline *p, fpt_grid *g, fpt_model *m, fpt_source *src, int B, int M,
                        int kind);
void fpt_pipeline_free(fpt_pipeline *p);
// The gradients of one training step: forward/backward of every micro-batch
// along the schedule, the all-reduce over replicas, and the sum of squares of
// every stage's gradients (for the global-norm clip). The optimizer step is
// the model's (fpt_optimizer_step): the executor knows nothing of Adam.
// *loss and *acc (means over the global batch) and *global_sumsq are the same
// on every rank.
int fpt_pipeline_train_step(fpt_pipeline *p, int64_t step, uint64_t seed, double *loss, double *acc,
                            double *global_sumsq);
// Whole val or test split, forward only. Same value on every rank.
int fpt_pipeline_evaluate(fpt_pipeline *p, int split, double *loss, double *acc);
// The same over any split (train included, in order, unaugmented), handing
// each micro-batch's readout features to `sink` on the last stage: samples
// [first, first + n), ln_f at the r readout positions (n * r rows of C) and
// the labels (n x K). A replica's samples come in order.
typedef void (*fpt_readout_sink)(void *ctx, int64_t first, int n, const float *lnf,
                                 const int32_t *y);
int fpt_pipeline_forward_split(fpt_pipeline *p, int split, fpt_readout_sink sink, void *ctx,
                               double *loss, double *acc);

#endif
