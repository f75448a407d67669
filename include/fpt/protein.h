// Protein sequences: TAPE's IUPAC token vocabulary, encoding a sequence as
// <cls> residues <sep> <pad>..., a Stockholm alignment reader, and the "pfam"
// task built from Stockholm files (one Pfam family per file).
//
// Vocabulary (30 ids, exactly tape.tokenizers.IUPAC_VOCAB of songlab-cal/tape,
// as FPT's remote-homology task uses it; written once more in Python in
// data/tape_homology_to_h5.py, and tests/cli/test_proteins.sh checks the two
// tables agree):
//    0 <pad>   1 <mask>  2 <cls>   3 <sep>   4 <unk>
//    5 A   6 B   7 C   8 D   9 E  10 F  11 G  12 H  13 I  14 K  15 L  16 M
//   17 N  18 O  19 P  20 Q  21 R  22 S  23 T  24 U  25 V  26 W  27 X  28 Y  29 Z
// i.e. the 25 letters A-Z without J, in alphabetical order, after the five
// special tokens. Like TAPE's tokenizer, a letter outside the table (J, '*',
// a digit, a lowercase letter) is an error, never silently mapped to <unk>;
// the rare and ambiguous codes B, O, U, X, Z have their own ids.
#ifndef FPT_PROTEIN_H
#define FPT_PROTEIN_H

#include <stdint.h>

#include "fpt/dataset.h"

#define FPT_PROTEIN_VOCAB 30
enum {
  FPT_PROT_PAD = 0,
  FPT_PROT_MASK = 1,
  FPT_PROT_CLS = 2,
  FPT_PROT_SEP = 3,
  FPT_PROT_UNK = 4,
};
// Token strings by id (fpt_protein_vocab[5] = "A", ...).
extern const char *const fpt_protein_vocab[FPT_PROTEIN_VOCAB];

// Id of one residue letter (uppercase only, as TAPE), or -1 if it has none.
int fpt_protein_token_id(int c);

// Encode `seq` (uppercase residue letters, NUL-terminated) into exactly
// max_len ids: <cls>, the residues, <sep>, then <pad> = 0 up to max_len.
// A sequence longer than max_len - 2 residues is truncated to its first
// max_len - 2 residues and still ends with <sep>. max_len must be >= 2.
// An unknown letter is an error naming `file`, `record` and the position.
int fpt_protein_encode(const char *seq, int32_t *ids, int max_len, const char *file, long record);

// One Stockholm 1.0 alignment, as read from one file.
typedef struct {
  char id[64];  // #=GF ID, else the file name without directory and .sto[.gz]
  int n;        // sequences
  char **names; // n names, in order of first appearance
  char **seqs;  // n residue strings: gaps removed, uppercased
  long *lines;  // n line numbers where each sequence first appears
} fpt_stockholm;

// Read one Stockholm file (plain or gzip-compressed; zlib detects which).
// Rules: the first non-blank line is "# STOCKHOLM 1.0"; '#' lines are
// annotation or comments (only "#=GF ID" is used); a sequence line is
// "name residues" with the name in column 1; blank lines separate blocks and
// a name met again in a later block continues its sequence; "//" ends the
// alignment and only blank lines may follow (one alignment per file).
// Residues: the gap symbols '-' '.' '_' '~' are dropped, letters are
// uppercased (Pfam writes insert columns in lowercase), and every letter must
// be in the vocabulary. Errors name the file and line: no header, no "//",
// a sequence line without a name or without residues, an unknown letter, a
// name twice in one block, unequal aligned lengths, no sequences, a second
// alignment, unreadable or corrupt gzip data. On error *a holds nothing.
int fpt_stockholm_read(const char *path, fpt_stockholm *a);
void fpt_stockholm_free(fpt_stockholm *a);

// The "pfam" task: file i is family i (label y = i, in the order given; its
// name is the file's #=GF ID, and two files of one name are an error). Every
// sequence is encoded as by fpt_protein_encode with max_len. Split,
// stratified per family, seeded: a family of n >= 3 sequences gives
// k = max(1, round(0.15 n)) to val, k to test and the remaining n - 2k (about
// 70%) to train; n <= 2 goes to train entirely. Which sequences go where is a
// seeded Fisher-Yates shuffle per family (Philox stream: key seed, site
// FPT_SITE_DATA, a = 0x9FA3, b = family), and each split is then shuffled as
// a whole (a = 0x9FA4, b = split) so that families are interleaved. The
// result is a pure function of the file contents, their order, seed and
// max_len.
// d is overwritten (pass a zeroed or freed struct): task "pfam", seq =
// max_len, d_in 0, vocab 30, n_classes = n_paths, K = 1, r = 1, pad_id 0,
// sources = the paths ("; "-separated); split[s].index[j] = the sample's
// position (0-based, order of first appearance) among its family's sequences,
// so (y, index) names its source. On error d holds no allocations.
int fpt_pfam_load(const char *const *paths, int n_paths, uint64_t seed, int max_len,
                  fpt_dataset *d);

// The protein Stockholm files of Debian's hmmer-examples package that exist on
// this machine, in this order (label order): tutorial/Pkinase, tutorial/fn3,
// tutorial/globins4, testsuite/RRM_1, testsuite/SMC_N, testsuite/LuxC,
// testsuite/Patched, testsuite/Caudal_act, testsuite/XYPPX (each as .sto or
// .sto.gz). Debian 12 ships all nine: 287 sequences (38, 98, 4, 79, 29, 13,
// 10, 9, 7; residues 5 to 1271, the longest, in SMC_N, being truncated at
// max_len 1024). The other .sto files there are left out on purpose: DNA
// alignments (MADE1, 3box, PSE, ecori) and synthetic test fixtures (20aa,
// 20aa-alitest, M1). The directory is FPT_HMMER_EXAMPLES_DIR unless the
// environment variable FPT_HMMER_EXAMPLES names another. It is an error if
// none is found. Free the list with fpt_pfam_free_paths.
#define FPT_HMMER_EXAMPLES_DIR "/usr/share/doc/hmmer/examples"
int fpt_pfam_default_paths(char ***paths, int *n);
void fpt_pfam_free_paths(char **paths, int n);

#endif
