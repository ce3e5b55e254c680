/*
 * cli.c: option parsing and --help text for deediff commands.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "cli.h"

static void print_help(const char *cmd, const char *usage, const char *description,
                       const CliOpt *opts, int nopts)
{
    printf("usage: deediff %s %s\n\n%s\n\noptions:\n", cmd, usage, description);
    for (int i = 0; i < nopts; i++) {
        char left[96];
        snprintf(left, sizeof left, "%s%s%s", opts[i].name, opts[i].metavar ? " " : "",
                 opts[i].metavar ? opts[i].metavar : "");
        printf("  %-30s %s%s\n", left, opts[i].help, opts[i].required ? " (required)" : "");
    }
    printf("  %-30s %s\n", "-h, --help", "show this help");
}

int cli_parse(const char *cmd, const char *usage, const char *description, int argc,
              char **argv, const CliOpt *opts, int nopts, const char **positional,
              int max_positional, int *npositional)
{
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            print_help(cmd, usage, description, opts, nopts);
            return 1;
        }
        if (arg[0] == '-' && arg[1] == '-') {
            const char *eq = strchr(arg, '=');
            size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
            const CliOpt *o = NULL;
            for (int k = 0; k < nopts; k++)
                if (strlen(opts[k].name) == len && !strncmp(opts[k].name, arg, len)) o = &opts[k];
            if (!o) return err_set("%s: unknown option '%.*s' (see deediff %s --help)", cmd, (int)len, arg, cmd);
            if (o->on) {
                if (eq) return err_set("%s: %s takes no value", cmd, o->name);
                *o->on = 1;
            } else if (eq) {
                *o->value = eq + 1;
            } else {
                if (i + 1 >= argc) return err_set("%s: %s needs a value (%s)", cmd, o->name, o->metavar);
                *o->value = argv[++i];
            }
            continue;
        }
        if (npos >= max_positional)
            return err_set("%s: unexpected argument '%s' (see deediff %s --help)", cmd, arg, cmd);
        positional[npos++] = arg;
    }
    for (int k = 0; k < nopts; k++)
        if (opts[k].required && opts[k].value && !*opts[k].value)
            return err_set("%s: missing %s %s (see deediff %s --help)", cmd, opts[k].name, opts[k].metavar, cmd);
    if (npositional) *npositional = npos;
    return 0;
}

int cli_int(const char *flag, const char *text, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi)
        return err_set("%s: '%s' is not an integer in [%ld, %ld]", flag, text, lo, hi);
    *out = v;
    return 0;
}

int cli_double(const char *flag, const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v))
        return err_set("%s: '%s' is not a finite number", flag, text);
    *out = v;
    return 0;
}

int cli_listed(const char *list, const char *item)
{
    if (!list) return 1;
    size_t n = strlen(item);
    for (const char *p = list; (p = strstr(p, item)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 1;
    return 0;
}
