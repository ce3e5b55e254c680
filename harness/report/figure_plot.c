/*
 * figure_plot.c: running gnuplot on a figure script (figure_plot.h).
 * gnuplot is started with posix_spawnp (no shell, so nothing in the
 * variables is interpreted twice) and writes temporary files that are
 * renamed only when it succeeded, so a figure is either the old one or the
 * whole new one.
 */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../kernels/errors.h"
#include "figure_plot.h"

extern char **environ;

void figure_var(TextBuf *t, const char *name, const char *value)
{
    text_printf(t, "%s='", name);
    for (const char *c = value; *c; c++) text_printf(t, *c == '\'' ? "''" : "%c", *c);
    text_printf(t, "'; ");
}

/* waits for gnuplot; 0 when it exited 0 */
static int wait_gnuplot(pid_t pid, const char *script)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return err_set("%s: waiting for gnuplot: %s", script, strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    if (WIFEXITED(status))
        return err_set("%s: gnuplot exited with status %d (its messages are above)", script, WEXITSTATUS(status));
    return err_set("%s: gnuplot was killed by signal %d", script, WTERMSIG(status));
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

int figure_plot(const char *script, const char *vars, const char *out_base)
{
    if (access(script, R_OK)) return err_set("%s: cannot read the gnuplot script: %s", script, strerror(errno));
    char tmp[4096], png[4200], svg[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", out_base, (long)getpid());
    TextBuf e;
    text_init(&e);
    text_printf(&e, "%s", vars ? vars : "");
    figure_var(&e, "out", tmp);
    char *argv[] = {"gnuplot", "-e", e.data, (char *)script, NULL};
    pid_t pid;
    int err = posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ);
    text_free(&e);
    if (err == ENOENT)
        return err_set("%s: gnuplot is not installed (Debian package gnuplot-nox; `make test` installs it)", script);
    if (err) return err_set("%s: cannot start gnuplot: %s", script, strerror(err));
    int rc = wait_gnuplot(pid, script);
    char tmp_png[4200], tmp_svg[4200];
    snprintf(tmp_png, sizeof tmp_png, "%s.png", tmp);
    snprintf(tmp_svg, sizeof tmp_svg, "%s.svg", tmp);
    snprintf(png, sizeof png, "%s.png", out_base);
    snprintf(svg, sizeof svg, "%s.svg", out_base);
    if (rc == 0 && (!exists(tmp_png) || !exists(tmp_svg)))
        rc = err_set("%s: gnuplot wrote no %s", script, exists(tmp_png) ? tmp_svg : tmp_png);
    if (rc == 0 && rename(tmp_png, png)) rc = err_set("%s: cannot write: %s", png, strerror(errno));
    if (rc == 0 && rename(tmp_svg, svg)) rc = err_set("%s: cannot write: %s", svg, strerror(errno));
    if (rc) {
        unlink(tmp_png);
        unlink(tmp_svg);
    }
    return rc;
}
