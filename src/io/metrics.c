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

int fpt_metrics_write(fpt_metrics *mt, int64_t step, const char *split, double loss,
                      double accuracy, double tokens_per_s, int n_extra,
                      const char *const *extra_names, const double *extra_values) {
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

int fpt_metrics_write_info(fpt_metrics *mt, int64_t step, int n, const char *const *keys,
                           const char *const *values) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "step", (double)step);
  cJSON_AddStringToObject(o, "split", "run");
  for (int i = 0; i < n; i++)
    cJSON_AddStringToObject(o, keys[i], values[i]);
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

int fpt_metrics_truncate(const char *run_dir, int64_t step) {
  char path[4200], tmp[4300];
  snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *in = fopen(path, "r");
  if (!in)
    return 0; // nothing logged yet
  FILE *out = fopen(tmp, "w");
  if (!out) {
    fclose(in);
    FPT_FAIL("%s: cannot write", tmp);
  }
  char *line = NULL;
  size_t cap = 0;
  long long lineno = 0;
  int rc = 0;
  while (getline(&line, &cap, in) > 0) {
    lineno++;
    cJSON *o = cJSON_Parse(line);
    const cJSON *s = o ? cJSON_GetObjectItemCaseSensitive(o, "step") : NULL;
    if (!cJSON_IsNumber(s)) {
      // A line cut by a crash can only be the last; anything else is damage.
      int last = fgetc(in) == EOF;
      cJSON_Delete(o);
      if (last)
        break;
      fpt_error_set("%s:%lld: not a metrics line", path, lineno);
      rc = 1;
      break;
    }
    // Final-evaluation lines come after the last checkpoint: a resumed run redoes them.
    if ((int64_t)s->valuedouble <= step && !cJSON_GetObjectItemCaseSensitive(o, "final"))
      fputs(line, out);
    cJSON_Delete(o);
  }
  free(line);
  fclose(in);
  if (fclose(out) != 0 && rc == 0) {
    fpt_error_set("%s: write failed", tmp);
    rc = 1;
  }
  if (rc == 0 && rename(tmp, path) != 0) {
    fpt_error_set("%s: cannot replace", path);
    rc = 1;
  }
  if (rc != 0)
    remove(tmp);
  return rc;
}

int fpt_metrics_find(const char *run_dir, int64_t step, const char *split, double *accuracy) {
  char path[4200];
  snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
  FILE *f = fopen(path, "r");
  if (!f)
    return 1;
  char *line = NULL;
  size_t cap = 0;
  int found = 0;
  while (getline(&line, &cap, f) > 0) {
    cJSON *o = cJSON_Parse(line);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "step");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "split");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "accuracy");
    if (cJSON_IsNumber(s) && (int64_t)s->valuedouble == step && cJSON_IsString(p) &&
        !strcmp(p->valuestring, split) && cJSON_IsNumber(a)) {
      *accuracy = a->valuedouble; // the last such line: a final evaluation redoes a periodic one
      found = 1;
    }
    cJSON_Delete(o);
  }
  free(line);
  fclose(f);
  return found ? 0 : 1;
}
