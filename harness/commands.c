/*
 * commands.c: the table of deediff commands. A new command is a file
 * harness/cmd_<name>.c defining cmd_<name>() and one line here.
 */
#include "cli.h"

int cmd_forward(int argc, char **argv);
int cmd_info(int argc, char **argv);

const CliCommand cli_commands[] = {
    {"forward", "run the U-ViT network on inputs from a safetensors file", cmd_forward},
    {"info", "show a model's configuration, parameter count and multiply-adds", cmd_info},
};
const int cli_command_count = sizeof cli_commands / sizeof cli_commands[0];
