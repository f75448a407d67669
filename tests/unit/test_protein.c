// Protein input: TAPE's IUPAC vocabulary and encoding, the Stockholm reader
// (gaps, case, multi-block alignments, gzip, every malformed-file error), the
// "pfam" task (stratified seeded split), and Debian's hmmer-examples families.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "fpt/check.h"
#include "fpt/dataset.h"
#include "fpt/protein.h"

static char tmpdir[4096];

static int setup(void **state) {
  (void)state;
  const char *t = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/fpt_protein_XXXXXX", t && *t ? t : "/tmp");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

// Write `text` to tmpdir/name (gzip-compressed if gz) and return the path.
static const char *write_file(const char *name, const char *text, int gz) {
  static char path[8][4200];
  static int slot;
  char *p = path[slot++ % 8];
  snprintf(p, 4200, "%s/%s", tmpdir, name);
  if (gz) {
    gzFile g = gzopen(p, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, text, (unsigned)strlen(text)), (int)strlen(text));
    assert_int_equal(gzclose(g), Z_OK);
  } else {
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
  }
  return p;
}

// The published tape.tokenizers.IUPAC_VOCAB, id by id.
static void test_vocab_table(void **state) {
  (void)state;
  const char *tape[30] = {"<pad>", "<mask>", "<cls>", "<sep>", "<unk>", "A", "B", "C", "D", "E",
                          "F",     "G",      "H",     "I",     "K",     "L", "M", "N", "O", "P",
                          "Q",     "R",      "S",     "T",     "U",     "V", "W", "X", "Y", "Z"};
  assert_int_equal(FPT_PROTEIN_VOCAB, 30);
  for (int i = 0; i < 30; i++)
    assert_string_equal(fpt_protein_vocab[i], tape[i]);
  assert_int_equal(FPT_PROT_PAD, 0);
  assert_int_equal(FPT_PROT_CLS, 2);
  assert_int_equal(FPT_PROT_SEP, 3);
  // Every byte: letters A-Z except J have ids 5..29, nothing else has one.
  for (int c = 0; c < 256; c++) {
    int id = fpt_protein_token_id(c);
    if (c >= 'A' && c <= 'Z' && c != 'J') {
      assert_true(id >= 5 && id < 30);
      assert_int_equal(fpt_protein_vocab[id][0], c);
    } else {
      assert_int_equal(id, -1);
    }
  }
}

static void test_encode_known(void **state) {
  (void)state;
  int32_t ids[16];
  assert_int_equal(fpt_protein_encode("MKTAYIAKQR", ids, 16, "f", 0), 0);
  int32_t want[16] = {2, 16, 14, 23, 5, 28, 13, 5, 14, 20, 21, 3, 0, 0, 0, 0};
  assert_memory_equal(ids, want, sizeof want);
  // The rare and ambiguous codes have their own ids, as in TAPE.
  int32_t rare[8];
  assert_int_equal(fpt_protein_encode("BOUXZ", rare, 8, "f", 0), 0);
  int32_t want_rare[8] = {2, 6, 18, 24, 27, 29, 3, 0};
  assert_memory_equal(rare, want_rare, sizeof want_rare);
  // Empty sequence: <cls> <sep> and padding.
  int32_t e[4];
  assert_int_equal(fpt_protein_encode("", e, 4, "f", 0), 0);
  int32_t want_e[4] = {2, 3, 0, 0};
  assert_memory_equal(e, want_e, sizeof want_e);
}

