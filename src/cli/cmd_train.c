// fpt train: the main job. Data-parallel replicas (one per rank) shard the
// global batch; the trainable gradients are all-reduced once per step.
// fpt pretrain: the same loop, training every weight of a language model
// (tied token table) on a text dataset file.
// fpt eval and fpt probe: the same set-up, then score a checkpoint, or fit
// the exact least-squares output layer (cmd_probe.c).
// Each is a descriptor (train_opts.c); the work is train_main (train_loop.c).
#include "commands.h"
#include "train.h"

int cmd_train(int argc, char **argv) { return train_main(&fpt_cmd_train, argc, argv); }
int cmd_pretrain(int argc, char **argv) { return train_main(&fpt_cmd_pretrain, argc, argv); }
int cmd_eval(int argc, char **argv) { return train_main(&fpt_cmd_eval, argc, argv); }
int cmd_probe(int argc, char **argv) { return train_main(&fpt_cmd_probe, argc, argv); }
