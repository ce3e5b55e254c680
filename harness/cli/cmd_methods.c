/*
 * cmd_methods.c: `deediff methods`: every method --method accepts, one line
 * each, then its options (method.KEY=VALUE on train, in a config's
 * "method" section, or in a model file's metadata).
 */
#include <stdio.h>

#include "../../model/method.h"
#include "cli.h"

int cmd_methods(int argc, char **argv)
{
    int rc = cli_parse("methods", "", "Lists every method with one line each and its options.", argc, argv,
                       NULL, 0, NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : -1;
    for (int i = 0; method_kind_at(i); i++) {
        const MethodKind *k = method_kind_at(i);
        printf("%-10s %s\n", k->name, k->summary);
        const char *o = k->options_help;
        while (o && *o) {   // one indented line per option
            const char *end = o;
            while (*end && *end != '\n') end++;
            printf("           %.*s\n", (int)(end - o), o);
            o = *end ? end + 1 : end;
        }
    }
    return 0;
}
