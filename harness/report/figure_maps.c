/*
 * figure_maps.c: figure 4's data file (the layout is in figure_data.h):
 * the uncertainty maps `deediff analyze` kept whole, one mosaic per kept
 * evaluation (a row of tiles per exit, a column per image), then each
 * exit's mean uncertainty against t.
 *
 * A map is stored as the series "map eval E block B image I" with x the
 * pixel's index in C,H,W order; a tile shows its mean over channels, as the
 * PNGs analyze writes do. The time of evaluation E is read off the mean
 * curves, which have a point per evaluation (t falls as E grows).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "figure_io.h"

typedef struct {
    int eval, block, image;
    const PointSeries *p;
} Map;

/* the distinct values of v[0..n), ascending, into out; their count */
static int distinct(int *v, int n, int *out)
{
    int m = 0;
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (j < m && out[j] != v[i]) j++;
        if (j == m) out[m++] = v[i];
    }
    for (int i = 1; i < m; i++)
        for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
            int tmp = out[j];
            out[j] = out[j - 1], out[j - 1] = tmp;
        }
    return m;
}

static int index_of(const int *v, int n, int x)
{
    for (int i = 0; i < n; i++)
        if (v[i] == x) return i;
    return -1;
}

/* the maps' layout: distinct evaluations, blocks and images */
typedef struct {
    Map *maps;
    int n_maps;
    int *evals, *blocks, *images;
    int n_evals, n_blocks, n_images;
    int C, H, W;
} Layout;

static void layout_free(Layout *l)
{
    free(l->maps);
    free(l->evals);
    free(l->blocks);
    free(l->images);
}

static int layout_read(Store *s, int64_t run_id, const PointSet *ps, const char *path, Layout *l)
{
    memset(l, 0, sizeof *l);
    cJSON *cfg = figure_run_config(s, run_id, path);
    if (!cfg) return -1;
    const cJSON *mc = cJSON_GetObjectItemCaseSensitive(cfg, "model_config");
    l->C = (int)figure_cfg_num(mc, "in_chans", 0);
    l->H = l->W = (int)figure_cfg_num(mc, "img_size", 0);
    cJSON_Delete(cfg);
    if (l->C <= 0 || l->H <= 0)
        return err_set("%s: run %lld's config has no model_config.in_chans and img_size", path, (long long)run_id);
    l->maps = xcalloc((size_t)ps->n, sizeof *l->maps);
    for (int i = 0; i < ps->n; i++) {
        Map m = {.p = &ps->s[i]};
        if (sscanf(ps->s[i].name, "map eval %d block %d image %d", &m.eval, &m.block, &m.image) == 3)
            l->maps[l->n_maps++] = m;
    }
    if (l->n_maps == 0) return err_set("%s: run %lld has no uncertainty maps", path, (long long)run_id);
    int *v = xmalloc((size_t)l->n_maps * sizeof *v);
    l->evals = xmalloc((size_t)l->n_maps * sizeof *v);
    l->blocks = xmalloc((size_t)l->n_maps * sizeof *v);
    l->images = xmalloc((size_t)l->n_maps * sizeof *v);
    for (int i = 0; i < l->n_maps; i++) v[i] = l->maps[i].eval;
    l->n_evals = distinct(v, l->n_maps, l->evals);
    for (int i = 0; i < l->n_maps; i++) v[i] = l->maps[i].block;
    l->n_blocks = distinct(v, l->n_maps, l->blocks);
    for (int i = 0; i < l->n_maps; i++) v[i] = l->maps[i].image;
    l->n_images = distinct(v, l->n_maps, l->images);
    free(v);
    return 0;
}

/* the time of evaluation e, read off the first mean curve; NaN when unknown */
static double eval_time(const PointSet *ps, int e)
{
    for (int i = 0; i < ps->n; i++)
        if (!strncmp(ps->s[i].name, "mean block ", 11))
            return e >= 0 && e < ps->s[i].n ? ps->s[i].x[ps->s[i].n - 1 - e] : NAN;
    return NAN;
}

