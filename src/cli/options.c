#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "fpt/check.h"
#include "fpt/config.h"

static const fpt_opt *find(const fpt_opt *t, int n, const char *opt) {
  char key[64];
  size_t k = 0;
  for (; opt[k] && k < sizeof key - 1; k++)
    key[k] = opt[k] == '-' ? '_' : opt[k];
  key[k] = '\0';
  for (int i = 0; i < n; i++)
    if (strcmp(t[i].key, key) == 0)
      return &t[i];
  return NULL;
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
  else
    snprintf(where, sizeof where, "option --%s", o->key);
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
    *(long long *)dst = x;
    return 0;
  }
  case FPT_OPT_FLOAT: {
    double x = strtod(v, &end);
    FPT_ENSURE(*v && !*end && errno == 0 && isfinite(x), "%s: '%s' is not a finite number", where,
               v);
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
  for (int i = first; i < argc; i++) {
    const char *a = argv[i];
    const char *name = NULL;
    if (!strcmp(a, "-o"))
      name = "out";
    else if (!strncmp(a, "--", 2))
      name = a + 2;
    FPT_ENSURE(name && *name, "unexpected argument '%s' (options are --key value)", a);
    const fpt_opt *o = find(table, n, name);
    FPT_ENSURE(o, "unknown option '%s'", a);
    FPT_ENSURE(i + 1 < argc, "option %s needs a value", a);
    FPT_TRY(set_value(o, argv[++i], settings));
  }
  return 0;
}

void fpt_opts_help(const char *usage, const fpt_opt *table, int n) {
  printf("usage: %s\n\noptions:\n", usage);
  for (int i = 0; i < n; i++) {
    char opt[64];
    size_t k = 0;
    for (; table[i].key[k] && k < sizeof opt - 1; k++)
      opt[k] = table[i].key[k] == '_' ? '-' : table[i].key[k];
    opt[k] = '\0';
    printf("  --%-18s %s\n", opt, table[i].help);
  }
}

void fpt_opts_dump(const fpt_opt *table, int n, const void *settings,
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

// YAML: one flat mapping of known keys to scalars, parsed with libyaml.
int fpt_opts_load_yaml(const char *path, const fpt_opt *table, int n, void *settings) {
  FILE *f = fopen(path, "rb");
  FPT_ENSURE(f, "%s: cannot open the config file", path);
  yaml_parser_t p;
  yaml_parser_initialize(&p);
  yaml_parser_set_input_file(&p, f);
  int rc = 0, depth = 0, done = 0;
  char *key = NULL;
  // Keys already set: a key given twice is an error (tests/fuzz/README.md:
  // the first string value leaked, and which one wins was a guess).
  unsigned char *seen = fpt_calloc((size_t)n + 1, 1);
  while (!done && rc == 0) {
    yaml_event_t e;
    if (!yaml_parser_parse(&p, &e)) {
      fpt_error_set("%s:%lu: YAML error: %s", path, (unsigned long)p.problem_mark.line + 1,
                    p.problem ? p.problem : "unknown");
      rc = 1;
      break;
    }
    long line = (long)e.start_mark.line + 1;
    switch (e.type) {
    case YAML_STREAM_END_EVENT:
      done = 1;
      break;
    case YAML_MAPPING_START_EVENT:
      if (++depth > 1) {
        fpt_error_set("%s:%ld: nested mappings are not allowed (flat key: value only)", path, line);
        rc = 1;
      }
      break;
    case YAML_MAPPING_END_EVENT:
      depth--;
      break;
    case YAML_SEQUENCE_START_EVENT:
      fpt_error_set("%s:%ld: key %s: lists are not allowed", path, line, key ? key : "?");
      rc = 1;
      break;
    case YAML_ALIAS_EVENT: // tests/fuzz/README.md: "*name" was skipped, so the
      // key went unset or took the next key as its value
      fpt_error_set("%s:%ld: key %s: aliases (*name) are not allowed", path, line,
                    key ? key : "?");
      rc = 1;
      break;
    case YAML_SCALAR_EVENT: {
      const char *v = (const char *)e.data.scalar.value;
      if (depth != 1) {
        fpt_error_set("%s:%ld: expected a mapping of key: value", path, line);
        rc = 1;
      } else if (!key) {
        key = strdup(v);
      } else {
        const fpt_opt *o = find(table, n, key);
        if (!o) {
          fpt_error_set("%s:%ld: unknown key '%s'", path, line, key);
          rc = 1;
        } else if (seen[o - table]) {
          fpt_error_set("%s:%ld: key %s appears twice", path, line, o->key);
          rc = 1;
        } else {
          seen[o - table] = 1;
          // Strings outlive the parser: the settings keep pointers to them.
          rc = set_value_from(o, o->type == FPT_OPT_STR ? strdup(v) : v, settings, path, line);
        }
        free(key);
        key = NULL;
      }
      break;
    }
    default:
      break;
    }
    yaml_event_delete(&e);
  }
  free(key);
  free(seen);
  yaml_parser_delete(&p);
  fclose(f);
  return rc;
}
