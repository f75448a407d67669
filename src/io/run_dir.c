// A run directory belongs to one run (issue 16 §1): one process at a time
// holds its lock; a resume finds the newest checkpoint that verifies, and
// never starts fresh over checkpoints it cannot read; outputs are never
// inputs.
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fpt/check.h"
#include "fpt/checkpoint.h"
#include "fpt/io.h"

int fpt_run_lock(const char *run_dir, int *fd) {
  char path[4200], holder[256] = "";
  snprintf(path, sizeof path, "%s/.fpt.lock", run_dir);
  *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  FPT_ENSURE(*fd >= 0, "%s: cannot create the run lock (%s)", path, strerror(errno));
  if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
    ssize_t n = pread(*fd, holder, sizeof holder - 1, 0);
    holder[n > 0 ? n : 0] = '\0';
    holder[strcspn(holder, "\n")] = '\0';
    close(*fd);
    *fd = -1;
    FPT_FAIL("option --run-dir: %s is in use by another fpt run (%s); wait for it, or use another "
             "--run-dir",
             run_dir, holder[0] ? holder : "holder unknown");
  }
  char host[128] = "?";
  gethostname(host, sizeof host - 1);
  char me[256];
  int n = snprintf(me, sizeof me, "host %s pid %ld\n", host, (long)getpid());
  if (ftruncate(*fd, 0) != 0 || pwrite(*fd, me, (size_t)n, 0) != n) {
    // The lock holds anyway; only the holder's name for others' messages is lost.
  }
  return 0;
}

// ---------------------------------------------------------------- checkpoints

typedef struct {
  const char *path;
  int bad;
} verify_ctx;

static herr_t read_one(hid_t obj, const char *name, const H5O_info_t *info, void *op) {
  verify_ctx *v = op;
  if (info->type != H5O_TYPE_DATASET)
    return 0;
  hid_t ds = H5Dopen2(obj, name, H5P_DEFAULT);
  hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
  hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
  float *buf = n >= 0 ? malloc(sizeof(float) * (size_t)(n > 0 ? n : 1)) : NULL;
  // Fletcher32: a corrupted chunk fails the read.
  herr_t rc = buf ? H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : -1;
  free(buf);
  if (sp >= 0)
    H5Sclose(sp);
  if (ds >= 0)
    H5Dclose(ds);
  v->bad |= rc < 0;
  return v->bad ? 1 : 0;
}

int fpt_checkpoint_verify(const char *path) {
  hid_t f;
  FPT_TRY(fpt_h5_open_read(path, &f));
  int64_t version, step;
  int rc = fpt_h5_read_attr_i64(f, path, "format_version", &version);
  if (rc == 0)
    rc = fpt_h5_read_attr_i64(f, path, "step", &step);
  verify_ctx v = {path, 0};
  if (rc == 0 && H5Ovisit(f, H5_INDEX_NAME, H5_ITER_NATIVE, read_one, &v) < 0)
    v.bad = 1;
  H5Fclose(f);
  FPT_TRY(rc);
  FPT_ENSURE(!v.bad, "%s: a dataset does not read back (checksum or truncation)", path);
  return 0;
}

static int cmp_desc(const void *a, const void *b) {
  return -strcmp((const char *)a, (const char *)b);
}

// ckpt-*.h5 of RUN/checkpoints, newest first (names sort by step); *n found.
static char (*list_checkpoints(const char *run_dir, int *n))[64] {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
  *n = 0;
  DIR *d = opendir(dir);
  if (!d)
    return NULL;
  int cap = 64;
  char(*names)[64] = fpt_calloc((size_t)cap, 64);
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t L = strlen(e->d_name);
    if (strncmp(e->d_name, "ckpt-", 5) || L < 8 || L >= 64 || strcmp(e->d_name + L - 3, ".h5"))
      continue;
    if (*n == cap) {
      cap *= 2;
      names = fpt_realloc(names, (size_t)cap * 64);
    }
    memcpy(names[(*n)++], e->d_name, L + 1); // L < 64 was checked above
  }
  closedir(d);
  qsort(names, (size_t)*n, 64, cmp_desc);
  return names;
}

int fpt_run_has_checkpoints(const char *run_dir) {
  char lt[4300];
  snprintf(lt, sizeof lt, "%s/checkpoints/latest", run_dir);
  int n;
  free(list_checkpoints(run_dir, &n));
  return n > 0 || access(lt, F_OK) == 0;
}

