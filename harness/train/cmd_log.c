/*
 * cmd_log.c: `deediff log --run NAME`: a training curve from the results
 * database as a whitespace table (step loss lr grad_norm images_per_s
 * wall_s), the data file the gnuplot scripts in paper/ draw.
 */
#include <math.h>
#include <stdio.h>

#include "../../kernels/errors.h"
#include "../cli/cli.h"
#include "../store/store.h"
#include "../cli/text_file.h"

typedef struct {
    TextBuf text;
    int64_t rows;
} Table;

static int add_row(void *user, const TrainRow *r)
{
    Table *tab = user;
    TextBuf *t = &tab->text;
    tab->rows++;
    text_printf(t, "%lld %.6g %.6g %.6g %.6g %.3f\n", (long long)r->step, r->loss, r->lr,
                r->grad_norm, r->images_per_s, r->wall_s);
    return 0;
}

int cmd_log(int argc, char **argv)
{
    const char *run = NULL, *db = STORE_DEFAULT_PATH, *output = NULL;
    CliOpt opts[] = {
        {"--run", "NAME", "the training run's name (its output.dir)", &run, NULL, 1},
        {"--db", "PATH", "results database (default " STORE_DEFAULT_PATH ")", &db, NULL, 0},
        {"--output", "F.dat", "write the table here (atomically) instead of stdout", &output, NULL, 0},
    };
    int rc = cli_parse("log", "--run NAME [--db PATH] [--output F.dat]",
                       "Prints a training run's logged curve from the results database: "
                       "step, mean loss since the previous row, lr, gradient norm, images/s, "
                       "wall seconds.",
                       argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : -1;
    Store s;
    if (store_open(&s, db)) return -1;
    Table tab = {.rows = 0};
    text_init(&tab.text);
    text_printf(&tab.text, "# run %s: step loss lr grad_norm images_per_s wall_s\n", run);
    rc = store_train_curve(&s, run, add_row, &tab);
    store_close(&s);
    if (rc == 0 && tab.rows == 0) rc = err_set("%s: no logged training run named '%s'", db, run);
    if (rc == 0)
        rc = output ? text_write_atomic(&tab.text, output) : (fputs(tab.text.data, stdout) < 0 ? -1 : 0);
    text_free(&tab.text);
    return rc;
}
