/*
 * method_options.c: the --method and --threshold flags and the exit report
 * of method_options.h.
 */
#include <math.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "cli.h"
#include "method_options.h"

int method_options_threshold(const MethodOptions *mo, double *threshold)
{
    *threshold = 0;
    if (!mo->threshold) return 0;
    if (cli_double("--threshold", mo->threshold, threshold)) return -1;
    if (!(*threshold >= 0 && *threshold <= 1))
        return err_set("--threshold: %s is outside [0, 1]", mo->threshold);
    return 0;
}

int method_options_open(const MethodOptions *mo, const char *path, const char *prefix, Ctx *ctx,
                        UViT *backbone, Method **me, double *threshold)
{
    if (method_options_threshold(mo, threshold)) return -1;
    if (method_load(path, mo->method, prefix, ctx, backbone, me)) return -1;
    if (*threshold > 0 && !strcmp((*me)->kind->name, "none")) {
        method_free(*me, ctx);
        uvit_destroy(backbone, ctx);
        *me = NULL;
        return err_set("--threshold: %s runs method none, which has no exits (give --method or a method's model)",
                       path);
    }
    return 0;
}

static void record_exit(void *user, int64_t id, int eval, double t, int exit_block, float score)
{
    ExitLog *log = user;
    if (log->n == log->cap) {
        log->cap = log->cap ? 2 * log->cap : 4096;
        log->rows = xrealloc(log->rows, (size_t)log->cap * sizeof *log->rows);
    }
    log->rows[log->n++] = (ExitRow){id, eval, t, exit_block, score};
}

void exit_log_attach(ExitLog *log, SampleAccount *acc)
{
    acc->record = record_exit;
    acc->record_user = log;
}

void exit_log_free(ExitLog *log)
{
    free(log->rows);
    memset(log, 0, sizeof *log);
}

void exit_histogram_print(FILE *f, const SampleAccount *acc, int num_blocks)
{
    if (!acc->image_evals) return;
    fprintf(f, "exits (share of %lld image evaluations):", (long long)acc->image_evals);
    for (int i = 0; i < num_blocks; i++) {
        if (!acc->exits[i]) continue;
        double share = 100.0 * (double)acc->exits[i] / (double)acc->image_evals;
        if (i == num_blocks - 1) fprintf(f, " | full %.1f%%", share);
        else fprintf(f, " | block %d %.1f%%", i, share);
    }
    fprintf(f, "\n  layers ratio %.4f (blocks run / blocks available)\n",
            (double)acc->blocks_run / ((double)acc->image_evals * num_blocks));
}
