/*
 * table_sweep.c: `deediff table sweep`: an early-exit model's threshold
 * sweep drawn from the eval runs in the results database.
 *
 * One row per threshold: the latest finished eval run of the model file at
 * that threshold (any protocol: the protocol is printed per row, and rows
 * compare only when it is the same). The reference row is the same weights
 * at threshold 0 (the paper's "w/o EE": every block, no estimator), and an
 * optional baseline row is another model (the plain backbone) run alone.
 * Against the reference each row gives
 *   layer saving = 1 - layers ratio,
 *   wall saving  = 1 - (s/image) / (s/image at threshold 0),
 *   and their ratio (1.0: time falls exactly as blocks do).
 * Times only compare when measured on one CPU under the same load: the CPU
 * and finishing time of every run are printed with it.
 */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "table_sweep.h"

typedef struct {
    int64_t id;
    double threshold, fd, layers, gmacs, seconds;
    char metric[64], sampler[32], cpu[128], finished[40];
    int steps, n;
} SweepRow;

#define SWEEP_MAX 128

static double metric_of(sqlite3 *db, int64_t run, const char *name)
{
    sqlite3_stmt *q;
    double v = NAN;
    if (sqlite3_prepare_v2(db, "SELECT value FROM metrics WHERE run_id = ? AND name = ? AND step IS NULL "
                               "ORDER BY id DESC LIMIT 1", -1, &q, NULL) != SQLITE_OK) return v;
    sqlite3_bind_int64(q, 1, run);
    sqlite3_bind_text(q, 2, name, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW) v = sqlite3_column_double(q, 0);
    sqlite3_finalize(q);
    return v;
}

static void copy_text(char *dst, size_t n, sqlite3_stmt *q, int col)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    snprintf(dst, n, "%s", t ? (const char *)t : "");
}

/* the latest finished eval run of `model` per threshold, by threshold: runs
   of method `method` ("none": the plain network; NULL: any early-exit method) */
static int read_sweep(Store *st, const char *model, const char *method, SweepRow *rows, int *n)
{
    static const char *sql =
        "SELECT id, json_extract(config, '$.threshold'), json_extract(config, '$.metric'), "
        "json_extract(config, '$.sampler'), json_extract(config, '$.steps'), json_extract(config, '$.n'), cpu, "
        "finished_at FROM runs WHERE id IN (SELECT max(id) FROM runs WHERE kind = 'eval' AND status = 'done' "
        "AND json_extract(config, '$.model') = ?1 AND CASE WHEN ?2 IS NULL "
        "THEN json_extract(config, '$.method') NOT IN ('none', 'uvit') WHEN ?2 = 'none' "
        "THEN json_extract(config, '$.method') IN ('none', 'uvit') ELSE json_extract(config, '$.method') = ?2 END "
        "GROUP BY json_extract(config, '$.threshold')) ORDER BY json_extract(config, '$.threshold')";
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK)
        return err_set("%s: reading eval runs: %s", st->path, sqlite3_errmsg(st->db));
    sqlite3_bind_text(q, 1, model, -1, SQLITE_STATIC);
    if (method) sqlite3_bind_text(q, 2, method, -1, SQLITE_STATIC);
    else sqlite3_bind_null(q, 2);
    *n = 0;
    while (*n < SWEEP_MAX && sqlite3_step(q) == SQLITE_ROW) {
        SweepRow *r = &rows[(*n)++];
        r->id = sqlite3_column_int64(q, 0);
        r->threshold = sqlite3_column_type(q, 1) == SQLITE_NULL ? 0 : sqlite3_column_double(q, 1);
        copy_text(r->metric, sizeof r->metric, q, 2);
        copy_text(r->sampler, sizeof r->sampler, q, 3);
        r->steps = sqlite3_column_int(q, 4);
        r->n = sqlite3_column_int(q, 5);
        copy_text(r->cpu, sizeof r->cpu, q, 6);
        copy_text(r->finished, sizeof r->finished, q, 7);
        r->fd = metric_of(st->db, r->id, !strncmp(r->metric, "FID", 3) ? "fid" : "fd_fmnist");
        r->layers = metric_of(st->db, r->id, "layers_ratio");
        r->gmacs = metric_of(st->db, r->id, "gmacs_per_image");
        r->seconds = metric_of(st->db, r->id, "seconds_per_image");
    }
    sqlite3_finalize(q);
    return 0;
}

static void row_line(TextBuf *t, const char *what, const SweepRow *r, const SweepRow *ref)
{
    double layer_saving = 1 - r->layers, wall_saving = ref ? 1 - r->seconds / ref->seconds : NAN;
    text_printf(t, "| %s | %.4f | %.4f | %.1f%% | %.4f | %.5f | ", what, r->fd, r->layers, 100 * layer_saving,
                r->gmacs, r->seconds);
    if (ref && r != ref) text_printf(t, "%.1f%% | ", 100 * wall_saving);
    else text_printf(t, "- | ");
    if (ref && r != ref && layer_saving > 0.005) text_printf(t, "%.2f |", wall_saving / layer_saving);
    else text_printf(t, "- |");
    text_printf(t, " %s %d, N %d | run %lld, %s |\n", r->sampler, r->steps, r->n, (long long)r->id, r->finished);
}

int table_sweep_render(Store *st, const char *model, const char *method, const char *baseline, TextBuf *t)
{
    SweepRow rows[SWEEP_MAX], base[SWEEP_MAX];
    int n = 0, nb = 0;
    if (read_sweep(st, model, method, rows, &n)) return -1;
    if (baseline && read_sweep(st, baseline, "none", base, &nb)) return -1;
    if (n == 0)
        return err_set("--model: %s: no finished eval runs of this file%s%s in %s", model,
                       method ? " with method " : "", method ? method : "", st->path);
    const SweepRow *ref = NULL;
    for (int i = 0; i < n; i++)
        if (rows[i].threshold == 0) ref = &rows[i];
    text_printf(t, "# Threshold sweep of `%s`%s%s\n\nDrawn by `deediff table sweep` from `%s`. Layer saving = 1 - "
                   "layers ratio; wall saving = 1 - (s/image) / (s/image of the same weights at threshold 0, "
                   "the w/o EE row); ratio = wall saving / layer saving. GMAC/image counts every multiply-add "
                   "spent (blocks run, exit heads, estimators; 1 MAC = 1 multiply-add).\n\n", model,
                method ? ", method " : "", method ? method : "", st->path);
    text_printf(t, "| threshold | %s | layers ratio | layer saving | GMAC/image | s/image | wall saving | ratio "
                   "| protocol | run |\n|---|---|---|---|---|---|---|---|---|---|\n",
                   rows[0].metric[0] ? rows[0].metric : "FD");
    for (int i = 0; i < nb; i++) {
        char what[128];
        snprintf(what, sizeof what, "baseline `%s`", baseline);
        row_line(t, what, &base[i], ref);
    }
    for (int i = 0; i < n; i++) {
        char what[64];
        if (rows[i].threshold == 0) snprintf(what, sizeof what, "0 (w/o EE)");
        else snprintf(what, sizeof what, "%g", rows[i].threshold);
        row_line(t, what, &rows[i], ref);
    }
    text_printf(t, "\nCPU of each run:");
    for (int i = 0; i < n; i++) text_printf(t, "%s run %lld: %s", i ? ";" : "", (long long)rows[i].id, rows[i].cpu);
    text_printf(t, ".\n");
    return 0;
}
