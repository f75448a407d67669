// libFuzzer target: the `text` input of `fpt data text --input A,B,...`
// (fpt_text_load, src/tasks/text.c): raw bytes cut into next-byte windows.
//
// Input: one option byte, then up to three files separated by FUZZ_SEP.
// Option byte: seq = byte & 63 (0 and 1 are refused by the loader); bits 6
// and 7 both set = repeat the first file to 3.4 MB, enough for a val and a
// test block, so that the window-cutting path runs too (slow: 1 input in 4).
#include "fuzz_common.h"

#include "fpt/dataset.h"
#include "fpt/text.h"

static const char *const names[3] = {"a.txt", "b.txt", "c.txt"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  int opt = data[0];
  fuzz_part parts[3];
  int n = fuzz_split(data + 1, size - 1, parts, 3);
  char paths[3][1024];
  const char *pp[3];
  fuzz_clean_dir();
  uint8_t *big = NULL;
  for (int i = 0; i < n; i++) {
    const uint8_t *p = parts[i].p;
    size_t len = parts[i].n;
    if (i == 0 && (opt & 0xC0) == 0xC0 && len > 0) {
      size_t want = (size_t)FPT_TEXT_BLOCK * FPT_TEXT_BLOCKS + 100000, have = len;
      big = malloc(want);
      if (!big)
        abort();
      memcpy(big, p, len < want ? len : want);
      for (; have < want; have *= 2) // doubling copies: no per-byte loop
        memcpy(big + have, big, have < want - have ? have : want - have);
      p = big;
      len = want;
    }
    fuzz_write(names[i], p, len, paths[i], sizeof paths[i]);
    pp[i] = paths[i];
  }
  free(big);
  int seq = opt & 63;
  fpt_dataset d;
  memset(&d, 0, sizeof d);
  int rc = fpt_text_load(pp, n, seq, &d);
  if (rc == 0) {
    for (int s = 0; s < 3; s++) {
      const fpt_split *sp = &d.split[s];
      if (sp->n < 1)
        abort();
      // A sample's targets are its inputs shifted by one (checked on the first few).
      for (int64_t i = 0; i < sp->n && i < 64; i++)
        for (int t = 0; t + 1 < seq; t++)
          if (sp->y[i * seq + t] != sp->ids[i * seq + t + 1])
            abort();
    }
  }
  // As cmd_data.c does: the caller frees the dataset whatever the result.
  fpt_dataset_free(&d);
  fuzz_check_error(rc);
  return 0;
}
