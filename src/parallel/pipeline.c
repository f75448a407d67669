// The executor: runs a stage's op list from the pure schedule. Receives are
// posted at the start of the step (every micro-batch has its own buffer) and
// waited for where the schedule consumes them; sends are non-blocking and
// completed at the end of the step, so compute overlaps communication.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fpt/check.h"
#include "fpt/parallel.h"
#include "fpt/stop.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

// The activations grow linearly with the samples of a micro-batch: those of
// one sample, measured by building them, times the slots the schedule keeps
// alive must fit this rank's share of the node's memory. Otherwise one line
// naming the options, instead of the kernel's OOM killer.
static int check_memory(const fpt_pipeline *p, fpt_model *m) {
  double avail = fpt_mem_available();
  fpt_acts one;
  fpt_alloc_count_start();
  FPT_TRY(fpt_acts_create(&one, m, 1, m->part.l0, m->part.l1, m->part.has_input, m->part.has_head));
  double need = (double)fpt_alloc_count() * p->mbs * p->n_slots +
                2.0 * sizeof(float) * (double)fpt_stage_floats(m, p->mbs) * p->M;
  fpt_acts_free(&one);
  FPT_ENSURE(avail <= 0 || need < 0.9 * avail,
             "options --batch-size %d, --micro-batches %d: %d live micro-batch(es) of %d "
             "sample(s) need %.1f GB of activations per rank, but this rank may use %.1f GB "
             "(MemAvailable shared by the ranks of this node); use a smaller batch, more "
             "micro-batches, or more ranks",
             p->B, p->M, p->n_slots, p->mbs, need / 1e9, avail / 1e9);
  return 0;
}

int fpt_pipeline_create(fpt_pipeline *p, fpt_grid *g, fpt_model *m, fpt_source *src, int B, int M,
                        int kind) {
  memset(p, 0, sizeof *p);
  char why[256];
  FPT_ENSURE(fpt_check_grid(g->world, g->S, m->cfg.n_layer, M, B, why, sizeof why) == 0, "%s", why);
  p->g = g;
  p->m = m;
  p->src = src;
  p->B = B;
  p->M = M;
  p->mbs = B / (g->R * M);
  p->kind = kind;
  p->n_ops = fpt_schedule_len(kind, g->S, M, g->stage);
  FPT_ENSURE(p->n_ops > 0, "schedule: %s", fpt_error_get());
  p->ops = fpt_calloc((size_t)p->n_ops, sizeof(fpt_op));
  FPT_TRY(fpt_schedule(kind, g->S, M, g->stage, p->ops));
  p->n_slots = fpt_schedule_max_live(kind, g->S, M, g->stage);
  FPT_TRY(check_memory(p, m));
  p->acts = fpt_calloc((size_t)p->n_slots, sizeof(fpt_acts));
  for (int k = 0; k < p->n_slots; k++)
    FPT_TRY(fpt_acts_create(&p->acts[k], m, p->mbs, m->part.l0, m->part.l1, m->part.has_input,
                            m->part.has_head));
  p->buf = fpt_calloc((size_t)M, sizeof(fpt_source_buf));
  p->h_in = fpt_calloc((size_t)M, sizeof(float *));
  p->g_in = fpt_calloc((size_t)M, sizeof(float *));
  size_t cnt = fpt_stage_floats(m, p->mbs);
  for (int k = 0; k < M; k++) {
    fpt_source_buf_init(&p->buf[k], src, p->mbs);
    if (g->stage > 0)
      p->h_in[k] = fpt_alloc_floats(cnt);
    if (g->stage < g->S - 1)
      p->g_in[k] = fpt_alloc_floats(cnt);
  }
  return 0;
}

void fpt_pipeline_free(fpt_pipeline *p) {
  for (int k = 0; k < p->n_slots && p->acts; k++)
    fpt_acts_free(&p->acts[k]);
  for (int k = 0; k < p->M && p->buf; k++) {
    fpt_source_buf_free(&p->buf[k]);
    free(p->h_in[k]);
    free(p->g_in[k]);
  }
  free(p->acts);
  free(p->buf);
  free(p->h_in);
  free(p->g_in);
  free(p->ops);
  memset(p, 0, sizeof *p);
}

static fpt_batch batch_of(fpt_source_buf *b, int n) {
  fpt_batch x = {n, b->x, b->ids, b->y, b->sample, b->len};
  return x;
}

// What this stage sends on: its last layer's output for micro-batch slot k.
static float *stage_output(fpt_pipeline *p, int k) {
  return fpt_layer_output(&p->acts[k % p->n_slots], p->m->part.l1 - 1);
}

static double stage_forward(fpt_pipeline *p, int k, int n, const fpt_pass *ps, float dscale,
                            int64_t *hits) {
  fpt_batch b = batch_of(&p->buf[k], n);
  return fpt_part_forward(p->m, &p->acts[k % p->n_slots], &b, ps, p->h_in[k], dscale, hits);
}