static void test_encode_truncate(void **state) {
  (void)state;
  int32_t ids[8];
  // Exactly fits: no padding.
  assert_int_equal(fpt_protein_encode("ACDEF", ids, 7, "f", 0), 0);
  int32_t fit[7] = {2, 5, 7, 8, 9, 10, 3};
  assert_memory_equal(ids, fit, sizeof fit);
  // One too long: the first max_len - 2 residues, then <sep>.
  for (int i = 0; i < 8; i++)
    ids[i] = -7;
  assert_int_equal(fpt_protein_encode("ACDEFG", ids, 5, "f", 0), 0);
  int32_t cut[5] = {2, 5, 7, 8, 3};
  assert_memory_equal(ids, cut, sizeof cut);
  assert_int_equal(ids[5], -7); // nothing written past max_len
  assert_int_equal(fpt_protein_encode("ACD", ids, 2, "f", 0), 0);
  assert_int_equal(ids[0], 2);
  assert_int_equal(ids[1], 3);
  fpt_error_clear();
  assert_int_equal(fpt_protein_encode("ACD", ids, 1, "f", 0), 1);
  assert_non_null(strstr(fpt_error_get(), "max_len 1"));
  fpt_error_clear();
}

static void test_encode_unknown(void **state) {
  (void)state;
  int32_t ids[16];
  fpt_error_clear();
  assert_int_equal(fpt_protein_encode("ACJD", ids, 16, "data/x.lmdb", 7), 1);
  const char *m = fpt_error_get();
  assert_non_null(strstr(m, "data/x.lmdb"));
  assert_non_null(strstr(m, "record 7"));
  assert_non_null(strstr(m, "'J'"));
  assert_non_null(strstr(m, "position 3"));
  fpt_error_clear();
  // Lowercase is not in TAPE's table either; nor is a stop '*'.
  assert_int_equal(fpt_protein_encode("acd", ids, 16, "f", 1), 1);
  assert_non_null(strstr(fpt_error_get(), "'a'"));
  fpt_error_clear();
  assert_int_equal(fpt_protein_encode("AC*", ids, 16, "f", 1), 1);
  fpt_error_clear();
  // A bad letter beyond the truncation point is still an error.
  assert_int_equal(fpt_protein_encode("ACDEFGHIKJ", ids, 4, "f", 2), 1);
  assert_non_null(strstr(fpt_error_get(), "position 10"));
  fpt_error_clear();
}

static const char *const two_blocks = "# STOCKHOLM 1.0\n"
                                      "#=GF ID   Toy_fam\n"
                                      "#=GF DE   a made-up family\n"
                                      "#=GS seqA/1-20 AC P00001.1\n"
                                      "\n"
                                      "seqA/1-20     ACDE-FG..HIK\n"
                                      "seqB/5-18     -CDEqFG--HI.\r\n"
                                      "#=GR seqB/5-18 SS  ............\n"
                                      "seqC          ~~~~~~~~____\n"
                                      "#=GC RF       xxxx.xx..xxx\n"
                                      "\n"
                                      "\n"
                                      "seqA/1-20     LMNP\n"
                                      "seqB/5-18     lm-.\n"
                                      "seqC          ..WY   \n"
                                      "//\n"
                                      "\n";

static void test_stockholm_parse(void **state) {
  (void)state;
  fpt_stockholm a;
  const char *p = write_file("toy.sto", two_blocks, 0);
  assert_int_equal(fpt_stockholm_read(p, &a), 0);
  assert_string_equal(a.id, "Toy_fam");
  assert_int_equal(a.n, 3);
  assert_string_equal(a.names[0], "seqA/1-20");
  assert_string_equal(a.names[1], "seqB/5-18");
  assert_string_equal(a.names[2], "seqC");
  // Gaps dropped, blocks concatenated, lowercase inserts uppercased.
  assert_string_equal(a.seqs[0], "ACDEFGHIKLMNP");
  assert_string_equal(a.seqs[1], "CDEQFGHILM");
  assert_string_equal(a.seqs[2], "WY");
  assert_int_equal(a.lines[0], 6);
  assert_int_equal(a.lines[2], 9);
  fpt_stockholm_free(&a);
  assert_int_equal(a.n, 0);

  // The same alignment gzipped; no #=GF ID: the id is the file's base name.
  const char *nid = "# STOCKHOLM 1.0\n\ns1 AC-D\ns2 A-CD\n\ns2 EF\ns1 E.\n//\n";
  p = write_file("Some_fam.sto.gz", nid, 1);
  assert_int_equal(fpt_stockholm_read(p, &a), 0);
  assert_string_equal(a.id, "Some_fam");
  assert_int_equal(a.n, 2);
  // Blocks may list the names in another order.
  assert_string_equal(a.seqs[0], "ACDE");
  assert_string_equal(a.seqs[1], "ACDEF");
  fpt_stockholm_free(&a);
}

