// The "pfam" task: TAPE's IUPAC vocabulary, sequence encoding, Stockholm
// reading, and the task built from Stockholm files (see include/fpt/protein.h
// for the rules).
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "fpt/check.h"
#include "fpt/dataset.h"
#include "fpt/protein.h"
#include "fpt/rng.h"
#include "fpt/task_registry.h"

// tape.tokenizers.IUPAC_VOCAB, in id order. data/tape_homology_to_h5.py has
// the same list (VOCAB); tests/cli/test_proteins.sh compares them.
const char *const fpt_protein_vocab[FPT_PROTEIN_VOCAB] = {
    "<pad>", "<mask>", "<cls>", "<sep>", "<unk>", "A", "B", "C", "D", "E", "F", "G", "H", "I", "K",
    "L",     "M",      "N",     "O",     "P",     "Q", "R", "S", "T", "U", "V", "W", "X", "Y", "Z"};

int fpt_protein_token_id(int c) {
  // The table is the only source of truth; 25 one-letter entries.
  for (int i = FPT_PROT_UNK + 1; i < FPT_PROTEIN_VOCAB; i++)
    if (fpt_protein_vocab[i][0] == c && fpt_protein_vocab[i][1] == '\0')
      return i;
  return -1;
}

// "'J'" or "byte 0x00": how to show an offending character.
static void show_char(int c, char *buf, size_t n) {
  if (c > 32 && c < 127)
    snprintf(buf, n, "'%c'", c);
  else
    snprintf(buf, n, "byte 0x%02X", (unsigned)(c & 0xFF));
}

int fpt_protein_encode(const char *seq, int32_t *ids, int max_len, const char *file, long record) {
  const char *f = file ? file : "(sequence)";
  FPT_ENSURE(seq != NULL, "%s: record %ld: no sequence", f, record);
  FPT_ENSURE(max_len >= 2, "%s: record %ld: max_len %d leaves no room for <cls> and <sep>", f,
             record, max_len);
  int t = 0;
  ids[t++] = FPT_PROT_CLS;
  for (size_t i = 0; seq[i]; i++) {
    int id = fpt_protein_token_id((unsigned char)seq[i]);
    if (id < 0) {
      char c[16];
      show_char((unsigned char)seq[i], c, sizeof c);
      FPT_FAIL("%s: record %ld: unknown letter %s at position %zu (TAPE's "
               "IUPAC vocabulary has the uppercase letters A-Z except J)",
               f, record, c, i + 1);
    }
    // Keep checking past the truncation point: a bad letter is an error
    // wherever it is.
    if (t < max_len - 1)
      ids[t++] = id;
  }
  ids[t++] = FPT_PROT_SEP;
  while (t < max_len)
    ids[t++] = FPT_PROT_PAD;
  return 0;
}

// ---------------------------------------------------------------------------
// Stockholm reader.

typedef struct {
  char *name;
  char *res;
  size_t len, cap; // residues kept
  size_t alen;     // aligned columns seen (gaps included)
  long block;      // last block it appeared in
  long first_line, last_line;
} sto_seq;

typedef struct {
  sto_seq *s;
  int n, cap;
  // Names -> index in s: open addressing, -1 = empty, load <= 1/2. (A linear
  // scan per new name was quadratic: 20000 sequences took 10 s per read under
  // the fuzzer, tests/fuzz; Pfam's full alignments have 10^5 and more.)
  int *slot;
  size_t mask;
} sto_list;

static void sto_list_free(sto_list *l) {
  for (int i = 0; i < l->n; i++) {
    free(l->s[i].name);
    free(l->s[i].res);
  }
  free(l->s);
  free(l->slot);
  l->s = NULL;
  l->slot = NULL;
  l->n = l->cap = 0;
  l->mask = 0;
}

static size_t name_hash(const char *p) {
  uint64_t h = 0xcbf29ce484222325ull; // FNV-1a
  for (; *p; p++)
    h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
  return (size_t)(h ^ h >> 29);
}

static void slot_put(sto_list *l, int k) {
  size_t i = name_hash(l->s[k].name) & l->mask;
  while (l->slot[i] >= 0)
    i = (i + 1) & l->mask;
  l->slot[i] = k;
}

