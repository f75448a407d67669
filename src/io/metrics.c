#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpt/check.h"
#include "fpt/io.h"

int fpt_metrics_open(fpt_metrics *mt, const char *run_dir) {
  snprintf(mt->path, sizeof mt->path, "%s/metrics.jsonl", run_dir);
  mt->f = fopen(mt->path, "a");
  FPT_ENSURE(mt->f, "%s: cannot open for writing", mt->path);
  return 0;
}

int fpt_metrics_write(fpt_metrics *mt, int64_t step, const char *split,
                      double loss, double accuracy, double tokens_per_s,
                      int n_extra, const char *const *extra_names,
                      const double *extra_values) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "step", (double)step);
  cJSON_AddStringToObject(o, "split", split);
  cJSON_AddNumberToObject(o, "loss", loss);
  cJSON_AddNumberToObject(o, "accuracy", accuracy);
  cJSON_AddNumberToObject(o, "tokens_per_s", tokens_per_s);
  for (int i = 0; i < n_extra; i++)
    cJSON_AddNumberToObject(o, extra_names[i], extra_values[i]);
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  int ok = s && fprintf(mt->f, "%s\n", s) > 0 && fflush(mt->f) == 0;
  free(s);
  FPT_ENSURE(ok, "%s: write failed", mt->path);
  return 0;
}

void fpt_metrics_close(fpt_metrics *mt) {
  if (mt->f)
    fclose(mt->f);
  mt->f = NULL;
}