// Many sequences, read right (tests/fuzz/README.md: names were looked up by
// a linear scan, so reading took quadratic time; 100000 took about a minute).
// The second block lists the names in reverse, so the position hint fails.
// Its speed is a benchmark's business, not this test's: no time is asserted.
static void test_stockholm_many(void **state) {
  (void)state;
  enum { N = 100000 };
  char *text = malloc((size_t)N * 24 + 64), *t = text;
  t += sprintf(t, "# STOCKHOLM 1.0\n");
  for (int i = 0; i < N; i++)
    t += sprintf(t, "s%d AC\n", i);
  t += sprintf(t, "\n");
  for (int i = N - 1; i >= 0; i--)
    t += sprintf(t, "s%d D-E\n", i);
  sprintf(t, "//\n");
  const char *p = write_file("many.sto", text, 0);
  free(text);
  fpt_stockholm a;
  assert_int_equal(fpt_stockholm_read(p, &a), 0);
  assert_int_equal(a.n, N);
  assert_string_equal(a.names[0], "s0");
  assert_string_equal(a.names[N - 1], "s99999");
  assert_string_equal(a.seqs[0], "ACDE");
  assert_string_equal(a.seqs[N - 1], "ACDE");
  assert_int_equal(a.lines[N - 1], N + 1);
  fpt_stockholm_free(&a);
}

