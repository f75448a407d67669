#include "fpt/stop.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fpt/check.h"

static volatile sig_atomic_t stop_signal;
static char temp_file[4300];

static void on_signal(int sig) { stop_signal = sig; }

void fpt_stop_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
}

int fpt_stop_requested(void) { return stop_signal; }

void fpt_stop_temp_file(const char *path) {
  snprintf(temp_file, sizeof temp_file, "%s", path ? path : "");
}

int fpt_stop_check(const char *what) {
  if (!stop_signal)
    return 0;
  if (temp_file[0])
    unlink(temp_file);
  FPT_FAIL("%s: stopped by signal %d (%s)", what, (int)stop_signal,
           stop_signal == SIGTERM   ? "SIGTERM"
           : stop_signal == SIGUSR1 ? "SIGUSR1"
                                    : "SIGINT");
}
