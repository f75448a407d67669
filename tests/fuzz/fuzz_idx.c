// libFuzzer target: MNIST / Fashion-MNIST IDX files, raw or gzipped
// (fpt_idx_load, src/tasks/images.c), as `fpt data mnist --input DIR` reads them.
//
// Input: one option byte, then up to four files separated by FUZZ_SEP, in the
// order train-images, train-labels, t10k-images, t10k-labels (a file whose part
// is absent is not written). Option bits: 0 = pad32, 1 = name the files
// "<name>.gz" (the loader's fallback name), 2 = task fashion-mnist.
#include "fuzz_common.h"

#include "fpt/dataset.h"
#include "fpt/images.h"

static const char *const names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  int opt = data[0];
  fuzz_part parts[4];
  int n = fuzz_split(data + 1, size - 1, parts, 4);
  fuzz_clean_dir();
  for (int i = 0; i < n; i++) {
    char name[64];
    snprintf(name, sizeof name, "%s%s", names[i], opt & 2 ? ".gz" : "");
    fuzz_write(name, parts[i].p, parts[i].n, NULL, 0);
  }
  fpt_dataset d;
  int rc = fpt_idx_load(fuzz_tmpdir(), opt & 4 ? "fashion-mnist" : "mnist", opt & 1, &d);
  if (rc == 0) {
    // Every value is a pixel / 255 (or 0 padding), every label 0..9.
    for (int s = 0; s < 3; s++) {
      const fpt_split *sp = &d.split[s];
      for (int64_t i = 0; i < sp->n * d.seq * d.d_in; i++)
        if (!(sp->x[i] >= 0.0f && sp->x[i] <= 1.0f))
          abort();
      for (int64_t i = 0; i < sp->n; i++)
        if (sp->y[i] < 0 || sp->y[i] > 9)
          abort();
    }
  } else {
    // On error d holds no allocations.
    for (int s = 0; s < 3; s++)
      if (d.split[s].x || d.split[s].y)
        abort();
  }
  fpt_dataset_free(&d);
  fuzz_check_error(rc);
  return 0;
}