// Each malformed file: the error names the file, the line (when there is
// one) and the fault.
static void test_stockholm_malformed(void **state) {
  (void)state;
  struct {
    const char *text, *want1, *want2;
    int gz;
  } cases[] = {
      {"", "no '# STOCKHOLM 1.0' header", "", 0},
      {">seq1\nACDE\n", ":1: not a Stockholm file", "'>seq1'", 0},
      {"# STOCKHOLM 1.0\ns1 ACDE\ns2 ACDE\n", ":3: no '//' terminator", "", 0},
      {"# STOCKHOLM 1.0\ns1 ACDE\n   ACDE\n//\n", ":3: sequence line without a name", "", 0},
      {"# STOCKHOLM 1.0\ns1 ACDE\ns2\n//\n", ":3: sequence line 's2' has a name but no residues",
       "", 0},
      {"# STOCKHOLM 1.0\ns1 ACDE\ns2 AC DE\n//\n", ":3:", "more than two fields", 0},
      {"# STOCKHOLM 1.0\n\ns1 ACDE\ns2 ACJE\n//\n", ":4: unknown letter 'J'", "'s2' (column 3", 0},
      {"# STOCKHOLM 1.0\ns1 AC*E\n//\n", ":2: unknown letter '*'", "", 0},
      {"# STOCKHOLM 1.0\ns1 AC1E\n//\n", ":2: unknown letter '1'", "", 0},
      {"# STOCKHOLM 1.0\ns1 ACDE\ns1 ACDE\n//\n", ":3: sequence 's1' appears twice in one block",
       "line 2", 0},
      {"# STOCKHOLM 1.0\ns1 ACDE\ns2 ACD\n//\n", "'s2' has 3 aligned columns but 's1' has 4", "",
       0},
      {"# STOCKHOLM 1.0\ns1 ACDE\ns2 ACDE\n\ns1 FG\n//\n",
       ":3: sequence 's2' has 4 aligned columns", "", 0},
      {"# STOCKHOLM 1.0\n#=GF ID x\n//\n", ":3: the alignment has no sequences", "", 0},
      {"# STOCKHOLM 1.0\ns1 A\n//\n# STOCKHOLM 1.0\ns1 A\n//\n", ":4: a second alignment", "", 0},
      {"# STOCKHOLM 1.0\ns1 A\n//\ns2 A\n", ":4: text after the '//' terminator of line 3", "", 0},
      {"# STOCKHOLM 1.0\ns1 ACDE\ns2 ACJE\n//\n", ":3: unknown letter 'J'", "", 1},
  };
  int n = (int)(sizeof cases / sizeof *cases);
  for (int i = 0; i < n; i++) {
    char name[32];
    snprintf(name, sizeof name, "bad%02d.sto%s", i, cases[i].gz ? ".gz" : "");
    const char *p = write_file(name, cases[i].text, cases[i].gz);
    fpt_stockholm a;
    fpt_error_clear();
    int rc = fpt_stockholm_read(p, &a);
    const char *m = fpt_error_get();
    if (rc == 0 || !strstr(m, name) || !strstr(m, cases[i].want1) || !strstr(m, cases[i].want2))
      fail_msg("case %d: rc %d, message '%s'", i, rc, m);
    assert_int_equal(a.n, 0);
    assert_null(a.names);
  }
  // Not there, a directory, a truncated gzip stream.
  fpt_stockholm a;
  char p[4200];
  snprintf(p, sizeof p, "%s/missing.sto", tmpdir);
  fpt_error_clear();
  assert_int_equal(fpt_stockholm_read(p, &a), 1);
  assert_non_null(strstr(fpt_error_get(), "missing.sto: cannot open"));
  fpt_error_clear();
  assert_int_equal(fpt_stockholm_read(tmpdir, &a), 1);
  assert_non_null(strstr(fpt_error_get(), "is a directory"));
  // A long, incompressible alignment, gzipped, then cut in half.
  size_t cap = 1 << 20, len = 0;
  char *big = malloc(cap);
  len += (size_t)snprintf(big + len, cap - len, "# STOCKHOLM 1.0\n");
  uint32_t h = 1;
  for (int s = 0; s < 400; s++) {
    len += (size_t)snprintf(big + len, cap - len, "s%d ", s);
    for (int k = 0; k < 200; k++) {
      h = h * 1103515245u + 12345u;
      big[len++] = fpt_protein_vocab[5 + (h >> 16) % 25][0];
    }
    big[len++] = '\n';
  }
  len += (size_t)snprintf(big + len, cap - len, "//\n");
  big[len] = '\0';
  const char *gzp = write_file("cut.sto.gz", big, 1);
  fpt_stockholm ok;
  assert_int_equal(fpt_stockholm_read(gzp, &ok), 0);
  assert_int_equal(ok.n, 400);
  fpt_stockholm_free(&ok);
  struct stat st;
  assert_int_equal(stat(gzp, &st), 0);
  assert_int_equal(truncate(gzp, st.st_size / 2), 0);
  fpt_error_clear();
  assert_int_equal(fpt_stockholm_read(gzp, &a), 1);
  const char *m = fpt_error_get();
  if (!strstr(m, "cut.sto.gz") || !(strstr(m, "corrupt gzip") || strstr(m, "no '//' terminator")))
    fail_msg("truncated gzip: '%s'", m);
  free(big);
  fpt_error_clear();
}

// Three small families written to files; n = 10, 3 and 2 sequences.
static void three_families(const char *paths[3]) {
  char buf[4096];
  size_t L = 0;
  L += (size_t)snprintf(buf + L, sizeof buf - L, "# STOCKHOLM 1.0\n#=GF ID Ten\n");
  for (int i = 0; i < 10; i++)
    L += (size_t)snprintf(buf + L, sizeof buf - L, "t%d %.*s-%.*s\n", i, i + 1, "ACDEFGHIKLMNPQ",
                          10 - i, "----------");
  snprintf(buf + L, sizeof buf - L, "//\n");
  paths[0] = write_file("ten.sto", buf, 0);
  paths[1] = write_file("three.sto.gz", "# STOCKHOLM 1.0\nx1 WWW\nx2 YY-\nx3 W.Y\n//\n", 1);
  paths[2] = write_file("two.sto", "# STOCKHOLM 1.0\nz1 KK\nz2 RR\n//\n", 0);
}

