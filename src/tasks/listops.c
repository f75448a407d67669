// ListOps: the LRA generator, LRA's TSV files, and the two tokenisations
// (the Oct-2020 LRA pipeline FPT used, and the corrected current LRA one).
// See include/fpt/listops.h for the token tables.
//
// Generator (lra_benchmarks/data/listops.py, re-implemented):
//   generate_tree(depth): r = uniform [0,1) if depth < max_depth else 1;
//   r > 0.25 -> leaf, a uniform digit (length 1); else an operator with
//   k = uniform {2..max_args} arguments generated recursively at depth + 1,
//   then the operator, uniform over (MIN, MAX, MED, SM); length = 2 + the
//   arguments' lengths. The draws come in Python's order (r, then the digit,
//   or r, k, the arguments, the operator).
//   Every attempt t has its own Philox stream (seed, FPT_SITE_DATA,
//   0x4C4F0000 ^ (t >> 32), t mod 2^32), draw j = fpt_stream_u32(stream, j),
//   so an attempt can be abandoned as soon as it reaches max_length tokens
//   (it would be rejected anyway; the accepted trees keep exactly LRA's
//   distribution) without shifting the draws of the next attempt. r > 0.25
//   is u32 > 2^30; bounded integers are Lemire's unbiased multiply-reject.
//   A tree is kept iff min_length < length < max_length and it is not
//   already in the set. LRA collects trees in a Python set and splits the
//   set's iteration order (hash-dependent); here the split follows
//   generation order (first n_train distinct trees are train, ...).
//   Trees are held as one byte per token in prefix order (digits 0..9, the
//   four operators, the close), which is a bijection with LRA's nested
//   tuples, so distinct byte strings = distinct trees. Duplicates are found
//   with an open-addressing hash table and an exact byte comparison.
//
// TSV serialisation (LRA's to_string): an operator node with arguments
// a1..ak is the left-nested pair chain ((((op, a1), a2) ... ak), "]"), each
// pair printed "( left right )": "( " * (k+1) "[OP" (" " ai " )")* " ] )".
// Files have LF line ends (LRA's csv.writer wrote CRLF; the loader takes
// either) and the header "Source\tTarget".
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "fpt/check.h"
#include "fpt/listops.h"
#include "fpt/rng.h"
#include "fpt/task_registry.h"

// ---------------------------------------------------------------------------
// Compact tokens: digits 0..9, then the operators, then the close.
enum { C_MIN = 10, C_MAX = 11, C_MED = 12, C_SM = 13, C_END = 14 };
// LRA's OPERATORS list order, for the uniform operator draw.
static const uint8_t lra_ops[4] = {C_MIN, C_MAX, C_MED, C_SM};
static const char *const op_text[4] = {"[MIN", "[MAX", "[MED", "[SM"};
// Compact token -> id in both schemes (ids: 0 for "]", which it drops).
static int32_t id_of_op(int c) {
  switch (c) {
  case C_MAX:
    return FPT_LISTOPS_MAX;
  case C_MIN:
    return FPT_LISTOPS_MIN;
  case C_MED:
    return FPT_LISTOPS_MED;
  default:
    return FPT_LISTOPS_SM;
  }
}

// ---------------------------------------------------------------------------
// Evaluation of a compact token sequence (LRA's to_value). Returns 0 and the
// value, or a static description of what is wrong.
typedef struct {
  int op;
  int64_t n;
  int64_t cnt[10];
} frame;

static int op_value(const frame *f) {
  if (f->op == C_SM) {
    int64_t s = 0;
    for (int d = 0; d < 10; d++)
      s += f->cnt[d] * d;
    return (int)(s % 10);
  }
  if (f->op == C_MIN || f->op == C_MAX) {
    for (int k = 0; k < 10; k++) {
      int d = f->op == C_MIN ? k : 9 - k;
      if (f->cnt[d])
        return d;
    }
  }
  // MED: int(numpy.median): the middle value, or the mean of the two middle
  // values truncated toward zero (values are >= 0, so integer division).
  int64_t lo = (f->n - 1) / 2, hi = f->n / 2, seen = 0;
  int a = -1, b = -1;
  for (int d = 0; d < 10; d++) {
    if (a < 0 && seen + f->cnt[d] > lo)
      a = d;
    if (b < 0 && seen + f->cnt[d] > hi) {
      b = d;
      break;
    }
    seen += f->cnt[d];
  }
  return (a + b) / 2;
}

