/*
 * cmd_table.c: `deediff table sweep --model M`: one early-exit model's
 * threshold sweep (table_sweep.h) drawn from the eval runs in the results
 * database. The paper's tables are experiments (`deediff run
 * experiments/table1.json`, report.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../../kernels/errors.h"
#include "../cli/cli.h"
#include "../cli/text_file.h"
#include "../store/store.h"
#include "table_sweep.h"

int cmd_table(int argc, char **argv)
{
    const char *db = NULL, *output = NULL, *model = NULL, *baseline = NULL, *method = NULL;
    const CliOpt opts[] = {
        {"--db", "PATH", "results database (default " STORE_DEFAULT_PATH ")", &db, NULL, 0},
        {"--output", "T.md", "also write the Markdown here", &output, NULL, 0},
        {"--model", "M", "the early-exit model file, as eval's --model named it", &model, NULL, 0},
        {"--baseline", "B", "a plain model evaluated alone, shown as an extra row", &baseline, NULL, 0},
        {"--method", "NAME", "only the runs of this method (a file run by several: static on deediff's "
         "heads; default: any early-exit method)", &method, NULL, 0},
    };
    const char *pos[1];
    int npos = 0;
    int rc = cli_parse("table", "sweep --model M [--method NAME] [--baseline B] [--db PATH] [--output T.md]",
                       "Renders one early-exit model's threshold sweep from the eval runs in the results database: "
                       "layer saving,\nwall-clock saving and their ratio against the same weights at threshold 0. "
                       "The paper's tables\nare experiments: deediff run experiments/table1.json (make table1).",
                       argc, argv, opts, sizeof opts / sizeof opts[0], pos, 1, &npos);
    if (rc) return rc > 0 ? 0 : -1;
    if (npos == 1 && !strcmp(pos[0], "1"))
        return err_set("table 1: the paper's tables are experiments now: deediff run experiments/table1.json "
                       "(make table1), or deediff report experiments/table1.json to redraw it");
    if (npos != 1 || strcmp(pos[0], "sweep")) return err_set("table: expected sweep (see deediff table --help)");
    if (!model) return err_set("--model: table sweep needs the early-exit model file");
    if (!db) db = STORE_DEFAULT_PATH;
    struct stat sb;
    if (stat(db, &sb)) return err_set("--db: %s: cannot open: %s (deediff eval writes it)", db, strerror(errno));
    Store st;
    if (store_open(&st, db)) return -1;
    TextBuf md;
    text_init(&md);
    rc = table_sweep_render(&st, model, method, baseline, &md);
    store_close(&st);
    if (rc == 0) fwrite(md.data, 1, md.len, stdout);
    if (rc == 0 && output) rc = text_write_atomic(&md, output);
    text_free(&md);
    return rc;
}
