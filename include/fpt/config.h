// Command-line options: `--key value`, with one spelling per key across the
// project (YAML key batch_size is option --batch-size). Each command has a
// table of the keys it takes; the tables live next to their command.
#ifndef FPT_CONFIG_H
#define FPT_CONFIG_H

#include <stddef.h>

typedef enum { FPT_OPT_STR, FPT_OPT_INT, FPT_OPT_FLOAT, FPT_OPT_BOOL } fpt_opt_type;

// One option. INT values are parsed into long long and must lie in [lo, hi]
// (lo == hi == 0: the range of int, so that casts never wrap); FLOAT values
// must be finite and in [lo, hi] unless lo == hi == 0; open_lo: > lo.
typedef struct {
  const char *key; // snake_case; the option is --kebab-case
  fpt_opt_type type;
  size_t offset; // into the command's settings struct
  const char *help;
  double lo, hi;
  int open_lo;
} fpt_opt;

// Table rows: FPT_OPTION(settings type, key, STR|INT|FLOAT|BOOL, help);
// with a range, FPT_OPTION_RANGE(..., lo, hi, help) (inclusive) or
// FPT_OPTION_ABOVE(..., lo, hi, help) (> lo).
#define FPT_OPTION(S, k, t, h)                                                                     \
  { .key = #k, .type = FPT_OPT_##t, .offset = offsetof(S, k), .help = h }
#define FPT_OPTION_RANGE(S, k, t, l, u, h)                                                         \
  { .key = #k, .type = FPT_OPT_##t, .offset = offsetof(S, k), .help = h, .lo = l, .hi = u }
#define FPT_OPTION_ABOVE(S, k, t, l, u, h)                                                         \
  {                                                                                                \
    .key = #k, .type = FPT_OPT_##t, .offset = offsetof(S, k), .help = h, .lo = l, .hi = u,         \
    .open_lo = 1                                                                                   \
  }

// A command's options in titled groups (shared groups, e.g. the model and
// data options of train, eval and probe, are declared once).
typedef struct {
  const char *title;
  const fpt_opt *opts;
  int n;
} fpt_opt_group;
typedef struct {
  const fpt_opt_group *groups;
  int n;
  unsigned char *given; // optional: given[i] = 1 once option i of the set is set
} fpt_opt_set;
// The position of the option `key` in its set (for `given`), or -1.
int fpt_opts_index(fpt_opt_set set, const char *key);

// Grouped versions of the functions below.
int fpt_opts_parse_set(int argc, char **argv, int first, fpt_opt_set set, void *settings);
int fpt_opts_load_yaml_set(const char *path, fpt_opt_set set, void *settings);
void fpt_opts_help_set(const char *usage, fpt_opt_set set);
void fpt_opts_dump_set(fpt_opt_set set, const void *settings,
                       void (*emit)(void *ctx, const char *line), void *ctx);
// The option of a set with this key, or NULL.
const fpt_opt *fpt_opts_find(fpt_opt_set set, const char *key);

// Parse argv[first..argc) into `settings`. `-o X` is accepted as `--out X`
// when the table has an "out" key. Unknown keys and bad values are errors.
int fpt_opts_parse(int argc, char **argv, int first, const fpt_opt *table, int n, void *settings);
// Settings from a YAML file: a flat mapping with the same keys (batch_size:
// 16). Unknown keys and bad values are errors naming the file and line; a
// null value (null, ~, empty) leaves the key unset, as fpt's own dump of the
// resolved settings writes unset strings; aliases and keys given twice are
// refused.
int fpt_opts_load_yaml(const char *path, const fpt_opt *table, int n, void *settings);
void fpt_opts_help(const char *usage, const fpt_opt *table, int n);
// Print the resolved settings, one "key: value" per line (YAML-compatible).
void fpt_opts_dump(const fpt_opt *table, int n, const void *settings,
                   void (*emit)(void *ctx, const char *line), void *ctx);
// A value in such a dump (a checkpoint's `config`): 0 and the value, quotes
// removed; 1 if the key is absent or null.
int fpt_opts_dump_value(const char *dump, const char *key, char *out, size_t n);

#endif