static const char *eval_compact(const uint8_t *t, int64_t n, int *value) {
  frame small[32];
  frame *st = small;
  int64_t cap = 32, top = 0;
  int have = 0, result = 0;
  const char *err = NULL;
  for (int64_t i = 0; i < n && !err; i++) {
    int c = t[i], v;
    if (c >= C_MIN && c <= C_SM) {
      if (have) {
        err = "more than one top-level value";
        break;
      }
      if (top == cap) {
        frame *nst = fpt_malloc(sizeof(frame) * (size_t)cap * 2);
        memcpy(nst, st, sizeof(frame) * (size_t)cap);
        if (st != small)
          free(st);
        st = nst;
        cap *= 2;
      }
      memset(&st[top], 0, sizeof st[top]);
      st[top++].op = c;
      continue;
    }
    if (c == C_END) {
      if (top == 0) {
        err = "closing bracket without an operator";
        break;
      }
      if (st[top - 1].n == 0) {
        err = "operator without arguments";
        break;
      }
      v = op_value(&st[--top]);
    } else {
      v = c;
    }
    if (top > 0) {
      st[top - 1].cnt[v]++;
      st[top - 1].n++;
    } else if (have) {
      err = "more than one top-level value";
    } else {
      have = 1;
      result = v;
    }
  }
  if (!err && top > 0)
    err = "unclosed operator";
  if (!err && !have)
    err = "empty expression";
  if (st != small)
    free(st);
  if (!err)
    *value = result;
  return err;
}

// ---------------------------------------------------------------------------
// Source tokens.
enum { TK_OPEN, TK_CLOSEPAIR, TK_END, TK_OP, TK_DIGIT, TK_BAD };