// Count, per split and family, the samples; check every row's shape.
static void census(const fpt_dataset *d, int64_t cnt[3][8]) {
  memset(cnt, 0, sizeof(int64_t) * 3 * 8);
  for (int s = 0; s < 3; s++) {
    const fpt_split *sp = &d->split[s];
    for (int64_t j = 0; j < sp->n; j++) {
      const int32_t *r = sp->ids + j * d->seq;
      assert_int_equal(r[0], FPT_PROT_CLS);
      int t = 1;
      while (t < d->seq && r[t] >= 5)
        t++;
      assert_true(t < d->seq);
      assert_int_equal(r[t], FPT_PROT_SEP);
      for (t++; t < d->seq; t++)
        assert_int_equal(r[t], FPT_PROT_PAD);
      assert_true(sp->y[j] >= 0 && sp->y[j] < d->n_classes);
      cnt[s][sp->y[j]]++;
    }
  }
}

static void test_pfam_small(void **state) {
  (void)state;
  const char *paths[3];
  three_families(paths);
  fpt_dataset d;
  assert_int_equal(fpt_pfam_load(paths, 3, 42, 12, &d), 0);
  assert_string_equal(d.task, "pfam");
  assert_int_equal(d.seq, 12);
  assert_int_equal(d.d_in, 0);
  assert_int_equal(d.vocab, 30);
  assert_int_equal(d.seq2, 0);
  assert_int_equal(d.n_classes, 3);
  assert_int_equal(d.K, 1);
  assert_int_equal(d.r, 1);
  assert_int_equal(d.pad_id, 0);
  assert_int_equal(d.seed, 42);
  assert_non_null(strstr(d.sources, "ten.sto; "));
  assert_non_null(strstr(d.sources, "two.sto"));
  for (int s = 0; s < 3; s++)
    assert_null(d.split[s].x);
  int64_t cnt[3][8];
  census(&d, cnt);
  // n = 10: 2 val, 2 test, 6 train; n = 3: 1/1/1; n = 2: all train.
  int64_t want[3][3] = {{6, 1, 2}, {2, 1, 0}, {2, 1, 0}};
  for (int s = 0; s < 3; s++)
    for (int f = 0; f < 3; f++)
      assert_int_equal(cnt[s][f], want[s][f]);
  // Every sequence lands exactly once: family "Ten" has lengths 1..10, all
  // distinct, and all fit in seq 12 (10 residues + <cls> + <sep>).
  int seen[11] = {0};
  for (int s = 0; s < 3; s++)
    for (int64_t j = 0; j < d.split[s].n; j++)
      if (d.split[s].y[j] == 0) {
        const int32_t *r = d.split[s].ids + j * d.seq;
        int t = 1;
        while (r[t] != FPT_PROT_SEP)
          t++;
        seen[t - 1]++;
        // Residues are the prefix of ACDEFGHIKL.
        for (int k = 1; k < t; k++)
          assert_int_equal(r[k], fpt_protein_token_id("ACDEFGHIKLMNPQ"[k - 1]));
      }
  for (int k = 1; k <= 10; k++)
    assert_int_equal(seen[k], 1);
  // index: the sample's position in its family file; (y, index) is unique
  // and the row is that sequence's encoding.
  int hit[3][10] = {{0}};
  for (int s = 0; s < 3; s++)
    for (int64_t j = 0; j < d.split[s].n; j++) {
      int f = d.split[s].y[j];
      int64_t i = d.split[s].index[j];
      assert_true(i >= 0 && i < (f == 0 ? 10 : f == 1 ? 3 : 2));
      hit[f][i]++;
      fpt_stockholm a;
      assert_int_equal(fpt_stockholm_read(paths[f], &a), 0);
      int32_t row[12];
      assert_int_equal(fpt_protein_encode(a.seqs[i], row, 12, "f", 0), 0);
      assert_memory_equal(row, d.split[s].ids + j * 12, sizeof row);
      fpt_stockholm_free(&a);
    }
  for (int f = 0; f < 3; f++)
    for (int i = 0; i < (f == 0 ? 10 : f == 1 ? 3 : 2); i++)
      assert_int_equal(hit[f][i], 1);
  fpt_dataset_free(&d);

  // A short max_len truncates (still <cls> ... <sep>).
  assert_int_equal(fpt_pfam_load(paths, 3, 42, 4, &d), 0);
  census(&d, cnt);
  fpt_dataset_free(&d);

  // Errors leave nothing allocated and name the file.
  const char *bad[2] = {paths[0], write_file("badfam.sto", "# STOCKHOLM 1.0\ns1 AB\n", 0)};
  fpt_error_clear();
  assert_int_equal(fpt_pfam_load(bad, 2, 1, 12, &d), 1);
  assert_non_null(strstr(fpt_error_get(), "badfam.sto:2: no '//' terminator"));
  for (int s = 0; s < 3; s++)
    assert_null(d.split[s].ids);
  // The same family twice.
  const char *twice[3] = {paths[0], paths[1], paths[0]};
  fpt_error_clear();
  assert_int_equal(fpt_pfam_load(twice, 3, 1, 12, &d), 1);
  assert_non_null(strstr(fpt_error_get(), "are both family 'Ten' (labels 0 and 2)"));
  fpt_error_clear();
  assert_int_equal(fpt_pfam_load(paths, 3, 1, 1, &d), 1);
  fpt_error_clear();
  assert_int_equal(fpt_pfam_load(paths, 0, 1, 12, &d), 1);
  fpt_error_clear();
}

