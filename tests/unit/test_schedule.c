// Pipeline schedules: per-stage op lists (structure, neighbour matching), a
// discrete-event simulation of the whole pipeline (no deadlock, live
// activations, makespan and bubble), the layer split and the grid check.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fpt/check.h"
#include "fpt/schedule.h"

#define MAX_S 12
#define MAX_M 16
static const int kinds[2] = {FPT_SCHED_1F1B, FPT_SCHED_GPIPE};

static fpt_op *make_ops(int kind, int S, int M, int s, int *n) {
  *n = fpt_schedule_len(kind, S, M, s);
  assert_true(*n > 0);
  fpt_op *ops = fpt_calloc((size_t)*n + 1, sizeof *ops);
  ops[*n].kind = (fpt_op_kind)-1; // sentinel: fpt_schedule must not write past len
  ops[*n].mb = -7;
  assert_int_equal(fpt_schedule(kind, S, M, s, ops), 0);
  assert_int_equal(ops[*n].mb, -7);
  return ops;
}

// Index of the (unique) op of this kind and micro-batch, or -1.
static int find(const fpt_op *ops, int n, fpt_op_kind k, int mb) {
  int at = -1;
  for (int i = 0; i < n; i++)
    if (ops[i].kind == k && ops[i].mb == mb) {
      assert_int_equal(at, -1); // at most once
      at = i;
    }
  return at;
}

// Per stage: one FWD and one BWD per micro-batch, FWD before BWD, the
// communication each stage position must (and must not) do, in the right order.
static void test_structure(void **state) {
  (void)state;
  for (int k = 0; k < 2; k++)
    for (int S = 1; S <= MAX_S; S++)
      for (int M = 1; M <= MAX_M; M++)
        for (int s = 0; s < S; s++) {
          int n;
          fpt_op *ops = make_ops(kinds[k], S, M, s, &n);
          int first = s == 0, last = s == S - 1;
          assert_int_equal(n, 2 * M + (first ? 0 : 2 * M) + (last ? 0 : 2 * M));
          int count[6] = {0};
          for (int i = 0; i < n; i++) {
            assert_true(ops[i].kind >= FPT_OP_RECV_ACT && ops[i].kind <= FPT_OP_SEND_GRAD);
            assert_true(ops[i].mb >= 0 && ops[i].mb < M);
            count[ops[i].kind]++;
          }
          assert_int_equal(count[FPT_OP_FWD], M);
          assert_int_equal(count[FPT_OP_BWD], M);
          assert_int_equal(count[FPT_OP_RECV_ACT], first ? 0 : M);
          assert_int_equal(count[FPT_OP_SEND_GRAD], first ? 0 : M);
          assert_int_equal(count[FPT_OP_SEND_ACT], last ? 0 : M);
          assert_int_equal(count[FPT_OP_RECV_GRAD], last ? 0 : M);
          for (int mb = 0; mb < M; mb++) {
            int f = find(ops, n, FPT_OP_FWD, mb), b = find(ops, n, FPT_OP_BWD, mb);
            int ra = find(ops, n, FPT_OP_RECV_ACT, mb), sa = find(ops, n, FPT_OP_SEND_ACT, mb);
            int rg = find(ops, n, FPT_OP_RECV_GRAD, mb), sg = find(ops, n, FPT_OP_SEND_GRAD, mb);
            assert_true(f >= 0 && b > f);
            if (!first) {
              assert_true(ra >= 0 && ra < f);
              assert_true(sg > b);
            }
            if (!last) {
              assert_true(sa > f && sa < b);
              assert_true(rg >= 0 && rg < b);
            }
          }
          free(ops);
        }
}

// The micro-batch sequence of one op kind on a stage.
static int seq(const fpt_op *ops, int n, fpt_op_kind k, int *out) {
  int m = 0;
  for (int i = 0; i < n; i++)
    if (ops[i].kind == k)
      out[m++] = ops[i].mb;
  return m;
}

// Sends of stage s and receives of stage s+1 (and back) list the same
// micro-batches in the same order, so in-order matching pairs them.
static void test_neighbour_matching(void **state) {
  (void)state;
  int a[MAX_M], b[MAX_M];
  for (int k = 0; k < 2; k++)
    for (int S = 2; S <= MAX_S; S++)
      for (int M = 1; M <= MAX_M; M++)
        for (int s = 0; s + 1 < S; s++) {
          int n0, n1;
          fpt_op *lo = make_ops(kinds[k], S, M, s, &n0);
          fpt_op *hi = make_ops(kinds[k], S, M, s + 1, &n1);
          assert_int_equal(seq(lo, n0, FPT_OP_SEND_ACT, a), M);
          assert_int_equal(seq(hi, n1, FPT_OP_RECV_ACT, b), M);
          assert_memory_equal(a, b, sizeof(int) * M);
          assert_int_equal(seq(hi, n1, FPT_OP_SEND_GRAD, a), M);
          assert_int_equal(seq(lo, n0, FPT_OP_RECV_GRAD, b), M);
          assert_memory_equal(a, b, sizeof(int) * M);
          // Both schedules run the backwards in micro-batch order.
          assert_int_equal(seq(lo, n0, FPT_OP_BWD, a), M);
          for (int i = 0; i < M; i++)
            assert_int_equal(a[i], i);
          free(lo);
          free(hi);
        }
}

