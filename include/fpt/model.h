// The FPT model: input layer -> GPT-2 backbone -> readout -> output layer.
// Pure math on plain arrays (no MPI, no HDF5). A caller may run any
// contiguous range of blocks, so that a pipeline stage can own some of them.
#ifndef FPT_MODEL_H
#define FPT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "fpt/kernels.h"

typedef struct {
  int n_layer, n_head, n_embd, n_positions;
  float ln_eps;
} fpt_gpt2_config;

// What the task feeds in and reads out.
typedef struct {
  int d_in;  // continuous token width (0 for discrete tokens)
  int vocab; // discrete vocabulary (0 for continuous tokens)
  int seq;   // T, tokens per sample
  int r;     // readout: the last r positions
  int n_out; // output-layer width per readout position
  int n_cls; // classes per target; K = r * n_out / n_cls targets per sample
  int tied;  // language model: the input is GPT-2's token table "wte/weight"
             // (vocab, C) and the logits are ln_f(h) . wte^T (no output layer)
} fpt_task_shape;

// Parameter groups, for the freeze flags.
enum { FPT_G_IN, FPT_G_OUT, FPT_G_LN, FPT_G_POS, FPT_G_ATTN, FPT_G_FF, FPT_G_N };
extern const char *const fpt_group_names[FPT_G_N];

typedef struct {
  int frozen[FPT_G_N]; // 1 = frozen
  int full;            // every backbone tensor trainable (overrides ln/pos/attn/ff)
} fpt_freeze;
// The paper's default: in, out, LN and positions trainable; attn and MLP frozen.
fpt_freeze fpt_freeze_default(void);
int fpt_group_trainable(const fpt_freeze *f, int group);

