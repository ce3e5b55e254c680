/*
 * cli_run.h: running the built deediff binary (or any command line) from a
 * test, with its output captured (test support).
 *
 * `make test` sets DEEDIFF to the binary it built; tests that need it skip
 * when it is not set (running the test binary by hand).
 */
#ifndef DEEDIFF_TEST_CLI_RUN_H
#define DEEDIFF_TEST_CLI_RUN_H

#include <stddef.h>

/* the binary, or NULL when DEEDIFF is not set */
const char *cli_binary(void);

/* skips the test when DEEDIFF is not set */
void cli_need_binary(void);

/* runs `$DEEDIFF args` (args go through the shell); stdout goes to out and
   stderr to err (either may be NULL), NUL-terminated and truncated to their
   sizes. Returns the exit status, or -1 when it did not exit normally. */
int cli_run(const char *args, char *out, size_t out_size, char *err, size_t err_size);

/* runs a shell command line the same way (stdout to out, stderr to err,
   either may be NULL); returns the exit status, or -1 */
int shell_run(const char *command, char *out, size_t out_size, char *err, size_t err_size);

/* the number of lines in s (a last line without '\n' counts) */
int count_lines(const char *s);

#endif