// Enter the sequence just appended (l->s[l->n - 1]), growing the table first if needed.
static void index_seq(sto_list *l) {
  if ((size_t)l->n * 2 > l->mask) {
    size_t size = l->mask ? 2 * (l->mask + 1) : 256;
    free(l->slot);
    l->slot = fpt_malloc(size * sizeof *l->slot);
    memset(l->slot, 0xff, size * sizeof *l->slot); // all -1
    l->mask = size - 1;
    for (int j = 0; j < l->n; j++)
      slot_put(l, j);
  } else {
    slot_put(l, l->n - 1);
  }
}

// Read one line (without its newline) into *buf. Returns 1 if a line was
// read, 0 at the end of the file (or on a read error: check gzerror).
static int read_line(gzFile gz, char **buf, size_t *cap, size_t *len) {
  *len = 0;
  for (;;) {
    if (*cap - *len < 2) {
      *cap = *cap ? 2 * *cap : 4096;
      char *nb = realloc(*buf, *cap);
      if (!nb) {
        fprintf(stderr, "fpt: error: out of memory reading a line\n");
        exit(2);
      }
      *buf = nb;
    }
    size_t room = *cap - *len;
    if (room > INT_MAX)
      room = INT_MAX;
    if (!gzgets(gz, *buf + *len, (int)room))
      break;
    *len += strlen(*buf + *len);
    if (*len && (*buf)[*len - 1] == '\n')
      break;
  }
  if (*len == 0)
    return 0;
  // Strip the newline, a CR and trailing blanks.
  while (*len && ((*buf)[*len - 1] == '\n' || (*buf)[*len - 1] == '\r' || (*buf)[*len - 1] == ' ' ||
                  (*buf)[*len - 1] == '\t'))
    (*buf)[--*len] = '\0';
  return 1;
}

static int is_blank(const char *s) {
  for (; *s; s++)
    if (*s != ' ' && *s != '\t')
      return 0;
  return 1;
}

static int is_gap(int c) { return c == '-' || c == '.' || c == '_' || c == '~'; }

// File name without directory and without .gz / .sto / .stk.
static void base_id(const char *path, char *out, size_t n) {
  const char *b = strrchr(path, '/');
  b = b ? b + 1 : path;
  snprintf(out, n, "%s", b);
  const char *ext[] = {".gz", ".sto", ".stk", ".sth"};
  for (int k = 0; k < 4; k++) {
    size_t L = strlen(out), e = strlen(ext[k]);
    if (L > e && !strcmp(out + L - e, ext[k]))
      out[L - e] = '\0';
  }
}

// Find `name` in the list: first at the slot its position in the current
// block predicts (blocks repeat the first block's order), else by its hash.
static int find_seq(const sto_list *l, const char *name, int hint) {
  if (hint >= 0 && hint < l->n && !strcmp(l->s[hint].name, name))
    return hint;
  if (!l->slot)
    return -1;
  for (size_t i = name_hash(name) & l->mask; l->slot[i] >= 0; i = (i + 1) & l->mask)
    if (!strcmp(l->s[l->slot[i]].name, name))
      return l->slot[i];
  return -1;
}

// The parser's state between lines.
typedef struct {
  gzFile gz;
  const char *path;
  sto_list *l;
  char *id;
  size_t idn;
  long lineno, block, end_line;
  int state;    // 0 before the header, 1 inside, 2 after "//"
  int in_block; // a sequence line was seen since the last blank line
  int pos;      // index of the line within the current block
} sto_parser;

static int sto_before_header(sto_parser *P, const char *buf) {
  if (is_blank(buf))
    return 0;
  if (strcmp(buf, "# STOCKHOLM 1.0") != 0) {
    fpt_error_set("%s:%ld: not a Stockholm file: expected the header "
                  "'# STOCKHOLM 1.0', found '%.40s'",
                  P->path, P->lineno, buf);
    return 1;
  }
  P->state = 1;
  return 0;
}

static int sto_after_end(const sto_parser *P, const char *buf) {
  if (is_blank(buf))
    return 0;
  if (!strncmp(buf, "# STOCKHOLM", 11))
    fpt_error_set("%s:%ld: a second alignment starts here; expected one "
                  "family per file",
                  P->path, P->lineno);
  else
    fpt_error_set("%s:%ld: text after the '//' terminator of line %ld", P->path, P->lineno,
                  P->end_line);
  return 1;
}

// Markup lines are skipped, except "#=GF ID": the family's name, which
// becomes its id (the file name is only the fallback).
static void sto_markup(sto_parser *P, const char *buf) {
  if (!strncmp(buf, "#=GF ID", 7) && (buf[7] == ' ' || buf[7] == '\t')) {
    const char *p = buf + 7;
    p += strspn(p, " \t");
    size_t k = strcspn(p, " \t");
    if (k > 0) {
      if (k >= P->idn)
        k = P->idn - 1;
      memcpy(P->id, p, k);
      P->id[k] = '\0';
    }
  }
}

