// Image datasets: MNIST / Fashion-MNIST (IDX files) and CIFAR-10 (binary
// batches), turned into the patch tokens the FPT reference code feeds GPT-2
// (kzl/universal-computation, datasets/{mnist,cifar10,cifar10_gray}.py), and the
// reference's CIFAR-10 training augmentation.
//
// Token layout (einops 'c (h p1) (w p2) -> (h w) (p1 p2 c)'): an image of C
// planes of H x W pixels cut into p x p patches; token t = gr * (W/p) + gc is
// the patch in grid row gr, grid column gc (row by row), and element
//   k = (pr * p + pc) * C + ch
// of the token is pixel (gr*p + pr, gc*p + pc) of channel ch: patch rows, then
// patch columns, channel fastest.
//
//   mnist, fashion-mnist   28x28 grey, pixel / 255 in [0,1] (the reference's
//                          Normalize(0, 1) is an identity); p = 4:
//                          49 tokens x 16 (the reference code). With pad32 the
//                          image is first padded to 32x32 with 2 zero pixels on
//                          every side (rows/columns 0,1,30,31 are 0; source pixel
//                          (r,c) sits at (r+2, c+2)): 64 tokens x 16 (the paper's
//                          text, and MOMENT's re-implementation).
//   cifar10                RGB 32x32, p = 4: 64 tokens x 48, each value
//                          (b/255 - mean[ch]) / std[ch] in float32, with the
//                          reference's constants fpt_cifar_mean/std below.
//   cifar10-lra            grey 32x32, p = 1: 1024 tokens x 1 (pixels row by
//                          row), g = 0.2989 R + 0.587 G + 0.114 B on the [0,1]
//                          values (torchvision's rgb_to_grayscale, the same
//                          ITU-R 601 weights as PIL's convert('L'), without
//                          rounding), then (g - 0.5) / 0.5 in [-1, 1].
#ifndef FPT_IMAGES_H
#define FPT_IMAGES_H

#include <stdint.h>

#include "fpt/dataset.h"

// Where Debian's dataset-fashion-mnist package installs the four .gz files.
#define FPT_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

// Augmentation draws use FPT_SITE_AUGMENT (fpt/rng.h): a = step, b = low 32
// bits of the sample index, block = high 32 bits.

// Per-channel statistics of the reference's CIFAR-10 Normalize (R, G, B).
extern const float fpt_cifar_mean[3];
extern const float fpt_cifar_std[3];

// task "mnist" or "fashion-mnist": reads train-images-idx3-ubyte,
// train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte from
// dir, each raw or gzipped (the name + ".gz"; the raw file wins if both exist).
// dir NULL means FPT_FASHION_MNIST_DIR for fashion-mnist (an error for mnist).
// d is zeroed and filled: seq 49 (64 with pad32), d_in 16, vocab 0,
// n_classes 10, K 1, r 1, pad_id -1, sources = the four paths; train from the
// train files, test from t10k, val empty (the caller carves it out of train).
// Errors name the file (and the record): missing file, magic number, image
// size other than 28x28, truncation, image/label counts that disagree, label
// > 9, trailing bytes. On error d holds no allocations.
int fpt_idx_load(const char *dir, const char *task, int pad32, fpt_dataset *d);

// CIFAR-10 binary version: data_batch_1.bin .. data_batch_5.bin (train, in that
// order) and test_batch.bin in dir, each a sequence of 3073-byte records (label
// byte, then 1024 R, 1024 G, 1024 B bytes, each plane 32x32 row-major).
// lra = 0: task "cifar10", 64 x 48; lra = 1: task "cifar10-lra", 1024 x 1
// (see the top of this file). Other fields as for fpt_idx_load. Errors name
// the file (and the record): missing, empty, size not a multiple of 3073,
// label > 9.
int fpt_cifar_load(const char *dir, int lra, fpt_dataset *d);

// img: C planes of H x W floats -> tokens (H/p * W/p, p*p*C), and back.
// H and W must be multiples of p.
void fpt_image_to_tokens(const float *img, int C, int H, int W, int p, float *tokens);
void fpt_tokens_to_image(const float *tokens, int C, int H, int W, int p, float *img);

// The reference's CIFAR-10 training transform, applied in this order:
//   RandomCrop(32, padding=4): pad 4 zero pixels on every side, keep the
//     32x32 window whose top-left corner is (dy, dx) in the 40x40 padded
//     image, dy, dx uniform in {0..8} (4, 4 = no shift);
//   RandomHorizontalFlip(p = 0.5): flip = 1 mirrors the columns;
//   RandomRotation(20): angle uniform in [-20, 20) degrees about the image
//     centre (16, 16), positive = counter-clockwise on screen as in
//     torchvision, same output size; nearest-neighbour sampling (torchvision's
//     default for RandomRotation) with grid_sample's pixel-centre convention;
//     pixels from outside the image get the fill.
// The fill is a zero pixel BEFORE normalisation, as in the reference (ToTensor
// -> augment -> Normalize), i.e. -mean/std per channel (cifar10) or -1
// (cifar10-lra) in token units. With nearest sampling every output value is an
// input value of the same channel or that fill, so no renormalisation error.
typedef struct {
  int dy, dx;  // crop corner in the padded 40x40 image, 0..8
  int flip;    // 0 or 1
  float angle; // degrees, counter-clockwise
} fpt_aug_params;

// The draws for (seed, step, sample): one Philox block at site
// FPT_SITE_AUGMENT, counter (sample >> 32, site, step, sample & 0xffffffff).
fpt_aug_params fpt_cifar_augment_params(uint64_t seed, uint32_t step, int64_t sample);
// Apply given parameters to one sample in token layout (cifar10: 64 x 48,
// lra: 1024 x 1). tokens_out may equal tokens_in.
void fpt_cifar_augment_with(const float *tokens_in, float *tokens_out, int lra, fpt_aug_params p);
// Augment sample `sample` (its global index, e.g. its index in the source
// training set) for training step `step`: a pure function of
// (tokens_in, seed, step, sample).
void fpt_cifar_augment(const float *tokens_in, float *tokens_out, int lra, uint64_t seed,
                       uint32_t step, int64_t sample);

#endif
