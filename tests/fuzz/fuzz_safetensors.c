// libFuzzer target: Hugging Face safetensors files and the config.json beside
// them (fpt_import_safetensors_heads, src/io/safetensors.c), as `fpt import
// model.safetensors -o M.h5 [--heads N]` reads them. A file that passes every
// check is converted into an HDF5 model file in the scratch directory, which
// is then read back with the model-file reader.
//
// Input: one option byte, then model.safetensors, then (after FUZZ_SEP, if
// present) config.json. Option byte: --heads = byte & 7 (0: none).
#include "fuzz_common.h"

#include "fpt/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  int heads = data[0] & 7;
  fuzz_part parts[2];
  int n = fuzz_split(data + 1, size - 1, parts, 2);
  char in[1024], out[1024];
  fuzz_clean_dir();
  fuzz_write("model.safetensors", parts[0].p, parts[0].n, in, sizeof in);
  if (n > 1)
    fuzz_write("config.json", parts[1].p, parts[1].n, NULL, 0);
  fuzz_path(out, sizeof out, "model.h5");
  int rc = fpt_import_safetensors_heads(in, out, heads);
  if (rc == 0) {
    fpt_backbone_cfg cfg;
    if (fpt_model_file_config(out, &cfg) != 0) {
      fprintf(stderr, "fuzz: the imported model is unreadable: %s\n", fpt_error_get());
      abort();
    }
  } else if (access(out, F_OK) == 0) {
    abort(); // a failed import leaves no output
  }
  fuzz_check_error(rc);
  return 0;
}
