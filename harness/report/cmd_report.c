/*
 * cmd_report.c: `deediff report EXPERIMENT [--scale S]`: an experiment's
 * table or figure drawn again from the database, running nothing (report.h).
 * `deediff run` ends with the same report.
 */
#include "../../kernels/errors.h"
#include "../cli/cli.h"
#include "../runner/experiment.h"
#include "../store/store.h"
#include "report.h"

int cmd_report(int argc, char **argv)
{
    const char *scale = "tiny", *db = STORE_DEFAULT_PATH, *out_dir = "paper";
    CliOpt opts[] = {
        {"--scale", "S", "smoke, tiny (default) or paper", &scale, NULL, 0},
        {"--db", "PATH", "results database (default " STORE_DEFAULT_PATH ")", &db, NULL, 0},
        {"--out-dir", "DIR", "where the report goes (default paper: paper/tables, paper/figures)", &out_dir, NULL, 0},
    };
    const char *pos[1 + PLAN_MAX_VARS];
    int npos = 0;
    int rc = cli_parse("report", "EXPERIMENT.json [NAME=VALUE ...] [options]",
                       "Draws an experiment's table (Markdown, LaTeX, JSON) or figure (PNG, SVG) from the runs "
                       "the database holds for it, running nothing; a cell without runs says so.",
                       argc, argv, opts, sizeof opts / sizeof opts[0], pos, 1 + PLAN_MAX_VARS, &npos);
    if (rc) return rc > 0 ? 0 : -1;
    Plan p;
    if (plan_load_args(&p, "report", pos, npos, scale)) return -1;
    Store st;
    rc = store_open(&st, db);
    if (rc == 0) {
        rc = report_experiment(&st, &p, out_dir);
        store_close(&st);
    }
    plan_free(&p);
    return rc;
}
