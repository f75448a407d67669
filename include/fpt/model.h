// The FPT model: input layer -> backbone (fpt/backbone.h: GPT-2, encoder,
// LSTM) -> readout -> output layer. Pure math on plain arrays (no MPI, no
// HDF5). A caller may run any contiguous range of layers, so that a pipeline
// stage can own some of them.
#ifndef FPT_MODEL_H
#define FPT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "fpt/backbone.h"
#include "fpt/kernels.h"

enum { FPT_ACT_GELU_NEW, FPT_ACT_GELU }; // gelu_new: GPT-2's tanh form; gelu: exact (erf)

// The backbone as its model file describes it (root attributes; the kind's
// table in fpt/backbone.h says which it has and their defaults).
typedef struct fpt_backbone_cfg {
  char kind[16];           // "gpt2" (causal or bidirectional transformers), "lstm"
  int n_layer, n_embd;     // layers, width C
  int n_head, n_positions; // transformers
  float ln_eps;            // layer_norm_epsilon
  int causal;     // transformers: 1 = GPT-2's causal mask, 0 = every position sees every position
  int activation; // transformers: FPT_ACT_*
  int residual;   // lstm: a layer's output is its input + h
} fpt_backbone_cfg;

// Readout of the backbone's output that the output layer sees.
enum {
  FPT_READOUT_LAST,      // the last r positions (the paper's; padding included)
  FPT_READOUT_LAST_REAL, // r = 1: the last real (non-pad) position of each sample
  FPT_READOUT_MEAN,      // r = 1: the mean over the real positions
};

// What the task feeds in and reads out.
typedef struct {
  int d_in;    // continuous token width (0 for discrete tokens)
  int vocab;   // discrete vocabulary (0 for continuous tokens)
  int seq;     // T, tokens per sample
  int r;       // readout: the last r positions
  int n_out;   // output-layer width per readout position
  int n_cls;   // classes per target; K = r * n_out / n_cls targets per sample
  int tied;    // language model: the input is GPT-2's token table "wte/weight"
               // (vocab, C) and the logits are ln_f(h) . wte^T (no output layer)
  int readout; // FPT_READOUT_*
} fpt_task_shape;

// Parameter groups, for the freeze flags. OTHER: backbone tensors of no
// other group (the LSTM's i2h and h2h), trainable only with `full`, as the
// paper's freeze_trans leaves them.
enum { FPT_G_IN, FPT_G_OUT, FPT_G_LN, FPT_G_POS, FPT_G_ATTN, FPT_G_FF, FPT_G_OTHER, FPT_G_N };
extern const char *const fpt_group_names[FPT_G_N];

typedef struct {
  int frozen[FPT_G_N]; // 1 = frozen
  int full;            // every backbone tensor trainable (overrides ln/pos/attn/ff)
} fpt_freeze;
// The paper's default: in, out, LN and positions trainable; attn and MLP frozen.
fpt_freeze fpt_freeze_default(void);
int fpt_group_trainable(const fpt_freeze *f, int group);

typedef struct fpt_tensor {
  char name[48];    // model-file name, e.g. "h/3/attn/c_attn/weight", "in/weight"
  int uid;          // index in the whole model's table: stable across stages (init streams)
  int group, layer; // layer, or FPT_AT_PRE / FPT_AT_POST (before / after the layers)
  int ndim;
  int shape[2];
  size_t numel;
  int trainable;
  float *data; // into the model's frozen or trainable buffer
  float *grad; // NULL if frozen
} fpt_tensor;

// A parameter and its gradient (NULL when frozen).
typedef struct {
  float *w, *g;
} fpt_param;

// The part of the model one pipeline stage owns: layers [l0, l1), the input
// layer and the backbone's pre-layer tensors (stage 0: positions), and the
// backbone's post-layer tensors and the output layer (last stage: ln_f, out).
typedef struct {
  int l0, l1, has_input, has_head;
} fpt_part;

// How the frozen matrices of the backbone's layers are held and multiplied:
// fp32 (the default), or (issue 14 §5) also packed once in bf16, the forward
// and input-gradient GEMMs then taking bf16 inputs with fp32 accumulation
// (fpt/gemm_bf16.h). Activations, trainable tensors, gradients and Adam stay
// fp32; a trainable matrix never has a bf16 copy.
enum { FPT_FROZEN_FP32, FPT_FROZEN_BF16 };

