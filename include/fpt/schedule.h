// Pipeline-parallel schedules as pure functions (no MPI, no I/O).
//
// A training step pushes M micro-batches through S pipeline stages. For each
// stage s the schedule is a list of ops in execution order: compute (FWD, BWD)
// and point-to-point communication with the neighbours (activations flow
// s -> s+1, gradients flow s+1 -> s). Stage 0 never receives activations or
// sends gradients; the last stage never sends activations or receives
// gradients (its backward starts from the loss).
//
// Schedules (both run the backwards in micro-batch order 0, 1, ..., M-1 on
// every stage, so weight gradients are accumulated in the same order and the
// two schedules give bitwise identical gradients):
//
//   FPT_SCHED_1F1B  PipeDream-Flush. Stage s does W = min(S-s-1, M) warm-up
//                   forwards, then M-W rounds of (one forward, one backward),
//                   then drains the W remaining backwards. At most
//                   min(S-s, M) micro-batches hold activations at once.
//   FPT_SCHED_GPIPE All M forwards (0..M-1), then all M backwards (0..M-1).
//                   All M micro-batches hold activations at once.
//
// With equal-cost stages and free communication both take (M+S-1)(t_f+t_b):
// the bubble fraction is (S-1)/(M+S-1). 1F1B's gain is memory, not time.
//
// Placement of communication: every RECV immediately precedes the compute op
// that consumes it; every SEND immediately follows the compute op that
// produced it. Per stage and per mb: RECV_ACT, FWD, SEND_ACT, ..., RECV_GRAD,
// BWD, SEND_GRAD (minus the ones the stage's position excludes).
//
// Matching rule for the executor (MPI, one communicator per pipeline):
//  * Channels: stage s receives only activations from s-1 and only gradients
//    from s+1. On each directed channel the sender's SEND sequence and the
//    receiver's RECV sequence list the same micro-batches in the same order,
//    so MPI's in-order (non-overtaking) matching pairs them even with a
//    single fixed tag per kind. Use tag = 2*mb + (kind is a gradient) anyway
//    to make pairing unambiguous if receives are posted out of order.
//  * RECV_*(mb): MPI_Irecv must be posted no later than this op (posting it
//    earlier - e.g. at step start, or one op ahead to overlap - is allowed,
//    since every micro-batch has its own buffer); the executor MPI_Waits on
//    it here, before the compute that uses it.
//  * SEND_*(mb): MPI_Isend here; never block on it at this position. Every
//    send must be completed by the end of the step (MPI_Waitall). A
//    SEND_ACT(mb) may be completed earlier, any time after this stage's
//    RECV_GRAD(mb) has completed (the next stage has then certainly received
//    it), which bounds outstanding activation sends by the live count.
//  Under these rules a stage blocks only in the Wait of a RECV (and in the
//  final Waitall), so the execution behaves like the model "blocking
//  receives, sends buffered and never blocking", under which the schedules
//  complete without deadlock (simulated for both kinds, S <= 12, M <= 16, in
//  tests/unit/test_schedule.c). Do NOT use blocking MPI_Send / MPI_Ssend at
//  SEND ops: e.g. in 1F1B steady state stage s's SEND_ACT and stage s+1's
//  SEND_GRAD can face each other.
#ifndef FPT_SCHEDULE_H
#define FPT_SCHEDULE_H

#include <stddef.h>

typedef enum {
  FPT_OP_RECV_ACT,
  FPT_OP_FWD,
  FPT_OP_SEND_ACT,
  FPT_OP_RECV_GRAD,
  FPT_OP_BWD,
  FPT_OP_SEND_GRAD
} fpt_op_kind;

typedef struct {
  fpt_op_kind kind;
  int mb; // micro-batch index in [0, M)
} fpt_op;

enum { FPT_SCHED_1F1B = 0, FPT_SCHED_GPIPE = 1 };

// Short name of an op kind ("FWD", "RECV_ACT", ...); "?" if unknown.
const char *fpt_op_name(fpt_op_kind kind);

// Number of ops stage s performs in one step: 2M compute ops, plus 2M if
// s > 0 (RECV_ACT, SEND_GRAD), plus 2M if s < S-1 (SEND_ACT, RECV_GRAD).
// Returns -1 (with fpt_error_set) for an unknown kind, S < 1, M < 1 or s
// outside [0, S).
int fpt_schedule_len(int kind, int S, int M, int s);

// Fill ops[0 .. fpt_schedule_len(kind, S, M, s)) for stage s in execution
// order. Returns 0, or nonzero (with fpt_error_set) for an unknown kind,
// S < 1, M < 1, s outside [0, S) or ops == NULL.
int fpt_schedule(int kind, int S, int M, int s, fpt_op *ops);

// Maximum number of micro-batches whose activations stage s holds at once
// (forwarded, not yet backwarded): min(S-s, M) for 1F1B, M for GPipe.
// Returns -1 (with fpt_error_set) for invalid arguments.
int fpt_schedule_max_live(int kind, int S, int M, int s);

// Split L layers into S contiguous ranges [*l0, *l1) whose sizes differ by at
// most 1. With r = L mod S, the LAST r stages get the extra layer: in 1F1B
// early stages hold more live micro-batches (stage s holds up to S-s), so this
// keeps the peak activation memory (on stage 0) as low as possible. Stages
// are in order: stage 0 starts at layer 0, stage S-1 ends at layer L.
// Invalid arguments (S < 1, s outside [0, S), L < 0) give *l0 = *l1 = 0;
// validate the grid with fpt_check_grid first.
void fpt_stage_layers(int L, int S, int s, int *l0, int *l1);

// Check a process grid: world ranks as (world / S) data-parallel replicas of
// an S-stage pipeline over L layers, running M micro-batches per step over a
// global batch of `batch` samples. Returns 0 (why = "") or nonzero with the
// reason in why (when non-NULL; truncated to why_len) and in fpt_error_set,
// for: any of world, S, L, M, batch < 1; world not divisible by S; S > L
// (every stage needs at least one layer); batch not divisible by
// (world / S) * M (every replica's micro-batch must have the same size).
int fpt_check_grid(int world, int S, int L, int M, int batch, char *why, size_t why_len);

#endif