// Classify the token [p, p+len): kind, and the compact code for ops/digits.
static int classify(const char *p, size_t len, int *code) {
  if (len == 1) {
    if (*p == '(')
      return TK_OPEN;
    if (*p == ')')
      return TK_CLOSEPAIR;
    if (*p == ']')
      return TK_END;
    if (*p >= '0' && *p <= '9') {
      *code = *p - '0';
      return TK_DIGIT;
    }
    return TK_BAD;
  }
  for (int k = 0; k < 4; k++)
    if (strlen(op_text[k]) == len && !memcmp(p, op_text[k], len)) {
      *code = lra_ops[k];
      return TK_OP;
    }
  return TK_BAD;
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// The next whitespace-separated word of [*p, end): 1 and [*p, *q), or 0 at the end.
static int next_word(const char **p, const char *end, const char **q) {
  while (*p < end && is_space(**p))
    (*p)++;
  if (*p == end)
    return 0;
  *q = *p;
  while (*q < end && !is_space(**q))
    (*q)++;
  return 1;
}

// Tokenise [p, end) into both schemes (see listops.h). Returns 0, or 1 with
// *bad/*badlen = the unknown token (no error message set).
static int tokenize_span(const char *p, const char *end, int32_t *ids, int L1, int32_t *ids2,
                         int L2, int *n1, int *n2, const char **bad, size_t *badlen) {
  int a = 0, b = 0;
  const char *q;
  while (next_word(&p, end, &q)) {
    int code = 0;
    int kind = classify(p, (size_t)(q - p), &code);
    int32_t id = 0;
    switch (kind) {
    case TK_OPEN:
    case TK_CLOSEPAIR:
      break;
    case TK_END:
      if (ids2 && b < L2)
        ids2[b] = FPT_LISTOPS_CLOSE;
      b++;
      break;
    case TK_OP:
    case TK_DIGIT:
      id = kind == TK_OP ? id_of_op(code) : FPT_LISTOPS_DIGIT0 + code;
      if (ids && a < L1)
        ids[a] = id;
      if (ids2 && b < L2)
        ids2[b] = id;
      a++;
      b++;
      break;
    default:
      *bad = p;
      *badlen = (size_t)(q - p);
      return 1;
    }
    p = q;
  }
  for (int i = a; ids && i < L1; i++)
    ids[i] = FPT_LISTOPS_PAD;
  for (int i = b; ids2 && i < L2; i++)
    ids2[i] = FPT_LISTOPS_PAD;
  if (n1)
    *n1 = a;
  if (n2)
    *n2 = b;
  return 0;
}

int fpt_listops_tokenize(const char *source, int32_t *ids, int max_len_paper, int32_t *ids2,
                         int max_len_lra, int *n_paper, int *n_lra) {
  FPT_ENSURE(source, "listops: no source string");
  FPT_ENSURE((!ids || max_len_paper > 0) && (!ids2 || max_len_lra > 0),
             "listops: maximum lengths must be positive (%d, %d)", max_len_paper, max_len_lra);
  const char *bad = NULL;
  size_t badlen = 0;
  if (tokenize_span(source, source + strlen(source), ids, max_len_paper, ids2, max_len_lra, n_paper,
                    n_lra, &bad, &badlen))
    FPT_FAIL("listops: unknown token '%.*s'", (int)(badlen > 40 ? 40 : badlen), bad);
  return 0;
}

int fpt_listops_eval(const char *source, int *value) {
  FPT_ENSURE(source && value, "listops eval: no source string");
  size_t n = strlen(source);
  uint8_t *t = fpt_malloc(n + 1);
  int64_t m = 0;
  const char *p = source, *end = source + n;
  const char *q;
  while (next_word(&p, end, &q)) {
    int code = 0, kind = classify(p, (size_t)(q - p), &code);
    if (kind == TK_BAD && q - p == 1 && *p == 'X')
      kind = TK_END;
    if (kind == TK_BAD) {
      free(t);
      FPT_FAIL("listops eval: unknown token '%.*s'", (int)(q - p > 40 ? 40 : q - p), p);
    }
    if (kind == TK_END)
      t[m++] = C_END;
    else if (kind == TK_OP || kind == TK_DIGIT)
      t[m++] = (uint8_t)code;
    p = q;
  }
  const char *err = eval_compact(t, m, value);
  free(t);
  FPT_ENSURE(!err, "listops eval: %s", err);
  return 0;
}

// ---------------------------------------------------------------------------
// Generator.
typedef struct {
  fpt_stream s;
  uint64_t next; // index of the next draw in the attempt's stream
  uint64_t blk;  // index of the cached Philox block
  uint32_t v[4];
  uint8_t *tok;
  int len;   // tokens so far
  int limit; // max_length: an attempt reaching it is abandoned
  int max_depth, max_args;
} gen;

// Draw j of the stream = fpt_stream_u32(s, j), one Philox block per 4 draws.
static uint32_t draw(gen *g) {
  uint64_t i = g->next++;
  if ((i >> 2) != g->blk) {
    g->blk = i >> 2;
    fpt_u32x4 b = fpt_stream_block(g->s, (uint32_t)g->blk);
    memcpy(g->v, b.v, sizeof g->v);
  }
  return g->v[i & 3];
}

// Uniform in [0, n), unbiased (Lemire 2019).
static uint32_t below(gen *g, uint32_t n) {
  uint64_t m = (uint64_t)draw(g) * n;
  uint32_t l = (uint32_t)m;
  if (l < n) {
    uint32_t t = (uint32_t)(0u - n) % n;
    while (l < t) {
      m = (uint64_t)draw(g) * n;
      l = (uint32_t)m;
    }
  }
  return (uint32_t)(m >> 32);
}

// LRA's generate_tree into g->tok (prefix order). 1 = abandoned (too long).
static int grow(gen *g, int depth) {
  if (g->len + 1 >= g->limit)
    return 1;
  // random.random() > VALUE_P (0.25) <=> u / 2^32 > 1/4 <=> u > 2^30.
  if (depth >= g->max_depth || draw(g) > 0x40000000u) {
    g->tok[g->len++] = (uint8_t)below(g, 10);
    return 0;
  }
  int k = 2 + (int)below(g, (uint32_t)(g->max_args - 1));
  int at = g->len++;
  for (int c = 0; c < k; c++)
    if (grow(g, depth + 1))
      return 1;
  if (g->len + 1 >= g->limit)
    return 1;
  g->tok[at] = lra_ops[below(g, 4)];
  g->tok[g->len++] = C_END;
  return 0;
}

static uint64_t hash_bytes(const uint8_t *p, int n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
  for (int i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001B3ull;
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 33;
  return h;
}

// Distinct trees, in generation order.
typedef struct {
  uint8_t *arena;
  size_t used, cap;
  int64_t *off;
  int32_t *len;
  int64_t n;
  int64_t *slot; // hash table of indices (-1 = empty)
  uint64_t *slot_hash;
  size_t mask;
} tree_set;

// Add tok[0..n) if new; returns 1 if added.
static int set_add(tree_set *S, const uint8_t *tok, int n) {
  uint64_t h = hash_bytes(tok, n);
  size_t i = (size_t)h & S->mask;
  while (S->slot[i] >= 0) {
    int64_t j = S->slot[i];
    if (S->slot_hash[i] == h && S->len[j] == n && !memcmp(S->arena + S->off[j], tok, (size_t)n))
      return 0;
    i = (i + 1) & S->mask;
  }
  if (S->used + (size_t)n > S->cap) {
    size_t nc = S->cap * 2;
    while (S->used + (size_t)n > nc)
      nc *= 2;
    uint8_t *na = realloc(S->arena, nc);
    if (!na) {
      fprintf(stderr, "fpt: error: out of memory allocating %zu bytes\n", nc);
      exit(2);
    }
    S->arena = na;
    S->cap = nc;
  }
  memcpy(S->arena + S->used, tok, (size_t)n);
  S->off[S->n] = (int64_t)S->used;
  S->len[S->n] = n;
  S->used += (size_t)n;
  S->slot[i] = S->n++;
  S->slot_hash[i] = h;
  return 1;
}

static void set_free(tree_set *S) {
  free(S->arena);
  free(S->off);
  free(S->len);
  free(S->slot);
  free(S->slot_hash);
  memset(S, 0, sizeof *S);
}

// Serialise one tree (LRA to_string) into out; returns the number of chars.
// out needs 12 * n + 8 bytes; nargs and stack n ints each.
static size_t serialise(const uint8_t *t, int n, char *out, int *nargs, int *stack) {
  int top = 0;
  for (int i = 0; i < n; i++) {
    if (t[i] >= C_MIN && t[i] <= C_SM) {
      nargs[i] = 0;
      stack[top++] = i;
    } else if (t[i] == C_END) {
      top--;
      if (top > 0)
        nargs[stack[top - 1]]++;
    } else if (top > 0) {
      nargs[stack[top - 1]]++;
    }
  }
  char *o = out;
  top = 0;
  for (int i = 0; i < n; i++) {
    int c = t[i];
    if (c == C_END) {
      memcpy(o, " ] )", 4);
      o += 4;
      top--;
    } else {
      if (top > 0)
        *o++ = ' ';
      if (c >= C_MIN) {
        for (int k = 0; k <= nargs[i]; k++) {
          *o++ = '(';
          *o++ = ' ';
        }
        const char *s = op_text[c - C_MIN];
        size_t l = strlen(s);
        memcpy(o, s, l);
        o += l;
        top++;
        continue; // the operator's value completes at its close
      }
      *o++ = (char)('0' + c);
    }
    if (top > 0) { // a value just completed inside an operator: close its pair
      memcpy(o, " )", 2);
      o += 2;
    }
  }
  return (size_t)(o - out);
}

static int join_path(char *buf, size_t size, const char *dir, const char *name) {
  int k = snprintf(buf, size, "%s/%s", dir, name);
  FPT_ENSURE(k > 0 && (size_t)k < size, "listops: path too long: %s/%s", dir, name);
  return 0;
}

// Write split s (trees first..first+count) to the temporary file tmp.
static int write_split(const char *tmp, const tree_set *S, int64_t first, int64_t count,
                       int max_length) {
  FILE *f = fopen(tmp, "wb");
  FPT_ENSURE(f, "%s: cannot create: %s", tmp, strerror(errno));
  char *buf = fpt_malloc((size_t)max_length * 12 + 16);
  int *nargs = fpt_malloc(sizeof(int) * (size_t)max_length);
  int *stack = fpt_malloc(sizeof(int) * (size_t)max_length);
  int ok = fputs("Source\tTarget\n", f) >= 0;
  for (int64_t i = first; ok && i < first + count; i++) {
    const uint8_t *t = S->arena + S->off[i];
    int n = S->len[i], v = 0;
    const char *err = eval_compact(t, n, &v);
    if (err) { // cannot happen for generated trees
      fprintf(stderr, "fpt: internal error: listops tree %lld: %s\n", (long long)i, err);
      abort();
    }
    size_t m = serialise(t, n, buf, nargs, stack);
    buf[m++] = '\t';
    buf[m++] = (char)('0' + v);
    buf[m++] = '\n';
    ok = fwrite(buf, 1, m, f) == m;
  }
  free(buf);
  free(nargs);
  free(stack);
  int e = errno;
  if (fclose(f) != 0 && ok) {
    ok = 0;
    e = errno;
  }
  if (!ok) {
    remove(tmp);
    FPT_FAIL("%s: write failed: %s", tmp, strerror(e));
  }
  return 0;
}

// Longest tree the depth/argument bounds allow (saturating).
static int64_t longest_tree(int depth, int max_depth, int max_args) {
  if (depth >= max_depth)
    return 1;
  int64_t sub = longest_tree(depth + 1, max_depth, max_args);
  if (sub > ((int64_t)1 << 40) / max_args)
    return (int64_t)1 << 40;
  return 2 + max_args * sub;
}

static const char *const split_file[3] = {"basic_train.tsv", "basic_val.tsv", "basic_test.tsv"};

static int check_generate_args(const char *tsv_dir, int64_t n_train, int64_t n_val, int64_t n_test,
                               int max_depth, int max_args, int min_length, int max_length) {
  FPT_ENSURE(tsv_dir && *tsv_dir, "listops: no output directory");
  FPT_ENSURE(n_train >= 0 && n_val >= 0 && n_test >= 0 && n_train + n_val + n_test > 0 &&
                 n_train + n_val + n_test <= ((int64_t)1 << 31),
             "listops: bad split sizes %lld/%lld/%lld", (long long)n_train, (long long)n_val,
             (long long)n_test);
  FPT_ENSURE(max_depth >= 1 && max_depth <= 10000, "listops: max_depth %d outside 1..10000",
             max_depth);
  FPT_ENSURE(max_args >= 2 && max_args <= 100000, "listops: max_args %d outside 2..100000",
             max_args);
  FPT_ENSURE(min_length >= 0 && max_length <= 10000000 && min_length + 1 < max_length,
             "listops: no length strictly between min_length %d and max_length %d"
             " (or max_length above 10^7)",
             min_length, max_length);
  FPT_ENSURE(longest_tree(1, max_depth, max_args) > min_length,
             "listops: no tree of depth <= %d with <= %d arguments per operator "
             "is longer than min_length %d",
             max_depth, max_args, min_length);
  struct stat sb;
  if (stat(tsv_dir, &sb) != 0) {
    FPT_ENSURE(errno == ENOENT && mkdir(tsv_dir, 0777) == 0, "%s: cannot create directory: %s",
               tsv_dir, strerror(errno));
  } else {
    FPT_ENSURE(S_ISDIR(sb.st_mode), "%s: not a directory", tsv_dir);
  }
  return 0;
}

// Room for total trees: the arena grows on demand, the hash table never
// fills beyond half.
static void set_init(tree_set *S, int64_t total) {
  memset(S, 0, sizeof *S);
  S->cap = (size_t)total * 256;
  S->arena = fpt_malloc(S->cap);
  S->off = fpt_malloc(sizeof(int64_t) * (size_t)total);
  S->len = fpt_malloc(sizeof(int32_t) * (size_t)total);
  size_t tcap = 16;
  while (tcap < (size_t)total * 2)
    tcap *= 2;
  S->mask = tcap - 1;
  S->slot = fpt_malloc(sizeof(int64_t) * tcap);
  S->slot_hash = fpt_malloc(sizeof(uint64_t) * tcap);
  for (size_t i = 0; i < tcap; i++)
    S->slot[i] = -1;
}

// Generate attempts until S holds total distinct trees. Returns 0, or 1
// (message set) when new trees stop turning up.
static int collect_trees(tree_set *S, int64_t total, uint64_t seed, int max_depth, int max_args,
                         int min_length, int max_length) {
  gen g = {0};
  g.tok = fpt_malloc((size_t)max_length);
  g.limit = max_length;
  g.max_depth = max_depth;
  g.max_args = max_args;
  uint64_t attempt = 0, stale = 0;
  int rc = 0;
  while (S->n < total) {
    g.s = (fpt_stream){seed, FPT_SITE_DATA, 0x4C4F0000u ^ (uint32_t)(attempt >> 32),
                       (uint32_t)attempt};
    g.next = 0;
    g.blk = UINT64_MAX;
    g.len = 0;
    attempt++;
    stale++;
    if (grow(&g, 1) == 0 && g.len > min_length && set_add(S, g.tok, g.len))
      stale = 0;
    // Give up when no new tree turned up for far longer than usual.
    if (stale > 1000000 + 100 * (attempt / (uint64_t)(S->n + 1))) {
      fpt_error_set("listops: only %lld distinct trees found of %lld requested "
                    "(depth <= %d, <= %d arguments, %d < length < %d) after %llu "
                    "attempts",
                    (long long)S->n, (long long)total, max_depth, max_args, min_length, max_length,
                    (unsigned long long)attempt);
      rc = 1;
      break;
    }
  }
  free(g.tok);
  return rc;
}

// Write the three splits to temporary files tmp[] beside their final names
// path[] (a reader never sees a half-written split). *written = how many
// temporary files exist. Returns 0 or 1 (message set).
static int write_tmp_splits(const char *tsv_dir, const tree_set *S, const int64_t count[3],
                            int max_length, char path[3][4096], char tmp[3][4096], int *written) {
  int64_t first = 0;
  int rc = 0;
  *written = 0;
  for (int s = 0; s < 3 && rc == 0; s++) {
    char name[64];
    snprintf(name, sizeof name, ".%s.tmp%ld", split_file[s], (long)getpid());
    rc = join_path(path[s], sizeof path[s], tsv_dir, split_file[s]);
    if (rc == 0)
      rc = join_path(tmp[s], sizeof tmp[s], tsv_dir, name);
    if (rc == 0)
      rc = write_split(tmp[s], S, first, count[s], max_length);
    if (rc == 0)
      *written = s + 1;
    first += count[s];
  }
  return rc;
}

int fpt_listops_generate(const char *tsv_dir, uint64_t seed, int64_t n_train, int64_t n_val,
                         int64_t n_test, int max_depth, int max_args, int min_length,
                         int max_length) {
  FPT_TRY(check_generate_args(tsv_dir, n_train, n_val, n_test, max_depth, max_args, min_length,
                              max_length));
  int64_t total = n_train + n_val + n_test;
  tree_set S;
  set_init(&S, total);
  int rc = collect_trees(&S, total, seed, max_depth, max_args, min_length, max_length);
  char path[3][4096], tmp[3][4096];
  int64_t count[3] = {n_train, n_val, n_test};
  int written = 0;
  if (rc == 0)
    rc = write_tmp_splits(tsv_dir, &S, count, max_length, path, tmp, &written);
  set_free(&S);
  for (int s = 0; s < written && rc == 0; s++)
    if (rename(tmp[s], path[s]) != 0) {
      fpt_error_set("%s: cannot rename to %s: %s", tmp[s], path[s], strerror(errno));
      rc = 1;
    }
  if (rc != 0)
    for (int s = 0; s < written; s++)
      remove(tmp[s]); // fails harmlessly for files already renamed
  return rc;
}

// ---------------------------------------------------------------------------
// Loader.

// Trim whitespace and one pair of surrounding double quotes: [*p, *e).
static void trim_field(const char **p, const char **e) {
  while (*p < *e && is_space(**p))
    (*p)++;
  while (*e > *p && is_space((*e)[-1]))
    (*e)--;
  if (*e - *p >= 2 && **p == '"' && (*e)[-1] == '"') {
    (*p)++;
    (*e)--;
  }
}

static int is_blank(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!is_space(p[i]))
      return 0;
  return 1;
}

static int is_header(const char *line, size_t n) {
  const char *tab = memchr(line, '\t', n);
  const char *p = line, *e = tab ? tab : line + n;
  trim_field(&p, &e);
  return e - p == 6 && !memcmp(p, "Source", 6);
}

// Count the records of a file (non-blank lines, less a header).
static int count_records(const char *path, int64_t *n) {
  FILE *f = fopen(path, "rb");
  FPT_ENSURE(f, "%s: cannot open: %s", path, strerror(errno));
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int64_t c = 0;
  int first = 1;
  while ((len = getline(&line, &cap, f)) >= 0) {
    if (is_blank(line, (size_t)len))
      continue;
    if (first && is_header(line, (size_t)len)) {
      first = 0;
      continue;
    }
    first = 0;
    c++;
  }
  int bad = ferror(f);
  free(line);
  fclose(f);
  FPT_ENSURE(!bad, "%s: read error", path);
  FPT_ENSURE(c > 0, "%s: no examples", path);
  *n = c;
  return 0;
}

// Target: an integer 0..9. Returns 0 and *y, or 1 (message set).
static int parse_target(const char *path, long long lineno, const char *tp, const char *te,
                        long long *y_out) {
  long long y = 0;
  const char *q = tp;
  int neg = 0;
  if (q < te && (*q == '+' || *q == '-'))
    neg = *q++ == '-';
  int digits = 0;
  for (; q < te && *q >= '0' && *q <= '9'; q++, digits++)
    if (y < 1000000000LL)
      y = 10 * y + (*q - '0');
  if (digits == 0 || q != te) {
    fpt_error_set("%s:%lld: target '%.*s' is not an integer", path, lineno,
                  (int)(te - tp > 40 ? 40 : te - tp), tp);
    return 1;
  }
  if (neg)
    y = -y;
  if (y < 0 || y > 9) {
    fpt_error_set("%s:%lld: target %lld is outside 0..9", path, lineno, y);
    return 1;
  }
  *y_out = y;
  return 0;
}

// One record, line[0..n) without its line end, into row r of p. Returns 0
// or 1 (message set).
static int load_record(const char *path, long long lineno, const char *line, size_t n, fpt_split *p,
                       int64_t r, int L1, int L2) {
  const char *tab = memchr(line, '\t', n);
  if (!tab) {
    fpt_error_set("%s:%lld: missing tab (expected Source<TAB>Target)", path, lineno);
    return 1;
  }
  const char *sp = line, *se = tab, *tp = tab + 1, *te = line + n;
  if (memchr(tp, '\t', (size_t)(te - tp))) {
    fpt_error_set("%s:%lld: more than two tab-separated columns", path, lineno);
    return 1;
  }
  trim_field(&sp, &se);
  trim_field(&tp, &te);
  long long y = 0;
  if (parse_target(path, lineno, tp, te, &y))
    return 1;
  if (r >= p->n) {
    fpt_error_set("%s:%lld: file changed while being read", path, lineno);
    return 1;
  }
  const char *bad = NULL;
  size_t badlen = 0;
  int n1 = 0, n2 = 0;
  if (tokenize_span(sp, se, p->ids + (size_t)r * L1, L1, p->ids2 + (size_t)r * L2, L2, &n1, &n2,
                    &bad, &badlen)) {
    fpt_error_set("%s:%lld: unknown token '%.*s' in Source", path, lineno,
                  (int)(badlen > 40 ? 40 : badlen), bad);
    return 1;
  }
  if (n2 == 0) {
    fpt_error_set("%s:%lld: empty Source", path, lineno);
    return 1;
  }
  p->y[r] = (int32_t)y;
  return 0;
}

// Parse one file into split p (allocated for exactly its record count).
static int load_file(const char *path, fpt_split *p, int L1, int L2) {
  FILE *f = fopen(path, "rb");
  FPT_ENSURE(f, "%s: cannot open: %s", path, strerror(errno));
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  long long lineno = 0;
  int64_t r = 0;
  int first = 1, rc = 0;
  while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
    lineno++;
    size_t n = (size_t)len;
    if (is_blank(line, n))
      continue;
    if (first && is_header(line, n)) {
      first = 0;
      continue;
    }
    first = 0;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
      n--;
    rc = load_record(path, lineno, line, n, p, r, L1, L2);
    if (rc == 0)
      r++;
  }
  if (rc == 0 && ferror(f)) {
    fpt_error_set("%s: read error", path);
    rc = 1;
  }
  if (rc == 0 && r != p->n) {
    fpt_error_set("%s: file changed while being read", path);
    rc = 1;
  }
  free(line);
  fclose(f);
  return rc;
}