// The sequence `name` (nl bytes), entered in the list if it is new.
static sto_seq *sto_get_seq(const sto_parser *P, const char *name, size_t nl) {
  sto_list *l = P->l;
  int i = find_seq(l, name, P->pos);
  if (i < 0) {
    if (l->n == l->cap) {
      l->cap = l->cap ? 2 * l->cap : 64;
      sto_seq *ns = realloc(l->s, sizeof *ns * (size_t)l->cap);
      if (!ns) {
        fprintf(stderr, "fpt: error: out of memory reading %s\n", P->path);
        exit(2);
      }
      l->s = ns;
    }
    i = l->n++;
    sto_seq *s = &l->s[i];
    memset(s, 0, sizeof *s);
    s->name = fpt_malloc(nl + 1);
    memcpy(s->name, name, nl + 1);
    s->block = -1;
    s->first_line = P->lineno;
    index_seq(l);
  }
  return &l->s[i];
}

// Add the al aligned columns of ali to s: residues uppercased, gaps only
// counted (column numbers in messages count them).
static int sto_append(const sto_parser *P, sto_seq *s, const char *name, const char *ali,
                      size_t al) {
  if (s->len + al + 1 > s->cap) {
    size_t nc = s->cap ? s->cap : 256;
    while (nc < s->len + al + 1)
      nc *= 2;
    char *nr = realloc(s->res, nc);
    if (!nr) {
      fprintf(stderr, "fpt: error: out of memory reading %s\n", P->path);
      exit(2);
    }
    s->res = nr;
    s->cap = nc;
  }
  for (size_t k = 0; k < al; k++) {
    int c = (unsigned char)ali[k];
    if (is_gap(c))
      continue;
    int u = toupper(c);
    if (fpt_protein_token_id(u) < 0) {
      char cs[16];
      show_char(c, cs, sizeof cs);
      fpt_error_set("%s:%ld: unknown letter %s in sequence '%.40s' (column "
                    "%zu; TAPE's IUPAC vocabulary has A-Z except J, gaps are "
                    "'-' '.' '_' '~')",
                    P->path, P->lineno, cs, name, s->alen + k + 1);
      return 1;
    }
    s->res[s->len++] = (char)u;
  }
  s->res[s->len] = '\0';
  s->alen += al;
  return 0;
}

static int sto_seq_line(sto_parser *P, char *buf) {
  if (buf[0] == ' ' || buf[0] == '\t') {
    fpt_error_set("%s:%ld: sequence line without a name (it starts with "
                  "whitespace)",
                  P->path, P->lineno);
    return 1;
  }
  // name, residues, nothing else
  char *name = buf;
  size_t nl = strcspn(name, " \t");
  char *p = name + nl;
  p += strspn(p, " \t");
  if (!*p) {
    fpt_error_set("%s:%ld: sequence line '%.40s' has a name but no residues", P->path, P->lineno,
                  name);
    return 1;
  }
  name[nl] = '\0';
  char *ali = p;
  size_t al = strcspn(ali, " \t");
  if (ali[al]) {
    fpt_error_set("%s:%ld: sequence line for '%.40s' has more than two "
                  "fields (whitespace inside the residues?)",
                  P->path, P->lineno, name);
    return 1;
  }
  sto_seq *s = sto_get_seq(P, name, nl);
  if (s->block == P->block) {
    fpt_error_set("%s:%ld: sequence '%.40s' appears twice in one block "
                  "(also on line %ld)",
                  P->path, P->lineno, name, s->last_line);
    return 1;
  }
  s->block = P->block;
  s->last_line = P->lineno;
  P->in_block = 1;
  P->pos++;
  return sto_append(P, s, name, ali, al);
}

// One line (already counted in P->lineno). Returns 0 or 1 (message set).
static int sto_line(sto_parser *P, char *buf) {
  if (P->state == 0)
    return sto_before_header(P, buf);
  if (P->state == 2)
    return sto_after_end(P, buf);
  if (is_blank(buf)) {
    if (P->in_block)
      P->block++;
    P->in_block = 0;
    P->pos = 0;
    return 0;
  }
  if (!strcmp(buf, "//")) {
    P->state = 2;
    P->end_line = P->lineno;
    return 0;
  }
  if (buf[0] == '#') {
    sto_markup(P, buf);
    return 0;
  }
  return sto_seq_line(P, buf);
}