static int same_dataset(const fpt_dataset *a, const fpt_dataset *b) {
  for (int s = 0; s < 3; s++) {
    if (a->split[s].n != b->split[s].n)
      return 0;
    size_t n = (size_t)a->split[s].n;
    if (memcmp(a->split[s].ids, b->split[s].ids, n * a->seq * sizeof(int32_t)) ||
        memcmp(a->split[s].y, b->split[s].y, n * sizeof(int32_t)))
      return 0;
  }
  return 1;
}

static int cmp_row16(const void *a, const void *b) { return memcmp(a, b, 16 * sizeof(int32_t)); }

// The val split as a sorted set of rows (seq 16): which sequences, not order.
static void val_set(const fpt_dataset *d, int32_t *out) {
  memcpy(out, d->split[FPT_VAL].ids, sizeof(int32_t) * 16 * d->split[FPT_VAL].n);
  qsort(out, (size_t)d->split[FPT_VAL].n, 16 * sizeof(int32_t), cmp_row16);
}

static void test_pfam_split_determinism(void **state) {
  (void)state;
  const char *paths[3];
  three_families(paths);
  fpt_dataset a, b, c;
  assert_int_equal(fpt_pfam_load(paths, 3, 7, 16, &a), 0);
  assert_int_equal(fpt_pfam_load(paths, 3, 7, 16, &b), 0);
  assert_true(same_dataset(&a, &b));
  // Other seeds: the same per-family counts, another assignment (for at
  // least one of a few seeds; each has a small chance to coincide).
  int differs = 0, other_members = 0;
  int32_t va[16 * 16], vc[16 * 16];
  assert_true(a.split[FPT_VAL].n <= 16);
  val_set(&a, va);
  for (uint64_t seed = 8; seed < 12; seed++) {
    assert_int_equal(fpt_pfam_load(paths, 3, seed, 16, &c), 0);
    int64_t ca[3][8], cc[3][8];
    census(&a, ca);
    census(&c, cc);
    assert_memory_equal(ca, cc, sizeof ca);
    differs += !same_dataset(&a, &c);
    val_set(&c, vc);
    other_members += memcmp(va, vc, sizeof(int32_t) * 16 * a.split[FPT_VAL].n) != 0;
    fpt_dataset_free(&c);
  }
  assert_true(differs >= 3);
  // ... and the seed decides which sequences are held out, not only the order.
  assert_true(other_members >= 2);
  // Families are interleaved in each split, not in blocks: with seed 7 the
  // train split (6 + 1 + 2 samples) does not list family 0 first entirely.
  const fpt_split *tr = &a.split[FPT_TRAIN];
  int blocks = 1;
  for (int64_t j = 1; j < tr->n; j++)
    blocks += tr->y[j] != tr->y[j - 1];
  assert_true(blocks > 3);
  fpt_dataset_free(&a);
  fpt_dataset_free(&b);
}

