// ListOps: both tokenisations of hand-written expressions (exact ids),
// truncation and end padding, the loader (quotes, CRLF, header, blank lines,
// dataset fields), one error message per malformed line naming file and line
// with nothing leaked, the evaluator, and the generator: bounds, targets,
// duplicate removal, exhaustion, determinism in the seed.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fpt/check.h"
#include "fpt/dataset.h"
#include "fpt/listops.h"

static const char *const files[3] = {"basic_train.tsv", "basic_val.tsv", "basic_test.tsv"};

// MIN(7, SM(3, 9), MED(1, 8)) = MIN(7, 2, 4) = 2.
static const char *const EXPR =
    "( ( ( ( [MIN 7 ) ( ( ( [SM 3 ) 9 ) ] ) ) ( ( ( [MED 1 ) 8 ) ] ) ) ] )";
// MIN 7 SM 3 9 MED 1 8 (brackets and parentheses dropped).
static const int32_t EXPR_IDS[8] = {2, 12, 4, 8, 14, 3, 6, 13};
// [MIN 7 [SM 3 9 X [MED 1 8 X X.
static const int32_t EXPR_IDS2[11] = {2, 12, 4, 8, 14, 15, 3, 6, 13, 15, 15};

static char *make_dir(void) {
  char *d = strdup("/tmp/fpt_listops_XXXXXX");
  assert_non_null(mkdtemp(d));
  return d;
}

static void path_of(char *buf, const char *dir, const char *name) {
  snprintf(buf, 4096, "%s/%s", dir, name);
}

