// Pipeline schedules (1F1B, GPipe), the layer split and the grid check.
// Pure functions: no MPI, no I/O. See include/fpt/schedule.h.
#include "fpt/schedule.h"

#include <stdarg.h>
#include <stdio.h>

#include "fpt/check.h"

const char *fpt_op_name(fpt_op_kind kind) {
  switch (kind) {
  case FPT_OP_RECV_ACT:
    return "RECV_ACT";
  case FPT_OP_FWD:
    return "FWD";
  case FPT_OP_SEND_ACT:
    return "SEND_ACT";
  case FPT_OP_RECV_GRAD:
    return "RECV_GRAD";
  case FPT_OP_BWD:
    return "BWD";
  case FPT_OP_SEND_GRAD:
    return "SEND_GRAD";
  }
  return "?";
}

static int check_args(const char *fn, int kind, int S, int M, int s) {
  FPT_ENSURE(kind == FPT_SCHED_1F1B || kind == FPT_SCHED_GPIPE,
             "%s: unknown pipeline schedule %d (expected %d = 1F1B or %d = GPipe)", fn, kind,
             FPT_SCHED_1F1B, FPT_SCHED_GPIPE);
  FPT_ENSURE(S >= 1, "%s: pipeline stages S = %d, must be >= 1", fn, S);
  FPT_ENSURE(M >= 1, "%s: micro-batches M = %d, must be >= 1", fn, M);
  FPT_ENSURE(s >= 0 && s < S, "%s: stage %d outside [0, %d)", fn, s, S);
  return 0;
}

int fpt_schedule_len(int kind, int S, int M, int s) {
  if (check_args("fpt_schedule_len", kind, S, M, s))
    return -1;
  int per_mb = 2 + (s > 0 ? 2 : 0) + (s < S - 1 ? 2 : 0);
  return per_mb * M;
}

int fpt_schedule_max_live(int kind, int S, int M, int s) {
  if (check_args("fpt_schedule_max_live", kind, S, M, s))
    return -1;
  if (kind == FPT_SCHED_GPIPE)
    return M;
  return S - s < M ? S - s : M;
}

// Appending compute ops together with their communication.
typedef struct {
  fpt_op *ops;
  int n;
  int first, last; // stage position
} emitter;

static void put(emitter *e, fpt_op_kind k, int mb) {
  e->ops[e->n].kind = k;
  e->ops[e->n].mb = mb;
  e->n++;
}

static void fwd(emitter *e, int mb) {
  if (!e->first)
    put(e, FPT_OP_RECV_ACT, mb);
  put(e, FPT_OP_FWD, mb);
  if (!e->last)
    put(e, FPT_OP_SEND_ACT, mb);
}

static void bwd(emitter *e, int mb) {
  if (!e->last)
    put(e, FPT_OP_RECV_GRAD, mb);
  put(e, FPT_OP_BWD, mb);
  if (!e->first)
    put(e, FPT_OP_SEND_GRAD, mb);
}

int fpt_schedule(int kind, int S, int M, int s, fpt_op *ops) {
  FPT_TRY(check_args("fpt_schedule", kind, S, M, s));
  FPT_ENSURE(ops != NULL, "fpt_schedule: ops is NULL");
  emitter e = {ops, 0, s == 0, s == S - 1};
  if (kind == FPT_SCHED_GPIPE) {
    for (int mb = 0; mb < M; mb++)
      fwd(&e, mb);
    for (int mb = 0; mb < M; mb++)
      bwd(&e, mb);
  } else {
    int warm = S - s - 1 < M ? S - s - 1 : M;
    int f = 0, b = 0;
    while (f < warm)
      fwd(&e, f++);
    while (f < M) { // steady state: one forward, one backward
      fwd(&e, f++);
      bwd(&e, b++);
    }
    while (b < M) // cool-down
      bwd(&e, b++);
  }
  return 0;
}

void fpt_stage_layers(int L, int S, int s, int *l0, int *l1) {
  if (S < 1 || s < 0 || s >= S || L < 0) {
    *l0 = *l1 = 0;
    return;
  }
  int base = L / S, rem = L % S;
  int first_big = S - rem; // stages [first_big, S) get base + 1 layers
  *l0 = s * base + (s > first_big ? s - first_big : 0);
  *l1 = *l0 + base + (s >= first_big ? 1 : 0);
}

__attribute__((format(printf, 3, 4))) static int grid_fail(char *why, size_t why_len,
                                                           const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (why && why_len > 0)
    snprintf(why, why_len, "%s", msg);
  fpt_error_set("%s", msg);
  return 1;
}

int fpt_check_grid(int world, int S, int L, int M, int batch, char *why, size_t why_len) {
  if (why && why_len > 0)
    why[0] = '\0';
  if (world < 1)
    return grid_fail(why, why_len, "world size %d: need at least 1 rank", world);
  if (S < 1)
    return grid_fail(why, why_len, "pipeline stages %d: need at least 1 stage", S);
  if (L < 1)
    return grid_fail(why, why_len, "layers %d: need at least 1 layer", L);
  if (M < 1)
    return grid_fail(why, why_len, "micro-batches %d: need at least 1 micro-batch", M);
  if (batch < 1)
    return grid_fail(why, why_len, "batch size %d: need at least 1 sample", batch);
  if (world % S != 0)
    return grid_fail(why, why_len,
                     "world size %d is not divisible by the %d pipeline stages "
                     "(ranks form world/stages data-parallel replicas of the pipeline)",
                     world, S);
  if (S > L)
    return grid_fail(why, why_len,
                     "%d pipeline stages but only %d layers: every stage needs at least one layer",
                     S, L);
  long long replicas = world / S, per = replicas * (long long)M;
  if (batch % per != 0)
    return grid_fail(why, why_len,
                     "batch size %d is not divisible by replicas (world/stages = %d/%d = %lld) x "
                     "micro-batches (%d) = %lld",
                     batch, world, S, replicas, M, per);
  return 0;
}
