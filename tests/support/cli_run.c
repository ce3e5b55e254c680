/*
 * cli_run.c: spawning deediff (or a command line) with captured output,
 * for command tests.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_run.h"

const char *cli_binary(void) { return getenv("DEEDIFF"); }

void cli_need_binary(void)
{
    if (!cli_binary()) cr_skip_test("DEEDIFF is not set (make test sets it to the deediff binary)");
}

static void slurp(const char *path, char *buf, size_t size)
{
    if (!buf) return;
    buf[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = 0;
    fclose(f);
}

int shell_run(const char *command, char *out, size_t out_size, char *err, size_t err_size)
{
    char o[] = "/tmp/deediff-cli-out-XXXXXX", e[] = "/tmp/deediff-cli-err-XXXXXX";
    int fo = mkstemp(o), fe = mkstemp(e);
    if (fo < 0 || fe < 0) return -1;
    close(fo);
    close(fe);
    size_t n = strlen(command) + 200;
    char *cmd = malloc(n);
    snprintf(cmd, n, "%s >'%s' 2>'%s'", command, o, e);
    int st = system(cmd);
    free(cmd);
    slurp(o, out, out_size);
    slurp(e, err, err_size);
    unlink(o);
    unlink(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int cli_run(const char *args, char *out, size_t out_size, char *err, size_t err_size)
{
    size_t n = strlen(args) + strlen(cli_binary()) + 8;
    char *cmd = malloc(n);
    snprintf(cmd, n, "'%s' %s", cli_binary(), args);
    int rc = shell_run(cmd, out, out_size, err, err_size);
    free(cmd);
    return rc;
}

int count_lines(const char *s)
{
    int n = 0;
    for (const char *c = s; *c; c++) n += *c == '\n';
    if (*s && s[strlen(s) - 1] != '\n') n++;
    return n;
}
