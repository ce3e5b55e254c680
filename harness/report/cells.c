/*
 * cells.c: an experiment's cells measured from the database (cells.h).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../kernels/errors.h"
#include "../cli/text_file.h"
#include "../runner/run_lookup.h"
#include "cells.h"

const char *const cell_metric_names[CELL_NUM_METRICS] = {"quality", "layers_ratio", "compute_ratio",
                                                         "gflops", "seconds_per_image"};

/* one stored eval run's numbers */
typedef struct {
    double v[CELL_NUM_METRICS];
    char quality_name[32];
    cJSON *config;
    char *cpu, *gemm, *code_version, *git_commit, *machine;
} EvalRow;

static char *col_text(sqlite3_stmt *q, int i)
{
    const unsigned char *t = sqlite3_column_text(q, i);
    return xstrdup(t ? (const char *)t : "?");
}

static int read_eval(Store *st, int64_t id, EvalRow *e)
{
    memset(e, 0, sizeof *e);
    for (int m = 0; m < CELL_NUM_METRICS; m++) e->v[m] = NAN;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db, "SELECT config, cpu, gemm, code_version, git_commit, machine FROM runs WHERE id = ?",
                           -1, &q, NULL) != SQLITE_OK)
        return err_set("%s: reading run %lld: %s", st->path, (long long)id, sqlite3_errmsg(st->db));
    sqlite3_bind_int64(q, 1, id);
    if (sqlite3_step(q) == SQLITE_ROW) {
        e->config = cJSON_Parse((const char *)sqlite3_column_text(q, 0));
        e->cpu = col_text(q, 1);
        e->gemm = col_text(q, 2);
        e->code_version = col_text(q, 3);
        e->git_commit = col_text(q, 4);
        e->machine = col_text(q, 5);
    }
    sqlite3_finalize(q);
    if (!e->config) return err_set("%s: run %lld: no readable config", st->path, (long long)id);
    if (sqlite3_prepare_v2(st->db, "SELECT name, value FROM metrics WHERE run_id = ? AND step IS NULL", -1, &q,
                           NULL) != SQLITE_OK)
        return err_set("%s: reading metrics: %s", st->path, sqlite3_errmsg(st->db));
    sqlite3_bind_int64(q, 1, id);
    double evals = cJSON_GetNumberValue(cJSON_GetObjectItem(e->config, "evals_per_image"));
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(q, 0);
        double v = sqlite3_column_double(q, 1);
        if (!strcmp(name, "fd_fmnist") || !strcmp(name, "fid")) e->v[CELL_QUALITY] = v;
        else if (!strcmp(name, "layers_ratio")) e->v[CELL_LAYERS_RATIO] = v;
        else if (!strcmp(name, "compute_ratio")) e->v[CELL_COMPUTE_RATIO] = v;
        else if (!strcmp(name, "gflops_per_image")) e->v[CELL_GFLOPS] = evals > 0 ? v / evals : NAN;
        else if (!strcmp(name, "seconds_per_image")) e->v[CELL_SECONDS] = v;
    }
    sqlite3_finalize(q);
    const char *metric = cJSON_GetStringValue(cJSON_GetObjectItem(e->config, "metric"));
    snprintf(e->quality_name, sizeof e->quality_name, "%s", metric ? metric : "quality");
    return 0;
}

static void free_eval(EvalRow *e)
{
    cJSON_Delete(e->config);
    free(e->cpu);
    free(e->gemm);
    free(e->code_version);
    free(e->git_commit);
    free(e->machine);
}

static void stat_add(CellStat *s, double v, double *sum2)
{
    if (isnan(v)) return;
    /* Welford: mean and the sum of squared deviations */
    s->n++;
    double d = v - s->mean;
    s->mean += d / s->n;
    *sum2 += d * (v - s->mean);
}

static const char *cfg(const cJSON *c, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(c, key));
    return s ? s : "?";
}

static double cfg_num(const cJSON *c, const char *key)
{
    const cJSON *j = cJSON_GetObjectItem(c, key);
    return cJSON_IsNumber(j) ? j->valuedouble : NAN;
}

/* the protocol line of a point, from its first run (all its runs share
   everything but the seed) */
static char *protocol_line(const EvalRow *e, const TextBuf *seeds, const TextBuf *ids, int stale)
{
    TextBuf t;
    text_init(&t);
    const cJSON *c = e->config;
    text_printf(&t, "sampler %s, %g steps (%g network evaluations), N %g, seeds %s; %s: features %s (%.12s), "
                "reference %s (%.12s, n %g); %s, %s backend, %g threads; machine %s, CPU %s; GEMM %s; code %.12s, "
                "commit %.12s; runs %s%s",
                cfg(c, "sampler"), cfg_num(c, "steps"), cfg_num(c, "evals_per_image"), cfg_num(c, "n"),
                seeds->data, e->quality_name, cfg(c, "features"), cfg(c, "features_sha256"), cfg(c, "ref"),
                cfg(c, "ref_sha256"), cfg_num(c, "ref_n"), cfg(c, "precision"), cfg(c, "backend"),
                cfg_num(c, "threads"), e->machine, e->cpu, e->gemm, e->code_version, e->git_commit, ids->data,
                stale ? " (STALE: made by other code; rerun to refresh)" : "");
    return t.data;
}