static void stage_backward(fpt_pipeline *p, int k, const fpt_pass *ps) {
  fpt_acts *a = &p->acts[k % p->n_slots];
  fpt_batch b = batch_of(&p->buf[k], p->mbs);
  if (p->g_in[k]) // the gradient of this stage's output, from the next stage
    memcpy(a->dres, p->g_in[k], sizeof(float) * fpt_stage_floats(p->m, p->mbs));
  fpt_part_backward(p->m, a, &b, ps, p->h_in[k]);
}

// Targets of this rank's micro-batches (y >= 0; masked-LM batches have
// positions that are none), counted on the last stage, summed over the world.
static double count_targets(fpt_pipeline *p, int n_batches, const int *sizes) {
  double c = 0;
  if (p->g->stage == p->g->S - 1)
    for (int k = 0; k < n_batches; k++)
      for (int i = 0; i < sizes[k] * p->src->K; i++)
        c += p->buf[k].y[i] >= 0;
  MPI_Allreduce(MPI_IN_PLACE, &c, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  return c;
}

// A bad value found by one rank's reader (fpt_source.bad_values) stops every
// rank at the same point, each with that rank's message.
static int agree_data(fpt_pipeline *p) {
  int me = p->src->bad_values ? p->g->rank : p->g->world, first = p->g->world;
  MPI_Allreduce(&me, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (first == p->g->world)
    return 0;
  char msg[FPT_ERROR_MAX];
  snprintf(msg, sizeof msg, "%s", fpt_error_get());
  MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, first, MPI_COMM_WORLD);
  fpt_error_set("%s", msg);
  return 1;
}

// This replica's micro-batches of the step (samples step*B + replica*B/R + k*n).
static int load_step(fpt_pipeline *p, int64_t step) {
  const fpt_grid *g = p->g;
  int n = p->mbs, rc = 0;
  for (int k = 0; k < p->M && rc == 0; k++) {
    int64_t first = step * p->B + (int64_t)g->replica * (p->B / g->R) + (int64_t)k * n;
    rc = fpt_source_train(p->src, first, n, p->m->part.has_input, p->m->part.has_head, &p->buf[k]);
  }
  FPT_TRY(rc);
  return agree_data(p);
}

// The step's point-to-point requests: receives by micro-batch, posted up
// front; sends by micro-batch, [k] activations and [M + k] gradients.
typedef struct {
  MPI_Request *act, *grad, *sends;
  int cnt; // floats per message
} step_p2p;

static void post_receives(fpt_pipeline *p, step_p2p *q) {
  int M = p->M, s = p->g->stage;
  q->cnt = (int)fpt_stage_floats(p->m, p->mbs);
  q->act = fpt_calloc((size_t)M, sizeof(MPI_Request));
  q->grad = fpt_calloc((size_t)M, sizeof(MPI_Request));
  q->sends = fpt_calloc((size_t)2 * M, sizeof(MPI_Request));
  for (int k = 0; k < M; k++) {
    q->act[k] = q->grad[k] = q->sends[k] = q->sends[M + k] = MPI_REQUEST_NULL;
    if (s > 0)
      MPI_Irecv(p->h_in[k], q->cnt, MPI_FLOAT, s - 1, 2 * k, p->g->pipe, &q->act[k]);
    if (s < p->g->S - 1)
      MPI_Irecv(p->g_in[k], q->cnt, MPI_FLOAT, s + 1, 2 * k + 1, p->g->pipe, &q->grad[k]);
  }
}

// The divisor of the loss: every target of the global batch, except for
// masked-LM, where only the chosen positions have one.
static double step_targets(fpt_pipeline *p) {
  if (!p->src->mlm)
    return (double)p->B * p->m->K;
  int *sizes = fpt_calloc((size_t)p->M, sizeof(int));
  for (int k = 0; k < p->M; k++)
    sizes[k] = p->mbs;
  double targets = count_targets(p, p->M, sizes);
  free(sizes);
  return targets;
}

// One instruction of the schedule; sums[] gathers loss and hits. Returns the
// seconds spent waiting on other stages.
static double run_op(fpt_pipeline *p, const fpt_op *op, step_p2p *q, const fpt_pass *ps,
                     float dscale, double sums[2]) {
  int k = op->mb, M = p->M, s = p->g->stage;
  double tw = now();
  switch (op->kind) {
  case FPT_OP_RECV_ACT:
    MPI_Wait(&q->act[k], MPI_STATUS_IGNORE);
    return now() - tw;
  case FPT_OP_RECV_GRAD:
    MPI_Wait(&q->grad[k], MPI_STATUS_IGNORE);
    return now() - tw;
  case FPT_OP_FWD: {
    // The slot's previous micro-batch is done (its backward ran); its sends
    // still read the slot's buffers until they complete.
    double wait = 0;
    if (k >= p->n_slots) {
      MPI_Wait(&q->sends[k - p->n_slots], MPI_STATUS_IGNORE);
      MPI_Wait(&q->sends[M + k - p->n_slots], MPI_STATUS_IGNORE);
      wait = now() - tw;
    }
    int64_t hits = 0;
    sums[0] += stage_forward(p, k, p->mbs, ps, dscale, &hits);
    sums[1] += (double)hits;
    return wait;
  }
  case FPT_OP_BWD:
    stage_backward(p, k, ps);
    return 0;
  case FPT_OP_SEND_ACT:
    MPI_Isend(stage_output(p, k), q->cnt, MPI_FLOAT, s + 1, 2 * k, p->g->pipe, &q->sends[k]);
    return 0;
  case FPT_OP_SEND_GRAD:
    MPI_Isend(p->acts[k % p->n_slots].dres, q->cnt, MPI_FLOAT, s - 1, 2 * k + 1, p->g->pipe,
              &q->sends[M + k]);
    return 0;
  }
  return 0;
}

int fpt_pipeline_train_step(fpt_pipeline *p, int64_t step, uint64_t seed, double *loss, double *acc,
                            double *global_sumsq) {
  fpt_grid *g = p->g;
  fpt_model *m = p->m;
  double t0 = now();
  memset(&p->t, 0, sizeof p->t);
  FPT_TRY(load_step(p, step));
  double t1 = now();
  p->t.io = t1 - t0;
  fpt_zero_grad(m);
  step_p2p q;
  post_receives(p, &q);
  fpt_pass ps = {1, seed, (uint32_t)step};
  double targets = step_targets(p);
  float dscale = (float)(1.0 / targets);
  double sums[2] = {0, 0}, wait = 0;
  for (int i = 0; i < p->n_ops; i++)
    wait += run_op(p, &p->ops[i], &q, &ps, dscale, sums);
  double tw = now();
  MPI_Waitall(2 * p->M, q.sends, MPI_STATUSES_IGNORE);
  wait += now() - tw;
  free(q.act);
  free(q.grad);
  free(q.sends);
  double ta = now();
  if (g->R > 1)
    MPI_Allreduce(MPI_IN_PLACE, m->grad_mem, (int)m->n_train, MPI_FLOAT, MPI_SUM, g->stage_comm);
  // Global norm over every stage's (now replica-summed) gradients.
  double sq = fpt_grad_sumsq(m);
  MPI_Allreduce(MPI_IN_PLACE, &sq, 1, MPI_DOUBLE, MPI_SUM, g->pipe);
  MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  p->t.allreduce = now() - ta;
  p->t.p2p_wait = wait;
  *loss = sums[0] / targets;
  *acc = sums[1] / targets;
  *global_sumsq = sq;
  p->t.compute = now() - t1 - p->t.p2p_wait - p->t.allreduce;
  return 0;
}

int fpt_pipeline_evaluate(fpt_pipeline *p, int split, double *loss, double *acc) {
  return fpt_pipeline_forward_split(p, split, NULL, NULL, loss, acc);
}

int fpt_pipeline_forward_split(fpt_pipeline *p, int split, fpt_readout_sink sink, void *ctx,
                               double *loss, double *acc) {
  fpt_grid *g = p->g;
  fpt_model *m = p->m;
  int S = g->S, s = g->stage, n = p->mbs, per = p->B / g->R;
  int64_t N = fpt_source_size(p->src, split);
  size_t TC = fpt_stage_floats(m, 1);
  fpt_pass ps = {0, 0, 0};
  double sums[3] = {0, 0, 0}; // loss, hits, targets (last stage)
  for (int64_t r0 = 0; r0 < N; r0 += p->B) {
    // A stop request on any rank ends the pass within a batch, on every rank.
    int stop = fpt_stop_requested(), any = stop;
    MPI_Allreduce(&stop, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any) {
      fpt_error_set("stopped by signal %d during an evaluation pass", any);
      return FPT_STOPPED;
    }
    for (int k = 0; k < p->M; k++) {
      int64_t first = r0 + (int64_t)g->replica * per + (int64_t)k * n;
      int c = (int)(first >= N ? 0 : (N - first < n ? N - first : n));
      FPT_TRY(fpt_source_eval(p->src, split, first, c, m->part.has_input, m->part.has_head,
                              &p->buf[k]));
      if (c == 0)
        continue;
      // Stage by stage: eval needs no overlap.
      if (s > 0)
        MPI_Recv(p->h_in[k], (int)(c * TC), MPI_FLOAT, s - 1, 0, g->pipe, MPI_STATUS_IGNORE);
      int64_t hits = 0;
      sums[0] += stage_forward(p, k, c, &ps, 0.0f, &hits);
      sums[1] += (double)hits;
      for (int i = 0; s == S - 1 && i < c * p->src->K; i++)
        sums[2] += p->buf[k].y[i] >= 0;
      if (sink && s == S - 1)
        sink(ctx, first, c, p->acts[k % p->n_slots].feat, p->buf[k].y);
      if (s < S - 1)
        MPI_Send(stage_output(p, k), (int)(c * TC), MPI_FLOAT, s + 1, 0, g->pipe);
    }
  }
  FPT_TRY(agree_data(p));
  MPI_Allreduce(MPI_IN_PLACE, sums, 3, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  *loss = sums[2] > 0 ? sums[0] / sums[2] : 0.0;
  *acc = sums[2] > 0 ? sums[1] / sums[2] : 0.0;
  return 0;
}