// ---- Discrete-event simulation of the whole pipeline ----
// Each stage executes its list in order with its own clock. FWD costs 1, BWD
// costs 2, communication is free. A send is buffered (never blocks) and
// stamps the message with the sender's clock; a receive blocks until the
// message exists and then advances the receiver's clock to the stamp. Each
// directed channel is a FIFO: the receive takes the oldest message and must
// find the kind and micro-batch it expects (in-order matching). The
// simulation sweeps the stages, running each as far as it can; a sweep with
// no progress before every stage has finished is a deadlock.
typedef struct {
  int mb[MAX_M];
  long t[MAX_M];
  int head, tail;
} chan;

typedef struct {
  long makespan;
  int live_max[MAX_S];
  long busy[MAX_S];
} sim_result;

static void simulate(int kind, int S, int M, sim_result *r) {
  fpt_op *ops[MAX_S];
  int n[MAX_S], pc[MAX_S] = {0}, live[MAX_S] = {0};
  long clock[MAX_S] = {0};
  // act[s]: s -> s+1 activations; grad[s]: s+1 -> s gradients.
  chan act[MAX_S], grad[MAX_S];
  // recv_act_done[s][mb]: stage s has received the activation of mb.
  int recv_act_done[MAX_S][MAX_M];
  memset(act, 0, sizeof act);
  memset(grad, 0, sizeof grad);
  memset(recv_act_done, 0, sizeof recv_act_done);
  memset(r, 0, sizeof *r);
  for (int s = 0; s < S; s++)
    ops[s] = make_ops(kind, S, M, s, &n[s]);

  int done = 0;
  while (done < S) {
    int progress = 0;
    done = 0;
    for (int s = 0; s < S; s++) {
      while (pc[s] < n[s]) {
        fpt_op op = ops[s][pc[s]];
        chan *c = NULL;
        switch (op.kind) {
        case FPT_OP_RECV_ACT:
        case FPT_OP_RECV_GRAD:
          assert_true(op.kind == FPT_OP_RECV_ACT ? s > 0 : s < S - 1);
          c = op.kind == FPT_OP_RECV_ACT ? &act[s - 1] : &grad[s];
          if (c->head == c->tail)
            goto blocked;                          // blocking receive: nothing to take yet
          assert_int_equal(c->mb[c->head], op.mb); // in-order matching
          if (c->t[c->head] > clock[s])
            clock[s] = c->t[c->head];
          c->head++;
          if (op.kind == FPT_OP_RECV_ACT) {
            recv_act_done[s][op.mb] = 1;
          } else {
            // The rule that lets the executor complete SEND_ACT(mb) here:
            // the next stage has already received that activation.
            assert_true(recv_act_done[s + 1][op.mb]);
          }
          break;
        case FPT_OP_SEND_ACT:
        case FPT_OP_SEND_GRAD:
          assert_true(op.kind == FPT_OP_SEND_ACT ? s < S - 1 : s > 0);
          c = op.kind == FPT_OP_SEND_ACT ? &act[s] : &grad[s - 1];
          assert_true(c->tail < MAX_M);
          c->mb[c->tail] = op.mb;
          c->t[c->tail] = clock[s];
          c->tail++;
          break;
        case FPT_OP_FWD:
          clock[s] += 1;
          r->busy[s] += 1;
          if (++live[s] > r->live_max[s])
            r->live_max[s] = live[s];
          break;
        case FPT_OP_BWD:
          clock[s] += 2;
          r->busy[s] += 2;
          assert_true(--live[s] >= 0);
          break;
        }
        pc[s]++;
        progress = 1;
      }
    blocked:
      done += pc[s] == n[s];
    }
    if (done < S && !progress)
      fail_msg("deadlock: kind %d, S = %d, M = %d", kind, S, M);
  }
  for (int s = 0; s < S; s++) {
    assert_int_equal(live[s], 0);
    if (s + 1 < S) { // every message consumed
      assert_int_equal(act[s].head, M);
      assert_int_equal(grad[s].head, M);
    }
    if (clock[s] > r->makespan)
      r->makespan = clock[s];
    free(ops[s]);
  }
}