typedef struct fpt_model {
  fpt_backbone_cfg cfg;
  const fpt_backbone *bb; // the kind's functions
  fpt_task_shape task;
  fpt_freeze freeze;
  fpt_part part;
  float dropout;    // 0.1 in training; eval passes run without it
  int random_state; // LSTM: h0, c0 ~ N(0, sqrt(2/(2C))) on every pass (the paper's code); 0: zeros
  int K;            // targets per sample
  int grad_floor;   // lowest layer whose backward is needed (n_layer: none)
  int input_trains; // a tensor before the first layer (input layer, positions) trains

  int n_tensors;
  fpt_tensor *tensors;
  fpt_param in_w, in_b, out_w, out_b; // the wrapper (in_w: wte when tied)
  void *bbw;                          // the backbone's view of its tensors

  // All frozen tensors in one allocation; all trainable ones in another,
  // so that gradients all-reduce and Adam run on one flat buffer.
  float *frozen_mem, *train_mem, *grad_mem, *adam_m, *adam_v;
  size_t n_frozen, n_train;
  int frozen_external; // frozen_mem belongs to the caller
  int frozen_readonly; // another process fills the (shared) frozen tensors: skip them
  int frozen_dtype;    // FPT_FROZEN_*, set by fpt_model_set_frozen_dtype
  size_t bf16_bytes;   // bytes of the bf16 copies (the backbone's, of this part)
  int n_bf16;          // matrices with a bf16 copy
  int64_t adam_t;
} fpt_model;

// Build the tensor table and allocate (parameters zeroed): the whole model.
int fpt_model_create(fpt_model *m, const fpt_backbone_cfg *cfg, const fpt_task_shape *task,
                     const fpt_freeze *fr);
// Only what one pipeline stage owns. Unowned tensors have no storage and are
// absent from the table. frozen_ext, if not NULL, is storage for the frozen
// tensors (e.g. an MPI shared-memory window; size from fpt_model_frozen_size).
int fpt_model_create_part(fpt_model *m, const fpt_backbone_cfg *cfg, const fpt_task_shape *task,
                          const fpt_freeze *fr, const fpt_part *part, float *frozen_ext);
// Only the table (names, shapes, groups, trainable; no storage) of a part:
// lets every rank know every stage's tensors. Free *tensors with free().
int fpt_model_table(const fpt_backbone_cfg *cfg, const fpt_task_shape *task, const fpt_freeze *fr,
                    const fpt_part *part, fpt_tensor **tensors, int *n);
// Floats of frozen storage a part needs (from the table alone); 0 on a bad shape.
size_t fpt_model_frozen_size(const fpt_backbone_cfg *cfg, const fpt_task_shape *task,
                             const fpt_freeze *fr, const fpt_part *part);
// Batches must carry each sample's real length: a bidirectional transformer
// masks pad keys, and the last-real and mean readouts read by length.
int fpt_model_needs_lengths(const fpt_backbone_cfg *cfg, const fpt_task_shape *task);
// The configuration and the task fit the backbone kind (one message on error).
int fpt_model_check(const fpt_backbone_cfg *cfg, const fpt_task_shape *task);
void fpt_model_free(fpt_model *m);
// Hold the frozen matrices of the part's layers as `dtype` (FPT_FROZEN_*):
// bf16 packs each from its current fp32 values (the forward layout; the
// input-gradient one too for layers >= grad_floor); fp32 drops the copies.
// Call it again after anything writes a frozen tensor (a load): a copy is
// never stale. Fails (one message) on a CPU without AVX512_BF16 or for a
// backbone kind without a bf16 path.
int fpt_model_set_frozen_dtype(fpt_model *m, int dtype);
fpt_tensor *fpt_model_find(fpt_model *m, const char *name);
int fpt_is_backbone(const fpt_tensor *t);

// Initialisation (all deterministic in seed).
// Backbone at random, the kind's default (GPT-2: Hugging Face's N(0,0.02)
// weights, zero biases, LN 1/0; LSTM: the paper's U(+-1/sqrt(fan))).
void fpt_init_backbone_random(fpt_model *m, uint64_t seed);
// Each backbone tensor ~ N(mean, std) of the same tensor of `like`.
void fpt_init_backbone_like(fpt_model *m, const fpt_model *like, uint64_t seed);
// Input layer (orthogonal * gain, zero bias; or N(0,1) embedding) and output
// layer (PyTorch Linear default, U(+-1/sqrt(fan_in))).
int fpt_init_wrapper(fpt_model *m, uint64_t seed, float orth_gain);
// Fill w (rows x cols, row-major) with gain * a (semi-)orthogonal matrix built by LAPACK QR.
int fpt_orthogonal(float *w, int rows, int cols, float gain, uint64_t seed, uint32_t tensor_id);

// A batch as one rank sees it.
typedef struct fpt_batch {
  int B;                 // local samples
  const float *x;        // (B,T,d_in) continuous, else NULL
  const int32_t *ids;    // (B,T) discrete, else NULL
  const int32_t *y;      // (B,K)
  const int64_t *sample; // (B) global sample indices (for dropout)
  const int32_t *len;    // (B) real positions 1..T of right-padded samples, or NULL (all T)
} fpt_batch;

// Activations for up to B samples over layers [l0, l1).
typedef struct fpt_acts {
  const struct fpt_model *m;
  int B, l0, l1;
  int has_input, has_head;
  float *h0;               // (B,T,C) input of layer 0 (stage 0)
  float *xin;              // (B,T,C) input layer output before dropout (scratch)
  void **layer;            // l - l0: the backbone's activations of layer l
  void *scratch;           // the backbone's backward scratch
  void *fin;               // last stage: the backbone's final stage (ln_f)
  const float *hid;        // last stage: its output, (B, rows of the last layer, C)
  float *feat;             // (B, r, C) readout features: what the output layer sees
  float *logits, *dlogits; // (B, r*n_out)
  float *dfeat, *dhid;     // head backward
  float *dres, *dres2;     // (B,T,C) gradient of a layer's output, then of its input
} fpt_acts;