// After the last line: a read error (read_line cannot tell it from the end
// of the file), a missing header or terminator, rows of unequal length.
static int sto_finish(const sto_parser *P) {
  const sto_list *l = P->l;
  int errnum = Z_OK;
  const char *msg = gzerror(P->gz, &errnum);
  if (errnum == Z_ERRNO) {
    fpt_error_set("%s: read error after line %ld: %s", P->path, P->lineno, strerror(errno));
    return 1;
  }
  if (errnum != Z_OK && errnum != Z_STREAM_END) {
    fpt_error_set("%s: corrupt gzip data after line %ld: %s", P->path, P->lineno, msg);
    return 1;
  }
  if (P->state == 0) {
    fpt_error_set("%s: not a Stockholm file: no '# STOCKHOLM 1.0' header "
                  "(empty file?)",
                  P->path);
    return 1;
  }
  if (P->state == 1) {
    fpt_error_set("%s:%ld: no '//' terminator at the end of the alignment "
                  "(truncated file?)",
                  P->path, P->lineno);
    return 1;
  }
  if (l->n == 0) {
    fpt_error_set("%s:%ld: the alignment has no sequences", P->path, P->end_line);
    return 1;
  }
  for (int i = 1; i < l->n; i++)
    if (l->s[i].alen != l->s[0].alen) {
      fpt_error_set("%s:%ld: sequence '%.40s' has %zu aligned columns but "
                    "'%.40s' has %zu (a block is missing or cut short)",
                    P->path, l->s[i].last_line, l->s[i].name, l->s[i].alen, l->s[0].name,
                    l->s[0].alen);
      return 1;
    }
  return 0;
}

// Parse the whole file; fills l and id. Returns 0 or 1 (message set).
static int parse_stockholm(gzFile gz, const char *path, sto_list *l, char *id, size_t idn) {
  sto_parser P = {.gz = gz, .path = path, .l = l, .id = id, .idn = idn};
  char *buf = NULL;
  size_t cap = 0, len = 0;
  int rc = 0;
  id[0] = '\0';
  while (rc == 0 && read_line(gz, &buf, &cap, &len)) {
    P.lineno++;
    rc = sto_line(&P, buf);
  }
  if (rc == 0)
    rc = sto_finish(&P);
  free(buf);
  return rc;
}