static void test_default_hmmer_examples(void **state) {
  (void)state;
  struct stat st;
  if (stat(FPT_HMMER_EXAMPLES_DIR "/tutorial", &st) != 0 && !getenv("FPT_HMMER_EXAMPLES")) {
    printf("hmmer-examples not installed: skipped\n");
    skip();
  }
  char **paths;
  int n;
  assert_int_equal(fpt_pfam_default_paths(&paths, &n), 0);
  assert_int_equal(n, 9);
  const char *ids[9] = {"Pkinase", "fn3",     "globins4",   "RRM_1", "SMC_N",
                        "LuxC",    "Patched", "Caudal_act", "XYPPX"};
  const int count[9] = {38, 98, 4, 79, 29, 13, 10, 9, 7};
  int total = 0, longest = 0;
  for (int f = 0; f < n; f++) {
    fpt_stockholm a;
    if (fpt_stockholm_read(paths[f], &a) != 0)
      fail_msg("%s", fpt_error_get());
    assert_string_equal(a.id, ids[f]);
    assert_int_equal(a.n, count[f]);
    for (int i = 0; i < a.n; i++) {
      int L = (int)strlen(a.seqs[i]);
      longest = L > longest ? L : longest;
      assert_true(L > 0);
    }
    total += a.n;
    fpt_stockholm_free(&a);
  }
  assert_int_equal(total, 287);
  assert_int_equal(longest, 1271); // an SMC_N sequence: truncated at 1024
  fpt_dataset d;
  if (fpt_pfam_load((const char *const *)paths, n, 1, 1024, &d) != 0)
    fail_msg("%s", fpt_error_get());
  assert_int_equal(d.n_classes, 9);
  assert_int_equal(d.split[FPT_TRAIN].n, 199);
  assert_int_equal(d.split[FPT_VAL].n, 44);
  assert_int_equal(d.split[FPT_TEST].n, 44);
  int64_t cnt[3][8 + 1];
  // census() counts up to 8 families; count here instead.
  memset(cnt, 0, sizeof cnt);
  for (int s = 0; s < 3; s++)
    for (int64_t j = 0; j < d.split[s].n; j++)
      cnt[s][d.split[s].y[j]]++;
  for (int f = 0; f < 9; f++) {
    int64_t k = count[f] >= 3 ? (15 * count[f] + 50) / 100 : 0;
    if (count[f] >= 3 && k < 1)
      k = 1;
    assert_int_equal(cnt[FPT_VAL][f], k);
    assert_int_equal(cnt[FPT_TEST][f], k);
    assert_int_equal(cnt[FPT_TRAIN][f], count[f] - 2 * k);
  }
  fpt_dataset_free(&d);
  fpt_pfam_free_paths(paths, n);

  // Another directory: nothing found is an error naming it.
  setenv("FPT_HMMER_EXAMPLES", tmpdir, 1);
  fpt_error_clear();
  assert_int_equal(fpt_pfam_default_paths(&paths, &n), 1);
  assert_non_null(strstr(fpt_error_get(), tmpdir));
  assert_null(paths);
  unsetenv("FPT_HMMER_EXAMPLES");
  fpt_error_clear();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vocab_table),
      cmocka_unit_test(test_encode_known),
      cmocka_unit_test(test_encode_truncate),
      cmocka_unit_test(test_encode_unknown),
      cmocka_unit_test(test_stockholm_parse),
      cmocka_unit_test(test_stockholm_many),
      cmocka_unit_test(test_stockholm_malformed),
      cmocka_unit_test(test_pfam_small),
      cmocka_unit_test(test_pfam_split_determinism),
      cmocka_unit_test(test_default_hmmer_examples),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
