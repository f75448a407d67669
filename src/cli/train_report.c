// What a run of the family says: the start-up table, metrics.jsonl's run
// line, config.yaml (the resolved settings) and the progress lines.
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpu.h"
#include "fpt/check.h"
#include "fpt_version.h"
#include "train.h"

double train_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

// Resident and proportional (shared pages split among sharers) set size, MB.
void train_memory_mb(double *rss, double *pss) {
  *rss = *pss = 0;
  FILE *f = fopen("/proc/self/smaps_rollup", "r");
  if (!f)
    return;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    long kb;
    if (sscanf(line, "Rss: %ld kB", &kb) == 1)
      *rss = kb / 1024.0;
    if (sscanf(line, "Pss: %ld kB", &kb) == 1)
      *pss = kb / 1024.0;
  }
  fclose(f);
}

static void emit_file(void *ctx, const char *line) { fprintf((FILE *)ctx, "%s\n", line); }
static void emit_stdout(void *ctx, const char *line) {
  (void)ctx;
  printf("  %s\n", line);
}

static void print_model(const fpt_run *r, const double cnt[2], const double mem[2]) {
  const fpt_model *m = &r->m;
  printf("model: %s (%s%s), %d layers, %d wide, %d heads; %.0f parameters, %.0f trainable\n",
         m->cfg.kind, m->cfg.n_head ? (m->cfg.causal ? "causal" : "bidirectional") : "recurrent",
         m->random_state ? ", random initial state" : "", m->cfg.n_layer, m->cfg.n_embd,
         m->cfg.n_head, cnt[0], cnt[1]);
  printf("memory: %.0f MB resident in all ranks, %.0f MB proportional (frozen weights %s)\n",
         mem[0], mem[1], r->s.shared_weights ? "shared per node and stage" : "per rank");
  const char *how[] = {"last", "last-real", "mean"};
  printf("task: %s, %d tokens x %d%s, readout %d (%s%s), %d targets x %d classes\n", r->src.task,
         m->task.seq, m->task.d_in ? m->task.d_in : m->task.vocab, m->task.d_in ? "" : " ids",
         m->task.r, how[m->task.readout], r->src.lengths ? ", pad keys masked or skipped" : "",
         m->K, m->task.n_cls);
  if (r->src.from_file)
    printf("data: %s: %lld train, %lld val, %lld test samples%s\n", r->s.data,
           (long long)fpt_source_size(&r->src, FPT_TRAIN),
           (long long)fpt_source_size(&r->src, FPT_VAL),
           (long long)fpt_source_size(&r->src, FPT_TEST),
           r->s.eval_limit || r->s.train_limit ? " (used: --eval-limit/--train-limit)" : "");
}

// Collective: parameter counts over the stages, memory over all ranks.
void train_print_startup(const fpt_run *r) {
  double cnt[2] = {0, 0}, mem[2];
  for (int i = 0; i < r->m.n_tensors; i++) {
    cnt[0] += (double)r->m.tensors[i].numel;
    cnt[1] += r->m.tensors[i].trainable ? (double)r->m.tensors[i].numel : 0;
  }
  MPI_Allreduce(MPI_IN_PLACE, cnt, 2, MPI_DOUBLE, MPI_SUM, r->g.pipe);
  train_memory_mb(&mem[0], &mem[1]);
  MPI_Allreduce(MPI_IN_PLACE, mem, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  if (r->g.rank != 0)
    return;
  printf("fpt %s\n", r->cmd->name);
  fpt_opts_dump_set(r->cmd->opts, &r->s, emit_stdout, NULL);
  printf("grid: %d stage(s) x %d replica(s); %d micro-batch(es) of %d per replica; schedule %s\n",
         r->g.S, r->g.R, r->pl.M, r->pl.mbs, r->s.schedule);
  char cpu[512];
  fpt_cpu_summary(cpu, sizeof cpu);
  printf("threads per rank: %d (%s, 1 thread per call)\n%s\n", fpt_num_threads(),
         openblas_get_config(), cpu);
  if (r->m.frozen_dtype == FPT_FROZEN_BF16)
    printf("frozen matrices: bf16 (AVX512_BF16, fp32 accumulation): %d on rank 0, %.1f MB\n",
           r->m.n_bf16, r->m.bf16_bytes / 1048576.0);
  else if (r->m.n_bf16 > 0)
    printf("frozen matrices: fp32, packed once (AVX-512): %d on rank 0, %.1f MB\n", r->m.n_bf16,
           r->m.bf16_bytes / 1048576.0);
  else
    printf("frozen matrices: fp32\n");
  print_model(r, cnt, mem);
  fflush(stdout);
}

// metrics.jsonl says what ran each time the run starts or resumes, so that a
// slow segment explains itself (a CPU without the kernel, another grid).
int train_write_run_line(fpt_run *r) {
  fpt_cpu c;
  fpt_cpu_detect(&c);
  char feat[160], grid[64], thr[16];
  fpt_cpu_features(&c, feat, sizeof feat);
  snprintf(grid, sizeof grid, "%d stage(s) x %d replica(s)", r->g.S, r->g.R);
  snprintf(thr, sizeof thr, "%d", fpt_num_threads());
  const char *k[] = {"fpt",          "cpu",  "cpu_features",    "blas_kernel", "blas_kernel_origin",
                     "frozen_dtype", "grid", "threads_per_rank"};
  const char *v[] = {FPT_VERSION " (git " FPT_GIT_REVISION ")",
                     c.brand,
                     feat,
                     fpt_blas_kernel(),
                     fpt_blas_kernel_origin(),
                     fpt_frozen_dtype_names[r->m.frozen_dtype],
                     grid,
                     thr};
  return fpt_metrics_write_info(&r->mt, r->start, (int)(sizeof k / sizeof *k), k, v);
}

int train_write_config(const fpt_run *r) {
  char path[4200];
  snprintf(path, sizeof path, "%s/config.yaml", r->s.run_dir);
  FILE *f = fopen(path, "w");
  FPT_ENSURE(f, "%s: cannot write", path);
  fpt_opts_dump_set(r->cmd->opts, &r->s, emit_file, f);
  FPT_ENSURE(fclose(f) == 0, "%s: write failed", path);
  return 0;
}

// One line per logging interval; on a terminal, a live bar redrawn in place.
void train_print_progress(long long done, long long total, double loss, double acc, double tps,
                          double eta) {
  // Open MPI gives ranks a pseudo-terminal even when mpirun's output goes to a
  // file, so under mpirun the bar is opt-in: FPT_PROGRESS=bar (or =lines).
  static int tty = -1;
  if (tty < 0) {
    const char *want = getenv("FPT_PROGRESS");
    tty = want ? !strcmp(want, "bar") : isatty(STDOUT_FILENO) && !getenv("OMPI_COMM_WORLD_SIZE");
  }
  char bar[24] = "";
  if (tty) {
    int w = 20, fill = total > 0 ? (int)(w * done / total) : w;
    for (int i = 0; i < w; i++)
      bar[i] = i < fill ? '#' : '.';
    bar[w] = '\0';
  }
  printf("%s%s%sstep %6lld/%lld  loss %.4f  acc %.4f  %.0f tok/s  eta %.0fs%s", tty ? "\r[" : "",
         bar, tty ? "] " : "", done, total, loss, acc, tps, eta,
         tty ? (done == total ? "\n" : "   ") : "\n");
  fflush(stdout);
}
