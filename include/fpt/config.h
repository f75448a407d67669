// Command-line options: `--key value`, with one spelling per key across the
// project (YAML key batch_size is option --batch-size). Each command has a
// table of the keys it takes; the tables live next to their command.
#ifndef FPT_CONFIG_H
#define FPT_CONFIG_H

#include <stddef.h>

typedef enum { FPT_OPT_STR, FPT_OPT_INT, FPT_OPT_FLOAT, FPT_OPT_BOOL } fpt_opt_type;

typedef struct {
  const char *key; // snake_case; the option is --kebab-case
  fpt_opt_type type;
  size_t offset; // into the command's settings struct
  const char *help;
} fpt_opt;

// Parse argv[first..argc) into `settings`. `-o X` is accepted as `--out X`
// when the table has an "out" key. Unknown keys and bad values are errors.
int fpt_opts_parse(int argc, char **argv, int first, const fpt_opt *table, int n, void *settings);
// Settings from a YAML file: a flat mapping with the same keys (batch_size:
// 16). Unknown keys and bad values are errors naming the file and line.
int fpt_opts_load_yaml(const char *path, const fpt_opt *table, int n, void *settings);
void fpt_opts_help(const char *usage, const fpt_opt *table, int n);
// Print the resolved settings, one "key: value" per line (YAML-compatible).
void fpt_opts_dump(const fpt_opt *table, int n, const void *settings,
                   void (*emit)(void *ctx, const char *line), void *ctx);
// A value in such a dump (a checkpoint's `config`): 0 and the value, quotes
// removed; 1 if the key is absent or null.
int fpt_opts_dump_value(const char *dump, const char *key, char *out, size_t n);

#endif