typedef struct {
  char name[48];    // model-file name, e.g. "h/3/attn/c_attn/weight", "in/weight"
  int uid;          // index in the whole model's table: stable across stages (init streams)
  int group, layer; // layer -1 for non-block tensors
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

typedef struct {
  fpt_param ln1_w, ln1_b, qkv_w, qkv_b, ap_w, ap_b;
  fpt_param ln2_w, ln2_b, fc_w, fc_b, fp_w, fp_b;
} fpt_block;

// The part of the model one pipeline stage owns: blocks [l0, l1), and the
// input layer + positions (stage 0) and ln_f + output layer (last stage).
typedef struct {
  int l0, l1, has_input, has_head;
} fpt_part;

typedef struct {
  fpt_gpt2_config cfg;
  fpt_task_shape task;
  fpt_freeze freeze;
  fpt_part part;
  float dropout; // 0.1 in training; eval passes run without it
  int K;         // targets per sample

  int n_tensors;
  fpt_tensor *tensors;
  fpt_param in_w, in_b, wpe, lnf_w, lnf_b, out_w, out_b;
  fpt_block *blocks;

  // All frozen tensors in one allocation; all trainable ones in another,
  // so that gradients all-reduce and Adam run on one flat buffer.
  float *frozen_mem, *train_mem, *grad_mem, *adam_m, *adam_v;
  size_t n_frozen, n_train;
  int frozen_external; // frozen_mem belongs to the caller
  int frozen_readonly; // another process fills the (shared) frozen tensors: skip them
  int64_t adam_t;
} fpt_model;

// Build the tensor table and allocate (parameters zeroed): the whole model.
int fpt_model_create(fpt_model *m, const fpt_gpt2_config *cfg, const fpt_task_shape *task,
                     const fpt_freeze *fr);
// Only what one pipeline stage owns. Unowned tensors have no storage and are
// absent from the table. frozen_ext, if not NULL, is storage for the frozen
// tensors (e.g. an MPI shared-memory window; size from fpt_model_frozen_size).
int fpt_model_create_part(fpt_model *m, const fpt_gpt2_config *cfg, const fpt_task_shape *task,
                          const fpt_freeze *fr, const fpt_part *part, float *frozen_ext);
// Only the table (names, shapes, groups, trainable; no storage) of a part:
// lets every rank know every stage's tensors. Free *tensors with free().
int fpt_model_table(const fpt_gpt2_config *cfg, const fpt_task_shape *task, const fpt_freeze *fr,
                    const fpt_part *part, fpt_tensor **tensors, int *n);
size_t fpt_model_frozen_size(const fpt_gpt2_config *cfg, const fpt_task_shape *task,
                             const fpt_freeze *fr, const fpt_part *part);
void fpt_model_free(fpt_model *m);
fpt_tensor *fpt_model_find(fpt_model *m, const char *name);
int fpt_is_backbone(const fpt_tensor *t);

// Initialisation (all deterministic in seed).
// Backbone as Hugging Face GPT-2's default: N(0,0.02) weights, zero biases, LN 1/0.
void fpt_init_backbone_random(fpt_model *m, uint64_t seed);
// Each backbone tensor ~ N(mean, std) of the same tensor of `like`.
void fpt_init_backbone_like(fpt_model *m, const fpt_model *like, uint64_t seed);
// Input layer (orthogonal * gain, zero bias; or N(0,1) embedding) and output
// layer (PyTorch Linear default, U(+-1/sqrt(fan_in))).
int fpt_init_wrapper(fpt_model *m, uint64_t seed, float orth_gain);
// Fill w (rows x cols, row-major) with gain * a (semi-)orthogonal matrix built by LAPACK QR.
int fpt_orthogonal(float *w, int rows, int cols, float gain, uint64_t seed, uint32_t tensor_id);

// A batch as one rank sees it.
typedef struct {
  int B;                 // local samples
  const float *x;        // (B,T,d_in) continuous, else NULL
  const int32_t *ids;    // (B,T) discrete, else NULL
  const int32_t *y;      // (B,K)
  const int64_t *sample; // (B) global sample indices (for dropout)
} fpt_batch;

// Activations for up to B samples over blocks [l0, l1).
typedef struct {
  float *ln1, *ln1_mean, *ln1_rstd, *qkv, *att, *atty, *h1;
  float *ln2, *ln2_mean, *ln2_rstd, *fch, *fch_gelu, *h2;
  // Dropout keep bits of the forward, for the backward (fpt_mask_words):
  // attention maps (B*NH*Tq rows of T), attention and MLP outputs (B*Tq rows of C).
  uint32_t *mask_att, *mask_attn_out, *mask_mlp_out;
} fpt_block_acts;

typedef struct {
  int B, l0, l1;
  int has_input, has_head;
  float *h0;                        // (B,T,C) input of block 0
  fpt_block_acts *blk;              // index l - l0
  float *lnf, *lnf_mean, *lnf_rstd; // (B,r,C)
  float *logits, *dlogits;          // (B, r*n_out)
  // backward scratch
  float *dres, *dres2;       // (B,T,C) residual-stream gradients
  float *dln, *datty, *dtmp; // (B,T,C)
  float *dqkv;               // (B,T,3C)
  float *dfch, *dfch2;       // (B,T,4C)
  float *xin;                // (B,T,C) input layer output before dropout (scratch)
  float *att_work;           // attention scratch (fpt_attention_work(T))
} fpt_acts;

int fpt_acts_create(fpt_acts *a, const fpt_model *m, int B, int l0, int l1, int has_input,
                    int has_head);
void fpt_acts_free(fpt_acts *a);

// Queries a block computes: all T, except the model's last block, which
// only needs the r readout positions.
int fpt_block_tq(const fpt_model *m, int l);

// Per-call context: training or not, and the dropout key.
typedef struct {
  int train;
  uint64_t seed;
  uint32_t step;
} fpt_pass;

// Stage pieces. The residual stream of block l's output is a->blk[l-l0].h2
// (B, Tq(l), C); its input is a->h0 for l == 0, else the previous output
// (or `h_in` supplied by the caller for the first block of a stage).
void fpt_input_forward(const fpt_model *m, fpt_acts *a, const fpt_batch *b, const fpt_pass *p);
void fpt_block_forward(const fpt_model *m, fpt_acts *a, int l, const float *h_in,
                       const fpt_batch *b, const fpt_pass *p);
// Head: ln_f, readout, output layer, loss. Returns the summed loss over the
// B*K targets; *correct gets the hits. With dscale != 0 it also runs the
// head backward (gradients scaled by dscale, typically 1/global targets),
// leaving d(last block output) in a->dres.
double fpt_head_forward_backward(const fpt_model *m, fpt_acts *a, const float *h_last,
                                 const fpt_batch *b, float dscale, int64_t *correct);
// Backward through block l: on entry a->dres holds d(output) (B,Tq,C); on
// exit, if need_dinput, d(input) (B,T,C).
void fpt_block_backward(const fpt_model *m, fpt_acts *a, int l, const float *h_in,
                        const fpt_batch *b, const fpt_pass *p, int need_dinput);
void fpt_input_backward(const fpt_model *m, fpt_acts *a, const fpt_batch *b, const fpt_pass *p);
// Lowest block whose backward is needed (n_layer when none is).
int fpt_grad_floor(const fpt_model *m);

// Everything m->part owns, in order: input layer, blocks, head (its loss and,
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
// Backbone only, no dropout: last_hidden_state (B,T,C) from inputs_embeds.
void fpt_backbone_forward(const fpt_model *m, fpt_acts *a, const float *inputs_embeds, float *out);

// Optimiser over the flat trainable buffer.
void fpt_zero_grad(fpt_model *m);
double fpt_grad_sumsq(const fpt_model *m);
double fpt_grad_norm(const fpt_model *m);
void fpt_scale_grad(fpt_model *m, float c);
// Clip to max_norm (torch clip_grad_norm_ semantics); returns the norm.
double fpt_clip_grad(fpt_model *m, double max_norm);
void fpt_adam_step(fpt_model *m, float lr);

#endif
