/*
 * figure_pareto.c: figure 5's data file, quality against layers ratio per
 * method (figure_export_pareto(), figure_data.h).
 *
 * Each run is one finished eval; its threshold is its config's (0 when it
 * has none, as U-ViT's). Runs of a series with the same threshold are
 * seeds of one point: their layers ratios and qualities are averaged and
 * the quality's sample standard deviation is its spread. The quality is
 * the run's Frechet distance, "fd_fmnist" (the Fashion-MNIST proxy) or
 * "fid" (Inception), named by harness/eval/fd_name.h from the metric and
 * its N, so FD-FMNIST is never called FID; all runs must agree on it.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "../eval/fd_name.h"
#include "figure_data.h"
#include "figure_io.h"

typedef struct {
    double threshold, ratio, quality;
    char name[32];              /* "FD-FMNIST-1k" */
} EvalPoint;

/* the run's threshold, layers ratio and distance; -1 + err_msg() naming path */
static int read_run(Store *s, int64_t run_id, const char *path, EvalPoint *e)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT r.status, json_extract(r.config, '$.threshold'), m.name, m.value, m.protocol "
                      "FROM runs r LEFT JOIN metrics m ON m.run_id = r.id AND m.step IS NULL "
                      "AND m.name IN ('fd_fmnist', 'fid', 'layers_ratio') WHERE r.id = ? ORDER BY m.id";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return err_set("%s: reading %s: %s", path, s->path, sqlite3_errmsg(s->db));
    sqlite3_bind_int64(st, 1, run_id);
    *e = (EvalPoint){.ratio = NAN, .quality = NAN};
    int rows = 0, rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        if (rows++ == 0 && strcmp((const char *)sqlite3_column_text(st, 0), "done"))
            rc = err_set("%s: run %lld in %s is %s, not done", path, (long long)run_id, s->path,
                         (const char *)sqlite3_column_text(st, 0));
        e->threshold = sqlite3_column_double(st, 1);   // NULL reads as 0
        const char *name = (const char *)sqlite3_column_text(st, 2);
        if (!name) continue;
        double v = sqlite3_column_double(st, 3);
        if (!strcmp(name, "layers_ratio")) {
            e->ratio = v;
            continue;
        }
        // the last distance recorded wins, as the last layers ratio does
        cJSON *protocol = cJSON_Parse((const char *)sqlite3_column_text(st, 4));
        double n = figure_cfg_num(protocol, "n", 0);
        cJSON_Delete(protocol);
        if (n <= 0) rc = err_set("%s: run %lld's %s has no N in its protocol", path, (long long)run_id, name);
        fd_name(!strcmp(name, "fid") ? "inception" : "fmnist", (int64_t)n, e->name, sizeof e->name);
        e->quality = v;
    }
    sqlite3_finalize(st);
    if (rc) return rc;
    if (rows == 0) return err_set("%s: run %lld is not in %s", path, (long long)run_id, s->path);
    if (isnan(e->quality) || isnan(e->ratio))
        return err_set("%s: run %lld in %s has no %s", path, (long long)run_id, s->path,
                       isnan(e->ratio) ? "layers_ratio" : "fd_fmnist or fid");
    return 0;
}

static int by_threshold(const void *a, const void *b)
{
    double x = ((const EvalPoint *)a)->threshold, y = ((const EvalPoint *)b)->threshold;
    return (x > y) - (x < y);
}

/* rows of one series, its runs e[0..n) sorted by threshold */
static void write_rows(TextBuf *t, const EvalPoint *e, int n)
{
    for (int i = 0; i < n;) {
        int j = i;
        double ratio = 0, mean = 0, ss = 0;
        while (j < n && e[j].threshold == e[i].threshold) ratio += e[j].ratio, mean += e[j].quality, j++;
        int k = j - i;
        ratio /= k, mean /= k;
        for (int m = i; m < j; m++) ss += (e[m].quality - mean) * (e[m].quality - mean);
        figure_value(t, ratio, ' ');
        figure_value(t, mean, ' ');
        figure_value(t, k > 1 ? sqrt(ss / (k - 1)) : 0, ' ');
        figure_value(t, e[i].threshold, ' ');
        text_printf(t, "%d\n", k);
        i = j;
    }
}

int figure_export_pareto(Store *s, const FigureSeries *series, int n_series, const char *path)
{
    EvalPoint **points = xcalloc((size_t)(n_series > 0 ? n_series : 1), sizeof *points);
    const char *quality = NULL;
    int64_t quality_run = 0;
    int rc = n_series > 0 ? 0 : err_set("%s: no series to draw", path);
    for (int i = 0; rc == 0 && i < n_series; i++) {
        if (series[i].n <= 0) rc = err_set("%s: series '%s' has no runs", path, series[i].label);
        points[i] = xcalloc((size_t)(series[i].n > 0 ? series[i].n : 1), sizeof **points);
        for (int j = 0; rc == 0 && j < series[i].n; j++) {
            EvalPoint *e = &points[i][j];
            rc = read_run(s, series[i].run_ids[j], path, e);
            if (rc == 0 && quality && strcmp(quality, e->name))
                rc = err_set("%s: run %lld measures %s, run %lld %s: one figure draws one distance", path,
                             (long long)quality_run, quality, (long long)series[i].run_ids[j], e->name);
            if (rc == 0 && !quality) quality = e->name, quality_run = series[i].run_ids[j];
        }
    }
    TextBuf t;
    text_init(&t);
    if (rc == 0 && quality) {
        text_printf(&t, "# figure 5: %s against layers ratio, from %s; a row per threshold, seeds averaged\n",
                    quality, s->path);
        text_printf(&t, "# columns: layers ratio (mean), %s (mean), its sample standard deviation, threshold, "
                        "runs averaged\n", quality);
        for (int i = 0; i < n_series; i++) {
            text_printf(&t, "# %s: runs", series[i].label);
            for (int j = 0; j < series[i].n; j++) text_printf(&t, " %lld", (long long)series[i].run_ids[j]);
            text_printf(&t, "\n");
        }
        for (int i = 0; i < n_series; i++) {
            char sd[48];
            snprintf(sd, sizeof sd, "%s sd", quality);
            const char *columns[5] = {series[i].label, quality, sd, "threshold", "runs"};
            figure_block_begin(&t, i, series[i].label, 5, columns);
            qsort(points[i], (size_t)series[i].n, sizeof **points, by_threshold);
            write_rows(&t, points[i], series[i].n);
        }
        rc = text_write_atomic(&t, path);
    }
    text_free(&t);
    for (int i = 0; i < n_series; i++) free(points[i]);
    free(points);
    return rc;
}