int fpt_stockholm_read(const char *path, fpt_stockholm *a) {
  memset(a, 0, sizeof *a);
  FPT_ENSURE(path != NULL, "Stockholm reader: no file name");
  struct stat st;
  FPT_ENSURE(stat(path, &st) == 0, "%s: cannot open: %s", path, strerror(errno));
  FPT_ENSURE(!S_ISDIR(st.st_mode), "%s: is a directory, not a Stockholm file", path);
  errno = 0;
  gzFile gz = gzopen(path, "rb");
  FPT_ENSURE(gz != NULL, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
  gzbuffer(gz, 1 << 17);
  sto_list l = {0};
  char id[sizeof a->id];
  int rc = parse_stockholm(gz, path, &l, id, sizeof id);
  gzclose(gz);
  if (rc) {
    sto_list_free(&l);
    return rc;
  }
  if (id[0])
    snprintf(a->id, sizeof a->id, "%s", id);
  else
    base_id(path, a->id, sizeof a->id);
  a->n = l.n;
  a->names = fpt_calloc((size_t)l.n, sizeof(char *));
  a->seqs = fpt_calloc((size_t)l.n, sizeof(char *));
  a->lines = fpt_calloc((size_t)l.n, sizeof(long));
  for (int i = 0; i < l.n; i++) {
    a->names[i] = l.s[i].name;
    if (!l.s[i].res) { // an all-gap row: empty sequence
      l.s[i].res = fpt_malloc(1);
      l.s[i].res[0] = '\0';
    }
    a->seqs[i] = l.s[i].res;
    a->lines[i] = l.s[i].first_line;
  }
  free(l.s); // the strings now belong to a
  free(l.slot);
  return 0;
}

void fpt_stockholm_free(fpt_stockholm *a) {
  for (int i = 0; i < a->n; i++) {
    free(a->names[i]);
    free(a->seqs[i]);
  }
  free(a->names);
  free(a->seqs);
  free(a->lines);
  memset(a, 0, sizeof *a);
}

// ---------------------------------------------------------------------------
// The pfam task.

// Sequences of a family of n that go to val (and as many to test).
static int64_t held_out(int64_t n) {
  if (n < 3)
    return 0;
  int64_t k = (15 * n + 50) / 100; // round(0.15 n), in integers
  return k < 1 ? 1 : k;
}

static void free_families(fpt_stockholm *fam, int n_paths) {
  for (int f = 0; f < n_paths; f++)
    fpt_stockholm_free(&fam[f]);
  free(fam);
}

// Read every file into fam[]; stops at the first failure (message set).
static int read_families(const char *const *paths, int n_paths, fpt_stockholm *fam) {
  int rc = 0;
  for (int f = 0; f < n_paths; f++) {
    if (!paths[f]) {
      fpt_error_set("pfam: file %d of %d has no name", f + 1, n_paths);
      rc = 1;
      break;
    }
    if ((rc = fpt_stockholm_read(paths[f], &fam[f])) != 0)
      break;
    // Two files of one family would make two labels for the same thing.
    for (int g = 0; g < f && rc == 0; g++)
      if (!strcmp(fam[g].id, fam[f].id)) {
        fpt_error_set("pfam: %s and %s are both family '%s' (labels %d and "
                      "%d); give each family once",
                      paths[g], paths[f], fam[f].id, g, f);
        rc = 1;
      }
    if (rc)
      break;
  }
  return rc;
}

// Per family: shuffle its sequence indices; the first k go to val, the
// next k to test, the rest to train. Members are coded as family << 32 | i.
static void assign_members(const fpt_stockholm *fam, int n_paths, uint64_t seed, int64_t *list[3],
                           int64_t cnt[3]) {
  int64_t total = 0;
  for (int f = 0; f < n_paths; f++)
    total += fam[f].n;
  for (int s = 0; s < 3; s++)
    list[s] = fpt_calloc((size_t)total, sizeof(int64_t));
  for (int f = 0; f < n_paths; f++) {
    int64_t n = fam[f].n, k = held_out(n);
    int64_t *idx = fpt_calloc((size_t)n, sizeof(int64_t));
    for (int64_t i = 0; i < n; i++)
      idx[i] = i;
    fpt_shuffle(idx, n, (fpt_stream){seed, FPT_SITE_DATA, 0x9FA3u, (uint32_t)f});
    for (int64_t i = 0; i < n; i++) {
      int s = i < k ? FPT_VAL : i < 2 * k ? FPT_TEST : FPT_TRAIN;
      list[s][cnt[s]++] = ((int64_t)f << 32) | idx[i];
    }
    free(idx);
  }
}

static void pfam_describe(fpt_dataset *d, const char *const *paths, int n_paths, uint64_t seed,
                          int max_len) {
  snprintf(d->task, sizeof d->task, "pfam");
  d->seq = max_len;
  d->d_in = 0;
  d->vocab = FPT_PROTEIN_VOCAB;
  d->seq2 = d->vocab2 = 0;
  d->n_classes = n_paths;
  d->K = 1;
  d->r = 1;
  d->pad_id = FPT_PROT_PAD;
  d->seed = (int64_t)seed;
  // sources: the paths in label order, "; "-separated (cut with "..." if
  // they do not fit).
  size_t used = 0, room = sizeof d->sources;
  for (int f = 0; f < n_paths; f++) {
    int w = snprintf(d->sources + used, room - used, "%s%s", f ? "; " : "", paths[f]);
    if (w < 0 || (size_t)w >= room - used) {
      memcpy(d->sources + room - 4, "...", 4);
      break;
    }
    used += (size_t)w;
  }
  snprintf(d->generator, sizeof d->generator,
           "fpt_pfam_load: %d Stockholm families, max_len %d, seed %llu, "
           "per-family split 70/15/15",
           n_paths, max_len, (unsigned long long)seed);
}

// Shuffle each split's members and encode them; stops at the first sequence
// that does not encode (message set).
static int encode_splits(fpt_dataset *d, const fpt_stockholm *fam, const char *const *paths,
                         uint64_t seed, int max_len, int64_t *list[3], const int64_t cnt[3]) {
  int rc = 0;
  for (int s = 0; s < 3 && rc == 0; s++) {
    fpt_shuffle(list[s], cnt[s], (fpt_stream){seed, FPT_SITE_DATA, 0x9FA4u, (uint32_t)s});
    fpt_dataset_alloc(d, s, cnt[s]);
    fpt_split *sp = &d->split[s];
    sp->index = fpt_calloc((size_t)cnt[s], sizeof(int64_t));
    for (int64_t j = 0; j < cnt[s]; j++) {
      int f = (int)(list[s][j] >> 32);
      int i = (int)(list[s][j] & 0xFFFFFFFF);
      rc = fpt_protein_encode(fam[f].seqs[i], sp->ids + j * max_len, max_len, paths[f],
                              fam[f].lines[i]);
      if (rc)
        break;
      sp->y[j] = f;
      sp->index[j] = i;
    }
  }
  return rc;
}

int fpt_pfam_load(const char *const *paths, int n_paths, uint64_t seed, int max_len,
                  fpt_dataset *d) {
  memset(d, 0, sizeof *d);
  FPT_ENSURE(paths != NULL && n_paths >= 1, "pfam: no Stockholm files given");
  FPT_ENSURE(max_len >= 2, "pfam: max_len %d leaves no room for <cls> and <sep> (need >= 2)",
             max_len);
  fpt_stockholm *fam = fpt_calloc((size_t)n_paths, sizeof *fam);
  int rc = read_families(paths, n_paths, fam);
  if (rc) {
    free_families(fam, n_paths);
    return rc;
  }
  int64_t *list[3], cnt[3] = {0, 0, 0};
  assign_members(fam, n_paths, seed, list, cnt);
  pfam_describe(d, paths, n_paths, seed, max_len);
  rc = encode_splits(d, fam, paths, seed, max_len, list, cnt);
  for (int s = 0; s < 3; s++)
    free(list[s]);
  free_families(fam, n_paths);
  if (rc)
    fpt_dataset_free(d);
  return rc;
}

// ---------------------------------------------------------------------------
// Debian's hmmer-examples.

static const char *const default_families[] = {
    "tutorial/Pkinase",  "tutorial/fn3",         "tutorial/globins4",
    "testsuite/RRM_1",   "testsuite/SMC_N",      "testsuite/LuxC",
    "testsuite/Patched", "testsuite/Caudal_act", "testsuite/XYPPX"};

int fpt_pfam_default_paths(char ***paths, int *n) {
  *paths = NULL;
  *n = 0;
  const char *dir = getenv("FPT_HMMER_EXAMPLES");
  if (!dir || !*dir)
    dir = FPT_HMMER_EXAMPLES_DIR;
  int m = (int)(sizeof default_families / sizeof *default_families);
  char **out = fpt_calloc((size_t)m, sizeof(char *));
  int k = 0;
  for (int i = 0; i < m; i++) {
    const char *ext[] = {".sto", ".sto.gz"};
    for (int e = 0; e < 2; e++) {
      size_t L = strlen(dir) + strlen(default_families[i]) + 16;
      char *p = fpt_malloc(L);
      snprintf(p, L, "%s/%s%s", dir, default_families[i], ext[e]);
      struct stat st;
      if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
        out[k++] = p;
        break;
      }
      free(p);
    }
  }
  if (k == 0) {
    free(out);
    FPT_FAIL("%s: none of the hmmer-examples Stockholm files (tutorial/"
             "Pkinase.sto, testsuite/RRM_1.sto.gz, ...) is there; install "
             "Debian's hmmer-examples package or set FPT_HMMER_EXAMPLES",
             dir);
  }
  *paths = out;
  *n = k;
  return 0;
}

