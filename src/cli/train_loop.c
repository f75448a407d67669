// The training loop of fpt train and fpt pretrain, and its policy: when to
// log, evaluate, stop early, checkpoint, and give up the allocation (signal or
// time limit); fpt eval's scoring. The pipeline executor computes gradients;
// the optimizer step is the model's (fpt_optimizer_step).
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fpt/check.h"
#include "fpt/stop.h"
#include "train.h"

// The logging window (fpt_ckpt_state.window, saved with each checkpoint so
// that a resumed run logs the same lines): sums over its steps.
enum { W_LOSS, W_ACC, W_SECONDS, W_COMPUTE, W_P2P, W_ALLREDUCE, W_IO, W_N };
_Static_assert(W_N == sizeof(((fpt_ckpt_state *)0)->window) / sizeof(double),
               "the checkpoint's metrics window");

// Wall clock of this segment of the run (since start or resume).
typedef struct {
  double t_start, t_steps;
  double lr; // of the last step
} loop_clock;

// The val and test scores of the weights as they are: both passes first
// (collective, the same result on every rank), then rank 0 prints and writes
// (write_splits), so that a failed write on rank 0 never skips a pass.
typedef struct {
  double l[2], a[2];
} split_scores;

static int eval_splits(fpt_run *r, split_scores *sc) {
  int splits[2] = {FPT_VAL, FPT_TEST};
  for (int k = 0; k < 2; k++)
    FPT_TRY(fpt_pipeline_evaluate(&r->pl, splits[k], &sc->l[k], &sc->a[k]));
  r->val_loss = sc->l[0];
  r->val_acc = sc->a[0];
  return 0;
}

// Rank 0 prints them (and writes them, marked final, with `write`).
static int write_splits(fpt_run *r, int64_t step, const char *label, int digits, int write,
                        const split_scores *sc) {
  const char *names[2] = {"val", "test"};
  int splits[2] = {FPT_VAL, FPT_TEST}, rc = 0;
  for (int k = 0; k < 2 && r->g.rank == 0 && rc == 0; k++) {
    printf("%s%-4s loss %.*f  accuracy %.*f  (%lld samples)\n", label, names[k], digits, sc->l[k],
           digits, sc->a[k], (long long)fpt_source_size(&r->src, splits[k]));
    const char *fin[1] = {"final"};
    double one[1] = {1};
    if (write)
      rc = fpt_metrics_write(&r->mt, step, names[k], sc->l[k], sc->a[k], 0, 1, fin, one);
  }
  return rc;
}

// One early-stopping count: a better value resets it, anything else adds one.
static void track(int better, double v, double *best, int64_t *best_step, int64_t *since,
                  int64_t step) {
  if (better) {
    *best = v;
    *best_step = step;
    *since = 0;
  } else {
    (*since)++;
  }
}

// Validation (and test, with --eval-test) at `step`: metrics and the
// early-stopping state. FPT_STOPPED (a signal) leaves both untouched. With
// --eval-test-at best, test only where the val accuracy is a new best: the
// evaluation a selection on val picks always has its test line (a tie is no
// improvement here either), and the others cost val only. With end, never
// here: best_test scores the one that was picked.
static int periodic_eval(fpt_run *r, int64_t step) {
  double l, a, lt, at;
  FPT_TRY(fpt_pipeline_evaluate(&r->pl, FPT_VAL, &l, &a));
  r->val_loss = l;
  r->val_acc = a;
  int every = !strcmp(r->s.eval_test_at, "every"), at_best = !strcmp(r->s.eval_test_at, "best");
  int test = r->s.eval_test && (every || (at_best && a > r->st.best_val_acc));
  if (test)
    FPT_TRY(fpt_pipeline_evaluate(&r->pl, FPT_TEST, &lt, &at));
  if (r->g.rank == 0) {
    FPT_TRY(fpt_metrics_write(&r->mt, step, "val", l, a, 0, 0, NULL, NULL));
    if (test)
      FPT_TRY(fpt_metrics_write(&r->mt, step, "test", lt, at, 0, 0, NULL, NULL));
  }
  fpt_ckpt_state *st = &r->st;
  track(l < st->best_val, l, &st->best_val, &st->best_step, &st->evals_since_best, step);
  // A tie is no improvement, as for --keep-best.
  track(a > st->best_val_acc, a, &st->best_val_acc, &st->best_acc_step, &st->evals_since_best_acc,
        step);
  return 0;
}