int fpt_acts_create(fpt_acts *a, const fpt_model *m, int B, int l0, int l1, int has_input,
                    int has_head);
void fpt_acts_free(fpt_acts *a);

// Output rows per sample of layer l: T, except the model's last layer when it
// only needs the r readout positions (transformers, readout "last").
int fpt_layer_rows(const fpt_model *m, int l);
// Layer l's output (B, rows, C) in a's activations; what a stage sends on.
float *fpt_layer_output(const fpt_acts *a, int l);
// Floats crossing the boundary after a stage that ends before the last layer.
size_t fpt_stage_floats(const fpt_model *m, int B);

// GPT-2 layers of this many tokens or more run fused attention (no stored
// maps); tools that read the maps (fpt attention) raise it.
extern int fpt_gpt2_flash_min_seq;

// Per-call context: training or not, and the dropout key.
typedef struct fpt_pass {
  int train;
  uint64_t seed;
  uint32_t step;
} fpt_pass;

// Stage pieces. Layer l's input is a->h0 for l == 0, else the previous
// layer's output (or `h_in` supplied by the caller for the first layer of a stage).
void fpt_input_forward(const fpt_model *m, fpt_acts *a, const fpt_batch *b, const fpt_pass *p);
void fpt_layer_forward(const fpt_model *m, fpt_acts *a, int l, const float *h_in,
                       const fpt_batch *b, const fpt_pass *p);
// Head: the backbone's final stage (ln_f), readout, output layer, loss.
// Returns the summed loss over the B*K targets; *correct gets the hits. With
// dscale != 0 it also runs the head backward (gradients scaled by dscale,
// typically 1/global targets), leaving d(last layer output) in a->dres.
double fpt_head_forward_backward(const fpt_model *m, fpt_acts *a, const float *h_last,
                                 const fpt_batch *b, float dscale, int64_t *correct);
// Backward through layer l: on entry a->dres holds d(output) (B,rows,C); on
// exit, if need_dinput, d(input) (B,T,C).
void fpt_layer_backward(const fpt_model *m, fpt_acts *a, int l, const float *h_in,
                        const fpt_batch *b, const fpt_pass *p, int need_dinput);
void fpt_input_backward(const fpt_model *m, fpt_acts *a, const fpt_batch *b, const fpt_pass *p);

// Everything m->part owns, in order: input layer, layers, head (its loss and,
// with dscale != 0, its backward). h_in is the first block's input when the
// part has no input layer (a later pipeline stage).
double fpt_part_forward(const fpt_model *m, fpt_acts *a, const fpt_batch *b, const fpt_pass *p,
                        const float *h_in, float dscale, int64_t *correct);
// Backward of the part, from d(output) in a->dres down to the lowest block
// that needs it (and the input layer when it or the positions train).
void fpt_part_backward(const fpt_model *m, fpt_acts *a, const fpt_batch *b, const fpt_pass *p,
                       const float *h_in);
// Whole model in one process: forward (+ backward if p->train and dscale).
double fpt_forward_backward(const fpt_model *m, fpt_acts *a, const fpt_batch *b, const fpt_pass *p,
                            float dscale, int64_t *correct);
// Backbone only, no dropout: last_hidden_state (B,T,C) from inputs_embeds
// (the model's task must read all T rows: r = T). len (B): real positions of
// right-padded samples, which a bidirectional model masks (NULL: all T).
void fpt_backbone_forward(const fpt_model *m, fpt_acts *a, const float *inputs_embeds,
                          const int32_t *len, float *out);

// Optimiser over the flat trainable buffer.
void fpt_zero_grad(fpt_model *m);
double fpt_grad_sumsq(const fpt_model *m);
double fpt_grad_norm(const fpt_model *m);
void fpt_scale_grad(fpt_model *m, float c);
// Clip to max_norm (torch clip_grad_norm_ semantics); returns the norm.
double fpt_clip_grad(fpt_model *m, double max_norm);
void fpt_adam_step(fpt_model *m, float lr);
// The learning rate of a step: linear warm-up over `warmup` steps, then
// constant or a cosine decay to lr/10 at `steps`. A function of the step
// alone, so that a resumed run follows the same curve.
typedef struct {
  double lr;
  int64_t warmup, steps;
  int cosine;
} fpt_lr_schedule;
double fpt_lr_at(const fpt_lr_schedule *s, int64_t step);
// One optimizer step on gradients already summed over replicas: clip by the
// global norm sqrt(global_sumsq) (every pipeline stage's gradients; torch's
// clip_grad_norm_), then Adam at lr. Returns the norm before clipping.
double fpt_optimizer_step(fpt_model *m, double global_sumsq, double clip, float lr);

#endif