static void write_text(const char *dir, const char *name, const char *text) {
  char p[4096];
  path_of(p, dir, name);
  FILE *f = fopen(p, "wb");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void remove_dir(char *dir) {
  char p[4096];
  for (int s = 0; s < 3; s++) {
    path_of(p, dir, files[s]);
    unlink(p);
  }
  rmdir(dir);
  free(dir);
}

// The data lines of a TSV file (header dropped), as malloc'd strings.
static char **read_lines(const char *dir, const char *name, int *n) {
  char p[4096];
  path_of(p, dir, name);
  FILE *f = fopen(p, "rb");
  assert_non_null(f);
  char **v = NULL, *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int k = 0, first = 1;
  while ((len = getline(&line, &cap, f)) >= 0) {
    if (first) {
      assert_string_equal(line, "Source\tTarget\n");
      first = 0;
      continue;
    }
    char **nv = realloc(v, sizeof(char *) * (size_t)(k + 1));
    assert_non_null(nv);
    v = nv;
    line[len - 1] = '\0';
    v[k++] = strdup(line);
  }
  free(line);
  fclose(f);
  *n = k;
  return v;
}

static void free_lines(char **v, int n) {
  for (int i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_tokenize(void **state) {
  (void)state;
  int32_t ids[16], ids2[16];
  int n1 = -1, n2 = -1;
  assert_int_equal(fpt_listops_tokenize(EXPR, ids, 16, ids2, 16, &n1, &n2), 0);
  assert_int_equal(n1, 8);
  assert_int_equal(n2, 11);
  for (int i = 0; i < 16; i++) {
    assert_int_equal(ids[i], i < 8 ? EXPR_IDS[i] : 0);
    assert_int_equal(ids2[i], i < 11 ? EXPR_IDS2[i] : 0);
  }
  // The reference's example MAX(2, 9); every token of both tables.
  assert_int_equal(fpt_listops_tokenize("( ( ( [MAX 2 ) 9 ) ] )", ids, 4, ids2, 5, &n1, &n2), 0);
  int32_t e1[4] = {1, 7, 14, 0}, e2[5] = {1, 7, 14, 15, 0};
  assert_memory_equal(ids, e1, sizeof e1);
  assert_memory_equal(ids2, e2, sizeof e2);
  assert_int_equal(fpt_listops_tokenize("[MAX [MIN [MED [SM 0 1 2 3 4 5 6 7 8 9 ] ( )", ids, 16,
                                        ids2, 16, &n1, &n2),
                   0);
  assert_int_equal(n1, 14);
  assert_int_equal(n2, 15);
  for (int i = 0; i < 14; i++) {
    assert_int_equal(ids[i], i + 1);
    assert_int_equal(ids2[i], i + 1);
  }
  assert_int_equal(ids[14], 0);
  assert_int_equal(ids2[14], FPT_LISTOPS_CLOSE);
  // Truncation keeps the first tokens; the counts are before truncation.
  assert_int_equal(fpt_listops_tokenize(EXPR, ids, 5, ids2, 7, &n1, &n2), 0);
  assert_int_equal(n1, 8);
  assert_int_equal(n2, 11);
  assert_memory_equal(ids, EXPR_IDS, 5 * sizeof(int32_t));
  assert_memory_equal(ids2, EXPR_IDS2, 7 * sizeof(int32_t));
  // An unknown token.
  fpt_error_clear();
  assert_int_not_equal(fpt_listops_tokenize("( [FIRST 1 ) ]", ids, 4, ids2, 4, NULL, NULL), 0);
  assert_non_null(strstr(fpt_error_get(), "unknown token '[FIRST'"));
  fpt_error_clear();
}

static void test_eval(void **state) {
  (void)state;
  int v = -1;
  assert_int_equal(fpt_listops_eval(EXPR, &v), 0);
  assert_int_equal(v, 2);
  struct {
    const char *s;
    int v;
  } ok[] = {{"( ( ( [MAX 2 ) 9 ) ] )", 9},
            {"( ( ( ( ( [MED 0 ) 9 ) 4 ) 5 ) ] )", 4}, // int(median) = int(4.5)
            {"( ( ( ( [MED 1 ) 2 ) 2 ) ] )", 2},
            {"( ( ( ( [SM 9 ) 9 ) 9 ) ] )", 7},
            {"[MIN 3 [MAX 0 8 X 5 X", 3}, // current-LRA form
            {"4", 4}};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    assert_int_equal(fpt_listops_eval(ok[i].s, &v), 0);
    assert_int_equal(v, ok[i].v);
  }
  const char *bad[] = {"[MAX 1 2", "1 2", "]", "[MAX ]", "[MAX 1 ] [MIN 2 ]", "", "[FOO 1 ]"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    fpt_error_clear();
    assert_int_not_equal(fpt_listops_eval(bad[i], &v), 0);
  }
  fpt_error_clear();
}

static void test_load(void **state) {
  (void)state;
  char *dir = make_dir();
  char buf[1024];
  // train: header, one quoted Source, CRLF line ends, a blank line at the end.
  snprintf(buf, sizeof buf, "Source\tTarget\r\n\"%s\"\t2\r\n( ( ( [MAX 2 ) 9 ) ] )\t9\r\n\r\n",
           EXPR);
  write_text(dir, files[0], buf);
  write_text(dir, files[1], "\"Source\"\t\"Target\"\n( ( ( [SM 3 ) 9 ) ] )\t\"2\"\n");
  write_text(dir, files[2], "Source\tTarget\n5\t5"); // no final newline
  fpt_dataset d;
  memset(&d, 0, sizeof d);
  d.seed = 42;
  snprintf(d.generator, sizeof d.generator, "caller");
  int L1 = 6, L2 = 9;
  if (fpt_listops_load(dir, L1, L2, &d) != 0)
    fail_msg("%s", fpt_error_get());
  assert_string_equal(d.task, "listops");
  assert_int_equal(d.seq, L1);
  assert_int_equal(d.seq2, L2);
  assert_int_equal(d.vocab, 15);
  assert_int_equal(d.vocab2, 16);
  assert_int_equal(d.d_in, 0);
  assert_int_equal(d.n_classes, 10);
  assert_int_equal(d.K, 1);
  assert_int_equal(d.r, 1);
  assert_int_equal(d.pad_id, 0);
  assert_int_equal(d.seed, 42);
  assert_string_equal(d.generator, "caller");
  assert_non_null(strstr(d.sources, "basic_val.tsv"));
  assert_int_equal(d.split[FPT_TRAIN].n, 2);
  assert_int_equal(d.split[FPT_VAL].n, 1);
  assert_int_equal(d.split[FPT_TEST].n, 1);
  assert_null(d.split[FPT_TRAIN].x);
  const fpt_split *tr = &d.split[FPT_TRAIN];
  // Sample 0: truncated to the first 6 / 9 tokens.
  assert_memory_equal(tr->ids, EXPR_IDS, 6 * sizeof(int32_t));
  assert_memory_equal(tr->ids2, EXPR_IDS2, 9 * sizeof(int32_t));
  assert_int_equal(tr->y[0], 2);
  // Sample 1: MAX 2 9 padded at the end.
  int32_t e1[6] = {1, 7, 14, 0, 0, 0}, e2[9] = {1, 7, 14, 15, 0, 0, 0, 0, 0};
  assert_memory_equal(tr->ids + L1, e1, sizeof e1);
  assert_memory_equal(tr->ids2 + L2, e2, sizeof e2);
  assert_int_equal(tr->y[1], 9);
  int32_t v1[6] = {4, 8, 14, 0, 0, 0}, v2[9] = {4, 8, 14, 15, 0, 0, 0, 0, 0};
  assert_memory_equal(d.split[FPT_VAL].ids, v1, sizeof v1);
  assert_memory_equal(d.split[FPT_VAL].ids2, v2, sizeof v2);
  assert_int_equal(d.split[FPT_VAL].y[0], 2);
  assert_int_equal(d.split[FPT_TEST].ids[0], 10);
  assert_int_equal(d.split[FPT_TEST].ids[1], 0);
  assert_int_equal(d.split[FPT_TEST].ids2[0], 10);
  assert_int_equal(d.split[FPT_TEST].y[0], 5);
  fpt_dataset_free(&d);
  remove_dir(dir);
}

static void test_malformed(void **state) {
  (void)state;
  struct {
    const char *line; // line 3 of basic_val.tsv
    const char *msg;
  } cases[] = {
      {"( ( ( [MAX 2 ) 9 ) ] ) 9", "basic_val.tsv:3: missing tab"},
      {"( ( ( [MAX 2 ) 9 ) ] )\tnine", "basic_val.tsv:3: target 'nine' is not an integer"},
      {"( ( ( [MAX 2 ) 9 ) ] )\t9.0", "basic_val.tsv:3: target '9.0' is not an integer"},
      {"( ( ( [MAX 2 ) 9 ) ] )\t", "basic_val.tsv:3: target '' is not an integer"},
      {"( ( ( [MAX 2 ) 9 ) ] )\t12", "basic_val.tsv:3: target 12 is outside 0..9"},
      {"( ( ( [MAX 2 ) 9 ) ] )\t-1", "basic_val.tsv:3: target -1 is outside 0..9"},
      {"( ( ( [MAX 2 ) 19 ) ] )\t9", "basic_val.tsv:3: unknown token '19'"},
      {"( ( ( [FIRST 2 ) 9 ) ] )\t2", "basic_val.tsv:3: unknown token '[FIRST'"},
      {"( ( ( [MAX 2 ) 9 ) ] )\t9\t1", "basic_val.tsv:3: more than two tab-separated columns"},
      {" ( )\t9", "basic_val.tsv:3: empty Source"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    char *dir = make_dir();
    char buf[512];
    write_text(dir, files[0], "Source\tTarget\n( ( ( [MAX 2 ) 9 ) ] )\t9\n");
    snprintf(buf, sizeof buf, "Source\tTarget\n( ( ( [MIN 2 ) 9 ) ] )\t2\n%s\n5\t5\n",
             cases[c].line);
    write_text(dir, files[1], buf);
    write_text(dir, files[2], "Source\tTarget\n5\t5\n");
    fpt_dataset d;
    memset(&d, 0, sizeof d);
    fpt_error_clear();
    assert_int_not_equal(fpt_listops_load(dir, 8, 8, &d), 0);
    const char *msg = fpt_error_get();
    if (!strstr(msg, cases[c].msg))
      fail_msg("case %zu: got '%s', expected '%s'", c, msg, cases[c].msg);
    assert_non_null(strstr(msg, dir)); // the full path
    // Nothing filled in, nothing left allocated (ASan/valgrind check the rest).
    for (int s = 0; s < 3; s++) {
      assert_null(d.split[s].ids);
      assert_null(d.split[s].ids2);
      assert_null(d.split[s].y);
      assert_int_equal(d.split[s].n, 0);
    }
    assert_string_equal(d.task, "");
    remove_dir(dir);
  }
  // A missing file, and a file without examples.
  char *dir = make_dir();
  fpt_dataset d;
  memset(&d, 0, sizeof d);
  fpt_error_clear();
  assert_int_not_equal(fpt_listops_load(dir, 8, 8, &d), 0);
  assert_non_null(strstr(fpt_error_get(), "basic_train.tsv: cannot open"));
  for (int s = 0; s < 3; s++)
    write_text(dir, files[s], "Source\tTarget\n");
  fpt_error_clear();
  assert_int_not_equal(fpt_listops_load(dir, 8, 8, &d), 0);
  assert_non_null(strstr(fpt_error_get(), "basic_train.tsv: no examples"));
  fpt_error_clear();
  remove_dir(dir);
}

// Check a generated directory: sizes, bounds, targets, no repeats.
static void check_generated(const char *dir, const int n[3], int min_len, int max_len) {
  int total = 0, k;
  char **all = NULL;
  for (int s = 0; s < 3; s++) {
    char **v = read_lines(dir, files[s], &k);
    assert_int_equal(k, n[s]);
    char **nall = realloc(all, sizeof(char *) * (size_t)(total + k + 1));
    assert_non_null(nall);
    all = nall;
    for (int i = 0; i < k; i++) {
      char *tab = strchr(v[i], '\t');
      assert_non_null(tab);
      *tab = '\0';
      int val = -1;
      if (fpt_listops_eval(v[i], &val) != 0)
        fail_msg("%s: %s", v[i], fpt_error_get());
      assert_int_equal(val, atoi(tab + 1));
      assert_true(tab[1] >= '0' && tab[1] <= '9' && tab[2] == '\0');
      // length = tokens other than parentheses; balanced parentheses
      int len = 0;
      for (char *t = v[i]; *t; t++)
        if (*t != ' ' && *t != '(' && *t != ')' && (t == v[i] || t[-1] == ' '))
          len++;
      assert_true(len > min_len && len < max_len);
      int par = 0;
      for (char *t = v[i]; *t; t++)
        par += *t == '(' ? 1 : *t == ')' ? -1 : 0;
      assert_int_equal(par, 0);
      all[total++] = strdup(v[i]);
    }
    free_lines(v, k);
  }
  qsort(all, (size_t)total, sizeof(char *), cmp_str);
  for (int i = 1; i < total; i++)
    assert_string_not_equal(all[i - 1], all[i]);
  free_lines(all, total);
}

static void test_duplicates(void **state) {
  (void)state;
  // Depth 2, two arguments, 3 < length < 5: exactly the 4 * 10 * 10 = 400
  // trees "( ( ( [OP a ) b ) ] )" exist, so asking for all 400 can only
  // succeed if every duplicate drawn (about 2,400 draws needed) is dropped.
  char *dir = make_dir();
  if (fpt_listops_generate(dir, 3, 300, 50, 50, 2, 2, 3, 5) != 0)
    fail_msg("%s", fpt_error_get());
  int n[3] = {300, 50, 50};
  check_generated(dir, n, 3, 5);
  // A 401st distinct tree does not exist: a clear error, no files touched.
  char p[4096];
  path_of(p, dir, files[0]);
  assert_int_equal(unlink(p), 0);
  fpt_error_clear();
  assert_int_not_equal(fpt_listops_generate(dir, 3, 301, 50, 50, 2, 2, 3, 5), 0);
  assert_non_null(strstr(fpt_error_get(), "only 400 distinct trees"));
  assert_int_not_equal(access(p, F_OK), 0);
  fpt_error_clear();
  remove_dir(dir);
  // Small trees of mixed shapes, where repeats are common.
  dir = make_dir();
  if (fpt_listops_generate(dir, 11, 600, 100, 100, 3, 3, 3, 9) != 0)
    fail_msg("%s", fpt_error_get());
  int m[3] = {600, 100, 100};
  check_generated(dir, m, 3, 9);
  remove_dir(dir);
}

static int same_file(const char *a, const char *b) {
  FILE *f = fopen(a, "rb"), *g = fopen(b, "rb");
  assert_non_null(f);
  assert_non_null(g);
  int c, same = 1;
  while ((c = fgetc(f)) != EOF)
    if (c != fgetc(g)) {
      same = 0;
      break;
    }
  if (same && fgetc(g) != EOF)
    same = 0;
  fclose(f);
  fclose(g);
  return same;
}

static void test_determinism(void **state) {
  (void)state;
  char *a = make_dir(), *b = make_dir(), *c = make_dir();
  // The LRA depth/argument bounds with short lengths, to stay fast.
  int n[3] = {150, 20, 20};
  assert_int_equal(fpt_listops_generate(a, 7, n[0], n[1], n[2], 10, 10, 20, 120), 0);
  assert_int_equal(fpt_listops_generate(b, 7, n[0], n[1], n[2], 10, 10, 20, 120), 0);
  assert_int_equal(fpt_listops_generate(c, 8, n[0], n[1], n[2], 10, 10, 20, 120), 0);
  char pa[4096], pb[4096], pc[4096];
  int differ = 0;
  for (int s = 0; s < 3; s++) {
    path_of(pa, a, files[s]);
    path_of(pb, b, files[s]);
    path_of(pc, c, files[s]);
    assert_true(same_file(pa, pb));
    differ += !same_file(pa, pc);
  }
  assert_int_equal(differ, 3);
  check_generated(a, n, 20, 120);
  // The loader reads the generator's files; its ids are the tokeniser's.
  fpt_dataset d;
  memset(&d, 0, sizeof d);
  if (fpt_listops_load(a, 512, 2000, &d) != 0)
    fail_msg("%s", fpt_error_get());
  int k;
  char **v = read_lines(a, files[FPT_VAL], &k);
  int32_t *ids = malloc(sizeof(int32_t) * 512), *ids2 = malloc(sizeof(int32_t) * 2000);
  for (int i = 0; i < k; i++) {
    char *tab = strchr(v[i], '\t');
    *tab = '\0';
    assert_int_equal(fpt_listops_tokenize(v[i], ids, 512, ids2, 2000, NULL, NULL), 0);
    assert_memory_equal(d.split[FPT_VAL].ids + (size_t)i * 512, ids, 512 * sizeof(int32_t));
    assert_memory_equal(d.split[FPT_VAL].ids2 + (size_t)i * 2000, ids2, 2000 * sizeof(int32_t));
    assert_int_equal(d.split[FPT_VAL].y[i], atoi(tab + 1));
  }
  free(ids);
  free(ids2);
  free_lines(v, k);
  fpt_dataset_free(&d);
  remove_dir(a);
  remove_dir(b);
  remove_dir(c);
}

static void test_generate_arguments(void **state) {
  (void)state;
  char *dir = make_dir();
  fpt_error_clear();
  assert_int_not_equal(fpt_listops_generate(dir, 1, 10, 1, 1, 10, 10, 500, 501), 0);
  assert_non_null(strstr(fpt_error_get(), "no length strictly between"));
  fpt_error_clear();
  assert_int_not_equal(fpt_listops_generate(dir, 1, 10, 1, 1, 10, 1, 5, 50), 0);
  fpt_error_clear();
  // Depth 2 with 3 arguments: at most 5 tokens, never longer than 10.
  assert_int_not_equal(fpt_listops_generate(dir, 1, 10, 1, 1, 2, 3, 10, 50), 0);
  assert_non_null(strstr(fpt_error_get(), "longer than min_length 10"));
  fpt_error_clear();
  assert_int_not_equal(fpt_listops_generate(dir, 1, -1, 1, 1, 10, 10, 5, 50), 0);
  fpt_error_clear();
  remove_dir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tokenize),
      cmocka_unit_test(test_eval),
      cmocka_unit_test(test_load),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_duplicates),
      cmocka_unit_test(test_determinism),
      cmocka_unit_test(test_generate_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
