/*
 * figure_report.c: an experiment's figure (report.h): the data of the runs
 * its cells found (cells.h) exported from the database (figure_data.h) into
 * OUT/figures/NAME[-SCALE].dat, then drawn by the experiment's gnuplot
 * script (figure_plot.h) into NAME[-SCALE].png and .svg.
 *
 * The experiment file says which picture it is:
 *   "figure": {"kind": "points", "points": "fig1_layer_mse", "script": "paper/fig1.gp"}
 *       each row is one `deediff analyze` run; its figure points are the
 *       data (several rows: several files, as figure 6 compares methods);
 *   "figure": {"kind": "pareto", "script": "paper/fig5.gp"}
 *       each row is one method's eval runs over its thresholds and seeds:
 *       a series of (layers ratio, mean quality ± sd) points;
 *   "figure": {"kind": "grid", "script": "paper/fig7.gp"}
 *       each row is one `deediff sample` run ("creates" its grid.png): a
 *       panel titled with the row's name.
 * A row nobody has run yet is left out and named on stderr; a figure with
 * no data at all is an error (run the experiment first).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "../cli/text_file.h"
#include "cells.h"
#include "figure_data.h"
#include "figure_plot.h"
#include "report.h"

typedef struct {
    const Plan *p;
    Store *st;
    const CellResult *cells;
    int n_cells;
    const char *kind, *points, *script;
    char data[1024], base[1024];
} Figure;

static const CellResult *row_cell(const Figure *f, int row)
{
    for (int c = 0; c < f->p->n_columns; c++) {
        const CellResult *cr = cells_find(f->cells, f->n_cells, c, row);
        if (cr) return cr;
    }
    return NULL;
}

static void not_run(const Figure *f, int row)
{
    fprintf(stderr, "report: %s: %s has no finished run yet; left out\n", f->p->name, f->p->rows[row]);
}

/* one data file per analyze run: NAME.dat, or NAME-ROW.dat for several */
static int draw_points(Figure *f, TextBuf *vars)
{
    TextBuf files;
    text_init(&files);
    int64_t first = 0;
    int n = 0, rc = 0;
    for (int r = 0; r < f->p->n_rows && rc == 0; r++) {
        const CellResult *cr = row_cell(f, r);
        if (!cr || !cr->run_id) {
            not_run(f, r);
            continue;
        }
        char path[1100];
        snprintf(path, sizeof path, "%.*s-%d.dat", (int)(strlen(f->data) - 4), f->data, r);
        rc = figure_export_points(f->st, cr->run_id, f->points, path);
        text_printf(&files, "%s%s", files.len ? " " : "", path);
        if (!first) first = cr->run_id;
        n++;
    }
    if (rc == 0 && n == 0) rc = err_set("%s: no row has run yet (deediff run %s)", f->p->path, f->p->path);
    char caption[1024] = "";
    if (rc == 0) rc = figure_caption(f->st, first, n == 1 ? f->points : NULL, caption, sizeof caption);
    if (rc == 0) {
        figure_var(vars, "data", files.data);
        figure_var(vars, "caption", caption);
    }
    text_free(&files);
    return rc;
}

static int draw_pareto(Figure *f, TextBuf *vars)
{
    FigureSeries *series = xcalloc((size_t)f->p->n_rows, sizeof *series);
    int64_t **ids = xcalloc((size_t)f->p->n_rows, sizeof *ids);
    int n = 0, rc = 0;
    int64_t first = 0;
    for (int r = 0; r < f->p->n_rows; r++) {
        const CellResult *cr = row_cell(f, r);
        int total = 0;
        for (int k = 0; cr && k < cr->n_points; k++) total += cr->points[k].n_run_ids;
        if (!total) {
            not_run(f, r);
            continue;
        }
        ids[n] = xmalloc((size_t)total * sizeof **ids);
        int at = 0;
        for (int k = 0; k < cr->n_points; k++)
            for (int i = 0; i < cr->points[k].n_run_ids; i++) ids[n][at++] = cr->points[k].run_ids[i];
        if (!first) first = ids[n][0];
        series[n] = (FigureSeries){.label = f->p->rows[r], .run_ids = ids[n], .n = total};
        n++;
    }
    if (n == 0) rc = err_set("%s: no row has run yet (deediff run %s)", f->p->path, f->p->path);
    if (rc == 0) rc = figure_export_pareto(f->st, series, n, f->data);
    char caption[1024] = "";
    if (rc == 0) rc = figure_caption(f->st, first, NULL, caption, sizeof caption);
    if (rc == 0) {
        figure_var(vars, "data", f->data);
        figure_var(vars, "caption", caption);
    }
    for (int i = 0; i < n; i++) free(ids[i]);
    free(ids);
    free(series);
    return rc;
}

