// The backbone seam: everything that differs between a GPT-2-style
// transformer (causal or bidirectional) and the paper's layer-normalised LSTM
// sits behind this table of functions. The model (fpt/model.h) owns the
// tensor storage, the input layer, the readout and the output layer; the
// pipeline executor, the checkpoint code and the commands see only layers,
// their outputs, and the names of tensors.
//
// Adding a backbone kind: one file in src/model/ that fills a fpt_backbone,
// and one row in the table of src/model/backbone.c.
#ifndef FPT_BACKBONE_H
#define FPT_BACKBONE_H

#include <stddef.h>
#include <stdint.h>

struct fpt_model;
struct fpt_acts;
struct fpt_batch;
struct fpt_pass;
struct fpt_backbone_cfg;
struct fpt_tensor;

// A root attribute of the model file, read and written by src/io/model_file.c
// for the kind that declares it: an int or float field of fpt_backbone_cfg, or
// a string that must be one of `choices` (the field gets its index).
enum { FPT_ATTR_INT, FPT_ATTR_FLOAT, FPT_ATTR_CHOICE };
typedef struct {
  const char *name;
  int type;
  size_t offset; // of the field in fpt_backbone_cfg
  int required;  // 0: `def` when absent (files older than the attribute)
  double def;    // default (CHOICE: index)
  double lo, hi; // valid range (INT, FLOAT)
  const char *const *choices;
} fpt_attr_spec;

// Where a tensor of the table belongs: before the first layer (owned by the
// first pipeline stage), in layer l, or after the last layer (last stage).
enum { FPT_AT_PRE = -1, FPT_AT_POST = -2 };
typedef void (*fpt_tensor_fn)(void *ctx, int group, const char *name, int d0, int d1);

typedef struct fpt_backbone {
  const char *kind;
  const fpt_attr_spec *attrs;
  int n_attrs;
  // Consistency of a configuration (and with the task): one message naming the attribute.
  int (*check)(const struct fpt_backbone_cfg *c, const char *file);
  // The tensors at `where` (FPT_AT_PRE, a layer, FPT_AT_POST), in a fixed order.
  void (*tensors)(const struct fpt_backbone_cfg *c, int where, fpt_tensor_fn add, void *ctx);
  // After storage is carved: find the layers' tensors (m->bbw), and free that.
  void (*bind)(struct fpt_model *m);
  void (*unbind)(struct fpt_model *m);
  // Output rows per sample of layer l (T, or fewer for a readout-only last layer).
  int (*layer_rows)(const struct fpt_model *m, int l);
  // Activations of layer l for up to B samples, and its (B, rows, C) output.
  void *(*layer_acts)(const struct fpt_model *m, int l, int B);
  void (*layer_acts_free)(void *la);
  float *(*layer_out)(void *la);
  // Backward scratch shared by the layers of a part (and the final stage).
  void *(*scratch)(const struct fpt_model *m, int B);
  void (*scratch_free)(void *s);
  // Stage 0, after the input layer: a->h0 (B,T,C) in place (positions, dropout).
  void (*embed_forward)(const struct fpt_model *m, struct fpt_acts *a, const struct fpt_batch *b,
                        const struct fpt_pass *p);
  // Its backward, in place on a->dres; then the input layer's backward runs.
  void (*embed_backward)(const struct fpt_model *m, struct fpt_acts *a, const struct fpt_batch *b,
                         const struct fpt_pass *p);
  // Layer l on input `in` (B,T,C). Backward: a->dres holds d(output) on entry
  // and, if need_dinput, d(in) (B,T,C) on exit; parameter gradients accumulate.
  void (*layer_forward)(const struct fpt_model *m, struct fpt_acts *a, int l, const float *in,
                        const struct fpt_batch *b, const struct fpt_pass *p);
  void (*layer_backward)(const struct fpt_model *m, struct fpt_acts *a, int l, const float *in,
                         const struct fpt_batch *b, const struct fpt_pass *p, int need_dinput);
  // The last stage: rows (n of C) of the last layer's output -> the backbone's
  // output (last_hidden_state); backward from d(output) into a->dres (n rows).
  void *(*final_acts)(const struct fpt_model *m, int rows);
  void (*final_acts_free)(void *fa);
  const float *(*final_forward)(const struct fpt_model *m, void *fa, const float *h, int n);
  void (*final_backward)(const struct fpt_model *m, void *fa, const float *h, const float *dout,
                         float *dh, int n);
  // A backbone tensor of the model file drawn at random (the kind's default init).
  void (*init_tensor)(const struct fpt_model *m, struct fpt_tensor *t, uint64_t seed);
  // Make (bf16 != 0, from the current values) or drop the bf16 copies of the
  // frozen matrices of the part's layers (fpt_model_set_frozen_dtype); sets
  // m->bf16_bytes and m->n_bf16. NULL: the kind runs in fp32 only.
  int (*frozen_bf16)(struct fpt_model *m, int bf16);
  // Attention probabilities of layer l's activations ((B, NH, rows, T)), or
  // NULL (no attention: fpt attention refuses the kind).
  const float *(*attention)(const void *la);
} fpt_backbone;

// The kind's table, or NULL.
const fpt_backbone *fpt_backbone_find(const char *kind);
// "gpt2, lstm" for messages.
const char *fpt_backbone_kinds(void);

#endif