int fpt_listops_load(const char *tsv_dir, int max_len_paper, int max_len_lra, fpt_dataset *d) {
  FPT_ENSURE(tsv_dir && d, "listops: no directory or dataset");
  FPT_ENSURE(max_len_paper > 0 && max_len_lra > 0,
             "listops: maximum lengths must be positive (%d, %d)", max_len_paper, max_len_lra);
  fpt_dataset t;
  memset(&t, 0, sizeof t);
  snprintf(t.task, sizeof t.task, "listops");
  t.seq = max_len_paper;
  t.d_in = 0;
  t.vocab = FPT_LISTOPS_VOCAB;
  t.seq2 = max_len_lra;
  t.vocab2 = FPT_LISTOPS_VOCAB2;
  t.n_classes = 10;
  t.K = 1;
  t.r = 1;
  t.pad_id = FPT_LISTOPS_PAD;
  t.seed = d->seed;
  memcpy(t.generator, d->generator, sizeof t.generator);
  char path[3][4096];
  for (int s = 0; s < 3; s++)
    FPT_TRY(join_path(path[s], sizeof path[s], tsv_dir, split_file[s]));
  int64_t n[3];
  for (int s = 0; s < 3; s++)
    FPT_TRY(count_records(path[s], &n[s]));
  size_t used = 0;
  for (int s = 0; s < 3; s++) {
    int k = snprintf(t.sources + used, sizeof t.sources - used, "%s%s", s ? "; " : "", path[s]);
    if (k < 0 || (size_t)k >= sizeof t.sources - used)
      break; // sources is informative only; keep what fits
    used += (size_t)k;
  }
  for (int s = 0; s < 3; s++) {
    fpt_dataset_alloc(&t, s, n[s]);
    if (load_file(path[s], &t.split[s], max_len_paper, max_len_lra) != 0) {
      fpt_dataset_free(&t);
      return 1;
    }
  }
  *d = t;
  return 0;
}