void fpt_pfam_free_paths(char **paths, int n) {
  if (!paths)
    return;
  for (int i = 0; i < n; i++)
    free(paths[i]);
  free(paths);
}

// ---------------------------------------------------------------------------
// Task table hook (fpt/task_registry.h): --input is a comma-separated list of
// Stockholm files (one family each); without it, the Pfam families that
// Debian's hmmer-examples ships.

int fpt_pfam_build(const fpt_task_def *t, const fpt_task_args *a, fpt_dataset *d) {
  (void)t;
  FPT_ENSURE(a->max_len >= 3, "option --max-len: must be >= 3");
  char **paths = NULL;
  int n = 0;
  if (a->input) {
    char *copy = fpt_malloc(strlen(a->input) + 1);
    strcpy(copy, a->input);
    n = fpt_task_split_list(copy, &paths);
    int rc = fpt_pfam_load((const char *const *)paths, n, (uint64_t)a->seed, (int)a->max_len, d);
    free(paths);
    free(copy);
    return rc;
  }
  FPT_TRY(fpt_pfam_default_paths(&paths, &n));
  int rc = fpt_pfam_load((const char *const *)paths, n, (uint64_t)a->seed, (int)a->max_len, d);
  fpt_pfam_free_paths(paths, n);
  return rc;
}
