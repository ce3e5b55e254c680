/*
 * cmd_kernels.c: `deediff kernels RUN`: the top kernels of each phase of a
 * profiled run (table kernel_timings, `--profile` on train, sample, eval),
 * and how its kernels were timed.
 */
#include <stdio.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "../cli/cli.h"
#include "../store/store_kernels.h"

#define NAME_WIDTH 56

typedef struct {
    long top;
    char phase[32];
    int index;
    long shown;
    int64_t rows;
} Listing;

static int print_row(void *user, const KernelTiming *r)
{
    Listing *l = user;
    if (l->rows++ == 0 || strcmp(l->phase, r->phase) || l->index != r->phase_index) {
        snprintf(l->phase, sizeof l->phase, "%s", r->phase);
        l->index = r->phase_index;
        l->shown = 0;
        printf("\n%s %d\n", r->phase, r->phase_index);
    }
    if (l->shown++ >= l->top) return 0;
    int cut = strlen(r->kernel) > NAME_WIDTH, w = cut ? NAME_WIDTH - 3 : NAME_WIDTH;   /* long names end in ... */
    printf("  %-*.*s%s %8lld %12.3f %10.2f %10.2f %10.2f\n", w, w, r->kernel, cut ? "..." : "",
           (long long)r->count, r->total_ns / 1e6,
           r->total_ns / 1e3 / (double)r->count, r->min_ns / 1e3, r->max_ns / 1e3);
    return 0;
}

int cmd_kernels(int argc, char **argv)
{
    const char *db = STORE_DEFAULT_PATH, *top = NULL, *pos[1];
    int npos = 0;
    CliOpt opts[] = {
        {"--db", "PATH", "results database (default " STORE_DEFAULT_PATH ")", &db, NULL, 0},
        {"--top", "N", "kernels shown per phase, largest total first (default 5)", &top, NULL, 0},
    };
    int rc = cli_parse("kernels", "RUN_ID [--db PATH] [--top N]",
                       "Prints a profiled run's kernel timings by phase (phase, index; run and train_step: -1):\n"
                       "count, total ms, mean, min and max us of GPU time. A kernel counts in every phase open "
                       "when it\nwas launched; under cuda-events each phase has one row, (phase), its span.",
                       argc, argv, opts, sizeof opts / sizeof opts[0], pos, 1, &npos);
    if (rc) return rc > 0 ? 0 : -1;
    if (npos != 1) return err_set("kernels: give the run's id (deediff kernels RUN_ID)");
    long run = 0;
    Listing l = {.top = 5};
    if (cli_int("RUN_ID", pos[0], 1, 1L << 62, &run)) return -1;
    if (top && cli_int("--top", top, 1, 1000000, &l.top)) return -1;
    Store s;
    if (store_open(&s, db)) return -1;
    char source[512], note[512];
    rc = store_kernel_timing_source(&s, run, source, note, sizeof note);
    if (rc == 0) {
        printf("run %ld: kernels timed by %s%s%s%s\n", run, source, note[0] ? " (" : "", note, note[0] ? ")" : "");
        printf("  %-*s %8s %12s %10s %10s %10s\n", NAME_WIDTH, "kernel", "count", "total ms", "mean us", "min us",
               "max us");
        rc = store_kernel_timings_read(&s, run, print_row, &l);
    }
    if (rc == 0 && l.rows == 0)
        rc = err_set("%s: run %ld has no kernel timings (kernel_timing %s: run it with --profile on CUDA)", db, run,
                     source);
    store_close(&s);
    return rc;
}