static void test_simulation(void **state) {
  (void)state;
  for (int k = 0; k < 2; k++)
    for (int S = 1; S <= MAX_S; S++)
      for (int M = 1; M <= MAX_M; M++) {
        sim_result r;
        simulate(kinds[k], S, M, &r);
        for (int s = 0; s < S; s++) {
          assert_int_equal(r.busy[s], 3 * M);
          assert_int_equal(r.live_max[s], fpt_schedule_max_live(kinds[k], S, M, s));
          if (kinds[k] == FPT_SCHED_1F1B) {
            assert_true(r.live_max[s] <= S);
            assert_true(r.live_max[s] <= S - s && r.live_max[s] <= M);
          } else {
            assert_int_equal(r.live_max[s], M);
          }
        }
        // Makespan (M+S-1)(t_f+t_b): the critical path (forward of mb 0 down
        // the pipeline, the last stage busy throughout, backward of mb M-1 up
        // the pipeline) with no further idling. Then every stage idles
        // T - 3M, and the bubble fraction (T - 3M) / T is (S-1)/(M+S-1).
        long T = r.makespan;
        assert_int_equal(T, 3L * (M + S - 1));
        assert_int_equal((T - 3L * M) * (M + S - 1), (long)(S - 1) * T);
      }
}

static void test_bad_args(void **state) {
  (void)state;
  fpt_op ops[64];
  struct {
    int kind, S, M, s;
    const char *msg;
  } bad[] = {
      {FPT_SCHED_1F1B, 0, 4, 0, "pipeline stages S = 0"},
      {FPT_SCHED_GPIPE, 3, 0, 0, "micro-batches M = 0"},
      {FPT_SCHED_1F1B, 3, 4, 3, "stage 3 outside [0, 3)"},
      {FPT_SCHED_1F1B, 3, 4, -1, "stage -1 outside [0, 3)"},
      {7, 3, 4, 0, "unknown pipeline schedule 7"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    fpt_error_clear();
    assert_int_not_equal(fpt_schedule(bad[i].kind, bad[i].S, bad[i].M, bad[i].s, ops), 0);
    assert_non_null(strstr(fpt_error_get(), bad[i].msg));
    fpt_error_clear();
    assert_int_equal(fpt_schedule_len(bad[i].kind, bad[i].S, bad[i].M, bad[i].s), -1);
    assert_non_null(strstr(fpt_error_get(), bad[i].msg));
    fpt_error_clear();
    assert_int_equal(fpt_schedule_max_live(bad[i].kind, bad[i].S, bad[i].M, bad[i].s), -1);
    assert_non_null(strstr(fpt_error_get(), bad[i].msg));
  }
  fpt_error_clear();
  assert_int_not_equal(fpt_schedule(FPT_SCHED_1F1B, 2, 2, 0, NULL), 0);
  assert_non_null(strstr(fpt_error_get(), "NULL"));
  fpt_error_clear();
  assert_string_equal(fpt_op_name(FPT_OP_RECV_GRAD), "RECV_GRAD");
  assert_string_equal(fpt_op_name(FPT_OP_FWD), "FWD");
}

// A small case spelled out, as documentation: S = 3, M = 4, 1F1B.
static void test_1f1b_example(void **state) {
  (void)state;
#define RA FPT_OP_RECV_ACT
#define F FPT_OP_FWD
#define SA FPT_OP_SEND_ACT
#define RG FPT_OP_RECV_GRAD
#define B FPT_OP_BWD
#define SG FPT_OP_SEND_GRAD
  const fpt_op s0[] = {{F, 0}, {SA, 0}, {F, 1},  {SA, 1}, {F, 2},  {SA, 2}, {RG, 0}, {B, 0},
                       {F, 3}, {SA, 3}, {RG, 1}, {B, 1},  {RG, 2}, {B, 2},  {RG, 3}, {B, 3}};
  const fpt_op s2[] = {{RA, 0}, {F, 0}, {B, 0}, {SG, 0}, {RA, 1}, {F, 1}, {B, 1}, {SG, 1},
                       {RA, 2}, {F, 2}, {B, 2}, {SG, 2}, {RA, 3}, {F, 3}, {B, 3}, {SG, 3}};
  fpt_op got[32];
  assert_int_equal(fpt_schedule_len(FPT_SCHED_1F1B, 3, 4, 0), 16);
  assert_int_equal(fpt_schedule(FPT_SCHED_1F1B, 3, 4, 0, got), 0);
  for (int i = 0; i < 16; i++) {
    assert_int_equal(got[i].kind, s0[i].kind);
    assert_int_equal(got[i].mb, s0[i].mb);
  }
  assert_int_equal(fpt_schedule_len(FPT_SCHED_1F1B, 3, 4, 2), 16);
  assert_int_equal(fpt_schedule(FPT_SCHED_1F1B, 3, 4, 2, got), 0);
  for (int i = 0; i < 16; i++) {
    assert_int_equal(got[i].kind, s2[i].kind);
    assert_int_equal(got[i].mb, s2[i].mb);
  }
  // One stage: no communication at all.
  assert_int_equal(fpt_schedule_len(FPT_SCHED_GPIPE, 1, 3, 0), 6);
  assert_int_equal(fpt_schedule(FPT_SCHED_GPIPE, 1, 3, 0, got), 0);
  for (int i = 0; i < 6; i++) {
    assert_int_equal(got[i].kind, i < 3 ? F : B);
    assert_int_equal(got[i].mb, i % 3);
  }
#undef RA
#undef F
#undef SA
#undef RG
#undef B
#undef SG
}

static void test_stage_layers(void **state) {
  (void)state;
  for (int L = 0; L <= 40; L++)
    for (int S = 1; S <= MAX_S; S++) {
      int prev = 0, lo = L, hi = 0;
      for (int s = 0; s < S; s++) {
        int l0 = -1, l1 = -1;
        fpt_stage_layers(L, S, s, &l0, &l1);
        assert_int_equal(l0, prev); // contiguous, in order, starting at 0
        assert_true(l1 >= l0);
        int size = l1 - l0;
        lo = size < lo ? size : lo;
        hi = size > hi ? size : hi;
        // The extra layers go to the last L % S stages.
        assert_int_equal(size, L / S + (s >= S - L % S ? 1 : 0));
        prev = l1;
      }
      assert_int_equal(prev, L); // covers all layers
      assert_true(hi - lo <= 1); // balanced
      if (L >= S)
        assert_true(lo >= 1);
    }
  int l0, l1;
  fpt_stage_layers(12, 5, 0, &l0, &l1);
  assert_true(l0 == 0 && l1 == 2);
  fpt_stage_layers(12, 5, 4, &l0, &l1);
  assert_true(l0 == 9 && l1 == 12);
  fpt_stage_layers(12, 5, 5, &l0, &l1); // out of range
  assert_true(l0 == 0 && l1 == 0);
  fpt_stage_layers(12, 0, 0, &l0, &l1);
  assert_true(l0 == 0 && l1 == 0);
}

static void test_check_grid(void **state) {
  (void)state;
  char why[256];
  fpt_error_clear();
  assert_int_equal(fpt_check_grid(8, 4, 12, 4, 64, why, sizeof why), 0);
  assert_string_equal(why, "");
  assert_int_equal(fpt_check_grid(1, 1, 1, 1, 1, why, sizeof why), 0);
  assert_int_equal(fpt_check_grid(12, 12, 12, 16, 16, NULL, 0), 0);
  struct {
    int world, S, L, M, batch;
    const char *msg;
  } bad[] = {
      {6, 4, 12, 2, 24, "world size 6 is not divisible by the 4 pipeline stages"},
      {8, 8, 6, 2, 32, "8 pipeline stages but only 6 layers"},
      {8, 4, 12, 4, 36,
       "batch size 36 is not divisible by replicas (world/stages = 8/4 = 2) "
       "x micro-batches (4) = 8"},
      {4, 1, 12, 3, 6,
       "batch size 6 is not divisible by replicas (world/stages = 4/1 = 4) "
       "x micro-batches (3) = 12"},
      {0, 1, 12, 1, 8, "world size 0"},
      {2, 0, 12, 1, 8, "pipeline stages 0"},
      {2, 1, 0, 1, 8, "layers 0"},
      {2, 1, 12, 0, 8, "micro-batches 0"},
      {2, 1, 12, 1, 0, "batch size 0"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    fpt_error_clear();
    assert_int_not_equal(
        fpt_check_grid(bad[i].world, bad[i].S, bad[i].L, bad[i].M, bad[i].batch, why, sizeof why),
        0);
    assert_non_null(strstr(why, bad[i].msg));
    assert_string_equal(fpt_error_get(), why);
  }
  // A short buffer is truncated, not overrun; NULL is allowed.
  char tiny[8];
  memset(tiny, 'x', sizeof tiny);
  fpt_error_clear();
  assert_int_not_equal(fpt_check_grid(6, 4, 12, 2, 24, tiny, sizeof tiny), 0);
  assert_int_equal(strlen(tiny), 7);
  fpt_error_clear();
  assert_int_not_equal(fpt_check_grid(6, 4, 12, 2, 24, NULL, 0), 0);
  assert_non_null(strstr(fpt_error_get(), "not divisible by the 4 pipeline stages"));
  fpt_error_clear();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_structure),    cmocka_unit_test(test_neighbour_matching),
      cmocka_unit_test(test_simulation),   cmocka_unit_test(test_bad_args),
      cmocka_unit_test(test_1f1b_example), cmocka_unit_test(test_stage_layers),
      cmocka_unit_test(test_check_grid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
