/*
 * figure_io.h: what the figure exporters (figure_data.h) share: a figure's
 * points read back from the database, grouped by series in natural order,
 * a run's configuration, and the writing of gnuplot data blocks.
 */
#ifndef DEEDIFF_FIGURE_IO_H
#define DEEDIFF_FIGURE_IO_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "../cli/text_file.h"
#include "../store/store.h"

typedef struct {
    char *name;
    double *x, *y;              /* [n], x ascending */
    int64_t n;
} PointSeries;

typedef struct {
    PointSeries *s;
    int n;                      /* series, in natural order of their names */
} PointSet;

/* strcmp, except that runs of digits compare as numbers ("block 2" < "block 10") */
int figure_natural_cmp(const char *a, const char *b);

/* the points of run_id's figure; -1 + err_msg() naming path (the file the
   caller is about to write) when the query fails or finds none */
int figure_points_load(Store *s, int64_t run_id, const char *figure, const char *path, PointSet *ps);
void figure_points_free(PointSet *ps);
/* the series called name, or NULL */
const PointSeries *figure_points_find(const PointSet *ps, const char *name);

/* the run's config (the caller's to cJSON_Delete), or NULL + err_msg() naming path */
cJSON *figure_run_config(Store *s, int64_t run_id, const char *path);
/* a config's string or number field, or fallback */
const char *figure_cfg_str(const cJSON *cfg, const char *key, const char *fallback);
double figure_cfg_num(const cJSON *cfg, const char *key, double fallback);

/* starts the index-th block (from 0): two blank lines before all but the
   first, "# series NAME", then a header line of n quoted column names */
void figure_block_begin(TextBuf *t, int index, const char *series, int n, const char *const *columns);
/* figure 4's blocks (figure_maps.c, layout in figure_data.h) of the points
   ps of run_id, after the file's opening comments; -1 + err_msg() */
int figure_maps_write(Store *s, int64_t run_id, const PointSet *ps, const char *path, TextBuf *t);

/* a number as the files write it (%.9g; NaN as "NaN") followed by sep */
void figure_value(TextBuf *t, double v, char sep);

#endif
