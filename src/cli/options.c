#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

#include "fpt/check.h"
#include "fpt/config.h"

const fpt_opt *fpt_opts_find(fpt_opt_set set, const char *opt) {
  char key[64];
  size_t k = 0;
  for (; opt[k] && k < sizeof key - 1; k++)
    key[k] = opt[k] == '-' ? '_' : opt[k];
  key[k] = '\0';
  for (int g = 0; g < set.n; g++)
    for (int i = 0; i < set.groups[g].n; i++)
      if (strcmp(set.groups[g].opts[i].key, key) == 0)
        return &set.groups[g].opts[i];
  return NULL;
}

// A one-table command is a set of one untitled group.
#define ONE(table, n)                                                                              \
  (fpt_opt_set) { &(fpt_opt_group){NULL, table, n}, 1, NULL }

// The position of an option in its set (for the "given twice" bookkeeping).
static int index_of(fpt_opt_set set, const fpt_opt *o) {
  int at = 0;
  for (int g = 0; g < set.n; g++) {
    if (o >= set.groups[g].opts && o < set.groups[g].opts + set.groups[g].n)
      return at + (int)(o - set.groups[g].opts);
    at += set.groups[g].n;
  }
  return -1;
}

int fpt_opts_index(fpt_opt_set set, const char *key) {
  const fpt_opt *o = fpt_opts_find(set, key);
  return o ? index_of(set, o) : -1;
}

static void mark(fpt_opt_set set, const fpt_opt *o) {
  if (set.given)
    set.given[index_of(set, o)] = 1;
}

static int set_size(fpt_opt_set set) {
  int n = 0;
  for (int g = 0; g < set.n; g++)
    n += set.groups[g].n;
  return n;
}

static int set_value_from(const fpt_opt *o, const char *v, void *settings, const char *file,
                          long line);
static int set_value(const fpt_opt *o, const char *v, void *settings) {
  return set_value_from(o, v, settings, NULL, 0);
}

static int set_value_from(const fpt_opt *o, const char *v, void *settings, const char *file,
                          long line) {
  char where[4200];
  if (file)
    snprintf(where, sizeof where, "%s:%ld: key %s", file, line, o->key);
  else {
    int n = snprintf(where, sizeof where, "option --%s", o->key);
    for (int k = 9; k < n && k < (int)sizeof where; k++) // --batch-size, not --batch_size
      where[k] = where[k] == '_' ? '-' : where[k];
  }
  char *end = NULL;
  void *dst = (char *)settings + o->offset;
  errno = 0;
  switch (o->type) {
  case FPT_OPT_STR:
    *(const char **)dst = v;
    return 0;
  case FPT_OPT_INT: {
    long long x = strtoll(v, &end, 10);
    FPT_ENSURE(*v && !*end && errno == 0, "%s: '%s' is not an integer", where, v);
    double lo = o->lo, hi = o->hi;
    if (lo == 0 && hi == 0) { // values are cast to int: they must fit
      lo = INT_MIN;
      hi = INT_MAX;
    }
    FPT_ENSURE((double)x >= lo && (double)x <= hi && !(o->open_lo && (double)x <= lo),
               "%s: %lld is out of range (%s%.0f .. %.0f)", where, x, o->open_lo ? "> " : "", lo,
               hi);
    *(long long *)dst = x;
    return 0;
  }
  case FPT_OPT_FLOAT: {
    double x = strtod(v, &end);
    FPT_ENSURE(*v && !*end && errno == 0 && isfinite(x), "%s: '%s' is not a finite number", where,
               v);
    int ranged = o->lo != 0 || o->hi != 0;
    FPT_ENSURE(!ranged || (x >= o->lo && x <= o->hi && !(o->open_lo && x <= o->lo)),
               "%s: %g is out of range (%s%g .. %g)", where, x, o->open_lo ? "> " : "", o->lo,
               o->hi);
    *(double *)dst = x;
    return 0;
  }
  case FPT_OPT_BOOL:
    if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes"))
      *(int *)dst = 1;
    else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no"))
      *(int *)dst = 0;
    else
      FPT_FAIL("%s: '%s' is not a boolean (true/false/1/0)", where, v);
    return 0;
  }
  return 1;
}