int fpt_checkpoint_resume_point(const char *run_dir, char *path, size_t size, char *note,
                                size_t note_size) {
  note[0] = '\0';
  char lt[4300], why[1100] = "";
  snprintf(lt, sizeof lt, "%s/checkpoints/latest", run_dir);
  // Absent and unreadable are not the same: only a run without any
  // checkpoint may start fresh.
  int exists = access(lt, F_OK) == 0;
  int latest = exists ? fpt_checkpoint_latest(run_dir, path, size) : 1;
  if (latest == 0 && fpt_checkpoint_verify(path) == 0)
    return 0;
  if (!exists)
    snprintf(why, sizeof why, "is missing");
  else if (latest == 0)
    snprintf(why, sizeof why, "names %s, which does not verify (%s)", path, fpt_error_get());
  else
    snprintf(why, sizeof why, "is unreadable (%s)", fpt_error_get());
  fpt_error_clear(); // the first message wins: the verdict below must be the one shown
  int n;
  char(*names)[64] = list_checkpoints(run_dir, &n);
  for (int i = 0; i < n; i++) {
    snprintf(path, size, "%s/checkpoints/%s", run_dir, names[i]);
    if (fpt_checkpoint_verify(path) == 0) {
      snprintf(note, note_size,
               "%s/checkpoints/latest %s; resuming from the newest checkpoint that verifies: %s",
               run_dir, why, names[i]);
      free(names);
      return 0;
    }
    fpt_error_clear();
  }
  free(names);
  if (n == 0 && !exists)
    return FPT_RESUME_FRESH; // a fresh run directory
  FPT_FAIL("%s: holds %d checkpoint file(s), but none verifies (checkpoints/latest %s); not "
           "starting over them: move them away, or use another --run-dir",
           run_dir, n, why);
}

// ---------------------------------------------------------------- paths

int fpt_same_file(const char *a, const char *b) {
  struct stat x, y;
  return a && b && stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev &&
         x.st_ino == y.st_ino;
}

int fpt_output_ok(const char *what, const char *path) {
  struct stat st;
  if (stat(path, &st) == 0)
    FPT_ENSURE(S_ISREG(st.st_mode), "%s: %s exists and is not a regular file", what, path);
  char dir[4200];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash)
    *slash = '\0';
  else
    snprintf(dir, sizeof dir, ".");
  if (slash == dir)
    snprintf(dir, sizeof dir, "/");
  FPT_ENSURE(stat(dir, &st) == 0 && S_ISDIR(st.st_mode), "%s: %s: directory %s does not exist",
             what, path, dir);
  FPT_ENSURE(access(dir, W_OK) == 0, "%s: %s: directory %s is not writable", what, path, dir);
  return 0;
}

int fpt_checkpoint_keep_best(const char *run_dir, int64_t step, double val_acc, double val_loss) {
  char latest[4400], tmp[4500], best[4500];
  FPT_TRY(fpt_checkpoint_latest(run_dir, latest, sizeof latest));
  snprintf(tmp, sizeof tmp, "%s/checkpoints/best.h5.tmp", run_dir);
  snprintf(best, sizeof best, "%s/checkpoints/best.h5", run_dir);
  unlink(tmp);
  FPT_ENSURE(link(latest, tmp) == 0, "%s: cannot link it to %s (%s)", latest, tmp, strerror(errno));
  FPT_ENSURE(rename(tmp, best) == 0, "%s: cannot rename to %s (%s)", tmp, best, strerror(errno));
  snprintf(tmp, sizeof tmp, "%s/checkpoints/best.json.tmp", run_dir);
  snprintf(best, sizeof best, "%s/checkpoints/best.json", run_dir);
  FILE *f = fopen(tmp, "w");
  FPT_ENSURE(f, "%s: cannot write (%s)", tmp, strerror(errno));
  int ok = fprintf(f, "{\"step\": %lld, \"val_accuracy\": %.17g, \"val_loss\": %.17g}\n",
                   (long long)step, val_acc, val_loss) > 0;
  ok = (fclose(f) == 0) && ok;
  FPT_ENSURE(ok, "%s: write failed%s", tmp, fpt_io_why(errno));
  FPT_ENSURE(rename(tmp, best) == 0, "%s: cannot rename to %s (%s)", tmp, best, strerror(errno));
  return 0;
}

int fpt_checkpoint_best_accuracy(const char *run_dir, double *val_acc) {
  char path[4500], text[512];
  snprintf(path, sizeof path, "%s/checkpoints/best.json", run_dir);
  *val_acc = -INFINITY;
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  cJSON *o = cJSON_Parse(text);
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "val_accuracy");
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "step");
  int ok = cJSON_IsNumber(a);
  long long step = cJSON_IsNumber(st) ? (long long)st->valuedouble : -1;
  if (ok)
    *val_acc = a->valuedouble;
  cJSON_Delete(o);
  FPT_ENSURE(ok, "%s: no val_accuracy (a damaged file? delete it to start the best over)", path);
  // best.h5 is renamed into place before best.json is written, so a best.json
  // alone means best.h5 was lost (a copy of the run without it): resumed, the
  // run could not score the test split on its best weights, so say so now.
  snprintf(path, sizeof path, "%s/checkpoints/best.h5", run_dir);
  FPT_ENSURE(access(path, F_OK) == 0,
             "%s: missing, but best.json beside it names step %lld as the best val evaluation: "
             "copy it back, or delete best.json to start the best over (its weights are lost)",
             path, step);
  return 0;
}
