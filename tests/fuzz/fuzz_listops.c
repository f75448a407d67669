// libFuzzer target: ListOps TSV files (fpt_listops_load, src/tasks/listops.c),
// as `fpt data listops --input DIR` reads them, and the Source tokeniser and
// evaluator (fpt_listops_tokenize, fpt_listops_eval) on the first file's lines.
//
// Input: one option byte, then up to three files separated by FUZZ_SEP, in the
// order basic_train.tsv, basic_val.tsv, basic_test.tsv (a file whose part is
// absent is not written). Option bit 0: the real lengths (512, 2000); else
// max_len_paper = 1 + (byte >> 1 & 15), max_len_lra = 1 + (byte >> 5) * 4.
#include "fuzz_common.h"

#include "fpt/dataset.h"
#include "fpt/listops.h"

static const char *const names[3] = {"basic_train.tsv", "basic_val.tsv", "basic_test.tsv"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  int opt = data[0];
  fuzz_part parts[3];
  int n = fuzz_split(data + 1, size - 1, parts, 3);
  fuzz_clean_dir();
  for (int i = 0; i < n; i++)
    fuzz_write(names[i], parts[i].p, parts[i].n, NULL, 0);
  int L1 = opt & 1 ? 512 : 1 + (opt >> 1 & 15);
  int L2 = opt & 1 ? 2000 : 1 + (opt >> 5) * 4;

  fpt_dataset d;
  memset(&d, 0, sizeof d);
  int rc = fpt_listops_load(fuzz_tmpdir(), L1, L2, &d);
  if (rc == 0) {
    for (int s = 0; s < 3; s++) {
      const fpt_split *sp = &d.split[s];
      for (int64_t i = 0; i < sp->n * L1; i++)
        if (sp->ids[i] < 0 || sp->ids[i] >= FPT_LISTOPS_VOCAB)
          abort();
      for (int64_t i = 0; i < sp->n * L2; i++)
        if (sp->ids2[i] < 0 || sp->ids2[i] >= FPT_LISTOPS_VOCAB2)
          abort();
      for (int64_t i = 0; i < sp->n; i++)
        if (sp->y[i] < 0 || sp->y[i] > 9)
          abort();
    }
    fpt_dataset_free(&d);
  } else {
    for (int s = 0; s < 3; s++) // on failure d is unchanged
      if (d.split[s].ids || d.split[s].ids2 || d.split[s].y)
        abort();
  }
  fuzz_check_error(rc);

  // The string-level parsers on the Source column (text before the first tab)
  // of the first file's first 16 lines.
  int32_t *ids = calloc((size_t)L1, sizeof *ids), *ids2 = calloc((size_t)L2, sizeof *ids2);
  const uint8_t *p = parts[0].p, *end = parts[0].p + parts[0].n;
  for (int line = 0; line < 16 && p < end; line++) {
    const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
    const uint8_t *e = nl ? nl : end;
    const uint8_t *tab = memchr(p, '\t', (size_t)(e - p));
    char *src = fuzz_cstr(p, (size_t)((tab ? tab : e) - p));
    int n1 = -1, n2 = -1, v = -1;
    rc = fpt_listops_tokenize(src, ids, L1, ids2, L2, &n1, &n2);
    if (rc == 0 && (n1 < 0 || n2 < n1))
      abort(); // ids2 keeps every token ids keeps, plus the closes
    fuzz_check_error(rc);
    rc = fpt_listops_eval(src, &v);
    if (rc == 0 && (v < 0 || v > 9))
      abort();
    fuzz_check_error(rc);
    free(src);
    p = nl ? nl + 1 : end;
  }
  free(ids);
  free(ids2);
  return 0;
}