int fpt_opts_parse(int argc, char **argv, int first, const fpt_opt *table, int n, void *settings) {
  return fpt_opts_parse_set(argc, argv, first, ONE(table, n), settings);
}

int fpt_opts_parse_set(int argc, char **argv, int first, fpt_opt_set set, void *settings) {
  for (int i = first; i < argc; i++) {
    const char *a = argv[i];
    const char *name = NULL;
    if (!strcmp(a, "-o"))
      name = "out";
    else if (!strncmp(a, "--", 2))
      name = a + 2;
    FPT_ENSURE(name && *name, "unexpected argument '%s' (options are --key value)", a);
    const fpt_opt *o = fpt_opts_find(set, name);
    FPT_ENSURE(o, "unknown option '%s' (see --help)", a);
    FPT_ENSURE(i + 1 < argc, "option %s needs a value", a);
    FPT_TRY(set_value(o, argv[++i], settings));
    mark(set, o);
  }
  return 0;
}

void fpt_opts_help(const char *usage, const fpt_opt *table, int n) {
  fpt_opts_help_set(usage, ONE(table, n));
}

void fpt_opts_help_set(const char *usage, fpt_opt_set set) {
  printf("usage: %s\n", usage);
  for (int g = 0; g < set.n; g++) {
    printf("\n%s:\n", set.groups[g].title ? set.groups[g].title : "options");
    for (int i = 0; i < set.groups[g].n; i++) {
      const fpt_opt *o = &set.groups[g].opts[i];
      char opt[64];
      size_t k = 0;
      for (; o->key[k] && k < sizeof opt - 1; k++)
        opt[k] = o->key[k] == '_' ? '-' : o->key[k];
      opt[k] = '\0';
      printf("  --%-18s %s\n", opt, o->help);
    }
  }
}

void fpt_opts_dump(const fpt_opt *table, int n, const void *settings,
                   void (*emit)(void *ctx, const char *line), void *ctx) {
  fpt_opts_dump_set(ONE(table, n), settings, emit, ctx);
}

static void dump_table(const fpt_opt *table, int n, const void *settings,
                       void (*emit)(void *ctx, const char *line), void *ctx) {
  char line[4200];
  for (int i = 0; i < n; i++) {
    const void *src = (const char *)settings + table[i].offset;
    switch (table[i].type) {
    case FPT_OPT_STR: {
      const char *s = *(const char *const *)src;
      snprintf(line, sizeof line, "%s: %s%s%s", table[i].key, s ? "\"" : "", s ? s : "null",
               s ? "\"" : "");
      break;
    }
    case FPT_OPT_INT:
      snprintf(line, sizeof line, "%s: %lld", table[i].key, *(const long long *)src);
      break;
    case FPT_OPT_FLOAT:
      snprintf(line, sizeof line, "%s: %.17g", table[i].key, *(const double *)src);
      break;
    case FPT_OPT_BOOL:
      snprintf(line, sizeof line, "%s: %s", table[i].key, *(const int *)src ? "true" : "false");
      break;
    }
    emit(ctx, line);
  }
}

void fpt_opts_dump_set(fpt_opt_set set, const void *settings,
                       void (*emit)(void *ctx, const char *line), void *ctx) {
  for (int g = 0; g < set.n; g++)
    dump_table(set.groups[g].opts, set.groups[g].n, settings, emit, ctx);
}