/* the points of an eval cell: its runs grouped by threshold */
static int measure_points(Store *st, const Plan *p, const PlanCell *pc, CellResult *cr)
{
    for (int i = 0; i < pc->n_runs; i++) {
        const PlanRun *r = &p->runs[pc->runs[i]];
        CellPoint *pt = NULL;
        for (int k = 0; k < cr->n_points; k++)
            if (cr->points[k].threshold == r->threshold ||
                (isnan(cr->points[k].threshold) && isnan(r->threshold)))
                pt = &cr->points[k];
        if (!pt) {
            cr->points = xrealloc(cr->points, (size_t)(cr->n_points + 1) * sizeof *cr->points);
            pt = &cr->points[cr->n_points++];
            memset(pt, 0, sizeof *pt);
            pt->threshold = r->threshold;
        }
        pt->seeds_wanted++;
    }
    for (int k = 0; k < cr->n_points; k++) {
        CellPoint *pt = &cr->points[k];
        double sum2[CELL_NUM_METRICS] = {0};
        TextBuf seeds, ids;
        text_init(&seeds);
        text_init(&ids);
        EvalRow first = {0};
        int have_first = 0;
        for (int i = 0; i < pc->n_runs; i++) {
            const PlanRun *r = &p->runs[pc->runs[i]];
            if (!(r->threshold == pt->threshold || (isnan(r->threshold) && isnan(pt->threshold)))) continue;
            RunFound f;
            if (run_lookup_plan(st, p, pc->runs[i], &f)) return -1;
            if (!f.run_id) continue;
            EvalRow e;
            if (read_eval(st, f.run_id, &e)) return -1;
            for (int m = 0; m < CELL_NUM_METRICS; m++) stat_add(&pt->m[m], e.v[m], &sum2[m]);
            pt->seeds_found++;
            pt->stale |= f.stale;
            pt->run_ids = xrealloc(pt->run_ids, (size_t)(pt->n_run_ids + 1) * sizeof *pt->run_ids);
            pt->run_ids[pt->n_run_ids++] = f.run_id;
            text_printf(&seeds, "%s%ld", seeds.len ? "," : "", r->seed);
            text_printf(&ids, "%s%lld", ids.len ? "," : "", (long long)f.run_id);
            if (!have_first) {
                first = e;
                have_first = 1;
            } else {
                free_eval(&e);
            }
        }
        for (int m = 0; m < CELL_NUM_METRICS; m++) {
            if (pt->m[m].n == 0) pt->m[m].mean = NAN;
            pt->m[m].sd = pt->m[m].n > 1 ? sqrt(sum2[m] / (pt->m[m].n - 1)) : NAN;
        }
        if (have_first) {
            snprintf(pt->quality_name, sizeof pt->quality_name, "%s", first.quality_name);
            pt->protocol = protocol_line(&first, &seeds, &ids, pt->stale);
            free_eval(&first);
        }
        text_free(&seeds);
        text_free(&ids);
    }
    return 0;
}

static int measure_cell(Store *st, const Plan *p, const PlanCell *pc, CellResult *cr)
{
    memset(cr, 0, sizeof *cr);
    cr->column = pc->column;
    cr->row = pc->row;
    const PlanRun *r0 = &p->runs[pc->runs[0]];
    if (r0->is_eval) return measure_points(st, p, pc, cr);
    struct stat sb;
    cr->run_exists = r0->creates && stat(r0->creates, &sb) == 0;
    RunFound f;
    if (run_lookup_plan(st, p, pc->runs[0], &f)) return -1;
    cr->run_id = f.run_id;
    cr->run_stale = f.stale;
    return 0;
}

int cells_measure(Store *st, const Plan *p, CellResult **cells, int *n)
{
    *cells = xcalloc((size_t)p->n_cells + 1, sizeof **cells);
    *n = 0;
    for (int i = 0; i < p->n_cells; i++) {
        if (measure_cell(st, p, &p->cells[i], &(*cells)[i])) {
            cells_free(*cells, i + 1);
            *cells = NULL;
            return -1;
        }
        *n = i + 1;
    }
    return 0;
}

void cells_free(CellResult *cells, int n)
{
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < cells[i].n_points; k++) {
            free(cells[i].points[k].protocol);
            free(cells[i].points[k].run_ids);
        }
        free(cells[i].points);
    }
    free(cells);
}

const CellResult *cells_find(const CellResult *cells, int n, int column, int row)
{
    for (int i = 0; i < n; i++)
        if (cells[i].column == column && cells[i].row == row) return &cells[i];
    return NULL;
}
