// libFuzzer target: Stockholm alignments, plain or gzipped (fpt_stockholm_read
// and the pfam task built from them, fpt_pfam_load, src/tasks/pfam.c), as
// `fpt data pfam --input A.sto,B.sto.gz` reads them.
//
// Input: one option byte, then up to three files separated by FUZZ_SEP
// (fam0.sto, fam1.sto, fam2.sto.gz; zlib reads plain text through a .gz name
// as well). Option byte: max_len = 2 + (byte & 63); bit 6 = seed 1 instead of 0.
// Each file is read alone, then all of them as one pfam dataset.
#include "fuzz_common.h"

#include "fpt/dataset.h"
#include "fpt/protein.h"

static const char *const names[3] = {"fam0.sto", "fam1.sto", "fam2.sto.gz"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  int opt = data[0];
  fuzz_part parts[3];
  int n = fuzz_split(data + 1, size - 1, parts, 3);
  char paths[3][1024];
  const char *pp[3];
  fuzz_clean_dir();
  for (int i = 0; i < n; i++) {
    fuzz_write(names[i], parts[i].p, parts[i].n, paths[i], sizeof paths[i]);
    pp[i] = paths[i];
  }
  for (int i = 0; i < n; i++) {
    fpt_stockholm a;
    int rc = fpt_stockholm_read(pp[i], &a);
    if (rc == 0) {
      if (a.n < 1 || !a.id[0])
        abort();
      for (int k = 0; k < a.n; k++)
        for (const char *c = a.seqs[k]; *c; c++)
          if (fpt_protein_token_id((unsigned char)*c) < 0)
            abort(); // the reader promised vocabulary letters only
    } else if (a.n || a.names || a.seqs || a.lines) {
      abort(); // on error *a holds nothing
    }
    fpt_stockholm_free(&a);
    fuzz_check_error(rc);
  }
  fpt_dataset d;
  int max_len = 2 + (opt & 63);
  int rc = fpt_pfam_load(pp, n, (uint64_t)((opt >> 6) & 1), max_len, &d);
  if (rc == 0) {
    for (int s = 0; s < 3; s++)
      for (int64_t i = 0; i < d.split[s].n * max_len; i++)
        if (d.split[s].ids[i] < 0 || d.split[s].ids[i] >= FPT_PROTEIN_VOCAB)
          abort();
  }
  fpt_dataset_free(&d);
  fuzz_check_error(rc);
  return 0;
}