// YAML's null (plain null, Null, NULL, ~ or nothing): the key stays unset.
static int yaml_null(const yaml_event_t *e) {
  const char *v = (const char *)e->data.scalar.value;
  return e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
         (!*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL"));
}

// YAML: one flat mapping of known keys to scalars, parsed with libyaml.
int fpt_opts_load_yaml(const char *path, const fpt_opt *table, int n, void *settings) {
  return fpt_opts_load_yaml_set(path, ONE(table, n), settings);
}

// The state of one YAML file's parse.
typedef struct {
  const char *path;
  fpt_opt_set set;
  void *settings;
  int depth;
  char *key; // the key whose value comes next
  // Keys already set: a key given twice is an error (tests/fuzz/README.md:
  // the first string value leaked, and which one wins was a guess).
  unsigned char *seen;
} yaml_load;

// A scalar: a key, or the value of the key before it.
static int yaml_scalar(yaml_load *y, const yaml_event_t *e, long line) {
  const char *v = (const char *)e->data.scalar.value;
  FPT_ENSURE(y->depth == 1, "%s:%ld: expected a mapping of key: value", y->path, line);
  if (!y->key) {
    y->key = strdup(v);
    return 0;
  }
  const fpt_opt *o = fpt_opts_find(y->set, y->key);
  int rc = 0;
  if (!o) {
    fpt_error_set("%s:%ld: unknown key '%s'", y->path, line, y->key);
    rc = 1;
  } else if (y->seen[index_of(y->set, o)]) {
    fpt_error_set("%s:%ld: key %s appears twice", y->path, line, o->key);
    rc = 1;
  } else {
    y->seen[index_of(y->set, o)] = 1;
    if (!yaml_null(e)) { // null: unset, the command's default stands
      mark(y->set, o);
      // Strings outlive the parser: the settings keep pointers to them.
      rc = set_value_from(o, o->type == FPT_OPT_STR ? strdup(v) : v, y->settings, y->path, line);
    }
  }
  free(y->key);
  y->key = NULL;
  return rc;
}

// One event of the parse; *done at the stream's end.
static int yaml_event(yaml_load *y, const yaml_event_t *e, int *done) {
  long line = (long)e->start_mark.line + 1;
  const char *key = y->key ? y->key : "?";
  switch (e->type) {
  case YAML_STREAM_END_EVENT:
    *done = 1;
    return 0;
  case YAML_MAPPING_START_EVENT:
    FPT_ENSURE(++y->depth <= 1, "%s:%ld: nested mappings are not allowed (flat key: value only)",
               y->path, line);
    return 0;
  case YAML_MAPPING_END_EVENT:
    y->depth--;
    return 0;
  case YAML_SEQUENCE_START_EVENT:
    FPT_FAIL("%s:%ld: key %s: lists are not allowed", y->path, line, key);
  case YAML_ALIAS_EVENT: // tests/fuzz/README.md: "*name" was skipped, so the
    // key went unset or took the next key as its value
    FPT_FAIL("%s:%ld: key %s: aliases (*name) are not allowed", y->path, line, key);
  case YAML_SCALAR_EVENT:
    return yaml_scalar(y, e, line);
  default:
    return 0;
  }
}

int fpt_opts_load_yaml_set(const char *path, fpt_opt_set set, void *settings) {
  struct stat st;
  FPT_ENSURE(stat(path, &st) == 0, "option --config: %s: cannot open (%s)", path, strerror(errno));
  FPT_ENSURE(S_ISREG(st.st_mode), "option --config: %s is not a regular file (a directory?)", path);
  FILE *f = fopen(path, "rb");
  FPT_ENSURE(f, "option --config: %s: cannot open (%s)", path, strerror(errno));
  yaml_parser_t p;
  yaml_parser_initialize(&p);
  yaml_parser_set_input_file(&p, f);
  yaml_load y = {path, set, settings, 0, NULL, fpt_calloc((size_t)set_size(set) + 1, 1)};
  int rc = 0, done = 0;
  while (!done && rc == 0) {
    yaml_event_t e;
    if (!yaml_parser_parse(&p, &e)) {
      fpt_error_set("%s:%lu: YAML error: %s", path, (unsigned long)p.problem_mark.line + 1,
                    p.problem ? p.problem : "unknown");
      rc = 1;
      break;
    }
    rc = yaml_event(&y, &e, &done);
    yaml_event_delete(&e);
  }
  free(y.key);
  free(y.seen);
  yaml_parser_delete(&p);
  fclose(f);
  return rc;
}