// --keep-best: a validation accuracy above every earlier one (its step's
// checkpoint is written) becomes checkpoints/best.h5. Collective.
static int keep_best(fpt_run *r, int64_t step) {
  int rc = 0;
  if (r->g.rank == 0)
    rc = fpt_checkpoint_keep_best(r->s.run_dir, step, r->val_acc, r->val_loss);
  r->best_acc = r->val_acc;
  return fpt_runtime_agree(&r->rt, rc);
}

static int improved(const fpt_run *r) { return r->s.keep_best && r->val_acc > r->best_acc; }

// The patience is used up: the run stops at this evaluation (or, resumed
// from the early stop's checkpoint, before it trains again).
static int early_stop_met(const fpt_run *r) {
  const train_settings *s = &r->s;
  int64_t since = strcmp(s->early_stop_on, "accuracy") == 0 ? r->st.evals_since_best_acc
                                                            : r->st.evals_since_best;
  return s->early_stop > 0 && s->eval_every > 0 && since >= s->early_stop;
}

// A run stopped during an evaluation checkpointed the step before it: the
// resume does that evaluation first (its metrics line is missing), and keeps
// its weights if it is the best so far, as the interrupted run would have.
static int redo_eval(fpt_run *r) {
  int64_t start = r->start;
  if (start == 0 || r->s.eval_every <= 0 || start % r->s.eval_every != 0 || start >= r->s.steps)
    return 0;
  int missing = 0;
  double acc;
  if (r->g.rank == 0)
    missing = fpt_metrics_find(r->s.run_dir, start, "val", &acc) != 0;
  MPI_Bcast(&missing, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (missing && r->g.rank == 0)
    printf("resume: the evaluation at step %lld was interrupted: doing it now\n", (long long)start);
  int rc = missing ? periodic_eval(r, start) : 0;
  if (rc == 0 && missing && improved(r))
    rc = keep_best(r, start);
  return rc;
}

// --init-head-from: where training starts is the probe's val score.
static int head_eval(fpt_run *r) {
  double l, a;
  int rc = fpt_pipeline_evaluate(&r->pl, FPT_VAL, &l, &a);
  if (r->g.rank == 0 && rc == 0) {
    printf("step 0 val  loss %.6f  accuracy %.6f  (head from %s)\n", l, a, r->s.init_head_from);
    rc = fpt_metrics_write(&r->mt, 0, "val", l, a, 0, 0, NULL, NULL);
  }
  return rc;
}

// Resume (or start fresh), borrow a head, open the metrics and say what runs:
// 0, 1 (error) or FPT_EXIT_REQUEUE (a signal during a redone evaluation).
static int train_begin(fpt_run *r) {
  const char *head[] = {"in/", "out/", NULL}; // a resumed run has its own head
  int rc = train_resume(r);
  if (r->s.init_head_from && r->start == 0 && fpt_runtime_agree(&r->rt, rc) == 0)
    rc = train_load_from(r, "init-head-from", r->s.init_head_from, head);
  if (fpt_runtime_agree(&r->rt, rc) != 0)
    return 1;
  r->best_acc = -INFINITY;
  if (r->g.rank == 0 && r->s.keep_best)
    rc = fpt_checkpoint_best_accuracy(r->s.run_dir, &r->best_acc);
  MPI_Bcast(&r->best_acc, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  if (r->g.rank == 0 && rc == 0) {
    rc = fpt_metrics_open(&r->mt, r->s.run_dir);
    if (rc == 0)
      rc = train_write_run_line(r);
    if (rc == 0)
      rc = train_write_config(r);
  }
  if (fpt_runtime_agree(&r->rt, rc) != 0)
    return 1;
  train_print_startup(r);
  if (r->s.init_head_from && r->start == 0 && fpt_runtime_agree(&r->rt, head_eval(r)) != 0)
    return 1;
  rc = redo_eval(r);
  if (rc == FPT_STOPPED) { // as in train_finish: the checkpoint is there, a resume redoes it
    if (r->g.rank == 0)
      printf(
          "stopped by a signal during the evaluation at step %lld; exit %d asks to be requeued\n",
          (long long)r->start, FPT_EXIT_REQUEUE);
    return FPT_EXIT_REQUEUE;
  }
  return fpt_runtime_agree(&r->rt, rc);
}

// One step: gradients over the grid, then the optimizer; a non-finite loss
// or gradient stops the run before the weights take it.
static int one_step(fpt_run *r, int64_t step, loop_clock *c) {
  fpt_lr_schedule sched = {r->s.lr, r->s.warmup, r->s.steps, !strcmp(r->s.lr_schedule, "cosine")};
  double t0 = train_now(), loss, acc, sumsq;
  fpt_fault("step", step);
  c->lr = fpt_lr_at(&sched, step);
  int rc = fpt_pipeline_train_step(&r->pl, step, (uint64_t)r->s.seed, &loss, &acc, &sumsq);
  if (fpt_runtime_agree(&r->rt, rc) != 0)
    return 1;
  if (!isfinite(loss) || !isfinite(sumsq)) {
    if (r->g.rank == 0)
      fprintf(stderr, "fpt: error: step %lld: training loss %g, gradient norm %g; stopping\n",
              (long long)step, loss, sqrt(sumsq));
    return 1;
  }
  fpt_optimizer_step(&r->m, sumsq, r->s.clip, (float)c->lr);
  const fpt_pipeline *pl = &r->pl;
  double part[W_N] = {
      loss, acc, train_now() - t0, pl->t.compute, pl->t.p2p_wait, pl->t.allreduce, pl->t.io};
  c->t_steps += part[W_SECONDS];
  for (int k = 0; k < W_N; k++)
    r->st.window[k] += part[k];
  r->st.window_steps++;
  return 0;
}

// A train line per --log-every steps: means over the window; the time split
// is the slowest rank's, since it sets the pace. The step cap off that grid
// logs a line marked final and keeps the window in the checkpoint: a run
// continued to a higher cap drops that line and logs what an uninterrupted
// run would.
static int log_window(fpt_run *r, int64_t done, const loop_clock *c) {
  double w[W_N], n = (double)r->st.window_steps;
  int off_grid = done % r->s.log_every != 0;
  memcpy(w, r->st.window, sizeof w);
  MPI_Allreduce(MPI_IN_PLACE, w + W_SECONDS, W_N - W_SECONDS, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  double tps = n * r->s.batch_size * r->m.task.seq / w[W_SECONDS];
  int rc = 0;
  if (r->g.rank == 0) {
    double eta = (train_now() - c->t_start) / (double)(done - r->start) * (r->s.steps - done);
    train_print_progress(done, r->s.steps, w[W_LOSS] / n, w[W_ACC] / n, tps, eta);
    const char *names[7] = {"lr",          "step_s", "compute_s", "p2p_wait_s",
                            "allreduce_s", "io_s",   "final"};
    double vals[7] = {
        c->lr, w[W_SECONDS] / n, w[W_COMPUTE] / n, w[W_P2P] / n, w[W_ALLREDUCE] / n, w[W_IO] / n,
        1};
    rc = fpt_metrics_write(&r->mt, done, "train", w[W_LOSS] / n, w[W_ACC] / n, tps, 6 + off_grid,
                           names, vals);
  }
  if (!off_grid) {
    memset(r->st.window, 0, sizeof r->st.window);
    r->st.window_steps = 0;
  }
  return rc;
}

static int save(fpt_run *r, int64_t done) {
  r->st.step = done;
  r->st.adam_t = r->m.adam_t;
  r->st.sample_offset = done * r->s.batch_size;
  return fpt_checkpoint_write(r->s.run_dir, MPI_COMM_WORLD, &r->m, r->g.replica == 0, &r->st,
                              &r->desc, (int)r->s.keep_checkpoints);
}

// A signal on any rank, an evaluation a signal ended, or the time budget
// (rank 0's clock: two more steps must fit) ends the segment. Collective.
static int stop_requested(const fpt_run *r, int64_t done, const loop_clock *c, int stopped_eval) {
  int stop = fpt_stop_requested() != 0 || stopped_eval;
  if (r->g.rank == 0 && r->s.time_limit > 0 &&
      train_now() - c->t_start + 2.0 * c->t_steps / (double)(done - r->start) > r->s.time_limit)
    stop = 1;
  MPI_Allreduce(MPI_IN_PLACE, &stop, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return stop;
}

// What follows step `done`: log, evaluate, checkpoint, stop. Returns 0 to go
// on, 1 on error, FPT_EXIT_REQUEUE or FPT_STOPPED (early stop) to end.
static int after_step(fpt_run *r, int64_t done, const loop_clock *c) {
  const train_settings *s = &r->s;
  int rc = 0, stopped_eval = 0, early = 0, best = 0;
  int on_acc = strcmp(s->early_stop_on, "accuracy") == 0;
  if (done % s->log_every == 0 || done == s->steps)
    rc = log_window(r, done, c);
  if (rc == 0 && s->eval_every > 0 && done % s->eval_every == 0 && done < s->steps) {
    rc = periodic_eval(r, done);
    stopped_eval = rc == FPT_STOPPED; // checkpoint below; a resume redoes the evaluation
    rc = stopped_eval ? 0 : rc;
    early = early_stop_met(r);
    best = !stopped_eval && rc == 0 && improved(r);
  }
  if (fpt_runtime_agree(&r->rt, rc) != 0)
    return 1;
  int stop = stop_requested(r, done, c, stopped_eval);
  int periodic = s->checkpoint_every > 0 && done % s->checkpoint_every == 0;
  if ((stop || periodic || early || best || done == s->steps) &&
      fpt_runtime_agree(&r->rt, save(r, done)))
    return 1;
  if (best && keep_best(r, done) != 0)
    return 1;
  if (stop && done < s->steps) {
    if (r->g.rank == 0)
      printf("stopping at step %lld (%s): checkpoint written; exit %d asks to be requeued\n",
             (long long)done, fpt_stop_requested() ? "signal" : "time limit", FPT_EXIT_REQUEUE);
    return FPT_EXIT_REQUEUE;
  }
  if (early && r->g.rank == 0)
    printf("early stop at step %lld: no better validation %s for %lld evaluations (best %.4f at "
           "step %lld)\n",
           (long long)done, on_acc ? "accuracy" : "loss", s->early_stop,
           on_acc ? r->st.best_val_acc : r->st.best_val,
           (long long)(on_acc ? r->st.best_acc_step : r->st.best_step));
  return early ? FPT_STOPPED : 0;
}

// --eval-test-at end: the test split scored once, on the weights of the best
// val evaluation (checkpoints/best.h5, whose own step attribute names it),
// as that step's test line: what --eval-test-at best writes for the
// evaluation a selection on val picks, at the cost of one test pass instead
// of one per new best. None when no periodic evaluation was kept (the final
// one is then the best and has its test). Leaves the model at those weights.
// Collective: 0, 1 or FPT_STOPPED.
static int best_test(fpt_run *r, int64_t final_step) {
  char path[4500];
  int64_t step = -1;
  snprintf(path, sizeof path, "%s/checkpoints/best.h5", r->s.run_dir);
  if (r->g.rank == 0 && access(path, F_OK) == 0) {
    fpt_ckpt_state st;
    double acc;
    step = fpt_checkpoint_read_state(path, &r->m, &st) == 0 ? st.step : -2;
    if (step >= 0 && fpt_metrics_find(r->s.run_dir, step, "test", &acc) == 0)
      step = -1; // written already (a run begun under --eval-test-at best or every)
  }
  MPI_Bcast(&step, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
  if (step == -2)
    return 1; // read_state said why
  if (step < 0 || step == final_step)
    return 0;
  if (fpt_runtime_agree(&r->rt, train_load_from(r, "keep-best", path, NULL)) != 0)
    return 1;
  double l, a;
  int rc = fpt_pipeline_evaluate(&r->pl, FPT_TEST, &l, &a);
  if (rc != 0)
    return rc == FPT_STOPPED ? rc : 1;
  if (r->g.rank == 0) {
    printf("test at the best val evaluation (step %lld)  loss %.4f  accuracy %.4f\n",
           (long long)step, l, a);
    rc = fpt_metrics_write(&r->mt, step, "test", l, a, 0, 0, NULL, NULL);
  }
  return fpt_runtime_agree(&r->rt, rc);
}

// After the last step: the memory figure, the final evaluation, --export.
static int train_finish(fpt_run *r, int64_t final_step) {
  // After training every rank has touched its weights: the fair memory figure.
  double mem[2];
  train_memory_mb(&mem[0], &mem[1]);
  MPI_Allreduce(MPI_IN_PLACE, mem, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  if (r->g.rank == 0)
    printf("memory after training: %.0f MB resident in all ranks, %.0f MB proportional\n", mem[0],
           mem[1]);
  split_scores sc;
  int rc = eval_splits(r, &sc);
  // --eval-test-at end: before the final lines, which mark the run finished.
  if (rc == 0 && r->s.eval_test && !strcmp(r->s.eval_test_at, "end") && !improved(r))
    rc = best_test(r, final_step);
  if (rc == FPT_STOPPED) { // the last checkpoint is there: a resume evaluates again
    if (r->g.rank == 0)
      printf("stopped by a signal during the final evaluation; exit %d asks to be requeued\n",
             FPT_EXIT_REQUEUE);
    return FPT_EXIT_REQUEUE;
  }
  if (rc == 0)
    rc = write_splits(r, final_step, "final ", 4, 1, &sc);
  if (fpt_runtime_agree(&r->rt, rc) != 0 || (improved(r) && keep_best(r, final_step) != 0))
    return 1;
  if (!r->s.export)
    return 0;
  if (r->g.rank == 0) {
    // From the last checkpoint, as `fpt export` would: any stage layout.
    char ckpt[4400], note[6000];
    rc = fpt_checkpoint_resume_point(r->s.run_dir, ckpt, sizeof ckpt, note, sizeof note) != 0;
    if (rc == 0)
      rc = fpt_export_checkpoint(ckpt, r->s.model, r->s.export);
  }
  return fpt_runtime_agree(&r->rt, rc);
}

// fpt train / pretrain after the set-up: 0, 1 (error) or FPT_EXIT_REQUEUE.
static int train_run(fpt_run *r) {
  int begun = train_begin(r);
  if (begun != 0)
    return begun == FPT_EXIT_REQUEUE ? begun : 1;
  loop_clock c = {train_now(), 0, 0};
  int64_t done = r->start;
  int rc = early_stop_met(r) ? FPT_STOPPED : 0;
  if (rc && r->g.rank == 0)
    printf("resume: step %lld is the early stop's: no further steps\n", (long long)done);
  while (done < r->s.steps && rc == 0) {
    rc = one_step(r, done, &c);
    done++;
    rc = rc ? rc : after_step(r, done, &c);
  }
  if (rc == FPT_STOPPED) // early stop: the run is complete
    rc = 0;
  return rc == 0 ? train_finish(r, done) : rc;
}

// fpt eval: the checkpoint's tensors over the set-up's model, then val and test.
static int run_eval(fpt_run *r) {
  if (fpt_runtime_agree(&r->rt, train_load_from(r, "checkpoint", r->s.checkpoint, NULL)) != 0)
    return 1;
  split_scores sc;
  int rc = eval_splits(r, &sc);
  return fpt_runtime_agree(&r->rt, rc ? rc : write_splits(r, 0, "", 6, 0, &sc));
}

static int run_other(fpt_run *r) {
  train_print_startup(r);
  if (r->cmd->kind == FPT_RUN_EVAL)
    return run_eval(r);
  // A probe's run directory says how it was made, as a training run's does
  // (the campaign's runners compare its train_limit with their line's).
  int rc = r->s.run_dir && r->g.rank == 0 ? train_write_config(r) : 0;
  if (fpt_runtime_agree(&r->rt, rc) != 0)
    return 1;
  return fpt_probe_run(&r->s, &r->rt, &r->g, &r->m, &r->src, &r->pl, &r->st, &r->desc);
}

int train_main(const train_command *c, int argc, char **argv) {
  if (argc > 2 && !strcmp(argv[2], "--help")) {
    fpt_opts_help_set(c->usage, c->opts);
    return 0;
  }
  static fpt_run run;
  fpt_run *r = &run;
  memset(r, 0, sizeof *r);
  r->cmd = c;
  if (fpt_runtime_init(&r->rt, &argc, &argv) != 0)
    return 1;
  fpt_stop_install(); // before the (possibly long) set-up, so a signal is never lost
  if (fpt_runtime_agree(&r->rt, fpt_grid_check_launch(r->rt.size)) != 0)
    return fpt_runtime_finish(&r->rt, 1);
  if (fpt_runtime_agree(&r->rt, train_setup(r, argc, argv)) != 0 ||
      fpt_runtime_agree(&r->rt, train_checksums(r)) != 0)
    return train_teardown(r, 1);
  int rc = c->kind == FPT_RUN_EVAL || c->kind == FPT_RUN_PROBE ? run_other(r) : train_run(r);
  if (rc == FPT_EXIT_REQUEUE) {
    train_teardown(r, 0);
    return FPT_EXIT_REQUEUE;
  }
  return train_teardown(r, rc != 0);
}
