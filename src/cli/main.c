// fpt: Frozen Pretrained Transformers on CPU clusters.
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "fpt/io.h"

static const struct {
  const char *name;
  int (*run)(int, char **);
  const char *help;
} commands[] = {
    {"train", cmd_train, "train an FPT model (the main job)"},
    {"pretrain", cmd_pretrain, "pretrain a byte-level GPT-2 language model (every weight)"},
    {"eval", cmd_eval, "score a checkpoint on the validation and test splits"},
    {"probe", cmd_probe, "the exact least-squares output layer over frozen features (ScaLAPACK)"},
    {"data", cmd_data, "build a dataset file for one of the paper's tasks"},
    {"init", cmd_init, "write a random or statistics-matched GPT-2 model file"},
    {"import", cmd_import, "convert a Hugging Face GPT-2 safetensors file"},
    {"forward", cmd_forward, "run the backbone on /inputs_embeds"},
    {"attention", cmd_attention, "dump a trained model's attention maps on a few samples"},
    {"bench", cmd_bench, "time FPT training steps against raw sgemm"},
};

int main(int argc, char **argv) {
  int n = (int)(sizeof commands / sizeof *commands);
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    printf("usage: fpt COMMAND [--key value ...]\n\ncommands:\n");
    for (int i = 0; i < n; i++)
      printf("  %-9s %s\n", commands[i].name, commands[i].help);
    printf("\n'fpt COMMAND --help' lists a command's options.\n");
    return argc < 2 ? 2 : 0;
  }
  for (int i = 0; i < n; i++)
    if (!strcmp(argv[1], commands[i].name)) {
      fpt_h5_quiet();
      return commands[i].run(argc, argv);
    }
  fprintf(stderr, "fpt: error: unknown command '%s' (try fpt --help)\n", argv[1]);
  return 2;
}
