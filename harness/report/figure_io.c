/*
 * figure_io.c: reading a figure's points and a run's configuration back,
 * and writing gnuplot data blocks (figure_io.h).
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "figure_io.h"

int figure_natural_cmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            while (*a == '0') a++;
            while (*b == '0') b++;
            size_t la = 0, lb = 0;
            while (isdigit((unsigned char)a[la])) la++;
            while (isdigit((unsigned char)b[lb])) lb++;
            if (la != lb) return la < lb ? -1 : 1;
            int c = strncmp(a, b, la);
            if (c) return c;
            a += la, b += lb;
            continue;
        }
        if (*a != *b) return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
        a++, b++;
    }
    return (unsigned char)*a - (unsigned char)*b;
}

static int series_order(const void *pa, const void *pb)
{
    return figure_natural_cmp(((const PointSeries *)pa)->name, ((const PointSeries *)pb)->name);
}

int figure_points_load(Store *s, int64_t run_id, const char *figure, const char *path, PointSet *ps)
{
    memset(ps, 0, sizeof *ps);
    sqlite3_stmt *st;
    const char *sql = "SELECT series, x, y FROM figure_points WHERE run_id = ? AND figure = ? ORDER BY series, x";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return err_set("%s: reading %s: %s", path, s->path, sqlite3_errmsg(s->db));
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, figure, -1, SQLITE_STATIC);
    int rc, cap = 0;
    int64_t pcap = 0;
    PointSeries *cur = NULL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (!cur || strcmp(cur->name, name)) {
            if (ps->n == cap) {
                cap = cap ? 2 * cap : 16;
                ps->s = xrealloc(ps->s, (size_t)cap * sizeof *ps->s);
            }
            cur = &ps->s[ps->n++];
            *cur = (PointSeries){.name = xstrdup(name)};
            pcap = 0;
        }
        if (cur->n == pcap) {
            pcap = pcap ? 2 * pcap : 64;
            cur->x = xrealloc(cur->x, (size_t)pcap * sizeof *cur->x);
            cur->y = xrealloc(cur->y, (size_t)pcap * sizeof *cur->y);
        }
        cur->x[cur->n] = sqlite3_column_double(st, 1);
        cur->y[cur->n++] = sqlite3_column_double(st, 2);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        figure_points_free(ps);
        return err_set("%s: reading %s: %s", path, s->path, sqlite3_errmsg(s->db));
    }
    if (ps->n == 0)
        return err_set("%s: run %lld has no points of %s in %s", path, (long long)run_id, figure, s->path);
    qsort(ps->s, (size_t)ps->n, sizeof *ps->s, series_order);
    return 0;
}

void figure_points_free(PointSet *ps)
{
    for (int i = 0; i < ps->n; i++) {
        free(ps->s[i].name);
        free(ps->s[i].x);
        free(ps->s[i].y);
    }
    free(ps->s);
    memset(ps, 0, sizeof *ps);
}

const PointSeries *figure_points_find(const PointSet *ps, const char *name)
{
    for (int i = 0; i < ps->n; i++)
        if (!strcmp(ps->s[i].name, name)) return &ps->s[i];
    return NULL;
}

cJSON *figure_run_config(Store *s, int64_t run_id, const char *path)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT config FROM runs WHERE id = ?", -1, &st, NULL) != SQLITE_OK) {
        err_set("%s: reading %s: %s", path, s->path, sqlite3_errmsg(s->db));
        return NULL;
    }
    sqlite3_bind_int64(st, 1, run_id);
    cJSON *cfg = NULL;
    if (sqlite3_step(st) == SQLITE_ROW) cfg = cJSON_Parse((const char *)sqlite3_column_text(st, 0));
    else err_set("%s: run %lld is not in %s", path, (long long)run_id, s->path);
    sqlite3_finalize(st);
    return cfg;
}

const char *figure_cfg_str(const cJSON *cfg, const char *key, const char *fallback)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    return cJSON_IsString(v) ? v->valuestring : fallback;
}

double figure_cfg_num(const cJSON *cfg, const char *key, double fallback)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

/* "text" with the quotes gnuplot's header parser cannot hold turned into ' */
static void quoted(TextBuf *t, const char *s)
{
    text_printf(t, "\"");
    for (; *s; s++) text_printf(t, "%c", *s == '"' || *s == '\n' ? '\'' : *s);
    text_printf(t, "\"");
}

void figure_block_begin(TextBuf *t, int index, const char *series, int n, const char *const *columns)
{
    text_printf(t, "%s# series %s\n", index > 0 ? "\n\n" : "", series);
    for (int i = 0; i < n; i++) {
        quoted(t, columns[i]);
        text_printf(t, "%c", i + 1 < n ? ' ' : '\n');
    }
}

void figure_value(TextBuf *t, double v, char sep)
{
    if (isnan(v)) text_printf(t, "NaN%c", sep);
    else text_printf(t, "%.9g%c", v, sep);
}
