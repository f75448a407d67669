// Byte-level text for language-model pretraining (fpt pretrain).
//
// The corpus files are concatenated (each followed by one '\n') and cut into
// windows of seq+1 bytes at a stride of seq: sample i has inputs
// bytes[i*seq, i*seq+seq) and next-byte targets bytes[i*seq+1, i*seq+seq+1).
// Held-out text comes in whole blocks: of every FPT_TEXT_BLOCKS consecutive
// FPT_TEXT_BLOCK-byte blocks of the stream, the second to last is validation
// and the last is test (a window belongs to the block its first byte is in),
// so every source contributes to every split.
//
// Dataset file: task "text", vocab 256, n_classes 256, K = r = seq,
// x int32 (N, seq), y int32 (N, seq).
#ifndef FPT_TEXT_H
#define FPT_TEXT_H

#include "fpt/dataset.h"

#define FPT_TEXT_BLOCK 65536
#define FPT_TEXT_BLOCKS 50

int fpt_text_load(const char *const *paths, int n, int seq, fpt_dataset *d);

#endif
