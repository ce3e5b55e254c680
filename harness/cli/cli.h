/*
 * cli.h: the command table and a small option parser shared by every
 * `deediff CMD` (one file harness/cmd_<name>.c per command).
 *
 * A command declares its options in a CliOpt array; cli_parse() fills them,
 * prints `deediff CMD --help` from the same table, and reports unknown or
 * incomplete flags as bad input (one line, exit status 2).
 */
#ifndef DEEDIFF_CLI_H
#define DEEDIFF_CLI_H

typedef struct {
    const char *name;       /* "--model" */
    const char *metavar;    /* "M.safetensors"; NULL for a switch */
    const char *help;       /* one line */
    const char **value;     /* where a value goes (NULL for a switch) */
    int *on;                /* where a switch goes (NULL for a value) */
    int required;
} CliOpt;

typedef struct {
    const char *name;       /* "forward" */
    const char *summary;    /* one line for `deediff --help` */
    int (*run)(int argc, char **argv);  /* argv[0] is the command name */
} CliCommand;

/* Parses argv[1..] against opts. Positional arguments are collected in
   positional[] (at most max_positional; more is an error). Returns 0, or 1
   when --help was printed (the command then returns 0), or -1 with
   err_msg() set. `usage` is the synopsis printed by --help. */
int cli_parse(const char *cmd, const char *usage, const char *description,
              int argc, char **argv, const CliOpt *opts, int nopts,
              const char **positional, int max_positional, int *npositional);

/* parses an integer / a float flag value; -1 + err_msg() naming the flag */
int cli_int(const char *flag, const char *text, long lo, long hi, long *out);
int cli_double(const char *flag, const char *text, double *out);
/* is item one of the comma-separated list ("a,b,c")? A NULL list holds everything. */
int cli_listed(const char *list, const char *item);

/* every command, defined in harness/cli/commands.c */
extern const CliCommand cli_commands[];
extern const int cli_command_count;

#endif