static int draw_grid(Figure *f, TextBuf *vars)
{
    const char **paths = xcalloc((size_t)f->p->n_rows, sizeof *paths);
    const char **titles = xcalloc((size_t)f->p->n_rows, sizeof *titles);
    int n = 0, rc = 0;
    for (int r = 0; r < f->p->n_rows; r++) {
        const CellResult *cr = row_cell(f, r);
        const PlanCell *pc = NULL;
        for (int c = 0; c < f->p->n_columns && !pc; c++) pc = plan_cell(f->p, c, r);
        if (!cr || !cr->run_exists || !pc) {
            not_run(f, r);
            continue;
        }
        paths[n] = f->p->runs[pc->runs[0]].creates;
        titles[n] = f->p->rows[r];
        n++;
    }
    if (n == 0) rc = err_set("%s: no row has run yet (deediff run %s)", f->p->path, f->p->path);
    if (rc == 0) rc = figure_export_grid(paths, titles, n, f->data);
    const cJSON *cap = cJSON_GetObjectItem(f->p->scale_doc, "caption");
    if (rc == 0) {
        figure_var(vars, "data", f->data);
        figure_var(vars, "caption", cJSON_IsString(cap) ? cap->valuestring : "");
    }
    free(paths);
    free(titles);
    return rc;
}

int report_figure(Store *st, const Plan *p, const char *out_dir)
{
    const cJSON *fig = cJSON_GetObjectItem(p->doc, "figure");
    Figure f = {.p = p, .st = st};
    f.kind = cJSON_GetStringValue(cJSON_GetObjectItem(fig, "kind"));
    f.points = cJSON_GetStringValue(cJSON_GetObjectItem(fig, "points"));
    f.script = cJSON_GetStringValue(cJSON_GetObjectItem(fig, "script"));
    if (!f.kind || !f.script || (!strcmp(f.kind, "points") && !f.points))
        return err_set("%s: figure: expected {\"kind\": points|pareto|grid, \"script\": \"paper/figN.gp\"} "
                       "(and \"points\": the figure_points name for kind points)", p->path);
    report_path(f.data, sizeof f.data, p, out_dir, "figures", "dat");
    report_path(f.base, sizeof f.base, p, out_dir, "figures", "png");
    f.base[strlen(f.base) - 4] = 0;
    CellResult *cells;
    if (make_parent_dirs(f.data) || cells_measure(st, p, &cells, &f.n_cells)) return -1;
    f.cells = cells;
    TextBuf vars;
    text_init(&vars);
    int rc;
    if (!strcmp(f.kind, "points")) rc = draw_points(&f, &vars);
    else if (!strcmp(f.kind, "pareto")) rc = draw_pareto(&f, &vars);
    else if (!strcmp(f.kind, "grid")) rc = draw_grid(&f, &vars);
    else rc = err_set("%s: figure.kind: '%s' is not points, pareto or grid", p->path, f.kind);
    if (rc == 0) rc = figure_plot(f.script, vars.data, f.base);
    if (rc == 0) printf("report: %s.png and .svg (data %s)\n", f.base, f.data);
    text_free(&vars);
    cells_free(cells, f.n_cells);
    return rc;
}
