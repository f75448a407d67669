// libFuzzer target: CIFAR-10 binary batches (fpt_cifar_load, src/tasks/images.c),
// as `fpt data cifar10|cifar10-lra --input DIR` reads them.
//
// Input: one option byte, then up to six files separated by FUZZ_SEP, in the
// order data_batch_1.bin .. data_batch_5.bin, test_batch.bin (a file whose part
// is absent is not written). Option bit 0: the grey LRA variant.
#include "fuzz_common.h"

#include <math.h>

#include "fpt/dataset.h"
#include "fpt/images.h"

static const char *const names[6] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                     "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  int lra = data[0] & 1;
  fuzz_part parts[6];
  int n = fuzz_split(data + 1, size - 1, parts, 6);
  fuzz_clean_dir();
  for (int i = 0; i < n; i++)
    fuzz_write(names[i], parts[i].p, parts[i].n, NULL, 0);
  fpt_dataset d;
  int rc = fpt_cifar_load(fuzz_tmpdir(), lra, &d);
  if (rc == 0) {
    for (int s = 0; s < 3; s++) {
      const fpt_split *sp = &d.split[s];
      for (int64_t i = 0; i < sp->n * d.seq * d.d_in; i++)
        if (!isfinite(sp->x[i]) || fabsf(sp->x[i]) > 3.0f)
          abort();
      for (int64_t i = 0; i < sp->n; i++)
        if (sp->y[i] < 0 || sp->y[i] > 9)
          abort();
    }
  } else {
    for (int s = 0; s < 3; s++)
      if (d.split[s].x || d.split[s].y)
        abort();
  }
  fpt_dataset_free(&d);
  fuzz_check_error(rc);
  return 0;
}
