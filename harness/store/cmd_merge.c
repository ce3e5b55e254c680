/*
 * cmd_merge.c: `deediff merge A.db B.db ... -o OUT.db`: combines the results
 * databases of a sharded experiment (SHARD=i/n, one file per GPU or node)
 * into one, with no run twice (rules: harness/store/store_merge.h). Prints
 * one summary line on stdout; warnings (parents in no input, settings
 * measured by several shards) go to stderr.
 */
#include <stdio.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "../cli/cli.h"
#include "store_merge.h"

int cmd_merge(int argc, char **argv)
{
    /* -o is the short form of --output, which cli_parse does not know */
    char **args = xmalloc((size_t)(argc + 1) * sizeof *args);
    for (int i = 0; i < argc; i++) args[i] = strcmp(argv[i], "-o") ? argv[i] : "--output";
    args[argc] = NULL;
    const char **inputs = xmalloc((size_t)(argc + 1) * sizeof *inputs);
    const char *out = NULL;
    int n = 0;
    CliOpt opts[] = {
        {"--output", "OUT.db", "the merged database (-o for short); when it exists its runs are kept and the "
                               "inputs' are added", &out, NULL, 1},
    };
    int rc = cli_parse("merge", "A.db B.db ... -o OUT.db",
                       "Merges results databases (the shards of an experiment) into OUT.db. A run (its uuid) "
                       "already in OUT.db is not copied again, so shards may overlap and a merge may be "
                       "repeated; integer ids are renumbered. OUT.db is replaced atomically, and is left as "
                       "it was when anything fails. The inputs are only read.",
                       argc, args, opts, sizeof opts / sizeof opts[0], inputs, argc, &n);
    if (rc == 0 && n == 0) rc = err_set("merge: no input databases (deediff merge A.db B.db ... -o OUT.db)");
    MergeInputStats *stats = NULL;
    MergeSummary sum;
    if (rc == 0) {
        stats = xcalloc((size_t)n, sizeof *stats);
        rc = store_merge(out, inputs, n, stats, &sum);
    }
    if (rc == 0) {
        if (sum.orphans)
            fprintf(stderr, "deediff merge: %lld runs name a parent run that is in none of the inputs: "
                            "their parent_id is NULL\n", (long long)sum.orphans);
        if (sum.duplicate_keys)
            fprintf(stderr, "deediff merge: %lld run keys have more than one finished run (shards that ran the "
                            "same setting); all are kept\n", (long long)sum.duplicate_keys);
        printf("%s: %lld runs", out, (long long)sum.runs);
        if (sum.out_runs_before) printf(" (%lld were there)", (long long)sum.out_runs_before);
        for (int i = 0; i < n; i++) {
            printf("; %s: %lld merged, %lld already present", inputs[i], (long long)stats[i].runs_merged,
                   (long long)stats[i].runs_present);
            if (stats[i].runs_updated) printf(", %lld finished since", (long long)stats[i].runs_updated);
            if (stats[i].checks_merged || stats[i].checks_present)
                printf(", %lld regress checks merged, %lld present", (long long)stats[i].checks_merged,
                       (long long)stats[i].checks_present);
        }
        printf("\n");
    }
    free(stats);
    free(inputs);
    free(args);
    return rc > 0 ? 0 : rc;
}
