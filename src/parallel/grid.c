#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/parallel.h"

int fpt_grid_check_launch(int world) {
  // Each launcher states how many processes it started; MPI must agree.
  const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS"};
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
    const char *v = getenv(vars[i]);
    if (!v || !*v)
      continue;
    long n = strtol(v, NULL, 10);
    // Under sbatch + mpirun, SLURM_STEP_NUM_TASKS describes the batch step, not us.
    if (i == 3 && getenv("OMPI_COMM_WORLD_SIZE"))
      continue;
    FPT_ENSURE(n == world,
               "the launcher started %ld processes (%s) but MPI sees a world of %d: each "
               "process came up alone. Launch with mpirun, or srun --mpi=pmix",
               n, vars[i], world);
  }
  return 0;
}

int fpt_grid_create(fpt_grid *g, int S, MPI_Comm world) {
  memset(g, 0, sizeof *g);
  g->win = MPI_WIN_NULL;
  MPI_Comm_size(world, &g->world);
  MPI_Comm_rank(world, &g->rank);
  FPT_ENSURE(S >= 1 && g->world % S == 0,
             "option --stages: the world of %d ranks is not divisible by %d stages", g->world, S);
  g->S = S;
  g->R = g->world / S;
  g->stage = g->rank % S;
  g->replica = g->rank / S;
  MPI_Comm_split(world, g->replica, g->stage, &g->pipe);
  MPI_Comm_split(world, g->stage, g->replica, &g->stage_comm);
  MPI_Comm node;
  MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, g->rank, MPI_INFO_NULL, &node);
  MPI_Comm_split(node, g->stage, g->rank, &g->node_stage);
  MPI_Comm_free(&node);
  MPI_Comm_rank(g->node_stage, &g->node_rank);
  return 0;
}

int fpt_grid_shared_frozen(fpt_grid *g, size_t n, float **mem, int *leader) {
  MPI_Aint bytes = g->node_rank == 0 ? (MPI_Aint)((n ? n : 1) * sizeof(float)) : 0;
  float *base = NULL;
  int rc =
      MPI_Win_allocate_shared(bytes, sizeof(float), MPI_INFO_NULL, g->node_stage, &base, &g->win);
  FPT_ENSURE(rc == MPI_SUCCESS, "cannot allocate a shared window of %zu floats", n);
  MPI_Aint size;
  int disp;
  MPI_Win_shared_query(g->win, 0, &size, &disp, &base);
  *mem = base;
  *leader = g->node_rank == 0;
  return 0;
}

void fpt_grid_free(fpt_grid *g) {
  if (g->win && g->win != MPI_WIN_NULL)
    MPI_Win_free(&g->win);
  if (g->pipe != MPI_COMM_NULL && g->pipe)
    MPI_Comm_free(&g->pipe);
  if (g->stage_comm != MPI_COMM_NULL && g->stage_comm)
    MPI_Comm_free(&g->stage_comm);
  if (g->node_stage != MPI_COMM_NULL && g->node_stage)
    MPI_Comm_free(&g->node_stage);
}
