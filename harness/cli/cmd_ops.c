/*
 * cmd_ops.c: `deediff ops`: one line per op of kernels/ops.h with the
 * backends that implement its forward and its backward, read from the
 * backends' op tables (kernels/op_coverage.h), then the counts per backend.
 * Works on any build and any machine: the CUDA column reads the CUDA table
 * when CUDA was built (no GPU needed) and says "not built" otherwise.
 */
#include <stdio.h>
#include <string.h>

#include "../../kernels/op_coverage.h"
#include "cli.h"

#define OPS_NAME_MAX 64

typedef struct {
    const OpTable *table;  /* NULL: not built */
    int fwd, bwd;          /* entries filled */
} BackendCount;

/* what a backend has for one op: "yes", "NO", or "(ops.c)" for an optional
   fused form the backend leaves to kernels/ops.c's composition */
static const char *mark(const OpTable *t, const OpEntry *e, int *count)
{
    if (!t) return "-";
    int filled = op_entry_filled(t, e);
    *count += filled || e->optional;
    return filled ? "yes" : e->optional ? "(ops.c)" : "NO";
}

/* does name end with suffix? */
static int ends_with(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);
    return n >= k && strcmp(name + n - k, suffix) == 0;
}

/* does kernels/ops.h declare op_<base>_backward? */
static int has_backward_function(const char *base)
{
    for (const char *const *n = op_backward_names; *n; n++)
        if (strcmp(*n, base) == 0) return 1;
    return 0;
}

int cmd_ops(int argc, char **argv)
{
    int rc = cli_parse("ops", "",
                       "One line per op of kernels/ops.h: whether each backend implements its forward "
                       "and its backward, read from the backends' op tables (the CUDA table is read "
                       "without a GPU; \"not built\" when this deediff has no CUDA).",
                       argc, argv, NULL, 0, NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : -1;
    BackendCount be[2] = {{op_backend_table(BACKEND_CPU), 0, 0}, {op_backend_table(BACKEND_CUDA), 0, 0}};
    const char *names[2] = {"cpu", "cuda"};
    int ops = 0, backwards = 0;

    printf("%-28s %-16s %s\n", "op", "cpu", be[1].table ? "cuda" : "cuda (not built)");
    printf("%-28s %-5s %-10s %-5s %s\n", "", "fwd", "bwd", "fwd", "bwd");
    for (const OpEntry *e = op_entries; e->name; e++) {
        size_t len = strlen(e->name);
        /* a backward is listed with its forward; the overwriting form
           (_backward_set) is a variant of that backward, not an op */
        if (ends_with(e->name, "_backward") || ends_with(e->name, "_backward_set")) continue;
        char base[OPS_NAME_MAX], bwd_name[OPS_NAME_MAX + 16];
        int is_forward = ends_with(e->name, "_forward");
        snprintf(base, sizeof base, "%.*s", (int)(is_forward ? len - 8 : len), e->name);
        snprintf(bwd_name, sizeof bwd_name, "%s_backward", base);
        const OpEntry *b = is_forward ? op_entry_find(bwd_name) : NULL;
        const char *cell[2][2];
        for (int k = 0; k < 2; k++) {
            cell[k][0] = mark(be[k].table, e, &be[k].fwd);
            if (b) cell[k][1] = mark(be[k].table, b, &be[k].bwd);
            else cell[k][1] = !be[k].table ? "-" : has_backward_function(base) ? "(ops.c)" : "(none)";
        }
        ops++, backwards += b != NULL;
        printf("%-28s %-5s %-10s %-5s %s\n", base, cell[0][0], cell[0][1], cell[1][0], cell[1][1]);
    }
    printf("\n(none): an update, a sampler step, a row copy or an exit score, no backward; (ops.c): kernels/ops.c builds the "
           "op (a fused form) or its backward from other ops\n");
    for (int k = 0; k < 2; k++) {
        if (be[k].table)
            printf("%-5s %d of %d forward, %d of %d backward\n", names[k], be[k].fwd, ops, be[k].bwd,
                   backwards);
        else
            printf("%-5s not built (no nvcc at build time, CUDA=0 or SAN=1)\n", names[k]);
    }
    return 0;
}
