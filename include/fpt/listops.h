// ListOps (Long Range Arena, Tay et al. 2020) as used by FPT (Lu et al. 2021).
//
// Generator: google-research/long-range-arena lra_benchmarks/data/listops.py
// re-implemented on the counter-based RNG (see docs in src/tasks/listops.c):
// operators MIN, MAX, MED (median), SM (sum mod 10) over digits 0..9, written
// "[MIN" ... "]"; a node at depth < max_depth is an operator with probability
// 0.25 (a leaf otherwise), depth = max_depth forces a leaf; an operator takes
// 2..max_args arguments. A tree is kept iff min_length < length < max_length
// (length = digits + operators + closing brackets) and it is new; the first
// n_train distinct trees in generation order are train, the next n_val val,
// the last n_test test. Files: LRA's TSV (header "Source\tTarget"), every
// node (op, arg1, ..., argk) serialised as k+1 nested pairs "( a b )":
// MAX(2, 9) is "( ( ( [MAX 2 ) 9 ) ] )".
//
// Loader: two tokenisations of each Source.
//   ids  (seq = 512, vocab 15): the Oct-2020 LRA pipeline that FPT's code
//        copied: tfds Tokenizer (drops every non-alphanumeric character, so
//        "(", ")" and "]" vanish and "[MAX" becomes "MAX"), truncated to the
//        first 512 tokens, right-padded with 0.
//        0 pad, 1 MAX, 2 MIN, 3 MED, 4 SM, 5..14 digits 0..9.
//        (The original id order came from a Python set and varied with the
//        hash seed; this is the order the FPT reference lists.)
//   ids2 (seq2 = 2000, vocab2 16): current LRA (commits ad0ff01/c209b2a):
//        "]" renamed "X", parentheses removed, whitespace tokens, max 2000,
//        right-padded with 0. Same ids for the shared tokens plus the close:
//        0 pad, 1 [MAX, 2 [MIN, 3 [MED, 4 [SM, 5..14 digits 0..9, 15 X (= "]").
//        So ids2 with every 15 removed (and cut to 512) equals ids.
#ifndef FPT_LISTOPS_H
#define FPT_LISTOPS_H

#include <stdint.h>

#include "fpt/dataset.h"

enum {
  FPT_LISTOPS_PAD = 0,
  FPT_LISTOPS_MAX = 1,
  FPT_LISTOPS_MIN = 2,
  FPT_LISTOPS_MED = 3,
  FPT_LISTOPS_SM = 4,
  FPT_LISTOPS_DIGIT0 = 5,  // digit d has id 5 + d (both schemes)
  FPT_LISTOPS_CLOSE = 15,  // "]" (LRA's "X"), ids2 only
  FPT_LISTOPS_VOCAB = 15,  // ids in [0, 15)
  FPT_LISTOPS_VOCAB2 = 16, // ids2 in [0, 16)
};

// Generate LRA ListOps and write basic_train.tsv, basic_val.tsv and
// basic_test.tsv into tsv_dir (created if missing; each file written to a
// temporary name and renamed, all three only once everything is generated).
// Deterministic in seed. LRA defaults: 96000, 2000, 2000, depth 10, args 10,
// lengths 500 and 2000. Fails (instead of looping forever) when no new
// distinct tree turns up for a long stretch, e.g. more examples requested
// than the bounds allow.
int fpt_listops_generate(const char *tsv_dir, uint64_t seed, int64_t n_train, int64_t n_val,
                         int64_t n_test, int max_depth, int max_args, int min_length,
                         int max_length);

// Read tsv_dir/basic_{train,val,test}.tsv (generator output or the LRA
// release: optional header, Source optionally in double quotes, LF or CRLF,
// blank lines skipped) into d: task "listops", seq = max_len_paper (512),
// vocab 15, seq2 = max_len_lra (2000), vocab2 16, n_classes 10, K 1, r 1,
// pad_id 0, y = Target, sources = the three paths. d->seed and d->generator
// are left as the caller set them; every other field is overwritten (d must
// hold no allocated splits). On failure d is unchanged and the error names
// the file and line.
int fpt_listops_load(const char *tsv_dir, int max_len_paper, int max_len_lra, fpt_dataset *d);

// Tokenise one Source string in both schemes. ids (max_len_paper entries)
// and ids2 (max_len_lra entries) are truncated and right-padded with 0; either
// may be NULL. *n_paper / *n_lra (may be NULL) receive the token counts before
// truncation. Fails on a token other than ( ) ] [MAX [MIN [MED [SM 0..9.
int fpt_listops_tokenize(const char *source, int32_t *ids, int max_len_paper, int32_t *ids2,
                         int max_len_lra, int *n_paper, int *n_lra);

// Value of an expression in the TSV syntax ("(" and ")" are ignored; "]" or
// "X" closes an operator). Fails on an unknown token, an operator without
// arguments, an unclosed operator or more than one top-level value.
int fpt_listops_eval(const char *source, int *value);

#endif
