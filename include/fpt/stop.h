// Stop requests (SIGTERM: preemption; SIGUSR1: Slurm's warning before the
// time limit; SIGINT): the handler only records the signal, every long loop
// (training steps, evaluations, feature passes, data conversion) checks it,
// and MPI code agrees on it across ranks before acting. A process writing a
// file registers its temporary name, which a stop removes.
#ifndef FPT_STOP_H
#define FPT_STOP_H

// What an interrupted collective loop returns (all ranks agree on it).
#define FPT_STOPPED 3

void fpt_stop_install(void);
// The signal that asked to stop, or 0.
int fpt_stop_requested(void);
// A temporary output to remove if the process is stopped before it is
// committed (NULL: none). One at a time.
void fpt_stop_temp_file(const char *path);
// For single-process loops: 0, or 1 with an error message naming the signal
// (the caller cleans up and returns the error).
int fpt_stop_check(const char *what);

#endif
