/*
 * analyze_points.c: the growing list of figure points `deediff analyze`
 * stores (analyze_figures.h), with each series name allocated once.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "analyze_figures.h"

const char *points_series(PointList *pl, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (pl->n_names == pl->cap_names) {
        pl->cap_names = pl->cap_names ? 2 * pl->cap_names : 64;
        pl->names = xrealloc(pl->names, (size_t)pl->cap_names * sizeof *pl->names);
    }
    return pl->names[pl->n_names++] = xstrdup(buf);
}

void points_add(PointList *pl, const char *figure, const char *series, double x, double y)
{
    if (pl->n == pl->cap) {
        pl->cap = pl->cap ? 2 * pl->cap : 4096;
        pl->p = xrealloc(pl->p, (size_t)pl->cap * sizeof *pl->p);
    }
    pl->p[pl->n++] = (FigurePoint){figure, series, x, y};
}

int64_t points_count(const PointList *pl, const char *figure)
{
    int64_t k = 0;
    for (int64_t i = 0; i < pl->n; i++) k += !strcmp(pl->p[i].figure, figure);
    return k;
}

void points_free(PointList *pl)
{
    for (int i = 0; i < pl->n_names; i++) free(pl->names[i]);
    free(pl->names);
    free(pl->p);
    memset(pl, 0, sizeof *pl);
}
