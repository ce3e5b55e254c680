/*
 * figure_points.c: figure_export_points() (figure_data.h): the points a
 * `deediff analyze` run stored for figures 1, 3, 4 and 6 as gnuplot blocks.
 * Figures 1, 3 and 6 are written here, a block per series; figure 4's maps
 * are laid out in figure_maps.c.
 */
#include <stdio.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "../analyze/analyze_figures.h"
#include "figure_data.h"
#include "figure_io.h"
#include "paper_names.h"

/* what x is in a series of the figure */
static const char *x_name(const char *figure, const char *series)
{
    if (strcmp(figure, FIG6)) return "t";
    if (!strncmp(series, "threshold ", 10) || !strcmp(series, "t")) return "evaluation";
    return "threshold";
}

/* the legend of a series: figure 6's curves carry the method and the
   layers ratio they ran at */
static const char *series_title(const char *figure, const PointSet *ps, const PointSeries *p, const cJSON *cfg,
                                char *buf, size_t size)
{
    double threshold;
    if (strcmp(figure, FIG6) || sscanf(p->name, "threshold %lf", &threshold) != 1) return p->name;
    const char *method = paper_method_name(figure_cfg_str(cfg, "method", "?"));
    const PointSeries *ratio = figure_points_find(ps, "layers ratio");
    for (int64_t i = 0; ratio && i < ratio->n; i++)
        if (ratio->x[i] == threshold) {
            snprintf(buf, size, "%s, threshold %g (layers ratio %.3f)", method, threshold, ratio->y[i]);
            return buf;
        }
    snprintf(buf, size, "%s, threshold %g", method, threshold);
    return buf;
}

static void write_series(const char *figure, const PointSet *ps, const cJSON *cfg, TextBuf *t)
{
    for (int i = 0; i < ps->n; i++) {
        const PointSeries *p = &ps->s[i];
        char title[256];
        const char *columns[2] = {x_name(figure, p->name), series_title(figure, ps, p, cfg, title, sizeof title)};
        figure_block_begin(t, i, p->name, 2, columns);
        for (int64_t k = 0; k < p->n; k++) {
            figure_value(t, p->x[k], ' ');
            figure_value(t, p->y[k], '\n');
        }
    }
}

int figure_export_points(Store *s, int64_t run_id, const char *figure, const char *path)
{
    if (strcmp(figure, FIG1) && strcmp(figure, FIG3) && strcmp(figure, FIG4) && strcmp(figure, FIG6))
        return err_set("%s: no figure '%s' (%s, %s, %s or %s)", path, figure, FIG1, FIG3, FIG4, FIG6);
    cJSON *cfg = figure_run_config(s, run_id, path);
    if (!cfg) return -1;
    PointSet ps;
    int rc = figure_points_load(s, run_id, figure, path, &ps);
    TextBuf t;
    text_init(&t);
    if (rc == 0) {
        text_printf(&t, "# %s of run %lld in %s (deediff analyze; harness/report/figure_data.h says the layout)\n",
                    figure, (long long)run_id, s->path);
        text_printf(&t, "# model %s, method %s, sampler %s %g steps, seed %g\n", figure_cfg_str(cfg, "model", "?"),
                    figure_cfg_str(cfg, "method", "?"), figure_cfg_str(cfg, "sampler", "?"),
                    figure_cfg_num(cfg, "steps", 0), figure_cfg_num(cfg, "seed", 0));
        if (!strcmp(figure, FIG4)) rc = figure_maps_write(s, run_id, &ps, path, &t);
        else write_series(figure, &ps, cfg, &t);
    }
    if (rc == 0) rc = text_write_atomic(&t, path);
    text_free(&t);
    figure_points_free(&ps);
    cJSON_Delete(cfg);
    return rc;
}
