/*
 * main.c: `deediff`, the one command of the project. Dispatches to the
 * command table in harness/cli/commands.c.
 */
#include <stdio.h>
#include <string.h>

#include "../../kernels/cpu/cpu_startup.h"
#include "../../kernels/errors.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: deediff COMMAND [options]   (deediff COMMAND --help for its options)\n\n"
               "DeeDiff reproduction harness: U-ViT diffusion models with early exits.\n\n"
               "commands:\n");
    for (int i = 0; i < cli_command_count; i++)
        fprintf(f, "  %-10s %s\n", cli_commands[i].name, cli_commands[i].summary);
}

int main(int argc, char **argv)
{
    cpu_startup(argv);  /* may re-exec with OpenBLAS's core type fixed */
    if (argc < 2) {
        usage(stderr);
        return EXIT_BAD_INPUT;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (int i = 0; i < cli_command_count; i++)
        if (!strcmp(argv[1], cli_commands[i].name)) {
            int rc = cli_commands[i].run(argc - 1, argv + 1);
            if (rc < 0) err_exit_bad_input();
            return rc;
        }
    fprintf(stderr, "deediff: unknown command '%s' (deediff --help lists them)\n", argv[1]);
    return EXIT_BAD_INPUT;
}
