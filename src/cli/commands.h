#ifndef FPT_COMMANDS_H
#define FPT_COMMANDS_H

int cmd_train(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_attention(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