// ---------------------------------------------------------------------------
// Task table hook (fpt/task_registry.h): read an LRA TSV directory (--input),
// or generate one with LRA's algorithm (96000/2000/2000 by default) and read
// that. Both tokenisations.

int fpt_listops_build(const fpt_task_def *t, const fpt_task_args *a, fpt_dataset *d) {
  const char *dir = a->input;
  char gen[4200];
  if (dir) {
    // The TSV files hold the splits: the generator's options do not apply.
    static const struct {
      unsigned opt;
      const char *flag;
    } gen_only[] = {{FPT_TAKES(N_TRAIN), "--n-train"},
                    {FPT_TAKES(N_VAL), "--n-val"},
                    {FPT_TAKES(N_TEST), "--n-test"},
                    {FPT_TAKES(TSV_DIR), "--tsv-dir"},
                    {FPT_TAKES(SEED), "--seed"}};
    for (size_t k = 0; k < sizeof gen_only / sizeof *gen_only; k++)
      FPT_ENSURE(!(a->given & gen_only[k].opt),
                 "option %s: does not apply to task %s with --input (the TSV files hold the "
                 "splits)",
                 gen_only[k].flag, t->name);
  } else {
    if (a->tsv_dir)
      snprintf(gen, sizeof gen, "%s", a->tsv_dir);
    else
      snprintf(gen, sizeof gen, "%s.tsv.d", a->out);
    FPT_ENSURE(mkdir(gen, 0777) == 0 || errno == EEXIST, "%s: cannot create directory", gen);
    FPT_TRY(fpt_listops_generate(gen, (uint64_t)a->seed, a->n_train, a->n_val, a->n_test, 10, 10,
                                 500, 2000));
    printf("fpt data: generated LRA ListOps TSV files in %s\n", gen);
    dir = gen;
  }
  FPT_TRY(fpt_listops_load(dir, 512, 2000, d));
  // Sources: the directory (file names are LRA's basic_{train,val,test}.tsv).
  snprintf(d->sources, sizeof d->sources, "%.1000s/basic_{train,val,test}.tsv", dir);
  return 0;
}
