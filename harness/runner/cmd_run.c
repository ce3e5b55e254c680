/*
 * cmd_run.c: `deediff run EXPERIMENT [--scale S]`: an experiment file
 * (experiment.h) expanded into runs, each run done unless the database
 * already holds it, then the experiment's report drawn from the database.
 *
 * The mechanics (skipping, resuming, sharding) are in runner.h.
 */
#include <stdio.h>

#include "../../kernels/errors.h"
#include "../cli/cli.h"
#include "../store/store.h"
#include "experiment.h"
#include "runner.h"

int cmd_run(int argc, char **argv)
{
    RunnerOptions a = {.db = STORE_DEFAULT_PATH, .out_dir = "paper"};
    const char *scale = "tiny", *shard = NULL;
    CliOpt opts[] = {
        {"--scale", "S", "smoke (CI, minutes), tiny (default: Fashion-MNIST on a CPU), paper (the paper's protocol)",
         &scale, NULL, 0},
        {"--db", "PATH", "results database (default " STORE_DEFAULT_PATH ")", &a.db, NULL, 0},
        {"--only", "A,B", "only the runs whose label (column/row/T/seed) contains A or B, and what they need",
         &a.only, NULL, 0},
        {"--shard", "K/N", "only shard K of N (0-based; a row's runs stay together); merge the databases after",
         &shard, NULL, 0},
        {"--threads", "N", "CPU threads of each run (default: all cores)", &a.threads, NULL, 0},
        {"--out-dir", "DIR", "where the report goes (default paper: paper/tables, paper/figures)", &a.out_dir, NULL,
         0},
        {"--list", NULL, "print every run with done/todo and its command line; run nothing", NULL, &a.list, 0},
        {"--no-report", NULL, "run, but do not draw the report", NULL, &a.no_report, 0},
    };
    const char *pos[1 + PLAN_MAX_VARS];
    int npos = 0;
    int rc = cli_parse("run", "EXPERIMENT.json [NAME=VALUE ...] [options]",
                       "Expands an experiment file at one scale into runs, does each run the database does not "
                       "already hold (a rerun resumes; a killed run is redone), then draws the experiment's report "
                       "(table or figure) from the database. NAME=VALUE sets a ${NAME} of the file (paths of data "
                       "and weights at paper scale); the environment is read too.",
                       argc, argv, opts, sizeof opts / sizeof opts[0], pos, 1 + PLAN_MAX_VARS, &npos);
    if (rc) return rc > 0 ? 0 : -1;
    if (runner_parse_shard(shard, &a.shard_k, &a.shard_n)) return -1;
    Plan p;
    if (plan_load_args(&p, "run", pos, npos, scale)) return -1;
    rc = runner_execute(&p, &a);
    plan_free(&p);
    return rc;
}