/* mosaic of evaluation slot ei: [n_blocks (H+1)][n_images (W+1)], NaN where no pixel */
static void mosaic(const Layout *l, int ei, double *grid, int rows, int cols)
{
    for (int i = 0; i < rows * cols; i++) grid[i] = NAN;
    int64_t hw = (int64_t)l->H * l->W;
    double *sum = xmalloc((size_t)hw * sizeof *sum);
    int *count = xmalloc((size_t)hw * sizeof *count);
    for (int m = 0; m < l->n_maps; m++) {
        const Map *mp = &l->maps[m];
        if (mp->eval != l->evals[ei]) continue;
        memset(sum, 0, (size_t)hw * sizeof *sum);
        memset(count, 0, (size_t)hw * sizeof *count);
        for (int64_t k = 0; k < mp->p->n; k++) {
            double x = mp->p->x[k];
            if (x < 0 || x >= (double)hw * l->C || x != floor(x)) continue;
            int64_t pix = (int64_t)x % hw;
            sum[pix] += mp->p->y[k];
            count[pix]++;
        }
        int r0 = index_of(l->blocks, l->n_blocks, mp->block) * (l->H + 1);
        int c0 = index_of(l->images, l->n_images, mp->image) * (l->W + 1);
        for (int r = 0; r < l->H; r++)
            for (int c = 0; c < l->W; c++) {
                int64_t pix = (int64_t)r * l->W + c;
                if (count[pix]) grid[(r0 + r) * cols + c0 + c] = sum[pix] / count[pix];
            }
    }
    free(sum);
    free(count);
}

int figure_maps_write(Store *s, int64_t run_id, const PointSet *ps, const char *path, TextBuf *t)
{
    Layout l;
    if (layout_read(s, run_id, ps, path, &l)) {
        layout_free(&l);
        return -1;
    }
    text_printf(t, "# %d mosaics (evaluations), each %d exits (rows: blocks", l.n_evals, l.n_blocks);
    for (int i = 0; i < l.n_blocks; i++) text_printf(t, " %d", l.blocks[i]);
    text_printf(t, ") x %d images (columns: ids", l.n_images);
    for (int i = 0; i < l.n_images; i++) text_printf(t, " %d", l.images[i]);
    text_printf(t, ") of %dx%d; then the mean curves\n", l.H, l.W);
    int rows = l.n_blocks * (l.H + 1), cols = l.n_images * (l.W + 1);
    double *grid = xmalloc((size_t)rows * cols * sizeof *grid);
    int block = 0;
    for (int ei = 0; ei < l.n_evals; ei++) {
        char series[64], title[96];
        snprintf(series, sizeof series, "maps eval %d", l.evals[ei]);
        double te = eval_time(ps, l.evals[ei]);
        if (isnan(te)) snprintf(title, sizeof title, "eval %d", l.evals[ei]);
        else snprintf(title, sizeof title, "eval %d, t = %.3g", l.evals[ei], te);
        const char *columns[3] = {"x", "y", title};
        figure_block_begin(t, block++, series, 3, columns);
        mosaic(&l, ei, grid, rows, cols);
        for (int r = 0; r < rows; r++) {
            if (r > 0) text_printf(t, "\n");   // a scan line ends; two blank lines would end the block
            for (int c = 0; c < cols; c++) {
                figure_value(t, c / (l.W + 1) + (double)(c % (l.W + 1)) / (l.W + 1), ' ');
                figure_value(t, r / (l.H + 1) + (double)(r % (l.H + 1)) / (l.H + 1), ' ');
                figure_value(t, grid[r * cols + c], '\n');
            }
        }
    }
    for (int i = 0; i < ps->n; i++) {
        const PointSeries *p = &ps->s[i];
        int b;
        if (sscanf(p->name, "mean block %d", &b) != 1) continue;
        char title[32];
        snprintf(title, sizeof title, "block %d", b);
        const char *columns[2] = {"t", title};
        figure_block_begin(t, block++, p->name, 2, columns);
        for (int64_t k = 0; k < p->n; k++) {
            figure_value(t, p->x[k], ' ');
            figure_value(t, p->y[k], '\n');
        }
    }
    free(grid);
    layout_free(&l);
    return 0;
}
